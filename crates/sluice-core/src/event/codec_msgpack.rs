//! msgpack encoding of values and buffer entries. Times use Fluentd's EventTime ext type 0
//! (fixext8: big-endian u32 seconds, u32 nanoseconds), as the forward protocol does.
use super::time::EventTime;
use super::value::{Map, Str, Value};
use rmp::encode;

#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    #[error("truncated msgpack data")]
    Truncated,
    #[error("invalid msgpack data: {0}")]
    Invalid(String),
}

pub fn write_value(v: &Value, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, so the results are ignored.
    match v {
        Value::Null => {
            let _ = encode::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = encode::write_bool(out, *b);
        }
        Value::Int(i) => {
            let _ = encode::write_sint(out, *i);
        }
        Value::UInt(u) => {
            let _ = encode::write_uint(out, *u);
        }
        Value::Float(f) => {
            let _ = encode::write_f64(out, *f);
        }
        Value::Str(s) => {
            let _ = encode::write_str(out, s);
        }
        Value::Bytes(b) => {
            let _ = encode::write_bin(out, b);
        }
        Value::Array(a) => {
            let _ = encode::write_array_len(out, a.len() as u32);
            for v in a {
                write_value(v, out);
            }
        }
        Value::Map(m) => write_map(m, out),
    }
}

pub fn write_map(m: &Map, out: &mut Vec<u8>) {
    let _ = encode::write_map_len(out, m.len() as u32);
    for (k, v) in m.iter() {
        let _ = encode::write_str(out, k);
        write_value(v, out);
    }
}

pub fn write_event_time(t: EventTime, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&(t.sec as u32).to_be_bytes());
    out.extend_from_slice(&t.nsec.to_be_bytes());
}

/// A buffer entry: `[tag, time, record]`.
pub fn write_entry(tag: &str, t: EventTime, record: &Map, out: &mut Vec<u8>) {
    out.push(0x93);
    let _ = encode::write_str(out, tag);
    write_event_time(t, out);
    write_map(record, out);
}

/// A buffer entry whose record is stored as its JSON text (a msgpack bin): for outputs that send JSON,
/// the record is formatted once, when it is buffered. [`decode_entry`] reads it back as a map.
pub fn write_entry_json(tag: &str, t: EventTime, record: &Map, out: &mut Vec<u8>) {
    out.push(0x93);
    let _ = encode::write_str(out, tag);
    write_event_time(t, out);
    // bin32 with its length filled in once the text is written.
    out.push(0xc6);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    super::codec_json::write_json_map(record, out);
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let end = self.pos.checked_add(n).ok_or(MsgpackError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(MsgpackError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MsgpackError> {
        Ok(self.take(1)?[0])
    }
    fn be<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn len(&mut self, tag: u8) -> Result<usize, MsgpackError> {
        Ok(match tag {
            0xc4 | 0xd9 => self.u8()? as usize,
            0xc5 | 0xda | 0xdc | 0xde => u16::from_be_bytes(self.be()?) as usize,
            0xc6 | 0xdb | 0xdd | 0xdf => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(MsgpackError::Invalid(format!("unexpected marker 0x{tag:02x}"))),
        })
    }
    fn string(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let b = self.take(n)?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => Value::Str(Str::from(s)),
            Err(_) => Value::Bytes(b.to_vec()),
        })
    }
    fn value(&mut self, depth: u32) -> Result<Value, MsgpackError> {
        if depth > 512 {
            return Err(MsgpackError::Invalid("nesting too deep".into()));
        }
        let m = self.u8()?;
        Ok(match m {
            0x00..=0x7f => Value::Int(m as i64),
            0x80..=0x8f => self.map((m & 0x0f) as usize, depth)?,
            0x90..=0x9f => self.array((m & 0x0f) as usize, depth)?,
            0xa0..=0xbf => self.string((m & 0x1f) as usize)?,
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(m)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                let n = match m {
                    0xc7 => self.u8()? as usize,
                    0xc8 => u16::from_be_bytes(self.be()?) as usize,
                    _ => u32::from_be_bytes(self.be()?) as usize,
                };
                let _ty = self.u8()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xca => Value::Float(f32::from_be_bytes(self.be()?) as f64),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(self.u8()? as i64),
            0xcd => Value::Int(u16::from_be_bytes(self.be()?) as i64),
            0xce => Value::Int(u32::from_be_bytes(self.be()?) as i64),
            0xcf => {
                let u = u64::from_be_bytes(self.be()?);
                i64::try_from(u).map(Value::Int).unwrap_or(Value::UInt(u))
            }
            0xd0 => Value::Int(i8::from_be_bytes(self.be()?) as i64),
            0xd1 => Value::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Value::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd4..=0xd8 => {
                let n = 1usize << (m - 0xd4);
                let _ty = self.u8()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xd9..=0xdb => {
                let n = self.len(m)?;
                self.string(n)?
            }
            0xdc | 0xdd => {
                let n = self.len(m)?;
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.len(m)?;
                self.map(n, depth)?
            }
            0xe0..=0xff => Value::Int((m as i8) as i64),
            0xc1 => return Err(MsgpackError::Invalid("reserved marker 0xc1".into())),
        })
    }
    fn array(&mut self, n: usize, depth: u32) -> Result<Value, MsgpackError> {
        // Cap the preallocation: a corrupt length must not allocate gigabytes.
        let mut a = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            a.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(a))
    }
    fn map(&mut self, n: usize, depth: u32) -> Result<Value, MsgpackError> {
        let mut m = Map::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = match self.value(depth + 1)? {
                Value::Str(s) => s,
                other => Str::from(other.to_display_string()),
            };
            let v = self.value(depth + 1)?;
            m.insert(k, v);
        }
        Ok(Value::Map(m))
    }
    fn time(&mut self) -> Result<EventTime, MsgpackError> {
        let save = self.pos;
        let m = self.u8()?;
        if m == 0xd7 {
            let ty = self.u8()?;
            if ty != 0 {
                return Err(MsgpackError::Invalid(format!("ext type {ty} is not EventTime")));
            }
            let sec = u32::from_be_bytes(self.be()?);
            let nsec = u32::from_be_bytes(self.be()?);
            return Ok(EventTime::new(sec as i64, nsec));
        }
        if m == 0xc7 {
            // ext8 with length 8, as some clients send it
            let n = self.u8()?;
            let ty = self.u8()?;
            if n == 8 && ty == 0 {
                let sec = u32::from_be_bytes(self.be()?);
                let nsec = u32::from_be_bytes(self.be()?);
                return Ok(EventTime::new(sec as i64, nsec));
            }
            return Err(MsgpackError::Invalid("bad EventTime ext".into()));
        }
        self.pos = save;
        match self.value(0)? {
            Value::Int(i) => Ok(EventTime::new(i, 0)),
            Value::UInt(u) => Ok(EventTime::new(u as i64, 0)),
            Value::Float(f) => Ok(EventTime::from_f64(f)),
            _ => Err(MsgpackError::Invalid("event time is not a number or EventTime".into())),
        }
    }
}

