//! End to end in one process: `tail` → `mask` → `file`. No personal value from the input may appear in
//! the output files, nor in sluice's own log output (captured at trace level).
mod common;
use common::corpus_path;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every file under `dir`, buffer chunks included; the text of the delivered `*.log` files apart.
fn read_all_files(dir: &std::path::Path, out: &mut String, delivered: &mut String) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            read_all_files(&p, out, delivered);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&b));
            if p.extension().is_some_and(|e| e == "log") {
                delivered.push_str(&String::from_utf8_lossy(&b));
            }
        }
    }
}

#[test]
fn tail_mask_file_leaks_nothing() {
    let sink = LogSink::default();
    let writer = sink.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init();

    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.log");
    let outdir = dir.path().join("out");
    std::fs::create_dir_all(&outdir).expect("mkdir");

    // Every corpus line with personal data, as the `message` of a JSON log line, plus structured records.
    let corpus = std::fs::read_to_string(corpus_path()).expect("corpus");
    let mut secrets: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for l in corpus.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let pii = v["pii"].as_array().expect("pii");
        if pii.is_empty() {
            continue;
        }
        for p in pii {
            secrets.push(p["value"].as_str().expect("value").to_string());
        }
        lines.push(serde_json::json!({"message": v["text"], "level": "info"}).to_string());
    }
    let structured = [
        (
            r#"{"user":{"name":"kim","phone":"010-2345-6789","email":"kim.minji@example.com"},"password":"hunter2-Secret!"}"#,
            vec!["010-2345-6789", "kim.minji@example.com", "hunter2-Secret!"],
        ),
        (
            r#"{"req":"POST /login","headers":{"Authorization":"Bearer abcDEF123456ghiJKL"},"body":"password=opensesame99&user=lee"}"#,
            vec!["abcDEF123456ghiJKL", "opensesame99"],
        ),
        (
            r#"{"items":[{"card":"4111 1111 1111 1111"},{"note":"환불 계좌 주민번호 900101-1234567"}]}"#,
            vec!["4111 1111 1111 1111", "900101-1234567"],
        ),
    ];
    for (line, vals) in &structured {
        lines.push(line.to_string());
        secrets.extend(vals.iter().map(|s| s.to_string()));
    }
    std::fs::write(&input, lines.join("\n") + "\n").expect("write input");

    let conf = format!(
        r#"
<source>
  @type tail
  path {input}
  pos_file {pos}
  read_from_head true
  exit_on_eof true
  tag app
  <parse>
    @type json
  </parse>
</source>
<filter app>
  @type mask
  detectors all
</filter>
<match app>
  @type file
  path {out}/app
  append true
  <buffer>
    flush_at_shutdown true
  </buffer>
</match>
"#,
        input = input.display(),
        pos = dir.path().join("in.pos").display(),
        out = outdir.display(),
    );
    let root = sluice_core::config::parse_str(&conf, std::path::Path::new("e2e.conf")).expect("config parses");
    let mut reg = sluice_core::plugin::Registry::new();
    sluice_plugins::register_all(&mut reg);
    sluice_mask::register(&mut reg);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let assembled = sluice_core::engine::assemble(&root, Arc::new(reg), false);
        let engine = assembled.engine.unwrap_or_else(|| panic!("config errors: {:?}", assembled.diagnostics.errors));
        let shutdown = engine.ctx.shutdown.clone();
        let run = tokio::spawn(engine.run());
        // exit_on_eof stops the engine; the timeout only guards against a hang.
        if tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while !run.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .is_err()
        {
            shutdown.trigger();
        }
        run.await.expect("join").expect("engine ran");
    });

    let mut output = String::new();
    let mut delivered = String::new();
    read_all_files(&outdir, &mut output, &mut delivered);
    let log = String::from_utf8_lossy(&sink.0.lock().expect("log")).into_owned();
    assert_eq!(delivered.lines().count(), lines.len(), "every record reaches the file");
    assert!(delivered.contains("[REDACTED:email]") && delivered.contains("[REDACTED:card]"), "masked output");
    for s in &secrets {
        assert!(!output.contains(s.as_str()), "output leaks a {}-byte personal value", s.len());
        assert!(!log.contains(s.as_str()), "sluice's log leaks a {}-byte personal value", s.len());
    }
}
