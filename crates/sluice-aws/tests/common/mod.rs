//! Test harness: moto_server and the fault proxy on free 127.0.0.1 ports, SDK clients, chunks, configs.
#![allow(dead_code)]
use sluice_core::buffer::{Chunk, ChunkMetadata};
use sluice_core::config::Element;
use sluice_core::event::{write_entry, EventTime, Map};
use sluice_core::plugin::{BuildCtx, Registry, SystemConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    match std::env::var("SLUICE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    }
}

/// A child process killed (and reaped) when dropped.
pub struct Proc {
    child: Child,
    pub port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A tiny blocking HTTP/1.1 request (the tests' control plane).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Start moto_server on a free port and wait until it answers.
pub fn start_moto() -> Proc {
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(python())
            .args([
                "-c",
                "import sys; from moto.server import main; sys.exit(main(sys.argv[1:]))",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (set SLUICE_TEST_PYTHON to a python with moto 5.2.5)");
        let mut p = Proc { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                return p;
            }
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(p);
    }
    panic!("moto_server did not start");
}

/// Start the fault-injecting proxy in front of `upstream`.
pub fn start_proxy(upstream: &str) -> Proc {
    start_proxy_args(upstream, &[])
}

/// The fault proxy speaking HTTPS with a fresh self-signed certificate for 127.0.0.1 (written into `dir`).
pub fn start_tls_proxy(upstream: &str, dir: &std::path::Path) -> Proc {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = Command::new(python())
        .args(["-c", SELF_SIGNED])
        .arg(&cert)
        .arg(&key)
        .status()
        .expect("run the certificate generator");
    assert!(st.success(), "certificate generation failed");
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    start_proxy_args(upstream, &["--tls-cert", &cert, "--tls-key", &key])
}

const SELF_SIGNED: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice test proxy")])
now = datetime.datetime.now(datetime.timezone.utc)
san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).add_extension(san, critical=False)
        .sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[2], "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
"#;

fn start_proxy_args(upstream: &str, args: &[&str]) -> Proc {
    let script = workspace_root().join("tests/python/aws_fault_proxy.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(upstream)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aws_fault_proxy.py");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("proxy port line");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT line");
    Proc { child, port }
}

/// A moto_server in IAM mode: signatures are checked. It has a user with an allow-all policy and an access
/// key, and a role (same policy) that AssumeRoleWithWebIdentity can assume.
pub struct IamMoto {
    pub moto: Proc,
    pub key_id: String,
    pub secret: String,
    pub role_arn: String,
}

impl IamMoto {
    pub fn url(&self) -> String {
        self.moto.url()
    }

    /// Let the next `n` requests through without authentication (moto 5.2.5 fails with a 500 on
    /// AssumeRoleWithWebIdentity in IAM mode: the call is unsigned and it looks for an Authorization header).
    pub fn unauthenticated_requests(&self, n: u32) {
        let (st, body) = http(self.moto.port, "POST", "/moto-api/reset-auth", &n.to_string()).expect("reset-auth");
        assert_eq!(st, 200, "{body}");
    }

    /// An SDK configuration with the user's valid key.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_with(&self.url(), &self.key_id, &self.secret).await
    }
}

const IAM_SETUP: &str = r#"
import json, sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
allow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
policy = iam.create_policy(PolicyName="allow-all", PolicyDocument=allow)["Policy"]["Arn"]
iam.create_user(UserName="sluice")
iam.attach_user_policy(UserName="sluice", PolicyArn=policy)
key = iam.create_access_key(UserName="sluice")["AccessKey"]
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "sluice"},
                    "Action": "sts:AssumeRoleWithWebIdentity"}]})
role = iam.create_role(RoleName="sluice-wi", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
iam.attach_role_policy(RoleName="sluice-wi", PolicyArn=policy)
print(json.dumps({"key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"], "role_arn": role}))
"#;