/// Read one value from the start of `buf`; returns it and the bytes consumed.
pub fn read_value(buf: &[u8]) -> Result<(Value, usize), MsgpackError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// Read a time (EventTime ext or an integer/float) from the start of `buf`.
pub fn read_time(buf: &[u8]) -> Result<(EventTime, usize), MsgpackError> {
    let mut r = Reader { buf, pos: 0 };
    let t = r.time()?;
    Ok((t, r.pos))
}

/// Decode one `[tag, time, record]` entry from the start of `buf`; returns the bytes consumed.
pub fn decode_entry(buf: &[u8]) -> Result<(Str, EventTime, Map, usize), MsgpackError> {
    let mut r = Reader { buf, pos: 0 };
    if r.u8()? != 0x93 {
        return Err(MsgpackError::Invalid("buffer entry is not a 3-array".into()));
    }
    let tag = match r.value(0)? {
        Value::Str(s) => s,
        _ => return Err(MsgpackError::Invalid("entry tag is not a string".into())),
    };
    let t = r.time()?;
    let rec = match r.value(0)? {
        Value::Map(m) => m,
        // Written by `write_entry_json`.
        Value::Bytes(json) => super::codec_json::parse_json_map(json.as_slice())
            .map_err(|e| MsgpackError::Invalid(format!("entry record is not a JSON object: {e}")))?,
        _ => return Err(MsgpackError::Invalid("entry record is not a map".into())),
    };
    Ok((tag, t, rec, r.pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;

    #[test]
    fn entry_round_trip() {
        let mut inner = Map::new();
        inner.insert("a", Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::Null, Value::Bool(true)]));
        let rec = record! {"msg" => "ünïcødé", "n" => -3i64, "big" => Value::UInt(u64::MAX), "nested" => inner, "b" => Value::Bytes(vec![0xff, 0x00])};
        let mut buf = Vec::new();
        let t = EventTime::new(1_700_000_000, 123_456_789);
        write_entry("app.log", t, &rec, &mut buf);
        write_entry("second", t, &Map::new(), &mut buf);
        let (tag, t2, rec2, used) = decode_entry(&buf).unwrap();
        assert_eq!((tag.as_str(), t2, &rec2), ("app.log", t, &rec));
        let (tag, _, rec3, used2) = decode_entry(&buf[used..]).unwrap();
        assert_eq!((tag.as_str(), rec3.len(), used + used2), ("second", 0, buf.len()));
    }

    #[test]
    fn truncated_entry_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        write_entry("t", EventTime::new(1, 2), &record! {"k" => "value"}, &mut buf);
        for cut in 0..buf.len() {
            assert!(decode_entry(&buf[..cut]).is_err());
        }
        assert!(read_value(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn integer_times_are_accepted() {
        let (t, n) = read_time(&[0xce, 0x65, 0x53, 0xf1, 0x00]).unwrap();
        assert_eq!((t, n), (EventTime::new(0x6553f100, 0), 5));
    }
}
