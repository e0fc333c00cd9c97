//! The `tail` input against hostile input (issue 15): CRI/docker parts cut inside a UTF-8 character,
//! FIFOs and devices matched by a glob, joined records without end, and drop warnings that must all be
//! reported. Every wait polls with a timeout; nothing asserts speed.
mod common;

use common::field;
use common::tail::*;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Multi-byte text (Korean, a 3-byte symbol, a 4-byte emoji) with a secret behind a Korean key.
const TEXT: &str = "임시 비밀번호=hunter2pass 발급 ✓ 😀 끝";

fn cri_conf(dir: &Path, extra: &str, inner: &str) -> String {
    format!(
        "<source>\n @type tail\n path {}/*.log\n tag kube.*\n read_from_head true\n stat_interval_ms 50\n{extra}\n \
         <parse>\n  @type cri\n{inner}\n </parse>\n</source>\n",
        dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_parts_cut_at_every_byte_offset_join_into_the_original_text() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = TEXT.as_bytes();
    // With a nested json parser (the repro) and without one (the message as it is).
    let json = format!("{{\"msg\":\"{TEXT}\"}}");
    let mut nested = Vec::new();
    let mut plain = Vec::new();
    for cut in 1..json.len() {
        nested.extend_from_slice(b"2024-01-01T10:00:00.000000001Z stdout P ");
        nested.extend_from_slice(&json.as_bytes()[..cut]);
        nested.extend_from_slice(b"\n2024-01-01T10:00:00.000000002Z stdout F ");
        nested.extend_from_slice(&json.as_bytes()[cut..]);
        nested.push(b'\n');
    }
    for cut in 1..bytes.len() {
        // Three parts: the second cut lands inside another character for most offsets.
        let second = (cut + 2).min(bytes.len());
        plain.extend_from_slice(b"2024-01-01T10:00:00.000000001Z stderr P ");
        plain.extend_from_slice(&bytes[..cut]);
        plain.extend_from_slice(b"\n2024-01-01T10:00:00.000000002Z stderr P ");
        plain.extend_from_slice(&bytes[cut..second]);
        plain.extend_from_slice(b"\n2024-01-01T10:00:00.000000003Z stderr F ");
        plain.extend_from_slice(&bytes[second..]);
        plain.push(b'\n');
    }
    let d1 = dir.path().join("nested");
    let d2 = dir.path().join("plain");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    append(&d1.join("app.log"), &nested);
    append(&d2.join("app.log"), &plain);

    let r = start(&cri_conf(&d1, "", "  <parse>\n   @type json\n  </parse>"));
    let want = json.len() - 1;
    wait_until("every nested record", || r.cap.len() >= want).await;
    settle().await;
    let stats = r.stats.clone();
    let ev = r.stop().await.events();
    assert_eq!(ev.len(), want);
    for (i, (_, e)) in ev.iter().enumerate() {
        assert_eq!(field(e, "msg"), TEXT, "cut at byte {}", i + 1);
        assert_eq!(field(e, "logtag"), "F");
    }
    assert_eq!(stats.invalid_utf8_lines.load(Ordering::SeqCst), 0);

    let r = start(&cri_conf(&d2, "", ""));
    let want = bytes.len() - 1;
    wait_until("every plain record", || r.cap.len() >= want).await;
    settle().await;
    let ev = r.stop().await.events();
    assert_eq!(ev.len(), want);
    for (i, (_, e)) in ev.iter().enumerate() {
        assert_eq!(field(e, "message"), TEXT, "cut at byte {}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pieces_cut_at_every_byte_offset_join_into_the_original_text() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = TEXT.as_bytes();
    let mut data = Vec::new();
    let piece = |data: &mut Vec<u8>, log: &[u8], end: bool| {
        data.extend_from_slice(b"{\"log\":\"");
        data.extend_from_slice(log);
        data.extend_from_slice(if end { b"\\n" } else { b"" });
        data.extend_from_slice(b"\",\"stream\":\"stdout\",\"time\":\"2024-01-01T10:00:00.000000001Z\"}\n");
    };
    for cut in 1..bytes.len() {
        piece(&mut data, &bytes[..cut], false);
        piece(&mut data, &bytes[cut..], true);
    }
    let f = dir.path().join("c.log");
    append(&f, &data);
    let r = start(&format!(
        "<source>\n @type tail\n path {}\n tag docker\n read_from_head true\n stat_interval_ms 50\n \
         <parse>\n  @type docker\n </parse>\n</source>\n",
        f.display()
    ));
    let want = bytes.len() - 1;
    wait_until("every record", || r.cap.len() >= want).await;
    settle().await;
    let ev = r.stop().await.events();
    assert_eq!(ev.len(), want);
    for (i, (_, e)) in ev.iter().enumerate() {
        assert_eq!(field(e, "log"), format!("{TEXT}\n"), "cut at byte {}", i + 1);
        assert_eq!(field(e, "stream"), "stdout");
    }
}

/// A FIFO in `dir`, and a guard: if a (regressed) reader blocks opening it, the guard opens it for writing
/// after the test's wait, so that the failed test ends instead of hanging in the runtime's shutdown.
fn fifo_with_guard(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(WAIT + std::time::Duration::from_secs(5));
        // Non-blocking: fails at once when no reader waits (the fixed reader never opens it).
        let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&p);
    });
}

