//! The real binary on a loopback socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_safecity-server");
pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://ADDR` or `https://ADDR`, as the server printed it.
    pub base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Self::start_on(data_dir, &Backend::Sqlite)
    }

    /// The binary on `backend`; PostgreSQL's URL is given through
    /// `SAFECITY_POSTGRES_URL`.
    fn start_on(data_dir: &Path, backend: &Backend) -> Server {
        Self::start_with(data_dir, backend, &[])
    }

    /// The binary with `args` added to its command line.
    pub fn start_with(data_dir: &Path, backend: &Backend, args: &[&std::ffi::OsStr]) -> Server {
        let mut cmd = Command::new(BIN);
        if let Backend::Postgres(url) = backend {
            cmd.env("SAFECITY_POSTGRES_URL", url);
        }
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("SAFECITY_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start safecity-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("safecity-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

fn post_gzip(
    agent: &ureq::Agent,
    server: &str,
    token: &str,
    events: &[Value],
) -> Result<Value, Box<ureq::Error>> {
    let body = gzip(&serde_json::to_vec(events).unwrap());
    let res = agent
        .post(&format!("{server}/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip")
        .send_bytes(&body)
        .map_err(Box::new)?;
    Ok(res.into_json().unwrap())
}

/// Every event id stored, following the cursor.
fn all_ids(agent: &ureq::Agent, base: &str, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = agent
            .get(&format!(
                "{base}/api/v1/search?reason=check&limit=500{cursor}"
            ))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        out.extend(ids(page["results"].as_array().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

pub fn token_create(data_dir: &Path, role: &str, name: &str) -> String {
    token_create_on(data_dir, &Backend::Sqlite, role, name)
}

/// `token create`; PostgreSQL's URL is given with `--postgres`.
fn token_create_on(data_dir: &Path, backend: &Backend, role: &str, name: &str) -> String {
    let mut cmd = Command::new(BIN);
    if let Backend::Postgres(url) = backend {
        cmd.args(["--postgres", url]);
    }
    let out = cmd
        .args([
            "token",
            "create",
            "--role",
            role,
            "--name",
            name,
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64, "{token:?}");
    token
}

#[test]
fn tokens_made_on_the_command_line_work_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let edge = token_create(dir.path(), "edge", "edge-alm-01");
    let investigator = token_create(dir.path(), "investigator", "detective");
    // Only the hash is kept.
    let db = std::fs::read(dir.path().join("safecity.sqlite3")).unwrap();
    assert!(!db.windows(edge.len()).any(|w| w == edge.as_bytes()));

    let server = Server::start(dir.path());
    let agent = agent();
    let batch: Vec<Value> = (0..10u64)
        .map(|i| {
            event(
                u128::from(i),
                T0 + i,
                "cam-a",
                Some("123ABC02"),
                "car",
                "white",
            )
        })
        .collect();
    let ack = post_gzip(&agent, &server.base, &edge, &batch).unwrap();
    assert_eq!(ack["accepted"], 10);
    // The database and the evidence are the owner's alone.
    for private in [dir.path().to_path_buf(), dir.path().join("blobs")] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{} is {mode:o}", private.display());
    }

    let page: Value = agent
        .get(&server.url("/api/v1/search?plate=123ABC02&reason=case%201"))
        .set("Authorization", &format!("Bearer {investigator}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(page["results"].as_array().unwrap().len(), 10);

    // A role is checked over the wire too, with a JSON error.
    match agent
        .get(&server.url("/api/v1/search?reason=x"))
        .set("Authorization", &format!("Bearer {edge}"))
        .call()
    {
        Err(ureq::Error::Status(403, res)) => {
            let body: Value = res.into_json().unwrap();
            assert!(body["error"].as_str().unwrap().contains("investigator"));
        }
        other => panic!("{other:?}"),
    }
    // The admin token from the environment reads the audit log.
    let audit: Value = agent
        .get(&server.url("/api/v1/audit"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(audit["records"][0]["who"], "detective");
    let health = agent.get(&server.url("/healthz")).call().unwrap();
    assert_eq!(health.into_string().unwrap(), "ok\n");
}

#[test]
fn an_unusable_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*file.to_string_lossy()), "{err}");
}

/// SIGKILL during ingest, restart: every acknowledged event is there once.
#[test]
fn acknowledged_events_survive_sigkill() {
    acknowledged_events_survive_sigkill_on(Backend::Sqlite);
}

/// The same with the events in PostgreSQL (the server process is killed,
/// the database keeps running).
#[test]
fn acknowledged_events_survive_sigkill_on_postgres() {
    if let Some(backend) = Backend::postgres() {
        acknowledged_events_survive_sigkill_on(backend);
    }
}

fn acknowledged_events_survive_sigkill_on(backend: Backend) {
    const BATCH: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_on(dir.path(), &backend);
    let base = server.base.clone();
    let acked: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sender = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            let agent = agent();
            for b in 0..2000u64 {
                let batch: Vec<Value> = (0..BATCH)
                    .map(|i| {
                        let n = b * BATCH + i;
                        let plate = format!("{:03}ABC{:02}", n % 1000, 1 + n % 20);
                        event(u128::from(n), T0 + n, "cam-a", Some(&plate), "car", "white")
                    })
                    .collect();
                match post_gzip(&agent, &base, ADMIN, &batch) {
                    Ok(ack) => {
                        assert_eq!(ack["accepted"], BATCH);
                        acked
                            .lock()
                            .unwrap()
                            .push(batch.iter().map(id_of).collect());
                    }
                    // The server is gone: killed while this batch was sent.
                    Err(_) => return true,
                }
            }
            false
        })
    };
    let start = Instant::now();
    while acked.lock().unwrap().len() < 20 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(sender.join().unwrap(), "the kill came after ingest ended");
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "only {} batches acknowledged",
        acked.len()
    );

    let server = Server::start_on(dir.path(), &backend);
    let agent = agent();
    let stored = all_ids(&agent, &server.base, ADMIN);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for id in &stored {
        *count.entry(id).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "an event is stored twice");
    for batch in &acked {
        for id in batch {
            assert_eq!(count.get(id.as_str()), Some(&1), "acknowledged {id} lost");
        }
    }
    // Sending an acknowledged batch again stores nothing new.
    let again: Vec<Value> = (0..BATCH)
        .map(|n| {
            let plate = format!("{:03}ABC{:02}", n % 1000, 1 + n % 20);
            event(u128::from(n), T0 + n, "cam-a", Some(&plate), "car", "white")
        })
        .collect();
    let ack = post_gzip(&agent, &server.base, ADMIN, &again).unwrap();
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(BATCH))
    );
}

