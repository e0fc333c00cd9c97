//! `csv` and `tsv`: values in `keys` order. No time unless `time_key` is set, as in Fluentd.
use super::common::{ParserCommon, ParserDefaults};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    /// Ruby's `CSV.parse_line`: strict RFC 4180 quoting.
    Normal,
    /// Fluentd's `parser_engine fast`: split on the delimiter, then join quoted pieces.
    Fast,
}

#[derive(Clone)]
pub struct CsvParser {
    keys: Vec<Str>,
    delimiter: String,
    engine: Engine,
    common: ParserCommon,
}

fn keys(e: &Element) -> Result<Vec<Str>, ConfigError> {
    match e.array("keys")? {
        Some(k) if !k.is_empty() => Ok(k.into_iter().map(Str::from).collect()),
        _ => Err(e.error("'keys' parameter is required").with_hint("add 'keys name1,name2,...'")),
    }
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let engine_key = if e.has("parser_type") && !e.has("parser_engine") { "parser_type" } else { "parser_engine" };
    let engine = match e.enum_or(engine_key, &["normal", "fast"], "normal")?.as_str() {
        "fast" => Engine::Fast,
        _ => Engine::Normal,
    };
    let delimiter = e.str_or("delimiter", ",");
    if delimiter.is_empty() {
        return Err(e.error_at("delimiter", "delimiter must not be empty"));
    }
    Ok(Box::new(CsvParser {
        keys: keys(e)?,
        delimiter,
        engine,
        common: ParserCommon::from_element(e, &ParserDefaults::default())?,
    }))
}

/// Why a CSV line was refused (never quoting the line).
fn malformed(reason: &str) -> ParseError {
    ParseError::NotMatched(format!("malformed CSV: {reason}"))
}

/// Ruby's `CSV.parse_line` for one line: unquoted empty fields are nil, quoted ones "".
pub fn parse_csv_line(line: &str, sep: &str) -> Result<Vec<Option<String>>, ParseError> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        if let Some(q) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut s = q;
            loop {
                let Some(pos) = s.find('"') else {
                    return Err(malformed("unclosed quoted field"));
                };
                field.push_str(&s[..pos]);
                s = &s[pos + 1..];
                if let Some(after) = s.strip_prefix('"') {
                    field.push('"');
                    s = after;
                } else {
                    break;
                }
            }
            out.push(Some(field));
            if s.is_empty() {
                return Ok(out);
            }
            match s.strip_prefix(sep) {
                Some(next) => rest = next,
                None => return Err(malformed("a value after a quoted field")),
            }
        } else {
            let end = rest.find(sep).unwrap_or(rest.len());
            let field = &rest[..end];
            if field.contains('"') {
                return Err(malformed("a quote inside an unquoted field"));
            }
            out.push((!field.is_empty()).then(|| field.to_string()));
            if end == rest.len() {
                return Ok(out);
            }
            rest = &rest[end + sep.len()..];
        }
    }
}

/// Fluentd's `parse_fast_internal`.
fn parse_fast(line: &str, sep: &str) -> Vec<Option<String>> {
    let columns: Vec<&str> = line.split(sep).collect();
    let mut out = Vec::with_capacity(columns.len());
    let mut j = 0;
    while j < columns.len() {
        let column = columns[j];
        let quotes = column.matches('"').count();
        let unquote = |c: &str| -> String {
            if c.len() >= 2 && c.starts_with('"') && c.ends_with('"') {
                c[1..c.len() - 1].to_string()
            } else {
                c.to_string()
            }
        };
        let value = match quotes {
            0 => (!column.is_empty()).then(|| column.to_string()),
            1 if column.starts_with('"') => {
                let start = j;
                j += 1;
                while j < columns.len() {
                    if columns[j].ends_with('"') {
                        break;
                    }
                    j += 1;
                }
                let end = j.min(columns.len() - 1);
                let joined = columns[start..=end].join(sep);
                Some(joined.get(1..joined.len().saturating_sub(1).max(1)).unwrap_or("").to_string())
            }
            1 | 2 => Some(unquote(column)),
            _ => Some(unquote(column).replace("\"\"", "\"")),
        };
        out.push(value);
        j += 1;
    }
    out
}

impl Parser for CsvParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let values = match self.engine {
            Engine::Normal => {
                if line.is_empty() {
                    return Err(ParseError::NotMatched("empty line".into()));
                }
                parse_csv_line(line, &self.delimiter)?
            }
            Engine::Fast => {
                let line = line.strip_suffix('\n').unwrap_or(line);
                if line.is_empty() {
                    Vec::new()
                } else {
                    parse_fast(line, &self.delimiter)
                }
            }
        };
        let mut record = Map::with_capacity(self.keys.len());
        let mut values = values.into_iter();
        match self.engine {
            Engine::Normal => {
                for k in &self.keys {
                    let v = values.next().flatten().map_or(Value::Null, |s| Value::Str(Str::from(s)));
                    record.insert(k.clone(), v);
                }
            }
            // Fluentd's fast path only sets the keys it has columns for.
            Engine::Fast => {
                for (k, v) in self.keys.iter().zip(values) {
                    record.insert(k.clone(), v.map_or(Value::Null, |s| Value::Str(Str::from(s))));
                }
            }
        }
        self.common.finish(record).map(Some)
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}

#[derive(Clone)]
pub struct TsvParser {
    keys: Vec<Str>,
    delimiter: String,
    common: ParserCommon,
}

pub fn build_tsv(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let delimiter = e.str_or("delimiter", "\t");
    if delimiter.is_empty() {
        return Err(e.error_at("delimiter", "delimiter must not be empty"));
    }
    Ok(Box::new(TsvParser {
        keys: keys(e)?,
        delimiter,
        common: ParserCommon::from_element(e, &ParserDefaults::default())?,
    }))
}

impl Parser for TsvParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        // Ruby's `split(delimiter, keys.size)`: at most that many fields, the last keeps the rest.
        let n = self.keys.len();
        let values: Vec<&str> = if line.is_empty() {
            Vec::new()
        } else if self.delimiter == " " {
            let mut v = Vec::with_capacity(n);
            let mut rest = line.trim_start_matches([' ', '\t', '\n', '\x0B', '\x0C', '\r']);
            while !rest.is_empty() {
                if v.len() + 1 == n {
                    v.push(rest);
                    break;
                }
                let end = rest.find([' ', '\t', '\n', '\x0B', '\x0C', '\r']).unwrap_or(rest.len());
                v.push(&rest[..end]);
                rest = rest[end..].trim_start_matches([' ', '\t', '\n', '\x0B', '\x0C', '\r']);
            }
            v
        } else {
            line.splitn(n, self.delimiter.as_str()).collect()
        };
        let mut record = Map::with_capacity(n);
        for (i, k) in self.keys.iter().enumerate() {
            let v = values.get(i).map_or(Value::Null, |s| Value::Str(Str::from(*s)));
            record.insert(k.clone(), v);
        }
        self.common.finish(record).map(Some)
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
