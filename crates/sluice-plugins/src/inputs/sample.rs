//! `sample` (alias `dummy`): generates events, for demos and tests.
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{parse_json_value, Event, EventTime, Map, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Input, PluginError};
use std::time::Duration;

pub struct Sample {
    tag: String,
    records: Vec<Map>,
    rate: u64,
    size: usize,
    auto_increment_key: Option<String>,
}

pub fn build(s: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    let tag = s.required_str("tag")?;
    let key = if s.has("sample") { "sample" } else { "dummy" };
    let text = s.str_or(key, r#"[{"message":"sample"}]"#);
    let bad = || {
        s.error_at(key, format!("'{key}' must be a JSON object or an array of objects"))
            .with_hint(r#"e.g. sample {"message":"hello"}"#)
    };
    let records = match parse_json_value(text.as_bytes()).map_err(|_| bad())? {
        Value::Map(m) => vec![m],
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::Map(m) => Ok(m),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad()),
    };
    if records.is_empty() {
        return Err(bad());
    }
    let rate = s.int_or("rate", 1)?;
    let size = s.int_or("size", 1)?;
    if rate < 1 || size < 1 {
        return Err(s.error("'rate' and 'size' must be at least 1"));
    }
    // Accepted for compatibility; sluice always starts emitting.
    let _ = s.bool_or("suspend", false)?;
    Ok(Box::new(Sample {
        tag,
        records,
        rate: rate as u64,
        size: size as usize,
        auto_increment_key: s.opt_str("auto_increment_key"),
    }))
}

#[async_trait]
impl Input for Sample {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let mut counter: i64 = 0;
        let mut next = 0usize;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / self.rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ctx.shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let now = EventTime::now();
            let mut events = Vec::with_capacity(self.size);
            for _ in 0..self.size {
                let mut record = self.records[next % self.records.len()].clone();
                next = next.wrapping_add(1);
                if let Some(k) = &self.auto_increment_key {
                    record.insert(k.as_str(), Value::Int(counter));
                    counter += 1;
                }
                events.push(Event::new(now, record));
            }
            match emitter.emit_async(&self.tag, events).await {
                Ok(()) => {}
                Err(EmitError::ShuttingDown) => return Ok(()),
                Err(e) => {
                    tracing::warn!(tag = %self.tag, error = %e, "sample: emit refused; skipping this tick")
                }
            }
        }
    }
}
