//! The ring buffer of encoded video behind [`Source::clip`](super::Source::clip),
//! and MP4 clips cut from it without re-encoding.
//!
//! With [`SourceConfig::clip_buffer`](super::SourceConfig::clip_buffer) set,
//! a pad probe on the output of the stream's parser (`h264parse` or
//! `h265parse`, which `decodebin` puts in front of the decoder) keeps every
//! access unit it passes: the same GStreamer buffer the decoder gets (a
//! reference, not a copy), stamped with its capture time on the clock the
//! decoded frames use. No element is added to the graph and nothing is
//! encoded.
//!
//! - **Format.** Access units as the parser hands them to the decoder:
//!   `alignment=au`, and `stream-format=avc` (`hvc1` for H.265) with the
//!   parameter sets in the caps' `codec_data` for the software decoders, or
//!   `byte-stream` for decoders that ask for it, in which case the parser is
//!   told to repeat the parameter sets before every keyframe so that any
//!   keyframe starts a decodable clip. The caps go with the clip.
//! - **Trimming.** The ring is a queue of GOPs, each starting at a keyframe,
//!   so it always starts at one. It keeps the last keyframe at or before
//!   the newest capture time minus the buffer length, and everything after
//!   it: it holds at least the buffer length (once that much has come) and
//!   at most that plus one GOP.
//! - **Memory.** Besides the length, the ring holds at most
//!   [`CLIP_BUFFER_MAX_BYTES`] (64 MiB, about 50 s of a 10 Mbit/s stream):
//!   past that the oldest GOPs go first, and a single GOP larger than that
//!   is not kept at all.
//! - **Segments.** A reconnect, a change of caps (another resolution or
//!   parameter sets) or a jump in the timestamps (a file that loops) starts
//!   a new segment, which starts at its first keyframe. A clip is cut from
//!   one segment, the latest that overlaps the span asked for, so that its
//!   timestamps run on and one set of caps describes it.
//! - **Codecs.** Only H.264 and H.265 are buffered. Raw video, MJPEG and
//!   other codecs leave the ring empty: [`Source::clip`](super::Source::clip)
//!   returns `None` and logs why, and
//!   [`ClipBufferStats::unsupported`] says so.
//! - **Offline.** A source that loses its video keeps what it buffered
//!   until new video pushes it out, so a clip of the time before an outage
//!   can still be cut.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use safecity_core::sync::Locked;
use serde::Serialize;

/// The most encoded video one source buffers for clips, in bytes
/// (64 MiB), whatever its [`clip_buffer`](super::SourceConfig::clip_buffer)
/// length.
pub const CLIP_BUFFER_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Timestamps further apart than this start a new segment.
const MAX_GAP: gst::ClockTime = gst::ClockTime::from_seconds(10);
/// How long writing one MP4 may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The codecs the ring keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    /// `h264` or `h265`.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }

    /// The parser that turns the access units into what `mp4mux` takes.
    fn parser(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264parse",
            VideoCodec::H265 => "h265parse",
        }
    }

    /// The codec of parsed caps, or why they cannot be clipped.
    pub(crate) fn from_caps(caps: &gst::CapsRef) -> Result<VideoCodec, String> {
        let s = caps.structure(0).ok_or("the stream has empty caps")?;
        let codec = match s.name().as_str() {
            "video/x-h264" => VideoCodec::H264,
            "video/x-h265" => VideoCodec::H265,
            other => return Err(format!("the stream is {other}, not H.264 or H.265")),
        };
        match s.get::<&str>("alignment") {
            Ok("au") | Err(_) => Ok(codec),
            Ok(other) => Err(format!(
                "the {} stream is aligned by {other}, not by access unit",
                codec.as_str()
            )),
        }
    }

    /// Whether parsed caps carry the parameter sets in-band only.
    pub(crate) fn is_byte_stream(caps: &gst::CapsRef) -> bool {
        caps.structure(0)
            .is_some_and(|s| s.get::<&str>("stream-format") == Ok("byte-stream"))
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One buffered access unit: the parser's buffer (with its PTS, DTS,
/// duration and flags) and its capture time.
#[derive(Clone)]
struct Unit {
    buffer: gst::Buffer,
    capture_unix_ms: u64,
    keyframe: bool,
}

/// A keyframe and the units that depend on it, all of one segment.
struct Gop {
    segment: u64,
    caps: gst::Caps,
    units: Vec<Unit>,
    bytes: usize,
}

impl Gop {
    fn start_ms(&self) -> u64 {
        self.units.first().map_or(0, |u| u.capture_unix_ms)
    }
}

/// What [`Source::clip_buffer`](super::Source::clip_buffer) reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClipBufferStats {
    /// The buffer length asked for, in milliseconds.
    pub length_ms: u64,
    /// The codec of the stream now, once one has been seen.
    pub codec: Option<VideoCodec>,
    /// Capture time of the oldest buffered frame (always a keyframe).
    pub start_unix_ms: Option<u64>,
    /// Capture time of the newest buffered frame.
    pub end_unix_ms: Option<u64>,
    /// Buffered access units (frames).
    pub frames: usize,
    /// Buffered keyframes.
    pub keyframes: usize,
    /// Buffered bytes of encoded video.
    pub bytes: usize,
    /// Why the stream cannot be buffered, when it cannot (raw video, MJPEG
    /// and other codecs than H.264 and H.265).
    pub unsupported: Option<String>,
}

