//! `cri` (fluent-plugin-parser-cri): Kubernetes container runtime log lines `TIME STREAM TAG MESSAGE`.
//!
//! Record without a nested `<parse>`: `{stream, logtag, message, time}` (the time text is kept, since
//! the plugin's `keep_time_key` defaults to true). With a nested `<parse>` the message is parsed by it
//! and `stream`/`logtag` are merged in (`merge_cri_fields`, default true).
//!
//! Unlike the plugin, partial lines (tag `P`) are joined here until the stream's final `F` line, so no
//! concat filter is needed; the joined event keeps the first part's time. Parts are joined as bytes and
//! the message decoded once: containerd cuts by byte count, often inside a UTF-8 character. A joined
//! message longer than the limit (tail's `max_line_size`, else [`DEFAULT_MAX_JOINED_SIZE`]) is dropped
//! whole. The message is taken verbatim after the third space (the plugin's whitespace split would drop
//! its leading spaces). When the nested parser finds no time, the runtime's timestamp is used instead of
//! the current time.
use super::common::{ParserCommon, ParserDefaults};
use super::time::TimeType;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser, DEFAULT_MAX_JOINED_SIZE};

pub const DEFAULTS: ParserDefaults = ParserDefaults {
    time_key: Some("time"),
    time_type: TimeType::String,
    time_format: Some("%Y-%m-%dT%H:%M:%S.%L%z"),
    keep_time_key: true,
};

/// A partial line waiting for its stream's final part.
#[derive(Clone)]
struct Partial {
    stream: Str,
    time: String,
    message: Vec<u8>,
    /// The joined message outgrew the limit: the rest of its parts are consumed without a record.
    dropping: bool,
}

pub struct CriParser {
    inner: Option<Box<dyn Parser>>,
    merge_cri_fields: bool,
    common: ParserCommon,
    partials: Vec<Partial>,
    max_joined: usize,
    /// stream and logtag of the last line handed to a joining nested parser, for its flush.
    pending_fields: Option<(Str, Str)>,
    /// More records the nested parser made of the last message (a JSON array).
    extra: std::collections::VecDeque<Result<Parsed, ParseError>>,
}

pub fn build(e: &Element, ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let inner = match e.section("parse") {
        Some(p) => Some(ctx.registry.build_parser(p, None, ctx)?),
        None => None,
    };
    Ok(Box::new(CriParser {
        inner,
        merge_cri_fields: e.bool_or("merge_cri_fields", true)?,
        common: ParserCommon::from_element(e, &DEFAULTS)?,
        partials: Vec::new(),
        max_joined: DEFAULT_MAX_JOINED_SIZE,
        pending_fields: None,
        extra: Default::default(),
    }))
}

/// `TIME STREAM TAG MESSAGE`, split on single spaces; a line that ends after the tag has an empty message.
pub fn split_cri(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let (tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
    if time.is_empty() || stream.is_empty() || tag.is_empty() {
        return None;
    }
    Some((time, stream, tag, message))
}

/// [`split_cri`] over bytes: the message may end (or start) inside a UTF-8 character.
fn split_cri_bytes(line: &[u8]) -> Option<(&str, &str, &str, &[u8])> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    let tag = std::str::from_utf8(fields.next()?).ok()?;
    let message = fields.next().unwrap_or(b"");
    if time.is_empty() || stream.is_empty() || tag.is_empty() {
        return None;
    }
    Some((time, stream, tag, message))
}

fn not_cri() -> ParseError {
    ParseError::NotMatched("not a CRI log line".into())
}

impl CriParser {
    fn emit(
        &mut self,
        stream: &str,
        logtag: &str,
        time_text: &str,
        message: &str,
    ) -> Result<Option<Parsed>, ParseError> {
        let Some(inner) = &mut self.inner else {
            let mut record = Map::with_capacity(4);
            record.push_unchecked(Str::const_new("stream"), Value::Str(Str::from(stream)));
            record.push_unchecked(Str::const_new("logtag"), Value::Str(Str::from(logtag)));
            record.push_unchecked(Str::const_new("message"), Value::Str(Str::from(message)));
            let time = self.common.time.parse_str(time_text)?;
            if self.common.keep_time_key {
                if let Some(k) = &self.common.time_key {
                    record.insert(k.clone(), Value::Str(Str::from(time_text)));
                }
            }
            self.common.convert_values(&mut record);
            return Ok(Some(Parsed { time: Some(time), record }));
        };
        match inner.parse(message)? {
            Some(p) => {
                let (merge, common) = (self.merge_cri_fields, &mut self.common);
                // The CRI time is parsed only for a record without a time of its own (the hot path has one).
                let mut with_cri_fields = |mut p: Parsed| {
                    if merge {
                        merge_fields(&mut p.record, stream, logtag);
                    }
                    if p.time.is_none() {
                        p.time = common.time.parse_str(time_text).ok();
                    }
                    p
                };
                if !self.extra.is_empty() {
                    self.extra.clear();
                }
                while let Some(more) = inner.take_extra() {
                    self.extra.push_back(more.map(&mut with_cri_fields));
                }
                Ok(Some(with_cri_fields(p)))
            }
            None => {
                self.pending_fields = Some((Str::from(stream), Str::from(logtag)));
                Ok(None)
            }
        }
    }
}

