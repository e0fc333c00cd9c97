//! `<inject>` (Fluentd's `Fluent::PluginHelper::Inject`): add the hostname, worker id, tag and time to each
//! record an output formats. Every output that formats records wraps its formatter with
//! [`Inject::wrap`], so the section (and its v0.12 spellings `include_time_key`, `include_tag_key`,
//! `time_key`, ... on the plugin itself, see [`crate::config::compat::inject`]) behaves the same everywhere.
use crate::config::{compat, ConfigError, Element};
use crate::event::{EventTime, Map, Value};
use crate::plugin::{BuildCtx, Formatter};
use crate::timefmt::TimeFormatter;
use std::sync::Arc;

/// What a plugin changes in `<inject>`'s defaults (fluent-plugin-kinesis: `time_type string` with its own
/// `time_format`).
#[derive(Debug, Clone, Copy)]
pub struct InjectDefaults {
    pub time_type: &'static str,
    pub time_format: Option<&'static str>,
}

impl Default for InjectDefaults {
    fn default() -> Self {
        InjectDefaults { time_type: "float", time_format: None }
    }
}

#[derive(Debug, Clone)]
enum TimeValue {
    /// Seconds with microseconds, truncated (Fluentd: `time.to_r.truncate(6).to_f`).
    Float,
    Unixtime,
    String(TimeFormatter),
}

/// A configured `<inject>` that adds at least one key.
#[derive(Debug, Clone)]
pub struct Inject {
    hostname: Option<(String, Value)>,
    worker_id: Option<String>,
    tag_key: Option<String>,
    time: Option<(String, TimeValue)>,
}

impl Inject {
    /// Read the `<inject>` of `conf` (or the one Fluentd builds from v0.12 parameters). `None` when it
    /// injects nothing.
    pub fn from_conf(conf: &Element, ctx: &BuildCtx, defaults: InjectDefaults) -> Result<Option<Inject>, ConfigError> {
        let converted = compat::inject(conf)?;
        let Some(s) = conf.section("inject").or(converted.as_ref()) else {
            return Ok(None);
        };
        let hostname = match s.opt_str("hostname_key") {
            Some(k) => {
                let h = s.opt_str("hostname").unwrap_or_else(|| {
                    if ctx.system.hostname.is_empty() {
                        crate::util::hostname()
                    } else {
                        ctx.system.hostname.clone()
                    }
                });
                Some((k, Value::Str(h.as_str().into())))
            }
            None => {
                let _ = s.get("hostname");
                None
            }
        };
        let time_type = s.enum_or("time_type", &["float", "unixtime", "string"], defaults.time_type)?;
        let time_format = s.opt_str("time_format").or(defaults.time_format.map(str::to_string));
        let localtime = s.bool_or("localtime", true)?;
        let utc = s.bool_or("utc", false)?;
        let timezone = s.opt_str("timezone");
        // Fluentd validates the zone even when no time is injected.
        let string_formatter = TimeFormatter::new(time_format.as_deref(), localtime && !utc, timezone.as_deref())
            .map_err(|m| s.error_at(if timezone.is_some() { "timezone" } else { "time_format" }, m))?;
        let time = match s.opt_str("time_key") {
            Some(k) => Some((
                k,
                match time_type.as_str() {
                    "unixtime" => TimeValue::Unixtime,
                    "string" => TimeValue::String(string_formatter),
                    _ => TimeValue::Float,
                },
            )),
            None => {
                if s.has("time_format") {
                    tracing::warn!("'time_format' specified without 'time_key', will be ignored");
                }
                None
            }
        };
        let inject = Inject { hostname, worker_id: s.opt_str("worker_id_key"), tag_key: s.opt_str("tag_key"), time };
        if inject.hostname.is_none() && inject.worker_id.is_none() && inject.tag_key.is_none() && inject.time.is_none()
        {
            return Ok(None);
        }
        Ok(Some(inject))
    }

    /// `formatter` with this output's `<inject>` applied first (unchanged when there is none).
    pub fn wrap(
        conf: &Element,
        ctx: &BuildCtx,
        defaults: InjectDefaults,
        formatter: Arc<dyn Formatter>,
    ) -> Result<Arc<dyn Formatter>, ConfigError> {
        Ok(match Self::from_conf(conf, ctx, defaults)? {
            Some(inject) => Arc::new(Injecting { inject, inner: formatter }),
            None => formatter,
        })
    }

    /// Add the configured keys to `record`, in Fluentd's order (hostname, worker id, tag, time).
    pub fn apply(&self, tag: &str, time: EventTime, record: &mut Map) {
        if let Some((k, v)) = &self.hostname {
            record.insert(k.as_str(), v.clone());
        }
        if let Some(k) = &self.worker_id {
            // sluice is one process: Fluentd's worker 0.
            record.insert(k.as_str(), Value::Int(0));
        }
        if let Some(k) = &self.tag_key {
            record.insert(k.as_str(), Value::Str(tag.into()));
        }
        if let Some((k, how)) = &self.time {
            let v = match how {
                TimeValue::Unixtime => Value::Int(time.sec),
                TimeValue::String(f) => Value::Str(f.format(time).into()),
                TimeValue::Float => Value::Float(float_time(time)),
            };
            record.insert(k.as_str(), v);
        }
    }
}

/// `time.to_r.truncate(6).to_f`: whole microseconds, then the nearest float (one correctly rounded
/// division of two exact values).
fn float_time(t: EventTime) -> f64 {
    let micros = i128::from(t.sec) * 1_000_000 + i128::from(t.nsec / 1000);
    micros as f64 / 1e6
}

struct Injecting {
    inject: Inject,
    inner: Arc<dyn Formatter>,
}

impl Formatter for Injecting {
    fn format(&self, tag: &str, time: EventTime, record: &Map, out: &mut Vec<u8>) {
        let mut r = record.clone();
        self.inject.apply(tag, time, &mut r);
        self.inner.format(tag, time, &r, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_time_truncates_to_microseconds() {
        assert_eq!(float_time(EventTime::new(1_700_000_000, 123_456_789)), 1_700_000_000.123456);
        assert_eq!(float_time(EventTime::new(0, 999)), 0.0);
    }
}
