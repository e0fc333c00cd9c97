//! `concat` through the real engine: every joining mode of fluent-plugin-concat, streams, partial markers,
//! and lines held back that must never be lost (flush timer to `timeout_label` or `@ERROR`, shutdown).
mod common;

use common::sink;
use sluice_core::event::{Event, EventTime, Map};
use sluice_core::record;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// `<filter app.**>` concat with `params`, then a capture `run ID` for what passes (and `@ERROR` to
/// `ID-err`, `@TIMEOUT` to `ID-timeout`).
fn conf(id: &str, params: &str) -> String {
    format!(
        "<filter app.**>\n @type concat\n{params}\n</filter>\n<match app.**>\n @type capture\n run {id}\n</match>\n\
         <label @ERROR>\n <match **>\n  @type capture\n  run {id}-err\n </match>\n</label>\n\
         <label @TIMEOUT>\n <match **>\n  @type capture\n  run {id}-timeout\n </match>\n</label>\n"
    )
}

fn ev(sec: i64, r: Map) -> Event {
    Event::new(EventTime::new(sec, 0), r)
}

fn msgs(lines: &[&str]) -> Vec<Event> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| ev(100 + i as i64, record! {"container_id" => "1", "message" => *l}))
        .collect()
}

/// Emit `events` in one batch and return the records that passed the filter.
fn filter(id: &str, params: &str, events: Vec<Event>) -> Vec<Map> {
    let engine = common::engine(&conf(id, params), "concat.conf");
    engine.router.emit_to_label("@ROOT", "app.web", events).expect("emit");
    sink(id).records().into_iter().map(|(_, r)| r).collect()
}

#[test]
fn n_lines_joins_every_n_events() {
    let got = filter("nlines", " key message\n n_lines 3", msgs(&["a", "b", "c", "d", "e", "f", "g"]));
    assert_eq!(
        got,
        vec![
            record! {"container_id" => "1", "message" => "a\nb\nc"},
            record! {"container_id" => "1", "message" => "d\ne\nf"},
        ]
    );
}

#[test]
fn a_java_trace_after_a_timestamped_line_is_one_event() {
    let lines = [
        "2024-05-01 12:00:00 INFO ok",
        "2024-05-01 12:00:01 ERROR request failed",
        "java.lang.IllegalStateException: boom",
        "\tat App.handle(App.java:10)",
        "Caused by: java.io.IOException: disk",
        "\t... 3 more",
        "2024-05-01 12:00:02 INFO next",
        "2024-05-01 12:00:03 INFO last",
    ];
    let got = filter(
        "javatrace",
        " key message\n multiline_start_regexp /^\\d{4}-\\d{2}-\\d{2}/\n separator \"\\n\"",
        msgs(&lines),
    );
    let m: Vec<String> = got.iter().map(|r| r.get("message").unwrap().to_display_string()).collect();
    // The last line stays held until something follows it (or the timer, or shutdown).
    assert_eq!(m, vec![lines[0].to_string(), lines[1..6].join("\n"), lines[6].to_string()]);
}

#[test]
fn start_and_end_regexps_and_lines_outside_pass() {
    let lines = ["outside", "start", " 1", " 2", "end", "outside 2", "start end"];
    let got = filter(
        "startend",
        " key message\n multiline_start_regexp /^start/\n multiline_end_regexp /end$/\n separator \"|\"",
        msgs(&lines),
    );
    let m: Vec<String> = got.iter().map(|r| r.get("message").unwrap().to_display_string()).collect();
    assert_eq!(m, vec!["outside", "start| 1| 2|end", "outside 2", "start end"]);
}

#[test]
fn continuous_line_regexp_ends_the_event_at_a_line_that_does_not_continue() {
    let lines = ["start", "  more", "  more", "other", "start", "  x"];
    let got = filter(
        "continuous",
        " key message\n multiline_start_regexp /^start/\n continuous_line_regexp /^\\s+/",
        msgs(&lines),
    );
    let m: Vec<String> = got.iter().map(|r| r.get("message").unwrap().to_display_string()).collect();
    assert_eq!(m, vec!["start\n  more\n  more", "other"]);
}

