//! What in_tcp, in_udp and in_syslog share: listening (TCP with optional TLS, UDP), cutting the byte
//! stream into messages ([`crate::framing`]), turning each message into events through a [`Handler`], and
//! emitting them with backpressure.
//!
//! Backpressure: when the router refuses a batch (a buffer is full) the connection (or the UDP socket)
//! stops reading, waits and offers the same messages again; the messages stay in the read buffer
//! meanwhile, so nothing is lost and memory stays bounded by the message limit.
use crate::framing::{Decoder, FrameError, Step};
use crate::net_util::{reverse_lookup, set_keepalive};
use crate::security::Network;
use crate::tls::ServerTls;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Events, Map, Str, Value};
use sluice_core::metrics::{Counter, MetricSink, Report};
use sluice_core::plugin::{EmitError, Emitter, ParseError, Parser, Shutdown};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

const READ_SIZE: usize = 64 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A TCP message may not be longer than this when `message_length_limit` does not say (Fluentd has no
/// limit; sluice must not buffer without bound for a client that never sends a delimiter).
pub const HARD_MESSAGE_LIMIT: u64 = 16 * 1024 * 1024;
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Counters of one input (never silent drops).
#[derive(Debug, Default)]
pub struct Stats {
    pub messages: Counter,
    pub events: Counter,
    pub parse_failures: Counter,
    pub oversize: Counter,
    pub truncated: Counter,
    pub framing_errors: Counter,
    pub incomplete: Counter,
    pub denied: Counter,
    pub tls_failures: Counter,
    pub overflow_waits: Counter,
    pub shutdown_drops: Counter,
}

impl Report for Stats {
    fn report(&self, sink: &mut dyn MetricSink) {
        let c = |sink: &mut dyn MetricSink, name: &str, help: &str, v: &Counter| sink.counter(name, help, &[], v.get());
        c(sink, "sluice_socket_input_messages_total", "Messages received.", &self.messages);
        c(sink, "sluice_socket_input_events_total", "Events emitted.", &self.events);
        c(sink, "sluice_socket_input_parse_failures_total", "Messages the parser did not match.", &self.parse_failures);
        c(sink, "sluice_socket_input_oversize_total", "Messages longer than the limit, dropped.", &self.oversize);
        c(sink, "sluice_socket_input_truncated_total", "Datagrams cut at the limit.", &self.truncated);
        c(
            sink,
            "sluice_socket_input_framing_errors_total",
            "Broken framing (connection closed).",
            &self.framing_errors,
        );
        c(sink, "sluice_socket_input_incomplete_total", "Connections closed inside a message.", &self.incomplete);
        c(sink, "sluice_socket_input_denied_total", "Connections refused by <security> <client>.", &self.denied);
        c(sink, "sluice_socket_input_tls_failures_total", "Failed TLS handshakes.", &self.tls_failures);
        c(sink, "sluice_socket_input_overflow_waits_total", "Pauses because a buffer was full.", &self.overflow_waits);
        c(
            sink,
            "sluice_socket_input_shutdown_drops_total",
            "Messages read but not stored at shutdown.",
            &self.shutdown_drops,
        );
    }
}

/// The sender of a message, as records show it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: Value,
    /// The reverse-resolved name (the address when it has none or resolving is off).
    pub hostname: Value,
}

impl Peer {
    fn new(ip: IpAddr, hostname: Option<String>) -> Self {
        let address = Value::Str(Str::from(ip.to_string().as_str()));
        let hostname = match hostname {
            Some(h) => Value::Str(Str::from(h.as_str())),
            None => address.clone(),
        };
        Peer { address, hostname }
    }
}

/// Events of one read, grouped by tag in order of first appearance.
#[derive(Default)]
pub struct Batch {
    groups: Vec<(String, Events)>,
}

impl Batch {
    pub fn push(&mut self, tag: &str, event: Event) {
        match self.groups.iter_mut().find(|(t, _)| t == tag) {
            Some((_, events)) => events.push(event),
            None => self.groups.push((tag.to_string(), vec![event])),
        }
    }
}

