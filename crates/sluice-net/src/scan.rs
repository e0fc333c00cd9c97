//! Finds where one msgpack object ends in a growing buffer without decoding it, so a stream reader knows
//! when a whole forward-protocol frame has arrived. Resumable: bytes already walked are not walked again
//! when more arrive, so a large frame read in many small pieces costs one pass.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("reserved msgpack marker 0xc1")]
    Reserved,
}

/// Walks one msgpack object; keeps its place between calls.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Start of the next element still to walk.
    pos: usize,
    /// Elements still to walk before the object is complete (an array of n adds n, a map of n adds 2n).
    pending: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner { pos: 0, pending: 1 }
    }
}

/// (header bytes, payload bytes, child elements) of the element whose header starts `buf`; None when the
/// header itself is not complete yet.
fn header(buf: &[u8]) -> Result<Option<(usize, usize, u64)>, ScanError> {
    let Some(&m) = buf.first() else { return Ok(None) };
    let be = |n: usize| -> Option<u64> {
        let b = buf.get(1..1 + n)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    };
    let r = match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, 0),
        0x80..=0x8f => (1, 0, 2 * (m & 0x0f) as u64),
        0x90..=0x9f => (1, 0, (m & 0x0f) as u64),
        0xa0..=0xbf => (1, (m & 0x1f) as usize, 0),
        0xc1 => return Err(ScanError::Reserved),
        0xc4 | 0xd9 => match be(1) {
            Some(n) => (2, n as usize, 0),
            None => return Ok(None),
        },
        0xc5 | 0xda => match be(2) {
            Some(n) => (3, n as usize, 0),
            None => return Ok(None),
        },
        0xc6 | 0xdb => match be(4) {
            Some(n) => (5, n as usize, 0),
            None => return Ok(None),
        },
        // ext 8/16/32: length, then one type byte
        0xc7 => match be(1) {
            Some(n) => (3, n as usize, 0),
            None => return Ok(None),
        },
        0xc8 => match be(2) {
            Some(n) => (4, n as usize, 0),
            None => return Ok(None),
        },
        0xc9 => match be(4) {
            Some(n) => (6, n as usize, 0),
            None => return Ok(None),
        },
        0xca => (1, 4, 0),
        0xcb => (1, 8, 0),
        0xcc | 0xd0 => (1, 1, 0),
        0xcd | 0xd1 => (1, 2, 0),
        0xce | 0xd2 => (1, 4, 0),
        0xcf | 0xd3 => (1, 8, 0),
        // fixext 1/2/4/8/16: type byte + data
        0xd4..=0xd8 => (2, 1usize << (m - 0xd4), 0),
        0xdc => match be(2) {
            Some(n) => (3, 0, n),
            None => return Ok(None),
        },
        0xdd => match be(4) {
            Some(n) => (5, 0, n),
            None => return Ok(None),
        },
        0xde => match be(2) {
            Some(n) => (3, 0, 2 * n),
            None => return Ok(None),
        },
        0xdf => match be(4) {
            Some(n) => (5, 0, 2 * n),
            None => return Ok(None),
        },
    };
    Ok(Some(r))
}

impl Scanner {
    /// `Some(len)` when `buf[..len]` holds one whole object (the scanner is then reset for the next one),
    /// `None` when more bytes are needed. `buf` must start with the same bytes as on earlier calls.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ScanError> {
        while self.pending > 0 {
            let Some(rest) = buf.get(self.pos..) else { return Ok(None) };
            let Some((head, payload, children)) = header(rest)? else { return Ok(None) };
            let Some(end) = head.checked_add(payload) else { return Ok(None) };
            if end > rest.len() {
                return Ok(None);
            }
            self.pos += end;
            // Saturating: a hostile length can only make us wait for bytes the size limit refuses.
            self.pending = (self.pending - 1).saturating_add(children);
        }
        let len = self.pos;
        *self = Scanner::default();
        Ok(Some(len))
    }

    /// Bytes walked so far of the object in progress.
    pub fn walked(&self) -> usize {
        self.pos
    }
}

/// The length of the whole object at the start of `buf`, or None when it is truncated.
pub fn object_len(buf: &[u8]) -> Result<Option<usize>, ScanError> {
    Scanner::default().scan(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::event::{write_entry, EventTime, Map, Value};

    #[test]
    fn finds_the_end_of_each_object_fed_byte_by_byte() {
        let mut buf = Vec::new();
        let mut rec = Map::new();
        rec.insert("a", Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::Null, Value::Str("x".into())]));
        rec.insert("b", Value::Bytes(vec![0; 300]));
        write_entry("tag", EventTime::new(1, 2), &rec, &mut buf);
        let first = buf.len();
        write_entry("t2", EventTime::new(3, 4), &Map::new(), &mut buf);
        let mut s = Scanner::default();
        let mut found = Vec::new();
        let mut start = 0;
        for end in 1..=buf.len() {
            if let Some(n) = s.scan(&buf[start..end]).unwrap() {
                found.push(start + n);
                start += n;
            }
        }
        assert_eq!(found, vec![first, buf.len()]);
    }

    #[test]
    fn hostile_lengths_wait_instead_of_allocating() {
        assert_eq!(object_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap(), None);
        assert_eq!(object_len(&[0xdb, 0xff, 0xff, 0xff, 0xff, 1, 2]).unwrap(), None);
        assert_eq!(object_len(&[0xc1]), Err(ScanError::Reserved));
        assert_eq!(object_len(&[0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0x80]).unwrap(), Some(12));
    }
}
