//! Monitoring end to end: sluice runs a workload whose sink fails (Slack pointed at a closed port) and a
//! tag nothing matches; the endpoints are read the way operators read them: the Prometheus exposition
//! through the real `prometheus_client` parser (text and OpenMetrics), a real Prometheus server scraping
//! sluice and answering PromQL, monitor_agent's JSON, and the health endpoint.
mod common;

use common::{free_port, http, python, script, wait_for};
use serde_json::Value as J;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Sluice(Child);
impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Ports {
    prom: u16,
    agent: u16,
}

fn start(dir: &std::path::Path) -> (Sluice, Ports) {
    let ports = Ports { prom: free_port(), agent: free_port() };
    let closed = free_port();
    let conf = format!(
        r#"
<source>
  @type sample
  tag app.web
  sample {{"message":"boom","latency":0.3,"code":500}}
  rate 20
</source>
<source>
  @type sample
  tag nothing.matches
  rate 20
</source>
<source>
  @type prometheus
  bind 127.0.0.1
  port {prom}
</source>
<source>
  @type prometheus_monitor
  <labels>
    host ${{hostname}}
  </labels>
</source>
<source>
  @type prometheus_output_monitor
</source>
<source>
  @type prometheus_tail_monitor
</source>
<source>
  @type monitor_agent
  bind 127.0.0.1
  port {agent}
</source>
<filter app.**>
  @type prometheus
  <metric>
    name fluentd_input_status_num_records_total
    type counter
    desc The total number of incoming records
    <labels>
      tag ${{tag}}
      part ${{tag_parts[1]}}
      hostname ${{hostname}}
    </labels>
  </metric>
  <metric>
    name app_latency_seconds
    type histogram
    desc Latency
    key $.latency
    buckets 0.1,0.5,1.0
  </metric>
</filter>
<match app.**>
  @type slack
  @id failing_slack
  webhook_url http://127.0.0.1:{closed}/hook
  <buffer>
    flush_interval 0.2s
    retry_wait 0.2s
    retry_max_interval 1s
    retry_forever true
  </buffer>
</match>
"#,
        prom = ports.prom,
        agent = ports.agent,
    );
    let path = dir.join("fluent.conf");
    std::fs::File::create(&path).and_then(|mut f| f.write_all(conf.as_bytes())).expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-q")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sluice");
    (Sluice(child), ports)
}

fn get(port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_string()))
}

/// Parse an exposition with the real prometheus_client parser.
fn parse(fmt: &str, body: &str) -> J {
    let mut child = Command::new(python())
        .arg(script("parse_prometheus.py"))
        .arg(fmt)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "prometheus_client refused the {fmt} exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser JSON")
}

/// The value of the sample `name` whose labels include every pair of `want`.
fn value(fams: &J, family: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    fams[family]["samples"].as_array()?.iter().find_map(|s| {
        let labels = &s[1];
        (s[0] == name && want.iter().all(|(k, v)| labels[*k] == *v)).then(|| s[2].as_f64()).flatten()
    })
}

fn have_parser() -> bool {
    Command::new(python()).args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success())
}

