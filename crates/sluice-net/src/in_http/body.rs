//! in_http's request decoding, without any I/O (so it can be fuzzed): the query string and form bodies
//! (WEBrick's `parse_query`), `Content-Encoding` (gzip, deflate; bounded), and the `json`, `ndjson` and
//! `msgpack` parameters turned into records with their times, as Fluentd 1.18's in_http does.
//!
//! Where Fluentd silently skips what it cannot read (a malformed JSON body, an array element that is not
//! an object) and still answers 200, this module refuses the whole request (the caller answers 400), so
//! a client is never told that something was stored when it was not.
use sluice_core::event::{parse_json_value, read_value, EventTime, Map, Str, Value};
use sluice_core::timefmt::TimeParser;
use std::io::Read;

/// Why a request cannot be stored. The caller answers 400 or 413.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    BadRequest(String),
    /// The body, once decompressed, is larger than `body_size_limit`.
    #[error("Too large")]
    TooLarge,
}

fn bad(msg: impl Into<String>) -> BodyError {
    BodyError::BadRequest(msg.into())
}

/// Request parameters by name (first occurrence wins, as with WEBrick's form data), values as bytes:
/// a form-encoded `msgpack` parameter is binary.
#[derive(Debug, Default, Clone)]
pub struct Params {
    entries: Vec<(String, Vec<u8>)>,
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// Set `key`, replacing an earlier value (a form body overrides the query string).
    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// WEBrick's `parse_query`: pairs split at `&` or `;`, `+` is a space, `%XX` a byte; the first value
    /// of a repeated key is the one used.
    pub fn parse_query(text: &[u8]) -> Params {
        let mut out = Params::default();
        out.update_from_query(text);
        out
    }

    /// Merge a form body into these parameters; its values replace the query string's.
    pub fn update_from_query(&mut self, text: &[u8]) {
        let mut seen: Vec<String> = Vec::new();
        for pair in text.split(|&b| b == b'&' || b == b';') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let key = String::from_utf8_lossy(&unescape_form(k)).into_owned();
            if seen.contains(&key) {
                continue;
            }
            self.set(&key, unescape_form(v));
            seen.push(key);
        }
    }
}

/// The boundary of a `multipart/form-data; boundary=...` content type (Fluentd's regexp, then WEBrick's
/// `dequote`).
pub fn multipart_boundary(content_type: &str) -> Option<&str> {
    let b = content_type.strip_prefix("multipart/form-data; boundary=")?;
    let b = b.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(b);
    (!b.is_empty()).then_some(b)
}

/// The `name` of a part from its headers (`Content-Disposition: form-data; name="json"`).
fn part_name(headers: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(headers);
    let line = text.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-disposition").then_some(v)
    })?;
    let v = line.split(';').map(str::trim).find_map(|p| p.strip_prefix("name="))?;
    let v = v.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(v);
    Some(v.to_string())
}

