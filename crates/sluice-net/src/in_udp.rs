//! `<source> @type udp`: Fluentd's in_udp. One datagram is one message (cut at `message_length_limit`,
//! its trailing newline removed), parsed with the `<parse>` section and emitted with `tag`.
use crate::in_tcp::{hostname_key, refuse_extract, required_parser, PlainHandler};
use crate::text_server::{run_datagram, DatagramConfig, Listen, Sink, Stats};
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::metrics::Report;
use sluice_core::plugin::{BuildCtx, Emitter, Input, Parser, PluginError};
use std::sync::Arc;

pub const DEFAULT_PORT: u16 = 5160;
const DEFAULT_LIMIT: u64 = 4096;
/// The largest UDP payload.
const MAX_DATAGRAM: u64 = 65_535;

pub struct UdpInput {
    cfg: DatagramConfig,
    handler: Arc<PlainHandler>,
    parser: Box<dyn Parser>,
    stats: Arc<Stats>,
}

impl UdpInput {
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

pub fn build_input(s: &Element, ctx: &BuildCtx) -> Result<UdpInput, ConfigError> {
    let tag = s.required_str("tag")?;
    refuse_extract(s, "in_udp")?;
    let parser = required_parser(s, ctx, "in_udp")?;
    // `body_size_limit` is the deprecated name and wins, as in Fluentd.
    let limit = match s.opt_size("body_size_limit")? {
        Some(l) => l,
        None => s.size_or("message_length_limit", DEFAULT_LIMIT)?,
    };
    let source_hostname_key = hostname_key(s);
    let _ = s.opt_time("blocking_timeout")?;
    let cfg = DatagramConfig {
        listen: Listen::read(s, DEFAULT_PORT)?,
        limit: usize::try_from(limit.min(MAX_DATAGRAM)).unwrap_or(usize::MAX),
        remove_newline: s.bool_or("remove_newline", true)?,
        resolve_hostname: source_hostname_key.is_some(),
        receive_buffer_size: s.opt_size("receive_buffer_size")?,
    };
    let handler = PlainHandler { tag, source_address_key: s.opt_str("source_address_key"), source_hostname_key };
    Ok(UdpInput { cfg, handler: Arc::new(handler), parser, stats: Arc::default() })
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(build_input(s, ctx)?))
}

#[async_trait]
impl Input for UdpInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let sink = Sink { name: "in_udp", handler: self.handler, stats: self.stats, emitter, shutdown: ctx.shutdown };
        run_datagram(self.cfg, self.parser, sink).await?;
        Ok(())
    }

    fn reporter(&self) -> Option<Arc<dyn Report>> {
        Some(self.stats.clone())
    }
}
