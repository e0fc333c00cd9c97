//! `detect_exceptions` through the real engine, on traces that real runtimes printed
//! (`tests/data/exceptions/*.txt`, made by `generate.sh` from the programs in `src/`): which lines end up
//! in one record, streams, limits, the flush timer, shutdown, and the project's own pipeline
//! (tail → detect_exceptions → copy → grep).
mod common;

use common::sink;
use sluice_core::event::{Event, EventTime, Map};
use sluice_core::record;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn corpus(name: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/exceptions").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines().map(str::to_string).collect()
}

/// One event per line; `with_newline` keeps the line's "\n" as Docker's `log` field does.
fn events(lines: &[String], with_newline: bool) -> Vec<Event> {
    lines
        .iter()
        .map(|l| {
            let m = if with_newline { format!("{l}\n") } else { l.clone() };
            Event::new(EventTime::new(1, 0), record! {"message" => m})
        })
        .collect()
}

/// Emit `lines` one batch per line to `raw.app` through `conf` and return the messages that reached the
/// capture (after the output flushed everything, as at shutdown).
fn run(id: &str, extra: &str, lines: &[String], with_newline: bool) -> Vec<String> {
    let conf = format!(
        "<match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n{extra}\n</match>\n\
         <match app>\n @type capture\n run {id}\n</match>\n"
    );
    let engine = common::engine(&conf, "de.conf");
    for ev in events(lines, with_newline) {
        engine.router.emit_to_label("@ROOT", "raw.app", vec![ev]).expect("emit");
    }
    engine.flush_all();
    sink(id).messages()
}

/// The expected records: each group is a range of corpus lines joined as one message.
fn groups(lines: &[String], ranges: &[std::ops::Range<usize>], with_newline: bool) -> Vec<String> {
    ranges
        .iter()
        .map(|r| {
            lines[r.clone()].iter().map(|l| if with_newline { format!("{l}\n") } else { l.clone() }).collect::<String>()
        })
        .collect()
}

/// Lines `r` joined as one message.
fn joined(lines: &[String], r: std::ops::Range<usize>, with_newline: bool) -> String {
    groups(lines, std::slice::from_ref(&r), with_newline).remove(0)
}

/// The corpus file with one plain line after it, so the trace has to end on a line of its own.
fn with_tail(name: &str) -> Vec<String> {
    let mut l = corpus(name);
    l.push("INFO next request".into());
    l
}

fn check(name: &str, langs: &str, ranges: &[std::ops::Range<usize>]) {
    let lines = with_tail(name);
    let id = format!("corpus-{name}-{langs}");
    let got = run(&id, &format!(" languages {langs}"), &lines, true);
    assert_eq!(got, groups(&lines, ranges, true), "{name} with languages {langs}");
}

#[test]
fn java_trace_with_suppressed_and_caused_by_is_one_record() {
    // 0: INFO line; 1..16: the trace ("Suppressed:", "Caused by:", "... 1 more"); 16: the next request.
    let n = corpus("java.txt").len();
    for langs in ["java", "all"] {
        check("java.txt", langs, &[0..1, 1..n, n..n + 1]);
    }
}

#[test]
fn java_logging_trace_is_one_record_and_the_blank_line_ends_it() {
    // SEVERE message line, the exception line with one frame, the blank line java.util.logging adds.
    check("java_logging.txt", "java", &[0..1, 1..2, 2..4, 4..5, 5..6, 6..7]);
}

#[test]
fn python_traceback_is_one_record_with_its_caret_lines() {
    let n = corpus("python.txt").len();
    for langs in ["python", "all"] {
        check("python.txt", langs, &[0..1, 1..n, n..n + 1]);
    }
}

#[test]
fn chained_python_tracebacks_are_one_record_each() {
    // Two tracebacks with the "direct cause" sentence between them, as the plugin groups them.
    let l = corpus("python_chained.txt");
    assert_eq!(l[6], "The above exception was the direct cause of the following exception:");
    check("python_chained.txt", "python", &[0..1, 1..5, 5..6, 6..7, 7..8, 8..12, 12..13]);
}

