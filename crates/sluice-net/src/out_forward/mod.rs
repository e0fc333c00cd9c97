//! `<match> @type forward`: Fluentd's out_forward on the buffer engine. Each chunk becomes one
//! PackedForward frame (CompressedPackedForward with `compress gzip`) sent to one healthy `<server>`,
//! chosen by weight; with `require_ack_response` the chunk is done only when the server acknowledged it,
//! otherwise the engine retries it (at least once).
mod conn;
mod failure;
mod node;

use crate::protocol::write_packed_forward;
use crate::scan::object_len;
use crate::security::ClientSecurity;
use async_trait::async_trait;
use base64::Engine as _;
use node::{Node, SendError, Server};
use parking_lot::Mutex;
use sluice_core::buffer::{BufferDefaults, BufferedOutput, Chunk, ChunkKeys, ChunkWriter, WriteError};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{decode_entry, read_time, write_map, Events};
use sluice_core::plugin::{BuildCtx, EmitError, Output, OutputMetrics, PluginError, Shutdown};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatType {
    Transport,
    Tcp,
    Udp,
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub send_timeout: Duration,
    pub connect_timeout: Option<Duration>,
    pub heartbeat_type: HeartbeatType,
    pub heartbeat_interval: Duration,
    pub recover_wait: Duration,
    pub hard_timeout: Duration,
    pub phi_threshold: f64,
    pub phi_failure_detector: bool,
    pub require_ack_response: bool,
    pub ack_response_timeout: Duration,
    pub expire_dns_cache: Option<Duration>,
    pub dns_round_robin: bool,
    pub keepalive: bool,
    pub keepalive_timeout: Option<Duration>,
    pub send_keepalive_packet: bool,
    pub verify_connection_at_startup: bool,
    pub gzip: bool,
    pub time_as_integer: bool,
    pub tls: Option<crate::tls::ClientTls>,
}

impl Config {
    /// Successful heartbeats a detached node needs before it is used again (`recover_wait` worth).
    pub fn recover_sample_size(&self) -> usize {
        let hb = self.heartbeat_interval.as_secs_f64();
        if hb <= 0.0 {
            return 0;
        }
        (self.recover_wait.as_secs_f64() / hb) as usize
    }
}

fn duration(s: &Element, key: &str, default: f64) -> Result<Duration, ConfigError> {
    let v = s.time_or(key, default)?;
    Duration::try_from_secs_f64(v).map_err(|_| s.error_at(key, format!("'{key}' must be a non-negative time")))
}

fn opt_duration(s: &Element, key: &str) -> Result<Option<Duration>, ConfigError> {
    match s.opt_time(key)? {
        None => Ok(None),
        Some(v) => Duration::try_from_secs_f64(v)
            .map(Some)
            .map_err(|_| s.error_at(key, format!("'{key}' must be a non-negative time"))),
    }
}

