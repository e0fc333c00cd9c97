//! The command line as scripts use it: `-c`, `--dry-run`, `--version`, exit codes, signals.
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn write_conf(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).expect("create config");
    f.write_all(text.as_bytes()).expect("write config");
    p
}

#[test]
fn version_is_printed() {
    let out = sluice().arg("--version").output().expect("run");
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("sluice "), "{s}");
    assert!(s.trim().ends_with(env!("CARGO_PKG_VERSION")), "{s}");
}

#[test]
fn dry_run_accepts_a_valid_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "ok.conf",
        "<source>\n  @type sample\n  tag demo\n</source>\n<match demo>\n  @type stdout\n</match>\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dry_run_reports_every_error_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "bad.conf",
        "<source>\n  @type sample\n</source>\n<match **>\n  @type no_such_output\n</match>\n<match x>\n  @type sample_missing\n</match>\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = conf.display().to_string();
    assert!(err.contains(&format!("{path}:1: 'tag' parameter is required")), "{err}");
    assert!(err.contains(&format!("{path}:5: unknown output plugin 'no_such_output'")), "{err}");
    assert!(err.contains(&format!("{path}:8: unknown output plugin 'sample_missing'")), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

/// Embedded Ruby as the fluentd-kubernetes-daemonset configurations write it passes; Ruby outside sluice's
/// subset is reported at its line, quoting the expression.
#[test]
fn dry_run_evaluates_embedded_ruby_and_reports_what_it_cannot() {
    let dir = tempfile::tempdir().expect("tmp");
    write_conf(&dir, "extra.conf", "<match extra.**>\n  @type null\n</match>\n");
    let conf = write_conf(
        &dir,
        "ruby.conf",
        "@include \"#{ENV['SLUICE_CLI_T_UNSET'] || 'extra'}.conf\"\n\
         <source>\n  @type sample\n  tag \"#{ENV['SLUICE_CLI_T_UNSET'] || 'kubernetes.demo'}\"\n\
         \x20 rate \"#{ENV.fetch('SLUICE_CLI_T_UNSET', '1').to_i > 0 ? '2' : '1'}\"\n\
         \x20 @log_level \"#{ENV['SLUICE_CLI_T_UNSET'] || use_default}\"\n</source>\n\
         <match \"kubernetes.#{ENV['SLUICE_CLI_T_UNSET'] || 'demo'}\">\n  @type stdout\n</match>\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").env_remove("SLUICE_CLI_T_UNSET").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let conf = write_conf(
        &dir,
        "bad_ruby.conf",
        "<source>\n  @type sample\n  tag \"#{File.read('/etc/hostname').strip}\"\n</source>\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", conf.display())), "{err}");
    assert!(err.contains("'#{File.read('/etc/hostname').strip}'") && err.contains("File.read"), "{err}");
}

#[test]
fn syntax_error_names_the_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(&dir, "unclosed.conf", "<match **>\n  @type stdout\n");
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:1", conf.display())), "{err}");
}

