//! Inference across streams: every source hands its frames and status
//! changes to one bounded queue; a pool of workers, each with its own
//! sessions, takes batches of up to `max_batch` frames, waiting at most
//! `max_wait` for a batch to fill, and hands each frame on with its
//! analysis.
//!
//! Each item taken from the queue gets a ticket, in queue order, under the
//! queue's lock. [`InOrder`] puts the workers' output back in ticket order,
//! so that with several workers no frame overtakes an earlier one of its
//! stream and a status change stays between the frames it came between.
//! A batch whose inference fails still hands its frames on (without an
//! analysis), so that no ticket is missing.
//!
//! The queue is the back-pressure: when the workers fall behind, the
//! sources wait on it, and each source's own bounded hand-off drops its
//! oldest frames (counted there).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use safecity_core::sync::Locked;
use safecity_models::Picture;
use safecity_pipeline::source::{Frame, SourceEvent, SourceStatus};

use crate::analyse::{Analyser, FrameAnalysis};

/// What a worker hands on for one item of the queue.
#[derive(Debug)]
pub enum Analysed {
    /// A frame with its analysis; `None` when inference failed on its
    /// batch (counted in [`InferStats::errors`]).
    Frame(Frame, Option<FrameAnalysis>),
    /// A source's status change, passed through in its place.
    Status {
        source: Arc<str>,
        status: SourceStatus,
    },
}

/// An item with its place in the queue's order.
#[derive(Debug)]
pub struct Ticketed {
    pub ticket: u64,
    pub item: Analysed,
}

/// Puts items that come back out of order into ticket order: tickets are
/// consecutive from 0, and an item is released once every earlier one has
/// been.
#[derive(Debug)]
pub struct InOrder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> InOrder<T> {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// Takes item `ticket`; returns the items now released, in order.
    pub fn push(&mut self, ticket: u64, item: T) -> Vec<T> {
        self.waiting.insert(ticket, item);
        let mut out = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next) {
            out.push(item);
            self.next += 1;
        }
        out
    }

    /// Items held back, waiting for an earlier ticket.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
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

/// The sources' queue and the next ticket, taken together.
struct Queue {
    events: Receiver<SourceEvent>,
    next_ticket: u64,
}

/// Starts `analysers.len()` workers reading the sources' `events` and
/// sending each item, ticketed, to `out`. They stop when `shutdown` is set
/// or the sources are gone.
pub fn start_workers(
    analysers: Vec<Analyser>,
    events: Receiver<SourceEvent>,
    out: SyncSender<Ticketed>,
    batch: BatchConfig,
    stats: Arc<InferStats>,
    shutdown: Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let queue = Arc::new(Mutex::new(Queue {
        events,
        next_ticket: 0,
    }));
    analysers
        .into_iter()
        .enumerate()
        .map(|(i, mut analyser)| {
            let queue = queue.clone();
            let out = out.clone();
            let stats = stats.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn(move || {
                    while !shutdown.load(Ordering::SeqCst) {
                        let Some(batch) = take_batch(&queue, batch) else {
                            break;
                        };
                        for item in analyse(&mut analyser, batch, &stats) {
                            if out.send(item).is_err() {
                                return;
                            }
                        }
                    }
                })
                .expect("spawn inference worker")
        })
        .collect()
}

/// Runs the detector on a batch's frames and hands every item on, in the
/// batch's order.
fn analyse(
    analyser: &mut Analyser,
    batch: Vec<(u64, SourceEvent)>,
    stats: &InferStats,
) -> Vec<Ticketed> {
    let pictures: Vec<Picture<'_>> = batch
        .iter()
        .filter_map(|(_, e)| match e {
            SourceEvent::Frame(f) => Some(f.picture()),
            SourceEvent::Status { .. } => None,
        })
        .collect();
    let mut analyses = if pictures.is_empty() {
        Vec::new()
    } else {
        let t0 = Instant::now();
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
                    .fetch_add(pictures.len() as u64, Ordering::Relaxed);
                analyses
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("inference failed on a batch: {e:#}");
                Vec::new()
            }
        }
    }
    .into_iter();
    drop(pictures);
    batch
        .into_iter()
        .map(|(ticket, event)| Ticketed {
            ticket,
            item: match event {
                SourceEvent::Frame(f) => Analysed::Frame(f, analyses.next()),
                SourceEvent::Status { source, status } => Analysed::Status { source, status },
            },
        })
        .collect()
}

