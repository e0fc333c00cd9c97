//! `<source> @type tcp`, `udp` and `syslog` against real senders: util-linux `logger` (RFC 3164/5424 over
//! UDP and TCP, both framings), Python's `logging.handlers.SysLogHandler` and `ssl`, plain sockets; hostile
//! input (random bytes, over-long lines, invalid UTF-8, huge octet counts, connections closed mid-message)
//! and a full buffer.
mod common;

use common::*;
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::metrics::{Hub, Kind, MetricSink};
use sluice_core::plugin::Shutdown;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An engine running in the background, with its metrics hub (the inputs' counters).
struct Started {
    shutdown: Shutdown,
    hub: Arc<Hub>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Started {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Started {
    /// The value of one of the input's `sluice_socket_input_*` counters.
    fn counter(&self, name: &str) -> u64 {
        struct Find<'a>(&'a str, u64);
        impl MetricSink for Find<'_> {
            fn sample(&mut self, name: &str, _: &str, _: Kind, _: &str, _: &[(&str, &str)], v: f64) {
                if name == self.0 {
                    self.1 += v as u64;
                }
            }
        }
        let full = format!("sluice_socket_input_{name}_total");
        let mut f = Find(&full, 0);
        self.hub.report(&mut f);
        f.1
    }
}

fn launch(conf: &str) -> Started {
    let engine = assemble_conf(conf).unwrap_or_else(|e| panic!("config errors: {e:?}"));
    let shutdown = engine.ctx.shutdown.clone();
    let hub = engine.ctx.metrics.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async { engine.run().await.expect("engine") });
    });
    Started { shutdown, hub, thread: Some(thread) }
}

fn conf(source: &str, run: &str) -> String {
    format!("<source>\n{source}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n")
}

fn get<'a>(r: &'a Map, k: &str) -> Option<&'a str> {
    r.get(k).and_then(|v| v.as_str())
}

fn wait_events(run: &str, n: usize) -> Vec<(String, EventTime, Map)> {
    let cap = sink(run);
    wait_until(&format!("{n} events in {run}"), || cap.len() >= n);
    cap.events().into_iter().map(|(t, e)| (t, e.time, e.record)).collect()
}

/// Wait until sluice has bound the UDP port (binding it here then fails).
fn wait_udp(port: u16) {
    wait_until("udp listener", || UdpSocket::bind(("127.0.0.1", port)).is_err());
}

fn python_ok() -> Option<PathBuf> {
    let p = python();
    if p.exists() {
        Some(p)
    } else {
        println!("SKIPPED: no Python at {} (set SLUICE_TEST_PYTHON)", p.display());
        None
    }
}

fn logger_ok() -> bool {
    let ok = Command::new("logger").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        println!("SKIPPED: util-linux logger is not installed (Debian package bsdutils)");
    }
    ok
}

fn py(python: &PathBuf, script: &str, args: &[&str]) -> String {
    let out = Command::new(python).arg("-c").arg(script).args(args).output().expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Lines sent on one connection with `logger` (one message per stdin line).
fn logger(args: &[&str], lines: &str) {
    let mut child = Command::new("logger").args(args).stdin(Stdio::piped()).spawn().expect("logger");
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "logger {args:?} failed");
}

/// The machine's host name as `logger` writes it in RFC 3164 (up to the first dot).
fn short_hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    h.trim().split('.').next().unwrap_or_default().to_string()
}

fn now_secs() -> i64 {
    EventTime::now().sec
}