/// The live alert stream over a real socket: headers, then an `alert`
/// event when a hotlisted plate is sent.
#[test]
fn the_binary_streams_alerts_as_server_sent_events() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let operator = token_create(dir.path(), "operator", "duty officer");
    let server = Server::start(dir.path());
    let agent = agent();
    let added = agent
        .post(&server.url("/api/v1/watchlist"))
        .set("Authorization", &format!("Bearer {operator}"))
        .send_json(
            serde_json::json!({"pattern": "123ABC02", "reason": "case 9", "priority": "high"}),
        )
        .unwrap();
    assert_eq!(added.status(), 201);

    let address = server.base.strip_prefix("http://").unwrap();
    let mut conn = std::net::TcpStream::connect(address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {operator}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );

    let batch = [
        event(1, T0, "cam-a", Some("999ZZZ01"), "car", "white"),
        event(2, T0 + 1, "cam-a", Some("123ABC02"), "car", "white"),
    ];
    let ack = post_gzip(&agent, &server.base, ADMIN, &batch).unwrap();
    assert_eq!(ack["accepted"], 2);
    let data = loop {
        if let Some(line) = seen.lines().find(|l| l.starts_with("data: ")) {
            break line["data: ".len()..].to_owned();
        }
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    };
    assert!(seen.contains("event: alert"), "{seen}");
    assert!(seen.contains("id: 1"), "{seen}");
    let alert: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(alert["plate"], "123ABC02");
    assert_eq!(alert["event_id"], id_of(&batch[1]));
    assert_eq!(alert["watchlist"]["reason"], "case 9");

    // Ctrl-C with the stream still open: the stream ends and the server
    // exits rather than waiting for the board to hang up.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 15 s of SIGINT with a live stream open"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
}

