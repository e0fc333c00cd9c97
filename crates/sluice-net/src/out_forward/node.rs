//! One `<server>` of out_forward: its address (with the DNS cache), its health (heartbeats and the
//! failure detector) and its connections (the forward handshake, keepalive reuse).
use super::conn::Conn;
use super::failure::FailureDetector;
use super::{Config, HeartbeatType};
use crate::scan::Scanner;
use crate::security::ClientSecurity;
use parking_lot::Mutex;
use sluice_core::event::{read_value, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub name: String,
    pub port: u16,
    pub weight: u32,
    pub standby: bool,
    pub security: Option<ClientSecurity>,
    /// The name the server's TLS certificate must carry (`name`, else `host`).
    pub tls_name: String,
}

pub fn now_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

struct State {
    available: bool,
    failure: FailureDetector,
    resolved: Option<(Vec<SocketAddr>, Instant)>,
    rr: usize,
    idle: Option<(Conn, Instant)>,
}

pub struct Node {
    pub server: Server,
    state: Mutex<State>,
}

/// Read exactly one msgpack object from `s` (the handshake and ack answers), within `timeout`.
async fn read_object(s: &mut Conn, timeout: Duration) -> Result<Value, String> {
    let mut buf = Vec::with_capacity(512);
    let mut scanner = Scanner::default();
    let read = async {
        loop {
            if let Some(n) = scanner.scan(&buf).map_err(|e| e.to_string())? {
                return read_value(&buf[..n]).map(|(v, _)| v).map_err(|e| e.to_string());
            }
            if buf.len() > 64 * 1024 {
                return Err("answer is too large".to_string());
            }
            buf.reserve(512);
            if s.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed by the server".to_string());
            }
        }
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| "timed out waiting for the server's answer".to_string())?
}

impl Node {
    pub fn new(server: Server, cfg: &Config) -> Self {
        let failure =
            FailureDetector::new(cfg.heartbeat_interval.as_secs_f64(), cfg.hard_timeout.as_secs_f64(), now_f64());
        Node { server, state: Mutex::new(State { available: true, failure, resolved: None, rr: 0, idle: None }) }
    }

    pub fn available(&self, cfg: &Config) -> bool {
        cfg.heartbeat_type == HeartbeatType::None || self.state.lock().available
    }

    pub fn disable(&self, cfg: &Config) {
        if cfg.heartbeat_type == HeartbeatType::None {
            return;
        }
        let mut st = self.state.lock();
        st.available = false;
        st.resolved = None;
        st.idle = None;
    }