#[test]
fn tcp_lines_are_parsed_with_the_senders_address_and_name() {
    let Some(python) = python_ok() else { return };
    let port = free_port();
    let run = "tcp-basic";
    let _e = launch(&conf(
        &format!(
            " @type tcp\n tag tcp.events\n bind 127.0.0.1\n port {port}\n source_address_key client_addr\n source_hostname_key client_host\n <parse>\n  @type json\n </parse>"
        ),
        run,
    ));
    wait_listening(port);
    // Two writes that split a line, then a second connection.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"{\"k\":\"v1\"}\n{\"k\":").unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.write_all(b"\"v2\",\"time\":1700000000}\n").unwrap();
    drop(s);
    wait_events(run, 2);
    TcpStream::connect(("127.0.0.1", port)).unwrap().write_all(b"[{\"k\":\"a1\"},{\"k\":\"a2\"}]\n").unwrap();
    let ev = wait_events(run, 4);
    let name = py(&python, "import socket; print(socket.gethostbyaddr('127.0.0.1')[0])", &[]);
    let ks: Vec<&str> = ev.iter().map(|(_, _, r)| get(r, "k").unwrap()).collect();
    assert_eq!(ks, ["v1", "v2", "a1", "a2"]);
    for (tag, _, r) in &ev {
        assert_eq!(tag, "tcp.events");
        assert_eq!(get(r, "client_addr"), Some("127.0.0.1"));
        assert_eq!(get(r, "client_host"), Some(name.as_str()), "the name Python's resolver gives");
    }
    assert_eq!(ev[1].1, EventTime::new(1_700_000_000, 0), "the time key is the event time");
}

/// Bytes of a deterministic pseudo-random generator (xorshift), without newlines when asked.
fn noise(n: usize, seed: u64, newlines: bool) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (x >> 24) as u8;
            if !newlines && b == b'\n' {
                b'.'
            } else {
                b
            }
        })
        .collect()
}

#[test]
fn tcp_hostile_input_is_dropped_and_counted_and_later_lines_arrive() {
    let port = free_port();
    let run = "tcp-hostile";
    let e = launch(&conf(
        &format!(" @type tcp\n tag t\n bind 127.0.0.1\n port {port}\n message_length_limit 100\n delimiter \"\\r\\n\"\n <parse>\n  @type none\n </parse>"),
        run,
    ));
    wait_listening(port);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"first\r\n").unwrap();
    // A 1 MiB line (over the limit), written in pieces: dropped whole, the connection keeps working.
    for _ in 0..16 {
        s.write_all(&noise(64 * 1024, 7, false)).unwrap();
    }
    s.write_all(b"\r\n").unwrap();
    // Invalid UTF-8 within the limit: kept, with U+FFFD for the broken bytes.
    s.write_all(b"bad \xff\xfe utf8\r\n").unwrap();
    s.write_all(b"after\r\n").unwrap();
    // Closed in the middle of a line: dropped and counted.
    s.write_all(b"unfinished").unwrap();
    drop(s);
    let cap = sink(run);
    wait_until("after", || cap.events().iter().any(|(_, e)| get(&e.record, "message") == Some("after")));
    // Random bytes of every value, then a good line, on a new connection.
    let mut r = TcpStream::connect(("127.0.0.1", port)).unwrap();
    r.write_all(&noise(50_000, 99, true)).unwrap();
    r.write_all(b"\r\nlast\r\n").unwrap();
    drop(r);
    wait_until("last line", || cap.events().iter().any(|(_, e)| get(&e.record, "message") == Some("last")));
    let msgs: Vec<String> =
        cap.events().iter().map(|(_, e)| get(&e.record, "message").unwrap_or_default().to_string()).collect();
    assert_eq!(&msgs[..3], ["first", "bad \u{fffd}\u{fffd} utf8", "after"]);
    assert!(msgs.iter().all(|m| m.len() <= 100 * 3), "nothing over the limit got through");
    assert!(e.counter("oversize") >= 1);
    wait_until("the cut line is counted", || e.counter("incomplete") == 1);
}

#[test]
fn tcp_full_buffer_pauses_reading_and_delivers_each_line_once() {
    let port = free_port();
    let run = "tcp-backpressure";
    let cap = sink(run);
    cap.refuse.store(usize::MAX, Ordering::SeqCst);
    let e = launch(&conf(
        &format!(" @type tcp\n tag bp\n bind 127.0.0.1\n port {port}\n <parse>\n  @type json\n </parse>"),
        run,
    ));
    wait_listening(port);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"{\"n\":1}\nnot json\n{\"n\":2}\n{\"n\":3}\n").unwrap();
    wait_until("refused a few times", || cap.refused.load(Ordering::SeqCst) >= 3);
    assert_eq!(cap.len(), 0);
    cap.refuse.store(0, Ordering::SeqCst);
    let ev = wait_events(run, 3);
    s.write_all(b"{\"n\":4}\n").unwrap();
    let ev2 = wait_events(run, 4);
    let ns: Vec<i64> = ev2.iter().map(|(_, _, r)| r.get("n").and_then(Value::as_i64).unwrap()).collect();
    assert_eq!(ns, [1, 2, 3, 4], "each line stored once, in order");
    assert_eq!(ev.len(), 3);
    assert_eq!(e.counter("parse_failures"), 1, "a line parsed again after a full buffer is counted once");
    assert!(e.counter("overflow_waits") >= 3);
}