/// On PostgreSQL: tokens made on the command line, an ingest, a search and
/// the audit log, through the binary; the token is stored only hashed.
#[test]
fn the_binary_serves_from_postgres() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres(url) = &backend else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let edge = token_create_on(dir.path(), &backend, "edge", "edge-alm-01");
    let investigator = token_create_on(dir.path(), &backend, "investigator", "detective");
    assert!(
        !dir.path().join("safecity.sqlite3").exists(),
        "the embedded store was used"
    );
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let stored: Vec<String> = db
        .query("SELECT sha256 FROM tokens", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 2);
    assert!(!stored.contains(&edge) && !stored.contains(&investigator));

    let server = Server::start_on(dir.path(), &backend);
    let agent = agent();
    let batch: Vec<Value> = (0..10u64)
        .map(|i| {
            let ts = T0 + i * 40 * 24 * 3600 * 1000;
            event(u128::from(i), ts, "cam-a", Some("123ABC02"), "car", "white")
        })
        .collect();
    let ack = post_gzip(&agent, &server.base, &edge, &batch).unwrap();
    assert_eq!(ack["accepted"], 10);
    let page: Value = agent
        .get(&server.url("/api/v1/search?plate=123ABC02&reason=case%201"))
        .set("Authorization", &format!("Bearer {investigator}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(page["results"].as_array().unwrap().len(), 10);
    // Ten events 40 days apart: a partition for each month they fall in.
    let partitions: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_20%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(partitions >= 10, "{partitions} partitions");
    let audit: Value = agent
        .get(&server.url("/api/v1/audit"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(audit["records"][0]["who"], "detective");
}

/// A PostgreSQL server that cannot be reached is named, without the
/// password, and the server does not start. (The URL comes from the
/// environment: the command line refuses one with a password.)
#[test]
fn an_unreachable_postgres_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://safecity:hunter2-secret@127.0.0.1:1/safecity";
    for args in [
        vec!["--listen", "127.0.0.1:0"],
        vec!["token", "create", "--role", "edge", "--name", "e"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("SAFECITY_POSTGRES_URL", url)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("postgres://safecity:***@127.0.0.1:1/safecity"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
    // A URL the configuration file lacks.
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[store]\nbackend = \"postgres\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env_remove("SAFECITY_POSTGRES_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("store.url"), "{err}");
}

/// `token create --expires-days`, `token list` and `token revoke`, as an
/// admin runs them on the server's machine.
#[test]
fn tokens_are_listed_revoked_and_the_revocation_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["token"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, token, err) = cli(&[
        "create",
        "--role",
        "investigator",
        "--name",
        "detective",
        "--expires-days",
        "7",
    ]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let (ok, list, _) = cli(&["list"]);
    assert!(ok);
    let line = list
        .lines()
        .find(|l| l.contains("detective"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(!list.contains(&token), "the list shows no token");
    let in_a_week = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let day = format!(
        "{}-{:02}-{:02}",
        in_a_week.year(),
        u8::from(in_a_week.month()),
        in_a_week.day()
    );
    assert!(
        line.contains("investigator") && line.contains(&day),
        "{line}"
    );
    assert!(line.trim_end().ends_with('-'), "not revoked yet: {line}");

    let me = |server: &Server| match agent()
        .get(&server.url("/api/v1/me"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) => (r.status(), String::new()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let server = Server::start(dir.path());
    assert_eq!(me(&server).0, 200);
    drop(server);

    let (ok, out, err) = cli(&["revoke", "--name", "detective"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked 1 token"), "{out}");
    let (ok, _, err) = cli(&["revoke", "--name", "detective"]);
    assert!(!ok && err.contains("no token named \"detective\""), "{err}");
    let (_, list, _) = cli(&["list"]);
    let line = list.lines().find(|l| l.contains("detective")).unwrap();
    assert!(!line.trim_end().ends_with('-'), "revoked: {line}");

    let server = Server::start(dir.path());
    let (status, body) = me(&server);
    assert_eq!(status, 401);
    assert!(body.contains("revoked"), "{body}");
    let audit: Value = agent()
        .get(&server.url("/api/v1/audit?limit=100"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let routes: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["route"].as_str())
        .collect();
    assert!(
        routes.contains(&"safecity-server token create"),
        "{routes:?}"
    );
    assert!(
        routes.contains(&"safecity-server token revoke"),
        "{routes:?}"
    );
}

/// A tmpfs of `kib` KiB on a new folder, unmounted when dropped; `None`
/// (said on standard error) where mounting is not allowed.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(kib: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            let msg = "cannot mount a tmpfs (needs root): skipping this full-disk test";
            assert!(
                std::env::var_os("CI").is_none(),
                "{msg} (CI is set: this is a failure there)"
            );
            let _ = std::io::Write::write_all(
                &mut std::io::stderr().lock(),
                format!("SKIPPED: {msg}\n").as_bytes(),
            );
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// A full disk answers 507, names it, shows in /healthz and /metrics, and
/// loses nothing acknowledged.
#[test]
fn a_full_disk_answers_507_and_keeps_what_it_acknowledged() {
    let Some(disk) = SmallDisk::mount(2048) else {
        return;
    };
    let data = disk.0.path().join("data");
    let edge = token_create(&data, "edge", "edge-alm-01");
    let server = Server::start(&data);
    let agent = agent();
    // Snapshots of 64 KiB, each different, until the disk is full.
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let n = acknowledged.len() as u128 + 1;
        let mut ev = event(n, T0 + n as u64, "cam-a", Some("123ABC02"), "car", "white");
        let bytes: Vec<u8> = (0..65_536u32)
            .map(|i| (i as u128 * 31 + n * 7) as u8)
            .collect();
        ev["snapshot"] = serde_json::json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &bytes
        ));
        match post_gzip(&agent, &server.base, &edge, std::slice::from_ref(&ev)) {
            Ok(_) => acknowledged.push(id_of(&ev)),
            Err(e) => break e,
        }
        assert!(acknowledged.len() < 100, "the disk never filled");
    };
    match *refusal {
        ureq::Error::Status(507, r) => {
            let body: Value = r.into_json().unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(error.contains("disk is full"), "{error}");
        }
        other => panic!("expected 507, got {other}"),
    }
    assert!(acknowledged.len() >= 3, "{acknowledged:?}");
    // Monitoring sees it.
    match agent.get(&server.url("/healthz")).call() {
        Err(ureq::Error::Status(503, r)) => {
            let body: Value = r.into_json().unwrap();
            assert_eq!(body["status"], "down", "{body}");
            let error = body["error"].as_str().unwrap();
            assert!(error.contains("disk") && error.contains("full"), "{error}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let metrics = agent
        .get(&server.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("\nsafecity_health 2\n"), "{metrics}");
    let mut stored = all_ids(&agent, &server.base, ADMIN);
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
}
