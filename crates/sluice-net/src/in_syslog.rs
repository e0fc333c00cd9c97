//! `<source> @type syslog`: Fluentd's in_syslog. Syslog messages over UDP (default), TCP or TLS, framed
//! by a delimiter or by octet counting (RFC 6587), parsed by `<parse>` (default: the `syslog` parser with
//! `with_priority true`), and emitted with the tag `TAG.FACILITY.SEVERITY`.
use crate::in_tcp::refuse_joining;
use crate::text_server::{
    add_source, parse_events, read_transport, resolve_hostname, run_datagram, run_stream, text_value, Batch,
    DatagramConfig, Framing, Handler, Listen, Peer, Sink, Stats, StreamConfig, HARD_MESSAGE_LIMIT,
};
use async_trait::async_trait;
use sluice_core::config::{compat, ConfigError, Element};
use sluice_core::event::{Event, EventTime, Map, Value};
use sluice_core::metrics::Report;
use sluice_core::plugin::{BuildCtx, Emitter, Input, Parser, PluginError};
use std::sync::Arc;

pub const DEFAULT_PORT: u16 = 5140;
const DEFAULT_LIMIT: u64 = 2048;
const MAX_DATAGRAM: u64 = 65_535;

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "at", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];

/// Facility and severity names of a priority value. A facility beyond `local7` has no name (Fluentd
/// then writes an empty one).
pub fn facility_severity(pri: i64) -> (&'static str, &'static str) {
    let facility = usize::try_from(pri >> 3).ok().and_then(|f| FACILITIES.get(f).copied()).unwrap_or("");
    (facility, SEVERITIES[(pri & 7) as usize])
}

/// `<PRI>` at the start of a message (for parsers that do not read it): the value and the text after it,
/// up to the first newline (Fluentd's `/^\<([0-9]+)\>(.*)/`).
fn split_priority(msg: &[u8]) -> Option<(i64, &[u8])> {
    let rest = msg.strip_prefix(b"<")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let pri = rest[..digits].iter().fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    let text = &rest[digits + 1..];
    let text = match memchr::memchr(b'\n', text) {
        Some(i) => &text[..i],
        None => text,
    };
    Some((pri, text))
}

pub struct SyslogHandler {
    tag: String,
    /// `TAG.FACILITY.SEVERITY` for every priority 0..=191, made once.
    tags: Vec<String>,
    unmatched_tag: String,
    /// The parser reads `<PRI>` itself (the syslog parser with `with_priority`).
    parser_reads_priority: bool,
    severity_key: Option<String>,
    facility_key: Option<String>,
    source_address_key: Option<String>,
    source_hostname_key: Option<String>,
    emit_unmatched_lines: bool,
}

impl SyslogHandler {
    fn tag_of(&self, pri: i64) -> std::borrow::Cow<'_, str> {
        match usize::try_from(pri).ok().and_then(|p| self.tags.get(p)) {
            Some(t) => std::borrow::Cow::Borrowed(t.as_str()),
            None => {
                let (f, s) = facility_severity(pri);
                std::borrow::Cow::Owned(format!("{}.{f}.{s}", self.tag))
            }
        }
    }

    fn unmatched(&self, msg: &[u8], peer: &Peer, out: &mut Batch) {
        if self.emit_unmatched_lines {
            let mut record = Map::with_capacity(3);
            record.insert("unmatched_line", text_value(msg));
            add_source(&mut record, peer, &self.source_address_key, &self.source_hostname_key);
            out.push(&self.unmatched_tag, Event::new(EventTime::now(), record));
        }
    }
}

impl Handler for SyslogHandler {
    fn handle(&self, parser: &mut dyn Parser, msg: &[u8], peer: &Peer, out: &mut Batch) -> Result<(), &'static str> {
        let (outer_pri, text) = if self.parser_reads_priority {
            (None, msg)
        } else {
            match split_priority(msg) {
                Some((p, t)) => (Some(p), t),
                None => {
                    self.unmatched(msg, peer, out);
                    return Err("invalid syslog message (no <PRI>)");
                }
            }
        };
        let mut parsed: Vec<(EventTime, Map)> = Vec::with_capacity(1);
        if let Err(e) = parse_events(parser, text, |t, r| parsed.push((t, r))) {
            self.unmatched(msg, peer, out);
            return Err(crate::text_server::parse_error_kind(&e));
        }
        if parsed.is_empty() {
            self.unmatched(msg, peer, out);
            return Err("pattern not matched");
        }
        for (time, mut record) in parsed {
            let pri = match outer_pri {
                Some(p) => p,
                None => match record.remove("pri") {
                    Some(Value::Int(p)) => p,
                    _ => {
                        self.unmatched(msg, peer, out);
                        return Err("no priority");
                    }
                },
            };
            let (facility, severity) = facility_severity(pri);
            if let Some(k) = &self.severity_key {
                record.insert(k.as_str(), Value::from(severity));
            }
            if let Some(k) = &self.facility_key {
                record.insert(k.as_str(), Value::from(facility));
            }
            add_source(&mut record, peer, &self.source_address_key, &self.source_hostname_key);
            out.push(&self.tag_of(pri), Event::new(time, record));
        }
        Ok(())
    }
}

enum Transport {
    Udp(DatagramConfig),
    Stream(Arc<StreamConfig>, Option<tokio_rustls::TlsAcceptor>),
}

pub struct SyslogInput {
    transport: Transport,
    handler: Arc<SyslogHandler>,
    parser: Box<dyn Parser>,
    stats: Arc<Stats>,
}

