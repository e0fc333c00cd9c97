//! `<match> @type http` against a Python `http.server` started by the test on 127.0.0.1, which records
//! every request (method, path, headers, body) and answers from a plan: ndjson and JSON array bodies,
//! gzip, PUT, basic auth, placeholders in the endpoint and headers, HTTPS with a private CA, retryable
//! codes retried until delivered, other codes to `<secondary>`, and a hanging server cut by read_timeout.
mod common;

use base64::Engine as _;
use common::*;
use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use sluice_core::event::EventTime;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Answers each path prefix of the plan with its list of steps in turn (the last repeats): a status
/// code, or "hang" (read the request, then answer nothing for 5 s). Prints one JSON line per request.
const SERVER: &str = r#"
import sys, json, base64, time, threading, ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
plan = json.loads(sys.argv[1])
counts, lock = {}, threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self): self.answer()
    def do_PUT(self): self.answer()
    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = next((p for p in plan if self.path.startswith(p)), "")
        with lock:
            i = counts.get(key, 0)
            counts[key] = i + 1
        steps = plan.get(key, [200])
        step = steps[min(i, len(steps) - 1)]
        print(json.dumps({"method": self.command, "path": self.path, "answer": step,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": base64.b64encode(body).decode()}), flush=True)
        if step == "hang":
            time.sleep(5)
            self.close_connection = True
            return
        payload = b"ok" if step < 300 else b"no such luck"
        self.send_response(step)
        if step == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 4:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(json.dumps({"port": srv.server_address[1]}), flush=True)
srv.serve_forever()
"#;

struct Server {
    child: Child,
    port: u16,
    requests: Arc<Mutex<Vec<Json>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn requests(&self) -> Vec<Json> {
        self.requests.lock().clone()
    }
    fn to(&self, prefix: &str) -> Vec<Json> {
        self.requests().into_iter().filter(|r| r["path"].as_str().unwrap().starts_with(prefix)).collect()
    }
}

fn have_python() -> bool {
    let ok = Command::new(python()).args(["-c", "import http.server"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: Python not found (SLUICE_TEST_PYTHON)");
    }
    ok
}

fn server(plan: Json, tls: Option<(&str, &str)>) -> Server {
    server_with(plan, tls, None)
}

/// With `client_ca`, the server requires a client certificate signed by it.
fn server_with(plan: Json, tls: Option<(&str, &str)>, client_ca: Option<&str>) -> Server {
    let mut cmd = Command::new(python());
    cmd.args(["-c", SERVER, &plan.to_string()]);
    if let Some((cert, key)) = tls {
        cmd.args([cert, key]);
    }
    if let Some(ca) = client_ca {
        cmd.arg(ca);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Json = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let port = first["port"].as_u64().unwrap() as u16;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let sink = requests.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Json>(&l) {
                sink.lock().push(v);
            }
        }
    });
    Server { child, port, requests }
}

/// sluice: in_forward on `in_port` (the test feeds it) → out_http with `body`.
fn agent(in_port: u16, body: &str) -> Running {
    let r = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {in_port}\n</source>\n<match **>\n @type http\n{body}\n</match>\n"
    ));
    wait_listening(in_port);
    r
}

const BUFFER: &str =
    " <buffer tag>\n  flush_interval 0.2\n  retry_wait 0.1\n  retry_max_interval 0.3\n  retry_forever true\n </buffer>";

