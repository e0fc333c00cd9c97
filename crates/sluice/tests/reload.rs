//! Reloading the configuration (SIGHUP, and Fluentd's SIGUSR2) while records flow: a broken configuration is
//! refused and the running one goes on; a good one takes over with no record lost or duplicated (tail
//! positions and file buffers carried over).
mod common;

use common::{delivered_messages, wait_for};
use serde_json::Value as J;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Sluice(Child);
impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn config(dir: &Path, generation: &str) -> String {
    format!(
        r#"
<source>
  @type tail
  path {d}/in/app.log
  pos_file {d}/state/app.pos
  read_from_head true
  refresh_interval 1
  tag app
  <parse>
    @type json
  </parse>
</source>
<filter app>
  @type record_transformer
  <record>
    generation {generation}
  </record>
</filter>
<match app>
  @type file
  path {d}/out/app
  append true
  <format>
    @type json
  </format>
  <buffer>
    @type file
    path {d}/state/buffer
    flush_mode interval
    flush_interval 0.3s
  </buffer>
</match>
"#,
        d = dir.display()
    )
}

/// The `generation` field of each delivered message.
fn generations(out: &Path) -> std::collections::HashMap<String, String> {
    let mut g = std::collections::HashMap::new();
    for f in std::fs::read_dir(out).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            if let Ok(v) = serde_json::from_str::<J>(line) {
                if let (Some(m), Some(gen)) = (v["message"].as_str(), v["generation"].as_str()) {
                    g.insert(m.to_string(), gen.to_string());
                }
            }
        }
    }
    g
}

#[test]
fn reload_under_load_refuses_a_broken_config_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["in", "state", "out"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let conf = dir.path().join("fluent.conf");
    std::fs::write(&conf, config(dir.path(), "one")).unwrap();
    let log = dir.path().join("sluice.log");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice");
    let sluice = Sluice(child);
    let out = dir.path().join("out");

    let mut input = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("in/app.log")).unwrap();
    let mut n = 0;
    let mut write = |count: usize| {
        for _ in 0..count {
            writeln!(input, "{{\"message\":\"m{n}\"}}").unwrap();
            n += 1;
        }
        input.flush().unwrap();
    };
    write(500);
    wait_for("the first records", Duration::from_secs(30), || (delivered_messages(&out).len() >= 500).then_some(()));

    // A broken configuration: refused, and the running one keeps delivering.
    std::fs::write(&conf, "<match app>\n  @type no_such_output\n</match>\n").unwrap();
    signal(&sluice.0, libc::SIGHUP);
    wait_for("the refusal in the log", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("reload refused")).map(|_| ())
    });
    let refused = std::fs::read_to_string(&log).unwrap();
    assert!(refused.contains("unknown output plugin 'no_such_output'"), "the error is reported: {refused}");
    write(500);
    wait_for("records after the refused reload", Duration::from_secs(30), || {
        (delivered_messages(&out).len() >= 1000).then_some(())
    });

    // A good configuration while lines keep being written: it takes over (SIGHUP, then SIGUSR2).
    write(300);
    std::fs::write(&conf, config(dir.path(), "two")).unwrap();
    signal(&sluice.0, libc::SIGHUP);
    write(700);
    wait_for("the second generation", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("configuration reloaded")).map(|_| ())
    });
    // Lines written after the new engine started can only go through it (or a later one): it reads its input.
    write(500);
    wait_for("a record through the second configuration", Duration::from_secs(30), || {
        generations(&out).values().any(|g| g == "two").then_some(())
    });
    std::fs::write(&conf, config(dir.path(), "three")).unwrap();
    signal(&sluice.0, libc::SIGUSR2);
    write(500);
    let total = 3000;
    let seen = wait_for("every record", Duration::from_secs(60), || {
        let seen = delivered_messages(&out);
        let gens = generations(&out);
        (seen.len() >= total && gens.values().any(|g| g == "three")).then_some(seen)
    });
    let missing: Vec<usize> = (0..total).filter(|i| !seen.contains_key(&format!("m{i}"))).collect();
    assert!(missing.is_empty(), "lost across reloads: {missing:?}");
    let dup: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dup.is_empty(), "delivered twice across reloads: {dup:?}");
    let gens = generations(&out);
    assert_eq!(gens["m0"], "one");
    assert_eq!(gens[&format!("m{}", total - 1)], "three", "the last records went through the newest configuration");
    assert!(gens.values().any(|g| g == "two"));
    assert!(sluice_alive(&sluice.0), "sluice keeps running after reloads");
}

fn sluice_alive(child: &Child) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(child.id() as i32, 0) == 0 }
}
