//! The message framings of in_tcp and in_syslog (delimited, RFC 6587 octet counting) on arbitrary bytes fed
//! in arbitrary pieces (proptest): never a panic, every step makes progress (no hang), the unconsumed
//! bytes never grow past the limit plus one piece, and valid streams come out exactly.
use proptest::prelude::*;
use sluice_net::framing::{Decoder, Step};

struct Out {
    msgs: Vec<Vec<u8>>,
    oversize: usize,
    broken: bool,
    max_held: usize,
}

/// Feed `input` in pieces the way a connection reads; check progress and the memory bound on every step.
fn feed(mut d: Decoder, input: &[u8], piece: usize, limit: usize, overhead: usize) -> Out {
    let mut out = Out { msgs: Vec::new(), oversize: 0, broken: false, max_held: 0 };
    let mut buf: Vec<u8> = Vec::new();
    for part in input.chunks(piece.max(1)) {
        buf.extend_from_slice(part);
        out.max_held = out.max_held.max(buf.len());
        assert!(buf.len() <= limit + overhead + piece, "held {} bytes (limit {limit}, piece {piece})", buf.len());
        loop {
            match d.next(&buf) {
                Ok(Step::Message { start, end, used }) => {
                    assert!(used > 0 && start <= end && end <= used && used <= buf.len());
                    assert!(end - start <= limit);
                    out.msgs.push(buf[start..end].to_vec());
                    buf.drain(..used);
                }
                Ok(Step::Skip { used, oversize }) => {
                    assert!(used > 0 && used <= buf.len(), "a skip must consume");
                    out.oversize += usize::from(oversize.is_some());
                    buf.drain(..used);
                }
                Ok(Step::NeedMore) => break,
                Err(_) => {
                    out.broken = true;
                    return out;
                }
            }
        }
    }
    out
}

fn delimiter() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(b"\n".to_vec()), Just(b"\r\n".to_vec()), Just(b"|~|".to_vec()), Just(vec![0u8])]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn delimited_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), piece in 1usize..300,
                                 limit in 0usize..200, delim in delimiter()) {
        let out = feed(Decoder::delimited(&delim, limit), &bytes, piece, limit, delim.len());
        prop_assert!(!out.broken);
        for m in &out.msgs {
            prop_assert!(m.len() <= limit);
            prop_assert!(!m.windows(delim.len()).any(|w| w == delim.as_slice()));
        }
    }

    #[test]
    fn octet_counted_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), piece in 1usize..300,
                                     limit in 0usize..200) {
        feed(Decoder::octet_counted(limit), &bytes, piece, limit, 11);
    }

    #[test]
    fn valid_streams_come_out_exactly(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..20),
                                      piece in 1usize..200, limit in 1usize..100) {
        // Octet counting carries any bytes.
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(format!("{} ", m.len()).as_bytes());
            stream.extend(m);
        }
        let out = feed(Decoder::octet_counted(limit), &stream, piece, limit, 11);
        let kept: Vec<Vec<u8>> = msgs.iter().filter(|m| m.len() <= limit).cloned().collect();
        prop_assert!(!out.broken);
        prop_assert_eq!(&out.msgs, &kept);
        prop_assert_eq!(out.oversize, msgs.len() - kept.len());

        // Delimited: messages without the delimiter.
        let lines: Vec<Vec<u8>> = msgs.iter().map(|m| m.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect()).collect();
        let mut stream = Vec::new();
        for l in &lines {
            stream.extend(l);
            stream.push(b'\n');
        }
        let out = feed(Decoder::delimited(b"\n", limit), &stream, piece, limit, 1);
        let kept: Vec<Vec<u8>> = lines.iter().filter(|m| m.len() <= limit).cloned().collect();
        prop_assert_eq!(&out.msgs, &kept);
        prop_assert_eq!(out.oversize, lines.len() - kept.len());
    }
}

#[test]
fn a_huge_octet_count_is_skipped_without_holding_it() {
    let mut stream = b"4294967295 ".to_vec();
    stream.extend(vec![b'x'; 100_000]);
    let out = feed(Decoder::octet_counted(1000), &stream, 4096, 1000, 11);
    assert_eq!((out.msgs.len(), out.oversize), (0, 1));
    assert!(out.max_held <= 4096 + 11);
}
