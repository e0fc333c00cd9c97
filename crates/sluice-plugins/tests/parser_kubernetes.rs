//! The `kubernetes` and `multiline_kubernetes` parsers of the fluentd-kubernetes-daemonset images on klog
//! lines (the format of kubelet, kube-proxy, kube-apiserver, ... logs), and the inline `format multiline`
//! form older images wrote for the same files: same fields, same times.
use sluice_core::config::parse_str;
use sluice_core::event::{EventTime, Map};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser, Registry};
use sluice_core::record;
use sluice_plugins::parsers::time::days_from_civil;
use std::path::Path;
use std::sync::Arc;

fn parser(body: &str) -> Result<Box<dyn Parser>, String> {
    let text = format!("<source>\n  @type tail\n  <parse>\n{body}\n  </parse>\n</source>\n");
    let root = parse_str(&text, Path::new("k8s.conf")).map_err(|e| e.to_string())?;
    let source = root.sections("source").next().expect("a <source>");
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    let c = BuildCtx::new(Arc::new(r));
    c.registry.parser_of(source, "none", &c).map_err(|e| e.to_string())
}

/// klog has no year: the current one (UTC here, as the tests set `utc true`).
fn this_year_utc(m: u32, d: u32, hh: i64, mm: i64, ss: i64, nsec: u32) -> EventTime {
    let now = EventTime::now().sec;
    let mut y = 1970 + now / 31_556_952;
    while days_from_civil(y + 1, 1, 1) * 86_400 <= now {
        y += 1;
    }
    while days_from_civil(y, 1, 1) * 86_400 > now {
        y -= 1;
    }
    EventTime::new(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss, nsec)
}

fn parsed(r: Result<Option<Parsed>, ParseError>) -> (EventTime, Map) {
    match r {
        Ok(Some(Parsed { time: Some(t), record })) => (t, record),
        other => panic!("expected an event with a time, got {other:?}"),
    }
}

const KUBELET: &str = "I0504 12:00:00.123456    3368 server.go:1048] POST /stats/container/: (13.972191ms) 200 [[Go-http-client/1.1] 10.244.1.3:40537]";

#[test]
fn a_klog_line_gives_severity_time_pid_source_and_message() {
    let mut p = parser("    @type kubernetes\n    utc true").unwrap();
    let (t, r) = parsed(p.parse(KUBELET));
    assert_eq!(t, this_year_utc(5, 4, 12, 0, 0, 123_456_000));
    assert_eq!(
        r,
        record! {
            "severity" => "I",
            "pid" => "3368",
            "source" => "server.go:1048",
            "message" => "POST /stats/container/: (13.972191ms) 200 [[Go-http-client/1.1] 10.244.1.3:40537]",
        }
    );
    let (_, r) =
        parsed(p.parse("E1118 21:26:53.975789       6 proxier.go:1096] Port \"nodePort\" (:31429/tcp) was open"));
    assert_eq!(r.get("severity").and_then(|v| v.as_str()), Some("E"));
    assert_eq!(r.get("source").and_then(|v| v.as_str()), Some("proxier.go:1096"));
}

#[test]
fn parser_parameters_apply_but_the_expression_is_the_images() {
    let mut p = parser(
        "    @type kubernetes\n    expression /^(?<all>.*)$/\n    keep_time_key true\n    types pid:integer\n    utc true",
    )
    .unwrap();
    let (_, r) = parsed(p.parse(KUBELET));
    assert_eq!(r.get("time").and_then(|v| v.as_str()), Some("0504 12:00:00.123456"));
    assert_eq!(r.get("pid"), Some(&sluice_core::event::Value::Int(3368)));
    assert!(r.get("all").is_none());
}

#[test]
fn lines_that_are_not_klog_do_not_match() {
    let mut p = parser("    @type kubernetes").unwrap();
    for line in ["", "plain text", "2024-05-04T12:00:00Z stdout F hello", "I0504 no time here"] {
        assert!(matches!(p.parse(line), Err(ParseError::NotMatched(_))), "{line:?}");
    }
}

/// The lines of one kube-apiserver event whose message spans lines, then the next event.
const MULTI: [&str; 5] = [
    "I0504 12:00:01.000001       1 trace.go:205] Trace[1]: \"List\" url:/api/v1/pods (04-May-2024 12:00:00.9) (total time: 1000ms):",
    "Trace[1]: ---\"Listing from storage done\" 990ms (12:00:01.900)",
    "Trace[1]: [1.000s] [1.000s] END",
    "W0504 12:00:02.500000       1 reflector.go:324] watch of *v1.Pod ended with: too old resource version",
    "not a klog line at the start",
];

fn multiline_events(p: &mut Box<dyn Parser>) -> Vec<(EventTime, Map)> {
    let mut out = Vec::new();
    for l in &MULTI[..4] {
        if let Some(x) = p.parse(l).expect("parses") {
            out.push((x.time.expect("time"), x.record));
        }
    }
    if let Some(x) = p.flush() {
        out.push((x.time.expect("time"), x.record));
    }
    out
}

#[test]
fn multiline_kubernetes_joins_continuation_lines_into_the_message() {
    let mut p = parser("    @type multiline_kubernetes\n    utc true").unwrap();
    assert!(p.is_joining());
    let got = multiline_events(&mut p);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, this_year_utc(5, 4, 12, 0, 1, 1_000));
    assert_eq!(
        got[0].1.get("message").and_then(|v| v.as_str()),
        Some(&*format!("{}\n{}\n{}", MULTI[0].split_once("] ").unwrap().1, MULTI[1], MULTI[2]))
    );
    assert_eq!(got[0].1.get("source").and_then(|v| v.as_str()), Some("trace.go:205"));
    assert_eq!(got[1].1.get("severity").and_then(|v| v.as_str()), Some("W"));
    // A continuation line with no klog line before it is not an event.
    let mut p = parser("    @type multiline_kubernetes").unwrap();
    assert!(p.parse(MULTI[4]).is_err());
}

#[test]
fn the_inline_multiline_form_of_older_images_gives_the_same_events() {
    let inline = "    @type multiline\n    format_firstline /^\\w\\d{4}/\n    format1 /^(?<severity>\\w)(?<time>\\d{4} [^\\s]*)\\s+(?<pid>\\d+)\\s+(?<source>[^ \\]]+)\\] (?<message>.*)/\n    time_format %m%d %H:%M:%S.%N\n    utc true";
    let a = multiline_events(&mut parser(inline).unwrap());
    let b = multiline_events(&mut parser("    @type multiline_kubernetes\n    utc true").unwrap());
    assert_eq!(a, b);
    // And the single-line parser agrees on a line without continuation.
    let (t, r) = parsed(parser("    @type kubernetes\n    utc true").unwrap().parse(MULTI[3]));
    assert_eq!((t, r), b[1].clone());
}
