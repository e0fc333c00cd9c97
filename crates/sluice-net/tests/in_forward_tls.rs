//! `<source> @type forward` with `<transport tls>`, driven by Python's `ssl` module (OpenSSL) as the
//! client: acked frames over TLS, client certificates with `client_cert_auth`, plain TCP refused.
mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls")
}

fn tls_conf(port: u16, run: &str, extra: &str) -> String {
    let d = tls_dir();
    format!(
        "<source>\n @type forward\n bind 127.0.0.1\n port {port}\n <transport tls>\n  cert_path {}\n  private_key_path {}\n{extra}\n </transport>\n</source>\n<match **>\n @type capture\n run {run}\n</match>\n",
        d.join("server.pem").display(),
        d.join("server.key").display()
    )
}

const CLIENT: &str = r#"
import socket, ssl, sys
port, frame_hex, cafile, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
if cert:
    ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(bytes.fromhex(frame_hex))
            out = b""
            while len(out) < 64:
                chunk = s.recv(64)
                if not chunk:
                    break
                out += chunk
                if out.startswith(b"\x81"):
                    break
    print("ANSWER " + out.hex())
except (ssl.SSLError, ConnectionError, OSError) as e:
    print("FAILED " + type(e).__name__)
"#;

/// A Message frame with a chunk option, sent over TLS; returns the client's one-line report.
fn send(port: u16, client_cert: bool) -> Option<String> {
    let python = python();
    if !python.exists() {
        println!("SKIPPED: no Python at {} (set SLUICE_TEST_PYTHON)", python.display());
        return None;
    }
    let mut frame =
        vec![0x94, 0xa3, b't', b'l', b's', 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81, 0xa1, b'k', 0xa1, b'v', 0x81];
    rmp::encode::write_str(&mut frame, "chunk").unwrap();
    rmp::encode::write_str(&mut frame, "tls-chunk").unwrap();
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let d = tls_dir();
    let (cert, key) = if client_cert {
        (d.join("client.pem").display().to_string(), d.join("client.key").display().to_string())
    } else {
        (String::new(), String::new())
    };
    let out = Command::new(python)
        .args(["-c", CLIENT, &port.to_string(), &hex, &d.join("ca.pem").display().to_string(), &cert, &key])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ack_hex() -> String {
    let mut a = Vec::new();
    sluice_net::protocol::write_ack(&s("tls-chunk"), &mut a);
    format!("ANSWER {}", a.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[test]
fn frames_over_tls_are_stored_and_acked_and_plain_tcp_is_refused() {
    let port = free_port();
    let run = "tls-plain";
    let _engine = start(&tls_conf(port, run, ""));
    wait_listening(port);
    let Some(answer) = send(port, false) else { return };
    assert_eq!(answer, ack_hex());
    assert_eq!(sink(run).len(), 1);
    // A client speaking plain forward protocol to the TLS port: nothing is stored.
    use std::io::{Read, Write};
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    raw.write_all(&[0x93, 0xa1, b'x', 0x01, 0x80]).unwrap();
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert_eq!(sink(run).len(), 1);
}

#[test]
fn client_cert_auth_requires_a_certificate_from_ca_path() {
    let port = free_port();
    let run = "tls-mutual";
    let extra = format!("  client_cert_auth true\n  ca_path {}", tls_dir().join("ca.pem").display());
    let _engine = start(&tls_conf(port, run, &extra));
    wait_listening(port);
    let Some(without) = send(port, false) else { return };
    assert!(without.starts_with("FAILED") || without == "ANSWER ", "no certificate, no data: {without}");
    assert_eq!(sink(run).len(), 0);
    assert_eq!(send(port, true).unwrap(), ack_hex());
    assert_eq!(sink(run).len(), 1);
}

#[test]
fn tls_configuration_errors() {
    let e = config_errors(&tls_conf(1, "x", "").replace("server.pem", "missing.pem"));
    assert!(e.contains("test.conf:") && e.contains("cert_path"), "{e}");
    let e = config_errors(&tls_conf(1, "x", "  client_cert_auth true"));
    assert!(e.contains("ca_path"), "{e}");
    let e = config_errors(&tls_conf(1, "x", "  private_key_passphrase secret"));
    assert!(e.contains("not supported"), "{e}");
}
