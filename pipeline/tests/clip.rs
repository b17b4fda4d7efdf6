//! Clips of encoded video around a moment: a simulated pillar served over
//! RTSP, buffered by a source, cut and written as MP4, and the MP4 checked
//! by decoding it again.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use safecity_pipeline::source::{ClipBufferStats, VideoCodec, CLIP_BUFFER_MAX_BYTES};
use safecity_pipeline::{Source, SourceConfig, SourceEvent, SourceStatus};
use safecity_sim::{prepare_streams, SimServer, SimServerConfig, StreamSource, StreamSpec};

const SIM_FPS: u32 = 10;
/// The simulator encodes a keyframe every second.
const GOP_MS: u64 = 1_000;
const FRAME_MS: u64 = 1_000 / SIM_FPS as u64;
const WAIT: Duration = Duration::from_secs(20);

/// One small pillar at 10 fps looping a 3 s clip.
fn serve_pillar(cache: &Path) -> SimServer {
    let config = SimServerConfig {
        address: "127.0.0.1".into(),
        port: 0,
        width: 320,
        height: 240,
        fps: SIM_FPS,
        loop_s: 3.0,
        seed: 11,
        cache_dir: cache.to_path_buf(),
        streams: vec![StreamSpec {
            id: "pillar-test".into(),
            name: "Test pillar".into(),
            lat: 43.24,
            lon: 76.95,
            source: StreamSource::Pillar {
                press_at_s: Some(1.0),
            },
        }],
    };
    let prepared = prepare_streams(&config, &|_, _| {}).expect("render the simulated pillar");
    SimServer::start(&config, prepared, |_| {}).expect("start the simulator")
}

/// Takes everything the source sends, keeping the capture time of the
/// newest frame and the statuses.
struct Consumer {
    handle: JoinHandle<(Option<u64>, Vec<SourceStatus>)>,
}

impl Consumer {
    fn start(rx: Receiver<SourceEvent>) -> Consumer {
        let handle = std::thread::spawn(move || {
            let mut newest = None;
            let mut statuses = Vec::new();
            for event in rx {
                match event {
                    SourceEvent::Frame(f) => newest = Some(f.capture_unix_ms),
                    SourceEvent::Status { status, .. } => statuses.push(status),
                }
            }
            (newest, statuses)
        });
        Consumer { handle }
    }

    fn finish(self) -> (Option<u64>, Vec<SourceStatus>) {
        self.handle.join().expect("consumer thread")
    }
}

fn start_source(url: &str, clip_buffer: Duration) -> (Source, Consumer) {
    let (tx, rx) = sync_channel(8);
    let mut config = SourceConfig::new("pillar-test", url);
    config.fps = 5.0;
    config.clip_buffer = Some(clip_buffer);
    let source = Source::start(config, tx).expect("start the source");
    (source, Consumer::start(rx))
}

/// Polls the clip buffer until `done` says so; panics after [`WAIT`].
fn wait_for(source: &Source, mut done: impl FnMut(&ClipBufferStats) -> bool) -> ClipBufferStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = source
            .clip_buffer()
            .expect("the source keeps a clip buffer");
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "clip buffer now {stats:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn buffered_ms(stats: &ClipBufferStats) -> u64 {
    match (stats.start_unix_ms, stats.end_unix_ms) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => 0,
    }
}

/// What decoding an MP4 again shows.
#[derive(Debug)]
struct Decoded {
    frames: usize,
    first_pts_ms: u64,
    /// End of the last frame minus start of the first.
    duration_ms: u64,
    size: (i32, i32),
}

