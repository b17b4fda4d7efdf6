//! Live video sources for the edge: RTSP cameras and pillars, HTTP streams
//! and video files, decoded (in hardware where there is a decoder for it),
//! sampled to the detection rate, scaled, and handed to a consumer in the
//! decoder's I420 (no full-frame RGB conversion) through a bounded channel.
//!
//! One [`Source`] runs one GStreamer pipeline at a time:
//!
//! ```text
//! rtspsrc | souphttpsrc | filesrc -> decodebin -> [sampling] -> queue
//!   -> videoscale -> videoconvert -> I420 -> appsink -> hand-off -> SyncSender
//! ```
//!
//! - **Latency.** `rtspsrc` buffers 2 s by default; a source asks for
//!   [`SourceConfig::latency_ms`] (200 ms) with `drop-on-latency`, and hands
//!   frames on as they are decoded rather than waiting on the clock.
//! - **Decoders.** Hardware H.264/H.265 decoders (`nvh264dec`, `nvh265dec`,
//!   `vah264dec`, `vah265dec`) are ranked above the software ones when
//!   GStreamer has them, so `decodebin` picks them; otherwise it falls back to
//!   `avdec_h264` and friends. The decoder in use is in [`SourceStats`] and in
//!   [`SourceStatus::Online`].
//! - **Sampling.** Decoded frames are thinned to [`SourceConfig::fps`] on
//!   their timestamps before anything scales or converts them, so dropped
//!   frames cost nothing beyond decoding.
//! - **Hand-off.** Sampled frames wait in a queue of
//!   [`SourceConfig::queue`] frames. A live source never blocks its
//!   streaming thread: when the consumer falls behind, the oldest waiting
//!   frame is dropped and counted, and the gap shows in [`Frame::seq`]. A file
//!   read as fast as possible (`realtime_files: false`) drops nothing: the
//!   consumer sets the pace.
//! - **Capture time.** Every frame carries its capture time in unix
//!   milliseconds, and which [`CaptureClock`] it came from: the sender's NTP
//!   wall clock from RTCP sender reports for RTSP (once the first report has
//!   arrived; `rtspsrc add-reference-timestamp-meta`), the arrival time for
//!   live streams without one (and for senders whose clock is more than
//!   10 s off), and the start time plus the position in the file for files.
//! - **Reconnects.** A live source that fails, ends, or delivers no video for
//!   [`SourceConfig::stall_timeout`] is torn down and started again after
//!   0.5 s, doubling up to 30 s, and back to 0.5 s once a connection has
//!   lasted a minute. The consumer hears [`SourceStatus::Offline`] once when
//!   video is lost and [`SourceStatus::Online`] once when it is back, with
//!   no repeats while retrying. A file that ends (and does not loop) or fails
//!   reports `Offline` with `retrying: false` and the source finishes.
//! - **Clips.** With [`SourceConfig::clip_buffer`] set, the source also
//!   keeps the last seconds of the *encoded* stream (H.264 or H.265, as the
//!   parser hands it to the decoder) in memory, and [`Source::clip`] cuts
//!   the span around a moment from it, to be written as MP4 with
//!   [`EncodedClip::write_mp4`] without re-encoding. See [`clip`] for how
//!   the ring is kept and bounded.
//! - **The newest view.** With [`SourceConfig::keep_latest`] set, the
//!   source keeps a copy of each frame as it hands it on, and
//!   [`Source::latest`] gives the newest: what a pillar shows now, even
//!   while the consumer is behind.

mod backoff;
pub mod clip;
mod location;
mod run;
mod sampler;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use gst::prelude::*;
use gstreamer as gst;
use safecity_core::{Layout, Picture};
use serde::Serialize;

pub use clip::{
    ClipBufferStats, ClipError, ClipInfo, EncodedClip, VideoCodec, CLIP_BUFFER_MAX_BYTES,
};
use location::{redact, Location, COMMON_ELEMENTS, SUPPORTED};
use run::Shared;
use safecity_core::sync::Locked;

