//! `<match> @type forward` to sluice aggregators (our in_forward, checked against Fluentd's bytes in the
//! other tests): delivery with ack, gzip and shared_key, failover when an aggregator dies mid-stream
//! (nothing lost), standby servers, ack timeouts and configuration errors.
mod common;

use common::*;
use sluice_core::event::{EventTime, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn aggregator(port: u16, run: &str, extra: &str) -> Running {
    let r = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {port}\n{extra}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
    ));
    wait_listening(port);
    r
}

/// An agent: in_forward on `in_port` (the test feeds it) → out_forward with `body`.
fn agent(in_port: u16, body: &str) -> Running {
    let r = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {in_port}\n</source>\n<match **>\n @type forward\n{body}\n <buffer>\n  flush_interval 0.1\n  retry_wait 0.1\n  retry_max_interval 0.5\n  retry_forever true\n </buffer>\n</match>\n"
    ));
    wait_listening(in_port);
    r
}

fn server(port: u16, extra: &str) -> String {
    format!(" <server>\n  host 127.0.0.1\n  port {port}\n{extra}\n </server>\n")
}

/// Send events `from..to` (record `{"id": i}`) to the agent as Forward frames of 10, each acked.
fn feed(port: u16, tag: &str, from: usize, to: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut i = from;
    while i < to {
        let end = (i + 10).min(to);
        let mut f = vec![0x93];
        rmp::encode::write_str(&mut f, tag).unwrap();
        rmp::encode::write_array_len(&mut f, (end - i) as u32).unwrap();
        for id in i..end {
            f.push(0x92);
            sluice_core::event::write_event_time(EventTime::new(1_700_000_000 + id as i64, 7), &mut f);
            sluice_core::event::write_map(&rec(&format!(r#"{{"id":{id},"msg":"ünï {id}"}}"#)), &mut f);
        }
        f.extend([0x81, 0xa5]);
        f.extend(b"chunk");
        rmp::encode::write_str(&mut f, &format!("c{i}")).unwrap();
        s.write_all(&f).unwrap();
        let mut ack = [0u8; 64];
        let n = s.read(&mut ack).unwrap();
        assert!(n > 0, "agent acked");
        i = end;
    }
}

/// How many times each id arrived in the sinks.
fn ids(runs: &[&str]) -> HashMap<i64, usize> {
    let mut out = HashMap::new();
    for run in runs {
        for (_, e) in sink(run).events() {
            if let Some(Value::Int(id)) = e.record.get("id") {
                *out.entry(*id).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn delivers_with_ack_gzip_and_shared_key() {
    let (agg_port, in_port) = (free_port(), free_port());
    let sec = "<security>\n  self_hostname agg.example\n  shared_key s3cret\n </security>";
    let _agg = aggregator(agg_port, "deliver", sec);
    let body = format!(
        " require_ack_response true\n compress gzip\n <security>\n  self_hostname agent.example\n  shared_key s3cret\n </security>\n{}",
        server(agg_port, "")
    );
    let _agent = agent(in_port, &body);
    feed(in_port, "app.log", 0, 100);
    wait_until("100 events at the aggregator", || sink("deliver").len() >= 100);
    let ev = sink("deliver").events();
    assert_eq!(ev.len(), 100);
    for (i, (tag, e)) in ev.iter().enumerate() {
        assert_eq!(tag, "app.log");
        assert_eq!(e.time, EventTime::new(1_700_000_000 + i as i64, 7));
        assert_eq!(e.record, rec(&format!(r#"{{"id":{i},"msg":"ünï {i}"}}"#)));
    }
}

#[test]
fn delivers_over_tls_with_client_certificates() {
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let f = |n: &str| tls.join(n).display().to_string();
    let (agg_port, in_port) = (free_port(), free_port());
    let transport = format!(
        "<transport tls>\n  cert_path {}\n  private_key_path {}\n  client_cert_auth true\n  ca_path {}\n </transport>\n <security>\n  self_hostname agg\n  shared_key k\n </security>",
        f("server.pem"),
        f("server.key"),
        f("ca.pem")
    );
    let _agg = aggregator(agg_port, "tls-out", &transport);
    let body = format!(
        " transport tls\n tls_cert_path {}\n tls_client_cert_path {}\n tls_client_private_key_path {}\n require_ack_response true\n keepalive true\n <security>\n  self_hostname agent\n  shared_key k\n </security>\n{}",
        f("ca.pem"),
        f("client.pem"),
        f("client.key"),
        server(agg_port, "")
    );
    let _agent = agent(in_port, &body);
    feed(in_port, "tls.app", 0, 60);
    wait_until("60 events over TLS", || ids(&["tls-out"]).len() >= 60);
    // Without the client certificate the aggregator refuses the connection: nothing arrives.
    let (agg2, in2) = (free_port(), free_port());
    let _agg2 = aggregator(agg2, "tls-nocert", &transport);
    let body = format!(
        " transport tls\n tls_cert_path {}\n <security>\n  self_hostname agent\n  shared_key k\n </security>\n{}",
        f("ca.pem"),
        server(agg2, "")
    );
    let _agent2 = agent(in2, &body);
    feed(in2, "tls.nocert", 0, 10);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(sink("tls-nocert").len(), 0);
}

#[test]
fn a_wrong_shared_key_delivers_nothing_there_and_the_chunk_goes_to_a_server_that_accepts_it() {
    let (x_port, y_port, in_port) = (free_port(), free_port(), free_port());
    let sec = "<security>\n  self_hostname agg.example\n  shared_key right\n </security>";
    let _x = aggregator(x_port, "key-x", sec);
    let _y = aggregator(y_port, "key-y", sec);
    // The agent's key is wrong for x; y's <server> overrides it with the right one.
    let body = format!(
        " require_ack_response true\n <security>\n  self_hostname agent.example\n  shared_key wrong\n </security>\n{}{}",
        server(x_port, "  weight 100"),
        server(y_port, "  weight 1\n  shared_key right")
    );
    let _agent = agent(in_port, &body);
    feed(in_port, "k", 0, 40);
    wait_until("everything at y", || ids(&["key-y"]).len() >= 40);
    assert_eq!(sink("key-x").len(), 0);
}

#[test]
fn an_aggregator_killed_mid_stream_loses_nothing() {
    let (a_port, b_port, in_port) = (free_port(), free_port(), free_port());
    let agg_a = aggregator(a_port, "kill-a", "");
    let _agg_b = aggregator(b_port, "kill-b", "");
    let body = format!(
        " require_ack_response true\n ack_response_timeout 2\n heartbeat_interval 0.2\n phi_threshold 1\n recover_wait 0.4\n{}{}",
        server(a_port, "  name a"),
        server(b_port, "  name b")
    );
    let _agent = agent(in_port, &body);
    // Several chunks (flush_interval 0.1s) while aggregator a dies part way.
    let feeder = std::thread::spawn(move || {
        for part in 0..20 {
            feed(in_port, "ha", part * 50, part * 50 + 50);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    wait_until("a got data", || sink("kill-a").len() > 0);
    agg_a.stop();
    let after_kill = sink("kill-a").len();
    feeder.join().unwrap();
    wait_until("every id delivered", || ids(&["kill-a", "kill-b"]).len() >= 1000);
    let got = ids(&["kill-a", "kill-b"]);
    assert!((0..1000).all(|i| got.contains_key(&i)), "every event arrived at least once");
    let dups: usize = got.values().map(|n| n - 1).sum();
    println!("duplicates (at-least-once): {dups}");
    assert_eq!(sink("kill-a").len(), after_kill, "nothing reached the dead aggregator");
}

#[test]
fn standby_takes_over_when_the_active_server_is_detached() {
    let (a_port, b_port, in_port) = (free_port(), free_port(), free_port());
    let agg_a = aggregator(a_port, "sb-a", "");
    let _agg_b = aggregator(b_port, "sb-b", "");
    let body = format!(
        " heartbeat_interval 0.2\n phi_threshold 1\n recover_wait 0.4\n{}{}",
        server(a_port, ""),
        server(b_port, "  standby true")
    );
    let _agent = agent(in_port, &body);
    feed(in_port, "sb", 0, 50);
    wait_until("active server got everything", || sink("sb-a").len() >= 50);
    assert_eq!(sink("sb-b").len(), 0, "standby unused while the active server is up");
    agg_a.stop();
    feed(in_port, "sb", 50, 100);
    wait_until("standby got the rest", || ids(&["sb-a", "sb-b"]).len() >= 100);
    assert!(sink("sb-b").len() >= 50);
}

#[test]
fn a_server_that_never_acks_is_detached_and_the_chunk_goes_elsewhere() {
    let (good_port, in_port) = (free_port(), free_port());
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    // Reads everything, answers nothing.
    std::thread::spawn(move || {
        for s in mute.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let _good = aggregator(good_port, "noack-good", "");
    let body = format!(
        " require_ack_response true\n ack_response_timeout 1\n heartbeat_type none\n{}{}",
        server(mute_port, "  weight 100"),
        server(good_port, "  weight 1")
    );
    let _agent = agent(in_port, &body);
    feed(in_port, "na", 0, 30);
    wait_until("delivered to the answering server", || ids(&["noack-good"]).len() >= 30);
}

#[test]
fn configuration_errors() {
    let base = |body: &str| format!("<match **>\n @type forward\n{body}\n</match>\n");
    let e = config_errors(&base(""));
    assert!(e.contains("at least one <server>"), "{e}");
    let e = config_errors(&base(&format!("{} <buffer time>\n  timekey 60\n </buffer>", server(1, ""))));
    assert!(e.contains("must include 'tag'"), "{e}");
    let e = config_errors(&base(&format!(" transport tls\n tls_insecure_mode true\n{}", server(1, ""))));
    assert!(e.contains("not supported"), "{e}");
    let e = config_errors(&base(&format!(" transport tls\n tls_cert_path /nonexistent/ca.pem\n{}", server(1, ""))));
    assert!(e.contains("test.conf:") && e.contains("/nonexistent/ca.pem"), "{e}");
    let e = config_errors(&base(&format!(" heartbeat_type udp\n dns_round_robin true\n{}", server(1, ""))));
    assert!(e.contains("dns_round_robin"), "{e}");
    let e = config_errors(&base(&format!(" heartbeat_type carrier_pigeon\n{}", server(1, ""))));
    assert!(e.contains("heartbeat_type"), "{e}");
}

#[test]
fn verify_connection_at_startup_fails_fast_without_a_server() {
    let port = free_port();
    let conf = format!(
        "<match **>\n @type forward\n verify_connection_at_startup true\n connect_timeout 2\n{}</match>\n",
        server(port, "")
    );
    let engine = assemble_conf(&conf).unwrap_or_else(|e| panic!("{e:?}"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), engine.run()).await });
    let err = r.expect("does not hang").expect_err("start-up fails");
    assert!(err.to_string().contains("connection"), "{err}");
}
