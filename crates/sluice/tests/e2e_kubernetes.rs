//! The whole problem end to end (issue 10): the real `sluice` binary runs examples/kubernetes/fluent.conf
//! unchanged, with its endpoints and directories pointed (through the environment) at moto (Kinesis,
//! Firehose, S3), the Cloud Logging fake and the Slack fake. It tails CRI log files of the application1
//! container laid out as kubelet does (/var/log/containers symlinks to /var/log/pods files), sees one of
//! them rotated mid-run, and the test then checks every destination as a user would. The destinations
//! misbehave on the way (Kinesis throttles some records, Cloud Logging answers 503, Slack 429), and a
//! second test stops and restarts sluice during a full outage (file buffers and pos_file on the node).
//! Runs in about 20 s; set SLUICE_E2E_DUMP=1 to print what Slack received and sluice's log.
mod common;

use common::*;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "e2e-shop";
const STREAM: &str = "application1-pii";
const PROJECT: &str = "e2e-project";
const CLUSTER: &str = "e2e-cluster";
const LOCATION: &str = "asia-northeast3";
const WEBHOOK_PATH: &str = "/services/T0E2E/B0E2E/e2eW3bh00kS3cr3t";
const CONTAINER_ID: &str = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";
const OTHER_ID: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d";

/// Where a generated record must end up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dest {
    /// dropped on the node (INFO/WARN without personal data, other containers)
    Nowhere,
    /// Kinesis only (sign-up/payment at INFO)
    Pii,
    /// Cloud Logging only (ERROR)
    Error,
    /// Cloud Logging and Slack (FATAL/CRITICAL)
    Alert,
    /// Kinesis and Cloud Logging (a payment failure at ERROR)
    PiiError,
}

struct Rec {
    trace: String,
    level: &'static str,
    dest: Dest,
    json: String,
}

/// Generates the application's log records and remembers the personal data written.
struct Gen {
    rng: Rng,
    n: u64,
    /// every raw personal value written, in each form it could leak in
    raw: BTreeSet<String>,
    ms: u64,
}

const NAMES: &[&str] = &["김민준", "이서연", "박지호", "최수아", "정예준", "강하은", "윤도윤", "임지유"];

impl Gen {
    fn trace(&mut self) -> String {
        self.n += 1;
        format!("{:016x}{:016x}", self.rng.next(), self.n)
    }

    fn times(&mut self) -> (String, String) {
        self.ms += 7;
        now_stamps(self.ms)
    }

    fn remember(&mut self, v: &str) {
        self.raw.insert(v.to_string());
        let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() >= 10 && !v.contains('@') {
            self.raw.insert(digits.clone());
            if digits.len() == 16 {
                // a card also in groups separated by spaces
                self.raw.insert(format!("{} {} {} {}", &digits[0..4], &digits[4..8], &digits[8..12], &digits[12..16]));
            }
        }
    }

    fn rec(&mut self, level: &'static str, dest: Dest, body: J) -> Rec {
        let trace = self.trace();
        let (t, _) = self.times();
        let mut m = json!({"time": t, "level": level, "trace_id": trace});
        if let (Some(m), J::Object(b)) = (m.as_object_mut(), body) {
            m.extend(b);
        }
        Rec { trace, level, dest, json: m.to_string() }
    }

    fn signup(&mut self) -> Rec {
        let name = NAMES[self.rng.below(NAMES.len() as u64) as usize];
        let phone = phone(&mut self.rng);
        let rrn = rrn(&mut self.rng);
        let email = format!("member{}.{}@mail.example.co.kr", self.n, self.rng.below(1000));
        let compact_phone: String = phone.chars().filter(|c| *c != '-').collect();
        for v in [&phone, &rrn, &email] {
            self.remember(v);
        }
        self.rec(
            "INFO",
            Dest::Pii,
            json!({
                "category": "signup",
                "message": format!("회원가입 완료: {name} 연락처 {compact_phone}, 주민번호 {rrn} 본인확인 ok, 인증메일 {email}"),
                "user": {"name": name, "email": email, "phone": phone, "rrn": rrn}
            }),
        )
    }

    fn payment(&mut self, level: &'static str) -> Rec {
        let card = card(&mut self.rng);
        let email = format!("buyer{}@example.com", self.n);
        let phone = phone(&mut self.rng);
        for v in [&card, &email, &phone] {
            self.remember(v);
        }
        let digits: String = card.chars().filter(|c| c.is_ascii_digit()).collect();
        assert!(luhn_ok(&digits), "test data: {digits} must be a valid card number");
        let amount = 1000 * (1 + self.rng.below(90));
        let order_id = format!("ORD-{}", self.rng.digits(13));
        let (dest, message) = if level == "ERROR" {
            (Dest::PiiError, format!("결제 실패: 카드 {card} 한도 초과 (고객 {email}, {phone})"))
        } else {
            (Dest::Pii, format!("결제 승인: 카드번호 {card}, 금액 {amount}원, 영수증 {email}"))
        };
        self.rec(
            level,
            dest,
            json!({
                "category": "payment",
                "message": message,
                "order_id": order_id,
                "payment": {"card_number": digits, "amount": amount, "currency": "KRW"},
                "customer": {"email": email, "phone": phone}
            }),
        )
    }