#[test]
fn node_stacks_are_one_record_each() {
    let l = corpus("node.txt");
    let syntax_end = l.iter().position(|x| x == "INFO continuing").expect("marker");
    let type_error = l.iter().position(|x| x.starts_with("TypeError")).expect("TypeError");
    let blank = type_error + l[type_error..].iter().position(|x| x.is_empty()).expect("blank after stack");
    let mut ranges = Vec::new();
    ranges.push(0..syntax_end);
    ranges.extend((syntax_end..type_error).map(|i| i..i + 1));
    ranges.push(type_error..blank);
    ranges.extend((blank..l.len() + 1).map(|i| i..i + 1));
    for langs in ["js", "all"] {
        check("node.txt", langs, &ranges);
    }
}

#[test]
fn go_panic_with_goroutine_dump_is_one_record() {
    let n = corpus("go.txt").len();
    for langs in ["go", "all"] {
        check("go.txt", langs, &[0..1, 1..n, n..n + 1]);
    }
}

#[test]
fn php_uncaught_exception_is_one_record() {
    let l = corpus("php.txt");
    let start = l.iter().position(|x| x.starts_with("PHP Fatal error:")).expect("PHP Fatal error line");
    let thrown = l.iter().position(|x| x.trim_start().starts_with("thrown in ")).expect("thrown in");
    let mut ranges: Vec<_> = (0..start).map(|i| i..i + 1).collect();
    ranges.push(start..thrown + 1);
    ranges.extend((thrown + 1..l.len() + 1).map(|i| i..i + 1));
    check("php.txt", "php", &ranges);
}

#[test]
fn traces_no_rule_covers_pass_line_by_line() {
    // Plain Ruby (not Rails) and Perl traces: the plugin has no rules for them.
    for name in ["ruby.txt", "perl.txt"] {
        let n = with_tail(name).len();
        check(name, "all", &(0..n).map(|i| i..i + 1).collect::<Vec<_>>());
    }
    // A Java trace is not looked for when only python is configured.
    let n = with_tail("java.txt").len();
    check("java.txt", "python", &(0..n).map(|i| i..i + 1).collect::<Vec<_>>());
}

#[test]
fn csharp_and_dart_shapes_from_their_documentation() {
    // .NET prints "   at" frames and marks inner exceptions; Dart prints "Unhandled exception:" and #N frames.
    let cs: Vec<String> = [
        "System.InvalidOperationException: order store unavailable ---> System.TimeoutException: timed out",
        "   at Shop.Store.Load(Int32 id) in /src/Store.cs:line 21",
        "   --- End of inner exception stack trace ---",
        "   at Shop.Program.Main(String[] args) in /src/Program.cs:line 9",
        "INFO next",
    ]
    .map(String::from)
    .to_vec();
    let got = run("csharp", " languages csharp", &cs, true);
    assert_eq!(got, groups(&cs, &[0..4, 4..5], true));
    let dart: Vec<String> = [
        "Unhandled exception:",
        "Bad state: no element",
        "#0      List.first (dart:core-patch/growable_array.dart:343:5)",
        "#1      main (file:///app/bin/main.dart:4:11)",
        "INFO next",
    ]
    .map(String::from)
    .to_vec();
    let got = run("dart", " languages dart", &dart, true);
    assert_eq!(got, groups(&dart, &[0..4, 4..5], true));
}

#[test]
fn lines_without_newlines_join_with_force_line_breaks() {
    let lines = with_tail("java.txt");
    let n = lines.len() - 1;
    let got = run("flb", " force_line_breaks true", &lines, false);
    assert_eq!(got, vec![lines[0].clone(), lines[1..n].join("\n"), lines[n].clone()]);
    // Without it the lines are concatenated as they are, as the plugin does.
    let got = run("noflb", "", &lines, false);
    assert_eq!(got[1], lines[1..n].concat());
}

#[test]
fn max_lines_splits_a_long_trace() {
    let lines = with_tail("python.txt");
    let got = run("maxlines", " max_lines 2", &lines, true);
    // The first two lines of the traceback are one record; the rest is no longer a trace on its own.
    assert_eq!(got[1], format!("{}\n{}\n", lines[1], lines[2]));
    assert_eq!(got.concat(), lines.iter().map(|l| format!("{l}\n")).collect::<String>(), "nothing lost");
}

