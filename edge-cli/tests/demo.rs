//! `make demo`'s script, run as a user runs it: the search server, the
//! simulator playing the hit-and-run scenario and the edge, for about a
//! minute. Through the server's API the scripted plate must be found at the
//! cameras the car passed in that minute, in order and the scripted time
//! apart, the pillar press must be an alert, and Ctrl-C must stop it all.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::free_port;

/// The scenario's car, and when it passes the first two cameras (s).
const PLATE: &str = "715KXM02";
const FIRST: (&str, f64) = ("alm-cam-0001", 20.0);
const SECOND: (&str, f64) = ("alm-cam-0002", 52.0);

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // Ctrl-C for the whole script, as in a terminal; a kill if it hangs.
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str, token: &str) -> Value {
    ureq::get(url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap()
}

fn ts_seconds(ts: &str) -> f64 {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("ts {ts:?}: {e}"));
    t.unix_timestamp_nanos() as f64 / 1e9
}

#[test]
fn the_demo_finds_the_hit_and_run_car_at_the_cameras_it_passed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_safecity-edge"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        bin.join("safecity-server").is_file(),
        "{} is missing: build the workspace (`cargo build --release`) first",
        bin.join("safecity-server").display()
    );
    let dir = tempfile::tempdir().unwrap();
    let server_port = free_port();
    let mut child = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("SAFECITY_DEMO_BIN", &bin)
        .env("SAFECITY_DEMO_DIR", dir.path())
        .env("SAFECITY_DEMO_SERVER_PORT", server_port.to_string())
        .env("SAFECITY_DEMO_RTSP_PORT", free_port().to_string())
        .env("SAFECITY_DEMO_EDGE_PORT", free_port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash runs scripts/demo.sh");
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);

    // The banner ends with the credentials; the first run renders the
    // streams first (minutes), later runs reuse them.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("demo| {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut tokens = std::collections::HashMap::new();
    let mut web = None;
    let started = Instant::now();
    while !(tokens.contains_key("operator") && tokens.contains_key("investigator")) {
        let line = rx
            .recv_timeout(Duration::from_secs(1200).saturating_sub(started.elapsed()))
            .expect("the demo printed its address and credentials within 20 minutes");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [role @ ("admin" | "investigator" | "operator"), token] => {
                tokens.insert(role.to_string(), token.to_string());
            }
            ["web", "UI", url, ..] => web = Some(url.to_string()),
            _ => {}
        }
    }
    let server = format!("http://127.0.0.1:{server_port}");
    assert_eq!(
        web.as_deref(),
        Some(server.as_str()),
        "the demo prints the web address"
    );
    let (investigator, operator) = (&tokens["investigator"], &tokens["operator"]);

    // The car passes the first camera 20 s into the scenario and the second
    // at 52 s; a pass is sent when the car has left the picture.
    let search =
        format!("{server}/api/v1/search?plate={PLATE}&mode=fuzzy&max_distance=1&reason=demo-test");
    let deadline = Instant::now() + Duration::from_secs(90);
    let sightings = loop {
        let found: Vec<(String, f64)> = get(&search, investigator)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["event"]["camera_id"].as_str().unwrap().to_owned(),
                    ts_seconds(r["event"]["ts"].as_str().unwrap()),
                )
            })
            .collect();
        let seen = |id: &str| found.iter().any(|(c, _)| c == id);
        if seen(FIRST.0) && seen(SECOND.0) {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "{PLATE} not found at both {} and {} within 90 s; found {found:?}",
            FIRST.0,
            SECOND.0
        );
        std::thread::sleep(Duration::from_secs(3));
    };
    let at = |id: &str| {
        sightings
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, t)| *t)
            .fold(f64::NAN, f64::min)
    };
    let gap = at(SECOND.0) - at(FIRST.0);
    assert!(
        (gap - (SECOND.1 - FIRST.1)).abs() < 4.0,
        "the car should reach {} {} s after {}, not {gap:.1} s: {sightings:?}",
        SECOND.0,
        SECOND.1 - FIRST.1,
        FIRST.0
    );

    // The pillar press and the watchlisted plate are alerts.
    let alerts = get(&format!("{server}/api/v1/alerts"), operator);
    let alerts = alerts["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["event_kind"] == "panic_alarm" && a["camera_id"] == "alm-pil-0001"),
        "no pillar alarm among {alerts:?}"
    );
    assert!(
        alerts.iter().any(|a| a["event_kind"] == "plate_read"),
        "no hotlist hit among {alerts:?}"
    );

    // Ctrl-C stops everything: the server's port is free again.
    drop(demo);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server_port)).is_err(),
        "the server still answers after Ctrl-C"
    );
}