    fn noise(&mut self) -> Rec {
        let kind = self.rng.below(4);
        let (level, message) = match kind {
            0 => ("INFO", format!("GET /healthz 200 {}ms", self.rng.below(20))),
            1 => ("INFO", format!("order {} shipped", self.rng.digits(13))),
            2 => ("WARN", format!("slow query {}ms on orders", 500 + self.rng.below(900))),
            _ => ("WARN", "cache miss ratio above 0.3".to_string()),
        };
        self.rec(level, Dest::Nowhere, json!({"category": "http", "message": message}))
    }

    /// An ERROR whose message quotes a user's e-mail address (masked before it leaves the node).
    fn mail_error(&mut self) -> Rec {
        let email = format!("notify{}@example.org", self.n);
        self.remember(&email);
        self.rec(
            "ERROR",
            Dest::Error,
            json!({"category": "mail", "message": format!("SMTP 550 mailbox unavailable for {email}")}),
        )
    }

    fn plain_error(&mut self) -> Rec {
        let id = self.rng.digits(13);
        self.rec(
            "ERROR",
            Dest::Error,
            json!({"category": "order", "message": format!("order {id} not found in inventory service")}),
        )
    }

    /// A Java stack trace, long enough that the runtime splits it into CRI partial lines.
    fn stack(&mut self, level: &'static str, exception: &str) -> Rec {
        let mut msg = format!("{exception}: request failed\n");
        for i in 0..40 {
            msg.push_str(&format!(
                "\tat com.example.shop.service.CheckoutService.step{i}(CheckoutService.java:{})\n",
                100 + i
            ));
        }
        msg.push_str("\tat java.base/java.lang.Thread.run(Thread.java:1583)");
        let dest = if level == "ERROR" { Dest::Error } else { Dest::Alert };
        self.rec(level, dest, json!({"category": "checkout", "message": msg}))
    }

    fn pool_exhausted(&mut self) -> Rec {
        let active = 50 + self.rng.below(10);
        self.rec(
            "FATAL",
            Dest::Alert,
            json!({"category": "db", "message": format!("database connection pool exhausted (active={active}, max={active})")}),
        )
    }

    fn disk_full(&mut self) -> Rec {
        self.rec(
            "CRITICAL",
            Dest::Alert,
            json!({"category": "storage", "message": "no space left on device: /data/uploads"}),
        )
    }
}

/// Append records as CRI lines; records over 600 bytes are written as partial (`P`) lines plus a final `F`.
fn write_cri(path: &Path, recs: &[&Rec]) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).expect("open log file");
    let mut out = String::new();
    for r in recs {
        let (_, ts) = now_stamps(0);
        let s = r.json.as_str();
        if s.len() > 600 {
            let mut parts = Vec::new();
            let mut start = 0;
            while s.len() - start > 500 {
                let mut end = start + 500;
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                parts.push(&s[start..end]);
                start = end;
            }
            let last = &s[start..];
            for p in parts {
                out.push_str(&format!("{ts} stdout P {p}\n"));
            }
            out.push_str(&format!("{ts} stdout F {last}\n"));
        } else {
            out.push_str(&format!("{ts} stdout F {s}\n"));
        }
    }
    f.write_all(out.as_bytes()).expect("write log file");
    f.sync_all().ok();
}

/// kubelet's layout: /var/log/pods/NS_POD_UID/CONTAINER/0.log and a /var/log/containers symlink to it.
fn pod_log(root: &Path, ns: &str, pod: &str, container: &str, id: &str) -> (PathBuf, PathBuf) {
    let dir = root.join(format!("var/log/pods/{ns}_{pod}_0b7e1a52-6c1f-4a7e-9d55-1f0c9e2b7a11/{container}"));
    fs::create_dir_all(&dir).expect("pod dir");
    let file = dir.join("0.log");
    File::create(&file).expect("create log");
    let link_dir = root.join("var/log/containers");
    fs::create_dir_all(&link_dir).expect("containers dir");
    let link = link_dir.join(format!("{pod}_{ns}_{container}-{id}.log"));
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    (file, link)
}

fn kinesis_records(moto: &Moto) -> Vec<J> {
    moto.aws("kinesis", STREAM)["records"].as_array().cloned().unwrap_or_default()
}

fn trace_of_kinesis(r: &J) -> String {
    let data: J = serde_json::from_str(r["data"].as_str().unwrap_or("")).unwrap_or(J::Null);
    data["trace_id"].as_str().unwrap_or("").to_string()
}

fn gcp_state(port: u16) -> J {
    get_json(port, "/_control/state")
}

fn slack_state(port: u16) -> J {
    get_json(port, "/_state")
}