impl Params {
    /// Merge a `multipart/form-data` body (WEBrick's `parse_form_data`): each part's content under its
    /// `name`; the first part of a name wins.
    pub fn update_from_multipart(&mut self, body: &[u8], boundary: &str) -> Result<(), BodyError> {
        let delim = format!("--{boundary}");
        let delim = delim.as_bytes();
        let finder = memchr::memmem::Finder::new(delim);
        let next_delim = [b"\r\n".as_slice(), delim].concat();
        let next = memchr::memmem::Finder::new(&next_delim);
        let mut pos = finder.find(body).ok_or_else(|| bad("multipart body without its boundary"))?;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let after = pos + delim.len();
            let rest = &body[after..];
            if rest.starts_with(b"--") {
                return Ok(());
            }
            let rest = rest.strip_prefix(b"\r\n").ok_or_else(|| bad("malformed multipart body"))?;
            let head_end = memchr::memmem::find(rest, b"\r\n\r\n");
            // A part without headers starts with the blank line at once.
            let (headers, content_start) = match head_end {
                Some(i) => (&rest[..i], i + 4),
                None => return Err(bad("malformed multipart part headers")),
            };
            let content = &rest[content_start..];
            // The next boundary starts a line: the CRLF before it ends the part's content.
            let end = next.find(content).ok_or_else(|| bad("multipart body without its closing boundary"))?;
            if let Some(name) = part_name(headers) {
                if !seen.contains(&name) {
                    self.set(&name, content[..end].to_vec());
                    seen.push(name);
                }
            }
            pos = (body.len() - content.len()) + end + 2;
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `+` → space, `%XX` → the byte; a `%` without two hex digits stays as it is.
pub fn unescape_form(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Undo `Content-Encoding` (Fluentd decodes exactly `gzip` and `deflate`; anything else is left as it
/// is). The result may not exceed `limit` bytes: a small bomb must not allocate without bound.
pub fn decode_content(encoding: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, BodyError> {
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(body.as_slice())),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(body.as_slice())),
        _ => return Ok(body),
    };
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader.take(cap).read_to_end(&mut out).map_err(|e| bad(format!("cannot decode the {encoding} body: {e}")))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// How a record's own time field is read (`<parse @type in_http>`'s `time_key`, `keep_time_key`,
/// `time_format`).
#[derive(Debug, Clone)]
pub struct TimeField {
    pub key: String,
    pub keep: bool,
    pub parser: Option<TimeParser>,
}

impl Default for TimeField {
    fn default() -> Self {
        TimeField { key: "time".into(), keep: false, parser: None }
    }
}

impl TimeField {
    /// Fluentd's `convert_time_field`: the field is removed (unless `keep_time_key`) and read as epoch
    /// seconds (`Time.at`), or with `time_format`; absent (or null/false) means now. Anything else is an
    /// error, as Ruby's `Time.at` raises on it.
    fn take(&self, record: &mut Map, now: EventTime) -> Result<EventTime, BodyError> {
        let v = if self.keep { record.get(&self.key).cloned() } else { record.remove(&self.key) };
        let v = match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(now),
            Some(v) => v,
        };
        if let Some(p) = &self.parser {
            let text = v.to_display_string();
            // The message is logged: it names the field, never its value (record content).
            return p.parse(&text).map_err(|_| bad(format!("the '{}' field does not match time_format", self.key)));
        }
        match v {
            Value::Int(i) => Ok(EventTime::new(i, 0)),
            Value::UInt(u) => i64::try_from(u).map(|s| EventTime::new(s, 0)).map_err(|_| bad("time is out of range")),
            Value::Float(f) if f.is_finite() && f.abs() < 1e17 => Ok(EventTime::from_f64(f)),
            _ => Err(bad(format!("can't convert the '{}' field into a time", self.key))),
        }
    }
}

/// Ruby's `String#to_f`: the longest leading decimal number, else 0.
pub fn ruby_to_f(s: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(&s[..s.len().min(64)]);
    let t = s.trim_start();
    let end = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E' | '_')))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let candidate: String = t[..end].chars().filter(|c| *c != '_').collect();
    (1..=candidate.len())
        .rev()
        .find_map(|n| candidate.get(..n).and_then(|p| p.parse::<f64>().ok()))
        .filter(|f| f.is_finite())
        .unwrap_or(0.0)
}

/// A record of the request and whether it had its own time (`None`: the time comes from the record's
/// time field, or now).
pub type Decoded = Vec<(Option<EventTime>, Map)>;

fn push_object(v: Value, what: &str, out: &mut Decoded) -> Result<(), BodyError> {
    push_item(v, what, out, true)
}

/// A msgpack event time: an integer or float, or the 8-byte EventTime extension (seconds and
/// nanoseconds, big endian).
fn msgpack_time(v: &Value) -> Option<EventTime> {
    match v {
        Value::Int(i) => Some(EventTime::new(*i, 0)),
        Value::UInt(u) => i64::try_from(*u).ok().map(|s| EventTime::new(s, 0)),
        Value::Float(f) if f.is_finite() && f.abs() < 1e17 => Some(EventTime::from_f64(*f)),
        Value::Bytes(b) if b.len() == 8 => {
            let sec = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let nsec = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            (nsec < 1_000_000_000).then_some(EventTime::new(sec as i64, nsec))
        }
        _ => None,
    }
}

/// A Fluent Bit event as its out_http sends it in msgpack: `[time, record]`, or `[[time, metadata],
/// record]` (Fluent Bit 2.1+). Fluentd stores the record and stamps it now; sluice keeps its time.
fn fluent_bit_event(items: &[Value]) -> Option<EventTime> {
    let [t, Value::Map(_)] = items else { return None };
    match t {
        Value::Array(pair) => match pair.as_slice() {
            [t, Value::Map(_)] => msgpack_time(t),
            _ => None,
        },
        t => msgpack_time(t),
    }
}

fn push_item(v: Value, what: &str, out: &mut Decoded, top: bool) -> Result<(), BodyError> {
    match v {
        Value::Map(m) => out.push((None, m)),
        Value::Array(items) if what == "msgpack" && fluent_bit_event(&items).is_some() => {
            let time = fluent_bit_event(&items);
            if let Some(Value::Map(m)) = items.into_iter().nth(1) {
                out.push((time, m));
            }
        }
        Value::Array(items) if top => {
            out.reserve(items.len().min(1024));
            for item in items {
                push_item(item, what, out, false)?;
            }
        }
        Value::Array(_) => return Err(bad(format!("{what}: every element of a batch must be an object"))),
        _ if top => return Err(bad(format!("{what}: the body must be an object or an array of objects"))),
        _ => return Err(bad(format!("{what}: every element of a batch must be an object"))),
    }
    Ok(())
}

fn json_records(text: &[u8], out: &mut Decoded) -> Result<(), BodyError> {
    let v = parse_json_value(text).map_err(|e| bad(format!("json: {e}")))?;
    push_object(v, "json", out)
}

/// The default format: the `msgpack` parameter (one or more objects back to back), else `json`, else
/// `ndjson` (one JSON object per line), as Fluentd's `parse_params_default`.
pub fn default_records(params: &Params) -> Result<Decoded, BodyError> {
    let mut out = Vec::new();
    if let Some(mp) = params.get("msgpack") {
        let mut rest = mp;
        while !rest.is_empty() {
            let (v, used) = read_value(rest).map_err(|e| bad(format!("msgpack: {e}")))?;
            push_object(v, "msgpack", &mut out)?;
            rest = &rest[used.max(1).min(rest.len())..];
        }
    } else if let Some(js) = params.get("json") {
        json_records(js, &mut out)?;
    } else if let Some(nd) = params.get("ndjson") {
        for line in nd.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            json_records(line, &mut out)?;
        }
    } else {
        return Err(bad("'json', 'ndjson' or 'msgpack' parameter is required"));
    }
    Ok(out)
}

/// What a request adds to each record (`add_http_headers`, `add_query_params`, `add_remote_addr`).
#[derive(Debug, Default)]
pub struct Extra {
    /// `HTTP_<NAME>` keys with their values (a repeated header gives an array).
    pub headers: Vec<(String, Value)>,
    /// `QUERY_<NAME>` keys.
    pub query: Vec<(String, Value)>,
    pub remote_addr: Option<Value>,
}

impl Extra {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.remote_addr.is_none()
    }

