//! `<source> @type forward` with the npm `@fluent-org/logger` client (tests/node-peer), in every event
//! mode, with acknowledgements and with the shared-key handshake. Needs `node` and `npm ci` in
//! tests/node-peer (scripts/test.sh does it when npm is present); otherwise the test says SKIPPED.
mod common;

use common::*;
use sluice_core::event::{EventTime, Value};
use std::path::Path;
use std::process::Command;

fn peer() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-peer");
    if !dir.join("node_modules/@fluent-org/logger").exists() {
        println!("SKIPPED: run `npm ci` in {} to install @fluent-org/logger", dir.display());
        return None;
    }
    if Command::new("node").arg("--version").output().is_err() {
        println!("SKIPPED: no node on PATH");
        return None;
    }
    Some(dir)
}

fn send(dir: &Path, port: u16, mode: &str, ack: bool, key: Option<&str>) {
    let mut cmd = Command::new("node");
    cmd.current_dir(dir).args(["send.js", &port.to_string(), mode, if ack { "1" } else { "0" }]);
    if let Some(k) = key {
        cmd.arg(k);
    }
    let out = cmd.output().expect("run node");
    assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
}

fn check(run: &str, mode: &str) {
    let tag = format!("node.{}", mode.to_lowercase());
    let ev: Vec<_> = sink(run).events().into_iter().filter(|(t, _)| *t == tag).collect();
    assert_eq!(ev.len(), 20, "{mode}");
    for (i, (_, e)) in ev.iter().enumerate() {
        assert_eq!(e.time, EventTime::new(1_700_000_000 + i as i64, i as u32), "{mode}");
        assert_eq!(e.record.get("i"), Some(&Value::Int(i as i64)), "{mode}");
        assert_eq!(e.record.get("mode"), Some(&s(mode)), "{mode}");
    }
}

#[test]
fn every_event_mode_with_and_without_ack() {
    let Some(dir) = peer() else { return };
    let port = free_port();
    let run = "node-modes";
    let _engine = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {port}\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
    ));
    wait_listening(port);
    for (mode, ack) in
        [("Message", false), ("Forward", true), ("PackedForward", true), ("CompressedPackedForward", true)]
    {
        send(&dir, port, mode, ack, None);
        check(run, mode);
    }
}

#[test]
fn shared_key_handshake_with_ack() {
    let Some(dir) = peer() else { return };
    let port = free_port();
    let run = "node-secure";
    let _engine = start(&format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {port}\n <security>\n  self_hostname sluice\n  shared_key node-secret\n </security>\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n"
    ));
    wait_listening(port);
    send(&dir, port, "PackedForward", true, Some("node-secret"));
    check(run, "PackedForward");
}
