//! The threads behind a [`Source`](super::Source).
//!
//! - The runner builds the pipeline, watches its bus and the frame counter
//!   (the stall watchdog), tears the pipeline down on failure and builds it
//!   again after a backoff.
//! - GStreamer's streaming threads count and sample decoded frames in a pad
//!   probe, and put sampled frames (still GStreamer samples, not copied)
//!   into the hand-off ring from the appsink's callback.
//! - The forwarder takes frames and status changes from the ring in order,
//!   copies frames out to packed RGB, and sends them to the consumer. It is
//!   the only sender, so a status never overtakes the frames before it, and
//!   it drops repeated statuses.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gst_video::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use safecity_core::sync::Locked;

use super::backoff::{reconnect, STABLE_AFTER};
use super::clip::{ClipRing, VideoCodec};
use super::location::{launch_line, Location};
use super::sampler::Sampler;
use super::{
    CaptureClock, Frame, SourceConfig, SourceEvent, SourceStats, SourceStatus, HARDWARE_DECODERS,
};

/// NTP counts from 1900, unix time from 1970.
const NTP_UNIX_OFFSET_NS: i128 = 2_208_988_800 * 1_000_000_000;
/// A sender clock further than this from the arrival time is wrong (an
/// unset camera clock, say); its frames are stamped on arrival instead.
const MAX_SENDER_SKEW_NS: i128 = 10 * 1_000_000_000;
/// How often the runner looks at the bus, the stop flag and the watchdog.
const POLL: Duration = Duration::from_millis(100);
/// How long the forwarder waits before offering a frame to a full channel
/// again.
const RETRY_SEND: Duration = Duration::from_millis(2);

/// State shared by a source's threads and its GStreamer callbacks.
pub(crate) struct Shared {
    pub(crate) id: Arc<str>,
    pub(crate) stop: AtomicBool,
    pub(crate) ring: Ring,
    /// Encoded video for clips, when the source keeps it.
    pub(crate) clips: Option<ClipRing>,
    /// The newest frame handed on, when the source keeps it.
    pub(crate) latest: Option<Mutex<Option<Arc<Frame>>>>,
    frames_in: AtomicU64,
    sampled: AtomicU64,
    frames_out: AtomicU64,
    frames_dropped: AtomicU64,
    reconnects: AtomicU64,
    info: Mutex<Info>,
}

#[derive(Default)]
struct Info {
    online: bool,
    finished: bool,
    decoder: Option<String>,
    hardware_decoder: bool,
    clock: Option<CaptureClock>,
    last_error: Option<String>,
}

impl Shared {
    pub(crate) fn new(config: &SourceConfig) -> Shared {
        Shared {
            id: Arc::from(config.id.as_str()),
            stop: AtomicBool::new(false),
            ring: Ring::new(config.queue.max(1)),
            clips: config.clip_buffer.map(ClipRing::new),
            latest: config.keep_latest.then(|| Mutex::new(None)),
            frames_in: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            info: Mutex::new(Info::default()),
        }
    }

