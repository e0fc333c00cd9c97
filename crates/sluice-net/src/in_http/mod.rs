//! `<source> @type http`: Fluentd's in_http. Each POST (or PUT) to `/a/b` becomes events tagged `a.b`,
//! from the `json`, `ndjson` or `msgpack` parameter (query string, form body, or a body with that content
//! type), or from the whole body through `<parse>`. HTTP/1.1 with keep-alive (hyper), `<transport tls>`.
//!
//! The answer tells the truth about storage: 200 (or 204, or the 1x1 gif) only after the router took the
//! events; 400 for a body that cannot be read (nothing of it is stored), 413 over `body_size_limit`, 500
//! when a buffer is full (the client retries), 503 while sluice stops.
pub mod body;

use crate::tls::ServerTls;
use async_trait::async_trait;
use body::{BodyError, Extra, Params, TimeField};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Value};
use sluice_core::metrics::{Counter, MetricSink, Report};
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Input, Parser, PluginError, Shutdown};
use sluice_core::timefmt::TimeParser;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 9880;
const DEFAULT_BODY_SIZE_LIMIT: u64 = 32 * 1024 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Fluentd's 1x1 transparent gif (`respond_with_empty_img`).
const EMPTY_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\xff\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// Counters of what this input stored and refused (never silent).
#[derive(Debug, Default)]
pub struct InputStats {
    pub requests: Counter,
    pub events: Counter,
    pub bad_requests: Counter,
    pub too_large: Counter,
    pub forbidden: Counter,
    /// Requests answered 500 because a buffer was full (the client keeps the data and retries).
    pub refused_full: Counter,
}

impl Report for InputStats {
    fn report(&self, sink: &mut dyn MetricSink) {
        let help = "Requests in_http answered, by result.";
        for (result, c) in [
            ("stored", &self.requests),
            ("bad_request", &self.bad_requests),
            ("too_large", &self.too_large),
            ("forbidden", &self.forbidden),
            ("buffer_full", &self.refused_full),
        ] {
            sink.counter("sluice_http_input_requests_total", help, &[("result", result)], c.get());
        }
        sink.counter("sluice_http_input_events_total", "Events in_http stored.", &[], self.events.get());
    }
}

/// How the body becomes records.
enum Format {
    /// Fluentd's `default`/`in_http`: the json, ndjson and msgpack parameters.
    Default(TimeField),
    /// A `<parse>` of another type: the whole body is its text.
    Parser(Box<dyn Parser>),
}

pub struct Config {
    pub bind: String,
    pub port: u16,
    pub backlog: Option<u32>,
    pub body_size_limit: usize,
    pub keepalive_timeout: Duration,
    pub add_http_headers: bool,
    pub add_remote_addr: bool,
    pub add_query_params: bool,
    pub cors_allow_origins: Option<Vec<String>>,
    pub cors_allow_credentials: bool,
    pub respond_with_empty_img: bool,
    pub use_204_response: bool,
    pub dump_error_log: bool,
    format: Format,
    pub tls: Option<ServerTls>,
}

pub struct HttpInput {
    cfg: Arc<Config>,
    stats: Arc<InputStats>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

impl HttpInput {
    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }
}

fn read_format(s: &Element, ctx: &BuildCtx) -> Result<Format, ConfigError> {
    // `format json` (v0.12) makes a <parse> as Fluentd's compat_parameters does.
    let compat = if s.section("parse").is_none() { sluice_core::config::compat::parse(s)? } else { None };
    let section = s.section("parse").or(compat.as_ref());
    let ty = section.and_then(|p| p.plugin_type()).unwrap_or("in_http");
    if ty != "in_http" {
        return Ok(Format::Parser(ctx.registry.parser_of(s, "in_http", ctx)?));
    }
    let Some(p) = section else { return Ok(Format::Default(TimeField::default())) };
    let time_type = p.enum_or("time_type", &["float", "unixtime", "string"], "float")?;
    let time_format = p.opt_str("time_format");
    let parser = match (time_format, time_type.as_str()) {
        (Some(f), _) => Some(
            TimeParser::new(Some(&f), p.bool_or("localtime", true)? && !p.bool_or("utc", false)?, p.get("timezone"))
                .map_err(|e| p.error_at("time_format", e))?,
        ),
        (None, "string") => Some(
            TimeParser::new(None, p.bool_or("localtime", true)? && !p.bool_or("utc", false)?, p.get("timezone"))
                .map_err(|e| p.error_at("time_type", e))?,
        ),
        (None, _) => None,
    };
    Ok(Format::Default(TimeField {
        key: p.str_or("time_key", "time"),
        keep: p.bool_or("keep_time_key", false)?,
        parser,
    }))
}

