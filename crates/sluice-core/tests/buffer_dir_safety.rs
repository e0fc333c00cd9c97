//! A file buffer's directory holds records sluice delivers on its next start, so it must be sluice's own:
//! created 0700, and one that another user owns or could write to is refused at start-up, before any
//! chunk planted in it is read.
mod buffer_common;

use buffer_common::*;
use sluice_core::plugin::Output;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn conf(dir: &Path) -> String {
    format!(
        "<match **>\n @type fake\n <buffer tag>\n  @type file\n  path {}\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        dir.display()
    )
}

/// Leave a queued chunk with one record in `dir`, as a previous run (or an attacker) would.
fn plant_chunk(dir: &Path) {
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build("plant", &conf(dir), fake).unwrap();
    h.out.emit("planted", events(0..1)).unwrap();
    drop(h);
    assert!(std::fs::read_dir(dir).unwrap().count() > 0);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn new_buffer_directories_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state/buffers/out");
    build("private", &conf(&dir), Fake::new(vec![], Resp::Ok)).unwrap();
    assert_eq!(mode(&dir), 0o700);
    // Missing parents are created private too.
    assert_eq!(mode(&tmp.path().join("state")), 0o700);
    assert_eq!(mode(&tmp.path().join("state/buffers")), 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_others_can_write_is_refused_and_its_chunks_never_delivered() {
    for (perm, word) in [(0o777, "every user"), (0o770, "its group")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("buf");
        plant_chunk(&dir);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(perm)).unwrap();
        let fake = Fake::new(vec![], Resp::Ok);
        let err = match build("shared", &conf(&dir), fake.clone()) {
            Ok(h) => {
                h.out.start().await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!("accepted a {perm:o} buffer directory; delivered {:?}", fake.delivered_ns());
            }
            Err(e) => e.to_string(),
        };
        assert!(err.contains("cannot use buffer directory") && err.contains(word), "{err}");
        assert!(err.contains("test.conf"), "names the file and line: {err}");
        assert!(fake.delivered.lock().is_empty());
    }
    // A group-writable directory is fine when dir_permission asks for it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    let text = conf(&dir).replace("  @type file\n", "  @type file\n  dir_permission 0770\n");
    build("group-ok", &text, Fake::new(vec![], Resp::Ok)).unwrap();
    assert_eq!(mode(&dir), 0o770);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_owned_by_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: changing a directory's owner needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    plant_chunk(&dir);
    // nobody (65534) owns it now, mode 0700 as a careful attacker would leave it.
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 65534);
    let fake = Fake::new(vec![], Resp::Ok);
    let err = build("foreign", &conf(&dir), fake.clone()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("owned by uid 65534"), "{err:?}");
    assert!(fake.delivered.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_files_of_another_user_are_not_resumed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: changing a file's owner needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    plant_chunk(&dir);
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        std::os::unix::fs::chown(e.path(), Some(65534), None).unwrap();
    }
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build("foreign-files", &conf(&dir), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.out.shutdown().await;
    assert!(fake.delivered.lock().is_empty());
}
