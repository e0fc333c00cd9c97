//! Fluentd's log levels on sluice's own log: `<system> log_level`, each plugin's `@log_level`, and the
//! command line over both. Each test runs the binary on a small config and reads its stderr.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn write_conf(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("fluent.conf");
    let mut f = std::fs::File::create(&p).expect("create config");
    f.write_all(text.as_bytes()).expect("write config");
    p
}

/// Run sluice on `conf` until a stderr line contains `until` (then a little longer, so other plugins get to
/// log too) or `max` passes; stop it with SIGTERM and return all of stderr.
fn run(conf: &std::path::Path, args: &[&str], env: &[(&str, &str)], until: Option<&str>, max: Duration) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("-c").arg(conf).args(args).env_remove("SLUICE_LOG").stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn sluice");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let start = Instant::now();
    let mut seen_at = None;
    loop {
        let deadline = match seen_at {
            Some(t) => t + Duration::from_millis(300),
            None => start + max,
        };
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        match rx.recv_timeout(left) {
            Ok(line) => {
                if seen_at.is_none() && until.is_some_and(|u| line.contains(u)) {
                    seen_at = Some(Instant::now());
                }
                out.push_str(&line);
                out.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    for line in rx.iter() {
        out.push_str(&line);
        out.push('\n');
    }
    reader.join().expect("reader");
    assert!(status.success(), "sluice failed: {out}");
    if let Some(u) = until {
        assert!(out.contains(u), "no line with {u:?} within {max:?}:\n{out}");
    }
    out
}

/// Two samples (tags a.x, b.x) through a parser filter each whose pattern never matches, so each filter logs
/// "records failed to parse" at debug with its tag. `SYS` and `A_LEVEL` are replaced by the test.
const PARSERS: &str = r#"
<system>
  log_level SYS
</system>
<source>
  @type sample
  tag a.x
  rate 20
</source>
<source>
  @type sample
  tag b.x
  rate 20
</source>
<filter a.**>
  @type parser
  key_name message
  A_LEVEL
  <parse>
    @type regexp
    expression /^never (?<x>.*)$/
  </parse>
</filter>
<filter b.**>
  @type parser
  key_name message
  <parse>
    @type regexp
    expression /^never (?<x>.*)$/
  </parse>
</filter>
<match **>
  @type null
</match>
"#;

fn parsers(dir: &tempfile::TempDir, sys: &str, a_level: &str) -> std::path::PathBuf {
    write_conf(dir, &PARSERS.replace("SYS", sys).replace("A_LEVEL", a_level))
}

const DEBUG_A: &str = r#"DEBUG parser filter: records failed to parse tag="a.x""#;
const DEBUG_B: &str = r#"DEBUG parser filter: records failed to parse tag="b.x""#;
const SHORT: Duration = Duration::from_millis(800);
const LONG: Duration = Duration::from_secs(5);

#[test]
fn system_log_level_error_hides_info() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = parsers(&dir, "error", "");
    let err = run(&conf, &[], &[], None, SHORT);
    assert!(!err.contains("sluice started"), "{err}");
    assert!(!err.contains(" INFO ") && !err.contains(" WARN ") && !err.contains(" DEBUG "), "{err}");
}

#[test]
fn system_log_level_debug_shows_debug() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = parsers(&dir, "debug", "");
    let err = run(&conf, &[], &[], Some(DEBUG_B), LONG);
    assert!(err.contains(DEBUG_A), "{err}");
    assert!(err.contains("sluice started"), "{err}");
}

#[test]
fn command_line_and_sluice_log_beat_system_log_level() {
    let dir = tempfile::tempdir().expect("tmp");
    // -q (warnings) over <system> debug: the router's warning shows, debug and info do not.
    let conf = parsers(&dir, "debug", "");
    let err = run(&conf, &["-q"], &[], Some("WARN error events dropped"), LONG);
    assert!(!err.contains(" DEBUG ") && !err.contains("sluice started"), "{err}");
    // SLUICE_LOG over <system> debug.
    let err = run(&conf, &[], &[("SLUICE_LOG", "warn")], Some("WARN error events dropped"), LONG);
    assert!(!err.contains(" DEBUG ") && !err.contains("sluice started"), "{err}");
    // -v (debug) over <system> error.
    let conf = parsers(&dir, "error", "");
    let err = run(&conf, &["-v"], &[], Some(DEBUG_B), LONG);
    assert!(err.contains("sluice started"), "{err}");
}

