//! HTTPS, connection limits and failed logins, on the real binary: certificates made by
//! `scripts/tls-certs.sh` as an operator makes them, checked with curl and
//! with the same rustls client settings the edge uses.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::socket::{token_create, Server, ADMIN, BIN};
use crate::support::*;

/// A CA and a server certificate for 127.0.0.1 and localhost in `dir`.
pub fn certificates(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .args(["127.0.0.1", "localhost"])
        .output()
        .expect("run scripts/tls-certs.sh");
    assert!(
        out.status.success(),
        "tls-certs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

fn https_server(data_dir: &Path, pki: &Path) -> Server {
    let (cert, key) = (pki.join("server.pem"), pki.join("server.key"));
    let args: [&OsStr; 4] = [
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ];
    Server::start_with(data_dir, &Backend::Sqlite, &args)
}

/// A client that trusts only the CA in `ca`, as an edge given `[server] ca`.
fn trusting(ca: &Path) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .tls_config(safecity_core::tls::client_trusting(ca, "ca").unwrap())
        .build()
}

fn curl(args: &[&OsStr]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/setup.sh)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn https_is_served_with_the_given_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = certificates(&tmp.path().join("pki"));
    let data = tmp.path().join("data");
    let server = https_server(&data, &pki);
    let edge = token_create(&data, "edge", "edge-alm-01");
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );

    // curl with the CA: the health check answers.
    let ca = pki.join("ca.pem");
    let (code, body) = curl(&[
        "--cacert".as_ref(),
        ca.as_os_str(),
        server.url("/healthz").as_ref(),
    ]);
    assert_eq!((code, body.as_str()), (0, "ok\n"));
    // Without it, curl does not trust the server (60: peer certificate
    // cannot be authenticated).
    let (code, _) = curl(&[server.url("/healthz").as_ref()]);
    assert_eq!(code, 60);

    // A token over HTTPS: an event is stored and found again.
    let agent = trusting(&ca);
    let ev = event(
        1,
        1_700_000_000_000,
        "cam-1",
        Some("123ABC02"),
        "car",
        "white",
    );
    let res = agent
        .post(&server.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {edge}"))
        .send_json(serde_json::json!([ev]))
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = agent
        .get(&server.url("/api/v1/search?plate=123ABC02&reason=tls-check"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(ids(page["results"].as_array().unwrap()), [id_of(&ev)]);

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = server.url("/healthz").replacen("https://", "http://", 1);
    let err = ureq::get(&plain).call().unwrap_err();
    assert!(
        !matches!(err, ureq::Error::Status(..)),
        "plain HTTP was answered: {err}"
    );
}

#[test]
fn a_server_signed_by_another_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = certificates(&tmp.path().join("pki"));
    let other = certificates(&tmp.path().join("other"));
    let server = https_server(&tmp.path().join("data"), &pki);
    let err = trusting(&other.join("ca.pem"))
        .get(&server.url("/healthz"))
        .call()
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[test]
fn tls_files_that_do_not_fit_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = certificates(&tmp.path().join("pki"));
    let run = |cert: &Path, key: &Path| {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let (cert, key) = (pki.join("server.pem"), pki.join("server.key"));
    // The CA's key is not the server certificate's.
    let err = run(&cert, &pki.join("ca.key"));
    assert!(err.contains("does not fit the certificate"), "{err}");
    assert!(err.contains("ca.key"), "{err}");
    let missing = pki.join("missing.pem");
    let err = run(&missing, &key);
    assert!(err.contains("missing.pem"), "{err}");
    // A key where the certificate belongs.
    let err = run(&key, &key);
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

#[test]
fn plain_http_off_loopback_must_be_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    // Refused before any socket is bound.
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains("--plain-http"),
        "{err}"
    );
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let out = Command::new(BIN)
        .args([
            "--postgres",
            "postgres://safecity:hunter2@127.0.0.1:1/safecity",
            "token",
            "create",
            "--role",
            "admin",
            "--name",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SAFECITY_POSTGRES_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Reads until the server closes the connection; panics if it is still
/// open after `limit` (far beyond the configured header timeout).
fn closed_by_server(mut stream: TcpStream, limit: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => got,
        // A reset is a close too.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!(
            "connection still open after {limit:?} ({e}); read so far: {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
}

#[test]
fn idle_and_stalled_connections_are_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("server.toml");
    std::fs::write(&config, "header_timeout_s = 1\n").unwrap();
    let args: [&OsStr; 2] = ["--config".as_ref(), config.as_os_str()];
    let server = Server::start_with(&tmp.path().join("data"), &Backend::Sqlite, &args);
    let addr = server.base.strip_prefix("http://").unwrap().to_owned();
    let limit = Duration::from_secs(20);

    // Opened and silent.
    let idle = TcpStream::connect(&addr).unwrap();
    assert!(closed_by_server(idle, limit).is_empty());

    // Half a request's headers, then nothing.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let got = closed_by_server(stalled, limit);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));

    // A whole request is answered; the kept-alive connection then idles
    // and is closed too.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let got = String::from_utf8_lossy(&closed_by_server(kept, limit)).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(got.ends_with("ok\n"), "{got}");
}

#[test]
fn failed_logins_are_limited_per_address() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start_with(&data, &Backend::Sqlite, &[]);
    let investigator = token_create(&data, "investigator", "detective");
    let get = |token: &str| match ureq::get(&server.url("/api/v1/me"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    // The admin has been seen before the guessing starts.
    assert_eq!(get(ADMIN), 200);
    for i in 0..20 {
        assert_eq!(get(&format!("guess-{i}")), 401, "guess {i}");
    }
    // Now unknown tokens from this address are refused unchecked, a real
    // one this server has not seen yet too; the known admin still works.
    assert_eq!(get("guess-20"), 429);
    assert_eq!(get(&investigator), 429);
    assert_eq!(get(ADMIN), 200);
}