fn read_config(s: &Element, read_files: bool) -> Result<Config, ConfigError> {
    let heartbeat_type = match s.enum_or("heartbeat_type", &["transport", "tcp", "udp", "none"], "transport")?.as_str()
    {
        "tcp" => HeartbeatType::Tcp,
        "udp" => HeartbeatType::Udp,
        "none" => HeartbeatType::None,
        _ => HeartbeatType::Transport,
    };
    let dns_round_robin = s.bool_or("dns_round_robin", false)?;
    if dns_round_robin && heartbeat_type == HeartbeatType::Udp {
        return Err(s.error_at(
            "dns_round_robin",
            "forward output heartbeat type must be 'transport' or 'none' to use dns_round_robin option",
        ));
    }
    let send_timeout = duration(s, "send_timeout", 60.0)?;
    let ack_response_timeout = duration(s, "ack_response_timeout", 190.0)?;
    if ack_response_timeout < Duration::from_secs(1) {
        return Err(s.error_at("ack_response_timeout", "ack_response_timeout must be a positive integer"));
    }
    let phi_threshold = s.int_or("phi_threshold", 16)?;
    let tls = crate::tls::ClientTls::from_plugin(s, read_files)?;
    if let Some(t) = s.section("transport") {
        return Err(t.error("out_forward takes 'transport tls' and tls_* parameters, not a <transport> section"));
    }
    // Accepted for compatibility: sluice reads answers as they arrive, and resolves names at each
    // connection (ignore_network_errors_at_startup is therefore always in effect).
    let _ = s.opt_int("read_interval_msec")?;
    let _ = s.opt_size("read_length")?;
    let _ = s.bool_or("ignore_network_errors_at_startup", false)?;
    Ok(Config {
        send_timeout,
        connect_timeout: opt_duration(s, "connect_timeout")?,
        heartbeat_type,
        heartbeat_interval: duration(s, "heartbeat_interval", 1.0)?,
        recover_wait: duration(s, "recover_wait", 10.0)?,
        hard_timeout: duration(s, "hard_timeout", 60.0)?,
        phi_threshold: phi_threshold as f64,
        phi_failure_detector: s.bool_or("phi_failure_detector", true)?,
        require_ack_response: s.bool_or("require_ack_response", false)?,
        ack_response_timeout,
        expire_dns_cache: opt_duration(s, "expire_dns_cache")?,
        dns_round_robin,
        keepalive: s.bool_or("keepalive", false)?,
        keepalive_timeout: opt_duration(s, "keepalive_timeout")?,
        send_keepalive_packet: s.bool_or("send_keepalive_packet", false)?,
        verify_connection_at_startup: s.bool_or("verify_connection_at_startup", false)?,
        gzip: s.enum_or("compress", &["text", "gzip"], "text")? == "gzip",
        time_as_integer: s.bool_or("time_as_integer", false)?,
        tls,
    })
}

fn read_servers(s: &Element) -> Result<Vec<Server>, ConfigError> {
    let security = s.section("security").map(ClientSecurity::from_section).transpose()?;
    let mut out = Vec::new();
    for e in s.sections("server") {
        let host = e.required_str("host")?;
        let port = e.int_or("port", crate::in_forward::DEFAULT_PORT as i64)?;
        let port = u16::try_from(port).map_err(|_| e.error_at("port", format!("port {port} is out of range")))?;
        let weight = e.int_or("weight", 60)?;
        let weight = u32::try_from(weight).map_err(|_| e.error_at("weight", "weight must be 0 or more"))?;
        let security = security.clone().map(|mut sec| {
            if let Some(k) = e.opt_str("shared_key") {
                sec.shared_key = k;
            }
            if let Some(u) = e.opt_str("username") {
                sec.username = u;
            }
            if let Some(p) = e.opt_str("password") {
                sec.password = p;
            }
            sec
        });
        let name = e.opt_str("name");
        out.push(Server {
            tls_name: name.clone().unwrap_or_else(|| host.clone()),
            name: name.unwrap_or_else(|| format!("{host}:{port}")),
            host,
            port,
            weight,
            standby: e.bool_or("standby", false)?,
            security,
        });
    }
    if out.is_empty() {
        return Err(s.error("forward output plugin requires at least one <server> is required"));
    }
    Ok(out)
}

