//! The `stdout` filter: prints each event in its format and passes every event on unchanged. The printing
//! is checked in a child process (this test binary run again), whose standard output the test reads.
mod common;

use common::sink;
use sluice_core::event::{Event, EventTime};
use sluice_core::record;

const CHILD: &str = "SLUICE_STDOUT_FILTER_CHILD";

fn emit_through(id: &str, format: &str) {
    let conf = format!(
        "<filter app.**>\n @type stdout\n{format}\n</filter>\n<match app.**>\n @type capture\n run {id}\n</match>\n"
    );
    let engine = common::engine(&conf, "stdout.conf");
    let evs = vec![
        Event::new(EventTime::new(1_700_000_000, 5), record! {"message" => "hello", "n" => 1}),
        Event::new(EventTime::new(1_700_000_001, 0), record! {"message" => "world"}),
    ];
    engine.router.emit_to_label("@ROOT", "app.web", evs.clone()).expect("emit");
    let got: Vec<Event> = sink(id).events().into_iter().map(|(_, e)| e).collect();
    assert_eq!(got, evs, "events pass unchanged");
}

#[test]
fn child_prints() {
    // Only does something when run as the child of `prints_each_event_in_its_format`.
    if std::env::var_os(CHILD).is_some() {
        emit_through("child-default", "");
        emit_through("child-json", " <format>\n  @type json\n </format>");
        emit_through("child-legacy", " output_type ltsv\n utc true");
    }
}

#[test]
fn prints_each_event_in_its_format() {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_prints", "--exact", "--test-threads", "1", "--quiet"])
        .env(CHILD, "1")
        .env("TZ", "UTC")
        .output()
        .expect("child runs");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("hello") || l.contains("world")).collect();
    assert_eq!(
        lines,
        vec![
            "2023-11-14 22:13:20.000000005 +0000 app.web: {\"message\":\"hello\",\"n\":1}",
            "2023-11-14 22:13:21.000000000 +0000 app.web: {\"message\":\"world\"}",
            "{\"message\":\"hello\",\"n\":1}",
            "{\"message\":\"world\"}",
            "2023-11-14 22:13:20.000000005 +0000 app.web: message:hello\tn:1",
            "2023-11-14 22:13:21.000000000 +0000 app.web: message:world",
        ]
    );
}

#[test]
fn an_unknown_formatter_is_an_error_at_its_line() {
    let e = common::config_errors(
        "<filter **>\n @type stdout\n <format>\n  @type nope\n </format>\n</filter>\n<match **>\n @type null\n</match>\n",
        "stdout.conf",
    );
    assert!(e.contains("stdout.conf:4") && e.contains("nope"), "{e}");
}
