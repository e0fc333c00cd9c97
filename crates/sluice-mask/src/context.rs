//! What a field name or the words before a number say it is: a time, an order number, or a registration
//! number. Used only to overrule a registration-number (RRN/FRN) match, so it runs on the rare numbers that
//! validate as one, never on every value.

/// What a name says about the number it labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `ts`, `timestamp`, `created_at`, `expires_ms`, `시각`, ...
    Time,
    /// `order_id`, `invoice`, `sku`, `주문번호`, `송장`, ...
    Order,
    /// `rrn`, `jumin`, `resident_no`, `주민번호`, `외국인등록번호`, ...
    Registration,
    /// Nothing before the number on its line: a time when it is a plausible epoch value.
    LineStart,
    /// Says nothing (or is a filler such as `no`, `id`, `number`).
    Other,
}

/// Words that only continue a label (`order no.`, `주문 번호`): look at the word before them.
fn is_filler(part: &[u8]) -> bool {
    matches!(part, b"no" | b"num" | b"nr" | b"number" | b"id" | b"#") || part == "번호".as_bytes()
}

fn part_label(p: &[u8]) -> Label {
    match p {
        b"rrn" | b"frn" | b"ssn" | b"jumin" | b"juminno" | b"resident" | b"registration" | b"foreigner" => {
            Label::Registration
        }
        b"ts" | b"time" | b"times" | b"timestamp" | b"tstamp" | b"date" | b"datetime" | b"epoch" | b"millis"
        | b"ms" | b"msec" | b"msecs" | b"at" | b"expires" | b"expiry" | b"exp" | b"iat" | b"nbf" | b"created"
        | b"updated" | b"modified" | b"deleted" | b"started" | b"ended" | b"since" | b"until" | b"clock" | b"last"
        | b"login" | b"logout" | b"seen" | b"expire" | b"expired" | b"expiration" | b"issued" | b"when" | b"start"
        | b"end" | b"begin" | b"finished" | b"completed" | b"scheduled" | b"deadline" => Label::Time,
        b"order" | b"orders" | b"orderid" | b"orderno" | b"invoice" | b"sku" | b"receipt" | b"tracking"
        | b"shipment" | b"waybill" => Label::Order,
        _ if !p.is_ascii() => hangul_label(p),
        _ => Label::Other,
    }
}

fn hangul_label(p: &[u8]) -> Label {
    let has = |w: &str| memchr::memmem::find(p, w.as_bytes()).is_some();
    if has("주민") || has("외국인") {
        Label::Registration
    } else if has("주문") || has("송장") || has("영수증") {
        Label::Order
    } else if has("시각") || has("시간") || has("일시") || has("날짜") {
        Label::Time
    } else {
        Label::Other
    }
}

/// Classify a name by its parts: `created_at` → `created` + `at`, `eventTimeMs` → `event` + `time` + `ms`,
/// `ORDER-ID` → `order` + `id`. A registration part wins, then order, then time.
pub fn classify(name: &[u8]) -> Label {
    let mut best = Label::Other;
    let mut lower = [0u8; 24];
    let mut visit = |part: &[u8], best: &mut Label| {
        if part.is_empty() || part.len() > lower.len() {
            if !part.is_ascii() && !part.is_empty() {
                *best = rank(*best, hangul_label(part));
            }
            return;
        }
        let l = &mut lower[..part.len()];
        l.copy_from_slice(part);
        l.make_ascii_lowercase();
        *best = rank(*best, part_label(l));
    };
    let mut s = 0;
    let n = name.len();
    let mut i = 0;
    while i < n {
        let c = name[i];
        let split = c.is_ascii() && !c.is_ascii_alphanumeric();
        // camelCase: a capital after a lower-case letter starts a part
        let camel = i > s && c.is_ascii_uppercase() && name[i - 1].is_ascii_lowercase();
        if split || camel {
            visit(&name[s..i], &mut best);
            s = if split { i + 1 } else { i };
        }
        i += 1;
    }
    if s < n {
        visit(&name[s..], &mut best);
    }
    best
}

fn rank(a: Label, b: Label) -> Label {
    let r = |l: Label| match l {
        Label::Registration => 3,
        Label::Order => 2,
        Label::Time => 1,
        Label::LineStart | Label::Other => 0,
    };
    if r(b) > r(a) {
        b
    } else {
        a
    }
}

