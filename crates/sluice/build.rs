//! Link flags of the `sluice` executable on GNU/Linux, both for its idle memory.
//!
//! Packed relative relocations (DT_RELR): a PIE binary of this size carries about 2 MB of relative
//! relocations that the loader reads at every start, resident for the life of the process. RELR packs them
//! into about 30 KB: idle RSS drops by about 2 MB per node while the executable stays position-independent
//! (ASLR kept). Running the result needs glibc 2.36 or newer (set SLUICE_NO_RELR=1 when building for an
//! older one); a linker without RELR support warns and ignores the flag.
//!
//! Symbol order (release builds linked by lld): the functions an idle sluice runs (`symbol-order.txt`,
//! written by scripts/symbol_order.py) are placed together at the start of `.text`. The kernel maps code
//! in 64 KiB runs around each page touched, so code spread over 17 MB costs about 64 KiB per function
//! touched; packed, the same code costs what it weighs (idle RSS 9.7 -> 6.2 MiB, see docs/BENCHMARKS.md).
//! A name the file has and the binary lacks (after a dependency or toolchain update) is skipped: the
//! build never fails for it, the gain shrinks until the file is written again. SLUICE_NO_SYMBOL_ORDER=1
//! turns it off.
use std::process::Command;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("SLUICE_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=SLUICE_NO_RELR");

    let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("symbol-order.txt");
    if std::env::var("PROFILE").is_ok_and(|p| p == "release")
        && std::env::var_os("SLUICE_NO_SYMBOL_ORDER").is_none()
        && order.is_file()
        && links_with_lld()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rerun-if-env-changed=SLUICE_NO_SYMBOL_ORDER");
    println!("cargo:rerun-if-changed=symbol-order.txt");
}

/// `--symbol-ordering-file` is lld's (GNU ld rejects it). rustc links x86_64-unknown-linux-gnu with its
/// own lld from 1.90 on, unless the flags choose another linker.
fn links_with_lld() -> bool {
    if std::env::var("TARGET").ok().as_deref() != Some("x86_64-unknown-linux-gnu") {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("fuse-ld") || flags.contains("linker-features") || flags.contains("linker-flavor") {
        return flags.contains("fuse-ld=lld") || flags.contains("fuse-ld=mold");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.lines().find_map(|l| l.strip_prefix("release: ")) else { return false };
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 90)
}