    pub(crate) fn stats(&self) -> SourceStats {
        let info = self.info.locked();
        SourceStats {
            id: self.id.to_string(),
            online: info.online,
            finished: info.finished,
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            decoder: info.decoder.clone(),
            hardware_decoder: info.hardware_decoder,
            clock: info.clock,
            last_error: info.last_error.clone(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A sampled frame waiting to be handed on.
pub(crate) struct Pending {
    sample: gst::Sample,
    seq: u64,
    pts_ms: u64,
    capture_unix_ms: u64,
    clock: CaptureClock,
}

/// What the ring carries: frames, which may be dropped, and losses of video,
/// which may not.
pub(crate) enum Item {
    Frame(Pending),
    Offline { reason: String, retrying: bool },
}

/// The bounded hand-off between the streaming threads and the forwarder.
pub(crate) struct Ring {
    state: Mutex<RingState>,
    changed: Condvar,
    capacity: usize,
}

struct RingState {
    items: VecDeque<Item>,
    frames: usize,
    closed: bool,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            state: Mutex::new(RingState {
                items: VecDeque::new(),
                frames: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            capacity,
        }
    }

    /// Queues a frame; when the ring is full the oldest waiting frame makes
    /// room. Returns whether one was dropped.
    fn push_dropping_oldest(&self, frame: Pending) -> bool {
        let mut state = self.state.locked();
        let mut dropped = false;
        if state.frames >= self.capacity {
            if let Some(at) = state.items.iter().position(|i| matches!(i, Item::Frame(_))) {
                state.items.remove(at);
                state.frames -= 1;
                dropped = true;
            }
        }
        state.items.push_back(Item::Frame(frame));
        state.frames += 1;
        drop(state);
        self.changed.notify_all();
        dropped
    }

    /// Queues a frame, waiting while the ring is full. Gives up (false) when
    /// `cancelled` says so or the ring is closed.
    fn push_waiting(&self, frame: Pending, cancelled: impl Fn() -> bool) -> bool {
        let mut state = self.state.locked();
        while state.frames >= self.capacity {
            if state.closed || cancelled() {
                return false;
            }
            state = self.changed.wait_timeout(state, POLL).unwrap().0;
        }
        state.items.push_back(Item::Frame(frame));
        state.frames += 1;
        drop(state);
        self.changed.notify_all();
        true
    }

    fn push_offline(&self, reason: String, retrying: bool) {
        let mut state = self.state.locked();
        state.items.push_back(Item::Offline { reason, retrying });
        drop(state);
        self.changed.notify_all();
    }

    /// Wakes everything waiting on the ring (to look at a stop flag).
    fn wake(&self) {
        self.changed.notify_all();
    }

    /// No more items will come; the forwarder ends once the ring is empty.
    pub(crate) fn close(&self) {
        self.state.locked().closed = true;
        self.changed.notify_all();
    }

    /// The next item, waiting for one; `None` once closed and empty, or
    /// stopped.
    fn pop(&self, stop: &AtomicBool) -> Option<Item> {
        let mut state = self.state.locked();
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(item) = state.items.pop_front() {
                if matches!(item, Item::Frame(_)) {
                    state.frames -= 1;
                }
                drop(state);
                self.changed.notify_all();
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state = self.changed.wait_timeout(state, POLL).unwrap().0;
        }
    }
}

/// The forwarder thread: ring to consumer, in order, without repeats of a
/// status.
pub(crate) fn forward(shared: &Shared, tx: &SyncSender<SourceEvent>) {
    let mut online: Option<bool> = None;
    let status = |status: SourceStatus| SourceEvent::Status {
        source: shared.id.clone(),
        status,
    };
    while let Some(item) = shared.ring.pop(&shared.stop) {
        match item {
            Item::Frame(pending) => {
                let Some(frame) = to_frame(&shared.id, pending) else {
                    continue;
                };
                if online != Some(true) {
                    online = Some(true);
                    let decoder = {
                        let mut info = shared.info.locked();
                        info.online = true;
                        info.decoder.clone().unwrap_or_else(|| "none".into())
                    };
                    tracing::info!(source = %shared.id, %decoder, "video online");
                    if !send(shared, tx, status(SourceStatus::Online { decoder })) {
                        break;
                    }
                }
                shared.info.locked().clock = Some(frame.clock);
                if let Some(latest) = &shared.latest {
                    *latest.locked() = Some(Arc::new(frame.clone()));
                }
                if !send(shared, tx, SourceEvent::Frame(frame)) {
                    break;
                }
                shared.frames_out.fetch_add(1, Ordering::Relaxed);
            }
            Item::Offline { reason, retrying } => {
                shared.info.locked().online = false;
                if online == Some(false) && retrying {
                    continue;
                }
                online = Some(false);
                tracing::warn!(source = %shared.id, %reason, retrying, "video offline");
                if !send(
                    shared,
                    tx,
                    status(SourceStatus::Offline { reason, retrying }),
                ) {
                    break;
                }
            }
        }
    }
}

/// Sends one event, waiting while the channel is full; false when the source
/// is stopping or the consumer has gone (which stops the source).
fn send(shared: &Shared, tx: &SyncSender<SourceEvent>, mut event: SourceEvent) -> bool {
    loop {
        match tx.try_send(event) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                if shared.stopped() {
                    return false;
                }
                event = back;
                std::thread::sleep(RETRY_SEND);
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::debug!(source = %shared.id, "consumer gone; stopping");
                shared.stop.store(true, Ordering::SeqCst);
                return false;
            }
        }
    }
}

/// Copies a sample out, without row padding (see [`crate::pixels`]).
fn to_frame(id: &Arc<str>, p: Pending) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(p.sample.caps()?).ok()?;
    let buffer = p.sample.buffer()?;
    let video = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (data, layout) = crate::pixels::copy_out(&video)?;
    Some(Frame {
        source: id.clone(),
        seq: p.seq,
        pts_ms: p.pts_ms,
        capture_unix_ms: p.capture_unix_ms,
        clock: p.clock,
        width: video.width(),
        height: video.height(),
        data,
        layout,
    })
}

/// How one pipeline run ended.
enum End {
    /// `Source::stop`, or the consumer went away.
    Stopped,
    /// A file ended (and does not loop); the source is done.
    Finished(String),
    /// An error, the end of a live stream, or a stall.
    Failed {
        reason: String,
        /// Whether the connection had delivered video for a while.
        stable: bool,
    },
}

/// The runner thread: connect, watch, reconnect with backoff.
pub(crate) fn run(shared: &Arc<Shared>, config: &SourceConfig, location: &Location) {
    let mut backoff = reconnect();
    loop {
        if shared.stopped() {
            break;
        }
        match run_once(shared, config, location) {
            End::Stopped => break,
            End::Finished(reason) => {
                shared.info.locked().finished = true;
                shared.ring.push_offline(reason, false);
                break;
            }
            End::Failed { reason, stable } => {
                tracing::debug!(source = %shared.id, %reason, "source failed");
                shared.info.locked().last_error = Some(reason.clone());
                if !location.is_live() {
                    shared.info.locked().finished = true;
                    shared.ring.push_offline(reason, false);
                    break;
                }
                if stable {
                    backoff.reset();
                }
                shared.ring.push_offline(reason, true);
                let until = Instant::now() + backoff.next_delay();
                while Instant::now() < until && !shared.stopped() {
                    std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
                }
                if shared.stopped() {
                    break;
                }
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    shared.ring.close();
}

/// What one pipeline run's callbacks share.
struct RunState {
    shared: Arc<Shared>,
    location_kind: Kind,
    /// Drop the oldest frame rather than wait for the consumer.
    drop_frames: bool,
    /// Set before the pipeline is torn down, to release a waiting callback.
    closing: AtomicBool,
    sampler: Mutex<Sampler>,
    /// Sender NTP time minus buffer PTS, from the latest RTP packet that
    /// carried an NTP reference timestamp.
    ntp_offset_ns: Mutex<Option<i128>>,
    /// Length of the loops of a file played before this one.
    loop_offset_ns: AtomicU64,
    /// End of the latest decoded frame in the file, for when the length of
    /// a looping file cannot be asked.
    last_end_ns: AtomicU64,
    /// Wall clock when this run started, for files.
    start_unix_ns: i128,
    /// Whether a sender clock that is off has been reported.
    skew_warned: AtomicBool,
    /// Whether a parser's output is being buffered for clips.
    clip_tapped: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rtsp,
    Http,
    File,
}

fn unix_ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// One pipeline from start to failure, end or stop.
fn run_once(shared: &Arc<Shared>, config: &SourceConfig, location: &Location) -> End {
    let state = Arc::new(RunState {
        shared: shared.clone(),
        location_kind: match location {
            Location::Rtsp(_) => Kind::Rtsp,
            Location::Http(_) => Kind::Http,
            Location::File(_) => Kind::File,
        },
        drop_frames: location.is_live() || config.realtime_files,
        closing: AtomicBool::new(false),
        sampler: Mutex::new(Sampler::new(config.fps)),
        ntp_offset_ns: Mutex::new(None),
        loop_offset_ns: AtomicU64::new(0),
        last_end_ns: AtomicU64::new(0),
        start_unix_ns: unix_ns(SystemTime::now()),
        skew_warned: AtomicBool::new(false),
        clip_tapped: AtomicBool::new(false),
    });
    if let Some(clips) = &shared.clips {
        clips.restart();
    }
    let pipeline = match build(&state, config, location) {
        Ok(p) => p,
        Err(reason) => {
            return End::Failed {
                reason,
                stable: false,
            }
        }
    };
    let end = watch(&state, &pipeline, config, location);
    state.closing.store(true, Ordering::SeqCst);
    shared.ring.wake();
    let _ = pipeline.set_state(gst::State::Null);
    end
}

/// Runs the pipeline until it fails, ends, stalls or is stopped.
fn watch(
    state: &RunState,
    pipeline: &gst::Pipeline,
    config: &SourceConfig,
    location: &Location,
) -> End {
    let shared = &state.shared;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let failed = |reason: String, first_video: Option<Instant>| End::Failed {
        reason,
        stable: first_video.is_some_and(|t| t.elapsed() >= STABLE_AFTER),
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let reason = bus_error(&bus).unwrap_or_else(|| "the pipeline would not start".into());
        return failed(reason, None);
    }
    // A file read as fast as the consumer takes it may rightly wait long.
    let watchdog = location.is_live() || config.realtime_files;
    let mut frames_seen = shared.frames_in.load(Ordering::Relaxed);
    let mut last_video = Instant::now();
    let mut first_video = None;
    loop {
        if shared.stopped() {
            return End::Stopped;
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64)) {
            match msg.view() {
                gst::MessageView::Error(err) => {
                    tracing::debug!(
                        source = %shared.id,
                        error = %err.error(),
                        debug = ?err.debug(),
                        "pipeline error"
                    );
                    return failed(describe_error(err), first_video);
                }
                gst::MessageView::Warning(w) => {
                    tracing::debug!(source = %shared.id, warning = %w.error(), "pipeline warning");
                }
                gst::MessageView::Eos(_) if location.is_live() => {
                    return failed("the stream ended".into(), first_video);
                }
                gst::MessageView::Eos(_) if config.loop_files => {
                    let length = pipeline
                        .query_duration::<gst::ClockTime>()
                        .map(|d| d.nseconds())
                        .filter(|&d| d > 0)
                        .unwrap_or_else(|| state.last_end_ns.load(Ordering::Relaxed));
                    state.loop_offset_ns.fetch_add(length, Ordering::SeqCst);
                    if let Err(e) = pipeline.seek_simple(
                        gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                        gst::ClockTime::ZERO,
                    ) {
                        return failed(format!("cannot loop the file: {e}"), first_video);
                    }
                }
                gst::MessageView::Eos(_) => return End::Finished("end of file".into()),
                _ => {}
            }
        }
        let now = Instant::now();
        let frames = shared.frames_in.load(Ordering::Relaxed);
        if frames != frames_seen {
            frames_seen = frames;
            last_video = now;
            first_video.get_or_insert(now);
        }
        if watchdog && now.duration_since(last_video) > config.stall_timeout {
            let what = if first_video.is_some() {
                "no video"
            } else {
                "no video since connecting"
            };
            return failed(
                format!("{what} for {:.1} s", config.stall_timeout.as_secs_f64()),
                first_video,
            );
        }
    }
}

/// The first error waiting on the bus.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(describe_error(err));
        }
    }
    None
}

