//! `<security>`: the forward protocol's shared-key handshake (HELO, PING, PONG) and user authentication,
//! for both ends. Digests are hex SHA-512 over concatenations, as the specification defines:
//! PING `sha512(salt + client_hostname + nonce + shared_key)`, password `sha512(auth_salt + user + pass)`,
//! PONG `sha512(salt + server_hostname + nonce + shared_key)`.
use sha2::{Digest, Sha512};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Str, Value};
use std::net::{IpAddr, ToSocketAddrs};

pub fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn s(v: &str) -> Value {
    Value::Str(Str::from(v))
}

fn bytes_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Str(s) => Some(s.as_bytes()),
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

/// Encode a value as msgpack.
fn pack(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    sluice_core::event::write_value(v, &mut out);
    out
}

/// An address range of a `<client>`: `network 10.0.0.0/8` or `host` (resolved once, at start).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        let (a, b, bits): (u128, u128, u32) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - self.prefix as u32;
        if shift >= 128 {
            return true;
        }
        (a >> shift) == (b >> shift)
    }
}

#[derive(Debug, Clone)]
pub struct ClientRule {
    pub network: Network,
    pub shared_key: Option<String>,
    pub users: Vec<String>,
}

/// in_forward's `<security>`.
#[derive(Debug, Clone)]
pub struct ServerSecurity {
    pub self_hostname: String,
    pub shared_key: String,
    pub user_auth: bool,
    pub allow_anonymous_source: bool,
    pub users: Vec<(String, String)>,
    pub clients: Vec<ClientRule>,
}

/// The `<user>` sections of a `<security>`.
fn read_users(sec: &Element) -> Result<Vec<(String, String)>, ConfigError> {
    sec.sections("user").map(|u| Ok((u.required_str("username")?, u.required_str("password")?))).collect()
}

impl ServerSecurity {
    pub fn from_section(sec: &Element) -> Result<Self, ConfigError> {
        let user_auth = sec.bool_or("user_auth", false)?;
        let allow_anonymous_source = sec.bool_or("allow_anonymous_source", true)?;
        let users = read_users(sec)?;
        if user_auth && users.is_empty() {
            return Err(sec.error("<user> sections required if user_auth enabled"));
        }
        let mut clients = Vec::new();
        for c in sec.sections("client") {
            let host = c.opt_str("host");
            let network = c.opt_str("network");
            let net = match (host, network) {
                (Some(_), Some(_)) => return Err(c.error("both of 'host' and 'network' are specified for client")),
                (None, None) => return Err(c.error("Either of 'host' and 'network' must be specified for client")),
                (Some(h), None) => {
                    let ip = match h.parse::<IpAddr>() {
                        Ok(ip) => Some(ip),
                        Err(_) => (h.as_str(), 0).to_socket_addrs().ok().and_then(|mut a| a.next()).map(|a| a.ip()),
                    };
                    let ip = ip.ok_or_else(|| c.error_at("host", format!("host '{h}' cannot be resolved")))?;
                    Network { addr: ip, prefix: if ip.is_ipv4() { 32 } else { 128 } }
                }
                (None, Some(n)) => Network::parse(&n)
                    .ok_or_else(|| c.error_at("network", format!("network '{n}' address format is invalid")))?,
            };
            clients.push(ClientRule {
                network: net,
                shared_key: c.opt_str("shared_key"),
                users: c.array_or_empty("users")?,
            });
        }
        if !allow_anonymous_source && clients.is_empty() {
            return Err(sec.error("<client> sections required if allow_anonymous_source disabled"));
        }
        Ok(ServerSecurity {
            self_hostname: sec.required_str("self_hostname")?,
            shared_key: sec.required_str("shared_key")?,
            user_auth,
            allow_anonymous_source,
            users,
            clients,
        })
    }

    /// `["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}]`.
    pub fn helo(nonce: &[u8; 16], auth: &[u8; 16], keepalive: bool) -> Vec<u8> {
        let mut opts = sluice_core::event::Map::new();
        opts.insert("nonce", Value::Bytes(nonce.to_vec()));
        opts.insert("auth", Value::Bytes(auth.to_vec()));
        opts.insert("keepalive", Value::Bool(keepalive));
        pack(&Value::Array(vec![s("HELO"), Value::Map(opts)]))
    }

