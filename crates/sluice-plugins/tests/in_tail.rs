//! The `tail` input against real files: reading, positions, rotation, truncation, bad input, globs, tags,
//! multiline, backpressure and exit_on_eof. Every wait polls with a timeout; nothing asserts speed.
mod common;

use common::tail::*;
use common::{field, registry, Capture};
use sluice_core::plugin::BuildCtx;
use sluice_plugins::inputs::tail::{parse_pos_file, Tail};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_head_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    append(&f, lines("l", 0..2500).as_bytes());
    let r = start(&conf(&f, "read_from_head true"));
    wait_until("2500 lines", || r.cap.len() >= 2500).await;
    append(&f, b"after\n");
    wait_until("appended line", || r.cap.len() >= 2501).await;
    let cap = r.stop().await;
    let msgs = cap.messages();
    let mut want: Vec<String> = (0..2500).map(|i| format!("l{i}")).collect();
    want.push("after".into());
    assert_eq!(msgs, want);
    assert!(cap.events().iter().all(|(t, _)| t == "test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_from_head_starts_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    append(&f, b"old1\nold2\n");
    let r = start(&conf(&f, ""));
    wait_until("watch", || r.stats.events_emitted.load(Ordering::SeqCst) == 0).await;
    settle().await;
    append(&f, b"new1\n");
    wait_until("new line", || r.cap.len() >= 1).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["new1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pos_file_resume_without_duplicates_in_fluentd_format() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    let pos = p(&dir, "a.pos");
    let extra = format!("read_from_head true\npos_file {}", pos.display());
    append(&f, lines("x", 0..10).as_bytes());
    let r = start(&conf(&f, &extra));
    wait_until("10 lines", || r.cap.len() >= 10).await;
    let first = r.stop().await.messages();
    assert_eq!(first.len(), 10);

    // Fluentd's format exactly: path TAB 16 hex position TAB 16 hex inode NEWLINE.
    let text = std::fs::read_to_string(&pos).unwrap();
    let ino = std::fs::metadata(&f).unwrap().ino();
    let size = std::fs::metadata(&f).unwrap().len();
    assert_eq!(text, format!("{}\t{:016x}\t{:016x}\n", f.display(), size, ino));

    append(&f, lines("x", 10..15).as_bytes());
    let r = start(&conf(&f, &extra));
    wait_until("5 more", || r.cap.len() >= 5).await;
    settle().await;
    let second = r.stop().await.messages();
    assert_eq!(second, (10..15).map(|i| format!("x{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_a_fluentd_written_pos_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    let pos = p(&dir, "td.pos");
    append(&f, b"one\ntwo\nthree\nfour\n");
    let ino = std::fs::metadata(&f).unwrap().ino();
    // As Fluentd leaves it: "one\ntwo\n" read; plus an unwatched entry and a stale duplicate.
    std::fs::write(
        &pos,
        format!(
            "{0}\t0000000000000000\t{1:016x}\n/var/log/gone.log\tffffffffffffffff\t0000000000000001\n{0}\t{2:016x}\t{1:016x}\n",
            f.display(),
            ino,
            8
        ),
    )
    .unwrap();
    let r = start(&conf(&f, &format!("pos_file {}", pos.display())));
    wait_until("two lines", || r.cap.len() >= 2).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["three", "four"]);
    let (entries, bad) = parse_pos_file(&std::fs::read_to_string(&pos).unwrap());
    assert_eq!(bad, 0);
    assert_eq!(entries, vec![(f.display().to_string(), 19, ino)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_reads_both_files_without_loss_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    let rotated = p(&dir, "app.log.1");
    let pos = p(&dir, "app.pos");
    let mut old = std::fs::OpenOptions::new().create(true).append(true).open(&f).unwrap();
    old.write_all(lines("a", 0..1000).as_bytes()).unwrap();
    let r = start(&conf(&f, &format!("read_from_head true\nrotate_wait 3s\npos_file {}", pos.display())));
    wait_until("first lines", || r.cap.len() >= 1000).await;
    old.write_all(lines("a", 1000..1500).as_bytes()).unwrap();
    std::fs::rename(&f, &rotated).unwrap();
    append(&f, lines("b", 0..700).as_bytes());
    // The writer still has the old file open during rotate_wait.
    old.write_all(lines("a", 1500..1800).as_bytes()).unwrap();
    wait_until("all lines", || r.cap.len() >= 2500).await;
    tokio::time::sleep(Duration::from_secs(4)).await; // past rotate_wait: nothing is read twice
    let stats = r.stats.clone();
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), 2500, "no duplicates");
    let a: Vec<&String> = msgs.iter().filter(|m| m.starts_with('a')).collect();
    let b: Vec<&String> = msgs.iter().filter(|m| m.starts_with('b')).collect();
    assert_eq!(a, (0..1800).map(|i| format!("a{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    assert_eq!(b, (0..700).map(|i| format!("b{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    assert_eq!(stats.rotations.load(Ordering::SeqCst), 1);
    let new_ino = std::fs::metadata(&f).unwrap().ino();
    let (entries, _) = parse_pos_file(&std::fs::read_to_string(&pos).unwrap());
    assert_eq!(entries, vec![(f.display().to_string(), std::fs::metadata(&f).unwrap().len(), new_ino)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_a_pause_between_rename_and_create_is_a_rotation() {
    // logrotate without `create` (or a slow writer) leaves the path empty for a while after the rename.
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    append(&f, lines("a", 0..10).as_bytes());
    let r = start(&conf(&f, "read_from_head true\nrotate_wait 1s\nstat_interval_ms 50"));
    wait_until("first lines", || r.cap.len() >= 10).await;
    std::fs::rename(&f, p(&dir, "app.log.1")).unwrap();
    settle().await;
    append(&f, lines("b", 0..5).as_bytes());
    wait_until("new file", || r.cap.len() >= 15).await;
    let stats = r.stats.clone();
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), 15, "no duplicates");
    assert_eq!(stats.rotations.load(Ordering::SeqCst), 1, "the file that reappeared is counted as a rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_reads_the_file_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    append(&f, lines("a", 0..300).as_bytes());
    let r = start(&conf(&f, "read_from_head true"));
    wait_until("first lines", || r.cap.len() >= 300).await;
    std::fs::copy(&f, p(&dir, "app.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(0).unwrap();
    wait_until("truncation seen", || r.stats.truncations.load(Ordering::SeqCst) >= 1).await;
    append(&f, lines("b", 0..20).as_bytes());
    wait_until("new lines", || r.cap.len() >= 320).await;
    settle().await;
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), 320);
    assert_eq!(msgs[300..], (0..20).map(|i| format!("b{i}")).collect::<Vec<_>>()[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10mb_line_over_max_line_size_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "big.log");
    let mut data = b"before\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    data.extend(b"\nafter\n");
    append(&f, &data);
    let r = start(&conf(&f, "read_from_head true\nmax_line_size 1m"));
    wait_until("two lines", || r.cap.len() >= 2).await;
    settle().await;
    let stats = r.stats.clone();
    assert_eq!(r.stop().await.messages(), vec!["before", "after"]);
    assert_eq!(stats.lines_too_long.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10mb_line_without_max_line_size_is_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "big.log");
    let mut data = std::iter::repeat_n(b'y', 10 * 1024 * 1024).collect::<Vec<u8>>();
    data.push(b'\n');
    append(&f, &data);
    let r = start(&conf(&f, "read_from_head true"));
    wait_until("the line", || r.cap.len() >= 1).await;
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].len(), 10 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_crlf_and_partial_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "odd.log");
    append(&f, b"caf\xe9 ok\r\nplain\r\n\r\npart");
    let r = start(&conf(&f, "read_from_head true"));
    wait_until("three lines", || r.cap.len() >= 3).await;
    settle().await;
    assert_eq!(r.cap.len(), 3, "the partial line waits for its newline");
    append(&f, b"ial\n");
    wait_until("completed line", || r.cap.len() >= 4).await;
    let stats = r.stats.clone();
    assert_eq!(r.stop().await.messages(), vec!["caf\u{FFFD} ok", "plain", "", "partial"]);
    assert_eq!(stats.invalid_utf8_lines.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_charsets_are_decoded_to_utf8() {
    let dir = tempfile::tempdir().unwrap();
    // "안녕 세계" in EUC-KR, then a line with a lone lead byte (invalid in EUC-KR).
    let euc_kr = p(&dir, "kr.log");
    append(&euc_kr, b"\xbe\xc8\xb3\xe7 \xbc\xbc\xb0\xe8\nbad \xbe\n");
    // "日本語" in Shift_JIS, named the way Ruby does for Windows files.
    let sjis = p(&dir, "jp.log");
    append(&sjis, b"\x93\xfa\x96\x7b\x8c\xea\n");
    // "café" in ISO-8859-1, converted explicitly as Fluentd configs often say.
    let latin1 = p(&dir, "fr.log");
    append(&latin1, b"caf\xe9\n");
    let cases = [
        (&euc_kr, "encoding EUC-KR", vec!["안녕 세계", "bad \u{FFFD}"], 1),
        (&sjis, "encoding Windows-31J", vec!["日本語"], 0),
        (&latin1, "from_encoding ISO-8859-1\n encoding utf-8", vec!["café"], 0),
    ];
    for (file, params, want, invalid) in cases {
        let r = start(&conf(file, &format!("read_from_head true\n {params}")));
        wait_until("decoded lines", || r.cap.len() >= want.len()).await;
        let stats = r.stats.clone();
        assert_eq!(r.stop().await.messages(), want, "{params}");
        assert_eq!(stats.invalid_utf8_lines.load(Ordering::SeqCst), invalid, "{params}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_line_gives_one_event_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "batch.log");
    append(&f, b"[{\"message\":\"a\"},{\"message\":\"b\"}]\n{\"message\":\"c\"}\n");
    // A CRI line whose message is an array: each object keeps the CRI fields.
    let cri = p(&dir, "cri.log");
    append(&cri, b"2024-01-01T00:00:00.5Z stdout F [{\"message\":\"x\"},{\"message\":\"y\"}]\n");
    let r = start(&conf(&f, "read_from_head true\n <parse>\n @type json\n </parse>"));
    wait_until("three events", || r.cap.len() >= 3).await;
    assert_eq!(r.stop().await.messages(), vec!["a", "b", "c"]);
    let r =
        start(&conf(&cri, "read_from_head true\n <parse>\n @type cri\n <parse>\n @type json\n </parse>\n </parse>"));
    wait_until("two events", || r.cap.len() >= 2).await;
    let ev = r.stop().await.events();
    assert_eq!(ev.iter().map(|(_, e)| field(e, "message")).collect::<Vec<_>>(), vec!["x", "y"]);
    assert!(ev.iter().all(|(_, e)| field(e, "stream") == "stdout" && e.time.sec == 1_704_067_200), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_comma_lists_exclude_tag_expansion_and_path_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("containers");
    std::fs::create_dir(&d).unwrap();
    for n in ["web_default_app-1.log", "db_default_pg-2.log", "skip_me.log"] {
        append(&d.join(n), format!("from {n}\n").as_bytes());
    }
    append(&d.join("extra.txt"), b"from extra.txt\n");
    append(&d.join("other.txt"), b"from other.txt\n");
    let c = format!(
        "<source>\n @type tail\n path {0}/*.log, {0}/extra.txt\n exclude_path [\"{0}/skip_*\"]\n tag kube.*\n \
         path_key filepath\n read_from_head true\n stat_interval_ms 50\n</source>\n",
        d.display()
    );
    let r = start(&c);
    wait_until("3 files", || r.cap.len() >= 3).await;
    settle().await;
    let cap = r.stop().await;
    let mut got: Vec<(String, String, String)> =
        cap.events().iter().map(|(t, e)| (t.clone(), field(e, "message"), field(e, "filepath"))).collect();
    got.sort();
    // Fluentd: '/' becomes '.', runs of dots collapse, no leading dot.
    let mut dotted = d.display().to_string().replace('/', ".");
    while dotted.contains("..") {
        dotted = dotted.replace("..", ".");
    }
    let dotted = dotted.trim_start_matches('.').to_string();
    let mut want: Vec<(String, String, String)> = ["db_default_pg-2.log", "extra.txt", "web_default_app-1.log"]
        .iter()
        .map(|n| (format!("kube.{dotted}.{n}"), format!("from {n}"), format!("{}/{n}", d.display())))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_files_are_found_at_refresh_and_read_from_head() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag t\n refresh_interval 0.3\n stat_interval_ms 50\n</source>\n",
        dir.path().display()
    ));
    settle().await;
    append(&p(&dir, "late.log"), b"first\nsecond\n");
    wait_until("late file", || r.cap.len() >= 2).await;
    assert_eq!(r.stop().await.messages(), vec!["first", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_java_stack_trace() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "java.log");
    append(
        &f,
        b"2024-01-01 10:00:00 ERROR boom\n\
          java.lang.IllegalStateException: bad\n\
          \tat com.example.A.run(A.java:10)\n\
          \tat com.example.B.main(B.java:5)\n\
          2024-01-01 10:00:01 INFO fine\n\
          2024-01-01 10:00:02 WARN last\n\
          \tat x.Y(Y.java:1)\n",
    );
    let c = conf(
        &f,
        "read_from_head true\nmultiline_flush_interval 1s\n<parse>\n @type multiline\n \
         format_firstline /^\\d{4}-\\d{2}-\\d{2}/\n \
         format1 /^(?<ts>\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}) (?<level>\\w+) (?<message>.*)/\n</parse>",
    );
    let r = start(&c);
    wait_until("three events (the last by multiline_flush_interval)", || r.cap.len() >= 3).await;
    let cap = r.stop().await;
    let ev = cap.events();
    assert_eq!(ev.len(), 3);
    assert_eq!(field(&ev[0].1, "level"), "ERROR");
    assert_eq!(
        field(&ev[0].1, "message"),
        "boom\njava.lang.IllegalStateException: bad\n\tat com.example.A.run(A.java:10)\n\tat com.example.B.main(B.java:5)"
    );
    assert_eq!(field(&ev[1].1, "message"), "fine");
    assert_eq!(field(&ev[2].1, "message"), "last\n\tat x.Y(Y.java:1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_lines_are_emitted_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "j.log");
    append(&f, b"{\"a\":1}\nnot json\n");
    let r = start(&conf(&f, "read_from_head true\nemit_unmatched_lines true\n<parse>\n @type json\n</parse>"));
    wait_until("two events", || r.cap.len() >= 2).await;
    let stats = r.stats.clone();
    let cap = r.stop().await;
    let ev = cap.events();
    assert_eq!(field(&ev[0].1, "a"), "1");
    assert_eq!(field(&ev[1].1, "unmatched_line"), "not json");
    assert_eq!(stats.unmatched_lines.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_is_retried_without_loss_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    append(&f, lines("n", 0..350).as_bytes());
    let cap = Arc::new(Capture::default());
    cap.refuse.store(3, Ordering::SeqCst);
    let r = start_with(&conf(&f, "read_from_head true\nread_lines_limit 100"), cap);
    wait_until("all lines", || r.cap.len() >= 350).await;
    settle().await;
    let stats = r.stats.clone();
    let msgs = r.stop().await.messages();
    assert_eq!(msgs, (0..350).map(|i| format!("n{i}")).collect::<Vec<_>>());
    assert_eq!(stats.emit_retries.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_inodes_does_not_read_a_renamed_file_twice() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    let pos = p(&dir, "app.pos");
    append(&f, lines("a", 0..100).as_bytes());
    let c = format!(
        "<source>\n @type tail\n path {}/app.log*\n tag t\n follow_inodes true\n rotate_wait 1s\n refresh_interval 0.5\n \
         read_from_head true\n pos_file {}\n stat_interval_ms 50\n</source>\n",
        dir.path().display(),
        pos.display()
    );
    let r = start(&c);
    wait_until("first lines", || r.cap.len() >= 100).await;
    std::fs::rename(&f, p(&dir, "app.log.1")).unwrap();
    append(&f, lines("b", 0..50).as_bytes());
    wait_until("new file", || r.cap.len() >= 150).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), 150, "the renamed file is not read again");
}

#[test]
fn config_errors_point_at_the_parameter() {
    let ctx = BuildCtx { dry_run: true, ..BuildCtx::new(registry()) };
    let err = |c: &str| Tail::from_element(&source(c), &ctx).err().expect("an error").to_string();
    assert!(err("<source>\n @type tail\n path /x\n</source>").contains("'tag' parameter is required"));
    assert!(err("<source>\n @type tail\n tag t\n path /x\n follow_inodes true\n</source>").contains("pos_file"));
    assert!(err("<source>\n @type tail\n tag t\n path /x\n encoding UTF-16LE\n</source>").contains("not supported"));
    assert!(err("<source>\n @type tail\n tag t\n path /x\n encoding klingon\n</source>").contains("unknown encoding"));
    let e = err("<source>\n @type tail\n tag t\n path /x\n from_encoding utf-8\n encoding EUC-KR\n</source>");
    assert!(e.contains("UTF-8 text only") && e.contains(":6"), "{e}");
    assert!(err("<source>\n @type tail\n tag t\n path /x\n from_encoding utf-8\n</source>").contains("encoding"));
}

#[test]
fn exit_on_eof_reads_everything_and_the_engine_exits() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = p(&dir, "one.log");
    let f2 = p(&dir, "two.log");
    append(&f1, lines("o", 0..5000).as_bytes());
    append(&f2, b"t0\nt1\nno newline at the end");
    let run = format!("eof-{}", std::process::id());
    let c = format!(
        "<source>\n @type tail\n path {0}/*.log\n tag t.*\n read_from_head true\n exit_on_eof true\n</source>\n\
         <match **>\n @type capture\n run {run}\n</match>\n",
        dir.path().display()
    );
    let engine = common::engine(&c, "test.conf");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(WAIT, engine.run()).await.expect("exits by itself").unwrap() });
    let cap = common::sink(&run);
    let msgs = cap.messages();
    assert_eq!(msgs.len(), 5003);
    assert_eq!(msgs.iter().filter(|m| m.starts_with('o')).count(), 5000);
    assert!(msgs.contains(&"no newline at the end".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_path_follows_rotation_of_its_target() {
    // Kubernetes: /var/log/containers/POD_NS_CONTAINER-ID.log -> /var/log/pods/.../0.log
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let containers = dir.path().join("containers");
    std::fs::create_dir_all(&pods).unwrap();
    std::fs::create_dir_all(&containers).unwrap();
    let target = pods.join("0.log");
    append(&target, b"one\n");
    let link = containers.join("web-7d9f_default_app-0123456789abcdef.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag kube.*\n read_from_head true\n rotate_wait 1s\n stat_interval_ms 50\n</source>\n",
        containers.display()
    ));
    wait_until("first line", || r.cap.len() >= 1).await;
    std::fs::rename(&target, pods.join("0.log.20240101-000000")).unwrap();
    append(&target, b"two\n");
    wait_until("line of the new target", || r.cap.len() >= 2).await;
    settle().await;
    let cap = r.stop().await;
    assert_eq!(cap.messages(), vec!["one", "two"]);
    assert!(cap.events()[0].0.ends_with("containers.web-7d9f_default_app-0123456789abcdef.log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_then_recreated_and_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    let empty = p(&dir, "empty.log");
    append(&f, b"first\n");
    append(&empty, b"");
    let r = start(&format!(
        "<source>\n @type tail\n path {},{}\n tag t\n read_from_head true\n rotate_wait 0.5\n stat_interval_ms 50\n</source>\n",
        f.display(),
        empty.display()
    ));
    wait_until("first", || r.cap.len() >= 1).await;
    std::fs::remove_file(&f).unwrap();
    settle().await;
    append(&f, b"again\n");
    wait_until("recreated file", || r.cap.len() >= 2).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["first", "again"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_on_every_update_and_read_bytes_limit_deliver_everything() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    append(&f, lines("r", 0..2000).as_bytes()); // about 12 KB: more than one second's worth at 8 KB/s
    let r = start(&conf(&f, "read_from_head true\nopen_on_every_update true\nread_bytes_limit_per_second 8192"));
    wait_until("first batch", || r.cap.len() >= 1).await;
    append(&f, lines("r", 2000..2010).as_bytes());
    wait_until("all lines", || r.cap.len() >= 2010).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), (0..2010).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_recently_modified_skips_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let old = p(&dir, "old.log");
    let new = p(&dir, "new.log");
    append(&old, b"old\n");
    append(&new, b"new\n");
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(past).unwrap();
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag t\n read_from_head true\n limit_recently_modified 10m\n stat_interval_ms 50\n</source>\n",
        dir.path().display()
    ));
    wait_until("new file", || r.cap.len() >= 1).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_is_warned_and_other_files_keep_flowing() {
    // root reads anything: the check only means something for an ordinary user.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = p(&dir, "locked.log");
    let open = p(&dir, "open.log");
    append(&locked, b"secret\n");
    append(&open, b"visible\n");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag t\n read_from_head true\n ignore_repeated_permission_error true\n stat_interval_ms 50\n</source>\n",
        dir.path().display()
    ));
    wait_until("open file", || r.cap.len() >= 1).await;
    wait_until("permission error counted", || r.stats.permission_errors.load(Ordering::SeqCst) >= 1).await;
    assert_eq!(r.stop().await.messages(), vec!["visible"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pos_file_compaction_drops_unwatched_entries() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    let g = p(&dir, "b.log");
    let pos = p(&dir, "x.pos");
    append(&f, b"a\n");
    append(&g, b"b\n");
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag t\n read_from_head true\n pos_file {}\n refresh_interval 0.3\n \
         rotate_wait 0.3\n pos_file_compaction_interval 0.5\n stat_interval_ms 50\n</source>\n",
        dir.path().display(),
        pos.display()
    ));
    wait_until("both", || r.cap.len() >= 2).await;
    std::fs::remove_file(&g).unwrap();
    let g_name = g.display().to_string();
    wait_until("entry of the removed file compacted away", || {
        let (entries, _) = parse_pos_file(&std::fs::read_to_string(&pos).unwrap_or_default());
        entries.len() == 1 && entries[0].0 != g_name
    })
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rotations_keep_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "app.log");
    append(&f, b"");
    let r = start(&conf(&f, "read_from_head true\nrotate_wait 1s"));
    settle().await;
    let total = 50_000;
    let per_file = 5_000;
    let mut w = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    for i in 0..total {
        writeln!(w, "line {i}").unwrap();
        if (i + 1) % per_file == 0 && i + 1 < total {
            let n = (i + 1) / per_file;
            // Rename-and-create as logrotate does; the writer keeps its old descriptor for a few more lines.
            std::fs::rename(&f, p(&dir, &format!("app.log.{n}"))).unwrap();
            let fresh = std::fs::OpenOptions::new().create(true).append(true).open(&f).unwrap();
            // One rotation per stat: wait until sluice has seen this one (a rotation faster than the
            // stat interval would hide the file in between; see docs/plugins/tail.md).
            let stats = r.stats.clone();
            wait_until("rotation seen", || stats.rotations.load(Ordering::SeqCst) >= n as u64).await;
            w = fresh;
        }
    }
    drop(w);
    wait_until("all lines", || r.cap.len() >= total).await;
    settle().await;
    let msgs = r.stop().await.messages();
    assert_eq!(msgs.len(), total, "no line lost or duplicated");
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m, &format!("line {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_position_does_not_cover_the_event_being_assembled() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "java.log");
    let pos = p(&dir, "java.pos");
    let first = "2024-01-01 10:00:00 ERROR a\n\tat x.A(A.java:1)\n";
    let second = "2024-01-01 10:00:01 ERROR b\n\tat x.B(B.java:2)\n";
    append(&f, format!("{first}{second}").as_bytes());
    let c = conf(
        &f,
        &format!(
            "read_from_head true\npos_file {}\n<parse>\n @type multiline\n format_firstline /^\\d{{4}}-/\n \
             format1 /^(?<ts>\\S+ \\S+) (?<level>\\w+) (?<message>.*)/\n</parse>",
            pos.display()
        ),
    );
    let r = start(&c);
    wait_until("first event", || r.cap.len() >= 1).await;
    // The second event is still being assembled (no next first line yet): a crash now must re-read it.
    let held_at = first.len() as u64;
    wait_until("position at the held event", || {
        let (e, _) = parse_pos_file(&std::fs::read_to_string(&pos).unwrap_or_default());
        e.first().map(|x| x.1) == Some(held_at)
    })
    .await;
    // A clean shutdown emits it and records the end.
    let msgs = r.stop().await.messages();
    assert_eq!(msgs, vec!["a\n\tat x.A(A.java:1)", "b\n\tat x.B(B.java:2)"]);
    let (e, _) = parse_pos_file(&std::fs::read_to_string(&pos).unwrap());
    assert_eq!(e[0].1, (first.len() + second.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_partial_lines_are_joined_from_a_kubernetes_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("var/log/containers");
    std::fs::create_dir_all(&d).unwrap();
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let f = d.join(format!("web-5d8f7c9b4-x2x7q_prod-eu-west_application1-{id}.log"));
    append(
        &f,
        b"2024-01-01T10:00:00.000000001Z stdout P part one \n\
          2024-01-01T10:00:00.000000002Z stdout P part two \n\
          2024-01-01T10:00:00.000000003Z stdout F end\n\
          2024-01-01T10:00:01.000000000Z stderr F {\"level\":\"ERROR\"}\n",
    );
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag kube.*\n read_from_head true\n stat_interval_ms 50\n \
         <parse>\n  @type cri\n </parse>\n</source>\n",
        d.display()
    ));
    wait_until("two events", || r.cap.len() >= 2).await;
    settle().await;
    let cap = r.stop().await;
    let ev = cap.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(field(&ev[0].1, "message"), "part one part two end");
    assert_eq!(field(&ev[1].1, "stream"), "stderr");
    assert!(ev[0].0.starts_with("kube.") && ev[0].0.ends_with(&format!("prod-eu-west_application1-{id}.log")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_by_limit_recently_modified_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let f = p(&dir, "a.log");
    let pos = p(&dir, "a.pos");
    append(&f, b"one\n");
    let r = start(&format!(
        "<source>\n @type tail\n path {}/*.log\n tag t\n read_from_head true\n limit_recently_modified 60s\n \
         refresh_interval 0.3\n rotate_wait 0.3\n pos_file {}\n stat_interval_ms 50\n</source>\n",
        dir.path().display(),
        pos.display()
    ));
    wait_until("first line", || r.cap.len() >= 1).await;
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&f).unwrap().set_modified(past).unwrap();
    settle().await; // dropped from the watch list at a refresh
    append(&f, b"two\n"); // modified again: watched again
    wait_until("second line", || r.cap.len() >= 2).await;
    settle().await;
    assert_eq!(r.stop().await.messages(), vec!["one", "two"]);
}
