//! in_http's body decoders on arbitrary and mutated bytes (proptest): they never panic, and what they
//! allocate is bounded by their input (decompression by `body_size_limit`).
use proptest::prelude::*;
use sluice_core::event::{write_map, EventTime, Map, Value};
use sluice_net::in_http::body::{decode_content, default_records, finish, BodyError, Extra, Params, TimeField};
use std::io::Write;

const LIMIT: usize = 64 * 1024;

/// Everything in_http does with a body of each content type after reading it.
fn decode_all(bytes: &[u8], query: &[u8]) {
    for enc in ["gzip", "deflate", ""] {
        match decode_content(enc, bytes.to_vec(), LIMIT) {
            Ok(out) => assert!(out.len() <= LIMIT.max(bytes.len())),
            Err(BodyError::TooLarge) => {}
            Err(BodyError::BadRequest(_)) => {}
        }
    }
    let _ = Params::default().update_from_multipart(bytes, "XyZ");
    for key in ["json", "msgpack", "ndjson", ""] {
        let mut p = Params::parse_query(query);
        if key.is_empty() {
            p.update_from_query(bytes);
        } else {
            p.set(key, bytes.to_vec());
        }
        if let Ok(records) = default_records(&p) {
            // A record costs at least one byte of input.
            assert!(records.len() <= bytes.len() + query.len());
            let extra = Extra { remote_addr: Some(Value::Str("127.0.0.1".into())), ..Default::default() };
            let _ = finish(records, &p, &extra, &TimeField::default(), EventTime::new(1, 0));
        }
    }
}

fn valid_bodies() -> Vec<Vec<u8>> {
    let mut rec = Map::new();
    rec.insert("msg", Value::Str("hello".into()));
    rec.insert("time", Value::Int(1_700_000_000));
    rec.insert("a", Value::Array(vec![Value::Int(1), Value::Null, Value::Float(1.5)]));
    let mut mp = vec![0x92];
    write_map(&rec, &mut mp);
    write_map(&rec, &mut mp);
    let json = br#"[{"msg":"hello","time":1700000000.5,"n":{"x":[1,2,{"y":null}]}},{"b":true}]"#.to_vec();
    let nd = b"{\"a\":1}\r\n{\"b\":\"\\u00e9\"}\n\n".to_vec();
    let form = b"json=%7B%22a%22%3A1%7D&time=17&msgpack=%81%a1a%01".to_vec();
    let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    vec![mp, json, nd, form, gz.finish().unwrap(), multipart]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), query in proptest::collection::vec(any::<u8>(), 0..64)) {
        decode_all(&bytes, &query);
    }

    #[test]
    fn mutated_valid_bodies(which in 0usize..6, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_bodies().swap_remove(which);
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        decode_all(&bytes, b"time=1700000000.5&x=%zz");
    }
}

#[test]
fn hostile_lengths_and_bombs_are_bounded() {
    // A msgpack array that claims 2^32-1 elements in 5 bytes.
    let p = {
        let mut p = Params::default();
        p.set("msgpack", vec![0xdd, 0xff, 0xff, 0xff, 0xff]);
        p
    };
    assert!(default_records(&p).is_err());
    // 64 MiB of zeros in a small gzip member: refused at the limit, not decompressed whole.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 200 * 1024);
    assert_eq!(decode_content("gzip", bomb, LIMIT), Err(BodyError::TooLarge));
    // Deep nesting is an error, not a stack overflow.
    let mut p = Params::default();
    p.set("json", "[".repeat(100_000).into_bytes());
    assert!(default_records(&p).is_err());
    let mut p = Params::default();
    p.set("msgpack", vec![0x91; 100_000]);
    assert!(default_records(&p).is_err());
}

#[test]
fn valid_bodies_decode() {
    let b = valid_bodies();
    let mut p = Params::default();
    p.set("msgpack", b[0].clone());
    assert_eq!(default_records(&p).unwrap().len(), 2);
    let mut p = Params::default();
    p.set("json", b[1].clone());
    assert_eq!(default_records(&p).unwrap().len(), 2);
    let mut p = Params::default();
    p.set("ndjson", b[2].clone());
    assert_eq!(default_records(&p).unwrap().len(), 2);
    let p = Params::parse_query(&b[3]);
    let r = default_records(&p).unwrap();
    let out = finish(r, &p, &Extra::default(), &TimeField::default(), EventTime::new(1, 0)).unwrap();
    assert_eq!(out[0].0, EventTime::new(17, 0));
    assert_eq!(decode_content("gzip", b[4].clone(), LIMIT).unwrap(), b[1]);
}