/// How RTSP media reach the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    /// Interleaved in the RTSP connection: passes firewalls and NAT, loses
    /// nothing; the default.
    #[default]
    Tcp,
    /// Separate UDP ports: less delay on a clean network, but lost packets
    /// are lost frames.
    Udp,
}

impl FromStr for RtspTransport {
    type Err = String;

    fn from_str(s: &str) -> Result<RtspTransport, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" => Ok(RtspTransport::Tcp),
            "udp" => Ok(RtspTransport::Udp),
            other => Err(format!("unknown RTSP transport {other:?}; use tcp or udp")),
        }
    }
}

impl fmt::Display for RtspTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        })
    }
}

/// What a [`Source`] reads and how it delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The camera's or pillar's id; frames and statuses carry it.
    pub id: String,
    /// `rtsp://`, `rtsps://`, `http://`, `https://`, `file://` or a path.
    pub url: String,
    /// RTSP transport (default TCP).
    pub transport: RtspTransport,
    /// RTSP jitter buffer in milliseconds (default 200; `rtspsrc` would use
    /// 2000). Packets later than this are dropped.
    pub latency_ms: u32,
    /// Frames a second handed on (default 10); `0` hands on every frame.
    pub fps: f64,
    /// Largest frame size handed on, as (width, height): larger video is
    /// scaled down to fit with its aspect kept, smaller video is left alone.
    /// `None` (the default) keeps the stream's size.
    pub max_size: Option<(u32, u32)>,
    /// Frames that may wait for the consumer (default 4).
    pub queue: usize,
    /// Play files at their own speed, like a camera (default true); when
    /// false a file is read as fast as the consumer takes its frames.
    pub realtime_files: bool,
    /// Start files again at their end instead of finishing (default false).
    pub loop_files: bool,
    /// A live source that decodes no frame for this long is reconnected
    /// (default 5 s). It also bounds how long a connection may take.
    pub stall_timeout: Duration,
    /// Use a hardware decoder when one is there (default true).
    pub hardware_decode: bool,
    /// Keep this much of the encoded stream for [`Source::clip`] (default
    /// `None`: nothing is kept). H.264 and H.265 only; memory is bounded by
    /// this length plus one GOP, and by [`CLIP_BUFFER_MAX_BYTES`].
    pub clip_buffer: Option<Duration>,
    /// Keep the newest decoded frame for [`Source::latest`] (default false:
    /// a copy of every frame costs a frame's bytes each time).
    pub keep_latest: bool,
}

impl SourceConfig {
    /// A source with the defaults described at each field.
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> SourceConfig {
        SourceConfig {
            id: id.into(),
            url: url.into(),
            transport: RtspTransport::Tcp,
            latency_ms: 200,
            fps: 10.0,
            max_size: None,
            queue: 4,
            realtime_files: true,
            loop_files: false,
            stall_timeout: Duration::from_secs(5),
            hardware_decode: true,
            clip_buffer: None,
            keep_latest: false,
        }
    }