/// The ring of one source, shared by its runs.
pub(crate) struct ClipRing {
    length_ms: u64,
    max_bytes: usize,
    state: Mutex<RingState>,
}

#[derive(Default)]
struct RingState {
    gops: VecDeque<Gop>,
    bytes: usize,
    segment: u64,
    /// The next unit starts a new segment (at a keyframe).
    restart: bool,
    /// The caps of the stream now, and whether it can be clipped.
    caps: Option<gst::Caps>,
    codec: Option<Result<VideoCodec, String>>,
    /// DTS (or PTS) of the latest unit, to notice jumps.
    last_ts: Option<gst::ClockTime>,
    /// Whether an oversized GOP has been reported.
    oversize_warned: bool,
}

impl ClipRing {
    pub(crate) fn new(length: Duration) -> ClipRing {
        ClipRing::with_max_bytes(length, CLIP_BUFFER_MAX_BYTES)
    }

    fn with_max_bytes(length: Duration, max_bytes: usize) -> ClipRing {
        ClipRing {
            length_ms: length.as_millis() as u64,
            max_bytes,
            state: Mutex::new(RingState::default()),
        }
    }

    /// A new connection (or file run) begins: what comes next is a new
    /// segment.
    pub(crate) fn restart(&self) {
        let mut state = self.state.locked();
        state.restart = true;
        state.last_ts = None;
    }

    /// Adds one access unit of a stream with `caps`, stamped with its
    /// capture time, and trims the ring.
    pub(crate) fn push(
        &self,
        source: &str,
        caps: &gst::Caps,
        buffer: gst::Buffer,
        capture_ms: u64,
    ) {
        let mut guard = self.state.locked();
        let state = &mut *guard;
        let same_caps = state
            .caps
            .as_ref()
            .is_some_and(|c| c.as_ptr() == caps.as_ptr() || c == caps);
        if !same_caps {
            let codec = VideoCodec::from_caps(caps);
            match &codec {
                Ok(codec) => tracing::debug!(source, %codec, %caps, "buffering encoded video"),
                Err(reason) => {
                    tracing::warn!(source, %reason, "no clips from this stream; only H.264 and H.265 are buffered")
                }
            }
            state.caps = Some(caps.clone());
            state.codec = Some(codec);
            state.restart = true;
        }
        if !matches!(state.codec, Some(Ok(_))) {
            return;
        }
        let ts = buffer.dts_or_pts();
        if let (Some(ts), Some(last)) = (ts, state.last_ts) {
            if ts < last || ts > last + MAX_GAP {
                state.restart = true;
            }
        }
        if ts.is_some() {
            state.last_ts = ts;
        }
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        if (state.restart || state.gops.is_empty()) && !keyframe {
            // A clip can only start at a keyframe.
            return;
        }
        if state.restart {
            state.restart = false;
            state.segment += 1;
        }
        let size = buffer.size();
        let unit = Unit {
            buffer,
            capture_unix_ms: capture_ms,
            keyframe,
        };
        match state.gops.back_mut() {
            Some(gop) if !keyframe => {
                gop.units.push(unit);
                gop.bytes += size;
            }
            _ => state.gops.push_back(Gop {
                segment: state.segment,
                caps: caps.clone(),
                units: vec![unit],
                bytes: size,
            }),
        }
        state.bytes += size;
        self.trim(source, state, capture_ms);
    }

