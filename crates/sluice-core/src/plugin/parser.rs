use crate::event::{EventTime, Map};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The text does not have the expected shape (bad JSON, a regexp that does not match...).
    #[error("pattern not matched: {0}")]
    NotMatched(String),
    #[error("invalid time {value:?}: {reason}")]
    Time { value: String, reason: String },
    /// A joined record (CRI/docker partial lines, multiline) grew past the size limit: it is dropped
    /// whole, and the parts that still belong to it are consumed without a record.
    #[error("joined record longer than {limit} bytes; dropped")]
    TooLong { limit: usize },
}

/// The size limit of a joined record when tail's `max_line_size` does not set one.
pub const DEFAULT_MAX_JOINED_SIZE: usize = 16 * 1024 * 1024;

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

    /// Parse one line that is not valid UTF-8. Joining parsers keep the bytes of each part and decode the
    /// joined record once, so a character cut between two parts (containerd and docker cut by byte count)
    /// comes out whole. Otherwise invalid sequences become U+FFFD.
    fn parse_bytes(&mut self, line: &[u8]) -> Result<Option<Parsed>, ParseError> {
        self.parse(&String::from_utf8_lossy(line))
    }

    /// The largest joined record in bytes (a joining parser drops a larger one with
    /// [`ParseError::TooLong`]). Joining parsers start with [`DEFAULT_MAX_JOINED_SIZE`].
    fn set_max_joined_size(&mut self, _max: usize) {}

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