/// Turns one message into events.
pub trait Handler: Send + Sync + 'static {
    /// Add the message's events to `out`. `Err` when it could not be parsed (it may still have added an
    /// `unmatched_line` event); the caller counts and logs it.
    fn handle(&self, parser: &mut dyn Parser, msg: &[u8], peer: &Peer, out: &mut Batch) -> Result<(), &'static str>;
}

/// A short, content-free description of a parse error for the log.
pub fn parse_error_kind(e: &ParseError) -> &'static str {
    match e {
        ParseError::NotMatched(_) => "pattern not matched",
        ParseError::Time { .. } => "invalid time",
        ParseError::TooLong { .. } => "too long",
    }
}

/// Add the sender's address and name to a record.
pub fn add_source(record: &mut Map, peer: &Peer, address_key: &Option<String>, hostname_key: &Option<String>) {
    if let Some(k) = address_key {
        record.insert(k.as_str(), peer.address.clone());
    }
    if let Some(k) = hostname_key {
        record.insert(k.as_str(), peer.hostname.clone());
    }
}

/// Text that may not be UTF-8, as a record value.
pub fn text_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(Str::from(s)),
        Err(_) => Value::Bytes(bytes.to_vec()),
    }
}

/// Parse a message with a non-joining parser: the event(s) it gives, with the arrival time when the
/// text carried none.
pub fn parse_events(
    parser: &mut dyn Parser,
    msg: &[u8],
    mut each: impl FnMut(EventTime, Map),
) -> Result<(), ParseError> {
    let first = match parser.parse_bytes(msg)? {
        Some(p) => p,
        None => return Ok(()),
    };
    let now = EventTime::now();
    each(first.time.unwrap_or(now), first.record);
    while let Some(more) = parser.take_extra() {
        let p = more?;
        each(p.time.unwrap_or(now), p.record);
    }
    Ok(())
}

/// `bind` and `port`, and what `source_hostname_key` needs.
#[derive(Debug, Clone)]
pub struct Listen {
    pub bind: String,
    pub port: u16,
}

impl Listen {
    pub fn read(s: &Element, default_port: u16) -> Result<Self, ConfigError> {
        let port = s.int_or("port", i64::from(default_port))?;
        let port = u16::try_from(port).map_err(|_| s.error_at("port", format!("port {port} is out of range")))?;
        Ok(Listen { bind: s.str_or("bind", "0.0.0.0"), port })
    }

    fn addr(&self) -> std::io::Result<SocketAddr> {
        crate::net_util::bind_addr(&self.bind, self.port)
    }
}

/// `resolve_hostname` as Fluentd's server helper reads it: on with `source_hostname_key` unless set,
/// and `false` together with `source_hostname_key` is an error.
pub fn resolve_hostname(s: &Element, hostname_key: &Option<String>) -> Result<bool, ConfigError> {
    match s.opt_bool("resolve_hostname")? {
        Some(false) if hostname_key.is_some() => {
            Err(s.error_at("resolve_hostname", "resolve_hostname must be true with source_hostname_key"))
        }
        Some(r) => Ok(r),
        None => Ok(hostname_key.is_some()),
    }
}

/// `<security>` with `<client host|network>` entries: the addresses allowed to connect (in_tcp).
pub fn read_allowed_clients(s: &Element) -> Result<Option<Vec<Network>>, ConfigError> {
    let Some(sec) = s.section("security") else { return Ok(None) };
    let mut nets = Vec::new();
    for c in sec.sections("client") {
        let net = match (c.opt_str("host"), c.opt_str("network")) {
            (Some(_), Some(_)) => return Err(c.error("both of 'host' and 'network' are specified for client")),
            (None, None) => return Err(c.error("Either of 'host' and 'network' must be specified for client")),
            (Some(h), None) => {
                use std::net::ToSocketAddrs;
                let ip = match h.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => (h.as_str(), 0).to_socket_addrs().ok().and_then(|mut a| a.next()).map(|a| a.ip()),
                };
                let ip = ip.ok_or_else(|| c.error_at("host", format!("host '{h}' cannot be resolved")))?;
                Network::parse(&ip.to_string()).ok_or_else(|| c.error_at("host", "invalid address"))?
            }
            (None, Some(n)) => Network::parse(&n)
                .ok_or_else(|| c.error_at("network", format!("network '{n}' address format is invalid")))?,
        };
        nets.push(net);
    }
    if nets.is_empty() {
        return Err(sec.error("<security> needs at least one <client> section"));
    }
    Ok(Some(nets))
}

