//! Issue 23: personal data in the forms real logs carry it (must be found), and the look-alikes that
//! must be left alone; issue 15 item 10: numbers stored as floats. Every example the issues give.
mod common;
use common::*;
use sluice_core::event::{Map, Value};

fn all() -> sluice_mask::MaskFilter {
    filter("detectors all")
}

/// `text` with every detector on must no longer hold any of `values`, and must still hold `keep`.
#[track_caller]
fn hides(text: &str, values: &[&str]) {
    let out = mask_msg(&all(), text).expect("kept");
    for v in values {
        assert!(!out.contains(v), "{v:?} left in {out:?} (input {text:?})");
    }
    assert!(out.contains("[REDACTED:"), "nothing masked in {text:?}");
}

#[track_caller]
fn masks(text: &str, want: &str) {
    assert_eq!(mask_msg(&all(), text).as_deref(), Some(want), "input: {text}");
}

#[track_caller]
fn untouched(text: &str) {
    assert_eq!(mask_msg(&all(), text).as_deref(), Some(text), "look-alike was masked");
}

fn rec(json: &str) -> Map {
    sluice_core::event::parse_json_map(json.as_bytes()).expect("json")
}

fn to_json(m: &Map) -> String {
    let mut out = Vec::new();
    sluice_core::event::write_json_map(m, &mut out);
    String::from_utf8(out).expect("utf8")
}

#[track_caller]
fn record(f: &sluice_mask::MaskFilter, json: &str) -> String {
    let mut r = rec(json);
    f.mask_record(&mut r).expect("scannable");
    to_json(&r)
}

// ---- 1. Ruby hash-rocket ----

