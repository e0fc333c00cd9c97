use crate::event::{EventTime, Map};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The text does not have the expected shape (bad JSON, a regexp that does not match...).
    #[error("pattern not matched: {0}")]
    NotMatched(String),
    #[error("invalid time {value:?}: {reason}")]
    Time { value: String, reason: String },
}

/// A parsed event. `time` is `None` when the text carried no time; the caller uses the current time
/// (in_tail) or the event's time (the parser filter).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub time: Option<EventTime>,
    pub record: Map,
}

/// A `<parse>`. Parsers that join lines (CRI partial lines, multiline) keep state, so each stream
/// (each tailed file) gets its own instance from [`Parser::new_instance`].
pub trait Parser: Send + Sync {
    /// Parse one line (without its newline). `Ok(None)`: the line was kept to be joined with later ones.
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError>;

    /// More records from the text the last `parse` returned a record for (a JSON array of objects gives one
    /// event per object, as in Fluentd). Callers drain it after every `Ok(Some(_))`.
    fn take_extra(&mut self) -> Option<Result<Parsed, ParseError>> {
        None
    }

    /// Emit whatever a joining parser still holds (end of file, `multiline_flush_interval`).
    fn flush(&mut self) -> Option<Parsed> {
        None
    }

    /// True when the parser may hold lines back (so tail must flush it on a timer).
    fn is_joining(&self) -> bool {
        false
    }

    fn new_instance(&self) -> Box<dyn Parser>;
}
