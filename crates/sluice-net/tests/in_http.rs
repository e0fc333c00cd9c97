//! `<source> @type http` against real clients: Python `requests` (with `msgpack` bodies, as
//! fluent-logger's HTTP users send them) and `curl`. JSON, msgpack, ndjson and form bodies, batches,
//! `/tag` paths, times, headers and remote address keys, CORS, size limits, malformed bodies,
//! backpressure (a full buffer answers 500, never 200), `<parse>` and `<transport tls>`.
mod common;

use common::*;
use serde_json::{json, Value as Json};
use sluice_core::event::{EventTime, Value};
use std::process::Command;
use std::sync::atomic::Ordering;

/// Runs a list of requests on one `requests.Session` (keep-alive) and prints what came back.
const CLIENT: &str = r#"
import sys, json, gzip, requests, msgpack
port, reqs = int(sys.argv[1]), json.loads(sys.argv[2])
scheme = sys.argv[3] if len(sys.argv) > 3 else "http"
verify = sys.argv[4] if len(sys.argv) > 4 else True
s = requests.Session()
out = []
for r in reqs:
    kind, v = r.get("kind"), r.get("value")
    headers = dict(r.get("headers", {}))
    body, files = None, None
    if kind == "json":
        body = json.dumps(v).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kind == "msgpack":
        body = msgpack.packb(v)
        headers.setdefault("Content-Type", "application/msgpack")
    elif kind == "msgpack_stream":
        body = b"".join(msgpack.packb(x) for x in v)
        headers.setdefault("Content-Type", "application/msgpack")
    elif kind == "form":
        body = {k: (msgpack.packb(x) if k == "msgpack" else json.dumps(x)) for k, x in v.items()}
    elif kind == "fluentbit":
        # Fluent Bit's out_http msgpack: [EventTime, record] per event, back to back.
        import struct
        body = b"".join(msgpack.packb([msgpack.ExtType(0, struct.pack(">II", t, 5)), x]) for t, x in v)
        headers.setdefault("Content-Type", "application/msgpack")
    elif kind == "multipart":
        files = {k: (None, json.dumps(x)) for k, x in v.items()}
    elif kind == "raw":
        body = v.encode()
    elif kind == "gzip_json":
        body = gzip.compress(json.dumps(v).encode())
        headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
    elif kind == "chunked":
        body = iter([v.encode()])
    try:
        resp = s.request(r.get("method", "POST"), f"{scheme}://127.0.0.1:{port}{r['path']}", data=body, files=files,
                         headers=headers, timeout=20, verify=verify)
        out.append({"status": resp.status_code, "body": resp.text, "headers": {k.lower(): v for k, v in resp.headers.items()}})
    except Exception as e:
        out.append({"status": 0, "body": repr(e), "headers": {}})
print(json.dumps(out))
"#;

fn conf(port: u16, run: &str, extra: &str) -> String {
    format!(
        "<source>\n @type http\n bind 127.0.0.1\n port {port}\n{extra}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
    )
}

fn have_python() -> bool {
    let ok = Command::new(python()).args(["-c", "import requests, msgpack"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: Python with requests and msgpack not found (SLUICE_TEST_PYTHON)");
    }
    ok
}

fn have_curl() -> bool {
    let ok = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: curl not found");
    }
    ok
}

/// Send `reqs` with Python `requests`; the answers in order.
fn send_with(port: u16, reqs: Json, tls_ca: Option<&str>) -> Vec<Json> {
    let mut cmd = Command::new(python());
    cmd.args(["-c", CLIENT, &port.to_string(), &reqs.to_string()]);
    if let Some(ca) = tls_ca {
        cmd.args(["https", ca]);
    }
    let out = cmd.output().expect("python");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Json = serde_json::from_slice(&out.stdout).expect("client output");
    v.as_array().unwrap().clone()
}

fn send(port: u16, reqs: Json) -> Vec<Json> {
    send_with(port, reqs, None)
}

fn statuses(answers: &[Json]) -> Vec<i64> {
    answers.iter().map(|a| a["status"].as_i64().unwrap()).collect()
}