/// Up to `max_batch` frames, with the status changes queued among them,
/// each with its ticket: blocks for the first item (up to 200 ms, so
/// shutdown is noticed), then waits at most `max_wait` for more frames.
/// `None` when every source is gone.
fn take_batch(queue: &Mutex<Queue>, cfg: BatchConfig) -> Option<Vec<(u64, SourceEvent)>> {
    let mut queue = queue.locked();
    let first = match queue.events.recv_timeout(Duration::from_millis(200)) {
        Ok(e) => e,
        Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
        Err(RecvTimeoutError::Disconnected) => return None,
    };
    let deadline = Instant::now() + cfg.max_wait;
    let mut batch = Vec::new();
    let mut frames = 0;
    let mut next = Some(first);
    while let Some(event) = next.take() {
        frames += usize::from(matches!(event, SourceEvent::Frame(_)));
        batch.push((queue.next_ticket, event));
        queue.next_ticket += 1;
        if frames >= cfg.max_batch {
            break;
        }
        // Whatever is already queued goes in without waiting.
        next = match queue.events.try_recv() {
            Ok(e) => Some(e),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    None
                } else {
                    queue.events.recv_timeout(left).ok()
                }
            }
        };
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    use safecity_models::Layout;

    fn frame(seq: u64) -> SourceEvent {
        SourceEvent::Frame(Frame {
            source: Arc::from("cam"),
            seq,
            pts_ms: seq,
            capture_unix_ms: seq,
            clock: safecity_pipeline::CaptureClock::Arrival,
            width: 1,
            height: 1,
            data: vec![0; 3],
            layout: Layout::Rgb { stride: 3 },
        })
    }

    fn queue(events: Vec<SourceEvent>) -> (SyncSender<SourceEvent>, Mutex<Queue>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(32);
        for e in events {
            tx.send(e).unwrap();
        }
        (
            tx,
            Mutex::new(Queue {
                events: rx,
                next_ticket: 0,
            }),
        )
    }

    #[test]
    fn batches_fill_up_to_the_limit_and_stop_when_senders_go() {
        let (tx, q) = queue((0..11).map(frame).collect());
        let cfg = BatchConfig {
            max_batch: 4,
            max_wait: Duration::from_millis(5),
        };
        let batches: Vec<Vec<u64>> = (0..3)
            .map(|_| {
                take_batch(&q, cfg)
                    .unwrap()
                    .iter()
                    .map(|(t, _)| *t)
                    .collect()
            })
            .collect();
        assert_eq!(
            batches,
            [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10]]
        );
        // Nothing queued: an empty batch after the poll interval.
        assert_eq!(take_batch(&q, cfg).unwrap().len(), 0);
        drop(tx);
        assert!(take_batch(&q, cfg).is_none());
    }

    #[test]
    fn status_changes_ride_in_batches_without_taking_a_frames_place() {
        let status = || SourceEvent::Status {
            source: Arc::from("cam"),
            status: SourceStatus::Offline {
                reason: "gone".into(),
                retrying: true,
            },
        };
        let (_tx, q) = queue(vec![frame(0), status(), frame(1), status(), frame(2)]);
        let cfg = BatchConfig {
            max_batch: 2,
            max_wait: Duration::from_millis(5),
        };
        let first = take_batch(&q, cfg).unwrap();
        let kinds: Vec<(u64, bool)> = first
            .iter()
            .map(|(t, e)| (*t, matches!(e, SourceEvent::Frame(_))))
            .collect();
        assert_eq!(kinds, [(0, true), (1, false), (2, true)]);
        let second: Vec<u64> = take_batch(&q, cfg)
            .unwrap()
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(second, [3, 4]);
    }

    #[test]
    fn items_come_out_in_ticket_order_whatever_order_they_arrive_in() {
        let mut order = InOrder::default();
        assert!(order.push(2, "c").is_empty());
        assert!(order.push(1, "b").is_empty());
        assert_eq!(order.waiting(), 2);
        assert_eq!(order.push(0, "a"), ["a", "b", "c"]);
        assert_eq!(order.push(3, "d"), ["d"]);
        assert!(order.push(5, "f").is_empty());
        assert_eq!(order.push(4, "e"), ["e", "f"]);
        assert_eq!(order.waiting(), 0);
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
