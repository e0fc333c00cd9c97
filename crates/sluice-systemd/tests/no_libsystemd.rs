//! A node without libsystemd: the source warns, reads nothing and stops cleanly (its own test binary,
//! since the library is looked up once per process).
mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_libsystemd_is_a_warning_not_a_crash() {
    let _logs = captured_logs();
    std::env::set_var(sluice_systemd::ffi::LIBSYSTEMD_ENV, "libsystemd-not-here.so.0");
    let dir = tempfile::tempdir().unwrap();
    let r = start(&conf(dir.path(), "  read_from_head true"));
    wait_until("the warning", || logs_text().contains("libsystemd-not-here.so.0")).await;
    assert!(logs_text().contains("reads nothing"), "{}", logs_text());
    assert_eq!(r.stop().await.len(), 0);
}
