//! `docker`: Docker json-file log lines `{"log":"...","stream":"stdout","time":"..."}`. Docker splits
//! output lines longer than 16 KiB into pieces whose `log` does not end with a newline; those pieces
//! are joined (per stream) into one event carrying the first piece's fields and time. Pieces are joined
//! as bytes and decoded once, so a UTF-8 character cut between two pieces comes out whole; a joined `log`
//! longer than the limit (tail's `max_line_size`, else [`DEFAULT_MAX_JOINED_SIZE`]) is dropped whole.
//! The time comes from `time` (RFC 3339 with nanoseconds), which is kept in the record by default.
use super::common::{ParserCommon, ParserDefaults};
use super::json::json_error;
use super::time::TimeType;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{parse_json_map, Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser, DEFAULT_MAX_JOINED_SIZE};
use std::ops::Range;

pub const DEFAULTS: ParserDefaults = ParserDefaults {
    time_key: Some("time"),
    time_type: TimeType::String,
    time_format: Some("%Y-%m-%dT%H:%M:%S.%NZ"),
    keep_time_key: true,
};

/// A stream's unfinished line: the first piece's record and the `log` bytes so far.
#[derive(Clone)]
struct Partial {
    stream: Str,
    record: Map,
    log: Vec<u8>,
    /// The joined `log` outgrew the limit: the rest of its pieces are consumed without a record.
    dropping: bool,
}

#[derive(Clone)]
pub struct DockerParser {
    common: ParserCommon,
    partials: Vec<Partial>,
    max_joined: usize,
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(DockerParser {
        common: ParserCommon::from_element(e, &DEFAULTS)?,
        partials: Vec::new(),
        max_joined: DEFAULT_MAX_JOINED_SIZE,
    }))
}

fn stream_of(record: &Map) -> Str {
    record.get("stream").and_then(Value::as_str).map(Str::from).unwrap_or_default()
}

fn log_text(record: &Map) -> Option<&str> {
    record.get("log").and_then(Value::as_str)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(i..i.checked_add(4)?)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// The JSON string starting at `b[i] == '"'`, unescaped to bytes (kept as they are, valid UTF-8 or not),
/// and the index just after its closing quote.
fn json_string(b: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut j = i + 1;
    loop {
        let run = memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        out.extend_from_slice(&b[j..j + run]);
        j += run;
        if b[j] == b'"' {
            return Some((out, j + 1));
        }
        let esc = *b.get(j + 1)?;
        j += 2;
        let c = match esc {
            b'"' | b'\\' | b'/' => esc,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(b, j)?;
                j += 4;
                if (0xD800..0xDC00).contains(&cp) && b.get(j..j + 2) == Some(b"\\u") {
                    if let Some(lo) = hex4(b, j + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        j += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(c);
    }
}

/// The index just after the JSON value at `b[i]` (strings, nested objects and arrays, literals).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => json_string(b, i).map(|(_, end)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = json_string(b, j)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b.get(j).is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The top-level `log` string of a docker line as bytes, and the range of its JSON string in the line.
fn raw_log(b: &[u8]) -> Option<(Vec<u8>, Range<usize>)> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key, end) = json_string(b, i)?;
        i = skip_ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if key == b"log" {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (log, end) = json_string(b, i)?;
            return Some((log, i..end));
        }
        i = skip_ws(b, skip_value(b, i)?);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

impl DockerParser {
    /// A piece whose `log` is `log`: held until its stream's line ends with a newline.
    fn join(&mut self, mut record: Map, mut log: Vec<u8>) -> Result<Option<Parsed>, ParseError> {
        let complete = log.last() == Some(&b'\n');
        let stream = stream_of(&record);
        let max = self.max_joined;
        match self.partials.iter().position(|p| p.stream == stream) {
            Some(i) => {
                let p = &mut self.partials[i];
                if !p.dropping && p.log.len().saturating_add(log.len()) > max {
                    p.dropping = true;
                    p.log = Vec::new();
                    if complete {
                        self.partials.swap_remove(i);
                    }
                    return Err(ParseError::TooLong { limit: max });
                }
                if !p.dropping {
                    p.log.extend_from_slice(&log);
                }
                if !complete {
                    return Ok(None);
                }
                let p = self.partials.swap_remove(i);
                if p.dropping {
                    // The last piece of a line already dropped (and reported).
                    return Ok(None);
                }
                record = p.record;
                log = p.log;
            }
            None if !complete => {
                let dropping = log.len() > max;
                let log = if dropping { Vec::new() } else { log };
                self.partials.push(Partial { stream, record, log, dropping });
                return if dropping { Err(ParseError::TooLong { limit: max }) } else { Ok(None) };
            }
            None => {}
        }
        let text = String::from_utf8(log).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        record.insert("log", Value::Str(Str::from(text)));
        self.common.finish(record).map(Some)
    }
}

impl Parser for DockerParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let record = parse_json_map(line).map_err(|e| json_error(&e))?;
        let Some(log) = log_text(&record) else {
            return self.common.finish(record).map(Some);
        };
        if log.ends_with('\n') && self.partials.is_empty() {
            // The common case: a whole line.
            return self.common.finish(record).map(Some);
        }
        let log = log.as_bytes().to_vec();
        self.join(record, log)
    }

    /// A line whose `log` holds raw bytes that are not UTF-8 (a character cut between two pieces).
    fn parse_bytes(&mut self, line: &[u8]) -> Result<Option<Parsed>, ParseError> {
        let Some((log, range)) = raw_log(line) else {
            return self.parse(&String::from_utf8_lossy(line));
        };
        let mut rest = Vec::with_capacity(line.len() - range.len() + 2);
        rest.extend_from_slice(&line[..range.start]);
        rest.extend_from_slice(b"\"\"");
        rest.extend_from_slice(&line[range.end..]);
        let record = parse_json_map(String::from_utf8_lossy(&rest).as_ref()).map_err(|e| json_error(&e))?;
        self.join(record, log)
    }

    fn set_max_joined_size(&mut self, max: usize) {
        self.max_joined = max;
    }

    fn flush(&mut self) -> Option<Parsed> {
        // A dropped line keeps its marker: its later pieces are still dropped, up to its last piece.
        while let Some(i) = self.partials.iter().position(|p| !p.dropping) {
            let mut p = self.partials.remove(i);
            let text = String::from_utf8_lossy(&p.log).into_owned();
            p.record.insert("log", Value::Str(Str::from(text)));
            if let Ok(parsed) = self.common.finish(p.record) {
                return Some(parsed);
            }
        }
        None
    }

    fn is_joining(&self) -> bool {
        true
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(DockerParser { common: self.common.clone(), partials: Vec::new(), max_joined: self.max_joined })
    }
}
