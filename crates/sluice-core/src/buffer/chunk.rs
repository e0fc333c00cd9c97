use crate::event::{decode_entry, EventTime, Map, MsgpackError, Str};
use std::io::{Read, Write};

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
    /// The entries, shared with the queue: a flush reads the queued body without copying it.
    pub data: std::sync::Arc<Vec<u8>>,
    pub records: usize,
}

impl Chunk {
    /// The chunk id as 32 hex digits (Fluentd's `dump_unique_id_hex`).
    pub fn id_hex(&self) -> String {
        crate::util::hex16(&self.id)
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

// ---- framing: ids, gzip, whole entries --------------------------------------------------------------

pub(super) fn new_id() -> [u8; 16] {
    rand::random()
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

pub(super) fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// Byte offsets of whole entries in `data`, and where the valid part ends.
pub(super) fn entry_offsets(data: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        match decode_entry(&data[pos..]) {
            Ok((_, _, _, used)) if used > 0 => {
                out.push((pos, pos + used));
                pos += used;
            }
            _ => break,
        }
    }
    (out, pos)
}

/// The entries of a queued chunk's body, uncompressed. Entries start with 0x93 (a msgpack array of 3): the
/// gzip magic tells compressed bodies apart, also those written by an earlier run with a different `compress`.
pub(super) fn stored_entries(raw: std::sync::Arc<Vec<u8>>) -> std::io::Result<std::sync::Arc<Vec<u8>>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw).map(std::sync::Arc::new)
    } else {
        Ok(raw)
    }
}
