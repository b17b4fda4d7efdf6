//! Live sources against the simulator's RTSP server, files, and bad URLs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use safecity_pipeline::{
    CaptureClock, Frame, RtspTransport, Source, SourceConfig, SourceEvent, SourceStatus,
    VideoFrames,
};
use safecity_sim::{
    encode_clip, prepare_streams, ClipSpec, PreparedStream, SimServer, SimServerConfig,
    StreamSource, StreamSpec,
};

const WAIT: Duration = Duration::from_secs(30);
const SIM_FPS: u32 = 10;

/// One small road camera at 10 fps looping a 3 s clip.
fn sim_config(cache: &Path, port: u16) -> SimServerConfig {
    SimServerConfig {
        address: "127.0.0.1".into(),
        port,
        width: 320,
        height: 240,
        fps: SIM_FPS,
        loop_s: 3.0,
        seed: 5,
        cache_dir: cache.to_path_buf(),
        streams: vec![StreamSpec {
            id: "cam-test".into(),
            name: "Test camera".into(),
            lat: 43.24,
            lon: 76.95,
            source: StreamSource::Road {
                lighting: None,
                rain: None,
                vehicles_per_minute: 30.0,
                scripted: Vec::new(),
            },
        }],
    }
}

fn prepare(config: &SimServerConfig) -> Vec<PreparedStream> {
    prepare_streams(config, &|_, _| {}).expect("render the simulated camera")
}

fn serve(config: &SimServerConfig) -> SimServer {
    SimServer::start(config, prepare(config), |_| {}).expect("start the simulator")
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn describe(e: &SourceEvent) -> String {
    match e {
        SourceEvent::Frame(f) => format!("frame {} pts {} {}", f.seq, f.pts_ms, f.clock),
        SourceEvent::Status { status, .. } => format!("{status:?}"),
    }
}

/// Receives events until `done` says so, returning them all; panics after
/// `within` with what came.
fn until(
    rx: &Receiver<SourceEvent>,
    within: Duration,
    mut done: impl FnMut(&[SourceEvent]) -> bool,
) -> Vec<SourceEvent> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while !done(&seen) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(event) => seen.push(event),
            Err(e) => {
                let last: Vec<_> = seen.iter().rev().take(8).map(describe).collect();
                panic!("{e:?} after {} events; last: {last:?}", seen.len());
            }
        }
    }
    seen
}

