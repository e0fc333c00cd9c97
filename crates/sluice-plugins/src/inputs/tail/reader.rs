//! Reading one open file: a reusable buffer, lines split with memchr, `\r\n` handled, lines longer than
//! `max_line_size` skipped without keeping them in memory. A long line is scanned once (the search for its
//! newline resumes where it stopped) and the buffer grows by a quarter at a time, then shrinks once the
//! line is consumed, so memory stays near the longest line's size. Only regular files are read, and
//! opening never blocks (a FIFO or device matched by a glob is refused). Positions are file offsets of line ends, so the
//! position committed after an emit never covers a line that was not emitted or an incomplete last line.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

const READ_CHUNK: usize = 64 * 1024;
/// The buffer is given back down to this after a long line.
const KEEP_CAPACITY: usize = 4 * READ_CHUNK;
/// Bytes kept from just before the read offset, to recognise a file that was truncated and then grew
/// past the old offset between two checks (copytruncate with a fast writer).
const TAIL_SIG: usize = 64;

pub struct Handle {
    file: Option<File>,
    pub ino: u64,
    pub dev: u64,
    /// The position recorded after the last accepted batch.
    pub committed: u64,
    /// With a joining parser: offset of the first line of the event it is assembling.
    pub hold_start: Option<u64>,
    buf: Vec<u8>,
    /// Index in `buf` of the first byte not consumed yet.
    start: usize,
    /// Index in `buf` up to which there is no newline after `start`: where the next search begins.
    scan: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Discarding a line longer than `max_line_size` until its newline.
    skipping: bool,
    /// The last read returned no data.
    pub at_eof: bool,
    window: Instant,
    window_bytes: u64,
    /// The last (up to [`TAIL_SIG`]) bytes read, ending at [`Handle::read_offset`].
    sig: Vec<u8>,
    /// Bytes searched for a newline, in all.
    #[cfg(test)]
    searched: usize,
}

/// One step of [`Handle::next_line`].
pub enum Next {
    /// A complete line at `buf[a..b]` (without `\n` or `\r\n`).
    Line(usize, usize),
    /// A line longer than `max_line_size` was dropped.
    Skipped,
    /// No complete line in the buffer.
    Empty,
}

impl Handle {
    /// Open `path` at `pos` (clamped to the file's size... a larger position means the file was truncated).
    pub fn open(path: &Path, pos: Option<u64>) -> io::Result<(Handle, u64)> {
        let (mut file, meta) = open_regular(path)?;
        let size = meta.len();
        let pos = match pos {
            Some(p) if p <= size => p,
            Some(_) => 0,
            None => size,
        };
        if pos > 0 {
            file.seek(SeekFrom::Start(pos))?;
        }
        Ok((Handle::with_file(file, meta.ino(), meta.dev(), pos), size))
    }

    pub fn with_file(file: File, ino: u64, dev: u64, pos: u64) -> Handle {
        Handle {
            file: Some(file),
            ino,
            dev,
            committed: pos,
            hold_start: None,
            buf: Vec::new(),
            start: 0,
            scan: 0,
            base: pos,
            skipping: false,
            at_eof: false,
            window: Instant::now(),
            window_bytes: 0,
            sig: Vec::new(),
            #[cfg(test)]
            searched: 0,
        }
    }