/// `<transport PROTO>`: its protocol (`default` without the section) and, for `tls`, its settings.
pub fn read_transport(
    s: &Element,
    allowed: &[&str],
    default: &str,
) -> Result<(String, Option<ServerTls>), ConfigError> {
    let Some(t) = s.section("transport") else { return Ok((default.to_string(), None)) };
    let proto = if t.arg.trim().is_empty() { default.to_string() } else { t.arg.trim().to_ascii_lowercase() };
    if !allowed.contains(&proto.as_str()) {
        return Err(t.error(format!("unknown transport '{proto}' (supported: {})", allowed.join(", "))));
    }
    if proto == "tls" {
        return Ok((proto, Some(ServerTls::from_section(t)?)));
    }
    // Accepted for compatibility: the server helper's generic socket options.
    t.mark_all_used();
    Ok((proto, None))
}

/// How a TCP stream is cut into messages.
#[derive(Debug, Clone)]
pub enum Framing {
    Delimited(Vec<u8>),
    OctetCounted,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub listen: Listen,
    pub framing: Framing,
    pub limit: usize,
    pub send_keepalive_packet: bool,
    pub resolve_hostname: bool,
    pub allowed: Option<Vec<Network>>,
}

/// What every connection and datagram needs to emit.
#[derive(Clone)]
pub struct Sink {
    pub name: &'static str,
    pub handler: Arc<dyn Handler>,
    pub stats: Arc<Stats>,
    pub emitter: Emitter,
    pub shutdown: Shutdown,
}