#[test]
fn tcp_security_clients_restrict_who_may_connect() {
    let (p1, p2) = (free_port(), free_port());
    let (r1, r2) = ("tcp-denied", "tcp-allowed");
    let src = |port: u16, net: &str| {
        format!(" @type tcp\n tag t\n bind 127.0.0.1\n port {port}\n <parse>\n  @type none\n </parse>\n <security>\n  <client>\n   network {net}\n  </client>\n  <client>\n   host 192.0.2.1\n  </client>\n </security>")
    };
    let denied = launch(&conf(&src(p1, "10.0.0.0/8"), r1));
    let _allowed = launch(&conf(&src(p2, "127.0.0.0/8"), r2));
    wait_listening(p2);
    TcpStream::connect(("127.0.0.1", p2)).unwrap().write_all(b"welcome\n").unwrap();
    assert_eq!(get(&wait_events(r2, 1)[0].2, "message"), Some("welcome"));
    wait_until("denied connection", || {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p1)) {
            let _ = s.write_all(b"intruder\n");
        }
        denied.counter("denied") > 0
    });
    assert_eq!(sink(r1).len(), 0);
}

#[test]
fn tcp_over_tls_from_python_ssl() {
    let Some(python) = python_ok() else { return };
    let port = free_port();
    let run = "tcp-tls";
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let _e = launch(&conf(
        &format!(
            " @type tcp\n tag tls.in\n bind 127.0.0.1\n port {port}\n <parse>\n  @type json\n </parse>\n <transport tls>\n  cert_path {}\n  private_key_path {}\n </transport>",
            d.join("server.pem").display(),
            d.join("server.key").display()
        ),
        run,
    ));
    wait_listening(port);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b'{"over":"tls"}\n{"n":2}\n')
print("sent")
"#;
    assert_eq!(py(&python, script, &[&port.to_string(), &d.join("ca.pem").display().to_string()]), "sent");
    let ev = wait_events(run, 2);
    assert_eq!(get(&ev[0].2, "over"), Some("tls"));
    assert_eq!(ev[0].0, "tls.in");
}

#[test]
fn udp_datagrams_are_parsed_cut_at_the_limit_and_bad_ones_counted() {
    let port = free_port();
    let run = "udp-basic";
    let e = launch(&conf(
        &format!(" @type udp\n tag udp.in\n bind 127.0.0.1\n port {port}\n message_length_limit 64\n source_address_key addr\n <parse>\n  @type none\n </parse>"),
        run,
    ));
    wait_udp(port);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"line with newline\n", ("127.0.0.1", port)).unwrap();
    s.send_to(&[b'x'; 200], ("127.0.0.1", port)).unwrap();
    s.send_to(b"\xc3\x28 invalid", ("127.0.0.1", port)).unwrap();
    s.send_to(b"end", ("127.0.0.1", port)).unwrap();
    let ev = wait_events(run, 4);
    let msgs: Vec<&str> = ev.iter().map(|(_, _, r)| get(r, "message").unwrap()).collect();
    assert_eq!(msgs[0], "line with newline", "the newline is removed");
    assert_eq!(msgs[1], "x".repeat(64), "cut at message_length_limit, as Fluentd reads at most that");
    assert_eq!(msgs[2], "\u{fffd}( invalid");
    assert_eq!(msgs[3], "end");
    assert_eq!(get(&ev[0].2, "addr"), Some("127.0.0.1"));
    assert_eq!(ev[0].0, "udp.in");
    assert_eq!(e.counter("truncated"), 1);
}

#[test]
fn udp_json_parse_failures_are_counted_not_emitted() {
    let port = free_port();
    let run = "udp-json";
    let e = launch(&conf(
        &format!(" @type udp\n tag j\n bind 127.0.0.1\n port {port}\n <parse>\n  @type json\n </parse>"),
        run,
    ));
    wait_udp(port);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let failures = e.counter("parse_failures");
    s.send_to(&noise(1000, 3, true), ("127.0.0.1", port)).unwrap();
    s.send_to(b"{\"ok\":true}", ("127.0.0.1", port)).unwrap();
    let ev = wait_events(run, 1);
    assert_eq!(ev[0].2.get("ok"), Some(&Value::Bool(true)));
    wait_until("the random datagram is counted", || e.counter("parse_failures") == failures + 1);
}