/// The test's own runtime, dropped before `dir` (the FIFO must still exist for the guard).
fn run(f: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(f);
}

/// A FIFO matched by the glob (without a writer, opening it blocks) and a symlink to /dev/zero (it never
/// ends and has no newline): neither may hold the reader; the regular file's lines flow.
#[test]
fn a_fifo_and_a_symlink_to_dev_zero_in_the_glob_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    fifo_with_guard(&dir.path().join("a-fifo.log"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("b-zero.log")).unwrap();
    let regular = dir.path().join("c-app.log");
    append(&regular, lines("line ", 0..100).as_bytes());
    run(async {
        // Sorted after the FIFO and the device, so it is only read when neither blocks the thread. The
        // max_line_size only bounds memory while an unfixed reader is stuck in /dev/zero.
        let r = start(&format!(
            "<source>\n @type tail\n path {}/*.log\n tag t\n read_from_head true\n stat_interval_ms 50\n \
             max_line_size 1m\n</source>\n",
            dir.path().display()
        ));
        wait_until("the regular file's lines", || r.cap.len() >= 100).await;
        append(&regular, b"after\n");
        wait_until("an appended line", || r.cap.len() >= 101).await;
        let stats = r.stats.clone();
        // Stops promptly (Running::stop fails after a timeout otherwise).
        let msgs = r.stop().await.messages();
        assert_eq!(msgs.len(), 101);
        assert_eq!(msgs[100], "after");
        assert_eq!(stats.special_files_skipped.load(Ordering::SeqCst), 2);
        assert_eq!(stats.lines_too_long.load(Ordering::SeqCst), 0, "/dev/zero was never read");
    });
}

/// A literal path (no glob) that is a FIFO is not opened either.
#[test]
fn a_literal_fifo_path_does_not_block_the_other_paths() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("a.log");
    fifo_with_guard(&fifo);
    let regular = dir.path().join("b.log");
    append(&regular, b"one\ntwo\n");
    run(async {
        let r = start(&format!(
            "<source>\n @type tail\n path {},{}\n tag t\n read_from_head true\n stat_interval_ms 50\n</source>\n",
            fifo.display(),
            regular.display()
        ));
        wait_until("the regular file's lines", || r.cap.len() >= 2).await;
        assert_eq!(r.stop().await.messages(), vec!["one", "two"]);
    });
}

/// 20 MB of CRI partial lines with no end, then their `F`, then a normal line: the joined record is
/// dropped (counted, logged without content) and memory is not spent on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_partials_beyond_max_line_size_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let part = "x".repeat(16 * 1024);
    let mut data = String::from("2024-01-01T10:00:00.0Z stdout F before\n");
    for _ in 0..1280 {
        data.push_str("2024-01-01T10:00:00.1Z stdout P SECRET-CONTENT-");
        data.push_str(&part);
        data.push('\n');
    }
    data.push_str("2024-01-01T10:00:00.2Z stdout F end-of-the-huge-one\n");
    data.push_str("2024-01-01T10:00:00.3Z stdout P small \n2024-01-01T10:00:00.4Z stdout F after\n");
    append(&dir.path().join("a.log"), data.as_bytes());
    let logs = log_buffer();
    let r = start(&cri_conf(dir.path(), " max_line_size 64k", ""));
    wait_until("the records around the huge one", || r.cap.len() >= 2).await;
    settle().await;
    let stats = r.stats.clone();
    assert_eq!(r.stop().await.messages(), vec!["before", "small after"]);
    assert_eq!(stats.records_too_long.load(Ordering::SeqCst), 1);
    let text = String::from_utf8_lossy(&logs.lock()).into_owned();
    assert!(text.contains("joined record longer than max_line_size; dropped"), "{text}");
    assert!(!text.contains("SECRET-CONTENT"), "the log shows no content");
}

