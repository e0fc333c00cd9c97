//! `<source> @type forward` against real clients' bytes: replays of what Fluentd 1.18 sends (with the
//! acks it expects), the PyPI `fluent-logger` client, the `<security>` handshake, hostile input, size
//! limits and backpressure.
mod common;

use common::*;
use sluice_core::event::{EventTime, Map, Value};
use sluice_net::security::ClientSecurity;
use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn conf(port: u16, run: &str, extra: &str) -> String {
    format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {port}\n{extra}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
    )
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Send `bytes` on a new connection, close our side, and return everything the server answered.
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(bytes).unwrap();
    s.shutdown(NetShutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Read one msgpack object from `s`.
fn read_object(s: &mut TcpStream) -> Option<Value> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Ok(Some(n)) = sluice_net::scan::object_len(&buf) {
            return sluice_core::event::read_value(&buf[..n]).ok().map(|(v, _)| v);
        }
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
}

fn message(tag: &str, t: u32, json: &str, chunk: Option<&str>) -> Vec<u8> {
    let mut out = vec![if chunk.is_some() { 0x94 } else { 0x93 }];
    rmp::encode::write_str(&mut out, tag).unwrap();
    rmp::encode::write_u32(&mut out, t).unwrap();
    sluice_core::event::write_map(&rec(json), &mut out);
    if let Some(c) = chunk {
        out.push(0x81);
        rmp::encode::write_str(&mut out, "chunk").unwrap();
        rmp::encode::write_str(&mut out, c).unwrap();
    }
    out
}

fn ack(chunk: &str) -> Vec<u8> {
    let mut out = Vec::new();
    sluice_net::protocol::write_ack(&s(chunk), &mut out);
    out
}

/// The tag of the first frame in a capture folder's decoded.txt.
fn capture_tag(folder: &str) -> String {
    let text = String::from_utf8(capture(folder, "decoded.txt")).unwrap();
    let start = text.find("tag='").expect("tag in decoded.txt") + 5;
    text[start..].split('\'').next().unwrap().to_string()
}