/// Syntax errors, Ruby the subset cannot evaluate, unset required variables, unreadable includes and
/// plugin errors all come out of one `--dry-run`, each at its file:line, with one count.
#[test]
fn dry_run_reports_syntax_ruby_include_and_plugin_errors_in_one_pass() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    let inc = write_conf(&dir, "conf.d/out.conf", "<match inc.**>\n  @type null\n  x \"#{`hostname`}\"\n</match>\n");
    let conf = write_conf(
        &dir,
        "many.conf",
        "@include conf.d/*.conf\n@include conf.d\n@include not_there.conf\n\
         <source>\n  @type sample\n  tag \"#{File.read('/etc/hostname')}\"\n</source>\n\
         <source>\n  @type sample\n  tag ok\n  rate \"#{ENV.fetch('SLUICE_CLI_T_NEVER_SET')}\"\n</source>\n\
         <match ok>\n  @type stdout\n  bad \"x\" junk\n</match>\n\
         <match other>\n  @type no_such_output\n</match>\n\
         <match s.**>\n  @type stdout\n  unused_here 1\n</match>\n",
    );
    let out = sluice()
        .arg("-c")
        .arg(&conf)
        .arg("--dry-run")
        .env("SLUICE_LOG", "warn")
        .env_remove("SLUICE_CLI_T_NEVER_SET")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = conf.display().to_string();
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert!(errors.iter().any(|l| l.contains(&format!("{}:3:", inc.display())) && l.contains("backticks")), "{err}");
    assert!(errors.iter().any(|l| l.contains(&format!("{path}:2:")) && l.contains("not a regular file")), "{err}");
    assert!(errors.iter().any(|l| l.contains(&format!("{path}:6:")) && l.contains("File.read")), "{err}");
    assert!(errors.iter().any(|l| l.contains(&format!("{path}:11:")) && l.contains("SLUICE_CLI_T_NEVER_SET")), "{err}");
    assert!(errors.iter().any(|l| l.contains(&format!("{path}:15:")) && l.contains("unexpected text")), "{err}");
    assert!(errors.iter().any(|l| l.contains(&format!("{path}:18: unknown output plugin 'no_such_output'"))), "{err}");
    assert_eq!(errors.len(), 6, "{err}");
    assert!(err.contains("the configuration has 6 error(s)"), "{err}");
    // A directive with a parse error is not built: no "tag is required" on top of the Ruby error.
    assert!(!err.contains("'tag' parameter is required"), "{err}");
    // A missing plain include is included as nothing (as in Fluentd), with a warning; a directive that
    // was built still gets its "not used" warning.
    assert!(err.contains(&format!("{path}:3:")) && err.contains("not_there.conf"), "{err}");
    assert!(err.contains("parameter 'unused_here' in <match s.**> is not used"), "{err}");

    // Broken section structure: every syntax error is listed; plugins are not checked on a guessed tree.
    let conf = write_conf(
        &dir,
        "structure.conf",
        "<source>\n  @type sample\n  <parse>\n    @type json\n</source>\n</match>\n\
         <match a>\n  @type nope\n  v \"#{nil.upcase}\"\n</match>\n<filter b>\n  @type grep\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = conf.display().to_string();
    for (line, what) in [(3, "<parse> is not closed"), (6, "</match>"), (9, "upcase"), (11, "<filter> is not closed")] {
        assert!(err.contains(&format!("error: {path}:{line}:")) && err.contains(what), "{line} {what}: {err}");
    }
    assert!(err.contains("the configuration has 4 error(s)") && !err.contains("nope'"), "{err}");
}

/// A YAML configuration reports every directive and parameter in error in one `--dry-run`, as the
/// Fluentd syntax does, and the directives without errors are still checked.
#[test]
fn dry_run_reports_every_yaml_error_in_one_pass() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "fluent.yaml",
        "config:\n\
         \x20 - source:\n\
         \x20     $type: sample\n\
         \x20     $bogus: 1\n\
         \x20     tag: ok\n\
         \x20 - sauce:\n\
         \x20     $type: sample\n\
         \x20 - match:\n\
         \x20     $tag: ok\n\
         \x20     $type: no_such_output\n\
         \x20 - match:\n\
         \x20     $tag: other\n\
         \x20     $type: stdout\n\
         \x20     path: !fluent/s \"#{File.read('/etc/hostname')}\"\n\
         \x20 - !include not_there.yaml\n\
         \x20 - match:\n\
         \x20     $tag: last\n\
         \x20     $type: stdout\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").env("SLUICE_LOG", "warn").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = conf.display().to_string();
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    for (line, what) in [
        (4, "unknown special key '$bogus'"),
        (6, "unknown directive 'sauce'"),
        (10, "unknown output plugin 'no_such_output'"),
        (14, "File.read"),
        (15, "not_there.yaml"),
    ] {
        assert!(
            errors.iter().any(|l| l.contains(&format!("{path}:{line}")) && l.contains(what)),
            "{line} {what}: {err}"
        );
    }
    assert_eq!(errors.len(), 5, "{err}");
    assert!(err.contains("the configuration has 5 error(s)"), "{err}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = sluice().args(["-c", "/nonexistent/fluent.conf", "--dry-run"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fluent.conf"));
}

