//! A full disk under the file buffer: sluice runs in a private mount namespace whose buffer directory is a
//! 256 KiB tmpfs filled to the last byte. The tail input must be refused and wait (never advancing its
//! position past what the buffer did not take), sluice must say so in its log without any record content,
//! and once space is freed every line must arrive exactly once.
//!
//! Needs `unshare` (util-linux) and either root or unprivileged user namespaces; without them the test
//! says why on stderr and checks nothing.
mod common;

use common::delivered_messages;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 3_000;

/// `unshare` arguments that give a private mount namespace where tmpfs can be mounted, if any work here.
fn namespace_args() -> Option<Vec<&'static str>> {
    let candidates: [&[&str]; 2] =
        [&["--mount", "--propagation", "private"], &["--user", "--map-root-user", "--mount"]];
    candidates.into_iter().find_map(|args| {
        let ok = Command::new("unshare")
            .args(args)
            .args(["sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && umount \"$d\"; r=$?; rmdir \"$d\"; exit $r"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| args.to_vec())
    })
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_buffer_disk_holds_the_input_back_and_loses_nothing() {
    full_disk_run("");
}

#[test]
fn the_same_with_gzip_compressed_chunks() {
    full_disk_run("    compress gzip\n");
}

/// The scenario with `buffer_extra` (parameter lines) added to the `<buffer>` section.
fn full_disk_run(buffer_extra: &str) {
    let Some(ns) = namespace_args() else {
        eprintln!("SKIPPED: no mount namespace with tmpfs here (needs root or unprivileged user namespaces)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (input, out, buf, log) = (d.join("app.log"), d.join("out"), d.join("buf"), d.join("sluice.log"));
    std::fs::create_dir(&buf).unwrap();
    let mut f = std::fs::File::create(&input).unwrap();
    // Long enough lines that the first chunk alone cannot fit in what a filled tmpfs has left.
    for i in 0..LINES {
        writeln!(f, "line-{i:05} personal-data-{i:05} {}", "x".repeat(100)).unwrap();
    }
    drop(f);
    let conf = d.join("fluent.conf");
    std::fs::write(
        &conf,
        format!(
            "<source>\n  @type tail\n  path {input}\n  pos_file {d}/app.pos\n  read_from_head true\n  tag app\n  \
             <parse>\n    @type none\n  </parse>\n</source>\n\
             <match app>\n  @type file\n  path {out}/app\n  append true\n  <format>\n    @type json\n  </format>\n  \
             <buffer>\n    @type file\n    path {buf}\n    flush_mode interval\n    flush_interval 0.5s\n{buffer_extra}  </buffer>\n\
             </match>\n",
            input = input.display(),
            d = d.display(),
            out = out.display(),
            buf = buf.display(),
        ),
    )
    .unwrap();
    // Inside the namespace: mount a small tmpfs on the buffer directory, fill it, run sluice; free the space
    // when the test creates `free`, stop sluice with SIGTERM when it creates `stop`. Both files are on the
    // test's own disk, which the namespace shares.
    let script = format!(
        "mount -t tmpfs -o size=256k,mode=0700 tmpfs '{buf}' || exit 90\n\
         dd if=/dev/zero of='{buf}/filler' bs=4k 2>/dev/null\n\
         '{bin}' -c '{conf}' -o '{log}' & s=$!\n\
         while [ ! -e '{d}/free' ]; do sleep 0.1; done\n\
         rm '{buf}/filler'\n\
         while [ ! -e '{d}/stop' ]; do sleep 0.1; done\n\
         kill -TERM $s; wait $s\n",
        buf = buf.display(),
        bin = env!("CARGO_BIN_EXE_sluice"),
        conf = conf.display(),
        log = log.display(),
        d = d.display(),
    );
    let mut child = Command::new("unshare").args(&ns).args(["sh", "-c", &script]).spawn().expect("start unshare");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The buffer cannot take the batch: the failure is logged (with the reason, never a record) and
    // nothing reaches the output.
    wait_for("a warning about the full disk", Duration::from_secs(30), || {
        read_log().to_lowercase().contains("no space left")
    });
    std::thread::sleep(Duration::from_secs(2));
    let log_text = read_log();
    assert!(!log_text.contains("personal-data-"), "sluice's log holds record content:\n{log_text}");
    assert!(delivered_messages(&out).is_empty(), "records were delivered from a buffer that had no room");

    std::fs::write(d.join("free"), b"").unwrap();
    wait_for("every line after space was freed", Duration::from_secs(60), || delivered_messages(&out).len() >= LINES);
    std::fs::write(d.join("stop"), b"").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "sluice did not stop cleanly: {status:?}\n{}", read_log());

    let seen = delivered_messages(&out);
    let missing: Vec<String> =
        (0..LINES).map(|i| format!("line-{i:05}")).filter(|l| !seen.keys().any(|k| k.starts_with(l))).take(5).collect();
    assert!(missing.is_empty(), "lost lines (first ones): {missing:?}");
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "lines delivered more than once: {twice:?}");
    assert_eq!(seen.len(), LINES);
}
