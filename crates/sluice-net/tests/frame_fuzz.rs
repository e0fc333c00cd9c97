//! Arbitrary and mutated bytes never crash, hang or allocate without bound in the frame decoder and the
//! stream scanner (proptest; each case is bounded by its input size).
use proptest::prelude::*;
use sluice_core::event::{write_map, EventTime, Map, Value};
use sluice_net::protocol::{decode_frame, write_packed_entry, write_packed_forward, DecodeConfig};
use sluice_net::scan::Scanner;

fn cfg() -> DecodeConfig {
    DecodeConfig { skip_invalid_event: false, max_decompressed: 1 << 20 }
}

/// Walk a byte stream the way in_forward does, fed in pieces; decode each whole object.
fn stream(bytes: &[u8], piece: usize) {
    let mut buf = Vec::new();
    let mut scanner = Scanner::default();
    for part in bytes.chunks(piece.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match scanner.scan(&buf) {
                Ok(Some(n)) => {
                    let _ = decode_frame(&buf[..n], &cfg(), EventTime::new(1, 0));
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(scanner.walked() <= buf.len());
    }
}

fn valid_frames() -> Vec<u8> {
    let mut rec = Map::new();
    rec.insert("msg", Value::Str("hello".into()));
    rec.insert("a", Value::Array(vec![Value::Int(1), Value::Null]));
    let mut entries = Vec::new();
    write_packed_entry(EventTime::new(1_700_000_000, 5), &rec, false, &mut entries);
    write_packed_entry(EventTime::new(1_700_000_001, 0), &rec, true, &mut entries);
    let mut out = Vec::new();
    write_packed_forward("t.packed", &entries, 2, false, Some("chunk\n"), &mut out);
    out.extend([0x93, 0xa1, b'm', 0x01]);
    write_map(&rec, &mut out);
    out.extend([0x92, 0xa1, b'f', 0x91]);
    out.extend(&entries[..entries.len() / 2]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), piece in 1usize..64) {
        let _ = decode_frame(&bytes, &cfg(), EventTime::new(1, 0));
        stream(&bytes, piece);
    }

    #[test]
    fn mutated_valid_frames(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), piece in 1usize..64) {
        let mut bytes = valid_frames();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        let _ = decode_frame(&bytes, &cfg(), EventTime::new(1, 0));
        stream(&bytes, piece);
    }
}

#[test]
fn valid_frames_decode_in_any_split() {
    let bytes = valid_frames();
    for piece in [1, 2, 7, 64, bytes.len()] {
        stream(&bytes, piece);
    }
    let mut s = Scanner::default();
    let n = s.scan(&bytes).unwrap().unwrap();
    let f = decode_frame(&bytes[..n], &cfg(), EventTime::new(1, 0)).unwrap();
    assert_eq!((f.tag.as_str(), f.events.len()), ("t.packed", 2));
}