#[test]
fn udp_full_buffer_holds_the_datagram_until_it_is_stored() {
    let port = free_port();
    let run = "udp-backpressure";
    let cap = sink(run);
    cap.refuse.store(usize::MAX, Ordering::SeqCst);
    let e = launch(&syslog_conf(port, run, ""));
    wait_udp(port);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        s.send_to(format!("<14>Dec  4 10:00:0{i} h app: n{i}").as_bytes(), ("127.0.0.1", port)).unwrap();
    }
    wait_until("refused a few times", || cap.refused.load(Ordering::SeqCst) >= 3);
    assert_eq!(cap.len(), 0);
    cap.refuse.store(0, Ordering::SeqCst);
    let ev = wait_events(run, 3);
    let msgs: Vec<&str> = ev.iter().map(|(_, _, r)| get(r, "message").unwrap()).collect();
    assert_eq!(msgs, ["n0", "n1", "n2"]);
    assert_eq!(ev[0].0, "sys.user.info");
    assert!(e.counter("overflow_waits") >= 3);
    assert_eq!(e.counter("messages"), 3);
}

fn syslog_conf(port: u16, run: &str, extra: &str) -> String {
    conf(
        &format!(" @type syslog\n tag sys\n bind 127.0.0.1\n port {port}\n severity_key severity\n facility_key facility\n source_address_key addr\n{extra}"),
        run,
    )
}

/// Checks what `logger -t myapp -p local3.warning MSG` becomes.
fn assert_logger_event(ev: &(String, EventTime, Map), message: &str, rfc5424: bool) {
    let (tag, time, r) = ev;
    assert_eq!(tag, "sys.local3.warn");
    assert_eq!(get(r, "severity"), Some("warn"));
    assert_eq!(get(r, "facility"), Some("local3"));
    assert_eq!(get(r, "ident"), Some("myapp"));
    assert_eq!(get(r, "message"), Some(message));
    assert_eq!(get(r, "addr"), Some("127.0.0.1"));
    assert!(get(r, "host").unwrap().starts_with(&short_hostname()), "host {:?}", get(r, "host"));
    assert!(r.get("pri").is_none(), "pri is taken out of the record");
    // RFC 5424 carries the full time with its zone; RFC 3164 only local month, day and time of day.
    let slack = if rfc5424 { 120 } else { 86_400 };
    assert!((time.sec - now_secs()).abs() < slack, "time {time:?}");
}

#[test]
fn syslog_over_udp_from_logger_rfc3164_and_rfc5424() {
    if !logger_ok() {
        return;
    }
    let port = free_port();
    let run = "syslog-udp";
    let _e = launch(&syslog_conf(port, run, " <parse>\n  message_format auto\n </parse>"));
    let p = port.to_string();
    let base = ["--server", "127.0.0.1", "--port", &p, "--udp", "-t", "myapp", "-p", "local3.warning"];
    wait_udp(port);
    logger(&[&base[..], &["--rfc3164"]].concat(), "hello 3164\n");
    let n = 1;
    logger(&[&base[..], &["--rfc5424", "--msgid", "ID47"]].concat(), "hello 5424\n");
    let ev = wait_events(run, n + 1);
    assert_logger_event(&ev[0], "hello 3164", false);
    assert_logger_event(&ev[n], "hello 5424", true);
    assert_eq!(get(&ev[n].2, "msgid"), Some("ID47"));
    assert!(get(&ev[n].2, "extradata").unwrap().contains("timeQuality"));
}

