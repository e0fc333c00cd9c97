//! The part of libsystemd's `sd-journal` API the input uses, loaded with `dlopen` at run time so that the
//! binary starts on nodes without libsystemd (the input then warns and reads nothing).
//!
//! Every `unsafe` block of the crate is here. A [`Journal`] owns one `sd_journal` handle; it is used by
//! one thread at a time (libsystemd allows moving a handle between threads, not sharing it).
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// The soname Debian, Fedora, Alpine (elogind excepted) and the distroless images ship.
pub const LIBSYSTEMD: &str = "libsystemd.so.0";
/// Overrides the library file (a path or a soname), for unusual layouts and for tests.
pub const LIBSYSTEMD_ENV: &str = "SLUICE_LIBSYSTEMD";

type Handle = *mut c_void;

/// `sd_journal_wait`/`sd_journal_process` results.
pub const SD_JOURNAL_NOP: c_int = 0;
pub const SD_JOURNAL_APPEND: c_int = 1;
pub const SD_JOURNAL_INVALIDATE: c_int = 2;

struct Api {
    // Kept loaded for the life of the process: the function pointers below point into it.
    _lib: libloading::Library,
    open_directory: unsafe extern "C" fn(*mut Handle, *const c_char, c_int) -> c_int,
    close: unsafe extern "C" fn(Handle),
    add_match: unsafe extern "C" fn(Handle, *const c_void, usize) -> c_int,
    add_disjunction: unsafe extern "C" fn(Handle) -> c_int,
    seek_head: unsafe extern "C" fn(Handle) -> c_int,
    seek_tail: unsafe extern "C" fn(Handle) -> c_int,
    seek_cursor: unsafe extern "C" fn(Handle, *const c_char) -> c_int,
    test_cursor: unsafe extern "C" fn(Handle, *const c_char) -> c_int,
    next: unsafe extern "C" fn(Handle) -> c_int,
    previous: unsafe extern "C" fn(Handle) -> c_int,
    get_cursor: unsafe extern "C" fn(Handle, *mut *mut c_char) -> c_int,
    get_realtime_usec: unsafe extern "C" fn(Handle, *mut u64) -> c_int,
    restart_data: unsafe extern "C" fn(Handle),
    /// `sd_journal_enumerate_available_data` (systemd 246+) when present: it skips fields it cannot
    /// decompress instead of failing the whole entry; `sd_journal_enumerate_data` otherwise.
    enumerate: unsafe extern "C" fn(Handle, *mut *const c_void, *mut usize) -> c_int,
    set_data_threshold: unsafe extern "C" fn(Handle, usize) -> c_int,
    wait: unsafe extern "C" fn(Handle, u64) -> c_int,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn load() -> Result<Api, String> {
    let name = std::env::var(LIBSYSTEMD_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| LIBSYSTEMD.into());
    // SAFETY: loading libsystemd runs only its ELF constructors, which have no preconditions.
    let lib = unsafe { libloading::Library::new(&name) }.map_err(|e| format!("cannot load {name}: {e}"))?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the type matches the symbol's C prototype in <systemd/sd-journal.h>.
            *unsafe { lib.get($name) }
                .map_err(|e| format!("{name} has no {}: {e}", String::from_utf8_lossy(&$name[..$name.len() - 1])))?
        };
    }
    // SAFETY: as above.
    let enumerate = match unsafe { lib.get(b"sd_journal_enumerate_available_data\0") } {
        Ok(f) => *f,
        Err(_) => sym!(b"sd_journal_enumerate_data\0"),
    };
    Ok(Api {
        open_directory: sym!(b"sd_journal_open_directory\0"),
        close: sym!(b"sd_journal_close\0"),
        add_match: sym!(b"sd_journal_add_match\0"),
        add_disjunction: sym!(b"sd_journal_add_disjunction\0"),
        seek_head: sym!(b"sd_journal_seek_head\0"),
        seek_tail: sym!(b"sd_journal_seek_tail\0"),
        seek_cursor: sym!(b"sd_journal_seek_cursor\0"),
        test_cursor: sym!(b"sd_journal_test_cursor\0"),
        next: sym!(b"sd_journal_next\0"),
        previous: sym!(b"sd_journal_previous\0"),
        get_cursor: sym!(b"sd_journal_get_cursor\0"),
        get_realtime_usec: sym!(b"sd_journal_get_realtime_usec\0"),
        restart_data: sym!(b"sd_journal_restart_data\0"),
        enumerate,
        set_data_threshold: sym!(b"sd_journal_set_data_threshold\0"),
        wait: sym!(b"sd_journal_wait\0"),
        _lib: lib,
    })
}

fn api() -> Result<&'static Api, String> {
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Whether libsystemd can be used, or why not (loaded once per process).
pub fn available() -> Result<(), String> {
    api().map(|_| ())
}

fn check(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::from_raw_os_error(r.saturating_neg()))
    } else {
        Ok(r)
    }
}