    fn trim(&self, source: &str, state: &mut RingState, newest_ms: u64) {
        let cutoff = newest_ms.saturating_sub(self.length_ms);
        while state.gops.len() >= 2
            && (state.gops[1].start_ms() <= cutoff || state.bytes > self.max_bytes)
        {
            let gone = state.gops.pop_front().expect("two GOPs");
            state.bytes -= gone.bytes;
        }
        if state.bytes > self.max_bytes {
            if !state.oversize_warned {
                state.oversize_warned = true;
                tracing::warn!(
                    source,
                    bytes = state.bytes,
                    max_bytes = self.max_bytes,
                    "one GOP is larger than the clip buffer's byte cap; it is not buffered"
                );
            }
            state.gops.clear();
            state.bytes = 0;
        }
    }

    /// What the ring holds now.
    pub(crate) fn stats(&self) -> ClipBufferStats {
        let state = self.state.locked();
        let units = || state.gops.iter().flat_map(|g| &g.units);
        ClipBufferStats {
            length_ms: self.length_ms,
            codec: state.codec.as_ref().and_then(|c| c.as_ref().ok().copied()),
            start_unix_ms: units().next().map(|u| u.capture_unix_ms),
            end_unix_ms: units().last().map(|u| u.capture_unix_ms),
            frames: units().count(),
            keyframes: state.gops.len(),
            bytes: state.bytes,
            unsupported: state.codec.as_ref().and_then(|c| c.clone().err()),
        }
    }

    /// The buffered access units that cover `[from_ms, to_ms]`, from the
    /// keyframe at or before `from_ms` (or the segment's first one) to the
    /// last unit captured at or before `to_ms`; or why there are none.
    pub(crate) fn clip(
        &self,
        source: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<EncodedClip, String> {
        if to_ms < from_ms {
            return Err(format!("the span {from_ms}..{to_ms} ends before it starts"));
        }
        let state = self.state.locked();
        if state.gops.is_empty() {
            return Err(match &state.codec {
                Some(Err(reason)) => reason.clone(),
                _ => "no video is buffered yet".into(),
            });
        }
        // The latest segment that overlaps the span.
        let mut chosen = None;
        let mut at = state.gops.len();
        while at > 0 {
            let segment = state.gops[at - 1].segment;
            let first = state.gops.range(..at).rposition(|g| g.segment != segment);
            let first = first.map_or(0, |i| i + 1);
            let start = state.gops[first].start_ms();
            let end = state.gops[at - 1]
                .units
                .last()
                .map_or(start, |u| u.capture_unix_ms);
            if start <= to_ms && end >= from_ms {
                chosen = Some(first..at);
                break;
            }
            at = first;
        }
        let Some(range) = chosen else {
            let start = state.gops.front().map_or(0, Gop::start_ms);
            let end = state
                .gops
                .back()
                .and_then(|g| g.units.last())
                .map_or(start, |u| u.capture_unix_ms);
            return Err(format!(
                "the span {from_ms}..{to_ms} is outside the buffered video {start}..{end}"
            ));
        };
        let gops: Vec<&Gop> = state.gops.range(range).collect();
        let first = gops
            .iter()
            .rposition(|g| g.start_ms() <= from_ms)
            .unwrap_or(0);
        let units: Vec<Unit> = gops[first..]
            .iter()
            .flat_map(|g| &g.units)
            .take_while(|u| u.capture_unix_ms <= to_ms)
            .cloned()
            .collect();
        // Only caps that passed this check are kept with a GOP.
        let codec = VideoCodec::from_caps(&gops[first].caps)?;
        Ok(EncodedClip {
            source: Arc::from(source),
            codec,
            caps: gops[first].caps.clone(),
            units,
        })
    }
}

/// Buffered access units cut from a source's ring: H.264 or H.265 as it
/// came from the camera, starting at a keyframe. Cheap to hold: the units
/// share their memory with the ring.
#[derive(Clone)]
pub struct EncodedClip {
    source: Arc<str>,
    codec: VideoCodec,
    caps: gst::Caps,
    units: Vec<Unit>,
}

/// What [`EncodedClip::write_mp4`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClipInfo {
    /// Capture time of the first frame (a keyframe), unix milliseconds.
    pub start_unix_ms: u64,
    /// Capture time of the last frame plus its duration.
    pub end_unix_ms: u64,
    /// Frames in the clip.
    pub frames: usize,
    /// Size of the MP4 file.
    pub bytes: u64,
}