#[test]
fn plugin_log_level_debug_shows_only_that_plugins_debug() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = parsers(&dir, "info", "@log_level debug");
    let err = run(&conf, &[], &[], Some(DEBUG_A), LONG);
    assert!(!err.contains(DEBUG_B), "{err}");
    assert!(err.contains("sluice started"), "{err}");
    // Still on top of the command line: -q sets the process level, the plugin keeps its own.
    let err = run(&conf, &["-q"], &[], Some(DEBUG_A), LONG);
    assert!(!err.contains(DEBUG_B) && !err.contains("sluice started"), "{err}");
}

#[test]
fn plugin_log_level_below_the_process_level() {
    let dir = tempfile::tempdir().expect("tmp");
    // <system> debug, but filter a at info: only b's debug lines.
    let conf = parsers(&dir, "debug", "@log_level info");
    let err = run(&conf, &[], &[], Some(DEBUG_B), LONG);
    assert!(!err.contains(DEBUG_A), "{err}");
}

#[test]
fn plugin_log_level_error_hides_that_plugins_warnings() {
    let dir = tempfile::tempdir().expect("tmp");
    // record_transformer warns at run time about a placeholder the record lacks.
    let conf = write_conf(
        &dir,
        r#"
<source>
  @type sample
  tag a.x
  rate 20
</source>
<source>
  @type sample
  tag b.x
  rate 20
</source>
<filter a.**>
  @type record_transformer
  @log_level error
  <record>
    x ${record["missing"]}
  </record>
</filter>
<filter b.**>
  @type record_transformer
  <record>
    x ${record["missing"]}
  </record>
</filter>
<match **>
  @type null
</match>
"#,
    );
    let warn = "WARN record_transformer: unknown placeholder";
    let err = run(&conf, &[], &[], Some(&format!(r#"{warn}: the record has no such key tag="b.x""#)), LONG);
    assert!(!err.contains(r#"tag="a.x""#), "{err}");
    // Nothing of the plugin span leaks into the line format.
    assert!(!err.contains("plugin{") && !err.contains("log_level="), "{err}");
}

#[test]
fn invalid_levels_are_config_errors_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "<system>\n  log_level loud\n</system>\n<source>\n  @type sample\n  tag a\n  @log_level fatal\n</source>\n<match **>\n  @type null\n  @log_level verbose\n</match>\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = conf.display().to_string();
    assert!(err.contains(&format!("{path}:2: 'log_level' parameter: \"loud\"")), "{err}");
    assert!(err.contains(&format!("{path}:11: '@log_level' parameter: \"verbose\"")), "{err}");
    assert!(!err.contains(&format!("{path}:7:")), "fatal is a valid level: {err}");
    assert!(err.contains("trace, debug, info, warn, error, fatal"), "{err}");
}

#[test]
fn match_log_level_covers_the_output_shutdown() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf_for = |level: &str| {
        let d = dir.path().display();
        write_conf(
            &dir,
            &format!(
                "<source>\n  @type sample\n  tag a.x\n  rate 20\n</source>\n<match a.**>\n  @type file\n  path {d}/out\n  {level}\n  <buffer>\n    path {d}/buf\n    flush_at_shutdown false\n  </buffer>\n</match>\n"
            ),
        )
    };
    let kept = "INFO records kept in the file buffer for the next start";
    // Control: at the process level (info) the output's shutdown message shows.
    let err = run(&conf_for(""), &[], &[], Some("sluice started"), LONG);
    assert!(err.contains(kept), "{err}");
    // At warn the same output's message is hidden; the process's own info lines are not.
    let err = run(&conf_for("@log_level warn"), &[], &[], Some("sluice started"), LONG);
    assert!(!err.contains(kept), "{err}");
    assert!(err.contains("INFO sluice stopped"), "{err}");
}

/// Two tail inputs on files of lines their JSON parser cannot read: each warns "line not parsed" with its
/// path from the reader thread. `@log_level error` on one hides its warnings only.
#[test]
fn tail_log_level_covers_its_reader_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["quiet.log", "loud.log"] {
        std::fs::write(dir.path().join(name), "not json\n").expect("write log file");
    }
    let conf = write_conf(
        &dir,
        &format!(
            "<source>\n  @type tail\n  @log_level error\n  path {d}/quiet.log\n  read_from_head true\n  tag q\n  \
             <parse>\n    @type json\n  </parse>\n</source>\n\
             <source>\n  @type tail\n  path {d}/loud.log\n  read_from_head true\n  tag l\n  \
             <parse>\n    @type json\n  </parse>\n</source>\n\
             <match **>\n  @type null\n</match>\n",
            d = dir.path().display()
        ),
    );
    let out = run(&conf, &[], &[], Some("loud.log"), Duration::from_secs(10));
    assert!(
        out.lines().any(|l| l.contains("WARN") && l.contains("line not parsed") && l.contains("loud.log")),
        "{out}"
    );
    assert!(!out.contains("quiet.log"), "the quiet input's warning was printed:\n{out}");
}
