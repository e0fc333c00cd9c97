//! `<source @type monitor_agent>`: Fluentd's plugin status API (`/api/plugins.json`, `/api/plugins`)
//! from the engine's components, and with `tag` the same records emitted every `emit_interval`.
use crate::prometheus::{port_param, refuse_tls};
use crate::server::{self, Reply, Req, Routes};
use async_trait::async_trait;
use serde_json::{json, Map as JMap, Value as J};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Value};
use sluice_core::metrics::{Component, Hub};
use sluice_core::plugin::{BuildCtx, Emitter, Input, PluginError};
use sluice_core::timefmt::TimeFormatter;
use std::sync::Arc;
use std::time::Duration;

pub struct MonitorAgent {
    bind: String,
    port: u16,
    tag: Option<String>,
    emit_interval: Duration,
    opts: Opts,
    hub: Arc<Hub>,
}

#[derive(Clone, Copy)]
struct Opts {
    include_config: bool,
    include_retry: bool,
}

pub fn build(conf: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    refuse_tls(conf)?;
    let secs = conf.time_or("emit_interval", 60.0)?;
    if !(secs > 0.0 && secs < 1e9) {
        return Err(conf.error_at("emit_interval", "emit_interval must be positive"));
    }
    Ok(Box::new(MonitorAgent {
        bind: conf.str_or("bind", "0.0.0.0"),
        port: port_param(conf, 24220)?,
        tag: conf.opt_str("tag"),
        emit_interval: Duration::from_secs_f64(secs),
        opts: Opts {
            include_config: conf.bool_or("include_config", true)?,
            include_retry: conf.bool_or("include_retry", true)?,
        },
        hub: ctx.metrics.clone(),
    }))
}

/// Ruby's `Time#to_s`, as Fluentd's JSON shows retry times.
fn ruby_time(unix: f64) -> String {
    match TimeFormatter::new(Some("%Y-%m-%d %H:%M:%S %z"), true, None) {
        Ok(f) => f.format(EventTime::from_f64(unix)),
        Err(_) => unix.to_string(),
    }
}

/// One plugin as Fluentd's monitor_agent describes it.
fn plugin_info(c: &Component, opts: Opts) -> JMap<String, J> {
    let mut o = JMap::new();
    o.insert("plugin_id".into(), json!(c.plugin_id));
    o.insert("plugin_category".into(), json!(c.category.as_str()));
    o.insert("type".into(), json!(c.type_name));
    if opts.include_config {
        let cfg: JMap<String, J> = c.config.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        o.insert("config".into(), J::Object(cfg));
    }
    o.insert("output_plugin".into(), json!(c.category == sluice_core::metrics::Category::Output));
    if let Some(b) = c.buffer_status() {
        o.insert("buffer_queue_length".into(), json!(b.queue_length));
        o.insert("buffer_timekeys".into(), json!(b.timekeys));
        o.insert("buffer_total_queued_size".into(), json!(b.total_bytes));
        o.insert("buffer_stage_length".into(), json!(b.stage_length));
        o.insert("buffer_stage_byte_size".into(), json!(b.stage_bytes));
        o.insert("buffer_queue_byte_size".into(), json!(b.queue_bytes));
        o.insert("buffer_available_buffer_space_ratios".into(), json!(b.available_space_ratio));
        if opts.include_retry {
            let retry = match &b.retry {
                Some(r) => json!({"start": ruby_time(r.start), "steps": r.steps, "next_time": ruby_time(r.next_time)}),
                None => json!({}),
            };
            o.insert("retry".into(), retry);
        }
    }
    if let Some(m) = c.output_metrics() {
        o.insert("retry_count".into(), json!(m.write_errors.get()));
        o.insert("emit_records".into(), json!(m.records_in.get()));
        o.insert("emit_count".into(), json!(m.emit_count.get()));
        o.insert("write_count".into(), json!(m.write_count.get()));
        o.insert("rollback_count".into(), json!(m.retries.get()));
        o.insert("flush_time_count".into(), json!(m.flush_time_ms.get()));
        o.insert("slow_flush_count".into(), json!(m.slow_flush_count.get()));
    }
    o
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

fn select(hub: &Hub, req: &Req, mut opts: Opts) -> Vec<JMap<String, J>> {
    if query_param(req.query, "with_config").is_some_and(|v| v == "false") {
        opts.include_config = false;
    } else if query_param(req.query, "with_config").is_some_and(|v| v == "true") {
        opts.include_config = true;
    }
    if let Some(v) = query_param(req.query, "with_retry") {
        opts.include_retry = v != "false";
    }
    let id = query_param(req.query, "@id").or_else(|| query_param(req.query, "%40id"));
    let ty = query_param(req.query, "@type")
        .or_else(|| query_param(req.query, "%40type"))
        .or_else(|| query_param(req.query, "type"));
    hub.components()
        .iter()
        .filter(|c| id.is_none_or(|i| c.plugin_id == i) && ty.is_none_or(|t| c.type_name == t))
        .map(|c| plugin_info(c, opts))
        .collect()
}

fn ltsv(plugins: &[JMap<String, J>]) -> String {
    let mut out = String::new();
    for p in plugins {
        let fields: Vec<String> = p
            .iter()
            .map(|(k, v)| match v {
                J::String(s) => format!("{k}:{s}"),
                v => format!("{k}:{v}"),
            })
            .collect();
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

#[async_trait]
impl Input for MonitorAgent {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let MonitorAgent { bind, port, tag, emit_interval, opts, hub } = *self;
        if let Some(tag) = tag {
            let (hub, shutdown) = (Arc::downgrade(&hub), ctx.shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(emit_interval) => {}
                    }
                    let Some(hub) = hub.upgrade() else { return };
                    let events: Vec<Event> = hub
                        .components()
                        .iter()
                        .filter_map(|c| match Value::from(J::Object(plugin_info(c, opts))) {
                            Value::Map(m) => Some(Event::new(EventTime::now(), m)),
                            _ => None,
                        })
                        .collect();
                    if let Err(e) = emitter.emit_async(&tag, events).await {
                        tracing::warn!(tag, error = %e, "monitor_agent: could not emit plugin status");
                    }
                }
            });
        }
        let weak = Arc::downgrade(&hub);
        let routes: Routes = Arc::new(move |req: &Req| {
            let Some(hub) = weak.upgrade() else { return Reply::not_found() };
            match req.path {
                "/api/plugins.json" => {
                    let body = json!({ "plugins": select(&hub, req, opts) });
                    let text = if query_param(req.query, "pretty_json").is_some() {
                        serde_json::to_string_pretty(&body).unwrap_or_default()
                    } else {
                        body.to_string()
                    };
                    Reply::ok("application/json", text + "\n")
                }
                "/api/plugins" => Reply::ok("text/plain", ltsv(&select(&hub, req, opts))),
                _ => Reply::not_found(),
            }
        });
        server::serve("monitor_agent", &bind, port, hub, routes, ctx.shutdown.clone()).await
    }
}