fn read_config(s: &Element, ctx: &BuildCtx) -> Result<Config, ConfigError> {
    let port = s.int_or("port", DEFAULT_PORT as i64)?;
    let port = u16::try_from(port).map_err(|_| s.error_at("port", format!("port {port} is out of range")))?;
    let backlog = match s.opt_int("backlog")? {
        None => None,
        Some(b) => Some(u32::try_from(b).map_err(|_| s.error_at("backlog", "backlog must be 0 or more"))?),
    };
    let limit = s.size_or("body_size_limit", DEFAULT_BODY_SIZE_LIMIT)?;
    let body_size_limit = usize::try_from(limit)
        .ok()
        .filter(|l| *l > 0)
        .ok_or_else(|| s.error_at("body_size_limit", "body_size_limit must be more than 0"))?;
    let keepalive = s.time_or("keepalive_timeout", 10.0)?;
    let keepalive_timeout = Duration::try_from_secs_f64(keepalive)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| s.error_at("keepalive_timeout", "keepalive_timeout must be a positive time"))?;
    // Accepted for compatibility: Cool.io's event-loop timeout has no meaning here.
    let _ = s.opt_time("blocking_timeout")?;
    let cors_allow_origins = s.array("cors_allow_origins")?;
    let cors_allow_credentials = s.bool_or("cors_allow_credentials", false)?;
    if cors_allow_credentials && cors_allow_origins.as_ref().is_none_or(|o| o.iter().any(|x| x == "*")) {
        return Err(
            s.error_at("cors_allow_credentials", "Cannot enable cors_allow_credentials without specific origins")
        );
    }
    let mut tls = None;
    if let Some(t) = s.section("transport") {
        match t.arg.trim() {
            "" | "tcp" => t.mark_all_used(),
            "tls" => tls = Some(ServerTls::from_section(t)?),
            other => return Err(t.error(format!("unknown transport '{other}' (in_http supports tcp and tls)"))),
        }
    }
    Ok(Config {
        bind: s.str_or("bind", "0.0.0.0"),
        port,
        backlog,
        body_size_limit,
        keepalive_timeout,
        add_http_headers: s.bool_or("add_http_headers", false)?,
        add_remote_addr: s.bool_or("add_remote_addr", false)?,
        add_query_params: s.bool_or("add_query_params", false)?,
        cors_allow_origins,
        cors_allow_credentials,
        respond_with_empty_img: s.bool_or("respond_with_empty_img", false)?,
        use_204_response: s.bool_or("use_204_response", false)?,
        dump_error_log: s.bool_or("dump_error_log", true)?,
        format: read_format(s, ctx)?,
        tls,
    })
}

pub fn build_input(s: &Element, ctx: &BuildCtx) -> Result<HttpInput, ConfigError> {
    let cfg = read_config(s, ctx)?;
    let acceptor = crate::tls::configured_acceptor(cfg.tls.as_ref(), s, ctx.dry_run)?;
    Ok(HttpInput { cfg: Arc::new(cfg), stats: Arc::default(), acceptor })
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(build_input(s, ctx)?))
}