#[test]
fn max_bytes_flushes_before_the_limit() {
    let lines = with_tail("java.txt");
    let got = run("maxbytes", " max_bytes 200", &lines, true);
    for m in got.iter().filter(|m| m.matches('\n').count() > 1) {
        assert!(m.chars().count() <= 200, "{m:?}");
    }
    assert!(got.len() > 3, "the trace was split");
    assert_eq!(got.concat(), lines.iter().map(|l| format!("{l}\n")).collect::<String>(), "nothing lost");
}

#[test]
fn streams_are_detected_separately_and_other_fields_come_from_the_first_line() {
    let conf = "<match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n stream container\n</match>\n\
                <match app>\n @type capture\n run streams\n</match>\n";
    let engine = common::engine(conf, "de.conf");
    let java = with_tail("java.txt");
    let py = with_tail("python.txt");
    // Interleave the two streams line by line.
    let mut batch = Vec::new();
    for i in 0..java.len().max(py.len()) {
        if let Some(l) = java.get(i) {
            batch.push(Event::new(
                EventTime::new(10 + i as i64, 0),
                record! {"container" => "java", "message" => format!("{l}\n"), "n" => i as i64},
            ));
        }
        if let Some(l) = py.get(i) {
            batch.push(Event::new(
                EventTime::new(10 + i as i64, 0),
                record! {"container" => "py", "message" => format!("{l}\n"), "n" => i as i64},
            ));
        }
    }
    engine.router.emit_to_label("@ROOT", "raw.app", batch).expect("emit");
    engine.flush_all();
    let got = sink("streams").events();
    let of =
        |c: &str| -> Vec<&(String, Event)> { got.iter().filter(|(_, e)| common::field(e, "container") == c).collect() };
    let j = of("java");
    assert_eq!(j.len(), 3);
    assert_eq!(common::field(&j[1].1, "message"), joined(&java, 1..java.len() - 1, true));
    // The joined record is the first line's record, with its time.
    assert_eq!(common::field(&j[1].1, "n"), "1");
    assert_eq!(j[1].1.time, EventTime::new(11, 0));
    assert_eq!(of("py").len(), 3);
    assert!(got.iter().all(|(t, _)| t == "app"));
}

#[test]
fn the_log_field_is_used_when_there_is_no_message_field_and_other_records_pass() {
    let conf = "<match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n</match>\n\
                <match app>\n @type capture\n run logfield\n</match>\n";
    let engine = common::engine(conf, "de.conf");
    let lines = with_tail("go.txt");
    let mut evs: Vec<Event> = lines
        .iter()
        .map(|l| Event::new(EventTime::new(1, 0), record! {"log" => format!("{l}\n"), "stream" => "stderr"}))
        .collect();
    // A record without the field in the middle of a trace: the trace is flushed and the record passes.
    evs.insert(3, Event::new(EventTime::new(1, 0), record! {"other" => 1}));
    engine.router.emit_to_label("@ROOT", "raw.app", evs).expect("emit");
    engine.flush_all();
    let got = sink("logfield").records();
    // INFO, the two trace lines before the interruption, the record, then the rest one by one (it no
    // longer starts with "panic:").
    assert_eq!(got.len(), 1 + 1 + 1 + (lines.len() - 3), "{got:#?}");
    assert_eq!(got[1].1.get("log").and_then(|v| v.as_str()), Some(format!("{}\n{}\n", lines[1], lines[2]).as_str()));
    assert_eq!(got[2].1, record! {"other" => 1});
}

#[test]
fn an_unchanged_tag_would_loop_and_goes_to_error() {
    let conf = "<match **>\n @type detect_exceptions\n remove_tag_prefix raw\n</match>\n\
                <label @ERROR>\n <match **>\n  @type capture\n  run loop-err\n </match>\n</label>\n";
    let engine = common::engine(conf, "de.conf");
    engine.router.emit_to_label("@ROOT", "app", events(&with_tail("java.txt"), true)).expect("emit");
    engine.flush_all();
    assert_eq!(sink("loop-err").len(), 3);
}