fn assert_no_raw(what: &str, text: &str, raw: &BTreeSet<String>) {
    let leaked: Vec<&String> = raw.iter().filter(|v| text.contains(v.as_str())).collect();
    assert!(
        leaked.is_empty(),
        "{} unmasked personal value(s) found in {what}, e.g. {:?}",
        leaked.len(),
        leaked.first()
    );
}

/// The test peers: moto behind the AWS fault proxy, the Cloud Logging fake, the Slack fake.
struct Stack {
    moto: Moto,
    proxy_port: u16,
    gcp_port: u16,
    slack_port: u16,
    key: PathBuf,
    _peers: Vec<Peer>,
}

fn banner_port(banner: &str, prefix: &str, what: &str) -> u16 {
    banner
        .strip_prefix(prefix)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{what} did not start: {banner:?}"))
}

impl Stack {
    fn start(root: &Path) -> Stack {
        let moto = Moto::start();
        moto.aws("setup", STREAM);
        // Kinesis is reached through the fault proxy, so a test can inject throttling and outages.
        let (proxy, banner) = spawn_python_with_banner(
            "aws_fault_proxy",
            &[script("aws_fault_proxy.py").to_str().expect("utf-8 path"), &moto.endpoint()],
        );
        let proxy_port = banner_port(&banner, "PORT ", "aws_fault_proxy.py");
        let key = root.join("gcp-key.json");
        let (gcp, banner) = spawn_python_with_banner(
            "gcp_fake",
            &[
                script("gcp_fake.py").to_str().expect("utf-8 path"),
                "serve",
                "--genkey",
                key.to_str().expect("utf-8 path"),
                "--project",
                PROJECT,
            ],
        );
        let gcp_port = banner_port(&banner, "PORT ", "gcp_fake.py");
        let (slack, banner) = spawn_python_with_banner(
            "slack_fake",
            &[script("slack_fake.py").to_str().expect("utf-8 path"), "--port", "0", "--webhook-path", WEBHOOK_PATH],
        );
        let slack_port = banner_port(&banner, "READY ", "slack_fake.py");
        Stack { moto, proxy_port, gcp_port, slack_port, key, _peers: vec![proxy, gcp, slack] }
    }

    /// Start sluice with examples/kubernetes/fluent.conf, pointed at the peers through the environment.
    fn sluice(&self, root: &Path, stdout: &Path, stderr: &Path) -> Peer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("-c")
            .arg(workspace_root().join("examples/kubernetes/fluent.conf"))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ROLE_ARN")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .envs(aws_env())
            .env("CONTAINER_LOG_DIR", root.join("var/log/containers"))
            .env("APP_NAMESPACE", NS)
            .env("SLUICE_STATE_DIR", root.join("var/lib/sluice"))
            .env("KINESIS_STREAM", STREAM)
            .env("KINESIS_ENDPOINT", format!("http://127.0.0.1:{}", self.proxy_port))
            .env("GCP_PROJECT_ID", PROJECT)
            .env("CLUSTER_NAME", CLUSTER)
            .env("CLUSTER_LOCATION", LOCATION)
            .env("LOGGING_API_URL", format!("http://127.0.0.1:{}", self.gcp_port))
            .env("GOOGLE_APPLICATION_CREDENTIALS", &self.key)
            .env("GCE_METADATA_HOST", format!("127.0.0.1:{}", self.gcp_port))
            .env("SLACK_WEBHOOK_URL", format!("http://127.0.0.1:{}{WEBHOOK_PATH}", self.slack_port))
            .env("SLACK_CHANNEL", "#alerts-e2e")
            .env("K8S_NODE_NAME", "node-e2e-1")
            .env("SLUICE_METRICS_PORT", common::free_port().to_string())
            .stdout(Stdio::from(File::create(stdout).expect("stdout file")))
            .stderr(Stdio::from(File::create(stderr).expect("stderr file")));
        Peer { name: "sluice", child: cmd.spawn().expect("start sluice") }
    }
}

fn sigterm_and_wait(p: &mut Peer) -> std::process::ExitStatus {
    let pid = p.child.id() as libc::pid_t;
    // SAFETY: signalling our own child process by its pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    wait_for("sluice to stop after SIGTERM", Duration::from_secs(40), || p.child.try_wait().ok().flatten())
}