/// An error message with the last line of its debug text, which usually
/// says what happened underneath (`Failed to connect.`), without the
/// source-file and element path lines.
fn describe_error(err: &gst::message::Error) -> String {
    let message = err.error().to_string();
    let detail = err.debug().and_then(|debug| {
        debug
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.contains(".c(") && !l.starts_with('/'))
            .map(str::to_owned)
    });
    match detail {
        Some(detail) if !message.contains(&detail) => format!("{message} ({detail})"),
        _ => message,
    }
}

/// Whether caps describe video: raw or coded video, images (MJPEG), or an
/// RTP stream (or, for `select-stream`, an SDP media) of `media=video`.
fn is_video(caps: Option<&gst::CapsRef>) -> bool {
    caps.and_then(|c| c.structure(0)).is_some_and(|s| {
        s.name().starts_with("video/")
            || s.name().starts_with("image/")
            || s.get::<&str>("media").is_ok_and(|m| m == "video")
    })
}

/// Builds the pipeline and hooks up its callbacks.
fn build(
    state: &Arc<RunState>,
    config: &SourceConfig,
    location: &Location,
) -> Result<gst::Pipeline, String> {
    let line = launch_line(location, config);
    let pipeline = gst::parse::launch(&line)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the launch line is not a pipeline".to_string())?;
    let by_name = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| format!("the pipeline has no element {name}"))
    };
    let (src, dec, queue) = (by_name("src")?, by_name("dec")?, by_name("q")?);
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "sink is not an appsink".to_string())?;
    let dec_sink = dec.static_pad("sink").ok_or("decodebin has no sink pad")?;
    let queue_sink = queue.static_pad("sink").ok_or("queue has no sink pad")?;

    match location {
        Location::Rtsp(url) | Location::Http(url) => src.set_property("location", url),
        Location::File(path) => src.set_property("location", path.to_string_lossy().as_ref()),
    }
    if let Location::Rtsp(_) = location {
        // Set up only the video streams, and feed the first to decodebin.
        src.connect("select-stream", false, |args| {
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            Some(is_video(caps.as_deref()).to_value())
        });
        let target = dec_sink.clone();
        src.connect_pad_added(move |_, pad| {
            if !target.is_linked() && is_video(pad.current_caps().as_deref()) {
                if let Err(e) = pad.link(&target) {
                    tracing::warn!(pad = %pad.name(), error = ?e, "cannot link the RTSP stream");
                }
            }
        });
        let run = state.clone();
        dec_sink.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let newest = match (info.buffer(), info.buffer_list()) {
                    (Some(b), _) => ntp_offset(b),
                    (None, Some(list)) => list.iter().filter_map(ntp_offset).next_back(),
                    _ => None,
                };
                if let Some(offset) = newest {
                    *run.ntp_offset_ns.locked() = Some(offset);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    if !config.hardware_decode {
        dec.set_property("force-sw-decoders", true);
    }
    // Leave audio undecoded: nothing links it.
    dec.connect("autoplug-continue", false, |args| {
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let audio = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .is_some_and(|s| s.name().starts_with("audio/"));
        Some((!audio).to_value())
    });
    {
        let target = queue_sink.clone();
        dec.connect_pad_added(move |_, pad| {
            if !target.is_linked() && is_video(pad.current_caps().as_deref()) {
                if let Err(e) = pad.link(&target) {
                    tracing::warn!(pad = %pad.name(), error = ?e, "cannot link the decoder");
                }
            }
        });
    }
    {
        let run = state.clone();
        pipeline.connect_deep_element_added(move |_, _, element| {
            let Some(factory) = element.factory() else {
                return;
            };
            if matches!(factory.name().as_str(), "h264parse" | "h265parse")
                && run.shared.clips.is_some()
                && !run.clip_tapped.swap(true, Ordering::SeqCst)
            {
                tap_parser(&run, element);
                return;
            }
            if factory.name() == "multipartdemux" {
                // MJPEG over HTTP: one stream of JPEGs. Without this the
                // demuxer never says that no more streams come, and
                // decodebin may hold the video back waiting for them.
                element.set_property("single-stream", true);
                return;
            }
            let klass = factory.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or("");
            if klass.contains("Decoder") && (klass.contains("Video") || klass.contains("Image")) {
                let name = factory.name().to_string();
                let hardware =
                    klass.contains("Hardware") || HARDWARE_DECODERS.contains(&name.as_str());
                let mut info = run.shared.info.locked();
                info.decoder = Some(name);
                info.hardware_decoder = hardware;
            }
        });
    }
    {
        // Count decoded frames and drop those over the rate before they are
        // scaled or converted.
        let run = state.clone();
        queue_sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            run.shared.frames_in.fetch_add(1, Ordering::Relaxed);
            if let Some(pts) = buffer.pts() {
                let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                run.last_end_ns.fetch_max(end.nseconds(), Ordering::Relaxed);
            }
            // Sample on the file's timeline across loops, so that the rate
            // holds over the seam.
            let t = match buffer.pts() {
                Some(pts) => Some(pts.nseconds() + run.loop_offset_ns.load(Ordering::SeqCst)),
                None => pad
                    .parent_element()
                    .and_then(|e| e.current_running_time())
                    .map(|t| t.nseconds()),
            };
            let keep = t.is_none_or(|t| run.sampler.locked().keep(t));
            if keep {
                gst::PadProbeReturn::Ok
            } else {
                // `Handled` with the buffer left in the info: the binding
                // releases it and GStreamer goes on to the next buffer.
                // With `Drop` the binding releases it too, and GStreamer
                // 1.22 then warns about releasing a null buffer.
                gst::PadProbeReturn::Handled
            }
        });
    }
    {
        let run = state.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| on_sample(&run, sink))
                .build(),
        );
    }
    Ok(pipeline)
}