#[test]
fn bad_configuration_is_an_error_at_its_line() {
    let e = common::config_errors(
        "<match **>\n @type detect_exceptions\n remove_tag_prefix raw\n languages java, cobol\n</match>\n",
        "de.conf",
    );
    assert!(e.contains("de.conf:4") && e.contains("Unknown language: cobol"), "{e}");
    let e = common::config_errors("<match **>\n @type detect_exceptions\n max_lines many\n</match>\n", "de.conf");
    assert!(e.contains("de.conf:3"), "{e}");
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn multiline_flush_interval_sends_an_unfinished_trace_and_shutdown_sends_the_rest() {
    let conf =
        "<match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n multiline_flush_interval 0.3\n</match>\n\
                <match app>\n @type capture\n run timer\n</match>\n";
    let engine = common::engine(conf, "de.conf");
    let router = engine.router.clone();
    let shutdown = engine.ctx.shutdown.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let task = rt.spawn(engine.run());
    let lines = corpus("java.txt");
    // The trace's lines, then nothing: only the timer can send it.
    router.emit_to_label("@ROOT", "raw.app", events(&lines, true)).expect("emit");
    let cap = sink("timer");
    wait_for("the timer flush", || cap.len() == 2);
    assert_eq!(cap.messages()[1], joined(&lines, 1..lines.len(), true));
    // A trace that starts and is cut by shutdown before the timer runs out is still delivered.
    router.emit_to_label("@ROOT", "raw.app", events(&lines[1..3], true)).expect("emit");
    shutdown.trigger();
    rt.block_on(async { tokio::time::timeout(WAIT, task).await.expect("stops").expect("task").expect("run") });
    assert_eq!(cap.len(), 3);
    assert_eq!(cap.messages()[2], joined(&lines, 1..3, true));
}

#[test]
fn a_full_buffer_keeps_joined_records_and_refuses_the_next_batch() {
    let conf = "<match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n</match>\n\
                <match app>\n @type capture\n run refuse\n</match>\n";
    let engine = common::engine(conf, "de.conf");
    let cap = sink("refuse");
    let lines = with_tail("go.txt");
    cap.refuse.store(1, std::sync::atomic::Ordering::SeqCst);
    // Taken: the joined records the capture refused are kept.
    engine.router.emit_to_label("@ROOT", "raw.app", events(&lines, true)).expect("taken");
    assert_eq!(cap.len(), 0);
    cap.refuse.store(1, std::sync::atomic::Ordering::SeqCst);
    // Still refused: this batch is not taken (the input keeps it and retries).
    assert!(engine.router.emit_to_label("@ROOT", "raw.app", events(&lines[..1], true)).is_err());
    engine.router.emit_to_label("@ROOT", "raw.app", events(&lines[..1], true)).expect("taken");
    engine.flush_all();
    let mut want = groups(&lines, &[0..1, 1..lines.len() - 1, lines.len() - 1..lines.len()], true);
    want.push(format!("{}\n", lines[0]));
    assert_eq!(cap.messages(), want);
}

#[test]
fn project_pipeline_tail_detect_exceptions_copy_grep_delivers_one_record() {
    // An application's error log as tail reads it: lines without newlines, a Java trace among them.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app-error.log");
    let mut text = String::from("2024-05-01 12:00:00 INFO order 41 done\n");
    for l in corpus("java.txt").iter().skip(1) {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("2024-05-01 12:00:02 INFO order 43 done\n");
    std::fs::write(&log, &text).unwrap();
    let conf = format!(
        "<source>\n @type tail\n path {}\n tag raw.error.app\n read_from_head true\n exit_on_eof true\n <parse>\n  @type none\n </parse>\n</source>\n\
         <match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n message message\n languages java, python\n force_line_breaks true\n multiline_flush_interval 5\n</match>\n\
         <match error.**>\n @type copy\n <store>\n  @type relabel\n  @label @CLOUD\n </store>\n <store>\n  @type relabel\n  @label @SLACK\n </store>\n</match>\n\
         <label @CLOUD>\n <match **>\n  @type capture\n  run pipe-cloud\n </match>\n</label>\n\
         <label @SLACK>\n <filter **>\n  @type grep\n  <regexp>\n   key message\n   pattern /Exception/\n  </regexp>\n </filter>\n <match **>\n  @type capture\n  run pipe-slack\n </match>\n</label>\n",
        log.display()
    );
    let engine = common::engine(&conf, "pipeline.conf");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(WAIT, engine.run()).await.expect("exits by itself").unwrap() });
    let trace = corpus("java.txt")[1..].join("\n");
    let cloud = sink("pipe-cloud").records();
    assert_eq!(
        cloud
            .iter()
            .map(|(_, r)| r.get("message").and_then(|v| v.as_str()).unwrap_or("").to_string())
            .collect::<Vec<_>>(),
        vec![
            "2024-05-01 12:00:00 INFO order 41 done".to_string(),
            trace.clone(),
            "2024-05-01 12:00:02 INFO order 43 done".into()
        ]
    );
    assert!(cloud.iter().all(|(t, _)| t == "error.app"));
    let slack: Vec<Map> = sink("pipe-slack").records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(slack, vec![record! {"message" => trace}], "the trace reaches Slack as one entry");
}