impl CriParser {
    /// A part of a stream's line: `P` parts are kept as bytes until the stream's `F` part.
    fn join(&mut self, time: &str, stream: &str, tag: &str, message: &[u8]) -> Result<Option<Parsed>, ParseError> {
        let partial = tag.split(':').next() == Some("P");
        let pos = self.partials.iter().position(|p| p.stream == stream);
        let mut joined = match pos {
            Some(i) if partial => {
                let max = self.max_joined;
                let p = &mut self.partials[i];
                if p.dropping {
                    return Ok(None);
                }
                if p.message.len().saturating_add(message.len()) > max {
                    p.dropping = true;
                    p.message = Vec::new();
                    return Err(ParseError::TooLong { limit: max });
                }
                p.message.extend_from_slice(message);
                return Ok(None);
            }
            Some(i) => self.partials.swap_remove(i),
            None if partial => {
                let dropping = message.len() > self.max_joined;
                let message = if dropping { Vec::new() } else { message.to_vec() };
                self.partials.push(Partial { stream: Str::from(stream), time: time.to_string(), message, dropping });
                if dropping {
                    return Err(ParseError::TooLong { limit: self.max_joined });
                }
                return Ok(None);
            }
            None => {
                let message = String::from_utf8_lossy(message);
                return self.emit(stream, tag, time, &message);
            }
        };
        if joined.dropping {
            // The final part of a record already dropped (and reported).
            return Ok(None);
        }
        if joined.message.len().saturating_add(message.len()) > self.max_joined {
            return Err(ParseError::TooLong { limit: self.max_joined });
        }
        joined.message.extend_from_slice(message);
        let text =
            String::from_utf8(joined.message).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.emit(stream, tag, &joined.time, &text)
    }
}

fn merge_fields(record: &mut Map, stream: &str, logtag: &str) {
    record.insert("stream", Value::Str(Str::from(stream)));
    record.insert("logtag", Value::Str(Str::from(logtag)));
}

impl Parser for CriParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let (time, stream, tag, message) = split_cri(line).ok_or_else(not_cri)?;
        if tag.split(':').next() != Some("P") && !self.partials.iter().any(|p| p.stream == stream) {
            // The common case: a whole line, already valid text.
            return self.emit(stream, tag, time, message);
        }
        self.join(time, stream, tag, message.as_bytes())
    }

    fn parse_bytes(&mut self, line: &[u8]) -> Result<Option<Parsed>, ParseError> {
        let (time, stream, tag, message) = split_cri_bytes(line).ok_or_else(not_cri)?;
        self.join(time, stream, tag, message)
    }

    fn set_max_joined_size(&mut self, max: usize) {
        self.max_joined = max;
        if let Some(inner) = self.inner.as_mut() {
            inner.set_max_joined_size(max);
        }
    }

    /// Emits one held event per call: a stream's unfinished partial line, then what the nested parser holds.
    fn flush(&mut self) -> Option<Parsed> {
        // A dropped record keeps its marker: its later parts are still dropped, up to its `F` line.
        while let Some(i) = self.partials.iter().position(|p| !p.dropping) {
            let p = self.partials.remove(i);
            let message = String::from_utf8_lossy(&p.message);
            if let Ok(Some(parsed)) = self.emit(&p.stream, "P", &p.time, &message) {
                return Some(parsed);
            }
        }
        let inner = self.inner.as_mut()?;
        let mut parsed = inner.flush()?;
        if self.merge_cri_fields {
            if let Some((stream, logtag)) = &self.pending_fields {
                merge_fields(&mut parsed.record, stream, logtag);
            }
        }
        Some(parsed)
    }

    fn is_joining(&self) -> bool {
        true
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(CriParser {
            inner: self.inner.as_ref().map(|p| p.new_instance()),
            merge_cri_fields: self.merge_cri_fields,
            common: self.common.clone(),
            partials: Vec::new(),
            max_joined: self.max_joined,
            pending_fields: None,
            extra: Default::default(),
        })
    }

    fn take_extra(&mut self) -> Option<Result<Parsed, ParseError>> {
        self.extra.pop_front()
    }
}