/// Why a clip could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("clip of {id}: cannot write {path}: {error}")]
    Io {
        id: String,
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("clip of {id}: cannot mux {path}: {message}")]
    Mux {
        id: String,
        path: PathBuf,
        message: String,
    },
}

impl EncodedClip {
    /// The id of the source it was cut from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The parsed caps (`codec_data` included) as text.
    pub fn caps(&self) -> String {
        self.caps.to_string()
    }

    /// Access units (frames).
    pub fn frames(&self) -> usize {
        self.units.len()
    }

    /// Keyframes; the first unit is one.
    pub fn keyframes(&self) -> usize {
        self.units.iter().filter(|u| u.keyframe).count()
    }

    /// Bytes of encoded video.
    pub fn bytes(&self) -> usize {
        self.units.iter().map(|u| u.buffer.size()).sum()
    }

    /// Capture time of the first frame, unix milliseconds.
    pub fn start_unix_ms(&self) -> u64 {
        self.units.first().map_or(0, |u| u.capture_unix_ms)
    }

    /// Capture time of the last frame plus its duration (from the buffer,
    /// or the mean spacing of the frames).
    pub fn end_unix_ms(&self) -> u64 {
        let Some(last) = self.units.last() else {
            return 0;
        };
        let duration = last
            .buffer
            .duration()
            .map(|d| d.mseconds())
            .unwrap_or_else(|| {
                let span = last.capture_unix_ms.saturating_sub(self.start_unix_ms());
                span / (self.units.len() as u64 - 1).max(1)
            });
        last.capture_unix_ms + duration
    }