/// Sender NTP time minus PTS, if the buffer carries an NTP reference
/// timestamp (rtpjitterbuffer adds one from RTCP sender reports).
fn ntp_offset(buffer: &gst::BufferRef) -> Option<i128> {
    let pts = buffer.pts()?;
    let ntp = ntp_unix_ns(buffer)?;
    Some(ntp - pts.nseconds() as i128)
}

/// The buffer's `timestamp/x-ntp` reference time as unix nanoseconds.
fn ntp_unix_ns(buffer: &gst::BufferRef) -> Option<i128> {
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })
        .map(|m| m.timestamp().nseconds() as i128 - NTP_UNIX_OFFSET_NS)
}

/// The appsink callback: stamp the frame and hand it to the ring.
fn on_sample(run: &RunState, sink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
    let Some(buffer) = sample.buffer() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let segment = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>());
    let (pts_ns, capture_ns, clock) = stamp(run, Some(sink.upcast_ref()), buffer, segment);
    let shared = &run.shared;
    let pending = Pending {
        sample,
        seq: shared.sampled.fetch_add(1, Ordering::Relaxed),
        pts_ms: pts_ns / 1_000_000,
        capture_unix_ms: (capture_ns.max(0) / 1_000_000) as u64,
        clock,
    };
    if run.drop_frames {
        if shared.ring.push_dropping_oldest(pending) {
            shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    } else if !shared.ring.push_waiting(pending, || {
        run.closing.load(Ordering::Relaxed) || shared.stopped()
    }) {
        return Err(gst::FlowError::Flushing);
    }
    Ok(gst::FlowSuccess::Ok)
}