#[test]
fn syslog_over_tcp_from_logger_in_both_framings() {
    if !logger_ok() {
        return;
    }
    let (p1, p2) = (free_port(), free_port());
    let (run1, run2) = ("syslog-tcp-lines", "syslog-tcp-octets");
    let _a = launch(&syslog_conf(p1, run1, " <transport tcp>\n </transport>"));
    let _b = launch(&syslog_conf(
        p2,
        run2,
        " <transport tcp>\n </transport>\n frame_type octet_count\n <parse>\n  message_format rfc5424\n </parse>",
    ));
    wait_listening(p1);
    wait_listening(p2);
    let (s1, s2) = (p1.to_string(), p2.to_string());
    let lines = "one\ntwo with  spaces\nthree\n";
    logger(
        &["--server", "127.0.0.1", "--port", &s1, "--tcp", "--rfc3164", "-t", "myapp", "-p", "local3.warning"],
        lines,
    );
    logger(
        &[
            "--server",
            "127.0.0.1",
            "--port",
            &s2,
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "myapp",
            "-p",
            "local3.warning",
        ],
        lines,
    );
    for run in [run1, run2] {
        let ev = wait_events(run, 3);
        for (e, m) in ev.iter().zip(["one", "two with  spaces", "three"]) {
            assert_logger_event(e, m, run == run2);
        }
    }
}

#[test]
fn syslog_from_python_syslog_handler_over_udp_and_tcp() {
    let Some(python) = python_ok() else { return };
    let (pu, pt) = (free_port(), free_port());
    let (ru, rt) = ("syslog-py-udp", "syslog-py-tcp");
    let _u = launch(&syslog_conf(pu, ru, ""));
    let _t = launch(&syslog_conf(pt, rt, " protocol_type tcp"));
    wait_listening(pt);
    let script = r#"
import logging, logging.handlers, socket, sys, time
port, kind = int(sys.argv[1]), sys.argv[2]
h = logging.handlers.SysLogHandler(address=("127.0.0.1", port), facility="local4",
        socktype=socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
h.append_nul = False
# RFC 3164's header; over TCP each message ends with the newline in_syslog splits at.
h.setFormatter(logging.Formatter("%(asctime)s pyhost pyapp[%(process)d]: %(message)s" + ("\n" if kind == "tcp" else ""), "%b %d %H:%M:%S"))
log = logging.getLogger(kind)
log.addHandler(h)
log.setLevel(logging.DEBUG)
for i in range(int(sys.argv[3])):
    log.error("error %d", i)
    log.debug("debug %d", i)
h.close()
print("done")
"#;
    wait_udp(pu);
    py(&python, script, &[&pu.to_string(), "udp", "1"]);
    py(&python, script, &[&pt.to_string(), "tcp", "2"]);
    for (run, n) in [(ru, 1), (rt, 2)] {
        let ev = wait_events(run, 2 * n);
        // Events of one read are emitted per tag: the order holds within each tag.
        let with = |tag: &str| -> Vec<&Map> { ev.iter().filter(|(t, _, _)| t == tag).map(|(_, _, r)| r).collect() };
        let (errors, debugs) = (with("sys.local4.err"), with("sys.local4.debug"));
        assert_eq!((errors.len(), debugs.len()), (n, n), "{ev:?}");
        for (i, (e, d)) in errors.iter().zip(&debugs).enumerate() {
            assert_eq!(get(e, "message"), Some(format!("error {i}").as_str()));
            assert_eq!(get(e, "host"), Some("pyhost"));
            assert_eq!(get(e, "ident"), Some("pyapp"));
            assert!(get(e, "pid").unwrap().parse::<u32>().is_ok());
            assert_eq!(get(e, "severity"), Some("err"));
            assert_eq!(get(d, "message"), Some(format!("debug {i}").as_str()));
            assert_eq!(get(d, "severity"), Some("debug"));
            assert_eq!(get(d, "facility"), Some("local4"));
        }
    }
}

#[test]
fn syslog_hostile_octet_counts_unmatched_lines_and_broken_frames() {
    let port = free_port();
    let run = "syslog-hostile";
    let e = launch(&syslog_conf(
        port,
        run,
        " <transport tcp>\n </transport>\n frame_type octet_count\n message_length_limit 200\n emit_unmatched_lines true",
    ));
    wait_listening(port);
    let good = |m: &str| {
        let body = format!("<13>Dec  4 10:00:00 h app: {m}");
        format!("{} {body}", body.len()).into_bytes()
    };
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&good("one")).unwrap();
    // A length far over the limit: its bytes are skipped as they stream by, the next frame is read.
    let big = noise(300_000, 5, true);
    s.write_all(format!("{} ", big.len()).as_bytes()).unwrap();
    s.write_all(&big).unwrap();
    s.write_all(&good("two \u{e9}")).unwrap();
    // Not syslog, and invalid UTF-8 within a frame.
    s.write_all(b"9 not a log").unwrap();
    s.write_all(b"26 <13>Dec  4 10:00:00 h a: \xff").unwrap();
    s.write_all(&good("three")).unwrap();
    drop(s);
    // No length at all: the framing is lost, the connection is closed.
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    b.write_all(&noise(5000, 11, true)).unwrap();
    drop(b);
    // Closed inside a frame.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"50 <13>Dec  4 10:00:00 h app: cut").unwrap();
    drop(c);
    TcpStream::connect(("127.0.0.1", port)).unwrap().write_all(&good("four")).unwrap();
    let cap = sink(run);
    let has = |m: &str| cap.events().iter().any(|(_, e)| get(&e.record, "message") == Some(m));
    wait_until("three and four", || has("three") && has("four"));
    let of = |tag: &str| -> Vec<String> {
        cap.events()
            .into_iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, e)| {
                get(&e.record, "message").or(get(&e.record, "unmatched_line")).unwrap_or_default().to_string()
            })
            .collect()
    };
    // Connections run side by side: order holds within each connection and tag.
    let notices: Vec<String> = of("sys.user.notice").into_iter().filter(|m| m != "four").collect();
    assert_eq!(notices, ["one", "two \u{e9}", "\u{fffd}", "three"]);
    assert_eq!(of("sys.unmatched"), ["not a log"]);
    assert_eq!(cap.len(), 6);
    assert_eq!(e.counter("oversize"), 1);
    assert_eq!(e.counter("parse_failures"), 1);
    wait_until("broken and cut frames counted", || e.counter("framing_errors") == 1 && e.counter("incomplete") == 1);
}

