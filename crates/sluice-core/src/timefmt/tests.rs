use super::civil::{civil_from_days, days_from_civil, Tm};
use super::*;
use crate::event::EventTime;

fn fmt(f: &str, tz: Option<&str>, t: EventTime) -> String {
    TimeFormatter::new(Some(f), false, tz).unwrap().format(t)
}

fn parse(f: &str, tz: Option<&str>, s: &str) -> Result<EventTime, String> {
    TimeParser::new(Some(f), false, tz).unwrap().parse(s)
}

// 2024-05-01T12:34:56.123456789Z, a Wednesday, day 122.
const T: EventTime = EventTime::new(1_714_566_896, 123_456_789);

#[test]
fn calendar_round_trip() {
    for d in [-800_000i64, -1, 0, 1, 59, 10_000, 19_844, 2_932_896] {
        let (y, m, dd) = civil_from_days(d);
        assert_eq!(days_from_civil(y, m, dd), d);
    }
}

#[test]
fn strftime_basics() {
    assert_eq!(fmt("%Y-%m-%dT%H:%M:%S%z", None, T), "2024-05-01T12:34:56+0000");
    assert_eq!(fmt("%Y-%m-%dT%H:%M:%S.%N%:z", None, T), "2024-05-01T12:34:56.123456789+00:00");
    assert_eq!(fmt("%Y-%m-%dT%H:%M:%S.%3N", None, T), "2024-05-01T12:34:56.123");
    assert_eq!(fmt("%L|%6N|%N|%12N", None, T), "123|123456|123456789|123456789000");
    assert_eq!(fmt("%d/%b/%Y:%H:%M:%S %z", Some("+09:00"), T), "01/May/2024:21:34:56 +0900");
    assert_eq!(fmt("%a %A %b %B %^b %^a %#B", None, T), "Wed Wednesday May May MAY WED MAY");
    assert_eq!(fmt("%e|%-d|%_m|%j|%y|%C|%u|%w", None, T), " 1|1| 5|122|24|20|3|3");
    assert_eq!(fmt("%I %l %p %P %#p", None, EventTime::new(1_714_522_000, 0)), "12 12 AM am am");
    assert_eq!(fmt("%s %Q", None, T), "1714566896 1714566896123");
    assert_eq!(fmt("%F %T | %D | %R | %r", None, T), "2024-05-01 12:34:56 | 05/01/24 | 12:34 | 12:34:56 PM");
    assert_eq!(fmt("%c", None, T), "Wed May  1 12:34:56 2024");
    assert_eq!(fmt("%::z %Z", Some("-05:30"), T), "-05:30:00 ");
    assert_eq!(fmt("%Z %z", Some("UTC"), T), "UTC +0000");
    assert_eq!(fmt("100%% %Ex %n", None, T), "100% %Ex \n");
    assert_eq!(fmt("%5Y|%-H|%10A|%010d", None, T), "02024|12| Wednesday|0000000001");
    assert_eq!(fmt("%G-W%V-%u %U %W", None, T), "2024-W18-3 17 18");
    assert_eq!(fmt("%G-W%V", None, EventTime::new(1_704_067_200 - 86_400, 0)), "2023-W52"); // 2023-12-31
    assert_eq!(fmt("%G-W%V", None, EventTime::new(1_735_603_200, 0)), "2025-W01");
    // 2024-12-31
}

#[test]
fn strftime_named_zones() {
    assert_eq!(fmt("%Y-%m-%d %H:%M:%S %z %Z", Some("Asia/Seoul"), T), "2024-05-01 21:34:56 +0900 KST");
    // Daylight saving time: New York is -04:00 in May, -05:00 in January.
    assert_eq!(fmt("%H:%M %:z %Z", Some("America/New_York"), T), "08:34 -04:00 EDT");
    assert_eq!(fmt("%H:%M %:z %Z", Some("America/New_York"), EventTime::new(1_704_112_200, 0)), "07:30 -05:00 EST");
    assert!(TimeFormatter::new(None, false, Some("Mars/Olympus")).is_err());
    assert!(TimeFormatter::new(None, false, Some("+25:00")).is_err());
}

#[test]
fn default_format_is_iso8601() {
    assert_eq!(TimeFormatter::new(None, false, None).unwrap().format(T), "2024-05-01T12:34:56Z");
    assert_eq!(TimeFormatter::new(None, false, Some("+0900")).unwrap().format(T), "2024-05-01T21:34:56+09:00");
    assert_eq!(TimeFormatter::new(None, true, Some("Asia/Tokyo")).unwrap().format(T), "2024-05-01T21:34:56+09:00");
}

