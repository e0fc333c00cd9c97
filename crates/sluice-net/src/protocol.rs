//! The Forward Protocol Specification v1 frames: decoding what a client sends (Message, Forward,
//! PackedForward, CompressedPackedForward, with the `chunk`/`size`/`compressed` options) and encoding what
//! out_forward sends and in_forward answers (PackedForward and `{"ack": ...}`).
//!
//! Decoding works on one whole frame (see [`crate::scan`] for finding its end) and never trusts a length
//! in the data for an allocation: lengths are checked against the bytes present, gzip output is capped.
use crate::scan::object_len;
use sluice_core::event::{read_time, read_value, write_event_time, Event, EventTime, Events, Map, Value};
use std::io::Read;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not a msgpack array of 2 to 4 elements")]
    NotArray,
    #[error("frame tag is not a string")]
    BadTag,
    #[error("frame is truncated or malformed")]
    Malformed,
    #[error("compressed entries are not valid gzip: {0}")]
    Gzip(String),
    #[error("compressed entries expand beyond {0} bytes")]
    TooLarge(usize),
}

/// Which of the protocol's carrier modes a frame used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Message,
    Forward,
    PackedForward,
    CompressedPackedForward,
}

/// The option map a frame may carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Echoed back in `{"ack": chunk}` once the events are stored.
    pub chunk: Option<Value>,
    pub size: Option<u64>,
    pub compressed: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub tag: String,
    pub mode: Mode,
    pub events: Events,
    pub options: Options,
    /// Entries dropped as invalid (not a `[time, record]` pair, record not a map, bad time with
    /// `skip_invalid_event`).
    pub invalid: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct DecodeConfig {
    /// Fluentd's `skip_invalid_event`: drop entries whose time is neither an integer nor EventTime.
    pub skip_invalid_event: bool,
    /// Largest decompressed size of CompressedPackedForward entries.
    pub max_decompressed: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig { skip_invalid_event: false, max_decompressed: 256 * 1024 * 1024 }
    }
}

/// A small cursor over a complete frame.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Malformed)?;
        self.pos = end;
        Ok(s)
    }
    fn be(&mut self, n: usize) -> Result<usize, FrameError> {
        Ok(self.take(n)?.iter().fold(0usize, |a, &b| (a << 8) | b as usize))
    }
    /// An array header's element count, or None (cursor unmoved) when the next value is not an array.
    fn array_len(&mut self) -> Result<Option<usize>, FrameError> {
        let Some(m) = self.peek() else { return Err(FrameError::Malformed) };
        let n = match m {
            0x90..=0x9f => {
                self.pos += 1;
                (m & 0x0f) as usize
            }
            0xdc => {
                self.pos += 1;
                self.be(2)?
            }
            0xdd => {
                self.pos += 1;
                self.be(4)?
            }
            _ => return Ok(None),
        };
        Ok(Some(n))
    }
    /// The payload of a str or bin, or None (cursor unmoved) when the next value is neither.
    fn raw(&mut self) -> Result<Option<&'a [u8]>, FrameError> {
        let Some(m) = self.peek() else { return Err(FrameError::Malformed) };
        let n = match m {
            0xa0..=0xbf => {
                self.pos += 1;
                (m & 0x1f) as usize
            }
            0xd9 | 0xc4 => {
                self.pos += 1;
                self.be(1)?
            }
            0xda | 0xc5 => {
                self.pos += 1;
                self.be(2)?
            }
            0xdb | 0xc6 => {
                self.pos += 1;
                self.be(4)?
            }
            _ => return Ok(None),
        };
        self.take(n).map(Some)
    }
    fn value(&mut self) -> Result<Value, FrameError> {
        let (v, n) = read_value(&self.buf[self.pos..]).map_err(|_| FrameError::Malformed)?;
        self.pos += n;
        Ok(v)
    }
    /// The bytes of the next whole value.
    fn object(&mut self) -> Result<&'a [u8], FrameError> {
        let n = object_len(&self.buf[self.pos..]).ok().flatten().ok_or(FrameError::Malformed)?;
        self.take(n)
    }
}

fn is_float(b: &[u8]) -> bool {
    matches!(b.first(), Some(0xca | 0xcb))
}

