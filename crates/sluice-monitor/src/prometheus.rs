//! `<source @type prometheus>`: serves every metric of the engine (components' `sluice_*` metrics, the
//! router's, `<metric>`s and the monitor inputs' `fluentd_*` gauges) over HTTP.
use crate::exposition::{self, Families};
use crate::server::{self, Reply, Req, Routes};
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::metrics::Hub;
use sluice_core::plugin::{BuildCtx, Emitter, Input, PluginError};
use std::sync::Arc;

pub struct PrometheusInput {
    bind: String,
    port: u16,
    metrics_path: String,
    aggregated_metrics_path: String,
    hub: Arc<Hub>,
}

pub fn port_param(conf: &Element, default: i64) -> Result<u16, ConfigError> {
    let p = conf.int_or("port", default)?;
    u16::try_from(p).map_err(|_| conf.error_at("port", format!("port {p} is out of range")))
}

pub fn refuse_tls(conf: &Element) -> Result<(), ConfigError> {
    if let Some(t) = conf.section("transport") {
        if t.arg.trim() == "tls" {
            return Err(t
                .error("<transport tls> is not supported by sluice yet")
                .with_hint("serve plain HTTP and terminate TLS in front of it (a sidecar or the Service mesh)"));
        }
        t.mark_all_used();
    }
    if let Some(s) = conf.section("ssl") {
        return Err(s.error("<ssl> is not supported by sluice yet").with_hint("serve plain HTTP"));
    }
    Ok(())
}

pub fn build(conf: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    refuse_tls(conf)?;
    if conf.enum_or("content_encoding", &["identity", "gzip"], "identity")? == "gzip" {
        return Err(conf
            .error_at("content_encoding", "content_encoding gzip is not supported by sluice yet")
            .with_hint("use identity (the default); Prometheus compresses the scrape itself when asked"));
    }
    Ok(Box::new(PrometheusInput {
        bind: conf.str_or("bind", "0.0.0.0"),
        port: port_param(conf, 24231)?,
        metrics_path: conf.str_or("metrics_path", "/metrics"),
        aggregated_metrics_path: conf.str_or("aggregated_metrics_path", "/aggregated_metrics"),
        hub: ctx.metrics.clone(),
    }))
}

/// One scrape: every metric of `hub`, in the format the `Accept` header asks for.
pub fn scrape(hub: &Hub, accept: Option<&str>) -> Reply {
    let mut f = Families::default();
    hub.report(&mut f);
    if exposition::wants_openmetrics(accept) {
        Reply::ok(exposition::OPENMETRICS_CONTENT_TYPE, f.openmetrics())
    } else {
        Reply::ok(exposition::TEXT_CONTENT_TYPE, f.text())
    }
}

#[async_trait]
impl Input for PrometheusInput {
    async fn run(self: Box<Self>, _emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let PrometheusInput { bind, port, metrics_path, aggregated_metrics_path, hub } = *self;
        let weak = Arc::downgrade(&hub);
        let routes: Routes = Arc::new(move |req: &Req| {
            // One process serves every "worker": the aggregated path shows the same metrics.
            if req.path == metrics_path || req.path == aggregated_metrics_path {
                match weak.upgrade() {
                    Some(hub) => scrape(&hub, req.accept),
                    None => Reply { status: 503, content_type: "text/plain", body: "shutting down\n".into() },
                }
            } else {
                Reply::not_found()
            }
        });
        server::serve("prometheus", &bind, port, hub, routes, ctx.shutdown.clone()).await
    }
}