    /// Checks the settings; the error names the bad one and what to use.
    fn validate(&self) -> Result<Location, SourceError> {
        let config_error = |message: String| SourceError::Config {
            id: self.id.clone(),
            url: redact(&self.url),
            message,
        };
        if self.id.trim().is_empty() {
            return Err(config_error("the source has no id; give it one".into()));
        }
        if !(self.fps.is_finite() && self.fps >= 0.0) {
            return Err(config_error(format!(
                "fps {} is not a rate; use a positive number, or 0 for every frame",
                self.fps
            )));
        }
        if self.queue == 0 {
            return Err(config_error(
                "a queue of 0 frames holds nothing; use 1 or more".into(),
            ));
        }
        if let Some((w, h)) = self.max_size {
            if w < 2 || h < 2 {
                return Err(config_error(format!(
                    "max size {w}x{h} is too small; use at least 2x2, or none for full size"
                )));
            }
        }
        if self.stall_timeout < Duration::from_millis(100) {
            return Err(config_error(format!(
                "stall timeout {:?} is too short; use 100 ms or more",
                self.stall_timeout
            )));
        }
        if let Some(length) = self.clip_buffer {
            if length < Duration::from_secs(1) || length > MAX_CLIP_BUFFER {
                return Err(config_error(format!(
                    "clip buffer {length:?} is out of range; use 1 s to {} s, or none",
                    MAX_CLIP_BUFFER.as_secs()
                )));
            }
        }
        let location = Location::parse(&self.url).map_err(|reason| SourceError::Url {
            id: self.id.clone(),
            url: redact(&self.url),
            reason,
        })?;
        if let Location::File(path) = &location {
            if !path.is_file() {
                return Err(SourceError::NoFile {
                    id: self.id.clone(),
                    path: path.clone(),
                });
            }
        }
        Ok(location)
    }
}

/// Where a frame's capture time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureClock {
    /// The sender's wall clock, from the NTP times in its RTCP sender
    /// reports: when the camera took the frame, as far as its clock is right.
    RtcpNtp,
    /// When the frame arrived here (smoothed by the jitter buffer): later
    /// than the capture by the network and the sender's encoding delay.
    Arrival,
    /// When the file started playing plus the frame's position in it.
    File,
}

impl CaptureClock {
    /// `rtcp-ntp`, `arrival` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureClock::RtcpNtp => "rtcp-ntp",
            CaptureClock::Arrival => "arrival",
            CaptureClock::File => "file",
        }
    }
}

impl fmt::Display for CaptureClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decoded, sampled and scaled frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The source's id.
    pub source: Arc<str>,
    /// Counts the frames this source sampled, from 0, across reconnects;
    /// a gap means frames were dropped because the consumer fell behind.
    pub seq: u64,
    /// Presentation time in milliseconds: for files the position in the
    /// file (plus the loops played before), for live streams the time since
    /// the connection started (it starts again after a reconnect).
    pub pts_ms: u64,
    /// When the frame was captured, in milliseconds since the unix epoch.
    pub capture_unix_ms: u64,
    /// Where `capture_unix_ms` comes from.
    pub clock: CaptureClock,
    pub width: u32,
    pub height: u32,
    /// The pixels, without row padding, as `layout` says: I420 from the
    /// decoder (see [`Frame::picture`]).
    pub data: Vec<u8>,
    pub layout: Layout,
}

impl Frame {
    /// The pixels as the models read them.
    pub fn picture(&self) -> Picture<'_> {
        Picture::new(&self.data, self.width, self.height, self.layout)
    }

    /// The capture time as a [`SystemTime`].
    pub fn capture_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.capture_unix_ms)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("source", &self.source)
            .field("seq", &self.seq)
            .field("pts_ms", &self.pts_ms)
            .field("capture_unix_ms", &self.capture_unix_ms)
            .field("clock", &self.clock)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("data", &format_args!("[{} bytes]", self.data.len()))
            .field("layout", &self.layout)
            .finish()
    }
}

/// A change in whether a source delivers video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SourceStatus {
    /// Frames flow (told before the first frame of each connection that
    /// follows an `Offline`, and before the very first frame).
    Online {
        /// The decoder's element factory, e.g. `avdec_h264` or `nvh264dec`;
        /// `none` for raw video.
        decoder: String,
    },
    /// No frames: told once when a source loses its video (or never gets
    /// any), not again while it keeps retrying.
    Offline {
        /// What went wrong, e.g. `end of file` or the GStreamer error.
        reason: String,
        /// Whether the source keeps trying; false once a file has ended or
        /// failed, after which the source sends nothing more.
        retrying: bool,
    },
}

