//! Inference across streams: frames from every stream share one bounded
//! queue; a pool of workers, each with its own sessions, takes batches of
//! up to `max_batch` frames, waiting at most `max_wait` for a batch to
//! fill, and passes each analysed frame on in the order it took them.
//!
//! The queue is the back-pressure: when the workers fall behind, a stream's
//! reader blocks on it, and the stream's own bounded hand-off drops its
//! oldest frames (counted there).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use safecity_models::{Layout, Picture};

use crate::analyse::{Analyser, FrameAnalysis};
use safecity_core::sync::Locked;

/// A decoded frame from one of the streams.
#[derive(Debug, Clone)]
pub struct StreamFrame {
    /// Index of the stream in the edge's list.
    pub stream: usize,
    /// Per stream, increasing.
    pub seq: u64,
    /// When the camera captured it.
    pub capture_unix_ms: u64,
    pub width: u32,
    pub height: u32,
    /// The pixels as the source handed them on (I420 from a decoder).
    pub data: Vec<u8>,
    pub layout: Layout,
}

impl StreamFrame {
    pub fn picture(&self) -> Picture<'_> {
        Picture::new(&self.data, self.width, self.height, self.layout)
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct InferStats {
    pub batches: AtomicU64,
    pub frames: AtomicU64,
    pub errors: AtomicU64,
    /// Total microseconds spent in the models.
    pub busy_us: AtomicU64,
    /// Batch latency histogram: counts per bucket of [`LATENCY_BUCKETS`]
    /// (seconds, cumulative as Prometheus wants them when read), the last
    /// slot is +Inf.
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

/// Upper bounds (seconds) of the inference latency histogram.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

impl InferStats {
    /// Counts one batch that took `seconds`.
    pub fn observe(&self, seconds: f64) {
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram in Prometheus text format, as `name`.
    pub fn histogram(&self, name: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.latency_buckets[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.busy_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum:.6}");
        let _ = writeln!(out, "{name}_count {cumulative}");
        out
    }
}

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_batch: usize,
    pub max_wait: Duration,
}

/// Starts `analysers.len()` workers reading `frames` and sending
/// `(frame, analysis)` to `out`. They stop when `shutdown` is set or the
/// frame senders are gone.
pub fn start_workers(
    analysers: Vec<Analyser>,
    frames: Receiver<StreamFrame>,
    out: SyncSender<(StreamFrame, FrameAnalysis)>,
    batch: BatchConfig,
    stats: Arc<InferStats>,
    shutdown: Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let frames = Arc::new(Mutex::new(frames));
    analysers
        .into_iter()
        .enumerate()
        .map(|(i, mut analyser)| {
            let frames = frames.clone();
            let out = out.clone();
            let stats = stats.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn(move || {
                    while !shutdown.load(Ordering::SeqCst) {
                        let Some(batch) = take_batch(&frames, batch) else {
                            break;
                        };
                        if batch.is_empty() {
                            continue;
                        }
                        let t0 = Instant::now();
                        let pictures: Vec<Picture<'_>> =
                            batch.iter().map(StreamFrame::picture).collect();
                        let result = analyser.analyse(&pictures);
                        let took = t0.elapsed();
                        stats
                            .busy_us
                            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                        stats.observe(took.as_secs_f64());
                        match result {
                            Ok(analyses) => {
                                stats.batches.fetch_add(1, Ordering::Relaxed);
                                stats
                                    .frames
                                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                                for pair in batch.into_iter().zip(analyses) {
                                    if out.send(pair).is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                stats.errors.fetch_add(1, Ordering::Relaxed);
                                tracing::error!("inference failed on a batch: {e:#}");
                            }
                        }
                    }
                })
                .expect("spawn inference worker")
        })
        .collect()
}

/// Up to `max_batch` frames: blocks for the first (up to 200 ms, so
/// shutdown is noticed), then waits at most `max_wait` for more. `None`
/// when every sender is gone.
fn take_batch(frames: &Mutex<Receiver<StreamFrame>>, cfg: BatchConfig) -> Option<Vec<StreamFrame>> {
    let rx = frames.locked();
    let first = match rx.recv_timeout(Duration::from_millis(200)) {
        Ok(f) => f,
        Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
        Err(RecvTimeoutError::Disconnected) => return None,
    };
    let deadline = Instant::now() + cfg.max_wait;
    let mut batch = vec![first];
    while batch.len() < cfg.max_batch {
        // Whatever is already queued goes in without waiting.
        match rx.try_recv() {
            Ok(f) => {
                batch.push(f);
                continue;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(f) => batch.push(f),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> StreamFrame {
        StreamFrame {
            stream: 0,
            seq,
            capture_unix_ms: seq,
            width: 1,
            height: 1,
            data: vec![0; 3],
            layout: Layout::Rgb { stride: 3 },
        }
    }

    #[test]
    fn batches_fill_up_to_the_limit_and_stop_when_senders_go() {
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        for i in 0..11 {
            tx.send(frame(i)).unwrap();
        }
        let rx = Mutex::new(rx);
        let cfg = BatchConfig {
            max_batch: 4,
            max_wait: Duration::from_millis(5),
        };
        let sizes: Vec<usize> = (0..3)
            .map(|_| take_batch(&rx, cfg).unwrap().len())
            .collect();
        assert_eq!(sizes, [4, 4, 3]);
        // Nothing queued: an empty batch after the poll interval.
        assert_eq!(take_batch(&rx, cfg).unwrap().len(), 0);
        drop(tx);
        assert!(take_batch(&rx, cfg).is_none());
    }

    #[test]
    fn the_latency_histogram_is_cumulative() {
        let stats = InferStats::default();
        for s in [0.003, 0.02, 0.02, 0.3, 9.0] {
            stats.observe(s);
        }
        let text = stats.histogram("lat");
        assert!(text.contains("lat_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("lat_bucket{le=\"0.025\"} 3\n"), "{text}");
        assert!(text.contains("lat_bucket{le=\"0.5\"} 4\n"), "{text}");
        assert!(text.contains("lat_bucket{le=\"5\"} 4\n"), "{text}");
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 5\n"), "{text}");
        assert!(text.contains("lat_count 5\n"), "{text}");
    }
}