#[async_trait]
impl Input for HttpInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let addr = crate::net_util::bind_addr(&self.cfg.bind, self.cfg.port)?;
        let listener = crate::net_util::tcp_listener(addr, self.cfg.backlog.unwrap_or(1024))
            .map_err(|e| PluginError::Other(format!("in_http: cannot listen on {addr}: {e}")))?;
        tracing::info!(bind = %self.cfg.bind, port = self.cfg.port, "in_http: listening");
        let handler = Arc::new(Handler { cfg: self.cfg.clone(), stats: self.stats.clone(), emitter });
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.wait() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let h = handler.clone();
                        let stop = ctx.shutdown.clone();
                        match self.acceptor.clone() {
                            None => { conns.spawn(serve(h, stream, peer, stop)); }
                            Some(acceptor) => {
                                conns.spawn(async move {
                                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                        Ok(Ok(tls)) => serve(h, tls, peer, stop).await,
                                        Ok(Err(e)) => tracing::warn!(peer = %peer, error = %e, "in_http: TLS handshake failed"),
                                        Err(_) => tracing::warn!(peer = %peer, "in_http: TLS handshake timed out"),
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "in_http: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        // Requests being stored finish (and are answered) first; idle connections close at once.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), async { while conns.join_next().await.is_some() {} }).await;
        Ok(())
    }

    fn reporter(&self) -> Option<Arc<dyn Report>> {
        Some(self.stats.clone())
    }
}

async fn serve<S>(h: Arc<Handler>, stream: S, peer: SocketAddr, stop: Shutdown)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let keepalive = h.cfg.keepalive_timeout;
    let svc = service_fn(move |req: Request<Incoming>| {
        let h = h.clone();
        async move { Ok::<_, std::convert::Infallible>(h.answer(req, peer).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The wait for the next request head is the idle keep-alive time (Fluentd's keepalive_timeout).
    builder.timer(TokioTimer::new()).header_read_timeout(keepalive);
    // A client that shuts down its side after sending (nc, some scripts) still gets its answer.
    builder.half_close(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => { if let Err(e) = r { tracing::debug!(peer = %peer, error = %e, "in_http: connection ended"); } }
        _ = stop.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// What one request gets back.
struct Reply {
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Bytes,
    close: bool,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply { status, content_type: Some("text/plain"), body: body.into(), close: false, headers: Vec::new() }
    }
    fn closing(mut self) -> Self {
        self.close = true;
        self
    }
    fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        if let Some(ct) = self.content_type {
            h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        if self.close {
            h.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The tag of a request path: `/a/b` → `a.b` (Ruby's `split('/')` drops trailing empty parts).
pub fn tag_of(path: &str) -> String {
    let p = path.strip_prefix('/').unwrap_or(path);
    let mut parts: Vec<&str> = p.split('/').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.join(".")
}

/// Fluentd's `include_cors_allow_origin`: an exact entry, or an entry with one `*` that matches the
/// origin's start and end.
pub fn origin_allowed(origins: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return false };
    origins.iter().any(|o| {
        o == origin
            || o.split_once('*').is_some_and(|(start, end)| {
                origin.len() >= start.len() + end.len() && origin.starts_with(start) && origin.ends_with(end)
            })
    })
}

struct Handler {
    cfg: Arc<Config>,
    stats: Arc<InputStats>,
    emitter: Emitter,
}

impl Handler {
    async fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let reply = self.handle(req, peer).await;
        reply.into_response()
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let origin = header_str(req.headers(), "origin").map(str::to_string);
        // Load balancers' health checks (Azure App Service) GET the port.
        if req.method() == Method::GET {
            return Reply::text(StatusCode::OK, "").closing();
        }
        if req.method() == Method::OPTIONS {
            return self.preflight(req.headers(), origin.as_deref());
        }
        if let Some(e) = header_str(req.headers(), "expect") {
            if !e.eq_ignore_ascii_case("100-continue") {
                return Reply::text(StatusCode::EXPECTATION_FAILED, "").closing();
            }
        }
        let limit = self.cfg.body_size_limit;
        let declared = header_str(req.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return self.too_large();
        }
        let (parts, incoming) = req.into_parts();
        let body = match read_body(incoming, limit, declared, self.cfg.keepalive_timeout).await {
            Ok(b) => b,
            Err(BodyRead::TooLarge) => return self.too_large(),
            Err(BodyRead::Idle) => {
                tracing::debug!(peer = %peer, "in_http: the client sent nothing for keepalive_timeout inside a body");
                return Reply::text(StatusCode::REQUEST_TIMEOUT, "").closing();
            }
            Err(BodyRead::Failed(e)) => {
                tracing::debug!(peer = %peer, error = %e, "in_http: reading the body failed");
                return Reply::text(StatusCode::BAD_REQUEST, "").closing();
            }
        };
        if let Some(origins) = &self.cfg.cors_allow_origins {
            if !origins.iter().any(|o| o == "*") && !origin_allowed(origins, origin.as_deref()) {
                self.stats.forbidden.inc();
                return Reply::text(StatusCode::FORBIDDEN, "").closing();
            }
        }
        let tag = tag_of(parts.uri.path());
        let events = match self.decode(&parts, body, peer) {
            Ok(ev) => ev,
            Err(BodyError::TooLarge) => return self.too_large(),
            Err(BodyError::BadRequest(msg)) => {
                self.stats.bad_requests.inc();
                if self.cfg.dump_error_log {
                    tracing::error!(peer = %peer, path = parts.uri.path(), error = %msg, "in_http: failed to process request");
                }
                return Reply::text(StatusCode::BAD_REQUEST, format!("400 Bad Request\n{msg}\n"));
            }
        };
        let count = events.len() as u64;
        let mut reply = match self.emitter.emit_async(&tag, events).await {
            Ok(()) => {
                self.stats.requests.inc();
                self.stats.events.add(count);
                self.success()
            }
            Err(e @ EmitError::BufferOverflow { .. }) => {
                self.stats.refused_full.inc();
                if self.cfg.dump_error_log {
                    tracing::error!(peer = %peer, tag = %tag, events = count, error = %e, "in_http: failed to emit data; answered 500");
                }
                Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("500 Internal Server Error\n{e}\n"))
            }
            Err(e @ EmitError::ShuttingDown) => {
                Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("503 Service Unavailable\n{e}\n")).closing()
            }
        };
        if let Some(origins) = &self.cfg.cors_allow_origins {
            if origins.iter().any(|o| o == "*") {
                reply.headers.push(("access-control-allow-origin", "*".into()));
            } else if let Some(o) = origin.filter(|o| origin_allowed(origins, Some(o.as_str()))) {
                reply.headers.push(("access-control-allow-origin", o));
                if self.cfg.cors_allow_credentials {
                    reply.headers.push(("access-control-allow-credentials", "true".into()));
                }
            }
        }
        reply
    }

    fn success(&self) -> Reply {
        if self.cfg.respond_with_empty_img {
            let mut r = Reply::text(StatusCode::OK, Bytes::from_static(EMPTY_GIF));
            r.content_type = Some("image/gif; charset=utf-8");
            r
        } else if self.cfg.use_204_response {
            let mut r = Reply::text(StatusCode::NO_CONTENT, "");
            r.content_type = None;
            r
        } else {
            Reply::text(StatusCode::OK, "")
        }
    }

    fn too_large(&self) -> Reply {
        self.stats.too_large.inc();
        tracing::warn!(limit = self.cfg.body_size_limit, "in_http: request body over body_size_limit; answered 413");
        Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "Too large").closing()
    }

    /// A browser's CORS preflight (OPTIONS), answered as Fluentd does.
    fn preflight(&self, h: &HeaderMap, origin: Option<&str>) -> Reply {
        let forbidden = || Reply::text(StatusCode::FORBIDDEN, "").closing();
        let Some(origins) = &self.cfg.cors_allow_origins else { return forbidden() };
        if header_str(h, "access-control-request-method") != Some("POST") {
            return forbidden();
        }
        let mut r = Reply::text(StatusCode::OK, "").closing();
        r.headers.push(("access-control-allow-methods", "POST".into()));
        r.headers.push((
            "access-control-allow-headers",
            header_str(h, "access-control-request-headers").unwrap_or("").to_string(),
        ));
        if origins.iter().any(|o| o == "*") {
            r.headers.push(("access-control-allow-origin", "*".into()));
        } else if let Some(o) = origin.filter(|o| origin_allowed(origins, Some(*o))) {
            r.headers.push(("access-control-allow-origin", o.to_string()));
            if self.cfg.cors_allow_credentials {
                r.headers.push(("access-control-allow-credentials", "true".into()));
            }
        } else {
            return forbidden();
        }
        r
    }

    /// The request's events, or why it cannot be stored.
    fn decode(
        &self,
        parts: &hyper::http::request::Parts,
        body: Vec<u8>,
        peer: SocketAddr,
    ) -> Result<Vec<Event>, BodyError> {
        let h = &parts.headers;
        let encoding = header_str(h, "content-encoding").unwrap_or("");
        let body = body::decode_content(encoding, body, self.cfg.body_size_limit)?;
        let query = parts.uri.query().unwrap_or("").as_bytes();
        let mut params = Params::parse_query(query);
        let content_type = header_str(h, "content-type").unwrap_or("");
        let mut extra = Extra::default();
        if self.cfg.add_query_params {
            for (k, v) in Params::parse_query(query).iter() {
                extra.query.push((body::query_key(k), body::bytes_value(v)));
            }
        }
        if self.cfg.add_http_headers {
            for name in h.keys() {
                let mut values: Vec<Value> = h.get_all(name).iter().map(|v| body::bytes_value(v.as_bytes())).collect();
                let v = if values.len() == 1 { values.pop().unwrap_or_default() } else { Value::Array(values) };
                extra.headers.push((body::header_key(name.as_str()), v));
            }
        }
        if self.cfg.add_remote_addr {
            let forwarded = header_str(h, "x-forwarded-for").and_then(|v| v.split(',').next());
            let addr = match forwarded {
                Some(a) => a.to_string(),
                None => peer.ip().to_canonical().to_string(),
            };
            extra.remote_addr = Some(Value::Str(addr.into()));
        }
        let now = EventTime::now();
        let (decoded, field) = match &self.cfg.format {
            // A <parse> parser reads the time itself; a record without one is stamped now.
            Format::Parser(p) => {
                let decoded = parse_with(p.as_ref(), &body)?;
                (decoded.into_iter().map(|(t, r)| (Some(t.unwrap_or(now)), r)).collect(), None)
            }
            Format::Default(field) => {
                if content_type.starts_with("application/x-www-form-urlencoded") {
                    params.update_from_query(&body);
                } else if let Some(boundary) = body::multipart_boundary(content_type) {
                    params.update_from_multipart(&body, boundary)?;
                } else if content_type.starts_with("application/json")
                    || content_type.starts_with("application/csp-report")
                {
                    params.set("json", body);
                } else if content_type.starts_with("application/msgpack")
                    || content_type.starts_with("application/x-msgpack")
                {
                    params.set("msgpack", body);
                } else if content_type.starts_with("application/x-ndjson") {
                    params.set("ndjson", body);
                }
                (body::default_records(&params)?, Some(field))
            }
        };
        let default_field = TimeField::default();
        let field = field.unwrap_or(&default_field);
        let records = body::finish(decoded, &params, &extra, field, now)?;
        Ok(records.into_iter().map(|(t, r)| Event::new(t, r)).collect())
    }
}

enum BodyRead {
    TooLarge,
    /// Nothing arrived for `keepalive_timeout` (Fluentd closes such a connection, too).
    Idle,
    Failed(String),
}

/// Read the body up to `limit` bytes, giving up when the client stays silent for `idle`.
async fn read_body(
    incoming: Incoming,
    limit: usize,
    declared: Option<u64>,
    idle: Duration,
) -> Result<Vec<u8>, BodyRead> {
    let mut body = Limited::new(incoming, limit);
    let cap = declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0).min(limit);
    let mut out = Vec::with_capacity(cap);
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyRead::Idle),
            Ok(None) => return Ok(out),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(BodyRead::TooLarge)
            }
            Ok(Some(Err(e))) => return Err(BodyRead::Failed(e.to_string())),
        }
    }
}

/// The whole body through a `<parse>` parser (a JSON array gives one record per element).
fn parse_with(parser: &dyn Parser, body: &[u8]) -> Result<body::Decoded, BodyError> {
    let mut p = parser.new_instance();
    let text = String::from_utf8_lossy(body);
    // Logged: a time error quotes the value (record content), so it is not kept.
    let bad = |e: sluice_core::plugin::ParseError| {
        let why = match e {
            sluice_core::plugin::ParseError::Time { .. } => "the time does not match time_format".to_string(),
            other => other.to_string(),
        };
        BodyError::BadRequest(format!("Received event is not parsable: {why}"))
    };
    let mut out = Vec::new();
    match p.parse(&text).map_err(bad)? {
        Some(first) => {
            out.push((first.time, first.record));
            while let Some(more) = p.take_extra() {
                let more = more.map_err(bad)?;
                out.push((more.time, more.record));
            }
        }
        None => {
            if let Some(last) = p.flush() {
                out.push((last.time, last.record));
            }
        }
    }
    Ok(out)
}