/// Start a separate moto_server, create the user, key and role, then switch IAM checks on.
pub fn start_moto_iam() -> IamMoto {
    let moto = start_moto();
    let out = Command::new(python()).args(["-c", IAM_SETUP, &moto.url()]).output().expect("run the IAM setup");
    assert!(out.status.success(), "IAM setup failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("IAM setup output");
    let field = |k: &str| v[k].as_str().expect("IAM setup field").to_string();
    let iam = IamMoto { key_id: field("key_id"), secret: field("secret"), role_arn: field("role_arn"), moto };
    iam.unauthenticated_requests(0);
    iam
}

pub fn fault(proxy: &Proc, json: &str) {
    let (st, _) = http(proxy.port, "POST", "/__fault", json).expect("fault control");
    assert_eq!(st, 200);
}

pub fn proxy_stats(proxy: &Proc) -> serde_json::Value {
    let (_, body) = http(proxy.port, "GET", "/__stats", "").expect("stats");
    serde_json::from_str(&body).expect("stats json")
}

pub fn ctx() -> BuildCtx {
    let mut reg = Registry::new();
    sluice_plugins::register_all(&mut reg);
    sluice_aws::register(&mut reg);
    BuildCtx {
        system: Arc::new(SystemConfig { hostname: "testhost".into(), ..Default::default() }),
        ..BuildCtx::new(Arc::new(reg))
    }
}

/// The first `<match>` of a config text.
pub fn match_conf(text: &str) -> Element {
    let root = sluice_core::config::parse_str(text, std::path::Path::new("test.conf")).expect("config parses");
    root.section("match").expect("a <match>").clone()
}

pub fn chunk(tag: &str, timekey: Option<i64>, records: &[Map]) -> Chunk {
    let mut data = Vec::new();
    for (i, r) in records.iter().enumerate() {
        write_entry(tag, EventTime { sec: 1_764_050_400 + i as i64, nsec: 0 }, r, &mut data);
    }
    let mut id = [0u8; 16];
    for b in id.iter_mut() {
        *b = rand::random();
    }
    Chunk {
        id,
        metadata: ChunkMetadata { tag: Some(tag.into()), timekey, variables: vec![] },
        data: data.into(),
        records: records.len(),
    }
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_with(endpoint, "testing", "testing").await
}

pub async fn sdk_config_with(endpoint: &str, key_id: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(key_id, secret, None, None, "test"))
        .load()
        .await
}

/// Everything tracing logged in this test binary (all levels), to check nothing secret leaks.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(b2.clone()))
            .try_init();
        buf
    })
    .clone()
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn logs_text() -> String {
    let l = captured_logs();
    let v = l.lock().map(|v| v.clone()).unwrap_or_default();
    String::from_utf8_lossy(&v).into_owned()
}

/// Every record in the stream: (partition key, data), over all shards.
pub async fn stream_records(c: &aws_sdk_kinesis::Client, name: &str) -> Vec<(String, Vec<u8>)> {
    let shards = c.list_shards().stream_name(name).send().await.expect("list shards");
    let mut out = Vec::new();
    for s in shards.shards() {
        let it = c
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(s.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator");
        let mut iter = it.shard_iterator().map(str::to_string);
        while let Some(i) = iter {
            let r = c.get_records().shard_iterator(i).limit(10000).send().await.expect("get records");
            if r.records().is_empty() {
                break;
            }
            for x in r.records() {
                out.push((x.partition_key().unwrap_or_default().to_string(), x.data().as_ref().to_vec()));
            }
            iter = r.next_shard_iterator().map(str::to_string);
        }
    }
    out
}

/// The data of every record in a Kinesis stream, over all shards.
pub async fn stream_data(c: &aws_sdk_kinesis::Client, name: &str) -> Vec<Vec<u8>> {
    stream_records(c, name).await.into_iter().map(|(_, data)| data).collect()
}

/// The `id` field of each JSON record, sorted.
pub fn ids_of(data: &[Vec<u8>]) -> Vec<i64> {
    let mut ids: Vec<i64> = data
        .iter()
        .map(|d| {
            let m = sluice_core::event::parse_json_map(String::from_utf8_lossy(d).trim().as_bytes()).expect("json");
            m.get("id").and_then(sluice_core::event::Value::as_i64).expect("id")
        })
        .collect();
    ids.sort_unstable();
    ids
}

pub fn id_records(ids: std::ops::Range<i64>) -> Vec<Map> {
    ids.map(|i| {
        let mut m = Map::new();
        m.insert("id", sluice_core::event::Value::Int(i));
        m
    })
    .collect()
}