#[test]
fn only_an_end_regexp_collects_until_it() {
    let got = filter(
        "endonly",
        " key message\n multiline_end_regexp /\\.$/\n separator \" \"",
        msgs(&["a", "b", "c.", "d."]),
    );
    let m: Vec<String> = got.iter().map(|r| r.get("message").unwrap().to_display_string()).collect();
    assert_eq!(m, vec!["a b c.", "d."]);
}

#[test]
fn streams_are_joined_separately_and_first_record_fields_win() {
    let evs = vec![
        ev(1, record! {"cid" => "a", "message" => "start a", "n" => 1}),
        ev(2, record! {"cid" => "b", "message" => "start b", "n" => 2}),
        ev(3, record! {"cid" => "a", "message" => " a1", "n" => 3}),
        ev(4, record! {"cid" => "b", "message" => " b1", "n" => 4}),
        ev(5, record! {"cid" => "a", "message" => "start a2", "n" => 5}),
        ev(6, record! {"cid" => "b", "message" => "start b2", "n" => 6}),
    ];
    let params = " key message\n stream_identity_key cid\n multiline_start_regexp /^start/";
    let got = filter("streams", params, evs.clone());
    assert_eq!(
        got,
        vec![
            record! {"cid" => "a", "message" => "start a\n a1", "n" => 1},
            record! {"cid" => "b", "message" => "start b\n b1", "n" => 2},
        ]
    );
    // The event's time: the releasing line's, or the first line's with use_first_timestamp.
    let times = |id: &str| sink(id).events().iter().map(|(_, e)| e.time.sec).collect::<Vec<_>>();
    assert_eq!(times("streams"), vec![5, 6]);
    filter("streams-first", &format!("{params}\n use_first_timestamp true"), evs);
    assert_eq!(times("streams-first"), vec![1, 2]);
}

#[test]
fn partial_key_joins_cri_style_partials_and_drops_the_flag() {
    let evs = vec![
        ev(1, record! {"message" => "start", "flag" => "P"}),
        ev(2, record! {"message" => " middle", "flag" => "P"}),
        ev(3, record! {"message" => " end", "flag" => "F"}),
        ev(4, record! {"message" => "no flag"}),
    ];
    let got = filter("partial", " key message\n partial_key flag\n partial_value P\n separator \"\"", evs.clone());
    assert_eq!(got, vec![record! {"message" => "start middle end"}, record! {"message" => "no flag"}]);
    let got = filter(
        "partial-keep",
        " key message\n partial_key flag\n partial_value P\n separator \"\"\n keep_partial_key true",
        evs,
    );
    assert_eq!(got[0], record! {"message" => "start middle end", "flag" => "F"});
}

#[test]
fn docker_partial_metadata_in_each_format_sorted_by_ordinal() {
    for (format, msg, id, ord, last) in [
        ("docker-fluentd", "partial_message", "partial_id", "partial_ordinal", "partial_last"),
        (
            "docker-journald",
            "CONTAINER_PARTIAL_MESSAGE",
            "CONTAINER_PARTIAL_ID",
            "CONTAINER_PARTIAL_ORDINAL",
            "CONTAINER_PARTIAL_LAST",
        ),
        (
            "docker-journald-lowercase",
            "container_partial_message",
            "container_partial_id",
            "container_partial_ordinal",
            "container_partial_last",
        ),
    ] {
        let part = |text: &str, pid: &str, n: &str, is_last: &str| {
            let mut r = record! {"container_id" => "1", "message" => text};
            r.insert(msg, "true".into());
            r.insert(id, pid.into());
            r.insert(ord, n.into());
            r.insert(last, is_last.into());
            ev(1, r)
        };
        let evs = vec![
            part("start", "p1", "1", "false"),
            part(" two", "p1", "3", "false"),
            part(" one", "p1", "2", "false"),
            part(" end", "p1", "4", "true"),
            ev(2, record! {"container_id" => "1", "message" => "single line"}),
        ];
        let run = format!("meta-{format}");
        let got = filter(
            &run,
            &format!(" key message\n use_partial_metadata true\n partial_metadata_format {format}\n separator \"\""),
            evs,
        );
        assert_eq!(
            got,
            vec![
                record! {"container_id" => "1", "message" => "start one two end"},
                record! {"container_id" => "1", "message" => "single line"},
            ],
            "{format}"
        );
    }
}