#[test]
fn cache_keeps_fractions_right() {
    let f = TimeFormatter::new(Some("%H:%M:%S.%L [%N] %Q"), false, None).unwrap();
    assert!(f.has_subsec());
    assert_eq!(f.format(EventTime::new(10, 1_000_000)), "00:00:10.001 [001000000] 10001");
    assert_eq!(f.format(EventTime::new(10, 999_000_000)), "00:00:10.999 [999000000] 10999");
    assert_eq!(f.format(EventTime::new(11, 0)), "00:00:11.000 [000000000] 11000");
    let mut s = String::from(">");
    f.format_into(EventTime::new(11, 5), &mut s);
    assert_eq!(s, ">00:00:11.000 [000000005] 11000");
    let g = TimeFormatter::new(Some("%Y"), false, None).unwrap();
    assert!(!g.has_subsec());
    assert_eq!(g.format(T), "2024");
    assert_eq!(g.clone().format(T), "2024");
}

#[test]
fn strptime_fluentd_examples() {
    // Fluentd docs: apache/nginx time format.
    assert_eq!(parse("%d/%b/%Y:%H:%M:%S %z", None, "28/Feb/2013:12:00:00 +0900"), Ok(EventTime::new(1_362_020_400, 0)));
    // The regexp parser example: no zone, UTC.
    assert_eq!(parse("%Y-%m-%d %H:%M:%S %z", None, "2013-02-28 12:00:00 +0900"), Ok(EventTime::new(1_362_020_400, 0)));
    assert_eq!(parse("%Y-%m-%dT%H:%M:%S.%NZ", None, "2024-05-01T12:34:56.123456789Z"), Ok(T));
    assert_eq!(
        parse("%Y-%m-%dT%H:%M:%S.%L%z", None, "2024-05-01T21:34:56.123+09:00"),
        Ok(EventTime::new(T.sec, 123_000_000))
    );
    assert_eq!(parse("%Y-%m-%d %H:%M:%S", Some("+09:00"), "2024-05-01 21:34:56"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(parse("%Y-%m-%d %H:%M:%S", Some("Asia/Seoul"), "2024-05-01 21:34:56"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(
        parse("%Y-%m-%d %H:%M:%S", Some("America/New_York"), "2024-05-01 08:34:56"),
        Ok(EventTime::new(T.sec, 0))
    );
    assert_eq!(parse("%s", None, "1362020400"), Ok(EventTime::new(1_362_020_400, 0)));
    assert_eq!(parse("%s.%N", None, "1362020400.5"), Ok(EventTime::new(1_362_020_400, 500_000_000)));
    assert_eq!(parse("%Q", None, "1362020400123"), Ok(EventTime::new(1_362_020_400, 123_000_000)));
    assert_eq!(parse("%j %Y", None, "122 2024"), Ok(EventTime::new(1_714_521_600, 0)));
    assert_eq!(parse("%m/%d/%y %I:%M:%S %p", None, "05/01/24 12:34:56 PM"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(parse("%m/%d/%y %I:%M %p", None, "05/01/24 12:00 am"), Ok(EventTime::new(1_714_521_600, 0)));
    assert_eq!(parse("%B %e %Y %T", None, "may  1 2024 12:34:56"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(parse("%a, %d %b %Y %T %Z", None, "Wed, 01 May 2024 12:34:56 GMT"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(parse("%F %T %Z", None, "2024-05-01 21:34:56 Asia/Tokyo"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(parse("%F %T %z", None, "2024-05-01 12:34:56 UTC"), Ok(EventTime::new(T.sec, 0)));
    // Whitespace in the format matches any run of whitespace.
    assert_eq!(parse("%F %T", None, "2024-05-01\t  12:34:56"), Ok(EventTime::new(T.sec, 0)));
}

#[test]
fn strptime_missing_year_is_current_year() {
    let year = Tm::at(EventTime::now().sec, &Zone::Utc).year;
    let t = parse("%b %d %H:%M:%S", None, "Jan  2 03:04:05").unwrap();
    assert_eq!(t.sec, days_from_civil(year, 1, 2) * 86_400 + 3 * 3600 + 4 * 60 + 5);
    // Only a time of day: today.
    let t = parse("%H:%M:%S", None, "00:00:01").unwrap();
    let today = EventTime::now().sec.div_euclid(86_400);
    assert!((today - 1..=today).contains(&t.sec.div_euclid(86_400)));
}

#[test]
fn strptime_errors() {
    assert!(parse("%Y-%m-%d", None, "2024-13-01").is_err());
    assert!(parse("%Y-%m-%d", None, "2024-05").is_err());
    assert!(parse("%Y-%m-%d", None, "2024-05-01 junk").is_err());
    assert!(parse("%Y-%m-%d", None, "").is_err());
    assert!(parse("%d/%b/%Y", None, "01/Mai/2024").is_err());
    assert!(parse("%H:%M:%S %z", None, "12:00:00 +99:00").is_err());
    assert!(parse("%I %p", None, "13 PM").is_err());
    assert!(parse("%Y-%m-%d", None, "２０２４-05-01").is_err());
    assert!(TimeParser::new(Some("%Y"), false, Some("Nowhere/City")).is_err());
    // Trailing whitespace is fine.
    assert_eq!(parse("%Y-%m-%d", None, "2024-05-01 \n"), Ok(EventTime::new(1_714_521_600, 0)));
}

#[test]
fn no_format_parses_like_time_parse() {
    let p = TimeParser::new(None, false, None).unwrap();
    let want = EventTime::new(T.sec, 0);
    for s in [
        "2024-05-01T12:34:56Z",
        "2024-05-01T21:34:56+09:00",
        "2024-05-01T12:34:56",
        "2024-05-01 12:34:56 +0000",
        "2024-05-01 12:34:56 UTC",
        "2024-05-01 21:34:56 +0900",
        "2024/05/01 12:34:56",
        "01/May/2024:12:34:56 +0000",
        "Wed, 01 May 2024 12:34:56 +0000",
        "Wed May  1 12:34:56 2024",
        "Wed May 01 12:34:56 UTC 2024",
        "20240501T123456Z",
    ] {
        assert_eq!(p.parse(s), Ok(want), "{s}");
    }
    assert_eq!(p.parse("2024-05-01T12:34:56.123456789Z"), Ok(T));
    assert_eq!(p.parse("2024-05-01"), Ok(EventTime::new(1_714_521_600, 0)));
    assert!(p.parse("not a time").is_err());
    assert!(p.parse("").is_err());

    let iso = TimeParser::new(Some("%iso8601"), false, None).unwrap();
    assert_eq!(iso.parse("2024-05-01T21:34:56.123456789+09:00"), Ok(T));
    assert!(iso.parse("Wed May  1 12:34:56 2024").is_err());

    let seoul = TimeParser::new(None, false, Some("Asia/Seoul")).unwrap();
    assert_eq!(seoul.parse("2024-05-01 21:34:56"), Ok(want));
    assert_eq!(seoul.parse("2024-05-01 12:34:56 Z"), Ok(want));
}

proptest::proptest! {
    #[test]
    fn format_then_parse_round_trips(sec in -2_000_000_000i64..4_000_000_000i64, nsec in 0u32..1_000_000_000,
                                     zi in 0usize..4) {
        let zone = ["+09:00", "-05:30", "UTC", "America/New_York"][zi];
        let t = EventTime::new(sec, nsec);
        let f = TimeFormatter::new(Some("%Y-%m-%dT%H:%M:%S.%N%:z"), false, Some(zone)).unwrap();
        let text = f.format(t);
        let p = TimeParser::new(Some("%Y-%m-%dT%H:%M:%S.%N%z"), false, None).unwrap();
        proptest::prop_assert_eq!(p.parse(&text), Ok(t), "{}", text);
        let p = TimeParser::new(None, false, None).unwrap();
        proptest::prop_assert_eq!(p.parse(&text), Ok(t), "{}", text);
    }
}

#[test]
fn parse_cache_returns_same_result() {
    let p = TimeParser::new(Some("%F %T"), false, None).unwrap();
    assert_eq!(p.parse("2024-05-01 12:34:56"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(p.parse("2024-05-01 12:34:56"), Ok(EventTime::new(T.sec, 0)));
    assert_eq!(p.parse("2024-05-01 12:34:57"), Ok(EventTime::new(T.sec + 1, 0)));
    assert!(p.parse("2024-05-01 12:34").is_err());
    assert_eq!(p.parse("2024-05-01 12:34:57"), Ok(EventTime::new(T.sec + 1, 0)));
}

#[test]
fn dst_gap_and_overlap() {
    // 2024-03-10 02:30 does not exist in New York; 2024-11-03 01:30 happens twice (earlier wins).
    let p = TimeParser::new(Some("%F %T"), false, Some("America/New_York")).unwrap();
    assert!(p.parse("2024-03-10 02:30:00").is_ok());
    assert_eq!(p.parse("2024-11-03 01:30:00"), Ok(EventTime::new(1_730_611_800, 0)));
}

// Moved from buffer/config.rs with the buffer's own zone type; `Zone::parse` now says why it fails.
#[test]
fn zones_and_slices() {
    assert_eq!(Zone::Utc.slice_start(3700, 3600), 3600);
    let z = Zone::parse("+09:00").unwrap();
    // 1970-01-01T15:00+09:00 is 06:00Z; a 1d slice starts at 00:00+09:00 = -9h.
    assert_eq!(z.slice_start(6 * 3600, 86400), -9 * 3600);
    assert!(Zone::parse("Asia/Tokyo").is_ok());
    assert!(Zone::parse("Nowhere/Land").is_err());
    assert_eq!(Zone::Utc.strftime(0, "%Y%m%d%H"), "1970010100");
    // Hostile times do not overflow.
    assert_eq!(Zone::Fixed(-3600).slice_start(i64::MIN, 86400), i64::MIN.saturating_add(3600));
    // A slice start is local midnight: 23:00 UTC for +01:00.
    assert_eq!(Zone::Fixed(3600).slice_start(i64::MAX, 86400).rem_euclid(86400), 86400 - 3600);
}

// Buffer placeholders used chrono's strftime before: these are where Ruby (and so Fluentd) differs.
#[test]
fn placeholder_strftime_is_ruby() {
    let tokyo = Zone::parse("+09:00").unwrap();
    // %L and %N are Ruby's fractions (chrono rejected the whole pattern).
    assert_eq!(tokyo.strftime(0, "%Y%m%d%H%M%S.%L-%N"), "19700101090000.000-000000000");
    // %Z is empty for a fixed offset in Ruby (chrono printed the offset); a named zone has its abbreviation.
    assert_eq!(tokyo.strftime(0, "%z|%:z|%Z|%j|%s"), "+0900|+09:00||001|0");
    assert_eq!(Zone::parse("Asia/Tokyo").unwrap().strftime(0, "%H %Z"), "09 JST");
    // An unknown conversion stays as written and the rest is still formatted.
    assert_eq!(Zone::Utc.strftime(0, "%Y-%K-%m"), "1970-%K-01");
    let mut out = String::from("logs/");
    Zone::Utc.strftime_into(86_400 * 31, "%Y/%-m/%d", &mut out);
    assert_eq!(out, "logs/1970/2/01");
}

// Moved from sluice-aws (its chrono translation of Ruby's %N is gone): s3's time_slice_format.
#[test]
fn ruby_nanos() {
    assert_eq!(fmt("%Y%m%d%H %3N", None, EventTime::new(0, 5_000_000)), "1970010100 005");
    assert_eq!(fmt("%Y-%m-%dT%H:%M:%S.%N%z|%%N", None, EventTime::new(0, 5)), "1970-01-01T00:00:00.000000005+0000|%N");
    assert_eq!(Zone::Utc.strftime(0, "%Y%m%d%H"), "1970010100");
}

// Moved from sluice-plugins' parsers/time.rs with the fast path.
#[test]
fn rfc3339_fast_path() {
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00.000Z"), Some(EventTime::new(1714564800, 0)));
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00.123456789Z"), Some(EventTime::new(1714564800, 123456789)));
    assert_eq!(parse_rfc3339("2024-05-01T21:00:00.5+09:00"), Some(EventTime::new(1714564800, 500_000_000)));
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(EventTime::new(1714564800, 0)));
    assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(EventTime::new(-1, 0)));
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00"), None);
    assert_eq!(parse_rfc3339("2024-13-01T12:00:00Z"), None);
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00.Z"), None);
    assert_eq!(parse_rfc3339("2024-05-01T12:00:00Zjunk"), None);
    assert_eq!(parse_rfc3339("garbage"), None);
}

// The fast path and the full parser agree, including on offsets Ruby refuses.
#[test]
fn rfc3339_fast_path_agrees_with_strptime() {
    let full = TimeParser::new(Some("%Y-%m-%dT%H:%M:%S.%N%z"), false, None).unwrap();
    for s in ["2024-05-01T21:34:56.123456789+09:00", "2024-05-01T07:04:56.123456789-0530", "2024-05-01T12:34:56.1Z"] {
        assert_eq!(parse_rfc3339(s).ok_or(()), full.parse(s).map_err(|_| ()), "{s}");
    }
    for s in ["2024-05-01T12:34:56.123+99:00", "2024-05-01T12:34:56.123+09:60"] {
        assert_eq!(parse_rfc3339(s), None, "{s}");
        assert!(full.parse(s).is_err(), "{s}");
    }
}

// Moved from sluice-plugins' formatters/time.rs, which now asks the formatter; `%Q` (milliseconds) counts.
#[test]
fn subsec_detection() {
    let has_subsec = |f: &str| TimeFormatter::new(Some(f), false, None).unwrap().has_subsec();
    assert!(has_subsec("%H:%M:%S.%L"));
    assert!(has_subsec("%S.%3N"));
    assert!(has_subsec("%Q"));
    assert!(!has_subsec("%H:%M:%S"));
    assert!(!has_subsec("%%L"));
    assert!(!TimeFormatter::new(None, false, None).unwrap().has_subsec());
}
