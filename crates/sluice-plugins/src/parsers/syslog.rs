//! `syslog`: RFC 3164 and RFC 5424 messages (`message_format rfc3164|rfc5424|auto`, `with_priority`,
//! `rfc5424_time_format`, `parser_type regexp|string`, `support_colonless_ident`), with Fluentd's
//! record layout: `pri` (with `with_priority`), `host`, `ident`, `pid`, `msgid`, `extradata`, `message`.
use super::common::{ParserCommon, ParserDefaults};
use super::time::TimeValueParser;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};
use sluice_core::ruby::regexp::{RubyFlags, RubyRegex, Slots};

const RFC3164: &str = r"^(?<time>[^ ]*\s*[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\[]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$";
const RFC3164_PRI: &str = r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\[]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$";
const RFC5424_BODY: &str = r"(?<time>[^ ]+) (?<host>[!-~]{1,255}) (?<ident>[!-~]{1,48}) (?<pid>[!-~]{1,128}) (?<msgid>[!-~]{1,32}) (?<extradata>(?:\-|(?:\[.*?(?<!\\)\])+))(?: (?<message>.+))?";
const RFC5424_DETECT: &str = r"^\<[0-9]{1,3}\>[1-9]\d{0,2}";
const RFC5424_NO_SUBSEC: &str = "%Y-%m-%dT%H:%M:%S%z";

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Rfc3164,
    Rfc5424,
    Auto,
}

/// One way of reading a line: its regexp (or the hand parser) and time parsers.
#[derive(Clone)]
struct Variant {
    re: RubyRegex,
    slots: Slots,
    time: TimeValueParser,
    /// RFC 5424 times may come without the fraction.
    no_subsec: Option<TimeValueParser>,
}

#[derive(Clone)]
pub struct SyslogParser {
    format: Format,
    with_priority: bool,
    string_parser: bool,
    colonless_ident: bool,
    rfc3164: Variant,
    rfc5424: Variant,
    detect: RubyRegex,
    common: ParserCommon,
}

fn regex(e: &Element, src: &str, flags: RubyFlags) -> Result<RubyRegex, ConfigError> {
    RubyRegex::new(src, flags).map_err(|m| e.error(m.to_string()))
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(SyslogParser::from_element(e)?))
}

impl SyslogParser {
    pub fn from_element(e: &Element) -> Result<Self, ConfigError> {
        let format = match e.enum_or("message_format", &["rfc3164", "rfc5424", "auto"], "rfc3164")?.as_str() {
            "rfc5424" => Format::Rfc5424,
            "auto" => Format::Auto,
            _ => Format::Rfc3164,
        };
        let with_priority = e.bool_or("with_priority", false)?;
        let string_parser = e.enum_or("parser_type", &["regexp", "string"], "regexp")? == "string";
        let colonless_ident = e.bool_or("support_colonless_ident", true)?;
        let rfc5424_format = e.str_or("rfc5424_time_format", "%Y-%m-%dT%H:%M:%S.%L%z");
        let explicit_format = e.has("time_format");
        let defaults = ParserDefaults { time_format: Some("%b %d %H:%M:%S"), ..ParserDefaults::default() };
        let common = ParserCommon::from_element(e, &defaults)?;

        let rfc3164_time = common.time.clone();
        // With message_format rfc5424 an explicit time_format wins over rfc5424_time_format.
        let rfc5424_time = if format == Format::Rfc5424 && explicit_format {
            common.time.clone()
        } else {
            common.time_parser_with_format(e, &rfc5424_format)?
        };
        let rfc3164 = {
            let re = regex(e, if with_priority { RFC3164_PRI } else { RFC3164 }, RubyFlags::default())?;
            Variant { slots: re.slots(), re, time: rfc3164_time, no_subsec: None }
        };
        let rfc5424 = {
            let src = if with_priority {
                format!(r"\A<(?<pri>[0-9]{{1,3}})\>[1-9]\d{{0,2}} {RFC5424_BODY}\z")
            } else {
                format!(r"\A{RFC5424_BODY}\z")
            };
            let re = regex(e, &src, RubyFlags { multiline: true, ..Default::default() })?;
            let no_subsec = Some(common.time_parser_with_format(e, RFC5424_NO_SUBSEC)?);
            Variant { slots: re.slots(), re, time: rfc5424_time, no_subsec }
        };
        Ok(SyslogParser {
            format,
            with_priority,
            string_parser,
            colonless_ident,
            rfc3164,
            rfc5424,
            detect: regex(e, RFC5424_DETECT, RubyFlags::default())?,
            common,
        })
    }