    /// Muxes the clip into an MP4 file at `path` (`appsrc ! h264parse !
    /// mp4mux ! filesink`, or `h265parse`; nothing is re-encoded), with
    /// timestamps starting at 0 and the index at the front (`faststart`),
    /// so that a browser can play it while it loads. The file is written
    /// under a temporary name in the same directory, synced and renamed,
    /// so `path` only ever holds a complete clip.
    pub fn write_mp4(&self, path: &Path) -> Result<ClipInfo, ClipError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let io = |path: &Path, error: std::io::Error| ClipError::Io {
            id: self.source.to_string(),
            path: path.to_path_buf(),
            error,
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
                )
            })?
            .to_string_lossy();
        let partial = path.with_file_name(format!(
            ".{name}.{}-{}.partial",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.mux(&partial).and_then(|()| {
            let file = File::open(&partial).map_err(|e| io(&partial, e))?;
            file.sync_all().map_err(|e| io(&partial, e))?;
            let bytes = file.metadata().map_err(|e| io(&partial, e))?.len();
            std::fs::rename(&partial, path).map_err(|e| io(path, e))?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            // Make the rename itself durable.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(bytes)
        });
        match result {
            Ok(bytes) => Ok(ClipInfo {
                start_unix_ms: self.start_unix_ms(),
                end_unix_ms: self.end_unix_ms(),
                frames: self.frames(),
                bytes,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    fn mux(&self, path: &Path) -> Result<(), ClipError> {
        let fail = |message: String| ClipError::Mux {
            id: self.source.to_string(),
            path: path.to_path_buf(),
            message,
        };
        if self.units.is_empty() {
            return Err(fail("the clip has no frames".into()));
        }
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|_| fail(format!("the GStreamer element {factory} is missing")))
        };
        let appsrc = gst_app::AppSrc::builder()
            .caps(&self.caps)
            .format(gst::Format::Time)
            .max_bytes(0)
            .build();
        let parser = make(self.codec.parser())?;
        let mux = make("mp4mux")?;
        mux.set_property("faststart", true);
        let sink = make("filesink")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        sink.set_property("sync", false);
        let pipeline = gst::Pipeline::new();
        let elements = [appsrc.upcast_ref(), &parser, &mux, &sink];
        pipeline
            .add_many(elements)
            .and_then(|()| gst::Element::link_many(elements))
            .map_err(|e| fail(format!("cannot build the muxer: {e}")))?;

        let result = (|| {
            pipeline
                .set_state(gst::State::Playing)
                .map_err(|e| fail(format!("cannot start the muxer: {e}")))?;
            let base = self
                .units
                .iter()
                .filter_map(|u| u.buffer.dts_or_pts())
                .min()
                .unwrap_or(gst::ClockTime::ZERO);
            // A stream that sends units without timestamps (some cameras do
            // for their first frames) is timed by the capture clock instead.
            let first_capture = self.units.first().map_or(0, |u| u.capture_unix_ms);
            let by_capture = self.units.iter().any(|u| u.buffer.pts().is_none());
            let mut previous: Option<gst::ClockTime> = None;
            for (i, unit) in self.units.iter().enumerate() {
                let mut buffer = unit.buffer.copy();
                {
                    let b = buffer.make_mut();
                    if by_capture {
                        let t = gst::ClockTime::from_mseconds(
                            unit.capture_unix_ms.saturating_sub(first_capture),
                        );
                        let t = previous.map_or(t, |p| t.max(p + gst::ClockTime::from_mseconds(1)));
                        b.set_pts(t);
                        b.set_dts(t);
                        previous = Some(t);
                    } else {
                        let rebase = |t: Option<gst::ClockTime>| t.map(|t| t.saturating_sub(base));
                        let (pts, dts) = (rebase(b.pts()), rebase(b.dts()));
                        b.set_pts(pts);
                        b.set_dts(dts);
                    }
                    if i > 0 {
                        b.unset_flags(gst::BufferFlags::DISCONT);
                    }
                }
                appsrc
                    .push_buffer(buffer)
                    .map_err(|e| fail(format!("the muxer refused a frame: {e:?}")))?;
            }
            appsrc
                .end_of_stream()
                .map_err(|e| fail(format!("cannot end the clip: {e:?}")))?;
            let bus = pipeline.bus().expect("a pipeline has a bus");
            let deadline = Instant::now() + WRITE_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(fail(format!(
                        "the muxer did not finish within {} s",
                        WRITE_TIMEOUT.as_secs()
                    )));
                }
                let Some(msg) = bus.timed_pop_filtered(
                    gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                    &[gst::MessageType::Eos, gst::MessageType::Error],
                ) else {
                    continue;
                };
                match msg.view() {
                    gst::MessageView::Eos(_) => return Ok(()),
                    gst::MessageView::Error(err) => {
                        return Err(fail(format!(
                            "{} ({})",
                            err.error(),
                            err.debug().unwrap_or_default()
                        )))
                    }
                    _ => {}
                }
            }
        })();
        let _ = pipeline.set_state(gst::State::Null);
        result
    }
}

