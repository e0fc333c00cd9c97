//! Message framing of text streams (in_tcp, in_syslog over TCP/TLS): messages split by a delimiter
//! (Fluentd's default `"\n"`), or RFC 6587 octet counting (`LEN SP MSG`).
//!
//! A decoder looks at the unconsumed bytes of a connection and says what the next step is; the caller
//! consumes `used` bytes after each step. No step needs more than `limit` message bytes (plus a delimiter
//! or a length prefix) in the buffer: a longer message is skipped while it streams by, so a hostile client
//! cannot make a connection hold more than that.
use memchr::memmem;

/// The longest length prefix accepted (10 digits covers every `u32`).
const MAX_COUNT_DIGITS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A whole message at `buf[start..end]`; consume `used` bytes.
    Message { start: usize, end: usize, used: usize },
    /// Bytes of a message longer than the limit: consume `used` bytes, no message. `oversize` is set on the
    /// step that found the message too long (its size, or the bytes seen so far), so it is counted once.
    Skip { used: usize, oversize: Option<u64> },
    /// Nothing whole yet: read more.
    NeedMore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("octet-counted frame does not start with a length")]
    BadLength,
}

/// One of the two framings.
#[derive(Debug)]
pub enum Decoder {
    Delimited(Box<Delimited>),
    OctetCounted(OctetCounted),
}

impl Decoder {
    pub fn delimited(delimiter: &[u8], limit: usize) -> Self {
        Decoder::Delimited(Box::new(Delimited::new(delimiter, limit)))
    }

    pub fn octet_counted(limit: usize) -> Self {
        Decoder::OctetCounted(OctetCounted::new(limit))
    }

    /// The next step for the unconsumed bytes `buf` (which start where the last step's `used` ended).
    pub fn next(&mut self, buf: &[u8]) -> Result<Step, FrameError> {
        match self {
            Decoder::Delimited(d) => Ok(d.next(buf)),
            Decoder::OctetCounted(d) => d.next(buf),
        }
    }

    /// True when the decoder is inside a message (bytes were read that belong to no whole message).
    pub fn mid_frame(&self, unconsumed: &[u8]) -> bool {
        match self {
            Decoder::Delimited(d) => d.discarding || !unconsumed.is_empty(),
            Decoder::OctetCounted(d) => d.skipping > 0 || !unconsumed.is_empty(),
        }
    }
}

/// Messages ended by a delimiter (the delimiter is not part of the message).
#[derive(Debug)]
pub struct Delimited {
    finder: memmem::Finder<'static>,
    delimiter_len: usize,
    limit: usize,
    /// Skipping the rest of a message that is already too long, up to its delimiter.
    discarding: bool,
    /// How far `buf` was searched without finding a delimiter (searches resume there).
    searched: usize,
}

impl Delimited {
    pub fn new(delimiter: &[u8], limit: usize) -> Self {
        let delimiter = if delimiter.is_empty() { b"\n".as_slice() } else { delimiter };
        Delimited {
            finder: memmem::Finder::new(delimiter).into_owned(),
            delimiter_len: delimiter.len(),
            limit,
            discarding: false,
            searched: 0,
        }
    }

    fn next(&mut self, buf: &[u8]) -> Step {
        let from = self.searched.min(buf.len());
        if let Some(i) = self.finder.find(&buf[from..]).map(|i| i + from) {
            self.searched = 0;
            let used = i + self.delimiter_len;
            if self.discarding {
                self.discarding = false;
                return Step::Skip { used, oversize: None };
            }
            if i > self.limit {
                return Step::Skip { used, oversize: Some(i as u64) };
            }
            return Step::Message { start: 0, end: i, used };
        }
        // Keep the last bytes that may be the start of a delimiter split across reads.
        let keep = self.delimiter_len - 1;
        let settled = buf.len().saturating_sub(keep);
        if self.discarding {
            self.searched = 0;
            return if settled > 0 { Step::Skip { used: settled, oversize: None } } else { Step::NeedMore };
        }
        if settled > self.limit {
            // Whatever follows, this message is too long: drop what is here and skip to its delimiter.
            self.discarding = true;
            self.searched = 0;
            return Step::Skip { used: settled, oversize: Some(settled as u64) };
        }
        self.searched = settled;
        Step::NeedMore
    }
}

/// RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`. Whitespace before the length is ignored (as Ruby's
/// `Integer()` does in Fluentd).
#[derive(Debug)]
pub struct OctetCounted {
    limit: usize,
    /// Bytes still to skip of a message longer than the limit.
    skipping: u64,
}

impl OctetCounted {
    pub fn new(limit: usize) -> Self {
        OctetCounted { limit, skipping: 0 }
    }

    fn next(&mut self, buf: &[u8]) -> Result<Step, FrameError> {
        if self.skipping > 0 {
            if buf.is_empty() {
                return Ok(Step::NeedMore);
            }
            let n = usize::try_from(self.skipping).unwrap_or(usize::MAX).min(buf.len());
            self.skipping -= n as u64;
            return Ok(Step::Skip { used: n, oversize: None });
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if ws > 0 {
            return Ok(Step::Skip { used: ws, oversize: None });
        }
        let digits = buf.iter().take(MAX_COUNT_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
        match buf.get(digits) {
            _ if digits > MAX_COUNT_DIGITS => return Err(FrameError::BadLength),
            None => return Ok(Step::NeedMore),
            Some(b' ') if digits > 0 => {}
            _ => return Err(FrameError::BadLength),
        }
        let count = buf[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let header = digits + 1;
        if count > self.limit as u64 {
            self.skipping = count;
            return Ok(Step::Skip { used: header, oversize: Some(count) });
        }
        let end = header + count as usize;
        if buf.len() < end {
            return Ok(Step::NeedMore);
        }
        Ok(Step::Message { start: header, end, used: end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in pieces of `piece` bytes; the messages and the oversize counts.
    fn run(mut d: Decoder, input: &[u8], piece: usize) -> (Vec<Vec<u8>>, usize) {
        let (mut msgs, mut over, mut buf) = (Vec::new(), 0, Vec::new());
        for part in input.chunks(piece) {
            buf.extend_from_slice(part);
            loop {
                match d.next(&buf).unwrap() {
                    Step::Message { start, end, used } => {
                        msgs.push(buf[start..end].to_vec());
                        buf.drain(..used);
                    }
                    Step::Skip { used, oversize } => {
                        over += usize::from(oversize.is_some());
                        buf.drain(..used);
                    }
                    Step::NeedMore => break,
                }
            }
        }
        (msgs, over)
    }

    #[test]
    fn lines_in_any_split() {
        for piece in [1, 2, 3, 100] {
            let (m, o) = run(Decoder::delimited(b"\r\n", 5), b"ab\r\n\r\ntoolong!\r\nxyz\r\nrest", piece);
            assert_eq!(m, vec![b"ab".to_vec(), b"".to_vec(), b"xyz".to_vec()], "piece {piece}");
            assert_eq!(o, 1);
        }
    }

    #[test]
    fn octet_counts() {
        for piece in [1, 4, 100] {
            let (m, o) = run(Decoder::octet_counted(5), b"3 abc\n2 de 9 123456789 1 x", piece);
            assert_eq!(m, vec![b"abc".to_vec(), b"de".to_vec(), b"x".to_vec()], "piece {piece}");
            assert_eq!(o, 1);
        }
        assert_eq!(Decoder::octet_counted(5).next(b"x1 a"), Err(FrameError::BadLength));
        assert_eq!(Decoder::octet_counted(5).next(b"12345678901 a"), Err(FrameError::BadLength));
    }
}