#[test]
fn syslog_with_another_parser_gets_the_text_after_the_priority() {
    let port = free_port();
    let run = "syslog-regexp";
    let _e = launch(&syslog_conf(
        port,
        run,
        " protocol_type tcp\n <parse>\n  @type regexp\n  expression /^(?<word>\\w+) (?<rest>.*)$/\n </parse>",
    ));
    wait_listening(port);
    TcpStream::connect(("127.0.0.1", port)).unwrap().write_all(b"<165>hello world\nno priority\n").unwrap();
    let ev = wait_events(run, 1);
    assert_eq!(ev[0].0, "sys.local4.notice");
    assert_eq!(get(&ev[0].2, "word"), Some("hello"));
    assert_eq!(get(&ev[0].2, "rest"), Some("world"));
}

#[test]
fn configuration_errors_name_the_problem() {
    let e = config_errors(&conf(" @type tcp\n tag t\n port 1", "cfg"));
    assert!(e.contains("<parse> section is required"), "{e}");
    let e = config_errors(&conf(" @type udp\n port 1\n <parse>\n  @type none\n </parse>", "cfg"));
    assert!(e.contains("tag"), "{e}");
    let e = config_errors(&conf(" @type syslog\n tag t\n <transport quic>\n </transport>", "cfg"));
    assert!(e.contains("unknown transport 'quic'"), "{e}");
    let e = config_errors(&conf(" @type syslog\n tag t\n send_keepalive_packet true", "cfg"));
    assert!(e.contains("send_keepalive_packet"), "{e}");
    let e = config_errors(&conf(" @type syslog\n tag t\n source_hostname_key h\n resolve_hostname false", "cfg"));
    assert!(e.contains("resolve_hostname must be true"), "{e}");
    let e = config_errors(&conf(
        " @type tcp\n tag t\n <parse>\n  @type none\n </parse>\n <extract>\n  tag_key t\n </extract>",
        "cfg",
    ));
    assert!(e.contains("<extract> is not supported"), "{e}");
    let e = config_errors(&conf(
        " @type tcp\n tag t\n <parse>\n  @type multiline\n  format_firstline /^a/\n  format1 /(?<m>.*)/\n </parse>",
        "cfg",
    ));
    assert!(e.contains("joins lines"), "{e}");
    let e = config_errors(&conf(" @type syslog\n tag t\n frame_type lines", "cfg"));
    assert!(e.contains("frame_type"), "{e}");
}