    /// Offset just after the last consumed line: what the position file may record.
    pub fn consumed(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Offset up to which the file has been read.
    pub fn read_offset(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Close the descriptor (open_on_every_update); [`Handle::reopen`] continues at the same offset.
    pub fn close(&mut self) {
        self.file = None;
    }

    pub fn reopen(&mut self, path: &Path) -> io::Result<bool> {
        let (mut f, meta) = open_regular(path)?;
        if meta.ino() != self.ino || meta.dev() != self.dev {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(self.read_offset()))?;
        self.file = Some(f);
        Ok(true)
    }

    /// Size of the open file, for truncation checks.
    pub fn size(&self) -> Option<u64> {
        self.file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len())
    }

    /// Start over at `pos`, dropping buffered bytes (truncation, or a batch the next stage refused).
    pub fn rewind(&mut self, pos: u64) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::Start(pos))?;
        }
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        self.base = pos;
        self.hold_start = None;
        self.skipping = false;
        self.at_eof = false;
        self.sig.clear();
        Ok(())
    }

    /// True when the file at `size` bytes no longer holds what was read: it is shorter than the read
    /// offset, or it grew but the bytes just before the read offset changed (truncated, then written past
    /// the old offset before this check). Without an open descriptor only the size is compared.
    pub fn truncated(&self, size: u64) -> bool {
        use std::os::unix::fs::FileExt;
        let end = self.read_offset();
        if size < end {
            return true;
        }
        if size == end || self.sig.is_empty() {
            return false;
        }
        let Some(file) = self.file.as_ref() else {
            return false;
        };
        let mut now = vec![0u8; self.sig.len()];
        match file.read_exact_at(&mut now, end - self.sig.len() as u64) {
            Ok(()) => now != self.sig,
            Err(_) => false,
        }
    }

    /// Bytes of an incomplete last line.
    #[cfg(test)]
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Consume the incomplete last line (end of file with exit_on_eof, or a rotated file given up).
    pub fn take_pending(&mut self) -> Option<(usize, usize)> {
        if self.start >= self.buf.len() || self.skipping {
            return None;
        }
        let (a, mut b) = (self.start, self.buf.len());
        if self.buf[b - 1] == b'\r' {
            b -= 1;
        }
        self.start = self.buf.len();
        self.scan = self.start;
        Some((a, b))
    }

    /// File offset of `buf[a]`.
    pub fn offset_of(&self, a: usize) -> u64 {
        self.base + a as u64
    }

    pub fn bytes(&self, a: usize, b: usize) -> &[u8] {
        &self.buf[a..b]
    }

    pub fn next_line(&mut self, max_line_size: Option<usize>) -> Next {
        let from = self.scan.max(self.start);
        let found = memchr::memchr(b'\n', &self.buf[from..]);
        #[cfg(test)]
        {
            self.searched += found.map_or(self.buf.len() - from, |i| i + 1);
        }
        match found {
            Some(i) => {
                let a = self.start;
                let mut b = from + i;
                self.start = b + 1;
                self.scan = self.start;
                if self.skipping {
                    self.skipping = false;
                    return Next::Skipped;
                }
                // As Fluentd: the size counts the line's end (`\n`, `\r\n`).
                if max_line_size.is_some_and(|m| self.start - a > m) {
                    return Next::Skipped;
                }
                if b > a && self.buf[b - 1] == b'\r' {
                    b -= 1;
                }
                Next::Line(a, b)
            }
            None => {
                self.scan = self.buf.len();
                if let Some(m) = max_line_size {
                    if self.buf.len() - self.start > m && !self.skipping {
                        // Too long already: forget it and skip up to its newline.
                        self.skipping = true;
                    }
                    if self.skipping {
                        self.start = self.buf.len();
                    }
                }
                Next::Empty
            }
        }
    }

    /// Read more bytes. Ok(0) at the end of the file or when `limit` (bytes per second) is used up.
    pub fn fill(&mut self, limit: Option<u64>) -> io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut want = READ_CHUNK;
        if let Some(l) = limit {
            if self.window.elapsed() >= Duration::from_secs(1) {
                self.window = Instant::now();
                self.window_bytes = 0;
            }
            let left = l.saturating_sub(self.window_bytes);
            if left == 0 {
                return Ok(0);
            }
            want = want.min(left as usize);
        }
        // Drop consumed bytes before growing the buffer.
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.capacity() / 2) {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.scan -= self.start.min(self.scan);
            self.start = 0;
            if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() < self.buf.capacity() / 4 {
                // A long line was consumed: give its memory back.
                self.buf.shrink_to(KEEP_CAPACITY.max(self.buf.len() + READ_CHUNK));
            }
        }
        let old = self.buf.len();
        let need = old + want;
        if need > self.buf.capacity() {
            // Grow by a quarter rather than doubling: a huge line costs about its own size.
            let target = need.max(self.buf.capacity().saturating_add(self.buf.capacity() / 4));
            self.buf.reserve_exact(target - old);
        }
        self.buf.resize(need, 0);
        let n = loop {
            match file.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n >= TAIL_SIG {
            self.sig.clear();
            self.sig.extend_from_slice(&self.buf[old + n - TAIL_SIG..old + n]);
        } else if n > 0 {
            self.sig.extend_from_slice(&self.buf[old..old + n]);
            let extra = self.sig.len().saturating_sub(TAIL_SIG);
            self.sig.drain(..extra);
        }
        self.window_bytes += n as u64;
        self.at_eof = n == 0;
        Ok(n)
    }

    /// True when the byte limit for this second is used up.
    pub fn throttled(&self, limit: Option<u64>) -> bool {
        limit.is_some_and(|l| self.window_bytes >= l && self.window.elapsed() < Duration::from_secs(1))
    }
}