impl Sink {
    /// Turn `msgs` into events and emit them, waiting while buffers are full. False when shutting down.
    async fn deliver<'a, I>(&self, parser: &mut dyn Parser, msgs: I, peer: &Peer) -> bool
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        let mut done = 0usize;
        let mut first = true;
        let mut wait = Duration::from_millis(50);
        loop {
            let mut batch = Batch::default();
            for m in msgs.clone() {
                if let Err(why) = self.handler.handle(parser, m, peer, &mut batch) {
                    // Parsed again after a full buffer: counted and logged only the first time.
                    if first {
                        self.stats.parse_failures.inc();
                        tracing::warn!(
                            input = self.name,
                            reason = why,
                            bytes = m.len(),
                            failures_total = self.stats.parse_failures.get(),
                            "{}: message not parsed",
                            self.name
                        );
                    }
                }
            }
            if first {
                self.stats.messages.add(msgs.clone().count() as u64);
            }
            first = false;
            let mut result = Ok(());
            for (i, (tag, events)) in batch.groups.into_iter().enumerate() {
                if i < done {
                    continue;
                }
                let n = events.len() as u64;
                match self.emitter.emit_async(&tag, events).await {
                    Ok(()) => {
                        self.stats.events.add(n);
                        done = i + 1;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            match result {
                Ok(()) => return true,
                Err(EmitError::ShuttingDown) => {
                    self.dropped_at_shutdown(msgs.count());
                    return false;
                }
                Err(e @ EmitError::BufferOverflow { .. }) => {
                    self.stats.overflow_waits.inc();
                    tracing::warn!(input = self.name, error = %e, "{}: buffer full; pausing reads", self.name);
                    tokio::select! {
                        _ = self.shutdown.wait() => {
                            self.dropped_at_shutdown(msgs.count());
                            return false;
                        }
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
    }
}

impl Sink {
    /// Stopping while a buffer is full: what was read and not stored is gone (the sender has no ack to
    /// wait for, as with Fluentd); say how much.
    fn dropped_at_shutdown(&self, messages: usize) {
        self.stats.shutdown_drops.add(messages as u64);
        tracing::warn!(
            input = self.name,
            messages,
            "{}: shutting down with a full buffer; messages read but not stored are dropped",
            self.name
        );
    }
}

/// Accept TCP (or TLS) connections until shutdown; each connection reads, frames and delivers.
pub async fn run_stream(
    cfg: Arc<StreamConfig>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    parser: &dyn Parser,
    sink: Sink,
) -> std::io::Result<()> {
    let addr = cfg.listen.addr()?;
    let listener = crate::net_util::tcp_listener(addr, 1024)?;
    tracing::info!(bind = %cfg.listen.bind, port = cfg.listen.port, tls = acceptor.is_some(), "{}: listening (tcp)", sink.name);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = sink.shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let ip = peer.ip().to_canonical();
                    if let Some(allowed) = &cfg.allowed {
                        if !allowed.iter().any(|n| n.contains(ip)) {
                            sink.stats.denied.inc();
                            tracing::warn!(client = %ip, "{}: anonymous client denied", sink.name);
                            continue;
                        }
                    }
                    if cfg.send_keepalive_packet {
                        let _ = set_keepalive(&stream);
                    }
                    let conn = Connection { cfg: cfg.clone(), sink: sink.clone(), parser: parser.new_instance(), ip };
                    match acceptor.clone() {
                        None => { conns.spawn(conn.serve(stream)); }
                        Some(acceptor) => {
                            conns.spawn(async move {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(tls)) => conn.serve(tls).await,
                                    Ok(Err(e)) => {
                                        conn.sink.stats.tls_failures.inc();
                                        tracing::warn!(peer = %conn.ip, error = %e, "{}: TLS handshake failed", conn.sink.name);
                                    }
                                    Err(_) => {
                                        conn.sink.stats.tls_failures.inc();
                                        tracing::warn!(peer = %conn.ip, "{}: TLS handshake timed out", conn.sink.name);
                                    }
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{}: accept failed", sink.name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Connections stop reading at shutdown; one that is storing a batch finishes first.
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while conns.join_next().await.is_some() {} }).await;
    Ok(())
}

struct Connection {
    cfg: Arc<StreamConfig>,
    sink: Sink,
    parser: Box<dyn Parser>,
    ip: IpAddr,
}

impl Connection {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(mut self, mut stream: S) {
        if let Err(e) = self.serve_inner(&mut stream).await {
            tracing::debug!(peer = %self.ip, error = %e, "{}: connection ended", self.sink.name);
        }
        let _ = stream.shutdown().await;
    }

    async fn serve_inner<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        let ip = self.ip;
        let hostname = if self.cfg.resolve_hostname {
            tokio::task::spawn_blocking(move || reverse_lookup(ip)).await.ok().flatten()
        } else {
            None
        };
        let peer = Peer::new(ip, hostname);
        let mut decoder = match &self.cfg.framing {
            Framing::Delimited(d) => Decoder::delimited(d, self.cfg.limit),
            Framing::OctetCounted => Decoder::octet_counted(self.cfg.limit),
        };
        let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        loop {
            let mut pos = 0;
            let mut broken = false;
            loop {
                match decoder.next(&buf[pos..]) {
                    Ok(Step::Message { start, end, used }) => {
                        ranges.push((pos + start, pos + end));
                        pos += used;
                    }
                    Ok(Step::Skip { used, oversize }) => {
                        if let Some(size) = oversize {
                            self.sink.stats.oversize.inc();
                            tracing::warn!(
                                peer = %ip, limit = self.cfg.limit, size, dropped_total = self.sink.stats.oversize.get(),
                                "{}: message larger than message_length_limit; dropped", self.sink.name
                            );
                        }
                        pos += used;
                    }
                    Ok(Step::NeedMore) => break,
                    Err(FrameError::BadLength) => {
                        self.sink.stats.framing_errors.inc();
                        tracing::warn!(peer = %ip, "{}: octet-counted frame without a valid length; closing the connection", self.sink.name);
                        broken = true;
                        break;
                    }
                }
            }
            if !ranges.is_empty() {
                let msgs = ranges.iter().map(|&(a, b)| &buf[a..b]);
                if !self.sink.deliver(self.parser.as_mut(), msgs, &peer).await {
                    return Ok(());
                }
                ranges.clear();
            }
            buf.drain(..pos);
            if broken {
                return Ok(());
            }
            buf.reserve(READ_SIZE);
            let n = tokio::select! {
                _ = self.sink.shutdown.wait() => return Ok(()),
                r = stream.read_buf(&mut buf) => r?,
            };
            if n == 0 {
                if decoder.mid_frame(&buf) {
                    self.sink.stats.incomplete.inc();
                    tracing::warn!(peer = %ip, bytes = buf.len(), "{}: connection closed inside a message; its bytes are dropped", self.sink.name);
                }
                return Ok(());
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatagramConfig {
    pub listen: Listen,
    pub limit: usize,
    pub remove_newline: bool,
    pub resolve_hostname: bool,
    pub receive_buffer_size: Option<u64>,
}

/// Receive datagrams until shutdown: one datagram is one message, cut at `limit` bytes (as Fluentd reads
/// at most that many).
pub async fn run_datagram(cfg: DatagramConfig, mut parser: Box<dyn Parser>, sink: Sink) -> std::io::Result<()> {
    let addr = cfg.listen.addr()?;
    let udp = UdpSocket::bind(addr).await?;
    if let Some(size) = cfg.receive_buffer_size {
        set_receive_buffer(&udp, size);
    }
    tracing::info!(bind = %cfg.listen.bind, port = cfg.listen.port, "{}: listening (udp)", sink.name);
    // One byte more than the limit tells a cut datagram from one that fits exactly.
    let mut buf = vec![0u8; cfg.limit.saturating_add(1)];
    let mut names: HashMap<IpAddr, Peer> = HashMap::new();
    loop {
        let (n, from) = tokio::select! {
            _ = sink.shutdown.wait() => return Ok(()),
            r = udp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "{}: receive failed", sink.name);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        };
        let mut msg = &buf[..n];
        if n > cfg.limit {
            sink.stats.truncated.inc();
            tracing::warn!(
                limit = cfg.limit,
                truncated_total = sink.stats.truncated.get(),
                "{}: datagram longer than message_length_limit; cut at the limit",
                sink.name
            );
            msg = &buf[..cfg.limit];
        }
        if cfg.remove_newline {
            msg = chomp(msg);
        }
        let ip = from.ip().to_canonical();
        let peer = match names.get(&ip) {
            Some(p) => p.clone(),
            None => {
                let hostname = if cfg.resolve_hostname {
                    tokio::task::spawn_blocking(move || reverse_lookup(ip)).await.ok().flatten()
                } else {
                    None
                };
                let p = Peer::new(ip, hostname);
                if names.len() >= 4096 {
                    names.clear();
                }
                names.insert(ip, p.clone());
                p
            }
        };
        if !sink.deliver(parser.as_mut(), std::iter::once(msg), &peer).await {
            return Ok(());
        }
    }
}

/// Ruby's `chomp`: one trailing `\r\n`, `\n` or `\r`.
pub fn chomp(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n").or_else(|| b.strip_suffix(b"\n")).or_else(|| b.strip_suffix(b"\r")).unwrap_or(b)
}

fn set_receive_buffer(sock: &UdpSocket, size: u64) {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid fd and a pointer to a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot set receive_buffer_size");
    }
}

#[cfg(test)]
mod tests {
    use super::chomp;

    #[test]
    fn chomps_one_newline() {
        assert_eq!(chomp(b"a\r\n"), b"a");
        assert_eq!(chomp(b"a\n\n"), b"a\n");
        assert_eq!(chomp(b"a"), b"a");
    }
}