#[test]
fn cri_logtag_joins_until_a_full_line() {
    // What the cri parser gives for `2024-05-01T00:00:00Z stdout P abc`: stream, logtag, message.
    let evs = vec![
        ev(1, record! {"stream" => "stdout", "logtag" => "P", "message" => "abc"}),
        ev(2, record! {"stream" => "stdout", "logtag" => "P", "message" => "def"}),
        ev(3, record! {"stream" => "stdout", "logtag" => "F", "message" => "ghi"}),
    ];
    let got = filter(
        "cri",
        " key message\n use_partial_cri_logtag true\n partial_cri_logtag_key logtag\n separator \"\"",
        evs,
    );
    assert_eq!(got, vec![record! {"message" => "abcdefghi"}]);
    let e = common::config_errors(&conf("cri-bad", " key message\n use_partial_cri_logtag true"), "concat.conf");
    assert!(e.contains("partial_cri_logtag_key") && e.contains("concat.conf:"), "{e}");
}

#[test]
fn records_without_the_key_and_fluent_logs_pass_untouched() {
    let engine = common::engine(&conf("pass", " key message\n n_lines 2"), "concat.conf");
    let evs =
        vec![ev(1, record! {"other" => "x"}), ev(2, record! {"message" => "a"}), ev(3, record! {"message" => "b"})];
    engine.router.emit_to_label("@ROOT", "app.web", evs).expect("emit");
    assert_eq!(
        sink("pass").records().into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        vec![record! {"other" => "x"}, record! {"message" => "a\nb"}]
    );
}

#[test]
fn configuration_errors_name_the_line() {
    let err = |params: &str| common::config_errors(&conf("bad", params), "concat.conf");
    assert!(err(" key message").contains("Either n_lines"));
    assert!(err(" key message\n n_lines 2\n multiline_start_regexp /x/").contains("exclusive"));
    assert!(err(" key message\n partial_key flag").contains("partial_value is required"));
    assert!(err(" key message\n use_partial_metadata true\n partial_key f\n partial_value P").contains("exclusive"));
    let e = err(" key message\n use_partial_metadata true\n partial_metadata_format gelf");
    assert!(e.contains("concat.conf:5"), "{e}");
    let e = err(" n_lines 2");
    assert!(e.contains("key"), "{e}");
    let e = err(" key message\n multiline_start_regexp /(/");
    assert!(e.contains("concat.conf:4"), "{e}");
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run the engine, emit `events`, wait for `until`, then stop it.
fn run_engine(id: &str, params: &str, events: Vec<Event>, until: impl Fn() -> bool) {
    let engine = common::engine(&conf(id, params), "concat.conf");
    let router = engine.router.clone();
    let shutdown = engine.ctx.shutdown.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let task = rt.spawn(engine.run());
    router.emit_to_label("@ROOT", "app.web", events).expect("emit");
    wait_for(id, until);
    shutdown.trigger();
    rt.block_on(async { tokio::time::timeout(WAIT, task).await.expect("stops").expect("task").expect("run") });
}

#[test]
fn idle_lines_are_flushed_to_timeout_label() {
    let id = "timeout-label";
    let timeout = sink(&format!("{id}-timeout"));
    run_engine(
        id,
        " key message\n multiline_start_regexp /^start/\n flush_interval 1s\n timeout_label @TIMEOUT",
        msgs(&["start", " 1", " 2"]),
        || timeout.len() == 1,
    );
    assert_eq!(timeout.records()[0].1, record! {"container_id" => "1", "message" => "start\n 1\n 2"});
    assert_eq!(timeout.records()[0].0, "app.web");
    assert_eq!(sink(id).len(), 0);
    assert_eq!(sink(&format!("{id}-err")).len(), 0);
}

#[test]
fn idle_lines_without_timeout_label_go_to_error() {
    let id = "timeout-error";
    let err = sink(&format!("{id}-err"));
    run_engine(id, " key message\n n_lines 5\n flush_interval 1", msgs(&["a", "b"]), || err.len() == 1);
    assert_eq!(err.records()[0].1, record! {"container_id" => "1", "message" => "a\nb"});
}

#[test]
fn held_lines_are_flushed_at_shutdown() {
    // flush_interval 0: no timer at all, so only shutdown can deliver them.
    let id = "shutdown";
    run_engine(
        id,
        " key message\n multiline_start_regexp /^start/\n flush_interval 0\n timeout_label @TIMEOUT",
        msgs(&["start", " 1", "start", " 2"]),
        || sink("shutdown").len() == 1,
    );
    assert_eq!(sink(id).messages(), vec!["start\n 1"]);
    assert_eq!(sink(&format!("{id}-timeout")).messages(), vec!["start\n 2"]);
    // The shutdown flush keeps the first line's time.
    assert_eq!(sink(&format!("{id}-timeout")).events()[0].1.time, EventTime::new(102, 0));
}

#[test]
fn without_timeout_label_or_error_label_flushed_lines_continue_after_the_filter() {
    // A parser filter before concat (it would fail on an already parsed record) and a record_transformer
    // after it: flushed lines must skip the first and pass the second.
    let id = "onward";
    let conf = format!(
        "<filter app.**>\n @type parser\n key_name message\n <parse>\n  @type json\n </parse>\n</filter>\n\
         <filter app.**>\n @type concat\n key log\n multiline_start_regexp /^start/\n flush_interval 1\n</filter>\n\
         <filter app.**>\n @type record_transformer\n <record>\n  after yes\n </record>\n</filter>\n\
         <match app.**>\n @type capture\n run {id}\n</match>\n"
    );
    let engine = common::engine(&conf, "concat.conf");
    let router = engine.router.clone();
    let shutdown = engine.ctx.shutdown.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let task = rt.spawn(engine.run());
    let evs = ["start", " 1", "start", " 2"]
        .iter()
        .map(|l| ev(1, record! {"message" => format!("{{\"log\":\"{l}\"}}")}))
        .collect();
    router.emit_to_label("@ROOT", "app.web", evs).expect("emit");
    let cap = sink(id);
    // The first message is completed by the second "start"; the second only by the timer.
    wait_for("the timer flush", || cap.len() == 2);
    shutdown.trigger();
    rt.block_on(async { tokio::time::timeout(WAIT, task).await.expect("stops").expect("task").expect("run") });
    let got: Vec<Map> = cap.records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        got,
        vec![record! {"log" => "start\n 1", "after" => "yes"}, record! {"log" => "start\n 2", "after" => "yes"}]
    );
}