    fn parse_regexp(&mut self, line: &str, rfc5424: bool) -> Result<Parsed, ParseError> {
        let keep = self.common.keep_time_key;
        let v = if rfc5424 { &mut self.rfc5424 } else { &mut self.rfc3164 };
        let mut caps = Map::with_capacity(8);
        if !v.re.captures_into(line, &mut v.slots, &mut caps) {
            return Err(ParseError::NotMatched("not a syslog line".into()));
        }
        let mut time = None;
        let mut record = Map::with_capacity(caps.len());
        for (name, value) in caps {
            let Value::Str(s) = value else { continue };
            match name.as_str() {
                "pri" => {
                    record.insert(name, Value::Int(sluice_core::ruby::text::to_i(&s)));
                }
                "time" => {
                    let squeezed = squeeze_spaces(&s);
                    let t = match v.time.parse_str(&squeezed) {
                        Ok(t) => t,
                        Err(e) => match &mut v.no_subsec {
                            Some(p) => p.parse_str(&squeezed).map_err(|_| e)?,
                            None => return Err(e),
                        },
                    };
                    time = Some(t);
                    if keep {
                        record.insert(name, Value::Str(s));
                    }
                }
                "message" => {
                    record.insert(name, Value::Str(Str::from(chomp(&s))));
                }
                _ => {
                    record.insert(name, Value::Str(s));
                }
            }
        }
        self.common.convert_values(&mut record);
        Ok(Parsed { time, record })
    }

    /// Fluentd's `parser_type string` for RFC 3164.
    fn parse_string(&mut self, text: &str) -> Result<Parsed, ParseError> {
        let nm = || ParseError::NotMatched("not a syslog line".into());
        let mut pri = None;
        let mut cursor = 0;
        if self.with_priority {
            if !text.starts_with('<') {
                return Err(nm());
            }
            let i = text[1..].find('>').map(|i| i + 1).ok_or_else(nm)?;
            if i < 2 {
                return Err(nm());
            }
            pri = Some(sluice_core::ruby::text::to_i(&text[1..i]));
            cursor = i + 1;
        }
        let b = text.as_bytes();
        let time_str = match b.get(cursor + 15) {
            Some(b' ') => {
                let t = text.get(cursor..cursor + 15).ok_or_else(nm)?;
                cursor += 16;
                t
            }
            Some(b'.') => {
                let i = text[cursor + 15..].find(' ').map(|i| i + cursor + 15).ok_or_else(nm)?;
                let t = &text[cursor..i];
                cursor = i + 1;
                t
            }
            _ => return Err(nm()),
        };
        let i = text.get(cursor..).and_then(|r| r.find(' ')).map(|i| i + cursor).ok_or_else(nm)?;
        let mut record = Map::with_capacity(5);
        record.insert("host", Value::from(&text[cursor..i]));
        if let Some(p) = pri {
            record.insert("pri", Value::Int(p));
        }
        cursor = i + 1;
        let msg = match text[cursor..].find(' ').map(|i| i + cursor) {
            None => &text[cursor..],
            Some(i) => {
                let before = &text[..i];
                if before.ends_with(':') {
                    if before.ends_with("]:") {
                        let lb = text[cursor..].find('[').map(|p| p + cursor).ok_or_else(nm)?;
                        record.insert("ident", Value::from(&text[cursor..lb]));
                        record.insert("pid", Value::from(text.get(lb + 1..i - 2).unwrap_or("")));
                    } else {
                        record.insert("ident", Value::from(&text[cursor..i - 1]));
                    }
                    &text[i + 1..]
                } else if self.colonless_ident {
                    if before.ends_with(']') {
                        let lb = text[cursor..].find('[').map(|p| p + cursor).ok_or_else(nm)?;
                        record.insert("ident", Value::from(&text[cursor..lb]));
                        record.insert("pid", Value::from(text.get(lb + 1..i - 1).unwrap_or("")));
                    } else {
                        record.insert("ident", Value::from(&text[cursor..i]));
                    }
                    &text[i + 1..]
                } else {
                    &text[cursor..]
                }
            }
        };
        record.insert("message", Value::from(chomp(msg)));
        let time: EventTime = self.rfc3164.time.parse_str(time_str)?;
        if self.common.keep_time_key {
            record.insert("time", Value::from(time_str));
        }
        self.common.convert_values(&mut record);
        Ok(Parsed { time: Some(time), record })
    }
}

fn squeeze_spaces(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("  ") {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// Ruby's `chomp`: one trailing `\n`, `\r\n` or `\r`.
fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n").or_else(|| s.strip_suffix('\n')).or_else(|| s.strip_suffix('\r')).unwrap_or(s)
}

impl Parser for SyslogParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let parsed = match self.format {
            Format::Rfc5424 => self.parse_regexp(line, true)?,
            Format::Rfc3164 if self.string_parser => self.parse_string(line)?,
            Format::Rfc3164 => self.parse_regexp(line, false)?,
            Format::Auto => {
                if self.detect.is_match(line) {
                    self.parse_regexp(line, true)?
                } else if self.string_parser {
                    self.parse_string(line)?
                } else {
                    self.parse_regexp(line, false)?
                }
            }
        };
        Ok(Some(parsed))
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