/// What a source sends its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Frame(Frame),
    Status {
        /// The source's id.
        source: Arc<str>,
        status: SourceStatus,
    },
}

/// A source's counters and state, as [`Source::stats`] reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    pub id: String,
    /// Whether frames flow at the moment.
    pub online: bool,
    /// Whether the source has stopped for good (a file that ended or failed).
    pub finished: bool,
    /// Decoded frames, before sampling.
    pub frames_in: u64,
    /// Frames handed to the consumer.
    pub frames_out: u64,
    /// Sampled frames dropped because the consumer fell behind.
    pub frames_dropped: u64,
    /// Attempts to connect again after a failure.
    pub reconnects: u64,
    /// The decoder in use (or last used), e.g. `avdec_h264`.
    pub decoder: Option<String>,
    /// Whether that decoder is a hardware one.
    pub hardware_decoder: bool,
    /// Where the latest frame's capture time came from.
    pub clock: Option<CaptureClock>,
    /// The latest failure, if any.
    pub last_error: Option<String>,
}

/// Why a source could not start. Each names the source and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {id}: cannot initialise GStreamer: {message}; install the GStreamer runtime (`make setup`)")]
    Init { id: String, message: String },
    #[error("source {id}: cannot read {url:?}: {reason}; {SUPPORTED}")]
    Url {
        id: String,
        url: String,
        reason: String,
    },
    #[error("source {id}: no video file at {path}; check the path, or {SUPPORTED}")]
    NoFile { id: String, path: PathBuf },
    #[error("source {id} ({url}): {message}")]
    Config {
        id: String,
        url: String,
        message: String,
    },
    #[error("source {id} ({url}): the GStreamer element {element} is missing; install {package}")]
    MissingElement {
        id: String,
        url: String,
        element: String,
        package: String,
    },
    #[error("source {id} ({url}): cannot build its pipeline: {message}")]
    Pipeline {
        id: String,
        url: String,
        message: String,
    },
    #[error("source {id}: cannot start a thread: {message}")]
    Thread { id: String, message: String },
}

/// The longest [`SourceConfig::clip_buffer`].
const MAX_CLIP_BUFFER: Duration = Duration::from_secs(3600);

/// Hardware decoders ranked above the software ones when present.
const HARDWARE_DECODERS: [&str; 4] = ["nvh264dec", "nvh265dec", "vah264dec", "vah265dec"];

/// The hardware decoders GStreamer has here, ranked above the software
/// decoders so that `decodebin` picks them. Done once per process.
pub fn hardware_decoders() -> Vec<String> {
    static FOUND: OnceLock<Vec<String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if gst::init().is_err() {
                return Vec::new();
            }
            HARDWARE_DECODERS
                .iter()
                .filter_map(|name| {
                    let factory = gst::ElementFactory::find(name)?;
                    let above_software = gst::Rank::PRIMARY + 16;
                    if factory.rank() < above_software {
                        factory.set_rank(above_software);
                    }
                    Some(name.to_string())
                })
                .collect()
        })
        .clone()
}

/// Fails, saying what to install, unless GStreamer here has the hardware
/// decoder `name` (one of `nvh264dec`, `nvh265dec`, `vah264dec`,
/// `vah265dec`). A GPU build (`--features nvdec`) calls it at start, so
/// that a host missing its decoder is a clear error rather than a quiet
/// fall back to decoding on the CPU.
pub fn require_hardware_decoder(name: &str) -> Result<(), String> {
    let found = hardware_decoders();
    if found.iter().any(|d| d == name) {
        return Ok(());
    }
    let found = if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    };
    Err(format!(
        "GStreamer has no {name} here (found: {found}); this build needs it. Install the GStreamer \
         plugin that provides it (nvcodec in gstreamer1.0-plugins-bad for nvh264dec, with the \
         NVIDIA driver's libnvcuvid; va for vah264dec) and check with `gst-inspect-1.0 {name}`, \
         or build without `--features nvdec`"
    ))
}

