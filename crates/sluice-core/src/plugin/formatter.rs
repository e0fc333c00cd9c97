use crate::event::{EventTime, Map};

/// A `<format>`: turns one event into bytes (a line, a msgpack object, ...).
pub trait Formatter: Send + Sync {
    fn format(&self, tag: &str, time: EventTime, record: &Map, out: &mut Vec<u8>);
}