fn frames(events: &[SourceEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn statuses(events: &[SourceEvent]) -> Vec<&SourceStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Status { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Mean absolute difference of two equally sized RGB frames, on a sparse
/// grid of pixels.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    let picks: Vec<usize> = (0..a.len()).step_by(7).collect();
    picks
        .iter()
        .map(|&i| (a[i] as i32 - b[i] as i32).unsigned_abs() as f64)
        .sum::<f64>()
        / picks.len() as f64
}

#[test]
fn rtsp_frames_are_sampled_sized_and_stamped_with_the_sender_clock() {
    let cache = tempfile::tempdir().unwrap();
    let config = sim_config(cache.path(), 0);
    let prepared = prepare(&config);
    let clip = prepared[0].clip.clone();
    let server = SimServer::start(&config, prepared, |_| {}).unwrap();
    let t0 = unix_ms(server.started_at());
    let url = server.streams()[0].url.clone();

    let (tx, rx) = sync_channel(16);
    let mut source_config = SourceConfig::new("cam-test", &url);
    source_config.fps = 5.0;
    let source = Source::start(source_config, tx).unwrap();

    // Frames stamped by arrival come first, until the first RTCP sender
    // report; then the sender's clock takes over.
    let events = until(&rx, WAIT, |seen| {
        let fs = frames(seen);
        fs.len() >= 10
            && fs
                .iter()
                .filter(|f| f.clock == CaptureClock::RtcpNtp)
                .count()
                >= 10
    });
    let now = unix_ms(SystemTime::now());
    let stats = source.stats();
    source.stop();
    drop(server);

    let first = statuses(&events);
    match first.first() {
        Some(SourceStatus::Online { decoder }) => {
            assert!(decoder.contains("264"), "decoder {decoder}")
        }
        other => panic!("first status {other:?}"),
    }
    assert!(
        matches!(events.first(), Some(SourceEvent::Status { .. })),
        "Online comes before the first frame"
    );
    assert_eq!(first.len(), 1, "no status changes while streaming");
    let fs = frames(&events);
    for f in &fs {
        assert_eq!((f.width, f.height), (320, 240));
        assert_eq!(f.data.len(), 320 * 240 * 3 / 2, "I420");
        assert_eq!(&*f.source, "cam-test");
        assert!(
            (f.capture_unix_ms as i64 - now).abs() < 5_000,
            "capture {} vs now {now}",
            f.capture_unix_ms
        );
    }
    assert!(fs.windows(2).all(|w| w[1].seq > w[0].seq), "seq increases");
    let spacing: Vec<i64> = fs
        .windows(2)
        .map(|w| w[1].pts_ms as i64 - w[0].pts_ms as i64)
        .collect();
    let m = median(spacing.clone());
    assert!(
        (150..=250).contains(&m),
        "median pts spacing {m} ms: {spacing:?}"
    );

    let ntp: Vec<&&Frame> = fs
        .iter()
        .filter(|f| f.clock == CaptureClock::RtcpNtp)
        .collect();
    assert!(
        ntp.windows(2)
            .all(|w| w[1].capture_unix_ms > w[0].capture_unix_ms),
        "capture times increase"
    );
    let capture_spacing = median(
        ntp.windows(2)
            .map(|w| w[1].capture_unix_ms as i64 - w[0].capture_unix_ms as i64)
            .collect(),
    );
    assert!(
        (150..=250).contains(&capture_spacing),
        "median capture spacing {capture_spacing} ms"
    );
    assert_eq!(stats.clock, Some(CaptureClock::RtcpNtp));
    assert!(stats.frames_in >= stats.frames_out, "{stats:?}");
    assert!(stats.online && !stats.finished, "{stats:?}");

    // The simulator shows frame n of its clip at t0 + n / fps on its wall
    // clock. Find each received frame in the clip by its pixels (sensor
    // noise makes every frame differ) and check that its capture time
    // names that frame, within two frames (200 ms).
    let reference: Vec<_> = VideoFrames::open(&clip, None, None)
        .unwrap()
        .map(|f| f.unwrap().data)
        .collect();
    let len = reference.len() as i64;
    assert_eq!(len, 30);
    let frame_ms = 1000 / SIM_FPS as i64;
    // How many frames later than the simulator's timeline a capture time is.
    let lag_frames = |f: &Frame| {
        let shown = (0..reference.len())
            .min_by(|&a, &b| {
                difference(&f.data, &reference[a]).total_cmp(&difference(&f.data, &reference[b]))
            })
            .unwrap() as i64;
        let stamped = ((f.capture_unix_ms as i64 - t0) as f64 / frame_ms as f64).round() as i64;
        let lag = (stamped - shown).rem_euclid(len);
        if lag > len / 2 {
            lag - len
        } else {
            lag
        }
    };
    for f in &ntp {
        let lag = lag_frames(f);
        assert!(
            lag.abs() <= 2,
            "frame {} captured at t0 + {} ms is {lag} frames off the simulator's timeline",
            f.seq,
            f.capture_unix_ms as i64 - t0
        );
    }
    let arrival: Vec<i64> = fs
        .iter()
        .filter(|f| f.clock == CaptureClock::Arrival)
        .map(|f| lag_frames(f) * frame_ms)
        .collect();
    println!("arrival stamps vs the sender's clock, ms: {arrival:?}");
}

#[test]
fn rtsp_over_udp_delivers_frames() {
    let cache = tempfile::tempdir().unwrap();
    let config = sim_config(cache.path(), 0);
    let server = serve(&config);
    let (tx, rx) = sync_channel(16);
    let mut source_config = SourceConfig::new("cam-udp", &server.streams()[0].url);
    source_config.transport = RtspTransport::Udp;
    source_config.max_size = Some((160, 160));
    let source = Source::start(source_config, tx).unwrap();
    let events = until(&rx, WAIT, |seen| frames(seen).len() >= 5);
    source.stop();
    drop(server);
    assert!(matches!(
        statuses(&events)[..],
        [SourceStatus::Online { .. }]
    ));
    for f in frames(&events) {
        assert_eq!((f.width, f.height), (160, 120), "4:3 scaled into 160x160");
        assert_eq!(f.data.len(), 160 * 120 * 3 / 2, "I420");
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rtsp_goes_offline_once_and_online_again_when_the_server_returns() {
    let cache = tempfile::tempdir().unwrap();
    let config = sim_config(cache.path(), free_port());
    let server = serve(&config);
    let url = server.streams()[0].url.clone();

    let (tx, rx) = sync_channel(16);
    let mut source_config = SourceConfig::new("cam-test", &url);
    source_config.fps = 5.0;
    let source = Source::start(source_config, tx).unwrap();
    let before = until(&rx, WAIT, |seen| frames(seen).len() >= 3);
    assert!(matches!(
        statuses(&before)[..],
        [SourceStatus::Online { .. }]
    ));

    server.stop();
    let lost = until(&rx, WAIT, |seen| {
        matches!(
            seen.last(),
            Some(SourceEvent::Status {
                status: SourceStatus::Offline { .. },
                ..
            })
        )
    });
    let Some(SourceStatus::Offline { reason, retrying }) = statuses(&lost).last().copied() else {
        unreachable!()
    };
    println!("offline after the server stopped: {reason}");
    assert!(retrying, "a live source keeps trying");
    assert!(!reason.is_empty());
    assert!(!source.stats().online);

    // Down for a moment: the source keeps trying without repeating itself.
    std::thread::sleep(Duration::from_secs(2));
    let server = serve(&config);
    let back = until(&rx, WAIT, |seen| frames(seen).len() >= 3);
    match &statuses(&back)[..] {
        [SourceStatus::Online { decoder }] => assert!(!decoder.is_empty()),
        other => panic!("statuses after the server came back: {other:?}"),
    }
    assert!(matches!(back.first(), Some(SourceEvent::Status { .. })));
    let last_before = frames(&before).last().unwrap().seq;
    assert!(
        frames(&back)[0].seq > last_before,
        "seq goes on across reconnects"
    );
    let stats = source.stats();
    println!("{stats:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.online, "{stats:?}");
    assert!(stats.last_error.is_some(), "{stats:?}");
    source.stop();
    drop(server);
}

fn write_clip(path: &Path, width: u32, height: u32, fps: u32, frames: u64) {
    encode_clip(&ClipSpec::new(width, height, fps, frames), path, |i| {
        image::RgbImage::from_pixel(width, height, image::Rgb([(i * 5) as u8, 60, 200]))
    })
    .unwrap();
}

/// Every event until the source finishes and drops its sender.
fn all_events(rx: &Receiver<SourceEvent>, slow_consumer: Duration) -> Vec<SourceEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(event) => {
                seen.push(event);
                std::thread::sleep(slow_consumer);
            }
            Err(RecvTimeoutError::Disconnected) => return seen,
            Err(RecvTimeoutError::Timeout) => panic!("the source did not finish: {seen:?}"),
        }
    }
}

#[test]
fn a_file_is_sampled_scaled_and_ends_once_without_dropping_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    write_clip(&path, 640, 360, 25, 50);

    // A channel of one and a slow consumer: reading waits for it.
    let (tx, rx) = sync_channel(1);
    let mut config = SourceConfig::new("file-1", path.to_str().unwrap());
    config.fps = 5.0;
    config.realtime_files = false;
    config.max_size = Some((320, 240));
    config.queue = 1;
    let source = Source::start(config, tx).unwrap();
    let events = all_events(&rx, Duration::from_millis(30));

    match &statuses(&events)[..] {
        [SourceStatus::Online { decoder }, SourceStatus::Offline {
            reason,
            retrying: false,
        }] => {
            assert!(decoder.contains("264"), "{decoder}");
            assert_eq!(reason, "end of file");
        }
        other => panic!("statuses {other:?}"),
    }
    let fs = frames(&events);
    assert!(
        (9..=11).contains(&fs.len()),
        "{} frames from 2 s at 5 fps",
        fs.len()
    );
    let seqs: Vec<u64> = fs.iter().map(|f| f.seq).collect();
    assert_eq!(
        seqs,
        (0..fs.len() as u64).collect::<Vec<_>>(),
        "nothing dropped"
    );
    for f in &fs {
        assert_eq!(
            (f.width, f.height),
            (320, 180),
            "aspect kept within 320x240"
        );
        assert_eq!(f.data.len(), 320 * 180 * 3 / 2, "I420");
        assert_eq!(f.clock, CaptureClock::File);
    }
    assert_eq!(fs[0].pts_ms, 0);
    for w in fs.windows(2) {
        let dt = w[1].pts_ms - w[0].pts_ms;
        assert!((160..=240).contains(&dt), "pts step {dt} ms");
        assert_eq!(
            w[1].capture_unix_ms - w[0].capture_unix_ms,
            dt,
            "capture is start plus position"
        );
    }
    let now = unix_ms(SystemTime::now());
    assert!((fs[0].capture_unix_ms as i64 - now).abs() < 30_000);
    // The red channel ramps up frame by frame.
    let red: Vec<u8> = fs.iter().map(|f| f.picture().pixel(160, 90)[0]).collect();
    assert!(red.windows(2).all(|w| w[1] > w[0]), "red {red:?}");

    let stats = source.stats();
    assert!(source.is_finished());
    assert!(stats.finished && !stats.online, "{stats:?}");
    assert_eq!(stats.frames_in, 50);
    assert_eq!(stats.frames_out, fs.len() as u64);
    assert_eq!(stats.frames_dropped, 0);
    assert_eq!(stats.reconnects, 0);
    source.stop();
}

#[test]
fn a_looping_file_plays_in_real_time_on_one_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.mp4");
    write_clip(&path, 320, 240, 25, 25);
    let (tx, rx) = sync_channel(16);
    let mut config = SourceConfig::new("file-loop", format!("file://{}", path.display()));
    config.fps = 5.0;
    config.loop_files = true;
    let source = Source::start(config, tx).unwrap();
    let events = until(&rx, WAIT, |seen| frames(seen).len() >= 12);
    source.stop();
    assert_eq!(statuses(&events).len(), 1, "no status change at the loop");
    let fs = frames(&events);
    assert!(fs.windows(2).all(|w| w[1].pts_ms > w[0].pts_ms));
    assert!(fs
        .windows(2)
        .all(|w| w[1].capture_unix_ms > w[0].capture_unix_ms));
    let pts: Vec<u64> = fs.iter().map(|f| f.pts_ms).collect();
    assert!(
        pts[pts.len() - 1] >= 2000,
        "played past the end twice: {pts:?}"
    );
    let m = median(
        fs.windows(2)
            .map(|w| w[1].pts_ms as i64 - w[0].pts_ms as i64)
            .collect(),
    );
    assert!((150..=250).contains(&m), "median step {m} ms");
}