#[test]
fn prometheus_endpoint_monitor_agent_and_health_under_a_failing_sink() {
    if !have_parser() {
        println!("SKIPPED: prometheus_client is not installed for {}", python().display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, ports) = start(dir.path());
    let health = wait_for("health endpoint ready", Duration::from_secs(20), || {
        get(ports.prom, "/api/health", None).filter(|(s, _)| *s == 200)
    });
    let h: J = serde_json::from_str(&health.1).expect("health JSON");
    assert_eq!(h["ready"], true);
    assert_eq!(get(ports.agent, "/healthz", None).map(|r| r.0), Some(200), "every monitoring port answers health");

    // Wait until the failing sink has failed a few times and records were counted.
    let fams = wait_for("errors of the failing sink", Duration::from_secs(30), || {
        let (status, body) = get(ports.prom, "/metrics", None)?;
        assert_eq!(status, 200);
        let f = parse("text", &body);
        let errors = value(
            &f,
            "fluentd_output_status_num_errors",
            "fluentd_output_status_num_errors",
            &[("plugin_id", "failing_slack")],
        )?;
        (errors >= 2.0).then_some(f)
    });
    let slack = [("plugin_id", "failing_slack"), ("type", "slack")];
    for g in [
        "fluentd_output_status_buffer_queue_length",
        "fluentd_output_status_buffer_total_bytes",
        "fluentd_output_status_retry_count",
        "fluentd_output_status_emit_records",
        "fluentd_output_status_write_count",
        "fluentd_output_status_retry_wait",
        "fluentd_output_status_buffer_available_space_ratio",
    ] {
        assert_eq!(fams[g]["type"], "gauge", "{g}");
        assert!(value(&fams, g, g, &slack).is_some(), "{g} for the slack output");
    }
    assert!(
        value(&fams, "fluentd_output_status_emit_records", "fluentd_output_status_emit_records", &slack) > Some(0.0)
    );
    assert!(
        value(&fams, "fluentd_output_status_write_count", "fluentd_output_status_write_count", &slack) >= Some(2.0)
    );
    let ratio = value(
        &fams,
        "fluentd_output_status_buffer_available_space_ratio",
        "fluentd_output_status_buffer_available_space_ratio",
        &slack,
    )
    .unwrap();
    assert!((0.0..=100.0).contains(&ratio), "{ratio}");
    let host = fams["fluentd_status_retry_count"]["samples"][0][1]["host"].as_str().unwrap_or_default().to_string();
    assert!(!host.is_empty() && !host.contains("${"), "prometheus_monitor <labels> expands ${{hostname}}: {host:?}");
    assert!(
        value(
            &fams,
            "fluentd_status_retry_count",
            "fluentd_status_retry_count",
            &[("plugin_id", "failing_slack"), ("plugin_category", "output")]
        ) >= Some(2.0)
    );
    // The record metrics of <filter @type prometheus>.
    assert_eq!(fams["fluentd_input_status_num_records"]["type"], "counter");
    let n = value(
        &fams,
        "fluentd_input_status_num_records",
        "fluentd_input_status_num_records_total",
        &[("tag", "app.web"), ("part", "web")],
    );
    assert!(n > Some(0.0), "{n:?}");
    assert_eq!(fams["app_latency_seconds"]["type"], "histogram");
    let le05 = value(&fams, "app_latency_seconds", "app_latency_seconds_bucket", &[("le", "0.5")]).unwrap();
    let le01 = value(&fams, "app_latency_seconds", "app_latency_seconds_bucket", &[("le", "0.1")]).unwrap();
    assert!(le05 > 0.0 && le01 == 0.0, "latency 0.3 falls in (0.1, 0.5]: {le01} {le05}");
    // sluice's own metrics.
    assert!(value(&fams, "sluice_output_write_errors", "sluice_output_write_errors_total", &slack) >= Some(2.0));
    let unmatched = value(&fams, "sluice_records_dropped", "sluice_records_dropped_total", &[("reason", "unmatched")]);
    assert!(unmatched > Some(0.0), "unmatched records are counted as dropped: {unmatched:?}");
    assert!(value(&fams, "sluice_slack_alerts_suppressed", "sluice_slack_alerts_suppressed_total", &slack).is_some());

    // OpenMetrics when asked for, parsed by the OpenMetrics parser.
    let (status, om) = get(ports.prom, "/metrics", Some("application/openmetrics-text; version=1.0.0")).unwrap();
    assert_eq!(status, 200);
    assert!(om.ends_with("# EOF\n"));
    let omf = parse("openmetrics", &om);
    assert!(value(&omf, "sluice_output_write_errors", "sluice_output_write_errors_total", &slack) >= Some(2.0));
    assert_eq!(get(ports.prom, "/aggregated_metrics", None).map(|r| r.0), Some(200));
    assert_eq!(get(ports.prom, "/nope", None).map(|r| r.0), Some(404));

    // monitor_agent.
    let (status, body) = get(ports.agent, "/api/plugins.json", None).unwrap();
    assert_eq!(status, 200);
    let plugins: J = serde_json::from_str(&body).expect("plugins JSON");
    let list = plugins["plugins"].as_array().expect("plugins");
    let out = list.iter().find(|p| p["plugin_id"] == "failing_slack").expect("the slack output is listed");
    assert_eq!(out["plugin_category"], "output");
    assert_eq!(out["type"], "slack");
    assert_eq!(out["output_plugin"], true);
    assert_eq!(out["config"]["webhook_url"], "xxxxxx", "secrets are masked");
    assert!(out["retry_count"].as_u64() >= Some(2));
    assert!(out["buffer_queue_length"].is_u64() && out["buffer_total_queued_size"].is_u64());
    assert!(out["retry"].is_object());
    let filter = list.iter().find(|p| p["plugin_category"] == "filter").expect("the filter is listed");
    assert!(filter["plugin_id"].as_str().unwrap().starts_with("object:"), "{filter}");
    assert_eq!(filter["output_plugin"], false);
    assert!(list.iter().any(|p| p["type"] == "sample" && p["plugin_category"] == "input"));
    let (_, body) = get(ports.agent, "/api/plugins.json?with_config=false&@id=failing_slack", None).unwrap();
    let only: J = serde_json::from_str(&body).unwrap();
    assert_eq!(only["plugins"].as_array().map(Vec::len), Some(1));
    assert!(only["plugins"][0].get("config").is_none());
    let (_, ltsv) = get(ports.agent, "/api/plugins", None).unwrap();
    assert!(ltsv.lines().any(|l| l.split('\t').any(|f| f == "plugin_id:failing_slack")), "{ltsv}");
    assert!(!ltsv.contains("127.0.0.1:"), "the webhook never appears: {ltsv}");
}

/// A real Prometheus server scrapes sluice and answers PromQL for the metrics dashboards use.
#[test]
fn a_real_prometheus_scrapes_sluice() {
    let Some(bin) =
        ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        println!("SKIPPED: the prometheus server is not installed (Debian package prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, ports) = start(dir.path());
    let web = free_port();
    let conf = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        ports.prom
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, conf).unwrap();
    let prom = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prom = Sluice(prom);
    let query = |q: &str| -> Option<J> {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace(' ', "%20").replace('"', "%22").replace('{', "%7B").replace('}', "%7D").replace('>', "%3E")
        );
        let (status, body) = http(web, "GET", &path, "").ok()?;
        if status != 200 {
            return None;
        }
        let j: J = serde_json::from_str(&body).ok()?;
        let r = j["data"]["result"].as_array()?.clone();
        (!r.is_empty()).then_some(J::Array(r))
    };
    let up = wait_for("Prometheus scraped sluice", Duration::from_secs(60), || query("up{job=\"sluice\"} == 1"));
    assert_eq!(up[0]["value"][1], "1");
    let errs = wait_for("num_errors of the failing sink", Duration::from_secs(60), || {
        query("fluentd_output_status_num_errors{plugin_id=\"failing_slack\"} > 0")
    });
    assert_eq!(errs[0]["metric"]["type"], "slack");
    for q in [
        "fluentd_output_status_buffer_queue_length{plugin_id=\"failing_slack\"}",
        "fluentd_status_retry_count{plugin_category=\"output\"}",
        "sum(rate(fluentd_input_status_num_records_total[30s]))",
        "sluice_records_dropped_total{reason=\"unmatched\"} > 0",
        "histogram_quantile(0.9, sum by (le) (rate(app_latency_seconds_bucket[30s])))",
    ] {
        wait_for(q, Duration::from_secs(30), || query(q));
    }
}