fn curl(args: &[&str]) -> (i64, String, String) {
    let out = Command::new("curl").args(["-s", "-D", "-", "--max-time", "20"]).args(args).output().expect("curl");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    // An interim `100 Continue` comes before the answer.
    while text.starts_with("HTTP/1.1 100") {
        text = text.split_once("\r\n\r\n").map(|(_, rest)| rest.to_string()).unwrap_or_default();
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn start_http(port: u16, run: &str, extra: &str) -> Running {
    let r = start(&conf(port, run, extra));
    wait_listening(port);
    r
}

#[test]
fn json_msgpack_ndjson_and_form_bodies_become_tagged_events() {
    if !have_python() {
        return;
    }
    let port = free_port();
    let _r = start_http(port, "bodies", "");
    let answers = send(
        port,
        json!([
            {"path": "/app.log", "kind": "json", "value": {"a": 1, "s": "ünï"}},
            {"path": "/app/web", "kind": "form", "value": {"json": {"b": 2}}},
            {"path": "/mp", "kind": "msgpack", "value": {"c": 3, "nested": {"x": [1, 2]}}},
            {"path": "/mpform", "kind": "form", "value": {"msgpack": {"bin": "é\u{0}&=+%"}}},
            {"path": "/batch", "kind": "json", "value": [{"n": 1, "time": 1_700_000_000}, {"n": 2, "time": 1_700_000_000.25}]},
            {"path": "/q?time=1700000001.5", "kind": "json", "value": {"d": 4, "time": 5}},
            {"path": "/nd", "kind": "raw", "value": "{\"e\":1}\r\n\n{\"e\":2}\n", "headers": {"Content-Type": "application/x-ndjson"}},
            {"path": "/mpbatch", "kind": "msgpack", "value": [{"f": 1}, {"f": 2}]},
            {"path": "/mpstream", "kind": "msgpack_stream", "value": [{"g": 1}, [{"g": 2}, {"g": 3}]]},
            {"path": "/gz", "kind": "gzip_json", "value": {"h": "compressed"}},
            {"path": "/query?json=%7B%22i%22%3A1%7D", "kind": "raw", "value": "", "headers": {"Content-Type": "text/plain"}},
            {"path": "/multi", "kind": "multipart", "value": {"json": {"j": "multipart"}}},
            {"path": "/fb", "kind": "fluentbit", "value": [[1_700_000_010, {"fb": 1}], [1_700_000_011, {"fb": 2}]]},
            {"path": "/xmp", "kind": "msgpack", "value": {"x": 1}, "headers": {"Content-Type": "application/x-msgpack"}},
        ]),
    );
    assert_eq!(statuses(&answers), vec![200; 14], "{answers:?}");
    assert!(answers.iter().all(|a| a["body"] == "" && a["headers"]["content-type"] == "text/plain"));
    let want: Vec<(&str, &str)> = vec![
        ("app.log", r#"{"a":1,"s":"ünï"}"#),
        ("app.web", r#"{"b":2}"#),
        ("mp", r#"{"c":3,"nested":{"x":[1,2]}}"#),
        ("mpform", r#"{"bin":"é\u0000&=+%"}"#),
        ("batch", r#"{"n":1}"#),
        ("batch", r#"{"n":2}"#),
        ("q", r#"{"d":4,"time":5}"#),
        ("nd", r#"{"e":1}"#),
        ("nd", r#"{"e":2}"#),
        ("mpbatch", r#"{"f":1}"#),
        ("mpbatch", r#"{"f":2}"#),
        ("mpstream", r#"{"g":1}"#),
        ("mpstream", r#"{"g":2}"#),
        ("mpstream", r#"{"g":3}"#),
        ("gz", r#"{"h":"compressed"}"#),
        ("query", r#"{"i":1}"#),
        ("multi", r#"{"j":"multipart"}"#),
        ("fb", r#"{"fb":1}"#),
        ("fb", r#"{"fb":2}"#),
        ("xmp", r#"{"x":1}"#),
    ];
    let got = sink("bodies").events();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((tag, e), (wtag, wrec)) in got.iter().zip(&want) {
        assert_eq!((tag.as_str(), &e.record), (*wtag, &rec(wrec)));
    }
    assert_eq!(got[4].1.time, EventTime::new(1_700_000_000, 0));
    assert_eq!(got[5].1.time, EventTime::new(1_700_000_000, 250_000_000));
    assert_eq!(got[6].1.time, EventTime::new(1_700_000_001, 500_000_000));
    assert_eq!(got[17].1.time, EventTime::new(1_700_000_010, 5), "a Fluent Bit event keeps its time");
    assert_eq!(got[18].1.time, EventTime::new(1_700_000_011, 5));
    let now = EventTime::now().sec;
    assert!((now - got[0].1.time.sec).abs() < 60, "no time: stamped now");
}

#[test]
fn malformed_bodies_are_refused_whole_and_later_requests_work() {
    if !have_python() {
        return;
    }
    let port = free_port();
    let _r = start_http(port, "malformed", "");
    let answers = send(
        port,
        json!([
            {"path": "/bad", "kind": "raw", "value": "{not json", "headers": {"Content-Type": "application/json"}},
            {"path": "/bad", "kind": "json", "value": [{"ok": 1}, 5]},
            {"path": "/bad", "kind": "json", "value": "just a string"},
            {"path": "/bad", "kind": "raw", "value": "\u{93}\u{1}", "headers": {"Content-Type": "application/msgpack"}},
            {"path": "/bad", "kind": "raw", "value": "hello", "headers": {"Content-Type": "text/plain"}},
            {"path": "/bad", "kind": "json", "value": {"time": "yesterday"}},
            {"path": "/bad", "kind": "raw", "value": "{\"a\":1}\nnope\n", "headers": {"Content-Type": "application/x-ndjson"}},
            {"path": "/bad", "kind": "raw", "value": "not gzip", "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"}},
            {"path": "/good", "kind": "json", "value": {"after": true}},
        ]),
    );
    assert_eq!(statuses(&answers), vec![400, 400, 400, 400, 400, 400, 400, 400, 200], "{answers:?}");
    assert!(answers[0]["body"].as_str().unwrap().starts_with("400 Bad Request\n"), "{answers:?}");
    assert!(answers[4]["body"].as_str().unwrap().contains("'json', 'ndjson' or 'msgpack' parameter is required"));
    let got = sink("malformed").events();
    assert_eq!(got.len(), 1, "nothing of a refused request is stored: {got:?}");
    assert_eq!((got[0].0.as_str(), &got[0].1.record), ("good", &rec(r#"{"after":true}"#)));
}

#[test]
fn body_size_limit_answers_413_and_the_server_goes_on() {
    if !have_python() {
        return;
    }
    let port = free_port();
    let _r = start_http(port, "limit", " body_size_limit 1k");
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(4000));
    let answers = send(
        port,
        json!([
            {"path": "/big", "kind": "raw", "value": big, "headers": {"Content-Type": "application/json"}},
            {"path": "/small", "kind": "json", "value": {"n": 1}},
            {"path": "/chunked", "kind": "chunked", "value": big, "headers": {"Content-Type": "application/json"}},
            {"path": "/bomb", "kind": "gzip_json", "value": {"pad": "y".repeat(4000)}},
            {"path": "/small", "kind": "json", "value": {"n": 2}},
        ]),
    );
    assert_eq!(statuses(&answers), vec![413, 200, 413, 413, 200], "{answers:?}");
    assert_eq!(answers[0]["body"], "Too large");
    let got = sink("limit").events();
    assert_eq!(
        got.iter().map(|(_, e)| e.record.clone()).collect::<Vec<_>>(),
        vec![rec(r#"{"n":1}"#), rec(r#"{"n":2}"#)]
    );
}

#[test]
fn a_full_buffer_answers_500_so_the_client_retries() {
    if !have_python() {
        return;
    }
    let port = free_port();
    let _r = start_http(port, "full", "");
    sink("full").refuse.store(2, Ordering::SeqCst);
    let one = json!([{"path": "/retry.me", "kind": "json", "value": {"k": "v"}}]);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let a = send(port, one.clone());
        codes.push(a[0]["status"].as_i64().unwrap());
        if codes.len() == 1 {
            assert!(a[0]["body"].as_str().unwrap().starts_with("500 Internal Server Error"), "{a:?}");
        }
    }
    assert_eq!(codes, vec![500, 500, 200]);
    assert_eq!(sink("full").refused.load(Ordering::SeqCst), 2);
    assert_eq!(sink("full").len(), 1, "stored once, when it was answered 200");
}

#[test]
fn headers_remote_address_and_query_params_with_curl() {
    if !have_curl() {
        return;
    }
    let port = free_port();
    let _r = start_http(port, "hdr", " add_http_headers true\n add_remote_addr true\n add_query_params true");
    let url = format!("http://127.0.0.1:{port}/hdr.tag?foo-bar=baz&time=1700000002");
    let (code, _, _) = curl(&["-H", "X-Custom-Header: v1", "-H", "User-Agent: tester", "-d", r#"json={"a":1}"#, &url]);
    assert_eq!(code, 200);
    let url = format!("http://127.0.0.1:{port}/fwd");
    let (code, _, _) = curl(&[
        "-H",
        "X-Forwarded-For: 10.1.2.3, 10.0.0.1",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"b":2}"#,
        &url,
    ]);
    assert_eq!(code, 200);
    let got = sink("hdr").events();
    assert_eq!(got.len(), 2);
    let r = &got[0].1.record;
    assert_eq!(got[0].0, "hdr.tag");
    assert_eq!(got[0].1.time, EventTime::new(1_700_000_002, 0));
    assert_eq!(r.get("a"), Some(&Value::Int(1)));
    assert_eq!(r.get("HTTP_X_CUSTOM_HEADER"), Some(&s("v1")));
    assert_eq!(r.get("HTTP_USER_AGENT"), Some(&s("tester")));
    assert_eq!(r.get("HTTP_CONTENT_TYPE"), Some(&s("application/x-www-form-urlencoded")));
    assert_eq!(r.get("QUERY_FOO_BAR"), Some(&s("baz")));
    assert_eq!(r.get("QUERY_TIME"), Some(&s("1700000002")));
    assert_eq!(r.get("REMOTE_ADDR"), Some(&s("127.0.0.1")));
    assert_eq!(got[1].1.record.get("REMOTE_ADDR"), Some(&s("10.1.2.3")));
}

#[test]
fn cors_preflight_and_origins_with_curl() {
    if !have_curl() {
        return;
    }
    let port = free_port();
    let _r = start_http(
        port,
        "cors",
        r#" cors_allow_origins ["http://foo.com", "https://*.example.com"]
 cors_allow_credentials true"#,
    );
    let url = format!("http://127.0.0.1:{port}/cors.tag");
    let pre = |origin: &str, method: &str| {
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            &format!("Access-Control-Request-Method: {method}"),
            "-H",
            "Access-Control-Request-Headers: Content-Type",
            &url,
        ])
    };
    let (code, head, _) = pre("http://foo.com", "POST");
    assert_eq!(code, 200);
    assert!(head.contains("access-control-allow-origin: http://foo.com"), "{head}");
    assert!(head.contains("access-control-allow-credentials: true"), "{head}");
    assert!(head.contains("access-control-allow-methods: post"), "{head}");
    assert!(head.contains("access-control-allow-headers: content-type"), "{head}");
    assert_eq!(pre("https://a.example.com", "POST").0, 200);
    assert_eq!(pre("http://evil.com", "POST").0, 403);
    assert_eq!(pre("http://foo.com", "DELETE").0, 403);
    let post = |origin: &str| {
        curl(&["-H", &format!("Origin: {origin}"), "-H", "Content-Type: application/json", "-d", r#"{"o":1}"#, &url])
    };
    let (code, head, _) = post("https://app.example.com");
    assert_eq!(code, 200);
    assert!(head.contains("access-control-allow-origin: https://app.example.com"), "{head}");
    assert_eq!(post("http://evil.com").0, 403);
    assert_eq!(sink("cors").len(), 1, "the refused origin stored nothing");
    let e = config_errors(&conf(1, "x", " cors_allow_credentials true"));
    assert!(e.contains("Cannot enable cors_allow_credentials without specific origins"), "{e}");
}

#[test]
fn response_options_and_parse_section() {
    if !have_python() {
        return;
    }
    let (p204, pimg, pparse) = (free_port(), free_port(), free_port());
    let _a = start_http(p204, "opt204", " use_204_response true");
    let _b = start_http(pimg, "optimg", " respond_with_empty_img true");
    let _c = start_http(pparse, "optparse", " <parse>\n  @type none\n </parse>");
    let one = json!([{"path": "/t", "kind": "json", "value": {"a": 1}}, {"method": "GET", "path": "/", "kind": "raw", "value": ""}]);
    let a = send(p204, one.clone());
    assert_eq!(statuses(&a), vec![204, 200]);
    let b = send(pimg, one);
    assert_eq!(statuses(&b), vec![200, 200]);
    assert_eq!(b[0]["headers"]["content-type"], "image/gif; charset=utf-8");
    assert!(b[0]["body"].as_str().unwrap().starts_with("GIF89a"));
    let c = send(
        pparse,
        json!([{"path": "/plain.text", "kind": "raw", "value": "hello world", "headers": {"Content-Type": "text/plain"}}]),
    );
    assert_eq!(statuses(&c), vec![200]);
    let got = sink("optparse").events();
    assert_eq!((got[0].0.as_str(), &got[0].1.record), ("plain.text", &rec(r#"{"message":"hello world"}"#)));
    assert_eq!(sink("opt204").len(), 1);
    assert_eq!(sink("optimg").len(), 1);
}

#[test]
fn transport_tls() {
    if !have_python() {
        return;
    }
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let port = free_port();
    let _r = start_http(
        port,
        "tls",
        &format!(
            " <transport tls>\n  cert_path {}\n  private_key_path {}\n </transport>",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        ),
    );
    let ca = tls.join("ca.pem").display().to_string();
    let a = send_with(port, json!([{"path": "/secure", "kind": "json", "value": {"tls": true}}]), Some(&ca));
    assert_eq!(statuses(&a), vec![200], "{a:?}");
    // Plain HTTP to the TLS port gets nothing stored.
    let b = send(port, json!([{"path": "/plain", "kind": "json", "value": {"tls": false}}]));
    assert_ne!(b[0]["status"], 200);
    let got = sink("tls").events();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "secure");
}

#[test]
fn expect_100_continue_over_the_limit_and_idle_keepalive_connections() {
    if !have_curl() {
        return;
    }
    use std::io::{Read, Write};
    let port = free_port();
    let _r = start_http(port, "expect", " body_size_limit 1k\n keepalive_timeout 1");
    let url = format!("http://127.0.0.1:{port}/expect");
    // Refused from its Content-Length, before the client sends the body (no 100 Continue first).
    let big = format!("json={{\"pad\":\"{}\"}}", "x".repeat(4000));
    let (code, _, body) = curl(&["-H", "Expect: 100-continue", "--data-binary", &big, &url]);
    assert_eq!((code, body.as_str()), (413, "Too large"));
    let (code, _, _) = curl(&["-H", "Expect: 100-continue", "--data-binary", r#"json={"small":1}"#, &url]);
    assert_eq!(code, 200);
    // A keep-alive connection is answered, then closed by the server once idle for keepalive_timeout.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let req = "POST /ka HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"k\":1}";
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).expect("the server closes the idle connection before the client's timeout");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "one answer, then the close: {text}");
    assert_eq!(sink("expect").len(), 2);
}

#[test]
fn hostile_connections_do_not_disturb_the_server() {
    use std::io::{Read, Write};
    let port = free_port();
    let _r = start_http(port, "hostile", " body_size_limit 4k\n keepalive_timeout 2");
    let exchange = |bytes: &[u8]| -> Vec<u8> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    // Garbage, a header line of 1 MiB, a body shorter than its Content-Length, chunked encoding that lies,
    // and bytes that are not a request line at all.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40 {
        let mut junk = Vec::with_capacity(600);
        for _ in 0..600 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        exchange(&junk);
    }
    let huge = format!("POST /x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let answer = String::from_utf8_lossy(&exchange(huge.as_bytes())).to_string();
    assert!(!answer.contains(" 200 "), "{answer}");
    let short = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":1}";
    assert!(!String::from_utf8_lossy(&exchange(short.as_bytes())).contains(" 200 "));
    let lying = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{\"a\":1}";
    assert!(!String::from_utf8_lossy(&exchange(lying.as_bytes())).contains(" 200 "));
    // A client that stops in the middle of a body is cut off after keepalive_timeout.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    stalled
        .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut out = Vec::new();
    let _ = stalled.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&out));
    // The server still answers, and only the valid request was stored.
    let ok = "POST /fine HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{\"ok\":1}";
    let answer = String::from_utf8_lossy(&exchange(ok.as_bytes())).to_string();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let got = sink("hostile").events();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0.as_str(), &got[0].1.record), ("fine", &rec(r#"{"ok":1}"#)));
}