/// Serves `frames` JPEGs as an MJPEG stream (`multipart/x-mixed-replace`),
/// as many IP cameras do, to one client.
fn serve_mjpeg(frames: u32) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/video.mjpg", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request);
        let head = "HTTP/1.0 200 OK\r\n\
                    Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n";
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        for i in 0..frames {
            let img = image::RgbImage::from_fn(320, 240, |x, y| {
                image::Rgb([(x + i * 8) as u8, y as u8, 128])
            });
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
                .encode_image(&img)
                .unwrap();
            let part = format!(
                "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            );
            let sent = conn
                .write_all(part.as_bytes())
                .and_then(|_| conn.write_all(&jpeg))
                .and_then(|_| conn.write_all(b"\r\n"));
            if sent.is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (url, handle)
}

#[test]
fn an_mjpeg_stream_over_http_is_decoded_and_sampled() {
    let (url, server) = serve_mjpeg(200);
    let (tx, rx) = sync_channel(16);
    let mut config = SourceConfig::new("http-cam", &url);
    config.fps = 5.0;
    let source = Source::start(config, tx).unwrap();
    let events = until(&rx, WAIT, |seen| frames(seen).len() >= 6);
    let stats = source.stats();
    source.stop();
    let _ = server.join();
    match &statuses(&events)[..] {
        [SourceStatus::Online { decoder }] => assert_eq!(decoder, "jpegdec"),
        other => panic!("statuses {other:?}"),
    }
    let fs = frames(&events);
    let now = unix_ms(SystemTime::now());
    for f in &fs {
        assert_eq!((f.width, f.height), (320, 240));
        assert_eq!(f.clock, CaptureClock::Arrival);
        assert!((f.capture_unix_ms as i64 - now).abs() < 10_000);
    }
    // 20 JPEGs a second arrive; about one in four is kept.
    assert!(stats.frames_in >= 2 * fs.len() as u64, "{stats:?}");
    assert!(!stats.hardware_decoder);
}

#[test]
fn a_bad_url_is_an_error_naming_it() {
    let (tx, _rx) = sync_channel(1);
    for (url, says) in [
        (
            "ftp://cam.local/live",
            "use rtsp://, http(s)://, file:// or a path",
        ),
        ("rtsp://", "names no host"),
        ("/no/such/video.mp4", "no video file"),
    ] {
        let err = Source::start(SourceConfig::new("cam-bad", url), tx.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cam-bad"), "{err}");
        assert!(err.contains(url), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn a_corrupt_file_reports_why_once_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.mp4");
    std::fs::write(&path, vec![0x42u8; 50_000]).unwrap();
    let (tx, rx) = sync_channel(4);
    let source = Source::start(SourceConfig::new("file-bad", path.to_str().unwrap()), tx).unwrap();
    let events = all_events(&rx, Duration::ZERO);
    match &statuses(&events)[..] {
        [SourceStatus::Offline {
            reason,
            retrying: false,
        }] => assert!(!reason.is_empty()),
        other => panic!("statuses {other:?}"),
    }
    assert!(frames(&events).is_empty());
    let stats = source.stats();
    assert!(stats.finished && stats.last_error.is_some(), "{stats:?}");
    assert_eq!(stats.reconnects, 0);
    println!("{:?}", stats.last_error);
}