/// prometheus_tail_monitor's per-file gauges and tail's own drop counters, read through the real parser:
/// the position equals the bytes written, the inode is the file's, and each kind of dropped line is counted.
#[test]
fn tail_positions_and_drops_are_exported() {
    use std::os::unix::fs::MetadataExt;
    if !have_parser() {
        println!("SKIPPED: prometheus_client is not installed for {}", python().display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let long = "x".repeat(300);
    let body = format!("{{\"a\":1}}\nnot json\n{{\"msg\":\"{long}\"}}\n{{\"a\":2}}\n");
    std::fs::write(&log, &body).unwrap();
    let prom = free_port();
    let conf = format!(
        r#"
<source>
  @type tail
  @id app_tail
  path {log}
  pos_file {dir}/app.pos
  read_from_head true
  max_line_size 200
  tag app
  <parse>
    @type json
  </parse>
</source>
<source>
  @type prometheus
  bind 127.0.0.1
  port {prom}
</source>
<source>
  @type prometheus_tail_monitor
</source>
<match app>
  @type null
</match>
"#,
        log = log.display(),
        dir = dir.path().display(),
    );
    let path = dir.path().join("fluent.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["-q", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sluice");
    let _sluice = Sluice(child);
    let file = log.display().to_string();
    let at_file = [("plugin_id", "app_tail"), ("type", "tail"), ("path", file.as_str())];
    let fams = wait_for("the tail position reaches the end of the file", Duration::from_secs(30), || {
        let (_, text) = get(prom, "/metrics", None)?;
        let f = parse("text", &text);
        let pos = value(&f, "fluentd_tail_file_position", "fluentd_tail_file_position", &at_file)?;
        (pos == body.len() as f64).then_some(f)
    });
    let ino = std::fs::metadata(&log).unwrap().ino() as f64;
    assert_eq!(value(&fams, "fluentd_tail_file_inode", "fluentd_tail_file_inode", &at_file), Some(ino));
    let tail = [("plugin_id", "app_tail"), ("type", "tail")];
    assert_eq!(value(&fams, "fluentd_tail_file_opened", "fluentd_tail_file_opened", &tail), Some(1.0));
    assert_eq!(
        value(&fams, "sluice_tail_lines_too_long", "sluice_tail_lines_too_long_total", &tail),
        Some(1.0),
        "the 300-byte line is over max_line_size"
    );
    assert_eq!(value(&fams, "sluice_tail_unmatched_lines", "sluice_tail_unmatched_lines_total", &tail), Some(1.0));
    assert_eq!(value(&fams, "sluice_tail_events_emitted", "sluice_tail_events_emitted_total", &tail), Some(2.0));
    let dropped = |reason: &str| {
        value(
            &fams,
            "sluice_records_dropped",
            "sluice_records_dropped_total",
            &[("plugin_id", "app_tail"), ("reason", reason)],
        )
    };
    assert_eq!(dropped("unparsed"), Some(1.0));
    assert_eq!(dropped("line_too_long"), Some(1.0));
    assert_eq!(value(&fams, "sluice_tail_file_lag_bytes", "sluice_tail_file_lag_bytes", &at_file), Some(0.0));
}