/// A buffer's time on the source's timeline (nanoseconds; see
/// [`Frame::pts_ms`]), its capture time (unix nanoseconds) and where that
/// came from. `element` is one the buffer passes (for the pipeline's clock)
/// and `segment` the segment of its PTS. Decoded frames and the encoded
/// units buffered for clips are stamped alike.
fn stamp(
    run: &RunState,
    element: Option<&gst::Element>,
    buffer: &gst::BufferRef,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
) -> (u64, i128, CaptureClock) {
    let pts = buffer.pts();
    let running = pts.and_then(|p| segment.and_then(|s| s.to_running_time(p)));
    match run.location_kind {
        Kind::File => {
            let position = pts
                .and_then(|p| segment.and_then(|s| s.to_stream_time(p)))
                .or(pts)
                .map_or(0, |p| p.nseconds());
            let t = run.loop_offset_ns.load(Ordering::SeqCst) + position;
            (t, run.start_unix_ns + t as i128, CaptureClock::File)
        }
        Kind::Rtsp => {
            let pts_ns = running.map_or(0, |r| r.nseconds());
            let from_meta = ntp_unix_ns(buffer).or_else(|| {
                let offset = (*run.ntp_offset_ns.locked())?;
                Some(pts?.nseconds() as i128 + offset)
            });
            let arrival = arrival_ns(element, running);
            match from_meta {
                Some(ntp) if (ntp - arrival).abs() <= MAX_SENDER_SKEW_NS => {
                    (pts_ns, ntp, CaptureClock::RtcpNtp)
                }
                Some(ntp) => {
                    if !run.skew_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            source = %run.shared.id,
                            skew_s = (ntp - arrival) as f64 / 1e9,
                            "the camera's clock is off; stamping frames on arrival instead"
                        );
                    }
                    (pts_ns, arrival, CaptureClock::Arrival)
                }
                None => (pts_ns, arrival, CaptureClock::Arrival),
            }
        }
        Kind::Http => (
            running.map_or(0, |r| r.nseconds()),
            arrival_ns(element, running),
            CaptureClock::Arrival,
        ),
    }
}