#[test]
fn runs_until_sigterm_and_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "run.conf",
        "<source>\n  @type sample\n  tag demo.hello\n  rate 20\n  sample {\"message\":\"hi\"}\n</source>\n<match demo.**>\n  @type stdout\n</match>\n",
    );
    let mut child = sluice().arg("-c").arg(&conf).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            break child.wait_with_output().expect("output");
        }
        assert!(start.elapsed() < Duration::from_secs(15), "sluice did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "no events printed");
    for l in lines {
        assert!(l.contains(" demo.hello: {\"message\":\"hi\"}"), "unexpected line {l:?}");
    }
}

fn dry_run(conf: &std::path::Path) -> (bool, String) {
    let out = sluice().arg("-c").arg(conf).arg("--dry-run").env("SLUICE_LOG", "warn").output().expect("run");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn dry_run_explains_unknown_plugins_and_skips_warnings_of_failed_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        &dir,
        "unknown.conf",
        "<match es.**>\n  @type elasticsearch\n  host es.local\n  port 9200\n</match>\n\
         <match k.**>\n  @type kinesis_stream\n  stream_name x\n</match>\n\
         <match s.**>\n  @type stdout\n  bogus_param 1\n</match>\n\
         <match t.**>\n  @type kinesis_streams\n  region us-east-1\n  stream_name s\n  flush_interval 1e30\n</match>\n",
    );
    let (ok, out) = dry_run(&conf);
    assert!(!ok);
    let path = conf.display().to_string();
    assert!(out.contains(&format!("{path}:2: unknown output plugin 'elasticsearch'")), "{out}");
    assert!(out.contains("'elasticsearch' (fluent-plugin-elasticsearch) is not supported by sluice"), "{out}");
    assert!(out.contains(&format!("{path}:7: unknown output plugin 'kinesis_stream'")), "{out}");
    assert!(out.contains("did you mean 'kinesis_streams'?"), "{out}");
    // A huge duration is a config error with its line, not a panic.
    assert!(out.contains(&format!("{path}:18:")) && out.contains("flush_interval"), "{out}");
    // Every problem in one pass, and no "not used" noise from the plugins that failed.
    assert!(out.contains("the configuration has 3 error(s)"), "{out}");
    assert!(!out.contains("'host'") && !out.contains("'port'") && !out.contains("'stream_name'"), "{out}");
    // A plugin that did configure still gets its warning.
    assert!(out.contains("parameter 'bogus_param' in <match s.**> is not used"), "{out}");
}

#[test]
fn dry_run_accepts_v012_parameters_without_not_used_warnings() {
    let dir = tempfile::tempdir().expect("tmp");
    // The pos file in a directory of the test's own (sluice refuses a world-writable one such as /tmp).
    let pos = dir.path().join("x.pos");
    let conf = write_conf(
        &dir,
        "old.conf",
        &format!("<source>\n  type tail\n  path /var/log/containers/*.log\n  pos_file {}\n  tag k.*\n  \
         format /^(?<time>\\S+) (?<msg>.*)$/\n  time_format %Y-%m-%dT%H:%M:%S.%NZ\n  keep_time_key true\n</source>\n\
         <match k.**>\n  type file\n  path /tmp/sluice-old/out\n  buffer_type file\n  buffer_path /tmp/sluice-old/buf\n  \
         buffer_chunk_limit 8MB\n  buffer_queue_limit 64\n  flush_interval 5s\n  retry_limit 3\n  max_retry_wait 1m\n  \
         num_threads 2\n  time_slice_format %Y%m%d%H\n  time_slice_wait 1m\n  utc\n  format json\n  \
         include_time_key true\n  include_tag_key true\n</match>\n",
            pos.display()
        ),
    );
    let (ok, out) = dry_run(&conf);
    assert!(ok, "{out}");
    assert!(!out.contains("is not used"), "{out}");
}

