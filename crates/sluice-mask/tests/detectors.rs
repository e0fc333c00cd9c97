//! Per detector: true positives in Korean and English sentences, near misses, and each mode's exact output.
mod common;
use common::*;
use sluice_core::event::{Map, Value};

fn all() -> sluice_mask::MaskFilter {
    filter("detectors all")
}

/// Asserts `text` masks to `want` with every detector on.
#[track_caller]
fn masks(text: &str, want: &str) {
    assert_eq!(mask_msg(&all(), text).as_deref(), Some(want), "input: {text}");
}

#[track_caller]
fn untouched(text: &str) {
    assert_eq!(mask_msg(&all(), text).as_deref(), Some(text), "look-alike was masked");
}

#[test]
fn email() {
    masks("login ok user=lee.hyun65@test.example.org", "login ok user=[REDACTED:email]");
    masks("담당자 jsoo_park68@example.co.kr 에게 연락", "담당자 [REDACTED:email] 에게 연락");
    masks("메일:gildong@example.com입니다", "메일:[REDACTED:email]입니다");
    untouched("user@localhost failed");
    untouched("git@ version 2.1");
    untouched("a@b.c0m is not an address");
}

#[test]
fn phone() {
    masks("contact phone: 010-4109-5904", "contact phone: [REDACTED:phone]");
    masks("SMS 발송 대상 01056532771 인증번호 전송", "SMS 발송 대상 [REDACTED:phone] 인증번호 전송");
    masks("대표번호 02-2943-6714로 연락", "대표번호 [REDACTED:phone]로 연락");
    masks("call 010 1234 5678 now", "call [REDACTED:phone] now");
    masks("contact phone: +82-10-8859-8440", "contact phone: [REDACTED:phone]");
    masks("intl +82 2 312 3456", "intl [REDACTED:phone]");
    masks("US +1-415-555-0132 ok", "US [REDACTED:phone] ok");
    untouched("order 010123456789012 shipped"); // inside a longer number
    untouched("id A01012345678 ok"); // after a letter
    untouched("build 010-1234-5678-9 failed"); // a longer dashed id
    untouched("count 099-123-4567"); // no such area code
}

#[test]
fn registration_numbers() {
    masks("identity check rrn=720919-1184013 result=ok", "identity check rrn=[REDACTED:kr_rrn] result=ok");
    masks("본인확인 실패 주민번호 9605191741041 재시도", "본인확인 실패 주민번호 [REDACTED:kr_rrn] 재시도");
    masks("외국인등록번호 550101-6957659 조회", "외국인등록번호 [REDACTED:kr_frn] 조회");
    // issued after October 2020: no valid check digit, still personal data by default
    masks("rrn 210315-4000001", "rrn [REDACTED:kr_rrn]");
    untouched("주문번호 611824-3158683 배송 시작"); // month 18
    untouched("주문번호 960230-1234567 배송"); // 30 February
    untouched("ref 960519-9741041"); // gender digit 9
    untouched("timestamp 1632351928838 processed");
    untouched("x 19605191741041 y"); // 14 digits
}

#[test]
fn strict_checksum() {
    let f = filter("strict_checksum true");
    assert_eq!(mask_msg(&f, "rrn 800101-1234560").as_deref(), Some("rrn [REDACTED:kr_rrn]"));
    assert_eq!(mask_msg(&f, "rrn 800101-1234567").as_deref(), Some("rrn 800101-1234567"));
}

#[test]
fn card() {
    masks(
        "payment approved card=4339-6217-2321-6682 amount=12000",
        "payment approved card=[REDACTED:card] amount=12000",
    );
    masks("결제 완료: 카드번호 9410049996228302, 금액 12,000원", "결제 완료: 카드번호 [REDACTED:card], 금액 12,000원");
    masks("amex 3782 822463 10005 ok", "amex [REDACTED:card] ok");
    masks("card 4111 1111 1111 1111 approved", "card [REDACTED:card] approved");
    untouched("tx id 4339-6217-2321-6683 committed"); // wrong Luhn digit
    untouched("id 1234567812345670 ok"); // Luhn-valid, no issuer
    untouched("trace 41111111111111110 x"); // 17 digits, Luhn fails
    untouched("v4111111111111111"); // after a letter
    untouched("trace_id=eaff309cad68386d070c415ed7e70cad span ok");
}