/// A time as Fluentd accepts it: `Some` for an integer or EventTime (and, without `skip_invalid_event`,
/// a float); `None` for anything else. Returns the bytes used.
fn entry_time(b: &[u8], cfg: &DecodeConfig) -> (Option<EventTime>, usize) {
    if b.first() == Some(&0xc0) {
        return (None, 1);
    }
    match read_time(b) {
        Ok((t, n)) if !(cfg.skip_invalid_event && is_float(b)) => (Some(t), n),
        _ => (None, object_len(b).ok().flatten().unwrap_or(b.len())),
    }
}

/// One `[time, record]` entry. `zero_is_now`: Forward and Message modes replace time 0 (or none) with
/// the arrival time, as Fluentd does; PackedForward keeps what it got.
fn decode_pair(time: &[u8], rec: &[u8], cfg: &DecodeConfig, zero_is_now: bool, now: EventTime) -> Option<Event> {
    let (t, _) = entry_time(time, cfg);
    let t = match t {
        Some(t) if zero_is_now && t.sec == 0 => now,
        Some(t) => t,
        None if cfg.skip_invalid_event || !zero_is_now => return None,
        None => now,
    };
    match read_value(rec) {
        Ok((Value::Map(m), _)) => Some(Event::new(t, m)),
        _ => None,
    }
}

/// Decode the `[time, record]` pairs of one entry (its bytes, whole).
fn decode_entry(e: &[u8], cfg: &DecodeConfig, zero_is_now: bool, now: EventTime) -> Option<Event> {
    let mut c = Cur { buf: e, pos: 0 };
    let n = c.array_len().ok()??;
    if n < 2 {
        return None;
    }
    let time = c.object().ok()?;
    let rec = c.object().ok()?;
    decode_pair(time, rec, cfg, zero_is_now, now)
}

/// Decode a msgpack stream of entries (PackedForward's payload) into `events`; returns invalid entries.
fn decode_stream(mut data: &[u8], cfg: &DecodeConfig, events: &mut Events, now: EventTime) -> usize {
    let mut invalid = 0;
    while !data.is_empty() {
        let Some(n) = object_len(data).ok().flatten() else {
            // A truncated tail: nothing after it can be found.
            return invalid + 1;
        };
        match decode_entry(&data[..n], cfg, false, now) {
            Some(e) => events.push(e),
            None => invalid += 1,
        }
        data = &data[n..];
    }
    invalid
}

fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| FrameError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(FrameError::TooLarge(limit));
    }
    Ok(out)
}

fn options_of(v: Value) -> Options {
    let Value::Map(m) = v else { return Options::default() };
    Options {
        chunk: m.get("chunk").filter(|c| !matches!(c, Value::Null)).cloned(),
        size: m.get("size").and_then(|s| match s {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }),
        compressed: m.get("compressed").map(|c| c.to_display_string()),
    }
}

/// Decode one whole frame. `now` is the arrival time used for events without one.
pub fn decode_frame(buf: &[u8], cfg: &DecodeConfig, now: EventTime) -> Result<Frame, FrameError> {
    let mut c = Cur { buf, pos: 0 };
    let n = c.array_len()?.ok_or(FrameError::NotArray)?;
    if !(2..=4).contains(&n) {
        return Err(FrameError::NotArray);
    }
    let tag = match c.value()? {
        Value::Str(s) => s.to_string(),
        _ => return Err(FrameError::BadTag),
    };
    let mut events = Events::new();
    let mut invalid = 0;
    let (mode, rest) = if let Some(count) = c.array_len()? {
        // Forward: [tag, [[time, record], ...], option?]
        events.reserve(count.min(4096));
        for _ in 0..count {
            let e = c.object()?;
            match decode_entry(e, cfg, true, now) {
                Some(ev) => events.push(ev),
                None => invalid += 1,
            }
        }
        (Mode::Forward, n - 2)
    } else if let Some(raw) = c.raw()? {
        // PackedForward: [tag, msgpack stream as str/bin, option?]; the mode depends on the option.
        let options = if n >= 3 { options_of(c.value()?) } else { Options::default() };
        let gzip = options.compressed.as_deref() == Some("gzip");
        let hint = options.size.and_then(|s| usize::try_from(s).ok()).unwrap_or(0);
        events.reserve(hint.min(4096));
        let mode = if gzip {
            let plain = gunzip(raw, cfg.max_decompressed)?;
            invalid += decode_stream(&plain, cfg, &mut events, now);
            Mode::CompressedPackedForward
        } else {
            invalid += decode_stream(raw, cfg, &mut events, now);
            Mode::PackedForward
        };
        return Ok(Frame { tag, mode, events, options, invalid });
    } else {
        // Message: [tag, time, record, option?]
        if n < 3 {
            return Err(FrameError::Malformed);
        }
        let time = c.object()?;
        let rec = c.object()?;
        match decode_pair(time, rec, cfg, true, now) {
            Some(ev) => events.push(ev),
            None => invalid += 1,
        }
        (Mode::Message, n - 3)
    };
    let options = if rest > 0 { options_of(c.value()?) } else { Options::default() };
    Ok(Frame { tag, mode, events, options, invalid })
}