/// A batch refused downstream (a full buffer) is sent again by its input; concat must neither lose the
/// lines it held before that batch nor join the retried lines twice.
#[test]
fn a_refused_batch_sent_again_loses_and_repeats_nothing() {
    let params = " key message\n n_lines 2";
    let engine = common::engine(&conf("refused", params), "concat.conf");
    let out = sink("refused");
    let emit = |lines: &[&str]| engine.router.emit_to_label("@ROOT", "app.web", msgs(lines));
    emit(&["a"]).expect("held, nothing to deliver yet");
    out.refuse.store(1, std::sync::atomic::Ordering::SeqCst);
    assert!(emit(&["b", "c"]).is_err(), "the full buffer refuses the batch");
    emit(&["b", "c"]).expect("the same batch, sent again, is taken");
    emit(&["d"]).expect("d completes the next pair");
    let got: Vec<String> = out.messages();
    assert_eq!(got, vec!["a\nb", "c\nd"]);
}

/// Events a filter rejects in a refused batch reach `@ERROR` once, with the batch that is taken.
#[test]
fn rejects_of_a_refused_batch_reach_error_once() {
    let params = " key message\n use_partial_cri_logtag true\n partial_cri_logtag_key logtag";
    let engine = common::engine(&conf("refused-err", params), "concat.conf");
    let out = sink("refused-err");
    // No logtag field: concat rejects the first line; the second is a whole (F) line and passes.
    let batch =
        || vec![ev(100, record! {"message" => "no tag"}), ev(101, record! {"message" => "whole", "logtag" => "F"})];
    out.refuse.store(1, std::sync::atomic::Ordering::SeqCst);
    assert!(engine.router.emit_to_label("@ROOT", "app.web", batch()).is_err());
    engine.router.emit_to_label("@ROOT", "app.web", batch()).expect("taken the second time");
    assert_eq!(sink("refused-err-err").len(), 1, "the reject is routed once");
    assert_eq!(out.messages(), vec!["whole"]);
}