/// Open `path` for reading without blocking (a FIFO without a writer would block `open`), and refuse
/// anything that is not a regular file after symlinks are resolved (FIFOs, sockets, devices).
fn open_regular(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(h: &mut Handle, max: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match h.next_line(max) {
                Next::Line(a, b) => out.push(String::from_utf8_lossy(h.bytes(a, b)).into_owned()),
                Next::Skipped => out.push("<skipped>".into()),
                Next::Empty => {
                    if h.fill(None).unwrap() == 0 {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn splits_crlf_partial_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"one\r\ntwo\n").unwrap();
        f.write_all(&vec![b'x'; 200_000]).unwrap();
        f.write_all(b"\nthree\npart").unwrap();
        let (mut h, _) = Handle::open(&p, Some(0)).unwrap();
        assert_eq!(lines(&mut h, Some(1000)), vec!["one", "two", "<skipped>", "three"]);
        assert_eq!(h.pending(), b"part");
        assert_eq!(h.consumed(), 5 + 4 + 200_001 + 6);
    }

    /// A line of 9 MiB (just over a power of two of the read size) is searched for its newline once, held
    /// in about its own size, and the memory is given back after it.
    #[test]
    fn a_long_line_is_scanned_once_and_its_memory_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let len = 9 * 1024 * 1024 + 1000;
        let mut data = vec![b'x'; len];
        data.push(b'\n');
        for i in 0..20_000 {
            data.extend_from_slice(format!("short line {i}\n").as_bytes());
        }
        std::fs::write(&p, &data).unwrap();
        let (mut h, _) = Handle::open(&p, Some(0)).unwrap();
        let mut peak = 0;
        let mut count = 0;
        loop {
            peak = peak.max(h.buf.capacity());
            match h.next_line(None) {
                Next::Line(a, b) => {
                    if count == 0 {
                        assert_eq!(b - a, len);
                    }
                    count += 1;
                }
                Next::Skipped => unreachable!(),
                Next::Empty => {
                    if h.fill(None).unwrap() == 0 {
                        break;
                    }
                }
            }
        }
        assert_eq!(count, 20_001);
        assert!(h.searched <= 2 * data.len(), "searched {} bytes of a {}-byte file", h.searched, data.len());
        assert!(peak <= len + len / 4 + 2 * READ_CHUNK, "buffer of {peak} bytes for a {len}-byte line");
        assert!(h.buf.capacity() <= KEEP_CAPACITY + READ_CHUNK, "kept {} bytes", h.buf.capacity());
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let link = dir.path().join("z.log");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for p in [&fifo, &link] {
            let e = Handle::open(p, Some(0)).err().expect("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }

    /// Fluentd compares the line with its newline: `"x" * max + "\n"` is skipped, one byte less is kept.
    #[test]
    fn max_line_size_counts_the_newline_as_fluentd() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"foo\nxxxxxxxxxx\nxxxxxxxxx\nxxxxxxxx\r\nbar\n").unwrap();
        let (mut h, _) = Handle::open(&p, Some(0)).unwrap();
        assert_eq!(lines(&mut h, Some(10)), vec!["foo", "<skipped>", "xxxxxxxxx", "xxxxxxxx", "bar"]);
    }

    #[test]
    fn truncation_is_seen_even_when_the_file_grew_past_the_old_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"line 1\nline 2\n").unwrap();
        let (mut h, _) = Handle::open(&p, Some(0)).unwrap();
        assert_eq!(lines(&mut h, None), vec!["line 1", "line 2"]);
        // Appending keeps what was read: not a truncation.
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"line 3\n").unwrap();
        assert!(!h.truncated(21));
        // copytruncate, then more was written than had been read before the check.
        std::fs::write(&p, b"line 4\nline 5\nline 6\nline 7\n").unwrap();
        assert!(h.truncated(28));
        assert!(h.truncated(3));
    }
}
