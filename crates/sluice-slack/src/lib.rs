//! `@type slack`: the most severe errors to Slack, without flooding the channel.
//!
//! Accepts fluent-plugin-slack's configuration (`webhook_url` or `token` + `channel`, `message` +
//! `message_keys`, `title` + `title_keys`, `color`, `username`, ...). Each record becomes a Block Kit
//! message (header, escaped message, key fields, plain-text fallback) cut to Slack's limits. Repeats of
//! one alert within `dedup_window` are sent once and summed up when the window closes; past the
//! per-channel rate limit one digest replaces the rest. Webhook URLs and tokens never reach logs or errors.
pub mod blocks;
pub mod client;
pub mod config;
pub mod dedup;
pub mod ratelimit;
pub mod writer;

pub use config::SlackConfig;
pub use writer::{SlackMetrics, SlackWriter};

use sluice_core::buffer::{buffered, BufferDefaults};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Registry};
use std::time::Duration;

/// Register `@type slack`.
pub fn register(reg: &mut Registry) {
    reg.register_output("slack", buffered::<SlackWriter>);
}

/// fluent-plugin-slack flushes every second by default.
pub fn buffer_defaults() -> BufferDefaults {
    BufferDefaults { flush_interval: Duration::from_secs(1), ..BufferDefaults::default() }
}

/// Build the writer alone (tests, and outputs that wrap it).
pub fn build_writer(conf: &Element) -> Result<SlackWriter, ConfigError> {
    let cfg = SlackConfig::from_element(conf)?;
    SlackWriter::new(cfg).map_err(|e| conf.error(e.to_string()))
}

impl sluice_core::buffer::BufferedPlugin for SlackWriter {
    fn buffer_defaults() -> BufferDefaults {
        buffer_defaults()
    }

    fn from_conf(conf: &Element, _ctx: &BuildCtx) -> Result<Self, ConfigError> {
        build_writer(conf)
    }
}
