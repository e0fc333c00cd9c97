//! `--dry-run`'s answer to "will sluice be able to write there?": a directory it must write (buffer, pos
//! file, file output, spill, cursor) exists and is writable, or can be created because its nearest existing
//! ancestor is a writable directory. Nothing is created: a dry run changes nothing on disk.
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `Ok` when `dir` is a writable directory or could be created. The error says which path is the problem
/// and why, in words an operator can act on.
pub fn writable_dir(dir: &Path) -> Result<(), String> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut probe = dir;
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if m.is_dir() => {
                return can_write(probe).map_err(|e| {
                    if probe == dir {
                        format!("directory {} is not writable by sluice (uid {}): {e}", dir.display(), euid())
                    } else {
                        format!(
                            "directory {} does not exist and cannot be created: {} is not writable by sluice (uid {}): {e}",
                            dir.display(),
                            probe.display(),
                            euid()
                        )
                    }
                });
            }
            Ok(_) => {
                return Err(if probe == dir {
                    format!("{} exists and is not a directory", dir.display())
                } else {
                    format!("directory {} cannot be created: {} is not a directory", dir.display(), probe.display())
                })
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                match probe.parent() {
                    Some(p) if !p.as_os_str().is_empty() => probe = p,
                    // A relative path whose first component is missing: it would be created in the current directory.
                    _ => probe = Path::new("."),
                }
            }
            Err(e) => return Err(format!("cannot inspect {}: {e}", probe.display())),
        }
    }
}

/// The directory part of a path template that holds no placeholder (`${…}`, `%Y`, `*`): what exists before the
/// first event, e.g. `/var/log/out` for `/var/log/out/${tag}/%Y%m%d.log`.
pub fn static_dir(template: &str) -> PathBuf {
    let cut = ["${", "%", "*"].iter().filter_map(|m| template.find(m)).min().unwrap_or(template.len());
    let head = &template[..cut];
    if cut < template.len() || !head.ends_with('/') {
        // Inside or after the last component: its parent is the directory that must exist.
        match head.rfind('/') {
            Some(0) => PathBuf::from("/"),
            Some(i) => PathBuf::from(&head[..i]),
            None => PathBuf::from("."),
        }
    } else {
        PathBuf::from(head.trim_end_matches('/'))
    }
}

/// access(2) with W_OK|X_OK: the kernel's own answer, which knows root, ACLs and read-only mounts.
fn can_write(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| io::Error::other("path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that lives across the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn static_dir_stops_at_the_first_placeholder() {
        assert_eq!(static_dir("/var/log/out/${tag}/%Y%m%d.log"), PathBuf::from("/var/log/out"));
        assert_eq!(static_dir("/var/log/out/app.%Y%m%d"), PathBuf::from("/var/log/out"));
        assert_eq!(static_dir("/var/log/buf/*.log"), PathBuf::from("/var/log/buf"));
        assert_eq!(static_dir("/var/log/buf/"), PathBuf::from("/var/log/buf"));
        assert_eq!(static_dir("/var/log/app.log"), PathBuf::from("/var/log"));
        assert_eq!(static_dir("/x"), PathBuf::from("/"));
        assert_eq!(static_dir("out.log"), PathBuf::from("."));
    }

    #[test]
    fn missing_directories_under_a_writable_one_are_fine() {
        let t = tempfile::tempdir().unwrap();
        writable_dir(t.path()).unwrap();
        writable_dir(&t.path().join("a/b/c")).unwrap();
        assert!(!t.path().join("a").exists(), "a dry run creates nothing");
    }

    #[test]
    fn a_file_in_the_way_is_reported() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let e = writable_dir(&t.path().join("f")).unwrap_err();
        assert!(e.contains("is not a directory"), "{e}");
        let e = writable_dir(&t.path().join("f/sub")).unwrap_err();
        assert!(e.contains("cannot be created"), "{e}");
    }

    #[test]
    fn a_read_only_directory_is_reported_unless_root() {
        let t = tempfile::tempdir().unwrap();
        let ro = t.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let r = writable_dir(&ro.join("buffer"));
        if euid() == 0 {
            // root may write anywhere that is not mounted read-only.
            assert!(r.is_ok(), "{r:?}");
        } else {
            let e = r.unwrap_err();
            assert!(e.contains("not writable") && e.contains(&ro.display().to_string()), "{e}");
        }
    }
}