#[test]
fn included_secrets_are_not_echoed_in_warnings() {
    let dir = tempfile::tempdir().expect("tmp");
    write_conf(&dir, "shadow", "root:$6$s3cr3tHASHvalue:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
    let conf = write_conf(
        &dir,
        "inc.conf",
        "@include shadow\n<source>\n  @type sample\n  tag t\n</source>\n<match t>\n  @type null\n</match>\n",
    );
    let (_, out) = dry_run(&conf);
    assert!(!out.contains("s3cr3tHASH") && !out.contains("daemon:*"), "{out}");
    assert!(out.contains("not a parameter name"), "{out}");
    let conf = write_conf(&dir, "zero.conf", "@include /dev/zero\n");
    let (ok, out) = dry_run(&conf);
    assert!(!ok && out.contains("zero.conf:1") && out.contains("not a regular file"), "{out}");
}

/// `--dry-run` says, before deployment, which directory sluice could not write: a buffer, a pos file, a file
/// output, `<system> root_dir`. It creates none of them.
#[test]
fn dry_run_checks_the_directories_sluice_must_write() {
    let dir = tempfile::tempdir().expect("tmp");
    // A regular file where a directory must be: unwritable for every user, root included.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write blocker");
    let b = blocker.display();
    let conf = write_conf(
        &dir,
        "dirs.conf",
        &format!(
            "<system>\n  root_dir {b}/root\n</system>\n\
             <source>\n  @type tail\n  path {d}/in/*.log\n  pos_file {b}/tail.pos\n  tag t\n  <parse>\n    @type none\n  </parse>\n</source>\n\
             <match t>\n  @type file\n  path {b}/out/${{tag}}/%Y%m%d\n  <buffer tag,time>\n    path {d}/ok/buffer\n  </buffer>\n</match>\n\
             <match u>\n  @type file\n  path {d}/fine2/out\n  <buffer>\n    @type file\n    path {b}/buf\n  </buffer>\n</match>\n\
             <match v>\n  @type file\n  path {d}/fine/out\n</match>\n",
            d = dir.path().display()
        ),
    );
    let (ok, out) = dry_run(&conf);
    assert!(!ok, "{out}");
    let path = conf.display().to_string();
    assert!(out.contains(&format!("{path}:2: root_dir: directory {b}/root cannot be created")), "{out}");
    assert!(out.contains(&format!("{path}:7: pos_file: {b} exists and is not a directory")), "{out}");
    assert!(out.contains(&format!("{path}:15: path: directory {b}/out cannot be created")), "{out}");
    assert!(out.contains(&format!("{path}:25: buffer path: directory {b}/buf cannot be created")), "{out}");
    assert!(out.contains("the configuration has 4 error(s)"), "{out}");
    // The writable ones are fine, and nothing was created by checking.
    assert!(
        !dir.path().join("ok").exists() && !dir.path().join("fine").exists() && !dir.path().join("fine2").exists(),
        "a dry run creates nothing"
    );
}

/// Reading a configuration (`explain`, `iam-policy`) does not depend on this machine's directories: a
/// production config whose state directory does not exist here is still explained.
#[test]
fn explain_does_not_check_this_machines_directories() {
    let dir = tempfile::tempdir().expect("tmp");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write blocker");
    let conf = write_conf(
        &dir,
        "prod.conf",
        &format!(
            "<source>\n  @type sample\n  tag app\n</source>\n<match app>\n  @type file\n  path {}/out/app\n</match>\n",
            blocker.display()
        ),
    );
    let out = sluice().arg("explain").arg("-c").arg(&conf).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, text) = dry_run(&conf);
    assert!(!ok && text.contains("cannot be created"), "--dry-run still checks: {text}");
}
