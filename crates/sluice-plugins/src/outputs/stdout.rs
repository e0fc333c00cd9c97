//! `stdout`: prints each event (`TIME TAG: RECORD` by default), unbuffered as in Fluentd.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, Events};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::{BuildCtx, EmitError, Formatter, Output, OutputMetrics};
use std::io::Write;
use std::sync::Arc;

pub struct Stdout {
    formatter: Arc<dyn Formatter>,
    metrics: Arc<OutputMetrics>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let formatter = ctx.registry.formatter_of(s, "stdout", ctx)?;
    let formatter = Inject::wrap(s, ctx, InjectDefaults::default(), formatter)?;
    if let Some(b) = s.section("buffer") {
        b.mark_all_used();
    }
    Ok(Arc::new(Stdout { formatter, metrics: Arc::default() }))
}

/// Each event as its formatter prints it, one per line: Fluentd prints `formatted.chomp + "\n"` (one
/// trailing "\r\n", "\n" or "\r" is replaced). Shared with the `stdout` filter.
pub(crate) fn format_lines(formatter: &dyn Formatter, tag: &str, events: &[Event], buf: &mut Vec<u8>) {
    for e in events {
        let start = buf.len();
        formatter.format(tag, e.time, &e.record, buf);
        if buf.len() > start && buf.ends_with(b"\n") {
            buf.pop();
            if buf.len() > start && buf.ends_with(b"\r") {
                buf.pop();
            }
        } else if buf.len() > start && buf.ends_with(b"\r") {
            buf.pop();
        }
        buf.push(b'\n');
    }
}

impl Output for Stdout {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let mut buf = Vec::with_capacity(events.len() * 128);
        format_lines(self.formatter.as_ref(), tag, &events, &mut buf);
        self.metrics.records_in.add(events.len() as u64);
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
            self.metrics.write_errors.inc();
            self.metrics.set_last_error(&e.to_string());
        }
        Ok(())
    }
    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.metrics.clone())
    }
}
