//! An edge delivering to the real server over HTTPS: certificates made by
//! `scripts/tls-certs.sh`, the server given them with `--tls-cert` and
//! `--tls-key`, the edge given the CA as `[server] ca`. An edge given
//! another CA delivers nothing, keeps the alarm, and says why.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::free_port;

const ADMIN: &str = "tls-test-admin-token-0123456789";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_safecity-edge"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        bin.join("safecity-server").is_file(),
        "{} is missing: build the workspace first",
        bin.join("safecity-server").display()
    );
    bin
}

fn certificates(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .args(["127.0.0.1", "localhost"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The server on HTTPS; returns it and its base URL.
fn https_server(data: &Path, pki: &Path) -> (Killed, String) {
    let mut child = Command::new(bin_dir().join("safecity-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--tls-cert")
        .arg(pki.join("server.pem"))
        .arg("--tls-key")
        .arg(pki.join("server.key"))
        .env("SAFECITY_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("safecity-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Killed(child), base)
}

fn edge_token(data: &Path) -> String {
    let out = Command::new(bin_dir().join("safecity-server"))
        .args(["token", "create", "--role", "edge", "--name", "edge-tls"])
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An edge with one pillar (its camera unreachable: the alarm goes without
/// a snapshot) trusting `ca`; returns it, its API port and its stderr lines.
fn start_edge(
    dir: &Path,
    base: &str,
    ca: &Path,
    token: &str,
) -> (Killed, u16, mpsc::Receiver<String>) {
    let api = free_port();
    let config = dir.join("edge.toml");
    std::fs::write(
        &config,
        format!(
            r#"edge_id = "edge-tls"
[server]
url = "{base}"
ca = "{}"
token = "{token}"
[spool]
dir = "{}"
[api]
listen = "127.0.0.1:{api}"
[[pillars]]
id = "pil-tls-1"
url = "rtsp://127.0.0.1:1/none"
lat = 43.2391
lon = 76.946
"#,
            ca.display(),
            dir.join("spool").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_safecity-edge"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Killed(child), api, rx)
}

/// Presses the pillar through the edge's API; returns the alarm's event id.
fn press(api: u16) -> String {
    let body = r#"{"pillar_id":"pil-tls-1","source":"button"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", api)) {
            write!(
                s,
                "POST /api/v1/alarm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
            let json: Value =
                serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            return json["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the edge API never came up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The edge API's whole answer to `GET path`.
fn get(api: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", api)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// The alarm alerts the server holds, over HTTPS trusting `ca`.
fn alarm_event_ids(base: &str, ca: &Path) -> Vec<String> {
    let agent = ureq::AgentBuilder::new()
        .tls_config(safecity_core::tls::client_trusting(ca, "ca").unwrap())
        .build();
    let alerts: Value = agent
        .get(&format!("{base}/api/v1/alerts"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    alerts["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("no alerts list in {alerts}"))
        .iter()
        .filter_map(|a| a["event_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_edge_given_the_ca_delivers_over_https_and_one_given_another_ca_keeps_its_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, other) = (tmp.path().join("pki"), tmp.path().join("other"));
    certificates(&pki);
    certificates(&other);
    let data = tmp.path().join("server");
    let token = edge_token(&data);
    let (_server, base) = https_server(&data, &pki);
    assert!(base.starts_with("https://"), "{base}");
    let ca = pki.join("ca.pem");

    // The right CA: the alarm reaches the server.
    let right = tmp.path().join("right");
    std::fs::create_dir_all(&right).unwrap();
    let (edge, api, _log) = start_edge(&right, &base, &ca, &token);
    let id = press(api);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !alarm_event_ids(&base, &ca).contains(&id) {
        assert!(
            Instant::now() < deadline,
            "alarm {id} not delivered over HTTPS in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(edge);

    // Another CA: nothing is delivered, the edge says which file to fix,
    // and the alarm waits in its spool.
    let wrong = tmp.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    let other_ca = other.join("ca.pem");
    let (edge, api, log) = start_edge(&wrong, &base, &other_ca, &token);
    let id = press(api);
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the edge logged no delivery failure in 60 s");
        if line.contains("invalid peer certificate") {
            break line;
        }
    };
    assert!(said.contains(other_ca.to_str().unwrap()), "{said}");
    assert!(!alarm_event_ids(&base, &ca).contains(&id));
    // Its health says so.
    let health = get(api, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body: Value = serde_json::from_str(health.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    // The alarm waits, and so may the pillar's status change, depending
    // on whether its source has given up yet.
    let waiting = body["reasons"].as_array().unwrap().iter().find_map(|r| {
        r.as_str()?
            .strip_prefix("the server cannot be reached; ")?
            .split(' ')
            .next()?
            .parse::<u64>()
            .ok()
    });
    assert!(waiting.is_some_and(|n| (1..=2).contains(&n)), "{body}");
    drop(edge);
    let spool: String = std::fs::read_dir(wrong.join("spool"))
        .unwrap()
        .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    assert!(spool.contains(&id), "alarm {id} is not in the spool");
}