/// Decodes an MP4 with `qtdemux ! parser ! decoder ! appsink`.
fn decode_mp4(path: &Path, parser: &str, decoder: &str) -> Decoded {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=src ! qtdemux ! {parser} ! {decoder} ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline
        .by_name("src")
        .unwrap()
        .set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut pts = Vec::new();
    let mut size = (0, 0);
    let mut last_duration = 0;
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        pts.push(buffer.pts().unwrap().mseconds());
        last_duration = buffer.duration().map_or(FRAME_MS, |d| d.mseconds());
        let s = sample.caps().unwrap().structure(0).unwrap();
        size = (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap(),
        );
    }
    let bus = pipeline.bus().unwrap();
    let error = bus.pop_filtered(&[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(error.is_none(), "decoding {}: {error:?}", path.display());
    assert!(!pts.is_empty(), "{} decodes to no frames", path.display());
    let first = *pts.iter().min().unwrap();
    let last = *pts.iter().max().unwrap();
    Decoded {
        frames: pts.len(),
        first_pts_ms: first,
        duration_ms: last + last_duration - first,
        size,
    }
}

fn starts_with_ftyp(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.len() > 8 && &bytes[4..8] == b"ftyp"
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

#[test]
fn a_clip_of_the_last_seconds_of_a_pillar_is_a_playable_mp4() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve_pillar(cache.path());
    let url = server.streams()[0].url.clone();
    let (source, consumer) = start_source(&url, Duration::from_secs(12));

    // A press now; the clip covers the 4 s before it.
    let stats = wait_for(&source, |s| buffered_ms(s) >= 5_000);
    assert_eq!(stats.codec, Some(VideoCodec::H264));
    assert_eq!(stats.unsupported, None);
    let press = stats.end_unix_ms.unwrap();
    let from = press - 4_000;
    let clip = source.clip(from, press).expect("a clip of the last 4 s");
    source.stop();
    drop(server);
    let (newest_frame, statuses) = consumer.finish();

    assert_eq!(clip.codec(), VideoCodec::H264);
    assert_eq!(clip.source(), "pillar-test");
    assert!(clip.caps().contains("video/x-h264"), "{}", clip.caps());
    // It starts at the keyframe at or before `from`, at most a GOP early,
    // and ends with the press.
    assert!(
        clip.start_unix_ms() <= from && clip.start_unix_ms() + GOP_MS + FRAME_MS > from,
        "clip starts at {} for a span from {from}",
        clip.start_unix_ms()
    );
    assert!(
        clip.end_unix_ms() > press && clip.end_unix_ms() <= press + 2 * FRAME_MS,
        "clip ends at {} for a press at {press}",
        clip.end_unix_ms()
    );
    let span_frames = (4_000 / FRAME_MS) as usize;
    let gop_frames = (GOP_MS / FRAME_MS) as usize;
    assert!(
        (span_frames..=span_frames + gop_frames + 1).contains(&clip.frames()),
        "{clip:?}"
    );
    assert!(clip.keyframes() >= 4, "{clip:?}");
    // The buffer and the decoded frames are stamped on one clock.
    let newest_frame = newest_frame.expect("frames were decoded");
    assert!(
        newest_frame.abs_diff(press) < 2_000,
        "newest frame captured at {newest_frame}, newest buffered unit at {press}"
    );
    assert!(
        matches!(statuses.first(), Some(SourceStatus::Online { .. })),
        "{statuses:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("pillar-test.mp4");
    let info = clip.write_mp4(&path).expect("write the clip");
    assert_eq!(info.frames, clip.frames());
    assert_eq!(
        (info.start_unix_ms, info.end_unix_ms),
        (clip.start_unix_ms(), clip.end_unix_ms())
    );
    assert_eq!(info.bytes, std::fs::metadata(&path).unwrap().len());
    assert!(
        info.bytes as usize > clip.bytes(),
        "{info:?} holds {} bytes of video",
        clip.bytes()
    );
    assert!(starts_with_ftyp(&path));
    assert!(
        leftovers(out.path()).is_empty(),
        "{:?}",
        leftovers(out.path())
    );

    let decoded = decode_mp4(&path, "h264parse", "avdec_h264");
    assert_eq!(decoded.frames, info.frames, "{decoded:?}");
    assert_eq!(decoded.size, (320, 240));
    assert!(decoded.first_pts_ms < FRAME_MS, "{decoded:?}");
    let clip_ms = info.end_unix_ms - info.start_unix_ms;
    assert!(
        decoded.duration_ms.abs_diff(clip_ms) <= 2 * FRAME_MS,
        "{decoded:?} for a clip of {clip_ms} ms"
    );
    assert!(
        (4_000..=4_000 + GOP_MS + 2 * FRAME_MS).contains(&decoded.duration_ms),
        "{decoded:?}"
    );
}

#[test]
fn the_ring_stays_bounded_and_an_early_span_starts_at_its_oldest_keyframe() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve_pillar(cache.path());
    let url = server.streams()[0].url.clone();
    let length = Duration::from_secs(2);
    let (source, consumer) = start_source(&url, length);
    let length_ms = length.as_millis() as u64;

    // Watch the ring for a few seconds after it first fills.
    let filled = wait_for(&source, |s| buffered_ms(s) >= length_ms);
    let mut longest = 0;
    let mut seen_frames = 0;
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        let stats = source.clip_buffer().unwrap();
        let held = buffered_ms(&stats);
        longest = longest.max(held);
        seen_frames = seen_frames.max(stats.frames);
        // The length plus one GOP, give or take the jitter of the capture
        // clock between keyframes.
        assert!(
            held <= length_ms + GOP_MS + FRAME_MS / 2,
            "the ring holds {held} ms for a length of {length_ms} ms: {stats:?}"
        );
        // One more keyframe than whole GOPs when the newest frame is one.
        assert!(
            stats.keyframes as u64 <= length_ms / GOP_MS + 2,
            "{stats:?}"
        );
        assert!(stats.bytes <= CLIP_BUFFER_MAX_BYTES);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(longest >= length_ms, "the ring never held {length_ms} ms");
    assert!(
        seen_frames <= ((length_ms + GOP_MS) / FRAME_MS) as usize + 1,
        "{seen_frames} frames"
    );

    // A span from long before the buffer starts at its oldest keyframe.
    let before = source.clip_buffer().unwrap();
    let clip = source
        .clip(
            before.start_unix_ms.unwrap() - 60_000,
            before.end_unix_ms.unwrap(),
        )
        .expect("a clip of all that is buffered");
    let after = source.clip_buffer().unwrap();
    source.stop();
    drop(server);
    consumer.finish();

    assert!(
        (before.start_unix_ms.unwrap()..=after.start_unix_ms.unwrap())
            .contains(&clip.start_unix_ms()),
        "clip from {} with the ring from {before:?} to {after:?}",
        clip.start_unix_ms()
    );
    assert!(
        filled.start_unix_ms < before.start_unix_ms,
        "the ring moved on"
    );
    // Nothing is cut after the end asked for.
    assert!(clip.end_unix_ms() <= before.end_unix_ms.unwrap() + FRAME_MS + 1);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("early.mp4");
    let info = clip.write_mp4(&path).unwrap();
    let decoded = decode_mp4(&path, "h264parse", "avdec_h264");
    assert_eq!(decoded.frames, info.frames);
    assert!(
        decoded.frames >= (length_ms / FRAME_MS) as usize,
        "{decoded:?}"
    );
}

/// Runs a file source to its end with a clip buffer, returning the source.
fn play_file(path: &Path) -> Source {
    let (tx, rx) = sync_channel(64);
    let mut config = SourceConfig::new("cctv-file", path.to_string_lossy());
    config.realtime_files = false;
    config.fps = 0.0;
    config.clip_buffer = Some(Duration::from_secs(12));
    let source = Source::start(config, tx).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(SourceEvent::Status {
                status:
                    SourceStatus::Offline {
                        retrying: false, ..
                    },
                ..
            }) => return source,
            Ok(_) => {}
            Err(e) => panic!("the file did not finish: {e:?}"),
        }
    }
}

