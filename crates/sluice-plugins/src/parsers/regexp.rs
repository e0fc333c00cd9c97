//! `regexp` and the parsers that are a regexp with Fluentd's defaults: `apache`, `apache_error`, `nginx`.
use super::common::{ParserCommon, ParserDefaults};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Map;
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};
use sluice_core::ruby::regexp::{split_literal, GaveUp, RubyFlags, RubyRegex, Slots};

pub const APACHE_EXPRESSION: &str = r#"/^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$/"#;
pub const APACHE_ERROR_EXPRESSION: &str = r#"/^\[[^ ]* (?<time>[^\]]*)\] \[(?<level>[^\]]*)\](?: \[pid (?<pid>[^\]]*)\])?( \[client (?<client>[^\]]*)\])? (?<message>.*)$/"#;
pub const NGINX_EXPRESSION: &str = r#"/^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)"(?:\s+(?<http_x_forwarded_for>[^ ]+))?)?$/"#;
pub const CLF_TIME_FORMAT: &str = "%d/%b/%Y:%H:%M:%S %z";

#[derive(Clone)]
pub struct RegexpParser {
    re: RubyRegex,
    slots: Slots,
    names: usize,
    common: ParserCommon,
}

impl RegexpParser {
    /// Build from a section, with a preset expression and time format for the named variants.
    pub fn from_element(
        e: &Element,
        default_expression: Option<&str>,
        default_time_format: Option<&'static str>,
    ) -> Result<Self, ConfigError> {
        let expression = match e.get("expression").or(default_expression) {
            Some(x) => x.to_string(),
            None => e.required_str("expression")?,
        };
        let (src, mut flags) = split_literal(&expression).map_err(|m| e.error_at("expression", m.to_string()))?;
        // Deprecated in Fluentd in favour of /.../im, but still honoured there.
        flags.ignorecase |= e.bool_or("ignorecase", false)?;
        flags.multiline |= e.bool_or("multiline", false)?;
        let re = RubyRegex::new(src, flags).map_err(|m| e.error_at("expression", m.to_string()))?;
        Self::with_regex(e, re, default_time_format)
    }

    pub fn with_regex(
        e: &Element,
        re: RubyRegex,
        default_time_format: Option<&'static str>,
    ) -> Result<Self, ConfigError> {
        if !re.has_names() {
            return Err(e
                .error_at("expression", "no named captures in the regexp")
                .with_hint("name each field with (?<name>...)"));
        }
        let defaults = ParserDefaults { time_format: default_time_format, ..ParserDefaults::time_key() };
        let common = ParserCommon::from_element(e, &defaults)?;
        Ok(RegexpParser { slots: re.slots(), names: re.names().count(), re, common })
    }

    /// Match and build the record without the time and type handling (for parsers that wrap this one).
    /// A regexp that gives up is no match here (counted and logged by the regexp).
    pub fn match_record(&mut self, text: &str) -> Option<Map> {
        self.try_match_record(text).ok().flatten()
    }

    /// [`Self::match_record`], telling a regexp that gave up apart from one that did not match.
    pub fn try_match_record(&mut self, text: &str) -> Result<Option<Map>, GaveUp> {
        let mut record = Map::with_capacity(self.names);
        Ok(self.re.try_captures_into(text, &mut self.slots, &mut record)?.then_some(record))
    }

    pub fn regex(&self) -> &RubyRegex {
        &self.re
    }
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(RegexpParser::from_element(e, None, None)?))
}

pub fn build_apache(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(RegexpParser::from_element(e, Some(APACHE_EXPRESSION), Some(CLF_TIME_FORMAT))?))
}

pub fn build_apache_error(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(RegexpParser::from_element(e, Some(APACHE_ERROR_EXPRESSION), None)?))
}

pub fn build_nginx(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(RegexpParser::from_element(e, Some(NGINX_EXPRESSION), Some(CLF_TIME_FORMAT))?))
}

/// The regexp flags of Fluentd's `multiline` formats: Ruby's MULTILINE (dot matches newline).
pub const DOTALL: RubyFlags = RubyFlags { ignorecase: false, multiline: true, extended: false };

impl Parser for RegexpParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        // A regexp that gave up is a parse failure like a mismatch (reported by tail and the parser
        // filter), never a record built from a partial match.
        let record = match self.try_match_record(line) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(ParseError::NotMatched("the line does not match the regexp".into())),
            Err(g) => return Err(ParseError::NotMatched(format!("{g}; the line is handled as not matched"))),
        };
        self.common.finish(record).map(Some)
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
