//! Issue 15, item 0, end to end: containerd cuts long lines into `P` parts by byte count, often inside a
//! Korean character. tail → cri (nested json) → mask → file: for a cut at every byte of the message, the
//! delivered record carries the whole text with its password masked, never the value and never U+FFFD.
use std::sync::Arc;

#[test]
fn a_password_behind_a_korean_key_split_at_every_byte_is_masked() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.log");
    let outdir = dir.path().join("out");
    std::fs::create_dir_all(&outdir).expect("mkdir");
    let json = r#"{"msg":"임시 비밀번호=hunter2pass 발급"}"#.as_bytes();
    let mut data = Vec::new();
    for cut in 1..json.len() {
        data.extend_from_slice(b"2024-01-01T10:00:00.000000001Z stdout P ");
        data.extend_from_slice(&json[..cut]);
        data.extend_from_slice(b"\n2024-01-01T10:00:00.000000002Z stdout F ");
        data.extend_from_slice(&json[cut..]);
        data.push(b'\n');
    }
    std::fs::write(&input, &data).expect("write input");
    let conf = format!(
        r#"
<source>
  @type tail
  path {input}
  read_from_head true
  exit_on_eof true
  tag app
  <parse>
    @type cri
    <parse>
      @type json
    </parse>
  </parse>
</source>
<filter app>
  @type mask
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
        let waited = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while !run.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        if waited.is_err() {
            shutdown.trigger();
        }
        run.await.expect("join").expect("engine ran");
    });
    let mut delivered = String::new();
    for e in std::fs::read_dir(&outdir).expect("out dir").flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            delivered.push_str(&std::fs::read_to_string(e.path()).expect("delivered text"));
        }
    }
    assert_eq!(delivered.lines().count(), json.len() - 1, "one record per cut");
    assert!(!delivered.contains("hunter2pass"), "a password was delivered unmasked:\n{delivered}");
    assert!(!delivered.contains('\u{FFFD}'), "a character was corrupted:\n{delivered}");
    for line in delivered.lines() {
        assert!(line.contains("임시 비밀번호=") && line.contains(" 발급"), "{line}");
    }
}