/// Send events with records `{"id": i, "msg": ...}` to in_forward as one acked Forward frame.
fn feed(port: u16, tag: &str, ids: std::ops::Range<i64>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut f = vec![0x93];
    rmp::encode::write_str(&mut f, tag).unwrap();
    rmp::encode::write_array_len(&mut f, ids.clone().count() as u32).unwrap();
    for id in ids {
        f.push(0x92);
        sluice_core::event::write_event_time(EventTime::new(1_700_000_000 + id, 0), &mut f);
        sluice_core::event::write_map(&rec(&format!(r#"{{"id":{id},"msg":"ünï {id}"}}"#)), &mut f);
    }
    f.extend([0x81, 0xa5]);
    f.extend(b"chunk");
    rmp::encode::write_str(&mut f, "c").unwrap();
    s.write_all(&f).unwrap();
    let mut ack = [0u8; 64];
    assert!(s.read(&mut ack).unwrap() > 0, "in_forward acked");
}

fn body_of(r: &Json) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(r["body"].as_str().unwrap()).unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

fn ids_in(records: &[Json]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[test]
fn ndjson_with_basic_auth_headers_and_placeholders() {
    if !have_python() {
        return;
    }
    let srv = server(json!({}), None);
    let in_port = free_port();
    let _a = agent(
        in_port,
        &format!(
            " endpoint http://127.0.0.1:{}/logs/${{tag}}?src=sluice\n headers {{\"X-Static\":\"s1\"}}\n headers_from_placeholders {{\"X-Tag\":\"${{tag[1]}}\"}}\n <auth>\n  method basic\n  username alice\n  password s3cret\n </auth>\n{BUFFER}",
            srv.port
        ),
    );
    feed(in_port, "app.one", 0..3);
    feed(in_port, "app.two", 3..5);
    wait_until("two requests", || srv.requests().len() >= 2);
    let mut reqs = srv.requests();
    reqs.sort_by_key(|r| r["path"].as_str().unwrap().to_string());
    assert_eq!(reqs.len(), 2);
    for (r, (path, tag1, ids)) in reqs
        .iter()
        .zip([("/logs/app.one?src=sluice", "one", vec![0, 1, 2]), ("/logs/app.two?src=sluice", "two", vec![3, 4])])
    {
        assert_eq!(r["method"], "POST");
        assert_eq!(r["path"], path);
        let h = &r["headers"];
        assert_eq!(h["content-type"], "application/x-ndjson");
        assert_eq!(
            h["authorization"],
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:s3cret"))
        );
        assert_eq!(h["x-static"], "s1");
        assert_eq!(h["x-tag"], tag1);
        let body = String::from_utf8(body_of(r)).unwrap();
        assert!(body.ends_with('\n'));
        let records: Vec<Json> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(ids_in(&records), ids);
        assert_eq!(records[0]["msg"], format!("ünï {}", ids[0]));
    }
}

#[test]
fn json_array_gzip_and_put() {
    if !have_python() {
        return;
    }
    let srv = server(json!({}), None);
    let in_port = free_port();
    let _a = agent(
        in_port,
        &format!(
            " endpoint http://127.0.0.1:{}/bulk\n http_method put\n json_array true\n compress gzip\n{BUFFER}",
            srv.port
        ),
    );
    feed(in_port, "arr", 0..4);
    wait_until("one request", || !srv.requests().is_empty());
    let r = &srv.requests()[0];
    assert_eq!(r["method"], "PUT");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert_eq!(r["headers"]["content-encoding"], "gzip");
    let records: Vec<Json> = serde_json::from_slice(&gunzip(&body_of(r))).expect("a JSON array");
    assert_eq!(ids_in(&records), vec![0, 1, 2, 3]);
}

#[test]
fn https_with_a_private_ca() {
    if !have_python() {
        return;
    }
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let f = |n: &str| tls.join(n).display().to_string();
    let (cert, key) = (f("server.pem"), f("server.key"));
    let srv = server(json!({}), Some((&cert, &key)));
    let in_port = free_port();
    let _a = agent(
        in_port,
        &format!(" endpoint https://localhost:{}/secure\n tls_ca_cert_path {}\n{BUFFER}", srv.port, f("ca.pem")),
    );
    feed(in_port, "tls.app", 0..2);
    wait_until("a request over TLS", || !srv.requests().is_empty());
    let records: Vec<Json> = String::from_utf8(body_of(&srv.requests()[0]))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids_in(&records), vec![0, 1]);
    // A server that requires a client certificate gets ours.
    let mtls = server_with(json!({}), Some((&cert, &key)), Some(&f("ca.pem")));
    let in2 = free_port();
    let _b = agent(
        in2,
        &format!(
            " endpoint https://127.0.0.1:{}/mtls\n tls_ca_cert_path {}\n tls_client_cert_path {}\n tls_private_key_path {}\n{BUFFER}",
            mtls.port,
            f("ca.pem"),
            f("client.pem"),
            f("client.key")
        ),
    );
    feed(in2, "mtls.app", 5..6);
    wait_until("a request with a client certificate", || !mtls.requests().is_empty());
    assert_eq!(mtls.requests()[0]["path"], "/mtls");
}

#[test]
fn retryable_codes_are_retried_others_go_to_secondary() {
    if !have_python() {
        return;
    }
    let srv = server(json!({"/retry": [503, 429, 502, 200], "/fail": [500], "/drop": [400]}), None);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let base = format!("http://127.0.0.1:{}", srv.port);
    let _a = agent(p1, &format!(" endpoint {base}/retry\n retryable_response_codes [503, 429, 502]\n{BUFFER}"));
    let _b = agent(
        p2,
        &format!(" endpoint {base}/fail\n{BUFFER}\n <secondary>\n  @type capture\n  run http-secondary\n </secondary>"),
    );
    let _c = agent(p3, &format!(" endpoint {base}/drop\n error_response_as_unrecoverable false\n{BUFFER}"));
    feed(p1, "r", 0..3);
    feed(p2, "f", 10..12);
    feed(p3, "d", 20..21);
    wait_until("delivered after three retryable answers", || srv.to("/retry").len() >= 4);
    wait_until("the failed chunk in <secondary>", || sink("http-secondary").len() >= 2);
    wait_until("the dropped chunk's request", || !srv.to("/drop").is_empty());
    let retry = srv.to("/retry");
    let answers: Vec<Json> = retry.iter().map(|r| r["answer"].clone()).collect();
    assert_eq!(answers, vec![json!(503), json!(429), json!(502), json!(200)]);
    assert!(retry.windows(2).all(|w| w[0]["body"] == w[1]["body"]), "the same chunk each time");
    let sec = sink("http-secondary").events();
    assert_eq!(
        sec.iter().map(|(_, e)| e.record.get("id").cloned()).collect::<Vec<_>>(),
        vec![Some(sluice_core::event::Value::Int(10)), Some(sluice_core::event::Value::Int(11))]
    );
    assert_eq!(sec[0].0, "f");
    // 500 is not retryable: one request, then <secondary>; 400 with error_response_as_unrecoverable false:
    // one request, then dropped (counted), not retried.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(srv.to("/fail").len(), 1);
    assert_eq!(srv.to("/drop").len(), 1);
    assert_eq!(srv.to("/retry").len(), 4);
}

#[test]
fn a_hanging_server_hits_read_timeout_and_the_chunk_is_retried() {
    if !have_python() {
        return;
    }
    let srv = server(json!({"/slow": ["hang", 200]}), None);
    let in_port = free_port();
    let _a = agent(in_port, &format!(" endpoint http://127.0.0.1:{}/slow\n read_timeout 1\n{BUFFER}", srv.port));
    feed(in_port, "slow", 0..2);
    wait_until("the retry after the timeout", || srv.to("/slow").len() >= 2);
    let reqs = srv.to("/slow");
    assert_eq!(reqs[0]["answer"], "hang");
    assert_eq!(reqs[1]["answer"], 200);
    assert_eq!(reqs[0]["body"], reqs[1]["body"]);
}

#[test]
fn configuration_errors() {
    let conf = |body: &str| format!("<match **>\n @type http\n{body}\n</match>\n");
    let e = config_errors(&conf(" endpoint http://x/${tag}"));
    assert!(e.contains("test.conf:") && e.contains("tag"), "{e}");
    let e =
        config_errors(&conf(" endpoint http://x/\n json_array true\n <format>\n  @type csv\n  fields a\n </format>"));
    assert!(e.contains("json_array option could be used with json formatter only"), "{e}");
    let e = config_errors(&conf(
        " endpoint http://x/\n <auth>\n  method aws_sigv4\n  aws_service es\n  aws_region us-east-1\n </auth>",
    ));
    assert!(e.contains("aws_sigv4 is not supported"), "{e}");
    let e = config_errors(&conf(" endpoint https://x/\n tls_verify_mode none"));
    assert!(e.contains("tls_verify_mode none is not supported"), "{e}");
    let e = config_errors(&conf(" http_method get\n endpoint http://x/"));
    assert!(e.contains("http_method"), "{e}");
    let e = config_errors(&conf(" endpoint http://x/\n retryable_response_codes [\"abc\"]"));
    assert!(e.contains("not an HTTP status code"), "{e}");
    let e = config_errors(&conf(" endpoint ftp://x/"));
    assert!(e.contains("endpoint must be an http:// or https:// URL"), "{e}");
    let e = config_errors(&conf(" endpoint not a url"));
    assert!(e.contains("is not a URL"), "{e}");
    let e = config_errors(&conf(" http_method post"));
    assert!(e.contains("endpoint"), "{e}");
}

#[test]
fn sluice_out_http_to_sluice_in_http_in_every_body_format() {
    let cases = [
        ("ndjson", ""),
        ("array", " json_array true\n compress gzip"),
        ("msgpack", " <format>\n  @type msgpack\n </format>"),
    ];
    for (name, extra) in cases {
        let (agg_port, in_port) = (free_port(), free_port());
        let run = format!("http-pair-{name}");
        let _agg = start(&format!(
            "<source>\n @type http\n bind 127.0.0.1\n port {agg_port}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
        ));
        wait_listening(agg_port);
        let _agent = agent(in_port, &format!(" endpoint http://127.0.0.1:{agg_port}/from.${{tag}}\n{extra}\n{BUFFER}"));
        feed(in_port, "pair", 0..5);
        wait_until("five events through HTTP", || sink(&run).len() >= 5);
        let got = sink(&run).events();
        assert_eq!(got.len(), 5, "{name}");
        for (i, (tag, e)) in got.iter().enumerate() {
            assert_eq!(tag, "from.pair", "{name}");
            assert_eq!(e.record, rec(&format!(r#"{{"id":{i},"msg":"ünï {i}"}}"#)), "{name}");
        }
    }
}

#[test]
fn without_secondary_an_error_answer_goes_to_the_error_label() {
    if !have_python() {
        return;
    }
    let srv = server(json!({"/reject": [422]}), None);
    let in_port = free_port();
    let _r = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {in_port}\n</source>\n<match **>\n @type http\n endpoint http://127.0.0.1:{}/reject\n{BUFFER}\n</match>\n<label @ERROR>\n <match **>\n  @type capture\n  run http-error-label\n </match>\n</label>\n",
        srv.port
    ));
    wait_listening(in_port);
    feed(in_port, "rej", 0..3);
    wait_until("the rejected chunk under @ERROR", || sink("http-error-label").len() >= 3);
    let got = sink("http-error-label").events();
    assert_eq!(got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), vec!["rej"; 3]);
    assert_eq!(srv.to("/reject").len(), 1, "422 is not retried");
}

#[test]
fn requests_go_through_the_proxy() {
    if !have_python() {
        return;
    }
    // The recording server plays the proxy: it sees the absolute URL of the endpoint.
    let proxy = server(json!({}), None);
    let in_port = free_port();
    let _a = agent(
        in_port,
        &format!(" endpoint http://logs.example.invalid:8080/ingest\n proxy http://127.0.0.1:{}\n{BUFFER}", proxy.port),
    );
    feed(in_port, "px", 0..2);
    wait_until("a request through the proxy", || !proxy.requests().is_empty());
    let r = &proxy.requests()[0];
    assert_eq!(r["path"], "http://logs.example.invalid:8080/ingest");
    assert_eq!(r["headers"]["host"], "logs.example.invalid:8080");
}
