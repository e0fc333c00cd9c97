//! `stdout`: `TIME TAG: FORMATTED` where TIME is `%Y-%m-%d %H:%M:%S.%N %z` in local time and FORMATTED
//! is the `output_type` formatter's text (default `json`) without its newline, as Fluentd's stdout output
//! prints events. `utc` or `timezone` change the zone of TIME.
use super::time::{localtime_of, TimeKind, TimeOutput};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::sync::Arc;

pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S.%N %z";

pub struct StdoutFormatter {
    time: TimeOutput,
    inner: Arc<dyn Formatter>,
}

pub fn build(e: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    let output_type = e.str_or("output_type", "json");
    if output_type == "stdout" {
        return Err(e
            .error_at("output_type", "output_type stdout would format forever")
            .with_hint("use json, hash, ltsv, ..."));
    }
    let timezone = e.opt_str("timezone");
    let localtime = localtime_of(e)? && timezone.is_none();
    let time = TimeOutput::new(TimeKind::String, Some(TIME_FORMAT), localtime, timezone.as_deref())
        .map_err(|m| e.error(format!("invalid time settings: {m}")))?;
    // The sub-formatter reads the same section, as in Fluentd.
    let mut sub = e.clone();
    sub.set("@type", output_type, e.loc_of("output_type").clone());
    let inner = ctx.registry.build_formatter(&sub, None, ctx)?;
    for a in sub.attrs.iter().filter(|a| a.used.get()) {
        if let Some(orig) = e.attrs.iter().find(|o| o.key == a.key) {
            orig.used.set(true);
        }
    }
    Ok(Arc::new(StdoutFormatter { time, inner }))
}

impl Formatter for StdoutFormatter {
    fn format(&self, tag: &str, time: EventTime, record: &Map, out: &mut Vec<u8>) {
        self.time.write(time, out);
        out.push(b' ');
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(b": ");
        let start = out.len();
        self.inner.format(tag, time, record, out);
        // Ruby's chomp: one trailing newline.
        if out.len() > start && out.ends_with(b"\n") {
            out.pop();
            if out.len() > start && out.ends_with(b"\r") {
                out.pop();
            }
        } else if out.len() > start && out.ends_with(b"\r") {
            out.pop();
        }
        out.push(b'\n');
    }
}
