//! `multiline`: `format1`..`format20` joined into one regexp (dot matches newline), with an optional
//! `format_firstline` that says where an event starts. Lines are held until the event is complete, as
//! in_tail does with this parser: with `format_firstline` an event ends when the next first line arrives
//! (or on [`Parser::flush`]); without it, as soon as the held lines match. Held text longer than the limit
//! (tail's `max_line_size`, else [`DEFAULT_MAX_JOINED_SIZE`]) is dropped whole: with `format_firstline`
//! the rest of that event is skipped up to the next first line.
use super::regexp::{RegexpParser, DOTALL};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser, DEFAULT_MAX_JOINED_SIZE};
use sluice_core::ruby::regexp::{RubyFlags, RubyRegex};

const FORMAT_MAX: usize = 20;

#[derive(Clone)]
pub struct MultilineParser {
    firstline: Option<RubyRegex>,
    inner: RegexpParser,
    held: Option<String>,
    max_joined: usize,
    /// The event being held outgrew the limit: its other lines are skipped up to the next first line.
    dropping: bool,
}

/// The body of a `/.../` value (multiline formats must be written that way).
fn slashed<'a>(e: &Element, key: &str, v: &'a str) -> Result<&'a str, ConfigError> {
    if v.len() >= 2 && v.starts_with('/') && v.ends_with('/') {
        Ok(&v[1..v.len() - 1])
    } else {
        Err(e.error_at(key, format!("format should be Regexp, need //, in {key}")).with_hint("write it as /regexp/"))
    }
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(MultilineParser::from_element(e)?))
}

impl MultilineParser {
    pub fn from_element(e: &Element) -> Result<Self, ConfigError> {
        for a in &e.attrs {
            if let Some(n) = a.key.strip_prefix("format").and_then(|n| n.parse::<usize>().ok()) {
                if !(1..=FORMAT_MAX).contains(&n) {
                    return Err(e.error_at(&a.key, format!("invalid {}: N should be 1 - {FORMAT_MAX}", a.key)));
                }
            }
        }
        let mut joined = String::new();
        let mut gap = false;
        for i in 1..=FORMAT_MAX {
            let key = format!("format{i}");
            match e.get(&key) {
                Some(v) => {
                    if gap {
                        return Err(e.error_at(&key, format!("jump of format index found: format{} is missing", i - 1)));
                    }
                    let body = slashed(e, &key, v)?;
                    RubyRegex::new(body, DOTALL)
                        .map_err(|m| e.error_at(&key, format!("invalid regexp in {key}: {m}")))?;
                    joined.push_str(body);
                }
                None => gap = true,
            }
        }
        if joined.is_empty() {
            return Err(e
                .error("multiline needs format1 (and optionally format2..format20)")
                .with_hint("add 'format1 /^(?<message>.*)/'"));
        }
        let re = RubyRegex::new(&joined, DOTALL).map_err(|m| e.error_at("format1", format!("invalid regexp: {m}")))?;
        let inner = RegexpParser::with_regex(e, re, None)?;
        let firstline = match e.get("format_firstline") {
            Some(v) => {
                let body = slashed(e, "format_firstline", v)?;
                Some(
                    RubyRegex::new(body, RubyFlags::default())
                        .map_err(|m| e.error_at("format_firstline", m.to_string()))?,
                )
            }
            None => None,
        };
        Ok(MultilineParser { firstline, inner, held: None, max_joined: DEFAULT_MAX_JOINED_SIZE, dropping: false })
    }

    fn parse_held(&mut self, text: &str) -> Result<Parsed, ParseError> {
        match self.inner.parse(text)? {
            Some(p) => Ok(p),
            None => Err(ParseError::NotMatched("the lines do not match the multiline format".into())),
        }
    }
}

impl Parser for MultilineParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        match &self.firstline {
            Some(first) => {
                if first.is_match(line) {
                    // One line is bounded by tail's max_line_size; the limit is on what is joined to it.
                    self.dropping = false;
                    let previous = self.held.replace(line.to_string());
                    match previous {
                        Some(text) => self.parse_held(&text).map(Some),
                        None => Ok(None),
                    }
                } else if self.dropping {
                    Ok(None)
                } else {
                    let max = self.max_joined;
                    match &mut self.held {
                        Some(text) if text.len().saturating_add(line.len()).saturating_add(1) > max => {
                            self.held = None;
                            self.dropping = true;
                            Err(ParseError::TooLong { limit: max })
                        }
                        Some(text) => {
                            text.push('\n');
                            text.push_str(line);
                            Ok(None)
                        }
                        None => Err(ParseError::NotMatched("a line before the first line of an event".into())),
                    }
                }
            }
            None => {
                let text = match self.held.take() {
                    Some(t) if t.len().saturating_add(line.len()).saturating_add(1) > self.max_joined => {
                        return Err(ParseError::TooLong { limit: self.max_joined });
                    }
                    Some(mut t) => {
                        t.push('\n');
                        t.push_str(line);
                        t
                    }
                    None => line.to_string(),
                };
                match self.inner.parse(&text) {
                    Err(ParseError::NotMatched(_)) => {
                        self.held = Some(text);
                        Ok(None)
                    }
                    other => other,
                }
            }
        }
    }

    fn set_max_joined_size(&mut self, max: usize) {
        self.max_joined = max;
    }

    fn flush(&mut self) -> Option<Parsed> {
        let text = self.held.take()?;
        self.parse_held(&text).ok()
    }

    fn is_joining(&self) -> bool {
        true
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(MultilineParser { held: None, dropping: false, ..self.clone() })
    }
}