fn feed() -> Vec<(EventTime, Map)> {
    vec![
        (EventTime::new(1_700_000_000, 123_456_789), rec(r#"{"msg":"hello","level":"INFO","n":1}"#)),
        (
            EventTime::new(1_700_000_001, 0),
            rec(r#"{"msg":"ünïcødé ✓ 日本語","level":"ERROR","n":2,"nested":{"a":[1,2.5,null,true,false],"e":{}}}"#),
        ),
        (
            EventTime::new(1_700_000_002, 999_999_999),
            rec(r#"{"msg":"third","level":"FATAL","n":-3,"big":1099511627776,"empty":""}"#),
        ),
    ]
}

fn events_of(run: &str, tag: &str) -> Vec<(EventTime, Map)> {
    sink(run).events().into_iter().filter(|(t, _)| t == tag).map(|(_, e)| (e.time, e.record)).collect()
}

#[test]
fn replays_of_fluentd_1_18_are_stored_and_acked_byte_for_byte() {
    let port = free_port();
    let run = "replay";
    let _engine = start(&conf(port, run, ""));
    wait_listening(port);
    let conns: &[(&str, &[&str])] = &[
        ("packed", &["conn1"]),
        ("packed-ack", &["conn1"]),
        ("packed-gzip", &["conn1"]),
        ("packed-gzip-ack", &["conn1"]),
        ("packed-time-int", &["conn1"]),
        ("fluent-cat-forward", &["conn1", "conn2"]),
        ("fluent-logger-python-message", &["conn1"]),
        ("in_forward-ack-responses", &["conn1", "conn2", "conn3", "conn4", "conn5"]),
    ];
    for (folder, names) in conns {
        for name in *names {
            let sent = capture(folder, &format!("{name}.c2s.bin"));
            let want = std::fs::read(captures_dir().join(folder).join(format!("{name}.s2c.bin"))).unwrap_or_default();
            // Split the bytes in two writes, as out_forward does: the receiver must stream-parse.
            let mut s = connect(port);
            let cut = sent.len() / 2;
            s.write_all(&sent[..cut]).unwrap();
            s.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            s.write_all(&sent[cut..]).unwrap();
            s.shutdown(NetShutdown::Write).unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            assert_eq!(got, want, "{folder}/{name}: the server's answer differs from real in_forward's");
        }
    }
    for folder in ["packed", "packed-ack", "packed-gzip", "packed-gzip-ack"] {
        assert_eq!(events_of(run, &capture_tag(folder)), feed(), "{folder}");
    }
    let int_times: Vec<_> = feed().into_iter().map(|(t, r)| (EventTime::new(t.sec, 0), r)).collect();
    assert_eq!(events_of(run, &capture_tag("packed-time-int")), int_times);
    let t = EventTime::new(1_700_000_000, 123_456_789);
    assert_eq!(
        events_of(run, "cap.cat"),
        vec![(t, rec(r#"{"msg":"from fluent-cat","n":1}"#)), (t, rec(r#"{"msg":"second","n":2}"#))]
    );
    assert_eq!(
        events_of(run, "cap.cat_int"),
        vec![(EventTime::new(1_700_000_000, 0), rec(r#"{"msg":"from fluent-cat time-as-integer","n":3}"#))]
    );
    assert_eq!(
        events_of(run, "py.message"),
        vec![
            (EventTime::new(1_700_000_000, 0), rec(r#"{"msg":"hello","n":1}"#)),
            (EventTime::new(1_700_000_001, 0), rec(r#"{"msg":"ünïcødé","n":2}"#)),
        ]
    );
    let ab = |t1: EventTime, t2: EventTime| vec![(t1, rec(r#"{"m":"a"}"#)), (t2, rec(r#"{"m":"b"}"#))];
    assert_eq!(events_of(run, "cm.message"), vec![(EventTime::new(1_700_000_000, 5), rec(r#"{"m":"msg"}"#))]);
    assert_eq!(events_of(run, "cm.forward"), ab(EventTime::new(1_700_000_000, 1), EventTime::new(1_700_000_001, 0)));
    let packed = ab(EventTime::new(1_700_000_000, 1), EventTime::new(1_700_000_001, 2));
    assert_eq!(events_of(run, "cm.packed_bin"), packed);
    assert_eq!(events_of(run, "cm.packed_gzip"), packed);
    assert_eq!(events_of(run, "cm.message_noopt"), vec![(EventTime::new(1_700_000_000, 0), rec(r#"{"m":"noopt"}"#))]);
}

#[test]
fn fluent_logger_python_client_every_send_arrives() {
    let python = python();
    if !python.exists() {
        println!("SKIPPED: no Python test peer at {} (set SLUICE_TEST_PYTHON)", python.display());
        return;
    }
    let port = free_port();
    let run = "pylogger";
    let _engine = start(&conf(port, run, ""));
    wait_listening(port);
    let script = r#"
import sys
from fluent import sender, event
port = int(sys.argv[1])
s = sender.FluentSender('app', host='127.0.0.1', port=port)
for i in range(50):
    assert s.emit_with_time('plain', 1700000000 + i, {"i": i, "msg": "ünï"}), s.last_error
s.close()
s = sender.FluentSender('app', host='127.0.0.1', port=port, nanosecond_precision=True)
assert s.emit_with_time('ns', 1700000000.25, {"i": 50})
s.close()
sender.setup('global', host='127.0.0.1', port=port)
event.Event('event', {"i": 51})
sender.get_global_sender().close()
print("sent")
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("run fluent-logger");
    assert!(out.status.success(), "fluent-logger failed: {}", String::from_utf8_lossy(&out.stderr));
    wait_until("52 events", || sink(run).len() >= 52);
    let plain = events_of(run, "app.plain");
    assert_eq!(plain.len(), 50);
    for (i, (t, r)) in plain.iter().enumerate() {
        assert_eq!(*t, EventTime::new(1_700_000_000 + i as i64, 0));
        assert_eq!(r, &rec(&format!(r#"{{"i":{i},"msg":"ünï"}}"#)));
    }
    assert_eq!(events_of(run, "app.ns"), vec![(EventTime::new(1_700_000_000, 250_000_000), rec(r#"{"i":50}"#))]);
    assert_eq!(events_of(run, "global.event").len(), 1);
}

#[test]
fn malformed_input_is_dropped_and_the_server_keeps_serving() {
    let port = free_port();
    let run = "malformed";
    let _engine = start(&conf(port, run, ""));
    wait_listening(port);
    // A msgpack map (not a frame), then a good frame on the same connection: the good one is acked.
    let mut bytes = vec![0x81, 0xa1, b'k', 0xa1, b'v'];
    bytes.extend(message("ok.one", 1_700_000_000, r#"{"n":1}"#, Some("c1")));
    assert_eq!(exchange(port, &bytes), ack("c1"));
    // A frame whose record is not a map: dropped, but acked (a retry would never succeed, as in Fluentd).
    let mut bad = vec![0x94, 0xa3, b'b', b'a', b'd', 0x01, 0xa1, b'x', 0x81];
    rmp::encode::write_str(&mut bad, "chunk").unwrap();
    rmp::encode::write_str(&mut bad, "c2").unwrap();
    assert_eq!(exchange(port, &bad), ack("c2"));
    // Not msgpack at all, JSON, a truncated frame, a gzip frame that is not gzip, a 4 GiB length claim.
    assert_eq!(exchange(port, &[0xc1, 0x00, 0x01]), b"");
    assert_eq!(exchange(port, br#"["tag", 1, {"a": 1}]"#), b"");
    let good = message("ok.trunc", 1, r#"{"n":2}"#, Some("c3"));
    assert_eq!(exchange(port, &good[..good.len() - 3]), b"");
    let mut gz = Vec::new();
    sluice_net::protocol::write_packed_forward("ok.gz", b"not gzip", 1, true, Some("c4"), &mut gz);
    assert_eq!(exchange(port, &gz), b"", "a broken gzip frame is not acked");
    assert_eq!(exchange(port, &[0x93, 0xa1, b't', 0xdb, 0xff, 0xff, 0xff, 0xff]), b"");
    // Still serving.
    assert_eq!(exchange(port, &message("ok.two", 1_700_000_000, r#"{"n":3}"#, Some("c5"))), ack("c5"));
    let tags: Vec<String> = sink(run).events().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["ok.one", "ok.two"]);
}

#[test]
fn chunks_over_chunk_size_limit_are_refused_without_ack() {
    let port = free_port();
    let run = "limit";
    let _engine = start(&conf(port, run, " chunk_size_limit 2k\n chunk_size_warn_limit 1k"));
    wait_listening(port);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8 * 1024));
    assert_eq!(exchange(port, &message("big", 1, &big, Some("big1"))), b"", "an oversize chunk is never acked");
    // Over the warning limit but under the limit: stored and acked.
    let mid = format!(r#"{{"pad":"{}"}}"#, "y".repeat(1500));
    assert_eq!(exchange(port, &message("mid", 1, &mid, Some("mid1"))), ack("mid1"));
    assert_eq!(exchange(port, &message("small", 1, r#"{"n":1}"#, Some("s1"))), ack("s1"));
    let tags: Vec<String> = sink(run).events().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["mid", "small"]);
}

#[test]
fn a_full_buffer_pauses_the_connection_and_nothing_is_acked_before_it_is_stored() {
    let port = free_port();
    let run = "backpressure";
    let cap = sink(run);
    cap.refuse.store(usize::MAX, Ordering::SeqCst);
    let _engine = start(&conf(port, run, ""));
    wait_listening(port);
    let mut s = connect(port);
    s.write_all(&message("bp", 1_700_000_000, r#"{"n":1}"#, Some("bp1"))).unwrap();
    wait_until("the buffer refused the frame a few times", || cap.refused.load(Ordering::SeqCst) >= 3);
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut one = [0u8; 1];
    assert!(s.read(&mut one).is_err(), "no ack while the events are not stored");
    assert_eq!(cap.len(), 0);
    cap.refuse.store(0, Ordering::SeqCst);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(read_object(&mut s), Some(Value::Map(Map::from_iter([("ack", s_("bp1"))]))));
    assert_eq!(cap.len(), 1, "stored exactly once");
}

fn s_(v: &str) -> Value {
    s(v)
}

#[test]
fn udp_heartbeats_are_answered() {
    let port = free_port();
    let _engine = start(&conf(port, "hb", ""));
    wait_listening(port);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    u.send_to(b"\0", ("127.0.0.1", port)).unwrap();
    let mut buf = [9u8; 8];
    let (n, _) = u.recv_from(&mut buf).expect("heartbeat answer");
    assert_eq!(&buf[..n], b"\0");
}

#[test]
fn source_keys_tag_prefix_and_invalid_events() {
    let port = free_port();
    let run = "srckeys";
    let extra = " source_address_key addr\n source_hostname_key host\n add_tag_prefix prod\n skip_invalid_event true";
    let _engine = start(&conf(port, run, extra));
    wait_listening(port);
    // Forward mode: a good entry, one with a string time (invalid), one with a float time (invalid).
    let mut f = vec![0x93, 0xa3, b'a', b'p', b'p', 0x93];
    f.extend([0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81, 0xa1, b'k', 0x01]);
    f.extend([0x92, 0xa1, b'x', 0x81, 0xa1, b'k', 0x02]);
    f.extend([0x92, 0xcb]);
    f.extend(1.5f64.to_be_bytes());
    f.extend([0x81, 0xa1, b'k', 0x03, 0x81]);
    rmp::encode::write_str(&mut f, "chunk").unwrap();
    rmp::encode::write_str(&mut f, "f1").unwrap();
    assert_eq!(exchange(port, &f), ack("f1"));
    let ev = sink(run).events();
    assert_eq!(ev.len(), 1);
    let (tag, e) = &ev[0];
    assert_eq!(tag, "prod.app");
    assert_eq!(e.time, EventTime::new(0x6553f100, 0));
    assert_eq!(e.record.get("k"), Some(&Value::Int(1)));
    assert_eq!(e.record.get("addr"), Some(&s("127.0.0.1")));
    let host = e.record.get("host").map(|v| v.to_display_string()).unwrap_or_default();
    assert!(!host.is_empty() && host != "127.0.0.1", "resolved hostname, got {host:?}");
}

fn secure_conf(port: u16, run: &str, extra: &str) -> String {
    conf(
        port,
        run,
        &format!(" <security>\n  self_hostname receiver.example\n  shared_key cap-secret\n{extra}\n </security>"),
    )
}

/// Client side of the handshake with our own implementation (checked against Fluentd's bytes in
/// forward_captures.rs). Returns the connection after PONG, or the failure.
fn handshake(port: u16, key: &str, user: &str, pass: &str) -> Result<TcpStream, String> {
    let sec = ClientSecurity {
        self_hostname: "sender.example".into(),
        shared_key: key.into(),
        username: user.into(),
        password: pass.into(),
    };
    let mut s = connect(port);
    let helo = read_object(&mut s).ok_or("no HELO")?;
    let helo = ClientSecurity::parse_helo(&helo).ok_or("bad HELO")?;
    let salt = "0123456789abcdef0123456789abcdef";
    s.write_all(&sec.ping(&helo, salt)).unwrap();
    let pong = read_object(&mut s).ok_or("no PONG")?;
    sec.check_pong(&pong, &helo, salt)?;
    Ok(s)
}

#[test]
fn shared_key_handshake_accepts_the_right_key_only() {
    let port = free_port();
    let run = "secure";
    let _engine = start(&secure_conf(port, run, ""));
    wait_listening(port);
    let mut s = handshake(port, "cap-secret", "", "").expect("handshake with the right key");
    s.write_all(&message("sec.ok", 1_700_000_000, r#"{"n":1}"#, Some("k1"))).unwrap();
    assert_eq!(read_object(&mut s), Some(Value::Map(Map::from_iter([("ack", s_("k1"))]))));
    let err = handshake(port, "wrong", "", "").unwrap_err();
    assert!(err.contains("shared_key mismatch"), "{err}");
    // A client that skips the handshake and sends data: nothing is stored.
    let mut raw = connect(port);
    let _helo = read_object(&mut raw);
    raw.write_all(&message("sec.sneaky", 1, r#"{"n":2}"#, Some("k2"))).unwrap();
    let pong = read_object(&mut raw);
    assert!(matches!(pong, Some(Value::Array(ref a)) if a.get(1) == Some(&Value::Bool(false))), "{pong:?}");
    let tags: Vec<String> = sink(run).events().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["sec.ok"]);
}

#[test]
fn user_auth_and_client_rules() {
    let port = free_port();
    let users = "  user_auth true\n  <user>\n   username alice\n   password s3cret\n  </user>\n  allow_anonymous_source false\n  <client>\n   network 127.0.0.0/8\n   users alice\n  </client>";
    let _engine = start(&secure_conf(port, "userauth", users));
    wait_listening(port);
    assert!(handshake(port, "cap-secret", "alice", "s3cret").is_ok());
    let err = handshake(port, "cap-secret", "alice", "nope").unwrap_err();
    assert!(err.contains("username/password mismatch"), "{err}");

    let port2 = free_port();
    let deny = "  allow_anonymous_source false\n  <client>\n   network 10.0.0.0/8\n  </client>";
    let _engine2 = start(&secure_conf(port2, "denied", deny));
    wait_listening(port2);
    let err = handshake(port2, "cap-secret", "", "").unwrap_err();
    assert!(err.contains("denied"), "{err}");
}

#[test]
fn configuration_errors_name_the_line() {
    let e = config_errors(&conf(1, "x", " source_hostname_key h\n resolve_hostname false"));
    assert!(e.contains("test.conf:") && e.contains("resolve_hostname must be true"), "{e}");
    let e = config_errors(&conf(1, "x", " <transport tls>\n  cert_path /x\n </transport>"));
    assert!(e.contains("private_key_path"), "{e}");
    let e = config_errors(&secure_conf(1, "x", "  user_auth true"));
    assert!(e.contains("<user> sections required"), "{e}");
    let e = config_errors(&conf(1, "x", "").replace("port 1\n", "port 70000\n"));
    assert!(e.contains("out of range"), "{e}");
}