/// `{"ack": chunk}`, the answer to a frame whose option carried `chunk`.
pub fn write_ack(chunk: &Value, out: &mut Vec<u8>) {
    out.push(0x81);
    let _ = rmp::encode::write_str(out, "ack");
    sluice_core::event::write_value(chunk, out);
}

/// The chunk string of an `{"ack": ...}` answer.
pub fn read_ack(buf: &[u8]) -> Option<(Value, usize)> {
    let (v, n) = read_value(buf).ok()?;
    match v {
        Value::Map(mut m) => m.remove("ack").map(|a| (a, n)),
        _ => None,
    }
}

/// One `[time, record]` entry of a PackedForward stream.
pub fn write_packed_entry(t: EventTime, record: &Map, time_as_integer: bool, out: &mut Vec<u8>) {
    out.push(0x92);
    if time_as_integer {
        let _ = rmp::encode::write_sint(out, t.sec);
    } else {
        write_event_time(t, out);
    }
    sluice_core::event::write_map(record, out);
}

/// A PackedForward (or, with `gzip`, CompressedPackedForward) frame as Fluentd's out_forward writes it:
/// entries always as str32, then `{"size", "compressed", "chunk"?}`.
pub fn write_packed_forward(
    tag: &str,
    entries: &[u8],
    size: usize,
    gzip: bool,
    chunk: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.push(0x93);
    let _ = rmp::encode::write_str(out, tag);
    out.push(0xdb);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(entries);
    out.push(if chunk.is_some() { 0x83 } else { 0x82 });
    let _ = rmp::encode::write_str(out, "size");
    let _ = rmp::encode::write_uint(out, size as u64);
    let _ = rmp::encode::write_str(out, "compressed");
    let _ = rmp::encode::write_str(out, if gzip { "gzip" } else { "text" });
    if let Some(c) = chunk {
        let _ = rmp::encode::write_str(out, "chunk");
        let _ = rmp::encode::write_str(out, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::record;

    fn now() -> EventTime {
        EventTime::new(1_800_000_000, 5)
    }

    #[test]
    fn message_forward_and_packed_modes() {
        let rec = record! {"k" => "v"};
        let mut entries = Vec::new();
        write_packed_entry(EventTime::new(10, 1), &rec, false, &mut entries);
        write_packed_entry(EventTime::new(11, 0), &rec, true, &mut entries);
        let mut packed = Vec::new();
        write_packed_forward("a.b", &entries, 2, false, Some("id\n"), &mut packed);
        let f = decode_frame(&packed, &DecodeConfig::default(), now()).unwrap();
        assert_eq!((f.tag.as_str(), f.mode, f.events.len(), f.invalid), ("a.b", Mode::PackedForward, 2, 0));
        assert_eq!(f.events[0].time, EventTime::new(10, 1));
        assert_eq!(f.options.chunk, Some(Value::Str("id\n".into())));

        // Message with time 0: arrival time; Forward with a non-map record: counted as invalid.
        let msg = [0x93, 0xa1, b't', 0x00, 0x81, 0xa1, b'k', 0xa1, b'v'];
        let f = decode_frame(&msg, &DecodeConfig::default(), now()).unwrap();
        assert_eq!((f.mode, f.events[0].time), (Mode::Message, now()));
        let fwd = [0x92, 0xa1, b't', 0x92, 0x92, 0x01, 0x80, 0x92, 0x02, 0xa1, b'x'];
        let f = decode_frame(&fwd, &DecodeConfig::default(), now()).unwrap();
        assert_eq!((f.mode, f.events.len(), f.invalid), (Mode::Forward, 1, 1));
    }

    #[test]
    fn gzip_bombs_are_refused() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0x90u8; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        let mut frame = Vec::new();
        write_packed_forward("t", &gz, 1, true, None, &mut frame);
        let cfg = DecodeConfig { max_decompressed: 1000, ..Default::default() };
        assert_eq!(decode_frame(&frame, &cfg, now()).unwrap_err(), FrameError::TooLarge(1000));
    }
}
