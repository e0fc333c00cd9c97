//! The `systemd` input on journal files written by systemd-journal-remote, checked against journalctl:
//! matches, records and times, `<entry>`, the stored cursor, starting at the tail, rotation and vacuum, a
//! missing journal, corrupt files, huge and binary fields, and a full buffer.
mod common;

use common::*;
use sluice_core::event::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

const T0: u64 = 1_780_000_000_000_000;

fn units(n: usize, start: usize) -> Vec<Entry> {
    (start..start + n)
        .map(|i| {
            let unit = ["kubelet.service", "docker.service", "containerd.service"][i % 3];
            let pid = (i % 2 + 7).to_string();
            entry(
                T0 + i as u64 * 1_000_001,
                &[("MESSAGE", &format!("line {i}")), ("_SYSTEMD_UNIT", unit), ("_PID", &pid), ("PRIORITY", "6")],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_records_and_times_agree_with_journalctl() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_journal(&remote, &dir.path().join("a.journal"), &units(30, 0));
    // (kubelet) OR (docker AND pid 7)
    let r = start(&conf(
        dir.path(),
        "  read_from_head true\n  matches [{\"_SYSTEMD_UNIT\": \"kubelet.service\"}, {\"_SYSTEMD_UNIT\": \"docker.service\", \"_PID\": 7}]",
    ));
    let want: Vec<usize> = (0..30).filter(|i| i % 3 == 0 || (i % 3 == 1 && i % 2 == 0)).collect();
    wait_until("matching entries", || r.cap.len() >= want.len()).await;
    settle().await;
    let cap = r.stop().await;
    assert_eq!(cap.messages(), want.iter().map(|i| format!("line {i}")).collect::<Vec<_>>());
    let events = cap.events();
    for ((tag, ev), i) in events.iter().zip(&want) {
        assert_eq!(tag, "journal");
        let usec = T0 + *i as u64 * 1_000_001;
        assert_eq!(ev.time.sec, (usec / 1_000_000) as i64);
        assert_eq!(ev.time.nsec, ((usec % 1_000_000) * 1000) as u32);
    }
    if let Some(reference) =
        journalctl(dir.path(), &["_SYSTEMD_UNIT=kubelet.service", "+", "_SYSTEMD_UNIT=docker.service", "_PID=7"])
    {
        let theirs: Vec<_> = reference.iter().map(journalctl_record).collect();
        let ours: Vec<_> = events.iter().map(|(_, e)| record_text(&e.record)).collect();
        assert_eq!(ours, theirs, "the same entries and fields as journalctl");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_section_maps_and_renames_fields() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_journal(&remote, &dir.path().join("a.journal"), &units(1, 0));
    let r = start(&conf(
        dir.path(),
        "  read_from_head true\n  <entry>\n    field_map {\"MESSAGE\": \"log\", \"_PID\": [\"process\", \"pid\"], \"_SYSTEMD_UNIT\": \"process\"}\n    fields_strip_underscores true\n    fields_lowercase true\n  </entry>",
    ));
    wait_until("one entry", || r.cap.len() >= 1).await;
    let cap = r.stop().await;
    let rec = &cap.events()[0].1.record;
    let text = |k: &str| rec.get(k).map(Value::to_display_string);
    assert_eq!(text("log").as_deref(), Some("line 0"));
    assert_eq!(text("process").as_deref(), Some("7 kubelet.service"));
    assert_eq!(text("pid").as_deref(), Some("7"));
    assert_eq!(text("priority").as_deref(), Some("6"));
    assert_eq!(text("boot_id").as_deref(), Some(BOOT));
    assert!(rec.get("MESSAGE").is_none() && rec.get("_PID").is_none() && rec.get("_BOOT_ID").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_is_stored_like_fluentd_and_resumed_without_duplicates() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    std::fs::create_dir(&jdir).unwrap();
    let file = jdir.join("system.journal");
    let cursor_file = dir.path().join("cursor.json");
    write_journal(&remote, &file, &units(5, 0));
    let extra = format!(
        "  read_from_head true\n  <storage>\n    @type local\n    persistent true\n    path {}\n  </storage>",
        cursor_file.display()
    );
    let r = start(&conf(&jdir, &extra));
    wait_until("5 entries", || r.cap.len() >= 5).await;
    assert_eq!(r.stop().await.len(), 5);
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&cursor_file).unwrap()).unwrap();
    if let Some(reference) = journalctl(&jdir, &[]) {
        assert_eq!(stored, serde_json::json!({ "journal": reference[4]["__CURSOR"] }), "the last entry's cursor");
    }

    write_journal(&remote, &file, &units(3, 5));
    let r = start(&conf(&jdir, &extra));
    wait_until("3 new entries", || r.cap.len() >= 3).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["line 5", "line 6", "line 7"]);

    // A cursor file as Fluentd leaves it, pointing at the 2nd entry: reading goes on from the 3rd.
    if let Some(reference) = journalctl(&jdir, &[]) {
        let c = reference[1]["__CURSOR"].as_str().unwrap();
        std::fs::write(&cursor_file, format!("{{\"journal\":\"{c}\"}}")).unwrap();
        let r = start(&conf(&jdir, &extra));
        wait_until("6 entries", || r.cap.len() >= 6).await;
        settle().await;
        let got = r.stop().await.messages();
        assert_eq!(got, (2..8).map(|i| format!("line {i}")).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_from_head_starts_after_the_last_entry() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("system.journal");
    write_journal(&remote, &file, &units(4, 0));
    let r = start(&conf(dir.path(), ""));
    settle().await;
    assert_eq!(r.cap.len(), 0, "old entries are not read");
    write_journal(&remote, &file, &units(2, 4));
    wait_until("appended entries", || r.cap.len() >= 2).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["line 4", "line 5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_rotation_and_vacuum() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("system@0001.journal");
    write_journal(&remote, &a, &units(3, 0));
    let r = start(&conf(dir.path(), "  read_from_head true"));
    wait_until("first file", || r.cap.len() >= 3).await;
    // Rotation: journald starts a new file.
    write_journal(&remote, &dir.path().join("system@0002.journal"), &units(3, 3));
    wait_until("the rotated-to file", || r.cap.len() >= 6).await;
    // Vacuum: the oldest file goes away; reading goes on with a newer one.
    std::fs::remove_file(&a).unwrap();
    write_journal(&remote, &dir.path().join("system.journal"), &units(3, 6));
    wait_until("after vacuum", || r.cap.len() >= 9).await;
    settle().await;
    let changes = r.stats.file_changes.load(Ordering::Relaxed);
    let cap = r.stop().await;
    assert_eq!(cap.messages(), (0..9).map(|i| format!("line {i}")).collect::<Vec<_>>(), "each entry once, in order");
    assert!(changes >= 1, "libsystemd reported the file changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_journal_is_a_warning_until_it_appears() {
    let Some(remote) = journal_remote() else { return };
    let _logs = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("log/journal");
    let r = start(&conf(&jdir, "  read_from_head true"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(logs_text().contains("no journal directory here"), "{}", logs_text());
    std::fs::create_dir_all(&jdir).unwrap();
    write_journal(&remote, &jdir.join("system.journal"), &units(2, 0));
    wait_until("entries once the journal exists", || r.cap.len() >= 2).await;
    assert_eq!(r.stop().await.messages(), vec!["line 0", "line 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_file_huge_and_binary_fields() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let big = "é".repeat(100_000);
    let binary = vec![0xffu8, 0x00, 0xfe, b'\n', 0x80];
    let entries = vec![
        entry(T0, &[("MESSAGE", big.as_str()), ("_SYSTEMD_UNIT", "big.service")]),
        Entry { usec: T0 + 1, fields: vec![("MESSAGE".into(), binary.clone()), ("MULTI".into(), b"a\nb".to_vec())] },
    ];
    let good = dir.path().join("good.journal");
    write_journal(&remote, &good, &entries);
    // A broken copy beside it: the header kept, the rest garbage.
    let mut bytes = std::fs::read(&good).unwrap();
    for b in bytes.iter_mut().skip(4096).take(64 * 1024) {
        *b ^= 0x5a;
    }
    bytes.truncate(200 * 1024);
    std::fs::write(dir.path().join("broken.journal"), &bytes).unwrap();
    std::fs::write(dir.path().join("garbage.journal"), b"not a journal file at all").unwrap();
    let r = start(&conf(dir.path(), "  read_from_head true"));
    wait_until("the good file's entries", || {
        r.cap.events().iter().filter(|(_, e)| e.record.get("MULTI").is_some()).count() >= 1
    })
    .await;
    settle().await;
    let cap = r.stop().await;
    let events = cap.events();
    let big_ev = events
        .iter()
        .find(|(_, e)| e.record.get("_SYSTEMD_UNIT").map(Value::to_display_string).as_deref() == Some("big.service"))
        .expect("big entry");
    assert_eq!(big_ev.1.record.get("MESSAGE"), Some(&Value::Str(big.as_str().into())), "200 KB field whole");
    let bin = events.iter().find(|(_, e)| e.record.get("MULTI").is_some()).expect("binary entry");
    assert_eq!(bin.1.record.get("MESSAGE"), Some(&Value::Bytes(binary)), "non-UTF-8 kept as bytes");
    assert_eq!(bin.1.record.get("MULTI"), Some(&Value::Str("a\nb".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_buffer_reads_the_batch_again_without_loss() {
    let Some(remote) = journal_remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_journal(&remote, &dir.path().join("a.journal"), &units(2500, 0));
    let cap = std::sync::Arc::new(Capture::default());
    cap.refuse.store(3, Ordering::SeqCst);
    let r = start_with(&conf(dir.path(), "  read_from_head true"), cap);
    wait_until("all entries", || r.cap.len() >= 2500).await;
    settle().await;
    let retries = r.stats.emit_retries.load(Ordering::Relaxed);
    let got = r.stop().await.messages();
    assert_eq!(got, (0..2500).map(|i| format!("line {i}")).collect::<Vec<_>>());
    assert_eq!(retries, 3);
}
