//! Which certificate authorities the HTTPS outputs trust: the system's store, which `SSL_CERT_FILE`
//! extends or replaces as OpenSSL (and so Fluentd) reads it, besides the built-in Mozilla roots. A
//! Cloud Logging endpoint behind a private CA is reached when the CA is given that way, and refused
//! (the records kept, not sent) when it is not: verification stays on.
mod common;

use common::*;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn tls_dir() -> PathBuf {
    workspace_root().join("crates/sluice-net/tests/data/tls")
}

/// The fake's state over HTTPS, trusting the test CA.
fn state(port: u16) -> J {
    let code = "import json,ssl,sys,urllib.request\n\
                ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
                print(urllib.request.urlopen(f'https://127.0.0.1:{sys.argv[2]}/_control/state', context=ctx).read().decode())";
    let out = Command::new(python())
        .args(["-c", code, tls_dir().join("ca.pem").to_str().expect("utf-8"), &port.to_string()])
        .output()
        .expect("python");
    serde_json::from_slice(&out.stdout).unwrap_or(J::Null)
}

fn run(dir: &Path, port: u16, key: &Path, cert_file: Option<&Path>) -> std::process::Output {
    let data = dir.join("in.log");
    std::fs::write(&data, "{\"message\":\"through a private CA\",\"severity\":\"ERROR\"}\n").expect("input");
    let conf = dir.join("fluent.conf");
    std::fs::write(
        &conf,
        format!(
            "<source>\n  @type tail\n  path {}\n  read_from_head true\n  exit_on_eof true\n  tag app\n  <parse>\n    @type json\n  </parse>\n</source>\n\
             <match app>\n  @type google_cloud\n  logging_api_url https://127.0.0.1:{port}\n  credentials_path {}\n  use_metadata_service false\n  project_id key-project\n  zone z\n  vm_id 1\n  <buffer>\n    flush_interval 0.2s\n    retry_wait 0.2s\n  </buffer>\n</match>\n",
            data.display(),
            key.display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("-c").arg(&conf).env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR").stdin(Stdio::null());
    if let Some(f) = cert_file {
        cmd.env("SSL_CERT_FILE", f);
    }
    cmd.output().expect("sluice runs")
}

#[test]
fn google_cloud_trusts_the_ca_in_ssl_cert_file_and_only_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.json");
    let tls = tls_dir();
    let (_fake, banner) = spawn_python_with_banner(
        "gcp_fake",
        &[
            script("gcp_fake.py").to_str().expect("utf-8"),
            "serve",
            "--genkey",
            key.to_str().expect("utf-8"),
            "--project",
            "key-project",
            "--tls",
            tls.join("server.pem").to_str().expect("utf-8"),
            tls.join("server.key").to_str().expect("utf-8"),
        ],
    );
    let port: u16 = banner.strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("gcp_fake port");

    // Without the CA: the certificate is refused, nothing is sent, and the log says why.
    let refused = dir.path().join("refused");
    std::fs::create_dir_all(&refused).expect("dir");
    let out = run(&refused, port, &key, None);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("google_cloud"), "{log}");
    assert!(log.to_lowercase().contains("certificate") || log.contains("error sending request"), "{log}");
    assert_eq!(state(port)["entries"].as_array().map_or(0, Vec::len), 0, "nothing sent without trust");

    // With SSL_CERT_FILE naming the CA: delivered.
    let trusted = dir.path().join("trusted");
    std::fs::create_dir_all(&trusted).expect("dir");
    let out = run(&trusted, port, &key, Some(&tls.join("ca.pem")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries = wait_for("the entry in Cloud Logging", Duration::from_secs(20), || {
        let s = state(port);
        let e = s["entries"].as_array().cloned().unwrap_or_default();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(entries.len(), 1, "{entries:?}");
    // A record that is only a message becomes a textPayload, as in the Ruby plugin.
    assert_eq!(entries[0]["textPayload"], "through a private CA", "{:?}", entries[0]);
    assert_eq!(entries[0]["severity"], "ERROR");
}