/// An open journal (every file of one directory, interleaved by libsystemd).
pub struct Journal {
    api: &'static Api,
    h: Handle,
}

// SAFETY: an sd_journal handle may move between threads; `Journal` is not `Sync`, so it is only ever used
// from one thread at a time.
unsafe impl Send for Journal {}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: `h` came from sd_journal_open_directory and is closed once.
        unsafe { (self.api.close)(self.h) }
    }
}

impl Journal {
    /// Open the journal files in `dir` (and its machine-id subdirectories, as journald lays them out).
    pub fn open_directory(dir: &Path) -> io::Result<Journal> {
        let api = api().map_err(io::Error::other)?;
        let c = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: `c` is a valid C string and `h` a valid out pointer.
        check(unsafe { (api.open_directory)(&mut h, c.as_ptr(), 0) })?;
        let j = Journal { api, h };
        // Whole fields, not libsystemd's default 64 KiB prefix.
        // SAFETY: `h` is open.
        check(unsafe { (api.set_data_threshold)(j.h, 0) })?;
        Ok(j)
    }

    /// `FIELD=value` (same field twice: OR; different fields: AND, within one term).
    pub fn add_match(&mut self, m: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `m`, which libsystemd copies.
        check(unsafe { (self.api.add_match)(self.h, m.as_ptr().cast(), m.len()) }).map(drop)
    }

    /// Start a new OR term of matches.
    pub fn add_disjunction(&mut self) -> io::Result<()> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.add_disjunction)(self.h) }).map(drop)
    }

    pub fn seek_head(&mut self) -> io::Result<()> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.seek_head)(self.h) }).map(drop)
    }

    pub fn seek_tail(&mut self) -> io::Result<()> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.seek_tail)(self.h) }).map(drop)
    }

    pub fn seek_cursor(&mut self, cursor: &str) -> io::Result<()> {
        let c = CString::new(cursor).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cursor has a NUL"))?;
        // SAFETY: `c` is a valid C string.
        check(unsafe { (self.api.seek_cursor)(self.h, c.as_ptr()) }).map(drop)
    }

    /// Whether the current entry is the one `cursor` names.
    pub fn test_cursor(&mut self, cursor: &str) -> io::Result<bool> {
        let c = CString::new(cursor).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cursor has a NUL"))?;
        // SAFETY: `c` is a valid C string.
        check(unsafe { (self.api.test_cursor)(self.h, c.as_ptr()) }).map(|r| r > 0)
    }

    /// Move to the next entry; false at the end.
    pub fn next_entry(&mut self) -> io::Result<bool> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.next)(self.h) }).map(|r| r > 0)
    }

    /// Move to the previous entry; false at the start.
    pub fn previous_entry(&mut self) -> io::Result<bool> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.previous)(self.h) }).map(|r| r > 0)
    }

    /// The current entry's cursor.
    pub fn cursor(&mut self) -> io::Result<String> {
        let mut p: *mut c_char = std::ptr::null_mut();
        // SAFETY: `p` is a valid out pointer.
        check(unsafe { (self.api.get_cursor)(self.h, &mut p) })?;
        if p.is_null() {
            return Err(io::Error::other("sd_journal_get_cursor returned no cursor"));
        }
        // SAFETY: libsystemd returned a malloc'ed NUL-terminated string that we now own.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        // SAFETY: as above; freed once.
        unsafe { libc::free(p.cast()) };
        Ok(s)
    }

    /// The current entry's wall-clock time in microseconds since the epoch.
    pub fn realtime_usec(&mut self) -> io::Result<u64> {
        let mut t = 0u64;
        // SAFETY: `t` is a valid out pointer.
        check(unsafe { (self.api.get_realtime_usec)(self.h, &mut t) })?;
        Ok(t)
    }

    /// Call `f` with each `FIELD=value` of the current entry, in stored order.
    pub fn for_each_field(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        // SAFETY: `h` is open.
        unsafe { (self.api.restart_data)(self.h) };
        loop {
            let mut p: *const c_void = std::ptr::null();
            let mut n = 0usize;
            // SAFETY: valid out pointers.
            let r = check(unsafe { (self.api.enumerate)(self.h, &mut p, &mut n) })?;
            if r == 0 {
                return Ok(());
            }
            if p.is_null() {
                continue;
            }
            // SAFETY: libsystemd returned `n` readable bytes at `p`, valid until the next call on `h`.
            f(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) });
        }
    }

    /// Wait up to `usec` for the journal to change: [`SD_JOURNAL_NOP`], [`SD_JOURNAL_APPEND`] or
    /// [`SD_JOURNAL_INVALIDATE`] (files added or removed).
    pub fn wait(&mut self, usec: u64) -> io::Result<c_int> {
        // SAFETY: `h` is open.
        check(unsafe { (self.api.wait)(self.h, usec) })
    }
}