/// The servers and how the next one is picked.
pub struct Nodes {
    cfg: Config,
    nodes: Vec<Node>,
    rr: AtomicUsize,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Nodes {
    /// Fluentd's weight array: regular nodes by weight; standby nodes stand in for lost weight.
    fn weighted(&self) -> Vec<usize> {
        let (standby, mut regular): (Vec<usize>, Vec<usize>) =
            (0..self.nodes.len()).partition(|&i| self.nodes[i].server.standby);
        let mut lost: i64 = regular
            .iter()
            .filter(|&&i| !self.nodes[i].available(&self.cfg))
            .map(|&i| self.nodes[i].server.weight as i64)
            .sum();
        if lost > 0 {
            for i in standby {
                if self.nodes[i].available(&self.cfg) {
                    tracing::debug!(server = %self.nodes[i].server.name, "out_forward: using standby node");
                    regular.push(i);
                    lost -= self.nodes[i].server.weight as i64;
                    if lost <= 0 {
                        break;
                    }
                }
            }
        }
        let g = regular.iter().fold(0, |g, &i| gcd(g, self.nodes[i].server.weight)).max(1);
        let mut out = Vec::new();
        for &i in &regular {
            // Bounded: a weight is at most u32::MAX / gcd, but a typo such as 6000000 must not cost memory.
            let n = (self.nodes[i].server.weight / g).min(1000);
            out.extend(std::iter::repeat_n(i, n as usize));
        }
        out
    }

    /// Send `frame` to one healthy node, trying the others when it fails (Fluentd's select_a_healthy_node).
    async fn send(&self, frame: &[u8], ack: Option<&str>) -> Result<(), WriteError> {
        let order = self.weighted();
        let mut last_error: Option<String> = None;
        let mut tried = vec![false; self.nodes.len()];
        for _ in 0..order.len() {
            let pos = self.rr.fetch_add(1, Ordering::Relaxed).wrapping_add(1) % order.len();
            let i = order[pos];
            if tried[i] || !self.nodes[i].available(&self.cfg) {
                continue;
            }
            tried[i] = true;
            match self.nodes[i].send(&self.cfg, frame, ack).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(server = %self.nodes[i].server.name, error = %e, "out_forward: sending a chunk failed");
                    if matches!(e, SendError::Ack(_)) {
                        // No (or a wrong) answer: Fluentd regards the node as unavailable.
                        self.nodes[i].disable(&self.cfg);
                    }
                    last_error = Some(e.to_string());
                }
            }
        }
        Err(WriteError::retryable(last_error.unwrap_or_else(|| "out_forward: no nodes are available".to_string())))
    }

    async fn heartbeat_loop(self: Arc<Self>, stop: Shutdown) {
        if self.cfg.heartbeat_type == HeartbeatType::None {
            return;
        }
        let mut tick = tokio::time::interval(self.cfg.heartbeat_interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait() => return,
                _ = tick.tick() => {}
            }
            let rounds = self.nodes.iter().map(|n| n.heartbeat(&self.cfg));
            for changed in futures_join(rounds).await {
                let _ = changed;
            }
        }
    }
}

/// Run the futures concurrently and collect their results (a dead node must not delay the others).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(futs.len());
    let mut pending: Vec<_> = futs.into_iter().map(Some).collect();
    // Poll all of them together.
    std::future::poll_fn(|cx| {
        let mut done = true;
        for f in pending.iter_mut() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out.push(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

/// Turns a chunk into its PackedForward frame and sends it.
pub struct ForwardWriter {
    nodes: Arc<Nodes>,
}

/// The chunk's entries without their tag: `[tag, time, record]` → `[time, record]` (copied byte for
/// byte, no decoding, unless times are rewritten as integers). Returns the stream and the entry count.
pub fn packed_entries(data: &[u8], time_as_integer: bool) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0;
    let mut count = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let n = object_len(rest).ok().flatten().ok_or("corrupt chunk entry")?;
        let entry = &rest[..n];
        if entry.first() != Some(&0x93) {
            return Err("chunk entry is not [tag, time, record]".into());
        }
        let tag_len = object_len(&entry[1..]).ok().flatten().ok_or("corrupt chunk entry")?;
        let body = &entry[1 + tag_len..];
        out.push(0x92);
        let (t, used) = read_time(body).map_err(|e| e.to_string())?;
        if time_as_integer {
            let _ = rmp::encode::write_sint(&mut out, t.sec);
        } else {
            out.extend_from_slice(&body[..used]);
        }
        let record = &body[used..];
        if matches!(record.first(), Some(0xc4..=0xc6)) {
            // A record buffered as JSON text (by another output's buffer at this path): sent as a map.
            let (_, _, record, _) = decode_entry(entry).map_err(|e| e.to_string())?;
            write_map(&record, &mut out);
        } else {
            out.extend_from_slice(record);
        }
        pos += n;
        count += 1;
    }
    Ok((out, count))
}

/// Ruby's `Base64.encode64` of the chunk id: standard alphabet plus a trailing newline.
pub fn chunk_option(id: &[u8; 16]) -> String {
    let mut s = base64::engine::general_purpose::STANDARD.encode(id);
    s.push('\n');
    s
}

#[async_trait]
impl ChunkWriter for ForwardWriter {
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        if chunk.data.is_empty() {
            return Ok(());
        }
        let tag = chunk.metadata.tag.clone().unwrap_or_default();
        let cfg = &self.nodes.cfg;
        let (entries, count) = packed_entries(&chunk.data, cfg.time_as_integer).map_err(WriteError::unrecoverable)?;
        let entries = if cfg.gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(entries.len() / 4 + 64),
                flate2::Compression::default(),
            );
            enc.write_all(&entries).and_then(|_| enc.finish()).map_err(|e| WriteError::retryable(e.to_string()))?
        } else {
            entries
        };
        let ack = cfg.require_ack_response.then(|| chunk_option(&chunk.id));
        let mut frame = Vec::with_capacity(entries.len() + tag.len() + 96);
        write_packed_forward(&tag, &entries, count, cfg.gzip, ack.as_deref(), &mut frame);
        self.nodes.send(&frame, ack.as_deref()).await
    }
}

