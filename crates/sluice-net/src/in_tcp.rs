//! `<source> @type tcp`: Fluentd's in_tcp. Text messages over TCP (or TLS), split at `delimiter`, each
//! parsed with the `<parse>` section and emitted with `tag`.
use crate::text_server::{
    add_source, parse_error_kind, parse_events, read_allowed_clients, read_transport, run_stream, Batch, Framing,
    Handler, Listen, Peer, Sink, Stats, StreamConfig, HARD_MESSAGE_LIMIT,
};
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Event;
use sluice_core::metrics::Report;
use sluice_core::plugin::{BuildCtx, Emitter, Input, Parser, PluginError};
use std::sync::Arc;

pub const DEFAULT_PORT: u16 = 5170;

/// in_tcp's and in_udp's handler: the parsed record, with the sender's address and name if asked.
pub struct PlainHandler {
    pub tag: String,
    pub source_address_key: Option<String>,
    pub source_hostname_key: Option<String>,
}

impl Handler for PlainHandler {
    fn handle(&self, parser: &mut dyn Parser, msg: &[u8], peer: &Peer, out: &mut Batch) -> Result<(), &'static str> {
        parse_events(parser, msg, |time, mut record| {
            add_source(&mut record, peer, &self.source_address_key, &self.source_hostname_key);
            out.push(&self.tag, Event::new(time, record));
        })
        .map_err(|e| parse_error_kind(&e))
    }
}

/// The `<parse>` of in_tcp/in_udp: required (or Fluentd's v0.12 `format`), and not a parser that joins
/// lines (each message is parsed on its own).
pub fn required_parser(s: &Element, ctx: &BuildCtx, plugin: &str) -> Result<Box<dyn Parser>, ConfigError> {
    let declared = s.section("parse").map(|p| p.plugin_type().is_some()).unwrap_or(false) || s.has("format");
    if !declared {
        return Err(s
            .error(format!("{plugin}: <parse> section is required (with its @type)"))
            .with_hint("add <parse> with '@type json', 'none', 'regexp', ..."));
    }
    let parser = ctx.registry.parser_of(s, "none", ctx)?;
    refuse_joining(s, parser.as_ref(), plugin)?;
    Ok(parser)
}

pub fn refuse_joining(s: &Element, parser: &dyn Parser, plugin: &str) -> Result<(), ConfigError> {
    if parser.is_joining() {
        let at = s.section("parse").unwrap_or(s);
        return Err(at
            .error(format!("{plugin} parses each message on its own; this parser joins lines"))
            .with_hint("send whole records per message, or join them later with the concat filter"));
    }
    Ok(())
}

/// `<extract>` (tag and time from the record) is not supported: a clear error rather than ignored.
pub fn refuse_extract(s: &Element, plugin: &str) -> Result<(), ConfigError> {
    if let Some(e) = s.section("extract") {
        return Err(e
            .error(format!("{plugin}: <extract> is not supported by sluice"))
            .with_hint("set the tag with 'tag' and the time with the parser's time_key"));
    }
    Ok(())
}

/// Fluentd's deprecated `source_host_key` is `source_hostname_key`.
pub fn hostname_key(s: &Element) -> Option<String> {
    s.opt_str("source_hostname_key").or_else(|| s.opt_str("source_host_key"))
}

pub struct TcpInput {
    cfg: Arc<StreamConfig>,
    handler: Arc<PlainHandler>,
    parser: Box<dyn Parser>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stats: Arc<Stats>,
}

impl TcpInput {
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

pub fn build_input(s: &Element, ctx: &BuildCtx) -> Result<TcpInput, ConfigError> {
    let tag = s.required_str("tag")?;
    refuse_extract(s, "in_tcp")?;
    let parser = required_parser(s, ctx, "in_tcp")?;
    let limit = match s.opt_size("message_length_limit")? {
        Some(l) => l.min(HARD_MESSAGE_LIMIT),
        None => HARD_MESSAGE_LIMIT,
    };
    let delimiter = s.str_or("delimiter", "\n");
    if delimiter.is_empty() {
        return Err(s.error_at("delimiter", "delimiter must not be empty"));
    }
    let (_, tls) = read_transport(s, &["tcp", "tls"], "tcp")?;
    let acceptor = crate::tls::configured_acceptor(tls.as_ref(), s, ctx.dry_run)?;
    let source_hostname_key = hostname_key(s);
    // Accepted for compatibility: Cool.io's loop timeout has no meaning here.
    let _ = s.opt_time("blocking_timeout")?;
    let cfg = StreamConfig {
        listen: Listen::read(s, DEFAULT_PORT)?,
        framing: Framing::Delimited(delimiter.into_bytes()),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        send_keepalive_packet: s.bool_or("send_keepalive_packet", false)?,
        resolve_hostname: source_hostname_key.is_some(),
        allowed: read_allowed_clients(s)?,
    };
    let handler = PlainHandler { tag, source_address_key: s.opt_str("source_address_key"), source_hostname_key };
    Ok(TcpInput { cfg: Arc::new(cfg), handler: Arc::new(handler), parser, acceptor, stats: Arc::default() })
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(build_input(s, ctx)?))
}

#[async_trait]
impl Input for TcpInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let sink = Sink { name: "in_tcp", handler: self.handler, stats: self.stats, emitter, shutdown: ctx.shutdown };
        run_stream(self.cfg, self.acceptor, self.parser.as_ref(), sink).await?;
        Ok(())
    }

    fn reporter(&self) -> Option<Arc<dyn Report>> {
        Some(self.stats.clone())
    }
}
