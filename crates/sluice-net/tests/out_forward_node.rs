//! `<match> @type forward` to a third-party forward server: @fluent-org/logger's FluentServer
//! (tests/node-peer/server.js), with acknowledgements, gzip and the shared-key handshake. Needs `node`
//! and `npm ci` in tests/node-peer; otherwise the test says SKIPPED.
mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_server(key: &str) -> Option<Server> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-peer");
    if !dir.join("node_modules/@fluent-org/logger").exists() {
        println!("SKIPPED: run `npm ci` in {} to install @fluent-org/logger", dir.display());
        return None;
    }
    let mut child = match Command::new("node").current_dir(&dir).args(["server.js", key]).stdout(Stdio::piped()).spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("SKIPPED: cannot run node: {e}");
            return None;
        }
    };
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(20)).expect("server banner");
    let port = first.strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("listening PORT");
    Some(Server { child, port, lines })
}

#[test]
fn delivers_to_fluent_org_server_with_ack_gzip_and_shared_key() {
    let Some(server) = node_server("node-secret") else { return };
    let in_port = free_port();
    let _agent = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {in_port}\n</source>\n\
         <match **>\n @type forward\n require_ack_response true\n ack_response_timeout 10\n compress gzip\n\
         <security>\n  self_hostname sluice-agent\n  shared_key node-secret\n </security>\n\
         <server>\n  host 127.0.0.1\n  port {}\n </server>\n <buffer>\n  flush_interval 0.1\n  retry_wait 0.2\n </buffer>\n</match>\n",
        server.port
    ));
    wait_listening(in_port);
    // Feed the agent one Forward frame of 5 events.
    let mut f = vec![0x92, 0xa5];
    f.extend(b"n.out");
    f.push(0x95);
    for i in 0..5u32 {
        f.push(0x92);
        sluice_core::event::write_event_time(
            sluice_core::event::EventTime::new(1_700_000_000 + i as i64, i * 10),
            &mut f,
        );
        sluice_core::event::write_map(&rec(&format!(r#"{{"i":{i},"msg":"ünï"}}"#)), &mut f);
    }
    TcpStream::connect(("127.0.0.1", in_port)).unwrap().write_all(&f).unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        let line = server.lines.recv_timeout(Duration::from_secs(30)).expect("entries at the node server");
        got.push(serde_json_lite(&line));
    }
    for (i, (tag, sec, nsec, rec)) in got.iter().enumerate() {
        assert_eq!(tag, "n.out");
        assert_eq!((*sec, *nsec), (1_700_000_000 + i as i64, i as i64 * 10));
        assert_eq!(rec, &format!(r#"{{"i":{i},"msg":"ünï"}}"#));
    }
}

/// Pick the fields out of the server's JSON line (tag, sec, nsec, record as compact JSON).
fn serde_json_lite(line: &str) -> (String, i64, i64, String) {
    let m = sluice_core::event::parse_json_map(line.as_bytes()).expect("JSON line");
    let num = |k: &str| match m.get(k) {
        Some(sluice_core::event::Value::Int(i)) => *i,
        other => panic!("{k}: {other:?}"),
    };
    let rec = m.get("record").expect("record");
    let mut json = Vec::new();
    sluice_core::event::write_json(rec, &mut json);
    (
        m.get("tag").map(|t| t.to_display_string()).unwrap_or_default(),
        num("sec"),
        num("nsec"),
        String::from_utf8(json).unwrap(),
    )
}