#[test]
fn kubernetes_example_end_to_end() {
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("sluice-e2e").tempdir().expect("tempdir");
    let root = tmp.path();
    let state_dir = root.join("var/lib/sluice");
    fs::create_dir_all(&state_dir).expect("state dir");

    let stack = Stack::start(root);
    let (gcp_port, slack_port, proxy_port) = (stack.gcp_port, stack.slack_port, stack.proxy_port);
    let moto = &stack.moto;
    // Kinesis reports every third record of the first two PutRecords calls as throttled: only those
    // may be sent again.
    let (st, _) = http(
        proxy_port,
        "POST",
        "/__fault",
        r#"{"mode": "partial", "fail_every": 3, "times": 2, "code": "ProvisionedThroughputExceededException"}"#,
    )
    .expect("fault proxy");
    assert_eq!(st, 200);
    // The other destinations start with an outage: Cloud Logging answers 503 once, Slack 429 (Retry-After 1 s)
    // once. Everything must still arrive exactly once.
    let (st, _) = http(gcp_port, "POST", "/_control/queue", r#"[{"status": 503}]"#).expect("gcp queue");
    assert_eq!(st, 200);
    let (st, _) = http(slack_port, "POST", "/_script", r#"[{"status": 429, "retry_after": 1}]"#).expect("slack script");
    assert_eq!(st, 200);

    // --- the node's log files ---------------------------------------------------------------------
    let pod = "application1-7c9d8f6b5-x2k4q";
    let (app_log, _) = pod_log(root, NS, pod, "application1", CONTAINER_ID);
    // Files sluice must not read: another container of the same pod, application1 in another namespace.
    let (sidecar_log, _) = pod_log(root, NS, pod, "istio-proxy", OTHER_ID);
    let (other_ns_log, _) = pod_log(root, "staging", "application1-5f4d3c2b1-q9w8e", "application1", OTHER_ID);

    let mut g = Gen { rng: Rng::new(0x5eed_2026_1125), n: 0, raw: BTreeSet::new(), ms: 0 };
    let mut all: Vec<Rec> = Vec::new();

    // Phase A: written before sluice starts (read_from_head).
    let mut phase_a = Vec::new();
    for i in 0..24 {
        phase_a.push(match i % 8 {
            0 | 3 => g.signup(),
            1 | 5 => g.payment("INFO"),
            2 | 6 => g.noise(),
            4 => g.plain_error(),
            _ => g.noise(),
        });
    }
    phase_a.push(g.payment("ERROR"));
    phase_a.push(g.mail_error());
    phase_a.push(g.pool_exhausted());
    phase_a.push(g.stack("FATAL", "java.lang.IllegalStateException"));
    phase_a.push(g.pool_exhausted());
    phase_a.push(g.stack("ERROR", "java.sql.SQLTransientConnectionException"));
    write_cri(&app_log, &phase_a.iter().collect::<Vec<_>>());
    // Malformed input among them: a message that is not JSON (with a phone number in it) and a line
    // that is not CRI. Both are dropped with a warning that must not quote them.
    let bad_phone = phone(&mut g.rng);
    g.remember(&bad_phone);
    let (_, ts) = now_stamps(0);
    let mut f = OpenOptions::new().append(true).open(&app_log).expect("open log");
    write!(
        f,
        "{ts} stdout F panic: runtime error at user {bad_phone} {{not json\nthis is not a CRI line {bad_phone}\n"
    )
    .expect("write malformed lines");
    drop(f);
    // the next good line is read as usual
    let after_bad = g.plain_error();
    write_cri(&app_log, &[&after_bad]);

    // The same kinds of records in files that are not application1's in namespace NS: never read.
    let mut ignored = vec![g.signup(), g.payment("ERROR"), g.pool_exhausted(), g.mail_error()];
    for r in ignored.iter_mut() {
        r.dest = Dest::Nowhere;
    }
    write_cri(&sidecar_log, &ignored[..2].iter().collect::<Vec<_>>());
    write_cri(&other_ns_log, &ignored[2..].iter().collect::<Vec<_>>());

    // --- sluice ---------------------------------------------------------------------------------------
    let (stdout_path, stderr_path) = (root.join("sluice.stdout"), root.join("sluice.stderr"));
    let mut sluice = stack.sluice(root, &stdout_path, &stderr_path);
    let log = || {
        format!(
            "{}{}",
            fs::read_to_string(&stdout_path).unwrap_or_default(),
            fs::read_to_string(&stderr_path).unwrap_or_default()
        )
    };

    // Phase A delivered to Kinesis before the rotation.
    let pii_a = phase_a.iter().filter(|r| matches!(r.dest, Dest::Pii | Dest::PiiError)).count();
    wait_for("phase A in Kinesis", Duration::from_secs(30), || {
        if let Ok(Some(st)) = sluice.child.try_wait() {
            panic!("sluice exited early ({st}):\n{}", log());
        }
        (kinesis_records(moto).len() >= pii_a).then_some(())
    });

    // --- rotation mid-run: kubelet renames 0.log and the runtime starts a new one -------------------
    let rotated = app_log.with_file_name("0.log.20261125-065000");
    fs::rename(&app_log, &rotated).expect("rotate");
    // the runtime still had the old file open: a last line lands in the rotated file
    let late = vec![g.signup()];
    write_cri(&rotated, &late.iter().collect::<Vec<_>>());
    let mut phase_b = Vec::new();
    for i in 0..12 {
        phase_b.push(match i % 4 {
            0 => g.signup(),
            1 => g.payment("INFO"),
            2 => g.noise(),
            _ => g.plain_error(),
        });
    }
    phase_b.push(g.pool_exhausted());
    phase_b.push(g.disk_full());
    phase_b.push(g.stack("ERROR", "java.util.concurrent.TimeoutException"));
    phase_b.push(g.mail_error());
    write_cri(&app_log, &phase_b.iter().collect::<Vec<_>>());

    all.extend(phase_a);
    all.push(after_bad);
    all.extend(late);
    all.extend(phase_b);

    let want_kinesis: BTreeSet<String> =
        all.iter().filter(|r| matches!(r.dest, Dest::Pii | Dest::PiiError)).map(|r| r.trace.clone()).collect();
    let want_gcp: BTreeMap<String, &'static str> = all
        .iter()
        .filter(|r| matches!(r.dest, Dest::Error | Dest::Alert | Dest::PiiError))
        .map(|r| (r.trace.clone(), r.level))
        .collect();
    let alerts: Vec<&Rec> = all.iter().filter(|r| r.dest == Dest::Alert).collect();
    assert!(want_kinesis.len() >= 15 && want_gcp.len() >= 8 && alerts.len() == 5);

    // --- wait until everything is delivered --------------------------------------------------------
    wait_for("every destination", Duration::from_secs(45), || {
        if let Ok(Some(st)) = sluice.child.try_wait() {
            panic!("sluice exited early ({st}):\n{}", log());
        }
        let k = kinesis_records(moto).len();
        let gc = gcp_state(gcp_port)["entries"].as_array().map(Vec::len).unwrap_or(0);
        let sl = slack_state(slack_port)["received"].as_array().map(Vec::len).unwrap_or(0);
        // three distinct alerts (the pool-exhausted repeats are folded into one)
        (k >= want_kinesis.len() && gc >= want_gcp.len() && sl >= 3).then_some(())
    });
    // give late duplicates a chance to show up before asserting "exactly"
    std::thread::sleep(Duration::from_secs(2));

    // --- graceful stop: SIGTERM flushes the buffers and the open de-duplication windows -------------
    let status = sigterm_and_wait(&mut sluice);
    let sluice_log = log();
    assert!(status.success(), "sluice exit status {status}:\n{sluice_log}");

    // --- Kinesis: exactly the personal-data records, masked ----------------------------------------
    let krecs = kinesis_records(moto);
    let ktraces: Vec<String> = krecs.iter().map(trace_of_kinesis).collect();
    let kset: BTreeSet<String> = ktraces.iter().cloned().collect();
    assert_eq!(ktraces.len(), kset.len(), "records delivered twice to Kinesis");
    assert_eq!(kset, want_kinesis, "Kinesis must hold exactly the personal-data records");
    let ktext: String =
        krecs.iter().map(|r| r["data"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join("\n");
    assert_no_raw("Kinesis", &ktext, &g.raw);
    for r in &krecs {
        let d: J = serde_json::from_str(r["data"].as_str().unwrap_or("")).expect("Kinesis record is JSON");
        assert_eq!(r["partition_key"], d["trace_id"], "partition_key trace_id");
        assert_eq!(d["kubernetes"]["namespace_name"], NS);
        assert_eq!(d["kubernetes"]["container_name"], "application1");
        assert_eq!(d["kubernetes"]["pod_name"], pod);
        assert_eq!(d["docker"]["container_id"], CONTAINER_ID);
        let masked = |v: &J| v.as_str().is_some_and(|s| s.starts_with("[REDACTED"));
        match d["category"].as_str() {
            Some("signup") => {
                for f in ["email", "phone", "rrn"] {
                    assert!(masked(&d["user"][f]), "user.{f} not masked: {}", d["user"][f]);
                }
                // names are not personal data the mask filter can find (documented); they stay
                assert!(d["user"]["name"].is_string());
                let m = d["message"].as_str().unwrap_or("");
                assert!(m.starts_with("회원가입 완료") && m.contains("[REDACTED:"), "{m}");
            }
            Some("payment") => {
                assert!(masked(&d["payment"]["card_number"]));
                assert!(masked(&d["customer"]["email"]) && masked(&d["customer"]["phone"]));
                assert!(d["payment"]["amount"].is_number(), "non-personal fields are kept");
                assert!(d["message"].as_str().unwrap_or("").contains("[REDACTED:card]"));
            }
            other => panic!("unexpected category in Kinesis: {other:?}"),
        }
    }

    let stats = get_json(proxy_port, "/__stats");
    assert!(stats["injected_record_failures"].as_u64().unwrap_or(0) > 0, "no throttling was injected: {stats}");

    // --- S3 (the Kinesis -> Firehose -> S3 leg on the AWS side, played by e2e_aws.py) ---------------
    let s3 = moto.aws("deliver", STREAM);
    let objects = s3["objects"].as_object().cloned().unwrap_or_default();
    assert!(!objects.is_empty(), "no S3 object written");
    let s3_text: String = objects.values().map(|v| v.as_str().unwrap_or("").to_string()).collect();
    for t in &want_kinesis {
        assert!(s3_text.contains(t.as_str()), "record {t} missing in S3");
    }
    assert_no_raw("S3", &s3_text, &g.raw);

    // --- Cloud Logging: every ERROR/FATAL/CRITICAL, right severity and k8s_container resource -------
    let gst = gcp_state(gcp_port);
    assert_eq!(gst["schema_errors"], json!([]), "Cloud Logging schema errors");
    let entries = gst["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(gst["queue_left"], 0, "the scripted 503 was never answered");
    assert!(gst["attempts"].as_array().map_or(0, Vec::len) > 1, "Cloud Logging was not retried after the 503");
    assert_eq!(gst["auth_failures"], json!([]), "Cloud Logging auth failures");
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for e in &entries {
        let p = &e["jsonPayload"];
        let t = p["trace_id"].as_str().unwrap_or("").to_string();
        assert!(
            got.insert(t.clone(), e["severity"].as_str().unwrap_or("").to_string()).is_none(),
            "entry {t} written twice"
        );
        assert_eq!(e["resource"]["type"], "k8s_container", "{}", e["resource"]);
        let l = &e["resource"]["labels"];
        assert_eq!(l["project_id"], PROJECT);
        assert_eq!(l["cluster_name"], CLUSTER);
        assert_eq!(l["location"], LOCATION);
        assert_eq!(l["namespace_name"], NS);
        assert_eq!(l["pod_name"], pod);
        assert_eq!(l["container_name"], "application1");
        assert!(
            e["logName"].as_str().is_some_and(|n| n.starts_with(&format!("projects/{PROJECT}/logs/error."))),
            "{}",
            e["logName"]
        );
        let m = p["message"].as_str().unwrap_or("");
        if m.contains("request failed\n") {
            // the CRI partial lines were joined: the whole stack trace, in order
            assert!(
                m.contains("\tat com.example.shop.service.CheckoutService.step0(")
                    && m.ends_with("\tat java.base/java.lang.Thread.run(Thread.java:1583)"),
                "stack trace not intact"
            );
            assert_eq!(m.lines().count(), 42);
        }
    }
    let want_sev: BTreeMap<String, String> = want_gcp
        .iter()
        .map(|(t, l)| {
            let sev = if *l == "ERROR" { "ERROR" } else { "CRITICAL" };
            (t.clone(), sev.to_string())
        })
        .collect();
    assert_eq!(got, want_sev, "Cloud Logging must hold every error with its severity");
    assert_no_raw("Cloud Logging", &serde_json::to_string(&gst).unwrap_or_default(), &g.raw);

    // --- Slack: FATAL/CRITICAL only, deduplicated ---------------------------------------------------
    let sst = slack_state(slack_port);
    assert_eq!(sst["invalid"], json!([]), "invalid Slack payloads");
    let bodies: Vec<String> =
        sst["received"].as_array().cloned().unwrap_or_default().iter().map(|r| r["body"].to_string()).collect();
    assert_no_raw("Slack", &bodies.join("\n"), &g.raw);
    let not_alerts: Vec<&String> = all
        .iter()
        .filter(|r| r.dest != Dest::Alert)
        .map(|r| &r.trace)
        .chain(ignored.iter().map(|r| &r.trace))
        .collect();
    for b in &bodies {
        assert!(!b.contains("ERROR") || b.contains("FATAL") || b.contains("CRITICAL"), "an ERROR reached Slack: {b}");
        for t in &not_alerts {
            assert!(!b.contains(t.as_str()), "record {t} (not FATAL/CRITICAL) reached Slack");
        }
    }
    let slack_reqs = sst["requests"].as_array().cloned().unwrap_or_default();
    assert!(
        slack_reqs.iter().any(|r| r["cmd"]["status"] == 429),
        "the scripted 429 was never answered: {slack_reqs:?}"
    );
    let summaries: Vec<&String> = bodies.iter().filter(|b| b.contains("more in the last")).collect();
    let firsts: Vec<&String> = bodies.iter().filter(|b| !b.contains("more in the last")).collect();
    assert_eq!(
        firsts.len(),
        3,
        "one message per distinct alert (pool exhausted x3, stack trace, disk full): {firsts:#?}"
    );
    let pool: Vec<&&String> = firsts.iter().filter(|b| b.contains("connection pool exhausted")).collect();
    assert_eq!(pool.len(), 1, "the repeated FATAL is posted once");
    assert!(firsts.iter().any(|b| b.contains("no space left on device")));
    assert!(firsts.iter().any(|b| b.contains("IllegalStateException")));
    assert_eq!(summaries.len(), 1, "one summary of the repeats at shutdown: {summaries:#?}");
    assert!(summaries[0].contains("×2 more"), "{}", summaries[0]);

    // --- nothing from the other containers anywhere ------------------------------------------------
    let everything = format!("{ktext}\n{s3_text}\n{}\n{}", gst, bodies.join("\n"));
    for r in &ignored {
        assert!(!everything.contains(r.trace.as_str()), "a record of another container left the node");
    }

    // --- the node: buffers delivered, no personal data in the state directory or sluice's log -------
    for f in files_under(&state_dir) {
        let bytes = fs::read(&f).unwrap_or_default();
        assert_no_raw(&format!("{}", f.display()), &String::from_utf8_lossy(&bytes), &g.raw);
        let rel = f.strip_prefix(&state_dir).unwrap_or(&f).to_string_lossy().to_string();
        assert!(!rel.starts_with("buffer/") || bytes.is_empty(), "buffer file left after delivery: {rel}");
    }
    assert!(state_dir.join("application1.pos").exists(), "pos_file written");
    assert_no_raw("sluice's log", &sluice_log, &g.raw);
    assert!(!sluice_log.contains("e2eW3bh00kS3cr3t"), "the webhook URL leaked into the log");
    // what an operator looks for in the log: the malformed line and the rotation were noticed
    assert!(sluice_log.contains("line not parsed"), "{sluice_log}");
    assert!(sluice_log.contains("file rotated"), "{sluice_log}");

    drop(sluice);
    eprintln!(
        "end-to-end: {} Kinesis records, {} S3 objects, {} Cloud Logging entries, {} Slack messages \
         ({} summary), {} state files checked, {:?}",
        krecs.len(),
        objects.len(),
        entries.len(),
        bodies.len(),
        summaries.len(),
        files_under(&state_dir).len(),
        started.elapsed()
    );
    if std::env::var_os("SLUICE_E2E_DUMP").is_some() {
        eprintln!("slack: {bodies:#?}\nstate files: {:?}\nlog:\n{sluice_log}", files_under(&state_dir));
    }
}

/// A rolling update during an outage of every destination: the records wait, masked, in the node's file
/// buffers; the pod is stopped (SIGTERM) and a new one started after the destinations are back. The new
/// pod sends what the old one buffered and what was logged in between, each record exactly once (the
/// position file is not re-read from the start).
#[test]
fn outage_and_restart_resume_from_the_node_state() {
    let tmp = tempfile::Builder::new().prefix("sluice-e2e-restart").tempdir().expect("tempdir");
    let root = tmp.path();
    let state_dir = root.join("var/lib/sluice");
    fs::create_dir_all(&state_dir).expect("state dir");
    let stack = Stack::start(root);
    let (gcp_port, slack_port, proxy_port) = (stack.gcp_port, stack.slack_port, stack.proxy_port);

    // Every destination is down: Kinesis 500, Cloud Logging 503, Slack 500.
    let post = |port: u16, path: &str, body: &str| {
        let (st, b) = http(port, "POST", path, body).expect("control request");
        assert_eq!(st, 200, "{path}: {b}");
    };
    post(proxy_port, "/__fault", r#"{"mode": "status", "status": 500, "times": 100000, "type": "InternalFailure"}"#);
    let many = |v: &str| format!("[{}]", vec![v; 500].join(","));
    post(gcp_port, "/_control/queue", &many(r#"{"status": 503}"#));
    post(slack_port, "/_script", &many(r#"{"status": 500}"#));

    let pod = "application1-6b5a4c3d2-r7t8y";
    let (app_log, _) = pod_log(root, NS, pod, "application1", CONTAINER_ID);
    let mut g = Gen { rng: Rng::new(0xbead_2026), n: 0, raw: BTreeSet::new(), ms: 0 };
    let mut first = vec![g.signup(), g.noise(), g.payment("INFO"), g.plain_error()];
    first.extend([g.signup(), g.payment("ERROR"), g.mail_error(), g.pool_exhausted()]);
    write_cri(&app_log, &first.iter().collect::<Vec<_>>());

    let (out1, err1) = (root.join("sluice1.stdout"), root.join("sluice1.stderr"));
    let mut sluice = stack.sluice(root, &out1, &err1);
    // Wait until each destination has been tried and has failed at least once.
    wait_for("failed delivery attempts", Duration::from_secs(30), || {
        let proxy = get_json(proxy_port, "/__stats");
        let gcp = get_json(gcp_port, "/_control/state");
        let slack = get_json(slack_port, "/_state");
        (proxy["injected_status"].as_u64().unwrap_or(0) > 0
            && gcp["attempts"].as_array().map_or(0, Vec::len) > 0
            && slack["requests"].as_array().map_or(0, Vec::len) > 0)
            .then_some(())
    });
    // The records wait on the node's disk, masked.
    let buffered = |dir: &str| -> String {
        files_under(&state_dir.join("buffer").join(dir))
            .iter()
            .map(|f| String::from_utf8_lossy(&fs::read(f).unwrap_or_default()).into_owned())
            .collect()
    };
    let kinesis_buf = buffered("kinesis");
    for r in first.iter().filter(|r| matches!(r.dest, Dest::Pii | Dest::PiiError)) {
        assert!(kinesis_buf.contains(r.trace.as_str()), "record {} not in the Kinesis file buffer", r.trace);
    }
    assert!(!buffered("cloud_logging").is_empty(), "Cloud Logging buffer empty");
    assert_no_raw("the file buffers during the outage", &buffered(""), &g.raw);

    // Rolling update while the destinations are still down.
    let status = sigterm_and_wait(&mut sluice);
    let log1 =
        format!("{}{}", fs::read_to_string(&out1).unwrap_or_default(), fs::read_to_string(&err1).unwrap_or_default());
    assert!(status.code().is_some(), "sluice did not exit by itself after SIGTERM: {status}\n{log1}");
    // Every line was read and accepted by the buffers: the position file points at the end of the file.
    let pos = fs::read_to_string(state_dir.join("application1.pos")).unwrap_or_default();
    let size = fs::metadata(&app_log).map(|m| m.len()).unwrap_or(0);
    let recorded: Vec<u64> = pos
        .lines()
        .filter(|l| l.contains(pod))
        .filter_map(|l| l.split('\t').nth(1))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .collect();
    assert_eq!(recorded, vec![size], "position file after a graceful stop:\n{pos}(file size {size})");
    assert!(
        buffered("kinesis").contains(first[0].trace.as_str()),
        "undelivered records must stay in the file buffer for the next pod"
    );

    // The application keeps logging in between.
    let second = [g.signup(), g.plain_error(), g.payment("INFO"), g.disk_full(), g.noise()];
    write_cri(&app_log, &second.iter().collect::<Vec<_>>());

    // The destinations come back (the Cloud Logging fake also forgets its access tokens).
    post(proxy_port, "/__fault", r#"{"mode": "pass"}"#);
    post(gcp_port, "/_control/reset", "");
    post(slack_port, "/_reset", "");

    let (out2, err2) = (root.join("sluice2.stdout"), root.join("sluice2.stderr"));
    let mut sluice = stack.sluice(root, &out2, &err2);
    let all: Vec<&Rec> = first.iter().chain(second.iter()).collect();
    let want_kinesis: BTreeSet<String> =
        all.iter().filter(|r| matches!(r.dest, Dest::Pii | Dest::PiiError)).map(|r| r.trace.clone()).collect();
    let want_gcp: BTreeSet<String> = all
        .iter()
        .filter(|r| matches!(r.dest, Dest::Error | Dest::Alert | Dest::PiiError))
        .map(|r| r.trace.clone())
        .collect();
    wait_for("delivery after the restart", Duration::from_secs(45), || {
        if let Ok(Some(st)) = sluice.child.try_wait() {
            panic!("sluice exited early ({st}):\n{}", fs::read_to_string(&err2).unwrap_or_default());
        }
        let k = kinesis_records(&stack.moto).len();
        let gc = get_json(gcp_port, "/_control/state")["entries"].as_array().map_or(0, Vec::len);
        let sl = get_json(slack_port, "/_state")["received"].as_array().map_or(0, Vec::len);
        (k >= want_kinesis.len() && gc >= want_gcp.len() && sl >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = sigterm_and_wait(&mut sluice);
    let log2 =
        format!("{}{}", fs::read_to_string(&out2).unwrap_or_default(), fs::read_to_string(&err2).unwrap_or_default());
    assert!(status.success(), "{status}\n{log2}");

    let krecs = kinesis_records(&stack.moto);
    let ktraces: Vec<String> = krecs.iter().map(trace_of_kinesis).collect();
    let kset: BTreeSet<String> = ktraces.iter().cloned().collect();
    assert_eq!(ktraces.len(), kset.len(), "records delivered twice to Kinesis");
    assert_eq!(kset, want_kinesis);
    let gst = get_json(gcp_port, "/_control/state");
    let gtraces: Vec<String> = gst["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["jsonPayload"]["trace_id"].as_str().unwrap_or("").to_string())
        .collect();
    let gset: BTreeSet<String> = gtraces.iter().cloned().collect();
    if std::env::var_os("SLUICE_E2E_DUMP").is_some() {
        eprintln!("gcp traces {gtraces:?}\nattempts {}\nbuffers {:?}", gst["attempts"], files_under(&state_dir));
    }
    assert_eq!(gtraces.len(), gset.len(), "entries written twice to Cloud Logging");
    assert_eq!(gset, want_gcp);
    let sst = get_json(slack_port, "/_state");
    let bodies: Vec<String> =
        sst["received"].as_array().cloned().unwrap_or_default().iter().map(|r| r["body"].to_string()).collect();
    assert_eq!(bodies.len(), 2, "one message per FATAL/CRITICAL: {bodies:#?}");
    assert!(bodies.iter().any(|b| b.contains("connection pool exhausted")));
    assert!(bodies.iter().any(|b| b.contains("no space left on device")));

    let ktext: String = krecs.iter().map(|r| r["data"].as_str().unwrap_or("").to_string()).collect();
    assert_no_raw("Kinesis", &ktext, &g.raw);
    assert_no_raw("Cloud Logging", &gst.to_string(), &g.raw);
    assert_no_raw("Slack", &bodies.join("\n"), &g.raw);
    assert_no_raw("sluice's log", &format!("{log1}{log2}"), &g.raw);
    for f in files_under(&state_dir) {
        let bytes = fs::read(&f).unwrap_or_default();
        assert_no_raw(&f.display().to_string(), &String::from_utf8_lossy(&bytes), &g.raw);
        let rel = f.strip_prefix(&state_dir).unwrap_or(&f).to_string_lossy().to_string();
        assert!(!rel.starts_with("buffer/") || bytes.is_empty(), "buffer file left after delivery: {rel}");
    }
}