    /// Check a PING; `Ok` carries the PONG to send, `Err` the failing PONG (the server then closes).
    pub fn check_ping(&self, msg: &Value, remote: IpAddr, auth_salt: &[u8], nonce: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        let fail = |reason: &str| pack(&Value::Array(vec![s("PONG"), Value::Bool(false), s(reason), s(""), s("")]));
        let parts = match msg {
            Value::Array(a) if a.len() == 6 && bytes_of(&a[0]) == Some(b"PING") => a,
            _ => return Err(fail("invalid ping message")),
        };
        let field = |i: usize| bytes_of(&parts[i]).unwrap_or(b"");
        let (hostname, salt, digest, username, password_digest) = (field(1), field(2), field(3), field(4), field(5));
        let node = self.clients.iter().find(|c| c.network.contains(remote));
        if node.is_none() && !self.allow_anonymous_source {
            tracing::warn!(address = %remote, "in_forward: anonymous client disallowed");
            return Err(fail(&format!("anonymous source host '{remote}' denied")));
        }
        let key = node.and_then(|n| n.shared_key.as_deref()).unwrap_or(&self.shared_key);
        if sha512_hex(&[salt, hostname, nonce, key.as_bytes()]).as_bytes() != digest {
            tracing::warn!(address = %remote, hostname = %String::from_utf8_lossy(hostname), "in_forward: shared key mismatch");
            return Err(fail("shared_key mismatch"));
        }
        if self.user_auth {
            let ok = self.users.iter().any(|(u, p)| {
                u.as_bytes() == username
                    && node.is_none_or(|n| n.users.is_empty() || n.users.iter().any(|x| x == u))
                    && sha512_hex(&[auth_salt, username, p.as_bytes()]).as_bytes() == password_digest
            });
            if !ok {
                tracing::warn!(address = %remote, "in_forward: user authentication failed");
                return Err(fail("username/password mismatch"));
            }
        }
        let pong = sha512_hex(&[salt, self.self_hostname.as_bytes(), nonce, key.as_bytes()]);
        Ok(pack(&Value::Array(vec![s("PONG"), Value::Bool(true), s(""), s(&self.self_hostname), s(&pong)])))
    }
}

/// out_forward's `<security>` (and the per-`<server>` overrides).
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    pub self_hostname: String,
    pub shared_key: String,
    pub username: String,
    pub password: String,
}

/// What a HELO told the client.
#[derive(Debug, Clone)]
pub struct Helo {
    pub nonce: Vec<u8>,
    pub auth: Vec<u8>,
    pub keepalive: bool,
}

impl ClientSecurity {
    pub fn from_section(sec: &Element) -> Result<Self, ConfigError> {
        Ok(ClientSecurity {
            self_hostname: sec.required_str("self_hostname")?,
            shared_key: sec.required_str("shared_key")?,
            username: sec.str_or("username", ""),
            password: sec.str_or("password", ""),
        })
    }

    pub fn parse_helo(v: &Value) -> Option<Helo> {
        let Value::Array(a) = v else { return None };
        if a.len() != 2 || bytes_of(&a[0]) != Some(b"HELO") {
            return None;
        }
        let Value::Map(m) = &a[1] else { return None };
        Some(Helo {
            nonce: m.get("nonce").and_then(bytes_of)?.to_vec(),
            auth: m.get("auth").and_then(bytes_of).unwrap_or(b"").to_vec(),
            keepalive: !matches!(m.get("keepalive"), Some(Value::Bool(false))),
        })
    }

    /// The PING for `helo` with `salt` (32 hex characters, fresh per connection).
    pub fn ping(&self, helo: &Helo, salt: &str) -> Vec<u8> {
        let digest =
            sha512_hex(&[salt.as_bytes(), self.self_hostname.as_bytes(), &helo.nonce, self.shared_key.as_bytes()]);
        let pass = sha512_hex(&[&helo.auth, self.username.as_bytes(), self.password.as_bytes()]);
        pack(&Value::Array(vec![s("PING"), s(&self.self_hostname), s(salt), s(&digest), s(&self.username), s(&pass)]))
    }

    /// Check the server's PONG: authenticated, and the server knows the same key.
    pub fn check_pong(&self, v: &Value, helo: &Helo, salt: &str) -> Result<(), String> {
        let a = match v {
            Value::Array(a) if a.len() == 5 && bytes_of(&a[0]) == Some(b"PONG") => a,
            _ => return Err("invalid PONG message".into()),
        };
        if a[1] != Value::Bool(true) {
            return Err(format!("authentication failed: {}", a[2].to_display_string()));
        }
        let host = bytes_of(&a[3]).unwrap_or(b"");
        if host == self.self_hostname.as_bytes() {
            return Err("same hostname between input and output: invalid configuration".into());
        }
        let want = sha512_hex(&[salt.as_bytes(), host, &helo.nonce, self.shared_key.as_bytes()]);
        if bytes_of(&a[4]) != Some(want.as_bytes()) {
            return Err("shared key mismatch".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("127.0.0.1").unwrap().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_none());
    }
}