/// Buffers the parser's output (encoded access units, before the decoder)
/// in the source's clip ring, stamped like the decoded frames.
fn tap_parser(run: &Arc<RunState>, parser: &gst::Element) {
    let Some(src) = parser.static_pad("src") else {
        return;
    };
    let run = run.clone();
    let parser = parser.downgrade();
    src.add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::BUFFER_LIST
            | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let Some(clips) = run.shared.clips.as_ref() else {
                return gst::PadProbeReturn::Ok;
            };
            let push = |buffer: &gst::Buffer| {
                let Some(caps) = pad.current_caps() else {
                    return;
                };
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let segment = segment
                    .as_ref()
                    .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>());
                let element = pad.parent_element();
                let (_, capture_ns, _) = stamp(&run, element.as_ref(), buffer, segment);
                let capture_ms = (capture_ns.max(0) / 1_000_000) as u64;
                clips.push(&run.shared.id, &caps, buffer.clone(), capture_ms);
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => push(buffer),
                Some(gst::PadProbeData::BufferList(list)) => {
                    list.iter_owned().for_each(|b| push(&b))
                }
                Some(gst::PadProbeData::Event(event)) => {
                    if let gst::EventView::Caps(c) = event.view() {
                        // Without codec_data, a keyframe must carry the
                        // parameter sets to start a clip.
                        if VideoCodec::is_byte_stream(c.caps()) {
                            if let Some(parser) = parser.upgrade() {
                                parser.set_property("config-interval", -1i32);
                            }
                        }
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// The wall-clock time at which the pipeline's clock read `running` (the
/// buffer's running time), or now if it has none. `element` is one in the
/// pipeline, for its clock and base time.
fn arrival_ns(element: Option<&gst::Element>, running: Option<gst::ClockTime>) -> i128 {
    let now = unix_ns(SystemTime::now());
    let Some(element) = element else {
        return now;
    };
    let (Some(running), Some(clock), Some(base)) = (running, element.clock(), element.base_time())
    else {
        return now;
    };
    let clock_running = clock.time().nseconds() as i128 - base.nseconds() as i128;
    now - (clock_running - running.nseconds() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: u64) -> Pending {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", 2i32)
            .field("height", 2i32)
            .field("framerate", gst::Fraction::new(10, 1))
            .build();
        // RGB rows of 2 pixels are padded to 8 bytes.
        let mut data = vec![0u8; 16];
        data[0] = seq as u8;
        data[8] = 200;
        let sample = gst::Sample::builder()
            .buffer(&gst::Buffer::from_mut_slice(data))
            .caps(&caps)
            .build();
        Pending {
            sample,
            seq,
            pts_ms: seq * 100,
            capture_unix_ms: 1_000 + seq * 100,
            clock: CaptureClock::Arrival,
        }
    }

    fn drain(ring: &Ring) -> Vec<String> {
        ring.close();
        let stop = AtomicBool::new(false);
        std::iter::from_fn(|| ring.pop(&stop))
            .map(|item| match item {
                Item::Frame(p) => format!("f{}", p.seq),
                Item::Offline { reason, .. } => reason,
            })
            .collect()
    }

    #[test]
    fn a_full_ring_drops_its_oldest_frame_but_never_a_status() {
        let ring = Ring::new(2);
        assert!(!ring.push_dropping_oldest(pending(0)));
        ring.push_offline("lost".into(), true);
        assert!(!ring.push_dropping_oldest(pending(1)));
        assert!(ring.push_dropping_oldest(pending(2)));
        assert!(ring.push_dropping_oldest(pending(3)));
        assert_eq!(drain(&ring), ["lost", "f2", "f3"]);
    }

    #[test]
    fn a_waiting_push_gives_up_when_cancelled() {
        let ring = Ring::new(1);
        assert!(ring.push_waiting(pending(0), || false));
        assert!(!ring.push_waiting(pending(1), || true));
        assert_eq!(drain(&ring), ["f0"]);
    }

    #[test]
    fn frames_are_copied_out_without_row_padding() {
        let frame = to_frame(&Arc::from("cam"), pending(7)).unwrap();
        assert_eq!((frame.width, frame.height), (2, 2));
        assert_eq!(frame.data.len(), 12);
        assert_eq!(frame.picture().pixel(0, 0), [7, 0, 0]);
        assert_eq!(frame.picture().pixel(0, 1), [200, 0, 0]);
        assert_eq!(&*frame.source, "cam");
    }

    #[test]
    fn forwarding_announces_online_once_and_offline_once() {
        let shared = Shared::new(&SourceConfig::new("cam", "rtsp://h/x"));
        shared.info.locked().decoder = Some("avdec_h264".into());
        shared.ring.push_offline("refused".into(), true);
        shared.ring.push_offline("refused".into(), true);
        shared.ring.push_dropping_oldest(pending(0));
        shared.ring.push_dropping_oldest(pending(1));
        shared.ring.push_offline("stalled".into(), true);
        shared.ring.push_offline("refused".into(), true);
        shared.ring.push_dropping_oldest(pending(2));
        shared.ring.close();
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        forward(&shared, &tx);
        let seen: Vec<String> = rx
            .try_iter()
            .map(|e| match e {
                SourceEvent::Frame(f) => format!("f{}", f.seq),
                SourceEvent::Status { status, .. } => match status {
                    SourceStatus::Online { decoder } => format!("online {decoder}"),
                    SourceStatus::Offline { reason, .. } => format!("offline {reason}"),
                },
            })
            .collect();
        assert_eq!(
            seen,
            [
                "offline refused",
                "online avdec_h264",
                "f0",
                "f1",
                "offline stalled",
                "online avdec_h264",
                "f2"
            ]
        );
        assert_eq!(shared.stats().frames_out, 3);
    }
}
