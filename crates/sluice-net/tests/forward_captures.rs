//! Our codec against Fluentd 1.18's own bytes: out_forward's frames must be byte-identical, and the
//! handshake digests must match what real in_forward and out_forward computed.
mod common;

use common::*;
use sluice_core::event::{read_value, write_entry, write_entry_json, EventTime, Value};
use sluice_net::out_forward::{chunk_option, packed_entries};
use sluice_net::protocol::write_packed_forward;
use sluice_net::security::{ClientSecurity, ServerSecurity};

/// The msgpack objects of a capture file.
fn objects(bytes: &[u8]) -> Vec<(Value, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let n = sluice_net::scan::object_len(&bytes[pos..]).unwrap().expect("whole object");
        out.push((read_value(&bytes[pos..pos + n]).unwrap().0, bytes[pos..pos + n].to_vec()));
        pos += n;
    }
    out
}

/// The feed as a sluice buffer chunk would hold it.
fn chunk_data(tag: &str) -> Vec<u8> {
    chunk_data_with(tag, write_entry)
}

fn chunk_data_with(tag: &str, write: fn(&str, EventTime, &sluice_core::event::Map, &mut Vec<u8>)) -> Vec<u8> {
    let feed = [
        (EventTime::new(1_700_000_000, 123_456_789), r#"{"msg":"hello","level":"INFO","n":1}"#),
        (
            EventTime::new(1_700_000_001, 0),
            r#"{"msg":"ünïcødé ✓ 日本語","level":"ERROR","n":2,"nested":{"a":[1,2.5,null,true,false],"e":{}}}"#,
        ),
        (
            EventTime::new(1_700_000_002, 999_999_999),
            r#"{"msg":"third","level":"FATAL","n":-3,"big":1099511627776,"empty":""}"#,
        ),
    ];
    let mut data = Vec::new();
    for (t, j) in feed {
        write(tag, t, &rec(j), &mut data);
    }
    data
}

#[test]
fn out_forward_frames_are_byte_identical_to_fluentd() {
    for (folder, tag, as_int) in [("packed", "cap.packed", false), ("packed-time-int", "cap.timeint", true)] {
        let (entries, n) = packed_entries(&chunk_data(tag), as_int).unwrap();
        let mut frame = Vec::new();
        write_packed_forward(tag, &entries, n, false, None, &mut frame);
        assert_eq!(frame, capture(folder, "conn1.c2s.bin"), "{folder}");
        // A chunk file left by an output that buffers records as JSON text is forwarded as maps.
        let (entries, n) = packed_entries(&chunk_data_with(tag, write_entry_json), as_int).unwrap();
        let mut frame = Vec::new();
        write_packed_forward(tag, &entries, n, false, None, &mut frame);
        assert_eq!(frame, capture(folder, "conn1.c2s.bin"), "{folder}, records buffered as JSON");
    }
    // With require_ack_response: the chunk id as Ruby's Base64.encode64 (taken from the capture).
    let want = capture("packed-ack", "conn1.c2s.bin");
    let b64 = "ZhEK97rptquOgHkU8yKz3Q==";
    let id: Vec<u8> = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    };
    let option = chunk_option(&id.try_into().unwrap());
    let (entries, n) = packed_entries(&chunk_data("cap.ack"), false).unwrap();
    let mut frame = Vec::new();
    write_packed_forward("cap.ack", &entries, n, false, Some(&option), &mut frame);
    assert_eq!(frame, want);
}

#[test]
fn handshake_digests_match_fluentd() {
    let s2c = objects(&capture("secure-shared-key-ack", "conn1.s2c.bin"));
    let c2s = objects(&capture("secure-shared-key-ack", "conn1.c2s.bin"));
    let helo = ClientSecurity::parse_helo(&s2c[0].0).expect("HELO");
    let (ping, ping_bytes) = &c2s[0];
    let Value::Array(parts) = ping else { panic!("PING is an array") };
    let salt = parts[2].to_display_string();

    // Client side: the same PING bytes as Fluentd's out_forward for the same nonce and salt.
    let client = ClientSecurity {
        self_hostname: "sender.example".into(),
        shared_key: "cap-secret".into(),
        username: String::new(),
        password: String::new(),
    };
    assert_eq!(&client.ping(&helo, &salt), ping_bytes);
    // Server side: accepts that PING and answers with Fluentd's PONG bytes.
    let el = {
        let conf = "<security>\n self_hostname receiver.example\n shared_key cap-secret\n</security>\n";
        sluice_core::config::parse_str(conf, std::path::Path::new("t.conf")).unwrap().children.remove(0)
    };
    let server = ServerSecurity::from_section(&el).unwrap();
    let nonce: [u8; 16] = helo.nonce.clone().try_into().unwrap();
    let pong = server.check_ping(ping, "127.0.0.1".parse().unwrap(), &helo.auth, &nonce).expect("accepted");
    assert_eq!(pong, s2c[1].1, "PONG bytes");
    client.check_pong(&s2c[1].0, &helo, &salt).expect("client accepts Fluentd's PONG");

    // The wrong key: refused with Fluentd's exact failure PONG.
    let s2c = objects(&capture("secure-bad-key", "conn1.s2c.bin"));
    let c2s = objects(&capture("secure-bad-key", "conn1.c2s.bin"));
    let helo = ClientSecurity::parse_helo(&s2c[0].0).unwrap();
    let nonce: [u8; 16] = helo.nonce.clone().try_into().unwrap();
    let fail = server.check_ping(&c2s[0].0, "127.0.0.1".parse().unwrap(), &helo.auth, &nonce).unwrap_err();
    assert_eq!(fail, s2c[1].1);
}