    fn apply(&self, record: &mut Map) {
        for (k, v) in self.headers.iter().chain(self.query.iter()) {
            record.insert(k.as_str(), v.clone());
        }
        if let Some(a) = &self.remote_addr {
            record.insert("REMOTE_ADDR", a.clone());
        }
    }
}

/// `HTTP_` + the header name upper-cased with `-` as `_` (Rack's environment names).
pub fn header_key(name: &str) -> String {
    let mut k = String::with_capacity(name.len() + 5);
    k.push_str("HTTP_");
    k.extend(name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
    k
}

/// `QUERY_` + the parameter name upper-cased with `-` as `_`.
pub fn query_key(name: &str) -> String {
    let mut k = String::with_capacity(name.len() + 6);
    k.push_str("QUERY_");
    k.extend(name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
    k
}

pub fn bytes_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::Str(Str::from(s)),
        Err(_) => Value::Bytes(b.to_vec()),
    }
}

/// Give every record its extra keys and its time: the `time` query parameter when there is one
/// (`to_f`, 0 meaning now; the record keeps its own time field then), else the record's time field.
pub fn finish(
    decoded: Decoded,
    params: &Params,
    extra: &Extra,
    field: &TimeField,
    now: EventTime,
) -> Result<Vec<(EventTime, Map)>, BodyError> {
    let param_time = params.get("time").map(|t| {
        let f = ruby_to_f(t);
        if f == 0.0 || f.abs() >= 1e17 {
            now
        } else {
            EventTime::from_f64(f)
        }
    });
    let mut out = Vec::with_capacity(decoded.len());
    for (own, mut record) in decoded {
        extra.apply(&mut record);
        let time = match (param_time, own) {
            (Some(t), _) => t,
            (None, Some(t)) => t,
            (None, None) => field.take(&mut record, now)?,
        };
        out.push((time, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_as_webrick_reads_them() {
        let p = Params::parse_query(b"json=%7B%22a%22%3A1%7D&x=a+b;x=second&flag&empty=");
        assert_eq!(p.get("json"), Some(&b"{\"a\":1}"[..]));
        assert_eq!(p.get("x"), Some(&b"a b"[..]));
        assert_eq!(p.get("flag"), Some(&b""[..]));
        assert_eq!(unescape_form(b"%zz%4"), b"%zz%4");
        let mut p = Params::parse_query(b"json=1");
        p.update_from_query(b"json=2");
        assert_eq!(p.get("json"), Some(&b"2"[..]));
    }

    #[test]
    fn multipart_form_data() {
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let b = multipart_boundary(ct).unwrap();
        assert_eq!(b, "XyZ");
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{\"a\":1}\r\n--XyZ\r\ncontent-disposition: form-data; name=\"json\"; filename=\"x\"\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--XyZ\r\nContent-Disposition: form-data; name=time\r\n\r\n17\r\n--XyZ--\r\n";
        let mut p = Params::default();
        p.update_from_multipart(body, b).unwrap();
        assert_eq!(p.get("json"), Some(&b"{\"a\":1}"[..]));
        assert_eq!(p.get("time"), Some(&b"17"[..]));
        assert!(Params::default().update_from_multipart(b"--XyZ\r\nno headers", b).is_err());
        assert!(Params::default().update_from_multipart(b"nothing", b).is_err());
        assert_eq!(multipart_boundary("multipart/form-data"), None);
    }

    #[test]
    fn fluent_bit_msgpack_events_keep_their_time() {
        let mut body = Vec::new();
        // [EventTime(1700000000.5), {"a":1}] then [[EventTime, {}], {"b":2}] (Fluent Bit 2.1+), then a plain map.
        body.extend([0x92, 0xd7, 0x00]);
        body.extend(1_700_000_000u32.to_be_bytes());
        body.extend(500_000_000u32.to_be_bytes());
        body.extend([0x81, 0xa1, b'a', 0x01]);
        body.extend([0x92, 0x92, 0xd7, 0x00]);
        body.extend(1_700_000_001u32.to_be_bytes());
        body.extend(0u32.to_be_bytes());
        body.extend([0x80, 0x81, 0xa1, b'b', 0x02]);
        body.extend([0x81, 0xa1, b'c', 0x03]);
        let mut p = Params::default();
        p.set("msgpack", body);
        let d = default_records(&p).unwrap();
        let times: Vec<Option<EventTime>> = d.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            times,
            vec![Some(EventTime::new(1_700_000_000, 500_000_000)), Some(EventTime::new(1_700_000_001, 0)), None]
        );
        assert_eq!(d[1].1.get("b"), Some(&Value::Int(2)));
        // In JSON the same shape is not an event: a batch element must be an object.
        let mut p = Params::default();
        p.set("json", b"[1700000000, {\"a\":1}]".to_vec());
        assert!(default_records(&p).is_err());
    }

    #[test]
    fn ruby_string_to_f() {
        assert_eq!(ruby_to_f(b"1700000000.5"), 1_700_000_000.5);
        assert_eq!(ruby_to_f(b" 12abc"), 12.0);
        assert_eq!(ruby_to_f(b"abc"), 0.0);
        assert_eq!(ruby_to_f(b"1e3x"), 1000.0);
        assert_eq!(ruby_to_f(b"-"), 0.0);
    }

    #[test]
    fn record_time_fields() {
        let f = TimeField::default();
        let now = EventTime::new(5, 0);
        let mut m = Map::new();
        m.insert("time", Value::Float(1.5));
        assert_eq!(f.take(&mut m, now).unwrap(), EventTime::new(1, 500_000_000));
        assert!(m.get("time").is_none());
        m.insert("time", Value::Str("yesterday".into()));
        assert!(f.take(&mut m, now).is_err());
        assert_eq!(f.take(&mut Map::new(), now).unwrap(), now);
    }

    #[test]
    fn bounded_decompression() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_content("gzip", gz.clone(), 10_000).unwrap().len(), 10_000);
        assert_eq!(decode_content("gzip", gz, 9_999), Err(BodyError::TooLarge));
        assert!(matches!(decode_content("deflate", b"nope".to_vec(), 100), Err(BodyError::BadRequest(_))));
        assert_eq!(decode_content("br", b"raw".to_vec(), 1).unwrap(), b"raw");
    }
}