/// The output: the buffer engine plus the heartbeat task and the start-up check.
pub struct ForwardOutput {
    engine: BufferedOutput,
    nodes: Arc<Nodes>,
    stop: Shutdown,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let cfg = read_config(s, !ctx.dry_run)?;
    let servers = read_servers(s)?;
    let defaults = BufferDefaults { chunk_keys: "tag", ..Default::default() };
    let keys = ChunkKeys::from_section(s.section("buffer"), &defaults)?;
    if !keys.tag {
        return Err(s.section("buffer").unwrap_or(s).error("buffer chunk key must include 'tag' for forward output"));
    }
    let nodes = Arc::new(Nodes {
        nodes: servers.into_iter().map(|sv| Node::new(sv, &cfg)).collect(),
        cfg,
        rr: AtomicUsize::new(rand::random::<u32>() as usize),
    });
    for n in &nodes.nodes {
        tracing::debug!(server = %n.server.name, weight = n.server.weight, standby = n.server.standby, "out_forward: adding forwarding server");
    }
    let writer = Arc::new(ForwardWriter { nodes: nodes.clone() });
    let engine = BufferedOutput::build_engine(s, ctx, defaults, writer)?;
    Ok(Arc::new(ForwardOutput { engine, nodes, stop: Shutdown::new(), heartbeat: Mutex::new(None) }))
}

#[async_trait]
impl Output for ForwardOutput {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        self.engine.emit(tag, events)
    }

    async fn start(&self) -> Result<(), PluginError> {
        if self.nodes.cfg.verify_connection_at_startup {
            for n in &self.nodes.nodes {
                let s = n.connect(&self.nodes.cfg).await.map_err(|e| {
                    PluginError::Other(format!("out_forward: connection setting error for {}: {e}", n.server.name))
                })?;
                drop(s);
            }
        }
        let task =
            tokio::spawn(tracing::Instrument::in_current_span(self.nodes.clone().heartbeat_loop(self.stop.clone())));
        *self.heartbeat.lock() = Some(task);
        self.engine.start().await
    }

    async fn shutdown(&self) {
        self.engine.shutdown().await;
        self.stop.trigger();
        let task = self.heartbeat.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    fn flush_now(&self) {
        self.engine.flush_now()
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        self.engine.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_option_is_ruby_encode64() {
        // From the packed-ack capture: Base64.encode64 of the 16-byte id, with its newline.
        let id = base64::engine::general_purpose::STANDARD.decode("ZhEK97rptquOgHkU8yKz3Q==").unwrap();
        let id: [u8; 16] = id.try_into().unwrap();
        assert_eq!(chunk_option(&id), "ZhEK97rptquOgHkU8yKz3Q==\n");
    }
}