#[test]
fn a_trace_at_the_end_of_the_file_reaches_a_memory_buffered_output_at_shutdown() {
    // Nothing follows the Java trace (which only ends at a line that does not continue it), so only the
    // shutdown flush sends it; the file output (memory buffer, flushed at shutdown) must still take it:
    // held events go out before any output stops.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = corpus("java.txt");
    std::fs::write(&log, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let conf = format!(
        "<source>\n @type tail\n path {}\n tag raw.app\n read_from_head true\n exit_on_eof true\n <parse>\n  @type none\n </parse>\n</source>\n\
         <match raw.**>\n @type detect_exceptions\n remove_tag_prefix raw\n force_line_breaks true\n</match>\n\
         <match app>\n @type file\n path {}\n append true\n <format>\n  @type json\n </format>\n <buffer>\n  @type memory\n  flush_at_shutdown true\n </buffer>\n</match>\n",
        log.display(),
        out.display()
    );
    let engine = common::engine(&conf, "file.conf");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(WAIT, engine.run()).await.expect("exits by itself").unwrap() });
    let mut written = String::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("out") {
            written.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    let messages: Vec<String> = written
        .lines()
        .map(|l| {
            let v = sluice_core::event::parse_json_map(l.as_bytes()).expect("a JSON line");
            v.get("message").map(|m| m.to_display_string()).unwrap_or_default()
        })
        .collect();
    assert_eq!(messages, vec![lines[0].clone(), lines[1..].join("\n")]);
}

#[test]
fn public_configurations_assemble_without_errors_or_unused_parameters() {
    // The shapes of GKE's fluentd-gcp, the Kubernetes fluentd-elasticsearch addon and logging-operator.
    let conf = r#"
<match raw.kubernetes.**>
  @id raw.kubernetes
  @type detect_exceptions
  remove_tag_prefix raw
  message log
  stream stream
  multiline_flush_interval 5
  max_bytes 500000
  max_lines 1000
</match>
<filter **>
  @id filter_concat
  @type concat
  key message
  multiline_end_regexp /\n$/
  separator ""
</filter>
<match app.**>
  @type detect_exceptions
  @id test_detect_exceptions
  languages ["java","python"]
  multiline_flush_interval 0.1
  remove_tag_prefix app
  force_line_breaks true
</match>
<match **>
  @type null
</match>
"#;
    let root = sluice_core::config::parse_str(conf, std::path::Path::new("public.conf")).expect("parses");
    let a = sluice_core::engine::assemble(&root, common::registry(), true);
    assert!(a.diagnostics.errors.is_empty(), "{:?}", a.diagnostics.errors);
    assert!(a.diagnostics.warnings.is_empty(), "{:?}", a.diagnostics.warnings);
}