/// Without max_line_size, a joined record still stops at the default limit (16 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pieces_without_max_line_size_stop_at_the_default_limit() {
    let dir = tempfile::tempdir().unwrap();
    let piece = format!(
        "{{\"log\":\"{}\",\"stream\":\"stdout\",\"time\":\"2024-01-01T10:00:00.0Z\"}}\n",
        "y".repeat(16 * 1024)
    );
    let mut data = piece.repeat(1100); // about 18 MB of one line's pieces
    data.push_str("{\"log\":\"end\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T10:00:00.0Z\"}\n");
    data.push_str("{\"log\":\"after\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T10:00:01.0Z\"}\n");
    let f = dir.path().join("c.log");
    append(&f, data.as_bytes());
    let r = start(&format!(
        "<source>\n @type tail\n path {}\n tag docker\n read_from_head true\n stat_interval_ms 50\n \
         <parse>\n  @type docker\n </parse>\n</source>\n",
        f.display()
    ));
    wait_until("the record after", || r.cap.len() >= 1).await;
    settle().await;
    let stats = r.stats.clone();
    let ev = r.stop().await.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(field(&ev[0].1, "log"), "after\n");
    assert_eq!(stats.records_too_long.load(Ordering::SeqCst), 1);
}

/// A multiline event that never ends (continuation lines only) is cut off at max_line_size; the next
/// event is read normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiline_event_beyond_max_line_size_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.log");
    let mut data = String::from("2024-01-01 start one\n  short continuation\n2024-01-01 start huge\n");
    for i in 0..20_000 {
        data.push_str(&format!("  continuation line {i} of a runaway stack trace\n"));
    }
    data.push_str("2024-01-01 start three\n2024-01-01 start four\n");
    append(&f, data.as_bytes());
    let r = start(&format!(
        "<source>\n @type tail\n path {}\n tag m\n read_from_head true\n stat_interval_ms 50\n max_line_size 64k\n \
         <parse>\n  @type multiline\n  format_firstline /^\\d{{4}}-/\n  format1 /^(?<message>.*)/\n </parse>\n</source>\n",
        f.display()
    ));
    wait_until("events one and three", || r.cap.len() >= 2).await;
    settle().await;
    let stats = r.stats.clone();
    assert_eq!(
        r.stop().await.messages(),
        vec!["2024-01-01 start one\n  short continuation", "2024-01-01 start three", "2024-01-01 start four"]
    );
    assert_eq!(stats.records_too_long.load(Ordering::SeqCst), 1);
}

/// Unparsable lines: the rate-limited warning shows the first one; the rest are counted in a warning when
/// the window ends or, as here, when sluice stops. The counts add up to every dropped line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dropped_line_is_reported_by_shutdown() {
    let logs = log_buffer();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("unparsed-report.log");
    append(&f, b"{\"ok\":1}\nnot json 1\nnot json 2\nnot json 3\nnot json 4\nnot json 5\n{\"ok\":2}\n");
    let r = start(&format!(
        "<source>\n @type tail\n path {}\n tag j\n read_from_head true\n stat_interval_ms 50\n \
         <parse>\n  @type json\n </parse>\n</source>\n",
        f.display()
    ));
    wait_until("the two good lines", || r.cap.len() >= 2).await;
    settle().await;
    assert_eq!(r.stats.unmatched_lines.load(Ordering::SeqCst), 5);
    r.stop().await;
    let text = String::from_utf8_lossy(&logs.lock()).into_owned();
    let mut reported = 0;
    for l in text.lines().filter(|l| l.contains("line not parsed; dropped") && l.contains("unparsed-report.log")) {
        let n = l
            .split("suppressed=")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse::<u64>().ok())
            .expect("a suppressed count");
        // The first warning is about its own line plus the ones held back before it.
        reported += n + u64::from(!l.contains("not logged one by one"));
    }
    assert_eq!(reported, 5, "{text}");
}

/// A pos_file in a directory other users can write (they could plant a symlink or a forged position) is a
/// configuration error at the parameter; a new directory is created 0700 and the file is 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pos_file_in_a_directory_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let f = dir.path().join("a.log");
    append(&f, b"one\n");
    let ctx = sluice_core::plugin::BuildCtx { dry_run: true, ..sluice_core::plugin::BuildCtx::new(common::registry()) };
    let conf = |pos: &Path| {
        format!("<source>\n @type tail\n path {}\n tag t\n pos_file {}\n</source>\n", f.display(), pos.display())
    };
    let e = sluice_plugins::inputs::tail::Tail::from_element(&source(&conf(&shared.join("a.pos"))), &ctx)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("writable by other users") && e.contains(":5"), "{e}");

    let pos = dir.path().join("state/sub/a.pos");
    let r = start(&conf(&pos).replace("</source>", " read_from_head true\n stat_interval_ms 50\n</source>"));
    wait_until("the line", || r.cap.len() >= 1).await;
    r.stop().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&dir.path().join("state/sub")), 0o700);
    assert_eq!(mode(&pos), 0o600);
}
