//! A chunk's records written straight from their msgpack entries as compact JSON, byte for byte what
//! [`crate::event::write_json_map`] writes for the decoded record, without building the `Value` tree
//! (the flush of a json-formatted output is mostly that decode and its allocations).
//!
//! Entries the direct path does not handle (ext values, non-string keys, duplicate keys, very wide maps)
//! are decoded instead, so the caller formats them the ordinary way. Records buffered as JSON text
//! (`write_entry_json`, for outputs that send JSON) are copied as they are.
use super::chunk::{Chunk, ChunkEvent};
use crate::event::{decode_entry, write_json_float, write_json_str, MsgpackError};

/// Maps wider than this are decoded (the duplicate-key check is quadratic).
const MAX_DIRECT_KEYS: usize = 32;
const MAX_DEPTH: u32 = 512;

/// What [`JsonEntries::next_into`] did with one entry.
pub enum EntryJson<'a> {
    /// The record's JSON was appended to the buffer; the entry's tag.
    Written { tag: &'a str },
    /// The entry holds something the direct path does not write: here it is decoded.
    Decoded(ChunkEvent),
}

/// The entries of a chunk, each as the JSON of its record.
pub struct JsonEntries<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Chunk {
    /// Walk the entries writing each record as JSON (see [`JsonEntries::next_into`]).
    pub fn json_entries(&self) -> JsonEntries<'_> {
        JsonEntries { data: &self.data, pos: 0 }
    }
}

/// Not handled by the direct path (the entry is decoded instead); never an error in the data itself.
struct Unsupported;

enum Fail {
    Unsupported,
    Corrupt,
}

impl From<Unsupported> for Fail {
    fn from(_: Unsupported) -> Self {
        Fail::Unsupported
    }
}

struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(n).ok_or(Fail::Corrupt)?;
        let s = self.buf.get(self.pos..end).ok_or(Fail::Corrupt)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }
    fn be<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// The length after a str8/16/32, bin8/16/32, array16/32 or map16/32 marker.
    fn len(&mut self, m: u8) -> Result<usize, Fail> {
        Ok(match m {
            0xc4 | 0xd9 => self.u8()? as usize,
            0xc5 | 0xda | 0xdc | 0xde => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }
    /// A string's bytes (str family only).
    fn str_bytes(&mut self) -> Result<&'a [u8], Fail> {
        let m = self.u8()?;
        let n = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9..=0xdb => self.len(m)?,
            _ => return Err(Fail::Unsupported),
        };
        self.take(n)
    }

    /// One value as JSON, as `write_json` writes the `Value` the decoder would make of it.
    fn value(&mut self, out: &mut Vec<u8>, depth: u32) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail::Unsupported);
        }
        let m = self.u8()?;
        match m {
            0x00..=0x7f => int(m as i64, out),
            0x80..=0x8f => self.map((m & 0x0f) as usize, out, depth)?,
            0x90..=0x9f => self.array((m & 0x0f) as usize, out, depth)?,
            0xa0..=0xbf => {
                let b = self.take((m & 0x1f) as usize)?;
                text(b, out);
            }
            0xc0 => out.extend_from_slice(b"null"),
            0xc2 => out.extend_from_slice(b"false"),
            0xc3 => out.extend_from_slice(b"true"),
            0xc4..=0xc6 => {
                let n = self.len(m)?;
                let b = self.take(n)?;
                write_json_str(String::from_utf8_lossy(b).as_bytes(), out);
            }
            0xca => write_json_float(f32::from_be_bytes(self.be()?) as f64, out),
            0xcb => write_json_float(f64::from_be_bytes(self.be()?), out),
            0xcc => int(self.u8()? as i64, out),
            0xcd => int(u16::from_be_bytes(self.be()?) as i64, out),
            0xce => int(u32::from_be_bytes(self.be()?) as i64, out),
            0xcf => uint(u64::from_be_bytes(self.be()?), out),
            0xd0 => int(i8::from_be_bytes(self.be()?) as i64, out),
            0xd1 => int(i16::from_be_bytes(self.be()?) as i64, out),
            0xd2 => int(i32::from_be_bytes(self.be()?) as i64, out),
            0xd3 => int(i64::from_be_bytes(self.be()?), out),
            0xd9..=0xdb => {
                let n = self.len(m)?;
                let b = self.take(n)?;
                text(b, out);
            }
            0xdc | 0xdd => {
                let n = self.len(m)?;
                self.array(n, out, depth)?
            }
            0xde | 0xdf => {
                let n = self.len(m)?;
                self.map(n, out, depth)?
            }
            0xe0..=0xff => int((m as i8) as i64, out),
            // ext types and the reserved marker: decoded the ordinary way.
            _ => return Err(Fail::Unsupported),
        }
        Ok(())
    }

    fn array(&mut self, n: usize, out: &mut Vec<u8>, depth: u32) -> Result<(), Fail> {
        out.push(b'[');
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            self.value(out, depth + 1)?;
        }
        out.push(b']');
        Ok(())
    }

    fn map(&mut self, n: usize, out: &mut Vec<u8>, depth: u32) -> Result<(), Fail> {
        if n > MAX_DIRECT_KEYS {
            return Err(Fail::Unsupported);
        }
        // The decoder keeps the first position and the last value of a duplicate key: leave that to it.
        let mut keys: [&[u8]; MAX_DIRECT_KEYS] = [&[]; MAX_DIRECT_KEYS];
        out.push(b'{');
        for i in 0..n {
            let k = self.str_bytes()?;
            if keys[..i].contains(&k) || std::str::from_utf8(k).is_err() {
                return Err(Fail::Unsupported);
            }
            keys[i] = k;
            if i > 0 {
                out.push(b',');
            }
            write_json_str(k, out);
            out.push(b':');
            self.value(out, depth + 1)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// A msgpack str: valid UTF-8 as it is, anything else as the decoder's lossy text.
fn text(b: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(b) {
        Ok(_) => write_json_str(b, out),
        Err(_) => write_json_str(String::from_utf8_lossy(b).as_bytes(), out),
    }
}

fn uint(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[pos..]);
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i < 0 {
        out.push(b'-');
    }
    uint(i.unsigned_abs(), out);
}

impl<'a> JsonEntries<'a> {
    /// Append the next record's JSON to `out` (nothing else: no newline), or decode the entry when the
    /// direct path does not handle it; `None` at the end. After an error the walk ends.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Option<Result<EntryJson<'a>, MsgpackError>> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = out.len();
        let mut c = Cur { buf: self.data, pos: self.pos };
        match entry(&mut c, out) {
            Ok(tag) => {
                self.pos = c.pos;
                return Some(Ok(EntryJson::Written { tag }));
            }
            Err(Fail::Unsupported | Fail::Corrupt) => out.truncate(start),
        }
        // The decoder decides, and reports corruption with its own error.
        match decode_entry(&self.data[self.pos..]) {
            Ok((tag, time, record, used)) => {
                self.pos += used;
                Some(Ok(EntryJson::Decoded(ChunkEvent { tag, time, record })))
            }
            Err(e) => {
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }
}

/// `[tag, time, record]`: the record written as JSON; returns the tag.
fn entry<'a>(c: &mut Cur<'a>, out: &mut Vec<u8>) -> Result<&'a str, Fail> {
    if c.u8()? != 0x93 {
        return Err(Fail::Corrupt);
    }
    let tag = std::str::from_utf8(c.str_bytes()?).map_err(|_| Fail::Unsupported)?;
    match c.u8()? {
        0xd7 => {
            if c.u8()? != 0 {
                return Err(Fail::Unsupported);
            }
            c.take(8)?;
        }
        _ => return Err(Fail::Unsupported),
    }
    match c.u8()? {
        m @ 0x80..=0x8f => c.map((m & 0x0f) as usize, out, 0)?,
        m @ (0xde | 0xdf) => {
            let n = c.len(m)?;
            c.map(n, out, 0)?
        }
        // Already JSON (`write_entry_json`): copied as it is, once it is known to be text.
        m @ 0xc4..=0xc6 => {
            let n = c.len(m)?;
            let json = c.take(n)?;
            if !json.starts_with(b"{") || std::str::from_utf8(json).is_err() {
                return Err(Fail::Unsupported);
            }
            out.extend_from_slice(json);
        }
        _ => return Err(Fail::Unsupported),
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::ChunkMetadata;
    use crate::event::{write_entry, write_entry_json, write_json_map, EventTime, Map, Str, Value};
    use proptest::prelude::*;

    fn chunk(data: Vec<u8>, records: usize) -> Chunk {
        Chunk { id: [0; 16], metadata: ChunkMetadata::default(), data: data.into(), records }
    }

    /// What the ordinary path writes for every entry: decode, then `write_json_map`.
    fn via_values(c: &Chunk) -> Vec<Vec<u8>> {
        c.events()
            .map(|e| {
                let mut o = Vec::new();
                write_json_map(&e.unwrap().record, &mut o);
                o
            })
            .collect()
    }

    fn direct(c: &Chunk) -> (Vec<Vec<u8>>, usize) {
        let mut it = c.json_entries();
        let (mut all, mut decoded) = (Vec::new(), 0);
        loop {
            let mut o = Vec::new();
            match it.next_into(&mut o) {
                None => return (all, decoded),
                Some(Ok(EntryJson::Written { .. })) => all.push(o),
                Some(Ok(EntryJson::Decoded(ev))) => {
                    decoded += 1;
                    write_json_map(&ev.record, &mut o);
                    all.push(o);
                }
                Some(Err(e)) => panic!("{e}"),
            }
        }
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (i64::MAX as u64..=u64::MAX).prop_map(Value::UInt),
            any::<f64>().prop_map(Value::Float),
            ".{0,40}".prop_map(|s| Value::Str(Str::from(s.as_str()))),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec(("[a-z\"\\\\\\n]{0,6}", inner), 0..6).prop_map(|kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.insert(k.as_str(), v);
                    }
                    Value::Map(m)
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn same_bytes_as_decoding_and_formatting(records in proptest::collection::vec(value(), 1..8)) {
            let mut data = Vec::new();
            for (i, v) in records.iter().enumerate() {
                let mut m = Map::new();
                m.insert("v", v.clone());
                m.insert("n", Value::Int(i as i64));
                write_entry("tag.x", EventTime::new(1_700_000_000, 5), &m, &mut data);
            }
            let c = chunk(data, records.len());
            prop_assert_eq!(direct(&c).0, via_values(&c));
        }

        /// Records buffered as JSON text come out as the same bytes as records buffered as msgpack, and
        /// the decoder reads them back as maps (for `<secondary>` and `@ERROR`).
        #[test]
        fn records_buffered_as_json_give_the_same_bytes(records in proptest::collection::vec(value(), 1..8)) {
            let (mut as_msgpack, mut as_json) = (Vec::new(), Vec::new());
            for (i, v) in records.iter().enumerate() {
                let mut m = Map::new();
                m.insert("v", v.clone());
                m.insert("n", Value::Int(i as i64));
                write_entry("tag.x", EventTime::new(1_700_000_000, 5), &m, &mut as_msgpack);
                write_entry_json("tag.x", EventTime::new(1_700_000_000, 5), &m, &mut as_json);
            }
            let (a, b) = (chunk(as_msgpack, records.len()), chunk(as_json, records.len()));
            let (out, decoded) = direct(&b);
            prop_assert_eq!(decoded, 0);
            prop_assert_eq!(&out, &direct(&a).0);
            prop_assert_eq!(via_values(&b), out);
            for e in b.events() {
                let e = e.unwrap();
                prop_assert_eq!((e.tag.as_str(), e.time), ("tag.x", EventTime::new(1_700_000_000, 5)));
            }
        }
    }

    #[test]
    fn a_json_entry_that_is_not_text_is_left_to_the_decoder() {
        let mut data = Vec::new();
        // A bin record with invalid UTF-8: the direct path does not copy it, the decoder reports it.
        data.extend_from_slice(&[0x93, 0xa1, b't', 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        data.extend_from_slice(&[0xc4, 3, b'{', 0xff, b'}']);
        let c = chunk(data, 1);
        let mut it = c.json_entries();
        let mut o = Vec::new();
        assert!(matches!(it.next_into(&mut o), Some(Err(_))));
        assert!(o.is_empty());
    }

    #[test]
    fn what_the_direct_path_leaves_to_the_decoder_still_comes_out_the_same() {
        let mut data = Vec::new();
        // A duplicate key (written by hand: a Map cannot hold one), an ext value, a non-string key.
        data.extend_from_slice(&[0x93, 0xa1, b't', 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        data.extend_from_slice(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02]);
        data.extend_from_slice(&[0x93, 0xa1, b't', 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        data.extend_from_slice(&[0x81, 0xa1, b'e', 0xd4, 0x05, 0x07]);
        data.extend_from_slice(&[0x93, 0xa1, b't', 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        data.extend_from_slice(&[0x81, 0x07, 0xc3]);
        // Invalid UTF-8 in a value and a plain record: written directly.
        data.extend_from_slice(&[0x93, 0xa1, b't', 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        data.extend_from_slice(&[0x81, 0xa1, b's', 0xa2, 0xff, b'x']);
        let c = chunk(data, 4);
        let (out, decoded) = direct(&c);
        assert_eq!(out, via_values(&c));
        assert_eq!(decoded, 3);
        assert_eq!(out[0], br#"{"a":2}"#.to_vec());
    }

    #[test]
    fn a_corrupt_entry_is_reported_as_the_decoder_reports_it() {
        let mut data = Vec::new();
        let mut m = Map::new();
        m.insert("k", Value::Str("v".into()));
        write_entry("t", EventTime::new(1, 0), &m, &mut data);
        let whole = data.len();
        write_entry("t", EventTime::new(2, 0), &m, &mut data);
        data.truncate(whole + 5);
        let c = chunk(data, 2);
        let mut it = c.json_entries();
        let mut o = Vec::new();
        assert!(matches!(it.next_into(&mut o), Some(Ok(EntryJson::Written { tag: "t" }))));
        assert_eq!(o, br#"{"k":"v"}"#.to_vec());
        assert!(matches!(it.next_into(&mut o), Some(Err(_))));
        assert!(it.next_into(&mut o).is_none());
    }
}