#[test]
fn hash_rocket() {
    masks(
        r#"Parameters: {"user"=>{"email"=>"kim@example.com", "password"=>"hunter2!"}}"#,
        r#"Parameters: {"user"=>{"email"=>"[REDACTED:email]", "password"=>"[REDACTED:password]"}}"#,
    );
    masks(
        r#"{:aws_secret_access_key=>"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", :region=>"ap-northeast-2"}"#,
        r#"{:aws_secret_access_key=>"[REDACTED:aws_secret_key]", :region=>"ap-northeast-2"}"#,
    );
    masks(r#"params {:password => 's3cr3t pass'}"#, r#"params {:password => '[REDACTED:password]'}"#);
    // Rails' own filter output is left as it is
    untouched(r#"Parameters: {"password"=>"[FILTERED]"}"#);
}

// ---- 2. A value right after an abbreviation ----

#[test]
fn after_abbreviations() {
    masks("연락처 Tel.010-8999-7524 확인", "연락처 Tel.[REDACTED:phone] 확인");
    masks("H.P.01071275510", "H.P.[REDACTED:phone]");
    masks("주민No.400206-2465121 조회", "주민No.[REDACTED:kr_rrn] 조회");
    masks("카드No.4972-0301-2345-6785 승인", "카드No.[REDACTED:card] 승인");
    // ... while a dotted word still keeps a dotted quad from being an address
    untouched("host.10.0.0.1 up");
    untouched("release v1.2.3.4 ok");
}

// ---- 3. After an escape sequence ----

#[test]
fn after_escape_sequences() {
    masks(r#"{"csv":"name,phone\r\n010-2041-9356\r\n"}"#, r#"{"csv":"name,phone\r\n[REDACTED:phone]\r\n"}"#);
    masks(r#"{"row":"\t630201-1277539\t"}"#, r#"{"row":"\t[REDACTED:kr_rrn]\t"}"#);
    masks(r#"{"b":"\nkim@example.com\n"}"#, r#"{"b":"\n[REDACTED:email]\n"}"#);
    masks(r#"\u003ctel\u003e01012345678\u003c/tel\u003e"#, r#"\u003ctel\u003e[REDACTED:phone]\u003c/tel\u003e"#);
    masks(r#"key:\nAKIAIOSFODNN7EXAMPLE"#, r#"key:\n[REDACTED:aws_access_key]"#);
    // JSON inside JSON: the escape is escaped again
    masks(r#"{\"csv\":\"a\\r\\n010-2041-9356\\r\\n\"}"#, r#"{\"csv\":\"a\\r\\n[REDACTED:phone]\\r\\n\"}"#);
}

// ---- 4. URL-encoded and form-encoded values ----

#[test]
fn url_and_form_encoded() {
    masks("GET /search?email=kim%40example.com&page=2", "GET /search?email=[REDACTED:email]&page=2");
    masks("GET /users/ops%40ex.net/orders", "GET /users/[REDACTED:email]/orders");
    masks("redirect=%2Fcb%3Femail%3Dkim%2540example.com", "redirect=%2Fcb%3Femail%3D[REDACTED:email]");
    masks("phone=%2B821075304405&ok=1", "phone=[REDACTED:phone]&ok=1");
    masks("q=010+7045+5673", "q=[REDACTED:phone]");
    masks("q=010%201413%209499&x", "q=[REDACTED:phone]&x");
    masks("card=4111+1111+1111+1111&amt=1", "card=[REDACTED:card]&amt=1");
    masks("card=4111%201111%201111%201111", "card=[REDACTED:card]");
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    masks(&format!("cb?x=1%26token%3D{jwt}"), "cb?x=1%26token%3D[REDACTED:jwt]");
    hides(&format!("h=Authorization%3A%20Bearer%20{jwt}"), &[jwt, "eyJzdWIiOiIxMjM0NTY3ODkwIn0"]);
    masks("auth=Bearer+ya29.a0AfH6SMBx3kLq9Zt7", "auth=Bearer+[REDACTED:bearer_token]");
    masks(
        "aws_secret_access_key=wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY&x=1",
        "aws_secret_access_key=[REDACTED:aws_secret_key]&x=1",
    );
    masks("password=p%40ss%2Bw0rd&next=1", "password=[REDACTED:password]&next=1");
    // Hangul domain, percent-encoded as UTF-8
    masks("to=park%40%ED%9A%8C%EC%82%AC.%ED%95%9C%EA%B5%AD&x", "to=[REDACTED:email]&x");
    // not encoded data: left alone, and a literal `+` is a country code
    untouched("cpu 100% busy, 50%-75% ok");
    masks("tel +82 10 1234 5678 ok", "tel [REDACTED:phone] ok");
}

#[test]
fn encoded_values_keep_modes() {
    let f = filter("mode partial");
    assert_eq!(mask_msg(&f, "q=010+7045+5673").as_deref(), Some("q=010+****+5673"));
}

// ---- 5. Punctuation variants ----

#[test]
fn punctuation_variants() {
    masks("문의 (010)1267-4816 담당", "문의 [REDACTED:phone] 담당");
    masks("지점 (063)883-1584", "지점 [REDACTED:phone]");
    masks("대표 (02) 312-3456.", "대표 [REDACTED:phone].");
    masks("주민번호 040503 - 3431463 확인", "주민번호 [REDACTED:kr_rrn] 확인");
    masks("등록번호 550101 -6957659", "등록번호 [REDACTED:kr_frn]");
    masks("주민번호 960519 – 1741041", "주민번호 [REDACTED:kr_rrn]");
    masks("주민번호 960519—1741041", "주민번호 [REDACTED:kr_rrn]");
    masks(r#"<password type="text">abc1</password>"#, r#"<password type="text">[REDACTED:password]</password>"#);
    masks("<user><password>hunter2</password></user>", "<user><password>[REDACTED:password]</password></user>");
    masks(
        "<Credentials><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey></Credentials>",
        "<Credentials><SecretAccessKey>[REDACTED:aws_secret_key]</SecretAccessKey></Credentials>",
    );
    masks(
        r#"body="{\\\"user\\\": \\\"kim\\\", \\\"password\\\": \\\"s3 cret\\\"}""#,
        r#"body="{\\\"user\\\": \\\"kim\\\", \\\"password\\\": \\\"[REDACTED:password]\\\"}""#,
    );
    masks("담당 park@회사.한국 으로", "담당 [REDACTED:email] 으로");
    masks("메일 park@회사.한국에서 발송", "메일 [REDACTED:email]에서 발송");
    masks("to kim@메일.example.com입니다", "to [REDACTED:email]입니다");
    // a long dotted prefix before the address
    let prefix = "com.example.platform.billing.service.impl.notification.dispatcher.handler";
    let text = format!("sent {prefix}.kim.lee@example.com ok");
    hides(&text, &["kim.lee@example.com", "lee@example.com"]);
    // CSV, SQL, XML around plain values
    masks("kim,010-1234-5678,960519-1741041", "kim,[REDACTED:phone],[REDACTED:kr_rrn]");
    masks(
        "INSERT INTO users VALUES ('kim@example.com','01012345678')",
        "INSERT INTO users VALUES ('[REDACTED:email]','[REDACTED:phone]')",
    );
    masks("UPDATE u SET password = 'x y' WHERE id=1", "UPDATE u SET password = '[REDACTED:password]' WHERE id=1");
    masks("<phone>010-1234-5678</phone>", "<phone>[REDACTED:phone]</phone>");
}

// ---- 6. Timestamps ----

#[test]
fn epoch_milliseconds_are_times() {
    let f = all();
    // 1801234567890 is 2027-01-29 and validates as a registration number (180123-4567890)
    assert_eq!(
        record(&f, r#"{"ts":1801234567890,"created_at":1801234567890,"t":"1801234567890","n":1801234567890}"#),
        r#"{"ts":1801234567890,"created_at":1801234567890,"t":"1801234567890","n":1801234567890}"#
    );
    assert_eq!(record(&f, r#"{"eventTimeMs":"1801234567890"}"#), r#"{"eventTimeMs":"1801234567890"}"#);
    untouched("ts=1801234567890 level=info");
    untouched(r#"{"timestamp":1801234567890,"msg":"ok"}"#);
    untouched("expires_at: 1801234567890");
    untouched(r#"{\"created_at\":\"1801234567890\"}"#);
    untouched("time 1801234567890 processed");
    untouched("1801234567890 INFO started");
    untouched("[1801234567890] GET /health 200");
    untouched("lastLogin=1801234567890");
    // ... but a value in the text is not a time because the line starts with a number
    masks("1801234567890 rrn 1801234567890", "1801234567890 rrn [REDACTED:kr_rrn]");
    // a number the text or the key names as a registration number is one
    masks("rrn=1801234567890", "rrn=[REDACTED:kr_rrn]");
    assert_eq!(record(&f, r#"{"jumin_no":1801234567890}"#), r#"{"jumin_no":"[REDACTED:kr_rrn]"}"#);
    assert_eq!(record(&f, r#"{"resident_id":1801234567890}"#), r#"{"resident_id":"[REDACTED:kr_rrn]"}"#);
    // outside the epoch range a number in a numeric field is still checked
    assert_eq!(record(&f, r#"{"n":9605191741041}"#), r#"{"n":"[REDACTED:kr_rrn]"}"#);
    // the dashed form is never a time
    masks("ts=960519-1741041", "ts=[REDACTED:kr_rrn]");
}

// ---- 7. User agents and versions ----

#[test]
fn user_agents_and_versions() {
    untouched("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
    untouched("Mozilla/5.0 (Macintosh) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0");
    untouched(r#"ua="okhttp/4.9.3.0" ok"#);
    // a real address in a path or after a word is still found
    masks("GET /hosts/10.1.2.3/status", "GET /hosts/[REDACTED:ipv4]/status");
    masks("client 192.168.10.1 connected", "client [REDACTED:ipv4] connected");
}

// ---- 8. Words near keywords ----

#[test]
fn words_near_keywords() {
    untouched("token_type=bearer expires_in=3600");
    untouched(r#"{"token_type":"bearer","expires_in":3600}"#);
    untouched("bearer authentication required");
    untouched(r#"WWW-Authenticate: Bearer realm="example", error="invalid_token""#);
    untouched("Bearer Authentication failed");
    untouched("PWD=/home/app SHLVL=1");
    untouched("OLDPWD=~/src");
    untouched("/etc/passwd: permission denied");
    untouched("open /etc/passwd: no such file");
    // the real thing is still found
    masks("Authorization: Bearer abcDEF123456ghiJKL", "Authorization: Bearer [REDACTED:bearer_token]");
    masks("pwd=hunter2", "pwd=[REDACTED:password]");
    masks("passwd: s3cret", "passwd: [REDACTED:password]");
}

// ---- 9. Codes shaped like numbers ----

#[test]
fn codes_shaped_like_numbers() {
    untouched("item SKU-010-3573-4598 restocked");
    untouched("ref ORD_4111111111111111 ok");
    // YYMMDD + 7 digits that validate as registration numbers, labelled as orders
    untouched("order 2401153123456 shipped");
    untouched("주문번호 240115-3123456 배송 시작");
    untouched("invoice=2401151234567");
    untouched("order no. 2401153123456");
    untouched(r#"{"orderId":"2401153123456"}"#);
    let f = all();
    assert_eq!(record(&f, r#"{"order_id":2401153123456}"#), r#"{"order_id":2401153123456}"#);
    assert_eq!(record(&f, r#"{"sku":"240115-3123456"}"#), r#"{"sku":"240115-3123456"}"#);
    // labels in front of a dash are labels, not codes
    masks("Tel-010-1234-5678", "Tel-[REDACTED:phone]");
    // the same digits labelled as personal data are masked
    masks("주민번호 240115-3123456", "주민번호 [REDACTED:kr_rrn]");
    masks("주문 고객 주민번호 240115-3123456", "주문 고객 주민번호 [REDACTED:kr_rrn]");
}

// ---- issue 15 item 10: numbers stored as floats ----

#[test]
fn numbers_stored_as_floats() {
    let f = all();
    assert_eq!(record(&f, r#"{"cf":4111111111111111.0}"#), r#"{"cf":"[REDACTED:card]"}"#);
    assert_eq!(record(&f, r#"{"cf":4.111111111111111e15}"#), r#"{"cf":"[REDACTED:card]"}"#);
    assert_eq!(record(&f, r#"{"cf":4.111111111111111E+15}"#), r#"{"cf":"[REDACTED:card]"}"#);
    assert_eq!(record(&f, r#"{"r":9605191741041.0}"#), r#"{"r":"[REDACTED:kr_rrn]"}"#);
    assert_eq!(record(&f, r#"{"a":[4111111111111111.0]}"#), r#"{"a":["[REDACTED:card]"]}"#);
    // non-integral, small and look-alike floats stay
    for clean in [r#"{"x":960519174104.5}"#, r#"{"y":1.5}"#, r#"{"z":4111111111111112.0}"#, r#"{"w":-0.0}"#] {
        assert_eq!(record(&f, clean), clean);
    }
    assert_eq!(record(&f, r#"{"ts":1801234567890.0}"#), r#"{"ts":1801234567890.0}"#);
    // the same forms inside text
    masks("cf=4111111111111111.0 ok", "cf=[REDACTED:card].0 ok");
    masks("cf=4.111111111111111e15 ok", "cf=[REDACTED:card] ok");
    masks("cf=4.111111111111111E+15", "cf=[REDACTED:card]");
    untouched("ratio 4.111111111111111e-15 ok");
    untouched("uuid 123e4567-e89b-12d3-a456-426614174000");
    // a float field from msgpack/structured input
    let mut m = Map::new();
    m.insert("n", Value::Float(5555555555554444.0));
    f.mask_record(&mut m).expect("ok");
    assert_eq!(m.get("n"), Some(&Value::from("[REDACTED:card]")));
}
