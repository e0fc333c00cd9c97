//! Property tests: no panic on arbitrary input, masking is idempotent, tokens are keyed.
mod common;
use common::*;
use proptest::prelude::*;
use sluice_core::event::{Map, Value};

const SAMPLES: &[&str] = &[
    "010-1234-5678",
    "01012345678",
    "+82-10-8859-8440",
    "02-2943-6714",
    "+1-415-555-0132",
    "gildong@example.com",
    "a@example.co.kr",
    "4111-1111-1111-1111",
    "4111 1111 1111 1111",
    "378282246310005",
    "960519-1741041",
    "9605191741041",
    "550101-6957659",
    "192.168.0.1",
    "2001:db8::1",
    "M41777631",
    "M123A4567",
    "11-19-123456-01",
    "AKIAIOSFODNN7EXAMPLE",
    "password=hunter2",
    "\"password\":\"x y\"",
    "Bearer abcDEF123456ghi",
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "주민번호",
    "카드",
    "7.16.44",
    "order 7439150008063",
    "tok_",
    "[REDACTED:x]",
    "****",
    "@",
    ":",
    "-",
    ".",
    " ",
];

fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(SAMPLES).prop_map(str::to_string),
            1 => "[ -~]{0,6}",
            1 => "[0-9 .:@+-]{0,8}",
            1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

fn key_filter(mode: &str) -> sluice_mask::MaskFilter {
    std::env::set_var("SLUICE_MASK_PROP_KEY", "prop-test-key-0123456789abcdef");
    filter(&format!("detectors all\n  mode {mode}\n  hash_key_env SLUICE_MASK_PROP_KEY"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400), .. ProptestConfig::default() })]

    #[test]
    fn never_panics_on_any_text(s in any::<String>(), t in pieces()) {
        let f = key_filter("partial");
        let mut m = Map::new();
        m.insert("a", Value::from(s.as_str()));
        m.insert("b", Value::from(t.as_str()));
        m.insert("password", Value::from(t.as_str()));
        let _ = f.mask_record(&mut m);
    }

    #[test]
    fn never_panics_on_any_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let f = filter("detectors all");
        let mut m = Map::new();
        m.insert("raw", Value::Bytes(b.clone()));
        m.insert("card_number", Value::Bytes(b));
        let _ = f.mask_record(&mut m);
    }

    #[test]
    fn masking_twice_equals_once(t in pieces(), mode in prop::sample::select(&["redact", "partial", "hash"][..])) {
        let f = key_filter(mode);
        let once = mask_msg(&f, &t).unwrap_or_default();
        let twice = mask_msg(&f, &once).unwrap_or_default();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn hash_is_keyed_and_deterministic(local in "[a-z]{3,10}") {
        std::env::set_var("SLUICE_MASK_PROP_K1", "key-one-0123456789abcdef");
        std::env::set_var("SLUICE_MASK_PROP_K2", "key-two-0123456789abcdef");
        let f1 = filter("mode hash\n  hash_key_env SLUICE_MASK_PROP_K1");
        let f2 = filter("mode hash\n  hash_key_env SLUICE_MASK_PROP_K2");
        let t = format!("mail {local}@example.com");
        let a = mask_msg(&f1, &t);
        prop_assert_eq!(&a, &mask_msg(&f1, &t));
        prop_assert_ne!(&a, &mask_msg(&f2, &t));
        // The whole address becomes one token; checking the text for `local` alone would also
        // hit the "mail" prefix or the token's hex digits.
        let masked = a.unwrap_or_default();
        let token = masked.strip_prefix("mail tok_").unwrap_or_default();
        prop_assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit()), "{}", masked);
    }
}
