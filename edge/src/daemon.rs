//! `safecity-edge run --config edge.toml`: the daemon at each site.
//!
//! ```text
//! source threads (one GStreamer pipeline per camera/pillar)
//!   -> one bounded queue of frames and status changes
//!   -> inference workers (batches; every item ticketed in queue order)
//!   -> event thread: back in ticket order, per-stream PassBuilder
//!      -> events -> spool (fsync)
//!   -> forwarder -> server
//! local API: pillar alarms -> spool at alarm priority, forwarder woken
//! ```
//! An event counts as produced once the spool has it on disk; the
//! forwarder removes it only when the server acknowledged it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use clap::Args;
use safecity_core::sync::Locked;
use safecity_core::Event;
use safecity_models::SessionOptions;
use safecity_pipeline::source::{
    Frame, RtspTransport, Source, SourceConfig, SourceEvent, SourceStatus,
};

use crate::analyse::{Analyser, ModelPaths};
use crate::api::{EdgeHandle, Health};
use crate::config::{EdgeConfig, Transport};
use crate::events::{alarm_event, pass_event, status_event};
use crate::forward::{ForwarderConfig, ForwarderStats};
use crate::infer::{start_workers, Analysed, BatchConfig, InOrder, InferStats, Ticketed};
use crate::passes::{PassBuilder, PassConfig};
use crate::spool::{Priority, Spool, SpoolConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The site's edge.toml (see the `config` module docs for its fields).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Counters of one stream.
#[derive(Debug, Default)]
struct StreamStats {
    online: AtomicBool,
    frames: AtomicU64,
    events: AtomicU64,
    /// Tracks that continued a pass already sent (same plate, same
    /// vehicle) and were folded into it instead of becoming a second event.
    folded: AtomicU64,
    status: Mutex<String>,
}

/// One configured stream.
struct StreamInfo {
    id: String,
    pillar: bool,
    stats: StreamStats,
}

/// What the API and the threads share.
struct Shared {
    edge_id: String,
    /// Pillar clip spans (seconds before and after a press), by stream.
    clip_spans: HashMap<usize, (u32, u32)>,
    clips_dir: PathBuf,
    stop: Arc<AtomicBool>,
    streams: Vec<StreamInfo>,
    spool: Arc<Mutex<Spool>>,
    wake: SyncSender<()>,
    infer: Arc<InferStats>,
    forward: Arc<ForwarderStats>,
    sources: Mutex<Vec<Source>>,
    events: [AtomicU64; 4],
    spool_errors: AtomicU64,
    /// Why the last event could not be stored, while the spool fails.
    spool_failing: Mutex<Option<String>>,
    /// A weak handle on this, for the clip threads.
    me: Mutex<std::sync::Weak<Shared>>,
}

impl Shared {
    /// Puts an event in the spool; it is produced once this returns Ok.
    fn produce(&self, event: &Event, priority: Priority) -> anyhow::Result<()> {
        let json = serde_json::to_vec(event)?;
        self.spool.locked().append(priority, &json).map_err(|e| {
            self.spool_errors.fetch_add(1, Ordering::Relaxed);
            *self.spool_failing.locked() = Some(e.to_string());
            anyhow::anyhow!("{e}")
        })?;
        *self.spool_failing.locked() = None;
        let k = event.kind as usize;
        self.events[k.min(3)].fetch_add(1, Ordering::Relaxed);
        let _ = self.wake.try_send(());
        Ok(())
    }
}

impl Shared {
    /// Waits until the span after a press has been recorded, then writes
    /// the pillar's clip where the forwarder picks it up.
    fn cut_clip(self: &Shared, stream: usize, event_id: String, press_ms: u64) {
        let Some(&(before, after)) = self.clip_spans.get(&stream) else {
            return;
        };
        let Some(me) = self.me.locked().upgrade() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name(format!("clip-{event_id}"))
            .spawn(move || {
                let from = press_ms.saturating_sub(u64::from(before) * 1000);
                let to = press_ms + u64::from(after) * 1000;
                // Frames reach the ring shortly after capture.
                let ready = to + 2000;
                while crate::events::now_ms() < ready {
                    if me.stop.load(Ordering::SeqCst) {
                        tracing::warn!("alarm {event_id}: stopped before its clip was recorded");
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                let clip = me
                    .sources
                    .locked()
                    .get(stream)
                    .and_then(|s| s.clip(from, to));
                let Some(clip) = clip else {
                    tracing::error!("alarm {event_id}: no clip could be cut (see above)");
                    return;
                };
                let path = me.clips_dir.join(format!("{event_id}.mp4"));
                match clip.write_mp4(&path) {
                    Ok(info) => {
                        tracing::info!(
                            "alarm {event_id}: clip of {} frames, {:.1} s, {} bytes",
                            info.frames,
                            (info.end_unix_ms - info.start_unix_ms) as f64 / 1e3,
                            info.bytes
                        );
                        let _ = me.wake.try_send(());
                    }
                    Err(e) => tracing::error!("alarm {event_id}: {e}"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!("alarm {}: cannot start its clip: {e}", stream);
        }
    }
}

fn clips_dir(config: &EdgeConfig) -> PathBuf {
    config.spool.dir.join("clips")
}

impl EdgeHandle for Shared {
    fn alarm(
        &self,
        pillar_id: &str,
        unix_ms: u64,
        source: &str,
    ) -> Result<String, (StatusCode, String)> {
        let Some(index) = self
            .streams
            .iter()
            .position(|s| s.pillar && s.id == pillar_id)
        else {
            let known: Vec<&str> = self
                .streams
                .iter()
                .filter(|s| s.pillar)
                .map(|s| s.id.as_str())
                .collect();
            return Err((
                StatusCode::NOT_FOUND,
                format!("no pillar {pillar_id:?} at this edge; known: {known:?}"),
            ));
        };
        // The pillar's source keeps its newest frame as it hands it on, so
        // that a press right after the pillar comes online, or while the
        // detector is behind, still has the pillar's view.
        let latest = self.sources.locked().get(index).and_then(Source::latest);
        let snapshot = latest.and_then(|f| frame_jpeg(&f));
        let event = alarm_event(
            &self.edge_id,
            pillar_id,
            unix_ms,
            source,
            snapshot.as_deref(),
        );
        self.produce(&event, Priority::Alarm).map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the alarm could not be stored: {e}"),
            )
        })?;
        tracing::warn!(pillar = pillar_id, id = %event.id, "panic alarm");
        self.cut_clip(index, event.id.clone(), unix_ms);
        Ok(event.id)
    }

    fn health(&self) -> Health {
        let mut health = Health::default();
        if let Some(why) = &*self.spool_failing.locked() {
            health
                .down
                .push(format!("events cannot be stored in the spool: {why}"));
        }
        let spool = self.spool.locked().stats();
        if self.forward.offline.load(Ordering::Relaxed) == 1 {
            health.degraded.push(format!(
                "the server cannot be reached; {} events wait in the spool",
                spool.pending_records()
            ));
        }
        if spool.dropped > 0 {
            health.degraded.push(format!(
                "{} unsent plain reads were dropped to make room (spool cap or full disk)",
                spool.dropped
            ));
        }
        for s in &self.streams {
            if !s.stats.online.load(Ordering::Relaxed) {
                health.degraded.push(format!("stream {} is offline", s.id));
            }
        }
        health
    }

    fn status(&self) -> serde_json::Value {
        let sources = self.sources.locked();
        let streams: Vec<serde_json::Value> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let src = sources
                    .get(i)
                    .and_then(|src| serde_json::to_value(src.stats()).ok());
                serde_json::json!({
                    "id": s.id,
                    "kind": if s.pillar { "pillar" } else { "camera" },
                    "online": s.stats.online.load(Ordering::Relaxed),
                    "status": *s.stats.status.locked(),
                    "frames_analysed": s.stats.frames.load(Ordering::Relaxed),
                    "events": s.stats.events.load(Ordering::Relaxed),
                    "passes_folded": s.stats.folded.load(Ordering::Relaxed),
                    "source": src,
                })
            })
            .collect();
        let spool = self.spool.locked().stats();
        serde_json::json!({
            "edge_id": self.edge_id,
            "streams": streams,
            "spool": {
                "pending_events": spool.pending_records(),
                "pending_alarms": spool.alarm_records,
                "pending_bytes": spool.pending_bytes(),
                "dropped": spool.dropped,
                "disk_bytes": spool.disk_bytes,
            },
            "forwarder": {
                "sent_events": self.forward.sent_events.load(Ordering::Relaxed),
                "failures": self.forward.failures.load(Ordering::Relaxed),
                "rejected": self.forward.rejected.load(Ordering::Relaxed),
                "offline": self.forward.offline.load(Ordering::Relaxed) == 1,
            },
        })
    }

    fn metrics(&self) -> String {
        use std::fmt::Write;
        let mut m = String::new();
        let mut put = |name: &str, labels: &str, value: f64| {
            let _ = if labels.is_empty() {
                writeln!(m, "safecity_edge_{name} {value}")
            } else {
                writeln!(m, "safecity_edge_{name}{{{labels}}} {value}")
            };
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let sources = self.sources.locked();
        for (i, s) in self.streams.iter().enumerate() {
            let l = format!("stream=\"{}\"", s.id);
            let online = s.stats.online.load(Ordering::Relaxed);
            put("stream_online", &l, f64::from(u8::from(online)));
            put("frames_analysed_total", &l, load(&s.stats.frames));
            put("stream_events_total", &l, load(&s.stats.events));
            put("passes_folded_total", &l, load(&s.stats.folded));
            if let Some(src) = sources.get(i) {
                let st = src.stats();
                put("frames_decoded_total", &l, st.frames_in as f64);
                put("frames_sampled_total", &l, st.frames_out as f64);
                put("frames_dropped_total", &l, st.frames_dropped as f64);
                put("reconnects_total", &l, st.reconnects as f64);
            }
        }
        for (k, name) in ["plate_read", "vehicle", "panic_alarm", "camera_status"]
            .iter()
            .enumerate()
        {
            put(
                "events_total",
                &format!("kind=\"{name}\""),
                load(&self.events[k]),
            );
        }
        let i = &self.infer;
        put("inference_batches_total", "", load(&i.batches));
        put("inference_frames_total", "", load(&i.frames));
        put("inference_errors_total", "", load(&i.errors));
        let f = &self.forward;
        put("forwarded_events_total", "", load(&f.sent_events));
        put("forward_failures_total", "", load(&f.failures));
        put("forward_rejected_total", "", load(&f.rejected));
        put("clips_delivered_total", "", load(&f.clips_sent));
        put("server_offline", "", load(&f.offline));
        put("forward_lag_seconds", "", load(&f.lag_ms) / 1e3);
        let last = f.last_delivery_ms.load(Ordering::Relaxed);
        if last > 0 {
            let since = crate::events::now_ms().saturating_sub(last);
            put("seconds_since_delivery", "", since as f64 / 1e3);
        }
        let sp = self.spool.locked().stats();
        put("spool_pending_events", "", sp.pending_records() as f64);
        put("spool_pending_alarms", "", sp.alarm_records as f64);
        put("spool_pending_bytes", "", sp.pending_bytes() as f64);
        put("spool_dropped_total", "", sp.dropped as f64);
        put("spool_errors_total", "", load(&self.spool_errors));
        put("health", "", f64::from(self.health().level()));
        m.push_str(&i.histogram("safecity_edge_inference_batch_seconds"));
        m
    }
}

/// A pillar frame as a JPEG at most 640 wide.
fn frame_jpeg(f: &Frame) -> Option<Vec<u8>> {
    let img = image::RgbImage::from_raw(f.width, f.height, f.picture().to_rgb())?;
    let img = if f.width > 640 {
        let h = (f.height as u64 * 640 / f.width as u64).max(1) as u32;
        image::imageops::resize(&img, 640, h, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .ok()?;
    Some(out.into_inner())
}

/// Runs the daemon until `shutdown`.
pub fn run(args: RunArgs, shutdown: &AtomicBool) -> anyhow::Result<()> {
    let config = EdgeConfig::load(&args.config)?;
    #[cfg(feature = "nvdec")]
    safecity_pipeline::source::require_hardware_decoder("nvh264dec").map_err(anyhow::Error::msg)?;
    let stop = Arc::new(AtomicBool::new(false));

    let spool = Spool::open(SpoolConfig {
        dir: config.spool.dir.clone(),
        max_bytes: config.spool.max_mb * 1024 * 1024,
        segment_bytes: 8 * 1024 * 1024,
    })
    .with_context(|| format!("spool {}", config.spool.dir.display()))?;
    let spool = Arc::new(Mutex::new(spool));

    let options = SessionOptions {
        intra_threads: config.models.threads,
        provider: config.provider(),
    };
    let paths = ModelPaths {
        detector: config.models.detector.clone(),
        plate_reader: config.models.plate_reader.clone(),
        colour: config.models.colour.clone(),
    };
    let analysers = (0..config.models.workers)
        .map(|_| {
            let mut a = Analyser::open(&paths, &options)?;
            if let Some(views) = config.models.plate_views {
                a.reader_mut().set_views(views);
            }
            Ok(a)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let (wake_tx, wake_rx) = sync_channel::<()>(1);
    let forward_stats = Arc::new(ForwarderStats::default());
    let clip_spans = config
        .streams()
        .enumerate()
        .filter_map(|(i, (s, pillar))| {
            let p = config
                .pillars
                .iter()
                .find(|p| pillar && p.stream.id == s.id)?;
            Some((i, (p.clip_before_s, p.clip_after_s)))
        })
        .collect();
    let shared = Arc::new(Shared {
        edge_id: config.edge_id.clone(),
        clip_spans,
        clips_dir: clips_dir(&config),
        stop: stop.clone(),
        me: Mutex::new(std::sync::Weak::new()),
        streams: config
            .streams()
            .map(|(s, pillar)| StreamInfo {
                id: s.id.clone(),
                pillar,
                stats: StreamStats::default(),
            })
            .collect(),
        spool: spool.clone(),
        wake: wake_tx,
        infer: Arc::new(InferStats::default()),
        forward: forward_stats.clone(),
        sources: Mutex::new(Vec::new()),
        events: Default::default(),
        spool_errors: AtomicU64::new(0),
        spool_failing: Mutex::new(None),
    });
    *shared.me.locked() = Arc::downgrade(&shared);

    let forwarder = {
        let tls = match &config.server.ca {
            Some(ca) => Some(safecity_core::tls::client_trusting(ca, "server.ca")?),
            None => None,
        };
        let cfg = ForwarderConfig {
            server: config.server.url.clone(),
            token: config.token(),
            batch: config.server.batch,
            max_bytes: 4 * 1024 * 1024,
            rejected: config.spool.dir.join("rejected.jsonl"),
            clips: clips_dir(&config),
            // A handshake and an answer over a link with a round trip of
            // seconds and lost packets; the body's own time comes on top.
            timeout: Duration::from_secs(30),
            tls,
            ca_file: config.server.ca.clone(),
        };
        let (spool, stats, stop) = (spool.clone(), forward_stats.clone(), stop.clone());
        std::thread::Builder::new()
            .name("forwarder".into())
            .spawn(move || crate::forward::run(cfg, spool, wake_rx, stats, stop))?
    };

    let (api_addr, api) = crate::api::serve(config.api_addr(), shared.clone(), stop.clone())?;
    tracing::info!("edge {} API on http://{api_addr}", config.edge_id);

    // Frames and status changes from every stream into the workers, results
    // to the event thread.
    let workers_n = analysers.len();
    let (source_tx, source_rx) = sync_channel::<SourceEvent>(config.batching.max_batch * workers_n);
    let (result_tx, result_rx) = sync_channel::<Ticketed>(64);
    let workers = start_workers(
        analysers,
        source_rx,
        result_tx,
        BatchConfig {
            max_batch: config.batching.max_batch,
            max_wait: Duration::from_millis(config.batching.max_wait_ms),
        },
        shared.infer.clone(),
        stop.clone(),
    );
    let events = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || event_loop(&shared, result_rx))?
    };

    for (stream, pillar) in config.streams() {
        let mut source_config = SourceConfig::new(stream.id.clone(), stream.url.clone());
        source_config.transport = match stream.transport {
            Transport::Tcp => RtspTransport::Tcp,
            Transport::Udp => RtspTransport::Udp,
        };
        source_config.latency_ms = stream.latency_ms;
        source_config.fps = stream.fps;
        source_config.max_size = stream.max_width.map(|w| (w, w));
        source_config.queue = config.batching.queue;
        source_config.realtime_files = stream.realtime;
        source_config.loop_files = stream.realtime;
        source_config.keep_latest = pillar;
        if let Some(p) = config.pillars.iter().find(|p| p.stream.id == stream.id) {
            // The ring keeps the span before a press, and a margin for the
            // time the clip waits after it.
            source_config.clip_buffer = Some(Duration::from_secs(
                u64::from(p.clip_before_s + p.clip_after_s) + 10,
            ));
        }
        let source = Source::start(source_config, source_tx.clone())
            .with_context(|| format!("stream {}", stream.id))?;
        shared.sources.locked().push(source);
    }
    drop(source_tx);
    tracing::info!(
        "edge {}: {} streams, {} inference workers, delivering to {}",
        config.edge_id,
        shared.streams.len(),
        workers_n,
        config.server.url
    );

    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("shutting down");
    for s in shared.sources.locked().drain(..) {
        s.stop();
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    let _ = events.join();
    let _ = forwarder.join();
    let _ = api.join();
    let pending = spool.locked().stats().pending_records();
    tracing::info!("stopped; {pending} events wait in the spool for the next start");
    Ok(())
}

/// Tracks every stream and turns passes and status changes into events,
/// taking the workers' output back in queue order.
fn event_loop(shared: &Shared, results: Receiver<Ticketed>) {
    let mut builders: Vec<PassBuilder> = shared
        .streams
        .iter()
        .map(|_| PassBuilder::new(PassConfig::default()))
        .collect();
    let index: HashMap<&str, usize> = shared
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut in_order = InOrder::default();
    let emit = |stream: usize, passes: Vec<crate::passes::Pass>| {
        let info = &shared.streams[stream];
        for p in passes {
            let event = pass_event(&shared.edge_id, &info.id, &p, p.ts_ms);
            match shared.produce(&event, Priority::Normal) {
                Ok(()) => {
                    info.stats.events.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::error!("stream {}: event lost before the spool: {e}", info.id),
            }
        }
    };
    loop {
        let ticketed = match results.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for item in in_order.push(ticketed.ticket, ticketed.item) {
            match item {
                Analysed::Frame(frame, analysis) => {
                    let Some(&s) = index.get(&*frame.source) else {
                        continue;
                    };
                    let Some(analysis) = analysis else {
                        // Inference failed on its batch (counted there).
                        continue;
                    };
                    let info = &shared.streams[s];
                    info.stats.frames.fetch_add(1, Ordering::Relaxed);
                    let passes = builders[s].update(
                        frame.seq,
                        frame.capture_unix_ms,
                        &frame.picture(),
                        &analysis,
                    );
                    info.stats
                        .folded
                        .store(builders[s].folded(), Ordering::Relaxed);
                    emit(s, passes);
                }
                Analysed::Status { source, status } => {
                    let Some(&s) = index.get(&*source) else {
                        continue;
                    };
                    let info = &shared.streams[s];
                    let (online, message) = match &status {
                        SourceStatus::Online { decoder } => {
                            (true, format!("decoding with {decoder}"))
                        }
                        SourceStatus::Offline { reason, .. } => (false, reason.clone()),
                    };
                    info.stats.online.store(online, Ordering::Relaxed);
                    *info.stats.status.locked() = message.clone();
                    if !online {
                        // The stream is gone: its vehicles' passes end now.
                        emit(s, builders[s].finish());
                    }
                    let event = status_event(&shared.edge_id, &info.id, online, &message);
                    if let Err(e) = shared.produce(&event, Priority::Normal) {
                        tracing::error!("stream {}: status event lost: {e}", info.id);
                    }
                }
            }
        }
    }
    for (s, b) in builders.iter_mut().enumerate() {
        emit(s, b.finish());
    }
}
