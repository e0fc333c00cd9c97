//! A small HTTP/1 server (hyper) for the monitoring endpoints: it serves GET requests through a routing
//! function until shutdown. `/api/health` (readiness) and `/healthz` (liveness) are answered on every
//! monitoring port.
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sluice_core::metrics::Hub;
use sluice_core::plugin::{PluginError, Shutdown};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What a route answers.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: String) -> Self {
        Reply { status: 200, content_type, body }
    }
    pub fn not_found() -> Self {
        Reply { status: 404, content_type: "text/plain", body: "Not Found\n".into() }
    }
}

/// The parts of a request a route needs.
pub struct Req<'a> {
    pub path: &'a str,
    pub query: &'a str,
    pub accept: Option<&'a str>,
}

pub type Routes = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// `/api/health`: live and ready (every input and output started). `/healthz` (`liveness_only`): live,
/// so a liveness probe does not restart a pod that is still starting or draining.
pub fn health(hub: &Hub, liveness_only: bool) -> Reply {
    let live = hub.is_live();
    let ready = hub.is_ready();
    let status = if live && (ready || liveness_only) { 200 } else { 503 };
    let body = serde_json::json!({
        "status": if status == 200 { "ok" } else { "unavailable" },
        "live": live,
        "ready": ready,
    });
    Reply { status, content_type: "application/json", body: format!("{body}\n") }
}

/// Bind now (so a taken port is an error at start-up), then serve until `shutdown`.
pub async fn serve(
    plugin: &'static str,
    bind: &str,
    port: u16,
    hub: Arc<Hub>,
    routes: Routes,
    shutdown: Shutdown,
) -> Result<(), PluginError> {
    let bind = bind.trim_start_matches('[').trim_end_matches(']');
    let listener = TcpListener::bind((bind, port))
        .await
        .map_err(|e| PluginError::Other(format!("{plugin}: cannot listen on {bind}:{port}: {e}")))?;
    tracing::info!(plugin, bind, port, "monitoring endpoint listening");
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(plugin, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let routes = routes.clone();
        let hub = hub.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let reply = answer(&req, &hub, &routes);
            async move { Ok::<_, std::convert::Infallible>(reply) }
        });
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait() => {}
            }
        });
    }
}

fn answer(req: &Request<Incoming>, hub: &Hub, routes: &Routes) -> Response<Full<Bytes>> {
    let reply = if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        Reply { status: 405, content_type: "text/plain", body: "Method Not Allowed\n".into() }
    } else {
        let path = req.uri().path();
        match path {
            "/api/health" => health(hub, false),
            "/healthz" => health(hub, true),
            _ => routes(&Req {
                path,
                query: req.uri().query().unwrap_or(""),
                accept: req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()),
            }),
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    resp
}
