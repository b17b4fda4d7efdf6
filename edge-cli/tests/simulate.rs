//! `safecity-edge simulate`, driven as a user drives it: through the binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use safecity_core::{parse_plate, PlateFormat};
use serde_json::Value;

fn edge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safecity-edge"))
}

fn run(args: &[&str]) -> Output {
    edge().args(args).output().expect("run safecity-edge")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_truth(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("ground_truth.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bbox(v: &Value) -> [f64; 4] {
    let a = v.as_array().expect("bbox is an array");
    [0, 1, 2, 3].map(|i| a[i].as_f64().unwrap())
}

fn inside(inner: [f64; 4], outer: [f64; 4]) -> bool {
    const EPS: f64 = 0.5;
    inner[0] >= outer[0] - EPS
        && inner[1] >= outer[1] - EPS
        && inner[0] + inner[2] <= outer[0] + outer[2] + EPS
        && inner[1] + inner[3] <= outer[1] + outer[3] + EPS
}

#[test]
fn still_images_are_deterministic_and_their_ground_truth_is_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let render = |name: &str, seed: &str| {
        let dir = tmp.path().join(name);
        let o = run(&[
            "simulate",
            "--images",
            "24",
            "--out",
            dir.to_str().unwrap(),
            "--seed",
            seed,
            "--width",
            "960",
            "--height",
            "540",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        dir
    };
    let a = render("a", "11");
    let b = render("b", "11");
    let c = render("c", "12");

    let truth = read_truth(&a);
    assert_eq!(truth.len(), 24);
    assert_eq!(truth, read_truth(&b), "same seed, same ground truth");
    assert_ne!(truth, read_truth(&c), "another seed, another scene");
    assert_eq!(
        std::fs::read(a.join("000003.jpg")).unwrap(),
        std::fs::read(b.join("000003.jpg")).unwrap(),
        "same seed, same pixels"
    );

    let (mut vehicles, mut plates, mut readable) = (0, 0, 0);
    for (i, line) in truth.iter().enumerate() {
        let file = line["file"].as_str().unwrap();
        assert_eq!(file, format!("{i:06}.jpg"));
        let img = image::open(a.join(file)).unwrap();
        assert_eq!((img.width(), img.height()), (960, 540));
        assert_eq!(line["width"], 960);
        let frame = [0.0, 0.0, 960.0, 540.0];
        for v in line["vehicles"].as_array().unwrap() {
            vehicles += 1;
            let vb = bbox(&v["bbox"]);
            assert!(
                vb[2] > 0.0 && vb[3] > 0.0,
                "{file}: empty vehicle box {vb:?}"
            );
            assert!(inside(vb, frame), "{file}: vehicle {vb:?} leaves the frame");
            let class = v["class"].as_str().unwrap();
            assert!(
                ["car", "bus", "truck", "motorcycle"].contains(&class),
                "{class}"
            );
            if v["plate"].is_null() {
                continue;
            }
            plates += 1;
            let p = &v["plate"];
            let pb = bbox(&p["bbox"]);
            assert!(
                inside(pb, vb),
                "{file}: plate {pb:?} not inside its vehicle {vb:?}"
            );
            for corner in p["corners"].as_array().unwrap() {
                let (x, y) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
                assert!(
                    inside([x, y, 0.0, 0.0], pb),
                    "{file}: corner {x},{y} outside {pb:?}"
                );
            }
            let text = p["text"].as_str().unwrap();
            let format: PlateFormat =
                serde_json::from_value(p["format"].clone()).expect("format is a known name");
            let parsed = parse_plate(text).unwrap();
            assert_eq!(parsed.format, format, "{file}: {text} is not {format}");
            assert_eq!(parsed.display, p["display"].as_str().unwrap());
            if p["readable"].as_bool().unwrap() {
                readable += 1;
            }
        }
    }
    assert!(vehicles >= 24, "only {vehicles} vehicles in 24 images");
    assert!(
        readable > 0 && readable < plates,
        "{readable} of {plates} plates readable"
    );
}

/// A running `simulate` process, killed when dropped.
struct Sim {
    child: Child,
    urls: Vec<(String, String)>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(args: &[&str], streams: usize) -> Sim {
    let mut child = edge()
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut urls = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while urls.len() < streams {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("simulator printed its streams");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"stream") {
            urls.push((words[1].to_owned(), words[3].to_owned()));
        }
    }
    Sim { child, urls, lines }
}

/// Pulls `count` decoded grey frames from an RTSP URL.
fn pull_frames(url: &str, count: usize) -> Vec<(u32, u32, Vec<u8>)> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={url} protocols=tcp latency=100 ! rtph264depay ! h264parse \
         ! avdec_h264 ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while frames.len() < count {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(15)) else {
            break;
        };
        let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
        let (w, h) = (
            caps.get::<i32>("width").unwrap(),
            caps.get::<i32>("height").unwrap(),
        );
        let map = sample.buffer().unwrap().map_readable().unwrap();
        frames.push((w as u32, h as u32, map.as_slice().to_vec()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

#[test]
fn a_client_pulls_fifty_decoded_frames_from_every_simulated_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = tmp.path().join("truth.jsonl");
    let cache = tmp.path().join("cache");
    // The same streams both times; only how long they run differs.
    let streams = [
        "--cameras",
        "2",
        "--pillars",
        "1",
        "--rtsp-port",
        "0",
        "--width",
        "320",
        "--height",
        "240",
        "--fps",
        "25",
        "--loop",
        "8",
        "--vehicles-per-minute",
        "40",
        "--seed",
        "3",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ];
    let sim = start_sim(&[&streams[..], &["--duration", "120"]].concat(), 3);
    let ids: Vec<_> = sim.urls.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["cam1", "cam2", "pillar1"]);
    for (id, url) in &sim.urls {
        let frames = pull_frames(url, 50);
        assert_eq!(frames.len(), 50, "{id}: got {} frames", frames.len());
        for (w, h, data) in &frames {
            assert_eq!((*w, *h), (320, 240), "{id}");
            assert!(data.len() >= 320 * 240);
        }
        // A frozen stream would repeat one picture.
        let first = &frames[0].2;
        assert!(
            frames.iter().any(|f| &f.2 != first),
            "{id}: all 50 frames are the same"
        );
    }

    // Within one loop and a bit the ground truth has the pillar's press and
    // the passes of the vehicles, each with its camera and time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut alarm, mut pass) = (false, false);
    while !(alarm && pass) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        for line in std::fs::read_to_string(&truth).unwrap_or_default().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            match v["kind"].as_str().unwrap() {
                "alarm" => {
                    alarm = true;
                    assert_eq!(v["pillar_id"], "pillar1");
                }
                "pass" => {
                    pass = true;
                    assert!(["cam1", "cam2"].contains(&v["camera_id"].as_str().unwrap()));
                    assert!(v["ts"].as_str().unwrap().ends_with('Z'));
                }
                other => panic!("unknown ground-truth kind {other}"),
            }
        }
    }
    assert!(alarm, "no alarm in the ground truth");
    assert!(pass, "no vehicle pass in the ground truth");
    // Without --alarm-url the press is printed.
    let printed: Vec<String> = sim.lines.try_iter().collect();
    assert!(
        printed.iter().any(|l| l.starts_with("alarm pillar1 at ")),
        "{printed:?}"
    );

    // A second start finds every clip in the cache.
    drop(sim);
    let o = run(&[&["simulate"][..], &streams, &["--duration", "0.5"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(": cached").count(), 3, "{}", stderr(&o));
}

#[test]
fn bad_arguments_end_with_a_clear_message_and_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let fails_with = |args: &[&str], needle: &str| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    };
    fails_with(
        &["simulate", "--cameras", "0"],
        "--cameras must be at least 1",
    );
    fails_with(&["simulate"], "nothing to simulate");
    fails_with(
        &["simulate", "--cameras", "1", "--lighting", "noon"],
        "possible values: day, dusk, night",
    );
    fails_with(&["simulate", "--images", "3"], "--out");
    fails_with(
        &[
            "simulate",
            "--cameras",
            "1",
            "--width",
            "321",
            "--height",
            "240",
        ],
        "must be even",
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    fails_with(
        &["simulate", "--cameras", "1", "--rtsp-port", &port],
        "pick another with --rtsp-port",
    );

    let scenario = tmp.path().join("bad.toml");
    std::fs::write(
        &scenario,
        "name = \"x\"\nloop_s = 60\n[[camera]]\nid = \"c1\"\nname = \"C\"\nlat = 43.2\nlon = 76.9\n\
         [[pass]]\ncamera = \"c1\"\nat_s = 10\nplate = \"123ABC02\"\nclass = \"car\"\ncolour = \"purple\"\n",
    )
    .unwrap();
    fails_with(
        &["simulate", "--scenario", scenario.to_str().unwrap()],
        "unknown variant `purple`",
    );
    fails_with(
        &["simulate", "--scenario", "/nonexistent/s.toml"],
        "/nonexistent/s.toml",
    );
}

/// Accepts one HTTP request and answers 200; returns the request body.
fn receive_one_post(listener: std::net::TcpListener) -> String {
    use std::io::{Read, Write};
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if data.len() >= head_end + 4 + length {
                assert!(text.starts_with("POST /alarm "), "{text}");
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .unwrap();
                return text[head_end + 4..].to_owned();
            }
        }
        assert!(n > 0, "connection closed early: {text}");
    }
}

#[test]
fn a_pillar_press_is_posted_to_the_alarm_url() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alarm", listener.local_addr().unwrap());
    let truth = tmp.path().join("truth.jsonl");
    let started = std::time::SystemTime::now();
    let _sim = start_sim(
        &[
            "--pillars",
            "1",
            "--rtsp-port",
            "0",
            "--width",
            "160",
            "--height",
            "120",
            "--loop",
            "4",
            "--duration",
            "60",
            "--alarm-url",
            &url,
            "--cache-dir",
            tmp.path().join("cache").to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
        ],
        1,
    );
    let body: Value = serde_json::from_str(&receive_one_post(listener)).unwrap();
    assert_eq!(body["pillar_id"], "pillar1");
    let ts = body["ts"].as_str().unwrap();
    let at =
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    let since_start = at - time::OffsetDateTime::from(started);
    assert!(
        since_start > time::Duration::ZERO && since_start < time::Duration::seconds(60),
        "press at {ts} is not within the run"
    );
    // Exactly what the edge's alarm API takes (it refuses unknown fields).
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["pillar_id", "source", "ts"]);
}
