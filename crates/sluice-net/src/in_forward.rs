//! `<source> @type forward`: Fluentd's in_forward. Listens on TCP for forward-protocol frames (every
//! mode, `chunk` answered with `ack` once the events are stored) and on UDP at the same port for
//! heartbeats. With `<security>` each connection starts with the HELO/PING/PONG handshake.
//!
//! Backpressure: when the router refuses a frame (a buffer is full) the connection stops reading and tries
//! the same frame again later; it is acknowledged only after it was stored, so a sender with
//! `require_ack_response` never loses it.
use crate::net_util::{reverse_lookup, set_keepalive};
use crate::protocol::{decode_frame, write_ack, DecodeConfig, Frame};
use crate::scan::Scanner;
use crate::security::ServerSecurity;
use crate::tls::ServerTls;
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{read_value, EventTime, Str, Value};
use sluice_core::metrics::Counter;
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Input, PluginError, Shutdown};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

pub const DEFAULT_PORT: u16 = 24224;
/// Without `chunk_size_limit`, a frame still may not grow past this (a hostile or broken client must not
/// make us buffer without bound). Fluentd's largest chunk (file buffer `chunk_limit_size`) is 256 MiB.
const HARD_FRAME_LIMIT: u64 = 512 * 1024 * 1024;
const READ_SIZE: usize = 64 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters of what this input refused or dropped (never silent).
#[derive(Debug, Default)]
pub struct InputStats {
    pub frames: Counter,
    pub events: Counter,
    pub oversize_frames: Counter,
    pub malformed_frames: Counter,
    pub invalid_events: Counter,
    pub auth_failures: Counter,
    pub overflow_waits: Counter,
}

#[derive(Debug)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub backlog: Option<u32>,
    pub linger_timeout: u64,
    pub resolve_hostname: bool,
    pub deny_keepalive: bool,
    pub send_keepalive_packet: bool,
    pub chunk_size_warn_limit: Option<u64>,
    pub chunk_size_limit: Option<u64>,
    pub decode: DecodeConfig,
    pub source_address_key: Option<String>,
    pub source_hostname_key: Option<String>,
    pub tag: Option<String>,
    pub add_tag_prefix: Option<String>,
    pub security: Option<ServerSecurity>,
    pub tls: Option<ServerTls>,
}

pub struct ForwardInput {
    cfg: Arc<Config>,
    stats: Arc<InputStats>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

impl ForwardInput {
    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }
}

fn read_config(s: &Element) -> Result<Config, ConfigError> {
    let port = s.int_or("port", DEFAULT_PORT as i64)?;
    let port = u16::try_from(port).map_err(|_| s.error_at("port", format!("port {port} is out of range")))?;
    let backlog = match s.opt_int("backlog")? {
        None => None,
        Some(b) => Some(u32::try_from(b).map_err(|_| s.error_at("backlog", "backlog must be 0 or more"))?),
    };
    let linger = s.int_or("linger_timeout", 0)?;
    let linger_timeout =
        u64::try_from(linger).map_err(|_| s.error_at("linger_timeout", "linger_timeout must be 0 or more"))?;
    let source_hostname_key = s.opt_str("source_hostname_key");
    let resolve_hostname = match (s.attr("resolve_hostname").is_some(), &source_hostname_key) {
        (true, key) => {
            let r = s.bool_or("resolve_hostname", false)?;
            if !r && key.is_some() {
                return Err(s.error_at("resolve_hostname", "resolve_hostname must be true with source_hostname_key"));
            }
            r
        }
        (false, key) => key.is_some(),
    };
    // Accepted for compatibility: Cool.io's loop timeout has no meaning here.
    let _ = s.opt_time("blocking_timeout")?;
    let mut tls = None;
    if let Some(t) = s.section("transport") {
        match t.arg.trim() {
            "" | "tcp" => t.mark_all_used(),
            "tls" => tls = Some(ServerTls::from_section(t)?),
            other => return Err(t.error(format!("unknown transport '{other}' (in_forward supports tcp and tls)"))),
        }
    }
    let security = s.section("security").map(ServerSecurity::from_section).transpose()?;
    Ok(Config {
        bind: s.str_or("bind", "0.0.0.0"),
        port,
        backlog,
        linger_timeout,
        resolve_hostname,
        deny_keepalive: s.bool_or("deny_keepalive", false)?,
        send_keepalive_packet: s.bool_or("send_keepalive_packet", false)?,
        chunk_size_warn_limit: s.opt_size("chunk_size_warn_limit")?,
        chunk_size_limit: s.opt_size("chunk_size_limit")?,
        decode: DecodeConfig { skip_invalid_event: s.bool_or("skip_invalid_event", false)?, ..Default::default() },
        source_address_key: s.opt_str("source_address_key"),
        source_hostname_key,
        tag: s.opt_str("tag"),
        add_tag_prefix: s.opt_str("add_tag_prefix"),
        security,
        tls,
    })
}

