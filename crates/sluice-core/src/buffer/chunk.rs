use crate::event::{decode_entry, EventTime, Map, MsgpackError, Str};

/// What a chunk was cut by: the values of its chunk keys. Placeholders in output parameters are resolved
/// from it (`${tag}`, `${tag[1]}`, `${key}`, strftime patterns from `timekey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChunkMetadata {
    pub tag: Option<String>,
    /// Start of the time slice (seconds since the epoch) when `time` is a chunk key.
    pub timekey: Option<i64>,
    /// Record-key chunk keys and their values, in the order the keys were declared.
    pub variables: Vec<(String, String)>,
}

/// One decoded entry of a chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkEvent {
    pub tag: Str,
    pub time: EventTime,
    pub record: Map,
}

/// A chunk as a writer sees it: the entries (msgpack `[tag, time, record]` back to back) and metadata.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// 16 random bytes, stable across restarts (file buffers keep it in the file name).
    pub id: [u8; 16],
    pub metadata: ChunkMetadata,
    pub data: Vec<u8>,
    pub records: usize,
}

impl Chunk {
    /// The chunk id as 32 hex digits (Fluentd's `dump_unique_id_hex`).
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Decode the entries in order; stops at the first corrupt entry with an error.
    pub fn events(&self) -> ChunkEvents<'_> {
        ChunkEvents { data: &self.data, pos: 0 }
    }

    pub fn bytesize(&self) -> usize {
        self.data.len()
    }
}

pub struct ChunkEvents<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Iterator for ChunkEvents<'_> {
    type Item = Result<ChunkEvent, MsgpackError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        match decode_entry(&self.data[self.pos..]) {
            Ok((tag, time, record, used)) => {
                self.pos += used;
                Some(Ok(ChunkEvent { tag, time, record }))
            }
            Err(e) => {
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }
}