impl SyslogInput {
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

/// The `<parse>`: as written, or from v0.12 `format`, else `@type syslog`; the syslog parser reads the
/// priority unless `with_priority false`. Returns the parser and whether it reads `<PRI>`.
fn build_parser(s: &Element, ctx: &BuildCtx) -> Result<(Box<dyn Parser>, bool), ConfigError> {
    let written = s.section("parse");
    let mut section = match written {
        Some(p) => p.clone(),
        None => compat::parse(s)?.unwrap_or_else(|| Element::new("parse", "", s.loc.clone())),
    };
    let is_syslog = section.plugin_type().unwrap_or("syslog") == "syslog";
    if is_syslog && !section.has("with_priority") {
        section.set("with_priority", "true", s.loc.clone());
    }
    let reads_priority = is_syslog && section.bool_or("with_priority", true)?;
    let parser = ctx.registry.build_parser(&section, Some("syslog"), ctx);
    if let Some(p) = written {
        p.mark_used_from(&section);
    }
    let parser = parser?;
    refuse_joining(s, parser.as_ref(), "in_syslog")?;
    Ok((parser, reads_priority))
}

pub fn build_input(s: &Element, ctx: &BuildCtx) -> Result<SyslogInput, ConfigError> {
    let tag = s.required_str("tag")?;
    let (parser, parser_reads_priority) = build_parser(s, ctx)?;
    let (mut protocol, tls) = read_transport(s, &["udp", "tcp", "tls"], "udp")?;
    if s.has("protocol_type") {
        protocol = s.enum_or("protocol_type", &["udp", "tcp"], "udp")?;
    }
    let source_hostname_key = s.opt_str("source_hostname_key");
    let resolve = resolve_hostname(s, &source_hostname_key)?;
    // Deprecated: `include_source_host` adds the address under `source_host_key`.
    let mut source_address_key = s.opt_str("source_address_key");
    if s.bool_or("include_source_host", false)? {
        source_address_key = Some(s.str_or("source_host_key", "source_host"));
    }
    let severity_key = s.opt_str("severity_key").or_else(|| s.opt_str("priority_key"));
    if s.has("priority_key") {
        tracing::warn!("in_syslog: priority_key is deprecated; use severity_key");
    }
    let send_keepalive_packet = s.bool_or("send_keepalive_packet", false)?;
    let frame_type = s.enum_or("frame_type", &["traditional", "octet_count"], "traditional")?;
    let delimiter = s.str_or("delimiter", "\n");
    if delimiter.is_empty() {
        return Err(s.error_at("delimiter", "delimiter must not be empty"));
    }
    let explicit_limit = s.opt_size("message_length_limit")?;
    let _ = s.opt_time("blocking_timeout")?;
    let listen = Listen::read(s, DEFAULT_PORT)?;
    let transport = if protocol == "udp" {
        if send_keepalive_packet {
            return Err(s.error_at("send_keepalive_packet", "send_keepalive_packet is available for tcp/tls"));
        }
        Transport::Udp(DatagramConfig {
            listen,
            limit: usize::try_from(explicit_limit.unwrap_or(DEFAULT_LIMIT).min(MAX_DATAGRAM)).unwrap_or(usize::MAX),
            remove_newline: true,
            resolve_hostname: resolve,
            receive_buffer_size: None,
        })
    } else {
        let acceptor = crate::tls::configured_acceptor(tls.as_ref(), s, ctx.dry_run)?;
        let limit = explicit_limit.unwrap_or(HARD_MESSAGE_LIMIT).min(HARD_MESSAGE_LIMIT);
        let cfg = StreamConfig {
            listen,
            framing: if frame_type == "octet_count" {
                Framing::OctetCounted
            } else {
                Framing::Delimited(delimiter.into_bytes())
            },
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            send_keepalive_packet,
            resolve_hostname: resolve,
            allowed: None,
        };
        Transport::Stream(Arc::new(cfg), acceptor)
    };
    let tags = (0..192i64)
        .map(|p| {
            let (f, s) = facility_severity(p);
            format!("{tag}.{f}.{s}")
        })
        .collect();
    let handler = SyslogHandler {
        tags,
        unmatched_tag: format!("{tag}.unmatched"),
        tag,
        parser_reads_priority,
        severity_key,
        facility_key: s.opt_str("facility_key"),
        source_address_key,
        source_hostname_key,
        emit_unmatched_lines: s.bool_or("emit_unmatched_lines", false)?,
    };
    Ok(SyslogInput { transport, handler: Arc::new(handler), parser, stats: Arc::default() })
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(build_input(s, ctx)?))
}

#[async_trait]
impl Input for SyslogInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let sink =
            Sink { name: "in_syslog", handler: self.handler, stats: self.stats, emitter, shutdown: ctx.shutdown };
        match self.transport {
            Transport::Udp(cfg) => run_datagram(cfg, self.parser, sink).await?,
            Transport::Stream(cfg, acceptor) => run_stream(cfg, acceptor, self.parser.as_ref(), sink).await?,
        }
        Ok(())
    }

    fn reporter(&self) -> Option<Arc<dyn Report>> {
        Some(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(facility_severity(13), ("user", "notice"));
        assert_eq!(facility_severity(0), ("kern", "emerg"));
        assert_eq!(facility_severity(191), ("local7", "debug"));
        assert_eq!(facility_severity(201), ("", "alert"));
        assert_eq!(split_priority(b"<34>abc\ndef"), Some((34, b"abc".as_slice())));
        assert_eq!(split_priority(b"<>abc"), None);
        assert_eq!(split_priority(b"34>abc"), None);
        assert_eq!(split_priority(b"<99999999999999999999999>x").map(|p| p.0), Some(i64::MAX));
    }
}