pub fn build_input(s: &Element, ctx: &BuildCtx) -> Result<ForwardInput, ConfigError> {
    let cfg = read_config(s)?;
    // Read the certificate files now (not in a dry run), so a bad path is an error with its line.
    let acceptor = crate::tls::configured_acceptor(cfg.tls.as_ref(), s, ctx.dry_run)?;
    Ok(ForwardInput { cfg: Arc::new(cfg), stats: Arc::default(), acceptor })
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(build_input(s, ctx)?))
}

#[async_trait]
impl Input for ForwardInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let addr = crate::net_util::bind_addr(&self.cfg.bind, self.cfg.port)?;
        let listener = crate::net_util::tcp_listener(addr, self.cfg.backlog.unwrap_or(1024))?;
        let udp = UdpSocket::bind(addr).await?;
        tracing::info!(bind = %self.cfg.bind, port = self.cfg.port, "in_forward: listening");
        let hb = tokio::spawn(heartbeat_loop(udp, ctx.shutdown.clone()));
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.wait() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if self.cfg.send_keepalive_packet {
                            let _ = set_keepalive(&stream);
                        }
                        let _ = stream.set_nodelay(true);
                        let conn = Connection {
                            cfg: self.cfg.clone(),
                            stats: self.stats.clone(),
                            emitter: emitter.clone(),
                            shutdown: ctx.shutdown.clone(),
                            peer,
                        };
                        match self.acceptor.clone() {
                            None => { conns.spawn(conn.serve(stream)); }
                            Some(acceptor) => {
                                conns.spawn(async move {
                                    // The TLS handshake in the connection's own task: a slow client must
                                    // not hold up accepting others.
                                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                        Ok(Ok(tls)) => conn.serve(tls).await,
                                        // A bare connect and close is a TCP heartbeat, not an attack.
                                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                                            tracing::debug!(peer = %conn.peer, "in_forward: closed before the TLS handshake");
                                        }
                                        Ok(Err(e)) => {
                                            conn.stats.auth_failures.inc();
                                            tracing::warn!(peer = %conn.peer, error = %e, "in_forward: TLS handshake failed");
                                        }
                                        Err(_) => tracing::warn!(peer = %conn.peer, "in_forward: TLS handshake timed out"),
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "in_forward: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        // Connections stop reading at shutdown; one that is storing a frame finishes (and acks) first.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), async { while conns.join_next().await.is_some() {} }).await;
        hb.abort();
        Ok(())
    }
}

/// Answer every UDP heartbeat with one `\0` byte, as Fluentd does.
async fn heartbeat_loop(udp: UdpSocket, shutdown: Shutdown) {
    let mut buf = [0u8; 128];
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            r = udp.recv_from(&mut buf) => match r {
                Ok((_, from)) => { let _ = udp.send_to(b"\0", from).await; }
                Err(e) => {
                    tracing::debug!(error = %e, "in_forward: heartbeat receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// What to do with the connection after one frame.
enum Next {
    Continue,
    Close,
}

struct Connection {
    cfg: Arc<Config>,
    stats: Arc<InputStats>,
    emitter: Emitter,
    shutdown: Shutdown,
    peer: SocketAddr,
}

impl Connection {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(self, mut stream: S) {
        if let Err(e) = self.serve_inner(&mut stream).await {
            tracing::debug!(peer = %self.peer, error = %e, "in_forward: connection ended");
        }
        let _ = stream.shutdown().await;
    }

    async fn serve_inner<S: AsyncRead + AsyncWrite + Unpin + Send>(&self, stream: &mut S) -> std::io::Result<()> {
        let address = self.peer.ip().to_canonical();
        let hostname = if self.cfg.resolve_hostname {
            tokio::task::spawn_blocking(move || reverse_lookup(address)).await.ok().flatten()
        } else {
            None
        };
        let host = Host { address: address.to_string(), hostname: hostname.unwrap_or_else(|| address.to_string()) };
        // With <security> the server speaks first: HELO with a fresh nonce and user-auth salt.
        let mut auth: Option<([u8; 16], [u8; 16])> = None;
        if self.cfg.security.is_some() {
            let (nonce, salt): ([u8; 16], [u8; 16]) = (rand::random(), rand::random());
            stream.write_all(&ServerSecurity::helo(&nonce, &salt, !self.cfg.deny_keepalive)).await?;
            auth = Some((nonce, salt));
        }
        let limit = self.cfg.chunk_size_limit.unwrap_or(HARD_FRAME_LIMIT).min(HARD_FRAME_LIMIT);
        let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
        let mut scanner = Scanner::default();
        let mut first = true;
        loop {
            // Handle every whole frame already read.
            let mut start = 0;
            loop {
                match scanner.scan(&buf[start..]) {
                    Ok(Some(n)) => {
                        let frame = &buf[start..start + n];
                        start += n;
                        let next = if let Some((nonce, salt)) = auth {
                            auth = None;
                            self.pingpong(stream, frame, &nonce, &salt).await?
                        } else {
                            self.on_frame(stream, frame, &host).await?
                        };
                        if matches!(next, Next::Close) {
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.stats.malformed_frames.inc();
                        tracing::error!(peer = %self.peer, error = %e, "in_forward: not msgpack; closing the connection");
                        return Ok(());
                    }
                }
            }
            buf.drain(..start);
            if buf.len() as u64 > limit {
                self.stats.oversize_frames.inc();
                tracing::error!(
                    peer = %self.peer, limit, read = buf.len(), refused_total = self.stats.oversize_frames.get(),
                    "in_forward: frame is larger than chunk_size_limit; refused, closing the connection"
                );
                return Ok(());
            }
            buf.reserve(READ_SIZE);
            let n = tokio::select! {
                _ = self.shutdown.wait() => return Ok(()),
                r = stream.read_buf(&mut buf) => r?,
            };
            if n == 0 {
                if !buf.is_empty() {
                    self.stats.malformed_frames.inc();
                    tracing::warn!(peer = %self.peer, bytes = buf.len(), "in_forward: connection closed inside a frame");
                }
                return Ok(());
            }
            if first {
                first = false;
                if matches!(buf.first(), Some(b'{' | b'[')) {
                    self.stats.malformed_frames.inc();
                    tracing::error!(peer = %self.peer, "in_forward: JSON frames are not supported (send msgpack)");
                    return Ok(());
                }
            }
        }
    }

    async fn pingpong<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        frame: &[u8],
        nonce: &[u8; 16],
        salt: &[u8; 16],
    ) -> std::io::Result<Next> {
        let Some(sec) = &self.cfg.security else { return Ok(Next::Close) };
        let msg = read_value(frame).map(|(v, _)| v).unwrap_or(Value::Null);
        match sec.check_ping(&msg, self.peer.ip().to_canonical(), salt, nonce) {
            Ok(pong) => {
                stream.write_all(&pong).await?;
                Ok(Next::Continue)
            }
            Err(pong) => {
                self.stats.auth_failures.inc();
                stream.write_all(&pong).await?;
                stream.flush().await?;
                Ok(Next::Close)
            }
        }
    }

    async fn on_frame<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
        host: &Host,
    ) -> std::io::Result<Next> {
        let size = bytes.len() as u64;
        if let Some(limit) = self.cfg.chunk_size_limit {
            if size > limit {
                self.stats.oversize_frames.inc();
                tracing::error!(
                    peer = %self.peer, limit, size, refused_total = self.stats.oversize_frames.get(),
                    "in_forward: input chunk size is larger than 'chunk_size_limit', dropped"
                );
                return Ok(self.after_frame());
            }
        }
        if let Some(warn) = self.cfg.chunk_size_warn_limit {
            if size > warn {
                tracing::warn!(peer = %self.peer, limit = warn, size, "in_forward: input chunk size is larger than 'chunk_size_warn_limit'");
            }
        }
        let mut wait = Duration::from_millis(50);
        loop {
            let frame = match decode_frame(bytes, &self.cfg.decode, EventTime::now()) {
                Ok(f) => f,
                Err(e) => {
                    self.stats.malformed_frames.inc();
                    tracing::warn!(peer = %self.peer, error = %e, size, "in_forward: incoming chunk is broken; dropped");
                    return Ok(self.after_frame());
                }
            };
            if frame.invalid > 0 {
                self.stats.invalid_events.add(frame.invalid as u64);
                tracing::warn!(peer = %self.peer, tag = %frame.tag, skipped = frame.invalid, "in_forward: skipped invalid events");
            }
            let chunk = frame.options.chunk.clone();
            let count = frame.events.len() as u64;
            match self.emit(frame, host).await {
                Ok(()) => {
                    self.stats.frames.inc();
                    self.stats.events.add(count);
                    if let Some(c) = chunk {
                        let mut ack = Vec::with_capacity(64);
                        write_ack(&c, &mut ack);
                        stream.write_all(&ack).await?;
                    }
                    return Ok(self.after_frame());
                }
                Err(EmitError::ShuttingDown) => return Ok(Next::Close),
                Err(e @ EmitError::BufferOverflow { .. }) => {
                    // Keep the frame, stop reading, try again: the sender waits on its socket meanwhile.
                    self.stats.overflow_waits.inc();
                    tracing::warn!(peer = %self.peer, error = %e, "in_forward: buffer full; pausing this connection");
                    tokio::select! {
                        _ = self.shutdown.wait() => return Ok(Next::Close),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn after_frame(&self) -> Next {
        if self.cfg.deny_keepalive {
            Next::Close
        } else {
            Next::Continue
        }
    }

    async fn emit(&self, frame: Frame, host: &Host) -> Result<(), EmitError> {
        let Frame { tag, mut events, .. } = frame;
        let tag = match &self.cfg.tag {
            Some(t) => t.clone(),
            None => tag,
        };
        let tag = match &self.cfg.add_tag_prefix {
            Some(p) => format!("{p}.{tag}"),
            None => tag,
        };
        if self.cfg.source_address_key.is_some() || self.cfg.source_hostname_key.is_some() {
            let addr = Value::Str(Str::from(host.address.as_str()));
            let name = Value::Str(Str::from(host.hostname.as_str()));
            for e in &mut events {
                if let Some(k) = &self.cfg.source_address_key {
                    e.record.insert(k.as_str(), addr.clone());
                }
                if let Some(k) = &self.cfg.source_hostname_key {
                    e.record.insert(k.as_str(), name.clone());
                }
            }
        }
        self.emitter.emit_async(&tag, events).await
    }
}

struct Host {
    address: String,
    hostname: String,
}