fn encode(launch: &str) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(launch).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the encoder finishes");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "encoding: {msg:?}"
    );
}

#[test]
fn h265_files_are_clipped_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in-h265.mp4");
    encode(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=10/1 \
         ! x265enc key-int-max=10 speed-preset=ultrafast ! h265parse ! mp4mux \
         ! filesink location={}",
        input.display()
    ));
    let source = play_file(&input);
    let stats = source.clip_buffer().unwrap();
    assert_eq!(stats.codec, Some(VideoCodec::H265), "{stats:?}");
    assert_eq!((stats.frames, stats.keyframes), (30, 3), "{stats:?}");
    let clip = source.clip(0, u64::MAX).expect("the whole file");
    source.stop();
    assert_eq!(clip.codec(), VideoCodec::H265);
    assert_eq!(clip.start_unix_ms(), stats.start_unix_ms.unwrap());
    assert_eq!(clip.end_unix_ms() - clip.start_unix_ms(), 3_000);

    let path = dir.path().join("clip-h265.mp4");
    let info = clip.write_mp4(&path).unwrap();
    assert!(starts_with_ftyp(&path));
    let decoded = decode_mp4(&path, "h265parse", "avdec_h265");
    assert_eq!((decoded.frames, info.frames), (30, 30));
    assert_eq!(decoded.duration_ms, 3_000, "{decoded:?}");
}

#[test]
fn mjpeg_is_not_buffered_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in-mjpeg.avi");
    encode(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,width=160,height=120,framerate=10/1 \
         ! jpegenc ! avimux ! filesink location={}",
        input.display()
    ));
    let source = play_file(&input);
    assert!(source.clip(0, u64::MAX).is_none());
    let stats = source.clip_buffer().unwrap();
    source.stop();
    assert_eq!((stats.frames, stats.codec), (0, None));
    let reason = stats.unsupported.expect("a reason");
    assert!(reason.contains("not as H.264 or H.265"), "{reason}");
}