impl std::fmt::Debug for EncodedClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedClip")
            .field("source", &self.source)
            .field("codec", &self.codec)
            .field("start_unix_ms", &self.start_unix_ms())
            .field("end_unix_ms", &self.end_unix_ms())
            .field("frames", &self.frames())
            .field("keyframes", &self.keyframes())
            .field("bytes", &self.bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(format: &str) -> gst::Caps {
        gst::init().unwrap();
        gst::Caps::builder("video/x-h264")
            .field("stream-format", format)
            .field("alignment", "au")
            .build()
    }

    /// A unit of `size` bytes at `t_ms` on the capture clock and the PTS
    /// timeline.
    fn unit(t_ms: u64, keyframe: bool, size: usize) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; size]);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(t_ms));
            b.set_duration(gst::ClockTime::from_mseconds(100));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        buffer
    }

    /// Pushes `seconds` of 10 fps video with a keyframe every second,
    /// starting at capture time `start_ms`.
    fn feed(ring: &ClipRing, caps: &gst::Caps, start_ms: u64, seconds: u64) {
        for i in 0..seconds * 10 {
            let t = start_ms + i * 100;
            ring.push("cam", caps, unit(t, i % 10 == 0, 1000), t);
        }
    }

    #[test]
    fn the_ring_keeps_its_length_from_a_keyframe() {
        let ring = ClipRing::new(Duration::from_millis(2500));
        let caps = caps("avc");
        feed(&ring, &caps, 10_000, 10);
        let stats = ring.stats();
        // Newest 19_900; cutoff 17_400; the last keyframe at or before it
        // is 17_000.
        assert_eq!(stats.start_unix_ms, Some(17_000));
        assert_eq!(stats.end_unix_ms, Some(19_900));
        assert_eq!((stats.frames, stats.keyframes), (30, 3));
        assert_eq!(stats.bytes, 30_000);
        assert_eq!(stats.codec, Some(VideoCodec::H264));
        assert_eq!(stats.unsupported, None);
    }

    #[test]
    fn clips_start_at_the_keyframe_before_the_span() {
        let ring = ClipRing::new(Duration::from_secs(5));
        let caps = caps("avc");
        feed(&ring, &caps, 10_000, 10);
        let clip = ring.clip("cam", 16_500, 18_000).unwrap();
        assert_eq!(clip.start_unix_ms(), 16_000);
        assert_eq!(clip.end_unix_ms(), 18_100);
        assert_eq!((clip.frames(), clip.keyframes()), (21, 3));
        // Before the buffer: from its oldest keyframe.
        let clip = ring.clip("cam", 1_000, 16_000).unwrap();
        assert_eq!(clip.start_unix_ms(), 14_000);
        assert_eq!(clip.frames(), 21);
        assert!(ring.clip("cam", 1_000, 2_000).is_err());
        assert!(ring.clip("cam", 18_000, 17_000).is_err());
    }

    #[test]
    fn a_new_connection_starts_a_segment_at_its_first_keyframe() {
        let ring = ClipRing::new(Duration::from_secs(60));
        let caps = caps("avc");
        feed(&ring, &caps, 10_000, 3);
        ring.restart();
        // The new run starts mid-GOP: those units wait for a keyframe.
        for i in 5..20u64 {
            let t = 20_000 + i * 100;
            ring.push("cam", &caps, unit(i * 100, i % 10 == 0, 1000), t);
        }
        let stats = ring.stats();
        assert_eq!(stats.frames, 30 + 10);
        // A span over both segments is cut from the latest.
        let clip = ring.clip("cam", 11_000, 30_000).unwrap();
        assert_eq!((clip.start_unix_ms(), clip.frames()), (21_000, 10));
        // A span over the first only is cut from it.
        let clip = ring.clip("cam", 11_000, 12_000).unwrap();
        assert_eq!((clip.start_unix_ms(), clip.frames()), (11_000, 11));
    }

    #[test]
    fn the_byte_cap_drops_whole_gops() {
        let ring = ClipRing::with_max_bytes(Duration::from_secs(60), 25_000);
        let caps = caps("byte-stream");
        feed(&ring, &caps, 0, 5);
        let stats = ring.stats();
        assert_eq!((stats.frames, stats.bytes), (20, 20_000));
        assert_eq!(stats.start_unix_ms, Some(3_000));
        // A GOP over the cap is not kept.
        let small = ClipRing::with_max_bytes(Duration::from_secs(60), 5_000);
        feed(&small, &caps, 0, 2);
        assert_eq!(small.stats().frames, 0);
    }

    #[test]
    fn a_byte_stream_clip_from_a_later_keyframe_muxes_and_decodes() {
        gst::init().unwrap();
        // x264 repeats the parameter sets before every keyframe, as the
        // source's parser is told to for byte-stream.
        let encoder = gst::parse::launch(
            "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=10/1 \
             ! x264enc key-int-max=10 bframes=0 speed-preset=ultrafast \
             ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au \
             ! appsink name=sink sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = encoder
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        encoder.set_state(gst::State::Playing).unwrap();
        let ring = ClipRing::new(Duration::from_secs(60));
        let mut first = None;
        while let Ok(sample) = sink.pull_sample() {
            let mut buffer = sample.buffer_owned().unwrap();
            // x264enc starts its timestamps 1000 hours in.
            let pts = buffer.pts().unwrap().mseconds();
            let t = 50_000 + pts - *first.get_or_insert(pts);
            if t == 51_000 {
                // Some cameras send a unit without timestamps; the clip
                // below starts with it.
                let b = buffer.make_mut();
                b.set_pts(gst::ClockTime::NONE);
                b.set_dts(gst::ClockTime::NONE);
            }
            ring.push("cam", &sample.caps_owned().unwrap(), buffer, t);
        }
        encoder.set_state(gst::State::Null).unwrap();
        assert_eq!(ring.stats().keyframes, 3);

        let clip = ring.clip("cam", 51_500, 60_000).unwrap();
        assert_eq!((clip.start_unix_ms(), clip.frames()), (51_000, 20));
        assert!(clip.caps().contains("byte-stream"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let info = clip.write_mp4(&path).unwrap();
        assert_eq!((info.start_unix_ms, info.end_unix_ms), (51_000, 53_000));
        assert_eq!(info.bytes, std::fs::metadata(&path).unwrap().len());

        let decoder = gst::parse::launch(
            "filesrc name=src ! qtdemux ! h264parse ! avdec_h264 ! appsink name=sink sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        decoder
            .by_name("src")
            .unwrap()
            .set_property("location", path.to_string_lossy().as_ref());
        let sink = decoder
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        decoder.set_state(gst::State::Playing).unwrap();
        let pts: Vec<u64> = std::iter::from_fn(|| sink.pull_sample().ok())
            .map(|s| s.buffer().unwrap().pts().unwrap().mseconds())
            .collect();
        decoder.set_state(gst::State::Null).unwrap();
        assert_eq!(pts.len(), 20);
        assert_eq!((pts[0], pts[19]), (0, 1_900));
    }

    #[test]
    fn a_clip_is_written_whole_or_not_at_all() {
        let ring = ClipRing::new(Duration::from_secs(5));
        // Not H.264 inside: the muxer fails, and no file is left behind.
        feed(&ring, &caps("avc"), 0, 1);
        let clip = ring.clip("cam", 0, 1_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mp4");
        let err = clip.write_mp4(&path).unwrap_err().to_string();
        assert!(err.contains("cam") && err.contains("bad.mp4"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn raw_and_nal_aligned_video_are_refused_with_a_reason() {
        gst::init().unwrap();
        let raw = gst::Caps::builder("video/x-raw").build();
        let ring = ClipRing::new(Duration::from_secs(5));
        ring.push("cam", &raw, unit(0, true, 10), 0);
        let stats = ring.stats();
        assert_eq!(stats.frames, 0);
        assert!(stats.unsupported.unwrap().contains("video/x-raw"));
        assert!(ring
            .clip("cam", 0, 100)
            .unwrap_err()
            .contains("video/x-raw"));
        let nal = gst::Caps::builder("video/x-h265")
            .field("alignment", "nal")
            .build();
        assert!(VideoCodec::from_caps(&nal).unwrap_err().contains("nal"));
        assert!(VideoCodec::is_byte_stream(&caps("byte-stream")));
        assert!(!VideoCodec::is_byte_stream(&caps("avc")));
    }
}