    /// The address to connect to: cached per `expire_dns_cache`, rotated with `dns_round_robin`.
    pub async fn address(&self, cfg: &Config) -> Result<SocketAddr, String> {
        {
            let mut st = self.state.lock();
            let fresh = match (&st.resolved, cfg.expire_dns_cache) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((_, at)), Some(ttl)) => at.elapsed() < ttl,
            };
            if fresh {
                st.rr = st.rr.wrapping_add(1);
                let rr = st.rr;
                if let Some((addrs, _)) = &st.resolved {
                    if !addrs.is_empty() {
                        let i = if cfg.dns_round_robin { rr % addrs.len() } else { 0 };
                        return Ok(addrs[i]);
                    }
                }
            }
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.server.host.as_str(), self.server.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.server.host))?
            .collect();
        let first = *addrs.first().ok_or_else(|| format!("{} has no address", self.server.host))?;
        let mut st = self.state.lock();
        let pick = if cfg.dns_round_robin { addrs[st.rr % addrs.len()] } else { first };
        st.resolved = Some((addrs, Instant::now()));
        Ok(pick)
    }

    /// A connection ready for frames: reused (keepalive) or new, handshake done.
    pub async fn connect(&self, cfg: &Config) -> Result<Conn, String> {
        if cfg.keepalive {
            let idle = self.state.lock().idle.take();
            if let Some((s, since)) = idle {
                let expired = cfg.keepalive_timeout.is_some_and(|t| since.elapsed() >= t);
                // A connection the server closed reads as EOF at once; never write a chunk into it.
                let mut probe = [0u8; 1];
                let alive =
                    matches!(s.tcp().try_read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
                if !expired && alive {
                    return Ok(s);
                }
            }
        }
        let addr = self.address(cfg).await?;
        let connect_timeout = cfg.connect_timeout.unwrap_or(cfg.send_timeout);
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {} timed out", self.server.name))?
            .map_err(|e| format!("cannot connect to {} ({addr}): {e}", self.server.name))?;
        let _ = tcp.set_nodelay(true);
        if cfg.send_keepalive_packet {
            let _ = crate::net_util::set_keepalive(&tcp);
        }
        let mut s = match &cfg.tls {
            None => Conn::Plain(tcp),
            Some(tls) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.server.tls_name.clone())
                    .map_err(|e| format!("{}: not a valid TLS server name: {e}", self.server.tls_name))?;
                let t = tokio::time::timeout(connect_timeout, tls.connector.connect(name, tcp))
                    .await
                    .map_err(|_| format!("TLS handshake with {} timed out", self.server.name))?
                    .map_err(|e| format!("TLS handshake with {} failed: {e}", self.server.name))?;
                Conn::Tls(Box::new(t))
            }
        };
        if let Some(sec) = &self.server.security {
            self.handshake(&mut s, sec, cfg).await?;
        }
        Ok(s)
    }

    async fn handshake(&self, s: &mut Conn, sec: &ClientSecurity, cfg: &Config) -> Result<(), String> {
        let helo = read_object(s, cfg.send_timeout).await?;
        let helo = ClientSecurity::parse_helo(&helo).ok_or("the server did not send a valid HELO")?;
        let salt: [u8; 16] = rand::random();
        let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
        tokio::time::timeout(cfg.send_timeout, s.write_all(&sec.ping(&helo, &salt)))
            .await
            .map_err(|_| "sending PING timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let pong = read_object(s, cfg.send_timeout).await?;
        sec.check_pong(&pong, &helo, &salt).map_err(|e| format!("{}: {e}", self.server.name))
    }

    /// Send one frame; with `ack` wait for `{"ack": ack}`. The connection is kept for reuse with keepalive.
    pub async fn send(&self, cfg: &Config, frame: &[u8], ack: Option<&str>) -> Result<(), SendError> {
        let mut s = self.connect(cfg).await.map_err(SendError::Connect)?;
        tokio::time::timeout(cfg.send_timeout, async {
            s.write_all(frame).await?;
            s.flush().await
        })
        .await
        .map_err(|_| SendError::Send(format!("send to {} timed out", self.server.name)))?
        .map_err(|e| SendError::Send(format!("send to {} failed: {e}", self.server.name)))?;
        if let Some(want) = ack {
            let got = read_object(&mut s, cfg.ack_response_timeout)
                .await
                .map_err(|e| SendError::Ack(format!("no ack from {}: {e}", self.server.name)))?;
            let ok = match &got {
                Value::Map(m) => m.get("ack").is_some_and(|a| match a {
                    Value::Str(x) => x.as_str() == want,
                    Value::Bytes(b) => b.as_slice() == want.as_bytes(),
                    _ => false,
                }),
                _ => false,
            };
            if !ok {
                return Err(SendError::Ack(format!("ack from {} does not match the chunk sent", self.server.name)));
            }
        }
        if cfg.keepalive {
            self.state.lock().idle = Some((s, Instant::now()));
        } else {
            let _ = s.shutdown().await;
        }
        Ok(())
    }

    /// One heartbeat round for this node; returns true when its availability changed.
    pub async fn heartbeat(&self, cfg: &Config) -> bool {
        let ok = match cfg.heartbeat_type {
            HeartbeatType::None => return false,
            HeartbeatType::Transport | HeartbeatType::Tcp => match self.address(cfg).await {
                Ok(addr) => matches!(
                    tokio::time::timeout(
                        cfg.heartbeat_interval.max(Duration::from_millis(100)),
                        TcpStream::connect(addr)
                    )
                    .await,
                    Ok(Ok(_))
                ),
                Err(_) => false,
            },
            HeartbeatType::Udp => self.udp_heartbeat(cfg).await,
        };
        let now = now_f64();
        let mut st = self.state.lock();
        if ok {
            st.failure.add(now);
            if !st.available && st.failure.sample_size() > cfg.recover_sample_size() {
                st.available = true;
                tracing::warn!(server = %self.server.name, "out_forward: recovered forwarding server");
                return true;
            }
        }
        // Fluentd's tick: a detached node's detector restarts after hard_timeout; an attached one is
        // detached by hard_timeout or phi.
        if !st.available {
            if st.failure.hard_timeout(now) {
                st.failure.clear();
            }
            return false;
        }
        let phi = st.failure.phi(now);
        if st.failure.hard_timeout(now) || (cfg.phi_failure_detector && phi > cfg.phi_threshold) {
            tracing::warn!(server = %self.server.name, phi, "out_forward: detached forwarding server");
            st.available = false;
            st.resolved = None;
            st.idle = None;
            st.failure.clear();
            return true;
        }
        false
    }

    async fn udp_heartbeat(&self, cfg: &Config) -> bool {
        let Ok(addr) = self.address(cfg).await else { return false };
        let bind: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let Ok(sock) = UdpSocket::bind(bind).await else { return false };
        if sock.send_to(b"\0", addr).await.is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(cfg.heartbeat_interval.max(Duration::from_millis(100)), sock.recv_from(&mut buf)).await,
            Ok(Ok((_, from))) if from.ip() == addr.ip()
        )
    }
}

#[derive(Debug)]
pub enum SendError {
    Connect(String),
    Send(String),
    Ack(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(m) | SendError::Send(m) | SendError::Ack(m) => f.write_str(m),
        }
    }
}
