//! The event model: an event is (tag, time with nanoseconds, record). Events travel in batches that share
//! one tag, as Fluentd's `emit_stream(tag, es)` does, so routing is decided once per batch.
mod codec_json;
mod codec_msgpack;
mod time;
mod value;

pub(crate) use codec_json::write_json_float;
pub use codec_json::{
    parse_json_map, parse_json_value, write_json, write_json_map, write_json_map_with, write_json_str, write_json_with,
    JsonError, NonFinite,
};
pub use codec_msgpack::{
    decode_entry, read_time, read_value, write_entry, write_entry_json, write_event_time, write_map, write_value,
    MsgpackError,
};
pub use time::EventTime;
pub use value::{Map, Str, Value};

/// A record: an ordered map from field names to values (Ruby hashes keep insertion order, and so do we).
pub type Record = Map;

/// One event without its tag; the tag belongs to the batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub time: EventTime,
    pub record: Record,
}

impl Event {
    pub fn new(time: EventTime, record: Record) -> Self {
        Event { time, record }
    }
}

/// Events that share a tag. Stages pass whole batches so per-event routing work is amortised.
pub type Events = Vec<Event>;