#[test]
fn ip_addresses() {
    masks("client 192.168.10.1 connected", "client [REDACTED:ipv4] connected");
    masks("client 2001:db8::1 connected", "client [REDACTED:ipv6] connected");
    masks("peer [fe80::1ff:fe23:4567:890a]:443", "peer [[REDACTED:ipv6]]:443");
    untouched("build version 7.16.44 deployed");
    untouched("version 1.2.3.4.5");
    untouched("addr 256.1.1.1");
    untouched("time 12:30:45 ok");
    untouched("hash a1b2:c3d4 ok");
}

#[test]
fn passport_and_licence() {
    masks("여권번호 M41777631 본인확인", "여권번호 [REDACTED:kr_passport] 본인확인");
    masks("passport M123A4567 ok", "passport [REDACTED:kr_passport] ok");
    masks("면허번호 11-19-123456-01 확인", "면허번호 [REDACTED:kr_driver_license] 확인");
    untouched("model XM41777631 ok");
    untouched("sku Z41777631 ok");
    untouched("code 99-19-123456-01 ok");
}

#[test]
fn secrets() {
    masks("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:aws_access_key] used");
    masks(
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done",
        "aws_secret_access_key=[REDACTED:aws_secret_key] done",
    );
    masks(
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
        "token [REDACTED:jwt] end",
    );
    masks("Authorization: Bearer abcDEF123456ghiJKL", "Authorization: Bearer [REDACTED:bearer_token]");
    masks("login password=hunter2 user=kim", "login password=[REDACTED:password] user=kim");
    masks(r#"{"user":"kim","password":"p@ss w0rd"}"#, r#"{"user":"kim","password":"[REDACTED:password]"}"#);
    masks(r#"body {\"password\":\"s3cret\"}"#, r#"body {\"password\":\"[REDACTED:password]\"}"#);
    masks("비밀번호: 1q2w3e4r 입력", "비밀번호: [REDACTED:password] 입력");
    untouched("password reset mail sent");
    untouched("비밀번호 재설정 메일 발송");
    untouched("key XAKIAIOSFODNN7EXAMPLE used");
    untouched("Bearer short");
    untouched("eyJhbGciOiJIUzI1NiJ9 alone");
}

#[test]
fn user_rules() {
    let f = filter(
        r#"
  <rule>
    name employee_id
    pattern EMP-[0-9]{6}
  </rule>
  <rule>
    name gift_card
    pattern \b[0-9]{16}\b
    validator luhn
  </rule>"#,
    );
    assert_eq!(mask_msg(&f, "by EMP-123456 ok").as_deref(), Some("by [REDACTED:employee_id] ok"));
    assert_eq!(mask_msg(&f, "gift 1234567812345670").as_deref(), Some("gift [REDACTED:gift_card]"));
    assert_eq!(mask_msg(&f, "gift 1234567812345671").as_deref(), Some("gift 1234567812345671"));
    assert_eq!(f.metrics().masked("employee_id"), 1);
    assert!(try_filter("<rule>\n name bad\n pattern ([a-\n</rule>").is_err());
    assert!(try_filter("<rule>\n name email\n pattern x\n</rule>").is_err());
}

#[test]
fn detectors_choose_what_runs() {
    let f = filter("detectors email");
    assert_eq!(mask_msg(&f, "a@example.com 010-1234-5678").as_deref(), Some("[REDACTED:email] 010-1234-5678"));
    assert!(try_filter("detectors email,nope").is_err());
}

#[test]
fn modes() {
    let f = filter("mode partial");
    assert_eq!(mask_msg(&f, "tel 010-1234-5678").as_deref(), Some("tel 010-****-5678"));
    assert_eq!(mask_msg(&f, "card 4111-1111-1111-1111").as_deref(), Some("card ****-****-****-1111"));
    assert_eq!(mask_msg(&f, "mail gildong@example.com").as_deref(), Some("mail g******@example.com"));
    assert_eq!(mask_msg(&f, "rrn 960519-1741041").as_deref(), Some("rrn ******-***1041"));
    assert_eq!(mask_msg(&f, "password=hunter2").as_deref(), Some("password=********"));

    std::env::set_var("SLUICE_MASK_TEST_KEY", "0123456789abcdef0123456789abcdef");
    let f = filter("mode hash\n  hash_key_env SLUICE_MASK_TEST_KEY");
    let a = mask_msg(&f, "tel 010-1234-5678").expect("kept");
    let b = mask_msg(&f, "다른 로그 01012345678").expect("kept");
    let tok = a.strip_prefix("tel ").expect("prefix");
    assert!(tok.starts_with("tok_") && tok.len() == 20, "{tok}");
    assert_eq!(b, format!("다른 로그 {tok}"), "same number, same token");

    let f = filter("detector_modes card:remove,phone:partial");
    assert_eq!(mask_msg(&f, "card 4111111111111111"), None, "remove drops the field");
    assert_eq!(mask_msg(&f, "tel 010-1234-5678 a@example.com").as_deref(), Some("tel 010-****-5678 [REDACTED:email]"));

    assert!(try_filter("mode hash").is_err(), "hash needs a key");
    assert!(try_filter("mode hash\n  hash_key_env SLUICE_MASK_NO_SUCH_VAR").is_err());
    assert!(try_filter("mode shred").is_err());
}

#[test]
fn hash_key_from_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let k1 = dir.path().join("k1");
    let k2 = dir.path().join("k2");
    std::fs::write(&k1, "first-key-0123456789abcdef\n").expect("write");
    std::fs::write(&k2, "second-key-0123456789abcdef\n").expect("write");
    let f1 = filter(&format!("mode hash\n  hash_key_file {}", k1.display()));
    let f2 = filter(&format!("mode hash\n  hash_key_file {}", k2.display()));
    let t = "a gildong@example.com";
    assert_eq!(mask_msg(&f1, t), mask_msg(&f1, t));
    assert_ne!(mask_msg(&f1, t), mask_msg(&f2, t));
    std::fs::write(&k1, "short").expect("write");
    assert!(try_filter(&format!("mode hash\n  hash_key_file {}", k1.display())).is_err());
}

fn rec(json: &str) -> Map {
    sluice_core::event::parse_json_map(json.as_bytes()).expect("json")
}

fn to_json(m: &Map) -> String {
    let mut out = Vec::new();
    sluice_core::event::write_json_map(m, &mut out);
    String::from_utf8(out).expect("utf8")
}

#[test]
fn fields_keys_and_nesting() {
    // scan_all (default without keys): nested maps and arrays, numbers too
    let f = filter("");
    let mut r = rec(r#"{"a":{"b":["x 010-1234-5678",{"c":"gildong@example.com"}]},"n":4111111111111111,"ok":12}"#);
    f.mask_record(&mut r).expect("ok");
    assert_eq!(
        to_json(&r),
        r#"{"a":{"b":["x [REDACTED:phone]",{"c":"[REDACTED:email]"}]},"n":"[REDACTED:card]","ok":12}"#
    );

    // sensitive field names, whatever the content
    let mut r = rec(r#"{"user":{"Password":"x","cardNumber":"not a number","phone":null,"token":"abc"}}"#);
    f.mask_record(&mut r).expect("ok");
    assert_eq!(
        to_json(&r),
        r#"{"user":{"Password":"[REDACTED:password]","cardNumber":"[REDACTED:card]","phone":null,"token":"[REDACTED:sensitive_key]"}}"#
    );

    // keys: only the named fields are scanned; skip_keys; key_modes
    let f = filter("keys $.user.note,$['items'][1]\n  skip_keys $.user.password\n  key_modes $.user.note:partial");
    let mut r = rec(
        r#"{"msg":"a@example.com","user":{"note":"tel 010-1234-5678","password":"kept"},"items":["010-1111-2222","010-3333-4444"]}"#,
    );
    f.mask_record(&mut r).expect("ok");
    assert_eq!(
        to_json(&r),
        r#"{"msg":"a@example.com","user":{"note":"tel 010-****-5678","password":"kept"},"items":["010-1111-2222","[REDACTED:phone]"]}"#
    );

    // configurable sensitive names
    let f = filter("sensitive_keys []\n  extra_sensitive_keys customer_no");
    let mut r = rec(r#"{"password":"plain","customer_no":"C-1"}"#);
    f.mask_record(&mut r).expect("ok");
    assert_eq!(to_json(&r), r#"{"password":"plain","customer_no":"[REDACTED:sensitive_key]"}"#);

    assert!(try_filter("scan_all false").is_err());
    assert!(try_filter("keys $..bad").is_err());
}

#[test]
fn keys_are_fluentd_record_accessors() {
    // A negative index counts from the end, as in Fluentd's record accessor.
    let f = filter("keys $.items[-1]");
    let mut r = rec(r#"{"items":["010-1111-2222","010-3333-4444"]}"#);
    f.mask_record(&mut r).expect("ok");
    assert_eq!(to_json(&r), r#"{"items":["010-1111-2222","[REDACTED:phone]"]}"#);
    // Whitespace in dot notation is an error there too, and the message says what to write instead.
    let e = try_filter("keys $.user note").err().expect("invalid accessor");
    assert!(e.to_string().contains("bracket notation"), "{e}");
}

#[test]
fn fail_closed_and_counters() {
    use sluice_core::event::{Event, EventTime};
    use sluice_core::plugin::{ErrorEvents, Filter};
    let f = filter("max_value_size 64");
    let mut ok = Map::new();
    ok.insert("message", Value::from("mail gildong@example.com tel 010-1234-5678"));
    let mut bad = Map::new();
    bad.insert("message", Value::Bytes(vec![0x66, 0xff, 0xfe, b'0', b'1', b'0']));
    bad.insert("email", Value::from("kim@example.com"));
    let mut big = Map::new();
    big.insert("message", Value::from(format!("{} gildong@example.com", "x".repeat(100))));
    let mut events = vec![
        Event::new(EventTime::default(), ok),
        Event::new(EventTime::default(), bad),
        Event::new(EventTime::default(), big),
    ];
    let mut errors = ErrorEvents::default();
    f.filter("app", &mut events, &mut errors);
    assert_eq!(events.len(), 1);
    assert_eq!(errors.events.len(), 2, "unreadable records go to @ERROR");
    for (ev, reason) in &errors.events {
        let json = to_json(&ev.record);
        assert!(!json.contains("gildong") && !json.contains("kim@"), "error record leaks: {json}");
        assert!(reason.starts_with("mask:"), "{reason}");
    }
    let m = f.metrics();
    assert_eq!(m.masked("email"), 2);
    assert_eq!(m.masked("phone"), 1);
    assert_eq!(m.records_failed.load(std::sync::atomic::Ordering::Relaxed), 2);

    let f = filter("on_error drop");
    let mut bad = Map::new();
    bad.insert("message", Value::Bytes(vec![0xff]));
    let mut events = vec![Event::new(EventTime::default(), bad)];
    let mut errors = ErrorEvents::default();
    f.filter("app", &mut events, &mut errors);
    assert!(events.is_empty() && errors.is_empty());
}

#[test]
fn documented_examples() {
    std::env::set_var("SLUICE_MASK_DOC_KEY", "doc-example-key-0123456789abcdef");
    let f = filter(
        "detectors card,email,phone,kr_rrn\n  keys $.message,$.customer\n  detector_modes card:partial,email:hash\n  key_modes $.cvv:remove\n  hash_key_env SLUICE_MASK_DOC_KEY",
    );
    let mut r =
        rec(r#"{"message":"승인 카드 4111-1111-1111-1111","customer":{"email":"kim@example.com"},"cvv":"123"}"#);
    f.mask_record(&mut r).expect("ok");
    let out = to_json(&r);
    assert!(out.starts_with(r#"{"message":"승인 카드 ****-****-****-1111","customer":{"email":"tok_"#), "{out}");
    assert!(!out.contains("cvv") && !out.contains("kim@"), "{out}");

    let f = filter(
        "detectors all\n  skip_keys $.trace_id\n  extra_sensitive_keys verification_code\n  <rule>\n    name employee_id\n    pattern EMP-[0-9]{6}\n  </rule>",
    );
    let mut r = rec(
        r#"{"email":"lee@example.com","password":"hunter2","msg":"가입 010-1234-5678 추천인 EMP-123456","trace_id":"a1b2","verification_code":"9921"}"#,
    );
    f.mask_record(&mut r).expect("ok");
    assert_eq!(
        to_json(&r),
        r#"{"email":"[REDACTED:email]","password":"[REDACTED:password]","msg":"가입 [REDACTED:phone] 추천인 [REDACTED:employee_id]","trace_id":"a1b2","verification_code":"[REDACTED:sensitive_key]"}"#
    );
    assert_eq!(mask_msg(&all(), "카드번호4111111111111111로").as_deref(), Some("카드번호[REDACTED:card]로"));
}

#[test]
fn too_deep_fails_closed() {
    let f = filter("");
    let mut v = Value::from("gildong@example.com");
    for _ in 0..80 {
        let mut m = Map::new();
        m.insert("n", v);
        v = Value::Map(m);
    }
    let mut r = Map::new();
    r.insert("deep", v);
    assert!(f.mask_record(&mut r).is_err());
    assert!(!to_json(&r).contains("gildong"));
}