/// A running source: its own threads read, decode and hand frames to the
/// channel given to [`Source::start`] until [`Source::stop`] (or drop).
pub struct Source {
    shared: Arc<Shared>,
    config: SourceConfig,
    runner: Option<JoinHandle<()>>,
    forwarder: Option<JoinHandle<()>>,
}

impl Source {
    /// Checks `config` and starts reading. Frames and status changes go to
    /// `tx`; several sources may share one channel (clone the sender). The
    /// first status comes with the first frame (`Online`) or the first
    /// failure (`Offline`). If the receiver is dropped the source stops.
    pub fn start(config: SourceConfig, tx: SyncSender<SourceEvent>) -> Result<Source, SourceError> {
        let location = config.validate()?;
        gst::init().map_err(|e| SourceError::Init {
            id: config.id.clone(),
            message: e.to_string(),
        })?;
        let missing = std::iter::once(location.source_element())
            .chain(COMMON_ELEMENTS)
            .find(|(element, _)| gst::ElementFactory::find(element).is_none());
        if let Some((element, package)) = missing {
            return Err(SourceError::MissingElement {
                id: config.id.clone(),
                url: redact(&config.url),
                element: element.into(),
                package: package.into(),
            });
        }
        if config.hardware_decode {
            hardware_decoders();
        }
        // Build the graph once here, so that a graph GStreamer rejects is an
        // error now rather than an endless round of reconnects.
        let line = location::launch_line(&location, &config);
        if let Err(e) = gst::parse::launch(&line) {
            return Err(SourceError::Pipeline {
                id: config.id.clone(),
                url: redact(&config.url),
                message: e.to_string(),
            });
        }

        let shared = Arc::new(Shared::new(&config));
        let thread_error = |e: std::io::Error| SourceError::Thread {
            id: config.id.clone(),
            message: e.to_string(),
        };
        let forwarder = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("src-out-{}", config.id))
                .spawn(move || run::forward(&shared, &tx))
                .map_err(thread_error)?
        };
        let runner = {
            let (shared, config) = (shared.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("src-{}", config.id))
                .spawn(move || run::run(&shared, &config, &location))
        };
        let runner = match runner {
            Ok(handle) => handle,
            Err(e) => {
                shared.stop.store(true, Ordering::SeqCst);
                shared.ring.close();
                let _ = forwarder.join();
                return Err(thread_error(e));
            }
        };
        Ok(Source {
            shared,
            config,
            runner: Some(runner),
            forwarder: Some(forwarder),
        })
    }

    /// The source's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// Counters and state now.
    pub fn stats(&self) -> SourceStats {
        self.shared.stats()
    }

    /// The buffered encoded video that covers `[from_unix_ms, to_unix_ms]`
    /// (capture times, on the clock of [`Frame::capture_unix_ms`]): from
    /// the keyframe at or before `from_unix_ms` (or the oldest buffered one,
    /// if the span starts before the buffer) to the last frame captured at
    /// or before `to_unix_ms`. A span that reaches past the newest frame
    /// ends at it; ask again later for the rest. Frames reach the buffer
    /// before they are decoded, about [`SourceConfig::latency_ms`] after
    /// capture for RTSP.
    ///
    /// `None`, with the reason logged, when the source keeps no clip buffer,
    /// the stream is not H.264 or H.265, nothing is buffered yet, or the
    /// span lies outside what is buffered. [`Source::clip_buffer`] tells
    /// what is buffered.
    pub fn clip(&self, from_unix_ms: u64, to_unix_ms: u64) -> Option<EncodedClip> {
        let Some(clips) = self.shared.clips.as_ref() else {
            tracing::warn!(source = %self.config.id, "no clip: the source keeps no clip buffer");
            return None;
        };
        match clips.clip(&self.config.id, from_unix_ms, to_unix_ms) {
            Ok(clip) => Some(clip),
            Err(reason) => {
                let reason = self
                    .clip_buffer()
                    .and_then(|s| s.unsupported)
                    .unwrap_or(reason);
                tracing::warn!(source = %self.config.id, %reason, "no clip");
                None
            }
        }
    }

    /// The newest frame handed on, when [`SourceConfig::keep_latest`] is
    /// set; `None` before the first one.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.shared.latest.as_ref()?.locked().clone()
    }

    /// What the clip buffer holds now; `None` when the source keeps none.
    pub fn clip_buffer(&self) -> Option<ClipBufferStats> {
        let mut stats = self.shared.clips.as_ref()?.stats();
        let source = self.shared.stats();
        if stats.codec.is_none() && stats.unsupported.is_none() && source.frames_in > 0 {
            // Frames were decoded, but no H.264 or H.265 parser handed
            // anything on.
            stats.unsupported = Some(match source.decoder {
                Some(d) if !d.contains("264") && !d.contains("265") => {
                    format!("the stream is decoded by {d}, not as H.264 or H.265")
                }
                Some(d) => format!("the stream is decoded by {d} without a parser to tap"),
                None => "the stream is raw video, not H.264 or H.265".into(),
            });
        }
        Some(stats)
    }

    /// Whether the source has stopped for good (a file that ended or failed,
    /// or a consumer that went away).
    pub fn is_finished(&self) -> bool {
        self.runner.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops reading: the pipeline goes to `Null` and the threads are
    /// joined. Frames not yet handed on are dropped.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.ring.close();
        for handle in [self.runner.take(), self.forwarder.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.config.id)
            .field("url", &redact(&self.config.url))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_and_print() {
        assert_eq!("TCP".parse::<RtspTransport>(), Ok(RtspTransport::Tcp));
        assert_eq!("udp".parse::<RtspTransport>(), Ok(RtspTransport::Udp));
        assert!("http"
            .parse::<RtspTransport>()
            .unwrap_err()
            .contains("tcp or udp"));
        assert_eq!(RtspTransport::default().to_string(), "tcp");
        assert_eq!(CaptureClock::RtcpNtp.to_string(), "rtcp-ntp");
        assert_eq!(
            serde_json::to_string(&CaptureClock::RtcpNtp).unwrap(),
            "\"rtcp-ntp\""
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        let start = |c: SourceConfig| Source::start(c, tx.clone()).unwrap_err().to_string();

        let err = start(SourceConfig::new("cam-9", "rtmp://host/live"));
        assert!(
            err.contains("cam-9") && err.contains("rtmp://host/live"),
            "{err}"
        );
        assert!(
            err.contains("use rtsp://, http(s)://, file:// or a path"),
            "{err}"
        );

        let err = start(SourceConfig::new("cam-9", "/no/such/clip.mp4"));
        assert!(err.contains("/no/such/clip.mp4"), "{err}");

        let mut c = SourceConfig::new("cam-9", "rtsp://admin:pw@cam/s");
        c.fps = f64::NAN;
        let err = start(c.clone());
        assert!(err.contains("fps") && !err.contains(":pw@"), "{err}");
        c.fps = 5.0;
        c.queue = 0;
        assert!(start(c.clone()).contains("queue"));
        c.queue = 2;
        c.max_size = Some((0, 10));
        assert!(start(c.clone()).contains("max size"));
        c.max_size = None;
        c.stall_timeout = Duration::ZERO;
        assert!(start(c.clone()).contains("stall timeout"));
        c.stall_timeout = Duration::from_secs(5);
        c.clip_buffer = Some(Duration::from_millis(10));
        assert!(start(c.clone()).contains("clip buffer"));
        c.clip_buffer = Some(Duration::from_secs(12));
        c.id = " ".into();
        assert!(start(c).contains("no id"));
    }
}
