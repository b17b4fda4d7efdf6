//! `safecity-edge run`, driven as a site drives it: simulated RTSP camera
//! and pillar, a receiver standing in for the server, the daemon as a
//! process that is killed and restarted.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::free_port;

fn edge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safecity-edge"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the simulator; returns it and its stream URLs by id.
fn start_sim(args: &[&str], streams: usize) -> (Killed, HashMap<String, String>) {
    let mut child = edge()
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut urls = HashMap::new();
    while urls.len() < streams {
        let line = lines
            .next()
            .expect("simulator printed its streams")
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"stream") {
            urls.insert(words[1].to_owned(), words[3].to_owned());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), urls)
}

/// A stand-in for the server's `POST /api/v1/events`: keeps every event it
/// gets (with how often), answers 200, and can be taken down and up.
#[derive(Clone, Default)]
struct Receiver {
    events: Arc<Mutex<Vec<Value>>>,
    up: Arc<AtomicBool>,
    tokens: Arc<Mutex<Vec<String>>>,
    /// Pillar clips by event id.
    clips: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        let r = Receiver::default();
        r.up.store(true, Ordering::SeqCst);
        let me = r.clone();
        std::thread::spawn(move || loop {
            if !me.up.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            // Bound only while up: a down server refuses connections.
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            listener.set_nonblocking(true).unwrap();
            while me.up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => me.handle(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        r
    }

    fn handle(&self, mut s: TcpStream) {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let (mut len, mut gzip) = (0usize, false);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("content-encoding:") && lower.contains("gzip") {
                gzip = true;
            }
            if let Some(v) = h
                .strip_prefix("Authorization: Bearer ")
                .or_else(|| h.strip_prefix("authorization: Bearer "))
            {
                self.tokens.lock().unwrap().push(v.trim().to_owned());
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
            body = out;
        }
        if let Some(rest) = line.strip_prefix("PUT /api/v1/events/") {
            let id = rest.split('/').next().unwrap().to_owned();
            assert!(rest.starts_with(&format!("{id}/clip ")), "{line}");
            self.clips.lock().unwrap().insert(id, body);
            let _ = write!(
                s,
                "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        assert!(line.starts_with("POST /api/v1/events "), "{line}");
        let batch: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array of events");
        let n = batch.len();
        self.events.lock().unwrap().extend(batch);
        let reply = format!("{{\"accepted\":{n}}}");
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        );
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the events received so far.
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if pred(&self.events()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let kinds: Vec<String> = self
            .events()
            .iter()
            .map(|e| format!("{}@{}", e["kind"], e["camera_id"]))
            .collect();
        panic!("timed out waiting for {what}; received {kinds:?}");
    }
}

fn start_edge(config: &Path) -> Killed {
    Killed(
        edge()
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn post_alarm(api: u16, pillar: &str) -> Result<String, String> {
    let body = format!("{{\"pillar_id\":\"{pillar}\",\"source\":\"button\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(("127.0.0.1", api)) {
            Ok(mut s) => {
                write!(
                    s,
                    "POST /api/v1/alarm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).unwrap();
                let json = reply.split("\r\n\r\n").nth(1).unwrap_or("");
                if reply.starts_with("HTTP/1.1 202") {
                    let v: Value = serde_json::from_str(json).unwrap();
                    return Ok(v["id"].as_str().unwrap().to_owned());
                }
                return Err(reply);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
    reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

/// The value of one Prometheus sample line.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn count(events: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

#[test]
fn the_edge_delivers_passes_alarms_and_status_across_an_outage_and_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let truth = tmp.path().join("truth.jsonl");
    let (_sim, urls) = start_sim(
        &[
            "--cameras",
            "1",
            "--pillars",
            "1",
            "--rtsp-port",
            "0",
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "10",
            "--loop",
            "30",
            "--vehicles-per-minute",
            "30",
            "--seed",
            "8",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "--duration",
            "600",
        ],
        2,
    );
    let server_port = free_port();
    let api_port = free_port();
    let receiver = Receiver::start(server_port);
    let spool = tmp.path().join("spool");
    // Two bad streams beside the good ones: a camera that does not answer
    // and a file of garbage.
    let dead_port = free_port();
    let corrupt = tmp.path().join("corrupt.mp4");
    let mut garbage = b"\x00\x00\x00\x18ftypmp42".to_vec();
    garbage.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&corrupt, garbage).unwrap();
    let config = tmp.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            r#"edge_id = "edge-test"
[server]
url = "http://127.0.0.1:{server_port}"
token = "edge-secret"
[spool]
dir = "{}"
[api]
listen = "127.0.0.1:{api_port}"
[models]
threads = 2
[[cameras]]
id = "cam-a"
url = "{}"
lat = 43.2389
lon = 76.9455
fps = 5
[[cameras]]
id = "cam-dead"
url = "rtsp://127.0.0.1:{dead_port}/nothing"
lat = 43.24
lon = 76.95
[[cameras]]
id = "cam-corrupt"
url = "{}"
lat = 43.24
lon = 76.95
[[pillars]]
id = "pil-a"
url = "{}"
lat = 43.2391
lon = 76.946
fps = 2
clip_before_s = 2
clip_after_s = 3
"#,
            spool.display(),
            urls["cam1"],
            corrupt.display(),
            urls["pillar1"]
        ),
    )
    .unwrap();

    let edge1 = start_edge(&config);
    receiver.wait_for("both streams online", 90, |ev| {
        ["cam-a", "pil-a"].iter().all(|id| {
            ev.iter().any(|e| {
                e["kind"] == "camera_status"
                    && e["camera_id"] == *id
                    && e["status"]["state"] == "online"
            })
        })
    });
    assert!(receiver
        .tokens
        .lock()
        .unwrap()
        .iter()
        .all(|t| t == "edge-secret"));

    // A press goes out at once, with a snapshot of the pillar's view.
    let first = post_alarm(api_port, "pil-a").unwrap();
    receiver.wait_for("the first alarm", 30, |ev| {
        ev.iter().any(|e| e["id"] == first.as_str())
    });
    let alarm = receiver
        .events()
        .into_iter()
        .find(|e| e["id"] == first.as_str())
        .unwrap();
    assert_eq!(alarm["kind"], "panic_alarm");
    assert_eq!(alarm["camera_id"], "pil-a");
    assert_eq!(alarm["edge_id"], "edge-test");
    assert!(alarm["snapshot"]
        .as_str()
        .is_some_and(|s| s.starts_with("/9j/")));
    // Then its clip: MP4 cut from the pillar's own stream, nothing
    // re-encoded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let clip = loop {
        if let Some(c) = receiver.clips.lock().unwrap().get(&first).cloned() {
            break c;
        }
        assert!(Instant::now() < deadline, "no clip for alarm {first}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(&clip[4..8], b"ftyp", "an MP4 file");
    assert!(
        clip.windows(4).any(|w| w == b"avc1"),
        "H.264 as the camera sent it"
    );
    assert!(clip.len() > 5_000, "{} bytes", clip.len());
    // An unknown pillar is refused with a reason.
    let e = post_alarm(api_port, "nope").unwrap_err();
    assert!(e.contains("404") && e.contains("pil-a"), "{e}");

    // Traffic makes one event per vehicle pass.
    receiver.wait_for("a vehicle pass from the camera", 120, |ev| {
        ev.iter().any(|e| {
            (e["kind"] == "plate_read" || e["kind"] == "vehicle") && e["camera_id"] == "cam-a"
        })
    });
    // What an operator's monitoring sees: degraded, by the two cameras
    // that never deliver, and nothing else.
    let health: Value = serde_json::from_str(&http_get(api_port, "/healthz")).unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["reasons"],
        serde_json::json!([
            "stream cam-dead is offline",
            "stream cam-corrupt is offline"
        ]),
        "{health}"
    );
    let m = http_get(api_port, "/metrics");
    assert!(metric(&m, "safecity_edge_frames_decoded_total{stream=\"cam-a\"}") > 0.0);
    assert!(metric(&m, "safecity_edge_frames_analysed_total{stream=\"pil-a\"}") > 0.0);
    assert!(metric(&m, "safecity_edge_inference_batch_seconds_count") > 0.0);
    assert!(metric(&m, "safecity_edge_forwarded_events_total") >= 3.0);
    // Exported per stream, whether or not a pass was folded yet.
    assert!(metric(&m, "safecity_edge_passes_folded_total{stream=\"cam-a\"}") >= 0.0);
    assert_eq!(metric(&m, "safecity_edge_server_offline"), 0.0);
    assert_eq!(metric(&m, "safecity_edge_health"), 1.0);
    let status: Value = serde_json::from_str(&http_get(api_port, "/api/v1/status")).unwrap();
    assert_eq!(status["edge_id"], "edge-test");
    assert_eq!(status["streams"][0]["id"], "cam-a");
    assert_eq!(status["streams"][0]["online"], true);
    for e in receiver.events() {
        let parsed: safecity_core::Event =
            serde_json::from_value(e.clone()).expect("every event follows the schema");
        parsed.validate().unwrap();
    }

    // The server goes away: the next alarm waits in the spool, through a
    // crash of the edge, and arrives once both are back.
    receiver.up.store(false, Ordering::SeqCst);
    let down_ms = unix_ms();
    std::thread::sleep(Duration::from_secs(1));
    let second = post_alarm(api_port, "pil-a").unwrap();
    // Long enough for vehicles to pass while the server is away (about one
    // every 2 s).
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(count(&receiver.events(), |e| e["id"] == second.as_str()), 0);
    let killed_ms = unix_ms();
    drop(edge1); // SIGKILL: no clean shutdown
    let before_restart = receiver.events().len();
    receiver.up.store(true, Ordering::SeqCst);
    let _edge2 = start_edge(&config);
    receiver.wait_for("the alarm raised while the server was down", 60, |ev| {
        ev.iter().any(|e| e["id"] == second.as_str())
    });
    assert!(receiver.events().len() > before_restart);

    // Delivery is at least once and the server dedupes by id, so each id
    // counts once here.
    let mut events = receiver.events();
    events.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    events.dedup_by(|a, b| a["id"] == b["id"]);
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
    let passes: Vec<(u64, &Value)> = events
        .iter()
        .filter(|e| {
            e["camera_id"] == "cam-a" && (e["kind"] == "plate_read" || e["kind"] == "vehicle")
        })
        .map(|e| {
            let id = safecity_core::EventId::parse(e["id"].as_str().unwrap()).unwrap();
            (id.unix_ms(), e)
        })
        .collect();
    // Passes seen while the server was away were kept through the crash.
    let kept = passes
        .iter()
        .filter(|(ms, _)| (down_ms..killed_ms).contains(ms))
        .count();
    assert!(
        kept > 0,
        "no pass of the outage arrived: {} passes in all",
        passes.len()
    );
    // The edge does not invent duplicates of one pass under new ids: the
    // scene shows a plate again only after its 30 s loop, so one plate read
    // twice within 10 s is one pass sent twice. Passes around the crash are
    // left out: a car in view when the edge died is seen again after.
    let mut reads: Vec<(&str, u64)> = passes
        .iter()
        .filter(|(ms, e)| *ms + 10_000 < killed_ms && e["kind"] == "plate_read")
        .map(|(ms, e)| (e["plate"]["text"].as_str().unwrap(), *ms))
        .collect();
    reads.sort_unstable();
    for pair in reads.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[1].1 - pair[0].1 >= 10_000,
            "{} read twice within 10 s: {pair:?}",
            pair[0].0
        );
    }
    // That check's premise, from the simulator's ground truth (where cam-a
    // is the simulator's cam1): no plate passed twice within 10 s, and some
    // vehicle was in view while the server was away.
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp_nanos() as u64
            / 1_000_000
    };
    let mut truth_passes: Vec<(String, u64, u64)> = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["camera_id"] == "cam1" && r["plate"].is_string())
        .map(|r| {
            let first = parse(r["first_seen"].as_str().unwrap());
            let last = parse(r["last_seen"].as_str().unwrap());
            (r["plate"].as_str().unwrap().to_owned(), first, last)
        })
        .collect();
    truth_passes.sort_unstable();
    assert!(
        truth_passes
            .iter()
            .any(|(_, first, last)| *first < killed_ms && *last > down_ms),
        "the simulator drove no vehicle past cam-a during the outage"
    );
    for pair in truth_passes.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[1].1 - pair[0].1 >= 10_000,
            "the scene itself shows {} twice within 10 s",
            pair[0].0
        );
    }
}

fn unix_ms() -> u64 {
    safecity_core::clock::now_ms() as u64
}

#[test]
fn a_bad_config_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("edge.toml");
    std::fs::write(&config, "edge_id = \"x\"\n[server]\nurl = \"ftp://x\"\n").unwrap();
    let o = edge()
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("edge.toml") && err.contains("spool"), "{err}");
    let o = edge()
        .args(["run", "--config", "/nonexistent/edge.toml"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/edge.toml"));
}