/// The label the text gives the number starting at `start`: the nearest word before it that is not a
/// filler, across separators (`ts=`, `"created_at":`, `order no. `, `주문번호: `), at most three words back.
pub fn label_before(b: &[u8], start: usize) -> Label {
    let mut p = start;
    for round in 0..3 {
        // separators between a label and its value
        let mut skipped = 0;
        while p > 0
            && skipped < 8
            && matches!(b[p - 1], b' ' | b'\t' | b':' | b'=' | b'"' | b'\'' | b'\\' | b'.' | b'#' | b'>' | b'[' | b'(')
        {
            p -= 1;
            skipped += 1;
        }
        let e = p;
        // the start of a line (`1801234567890 INFO ...`, `[1801234567890]`): where logs put their time
        if round == 0 && (p == 0 || b[p - 1] == b'\n') && (p == start || (p + 1 == start && b[p] == b'[')) {
            return Label::LineStart;
        }
        while p > 0
            && e - p < 48
            && (b[p - 1].is_ascii_alphanumeric() || matches!(b[p - 1], b'_' | b'-') || !b[p - 1].is_ascii())
        {
            p -= 1;
        }
        if p == e {
            return Label::Other;
        }
        let word = &b[p..e];
        let mut lower = [0u8; 8];
        let filler = word.len() <= lower.len() && {
            let l = &mut lower[..word.len()];
            l.copy_from_slice(word);
            l.make_ascii_lowercase();
            is_filler(l)
        };
        if !filler {
            return classify(word);
        }
    }
    Label::Other
}

/// Epoch milliseconds that can be a time in a log: 2001-09-09 (the first 13-digit value) to 2033-05-18.
/// Inside this range about 5 % of all values also validate as a registration number (a fifth from
/// 2027-01-29 to 2027-06-13); see docs/plugins/mask.md.
pub const EPOCH_MS: std::ops::Range<u64> = 1_000_000_000_000..2_000_000_000_000;

/// A 13-digit number (ASCII digits) that is a plausible epoch-milliseconds value.
pub fn plausible_epoch_ms(digits: &[u8]) -> bool {
    digits.len() == 13
        && digits.iter().all(u8::is_ascii_digit)
        && EPOCH_MS.contains(&digits.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify(b"created_at"), Label::Time);
        assert_eq!(classify(b"createdAt"), Label::Time);
        assert_eq!(classify(b"eventTimeMs"), Label::Time);
        assert_eq!(classify(b"ts"), Label::Time);
        assert_eq!(classify(b"order_id"), Label::Order);
        assert_eq!(classify(b"orderId"), Label::Order);
        assert_eq!(classify("주문번호".as_bytes()), Label::Order);
        assert_eq!(classify(b"rrn_updated_at"), Label::Registration);
        assert_eq!(classify("주민번호".as_bytes()), Label::Registration);
        assert_eq!(classify(b"chat"), Label::Other);
        assert_eq!(classify(b"format"), Label::Other);
        assert_eq!(classify(b"message"), Label::Other);
    }

    #[test]
    fn words_before() {
        let at = |s: &str, num: &str| label_before(s.as_bytes(), s.find(num).expect("num"));
        assert_eq!(at("ts=1801234567890", "1801"), Label::Time);
        assert_eq!(at(r#"{"created_at":1801234567890}"#, "1801"), Label::Time);
        assert_eq!(at(r#"{\"timestamp\":\"1801234567890\"}"#, "1801"), Label::Time);
        assert_eq!(at("order no. 2401153123456", "2401"), Label::Order);
        assert_eq!(at("주문번호: 240115-3123456", "2401"), Label::Order);
        assert_eq!(at("identity check rrn=1302224487050", "1302"), Label::Registration);
        assert_eq!(at("본인확인 실패 주민번호 9605191741041", "9605"), Label::Registration);
        assert_eq!(at("1801234567890", "1801"), Label::LineStart);
        assert_eq!(at("[1801234567890] INFO", "1801"), Label::LineStart);
        assert_eq!(at("No.1801234567890", "1801"), Label::Other);
        assert_eq!(at("lastLogin=1801234567890", "1801"), Label::Time);
        assert_eq!(at("processed 1801234567890", "1801"), Label::Other);
    }

    #[test]
    fn epoch_range() {
        assert!(plausible_epoch_ms(b"1801234567890"));
        assert!(!plausible_epoch_ms(b"9605191741041"));
        assert!(!plausible_epoch_ms(b"0107223585176"));
        assert!(!plausible_epoch_ms(b"180123456789"));
    }
}
