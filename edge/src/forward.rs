//! The forwarder: delivers spooled events to the server, and removes from
//! the spool only what the server acknowledged.
//!
//! Events go as one gzip-compressed JSON array per request to
//! `POST {server}/api/v1/events` with the edge's bearer token. Alarms come
//! first (the spool hands them out ahead of plain reads). The server stores
//! an id once however often it is sent, so a batch sent again after a lost
//! reply does no harm.
//!
//! - 2xx: the batch is acknowledged and removed from the spool.
//! - Network errors, 5xx, 401, 403, 408 and 429: nothing is removed; the
//!   batch is retried after an exponential backoff (0.5 s doubling to 10 s,
//!   with jitter).
//! - Other 4xx (the server refuses the content): the batch is halved until
//!   the refused event is alone; that one is written to `rejected.jsonl`
//!   in the spool directory with the server's reason, counted, and removed,
//!   so one bad event cannot block the ones behind it.
//!
//! Pillar clips wait as `<event id>.mp4` files in the spool's `clips/`
//! folder (written whole, synced, renamed) and go as
//! `PUT {server}/api/v1/events/{id}/clip` (`video/mp4`) once their alarm
//! event is delivered; a file is deleted only on a 2xx. A 404 (the server
//! does not know the event yet) or any failure retries with the same
//! backoff; another 4xx moves the file to `clips/rejected/`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::spool::{Record, Spool};

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Server base URL, `http://host:port`.
    pub server: String,
    pub token: Option<String>,
    /// Most events per request.
    pub batch: usize,
    /// Most uncompressed bytes per request.
    pub max_bytes: usize,
    /// Where refused events are kept for people to look at.
    pub rejected: PathBuf,
    /// Pillar clips waiting for delivery (`<event id>.mp4`).
    pub clips: PathBuf,
    pub timeout: Duration,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct ForwarderStats {
    pub sent_events: AtomicU64,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub rejected: AtomicU64,
    /// 1 while the server cannot be reached.
    pub offline: AtomicU64,
    /// Milliseconds from capture to acknowledgement of the oldest event in
    /// the last delivered batch (event ids carry their capture time).
    pub lag_ms: AtomicU64,
    /// Unix ms of the last acknowledged batch (0: none yet).
    pub last_delivery_ms: AtomicU64,
    /// Clips the server took.
    pub clips_sent: AtomicU64,
}

/// What one delivery attempt came to.
enum Outcome {
    Delivered,
    /// Retry later.
    Retry(String),
    /// The server refused the content (status, body).
    Refused(u16, String),
}

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs until `shutdown`; `wake` is signalled whenever the spool grows.
pub fn run(
    config: ForwarderConfig,
    spool: Arc<Mutex<Spool>>,
    wake: Receiver<()>,
    stats: Arc<ForwarderStats>,
    shutdown: Arc<AtomicBool>,
) {
    let agent = ureq::AgentBuilder::new().timeout(config.timeout).build();
    let url = format!("{}/api/v1/events", config.server.trim_end_matches('/'));
    let mut backoff = BACKOFF_START;
    // Lowered while halving a refused batch.
    let mut limit = config.batch.max(1);
    let mut clips = ClipQueue::new(&config);
    while !shutdown.load(Ordering::SeqCst) {
        clips.deliver(&agent, &config, &stats);
        let records = {
            let spool = spool.lock().expect("spool lock");
            spool.peek(limit, config.max_bytes)
        };
        if records.is_empty() {
            limit = config.batch.max(1);
            match wake.recv_timeout(Duration::from_millis(500)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match send(&agent, &url, config.token.as_deref(), &records) {
            Outcome::Delivered => {
                let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
                if let Err(e) = spool.lock().expect("spool lock").ack(&ids) {
                    tracing::error!("spool: cannot record delivery: {e}");
                }
                stats
                    .sent_events
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let now = crate::events::now_ms();
                if let Some(oldest) = records.iter().filter_map(capture_ms).min() {
                    stats
                        .lag_ms
                        .store(now.saturating_sub(oldest), Ordering::Relaxed);
                }
                stats.last_delivery_ms.store(now, Ordering::Relaxed);
                if stats.offline.swap(0, Ordering::Relaxed) == 1 {
                    tracing::info!("server {} reachable again", config.server);
                }
                backoff = BACKOFF_START;
                if limit < config.batch {
                    limit = (limit * 2).min(config.batch);
                }
            }
            Outcome::Refused(status, body) if records.len() > 1 => {
                tracing::warn!(
                    "server refused a batch of {} ({status}: {body}); splitting it",
                    records.len()
                );
                limit = (records.len() / 2).max(1);
            }
            Outcome::Refused(status, body) => {
                let r = &records[0];
                tracing::error!(
                    "server refused event {} ({status}: {body}); kept in {}",
                    r.id,
                    config.rejected.display()
                );
                if let Err(e) = keep_rejected(&config.rejected, r, status, &body) {
                    tracing::error!("cannot write {}: {e}", config.rejected.display());
                    sleep_unless(&shutdown, backoff);
                    continue;
                }
                if let Err(e) = spool.lock().expect("spool lock").ack(&[r.id]) {
                    tracing::error!("spool: cannot drop a refused event: {e}");
                }
                stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Retry(why) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if stats.offline.swap(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "cannot deliver to {}: {why}; events stay in the spool and are retried",
                        config.server
                    );
                }
                sleep_unless(&shutdown, jitter(backoff));
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn send(agent: &ureq::Agent, url: &str, token: Option<&str>, records: &[Record]) -> Outcome {
    let mut json =
        Vec::with_capacity(records.iter().map(|r| r.payload.len() + 1).sum::<usize>() + 2);
    json.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(&r.payload);
    }
    json.push(b']');
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let body = match gz.write_all(&json).and_then(|()| gz.finish()) {
        Ok(b) => b,
        Err(e) => return Outcome::Retry(format!("compressing: {e}")),
    };
    let mut request = agent
        .post(url)
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip");
    if let Some(t) = token {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    match request.send_bytes(&body) {
        Ok(_) => Outcome::Delivered,
        Err(ureq::Error::Status(code, response)) => {
            let body = response
                .into_string()
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect::<String>();
            match code {
                401 | 403 | 408 | 429 => Outcome::Retry(format!("{code}: {body}")),
                400..=499 => Outcome::Refused(code, body),
                _ => Outcome::Retry(format!("{code}: {body}")),
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// Delivery of the clips in the spool's `clips/` folder, with its own
/// backoff so that a server without clip support does not hold up events.
struct ClipQueue {
    backoff: Duration,
    next_try: std::time::Instant,
}

impl ClipQueue {
    fn new(config: &ForwarderConfig) -> ClipQueue {
        if let Err(e) = std::fs::create_dir_all(&config.clips) {
            tracing::error!("cannot create {}: {e}", config.clips.display());
        }
        ClipQueue {
            backoff: BACKOFF_START,
            next_try: std::time::Instant::now(),
        }
    }

    /// Sends every waiting clip whose alarm is delivered, if it is time.
    fn deliver(&mut self, agent: &ureq::Agent, config: &ForwarderConfig, stats: &ForwarderStats) {
        if std::time::Instant::now() < self.next_try {
            return;
        }
        let Ok(dir) = std::fs::read_dir(&config.clips) else {
            return;
        };
        let mut waiting: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
            .collect();
        waiting.sort();
        for path in waiting {
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let url = format!(
                "{}/api/v1/events/{id}/clip",
                config.server.trim_end_matches('/')
            );
            let body = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("cannot read clip {}: {e}", path.display());
                    continue;
                }
            };
            let mut request = agent.put(&url).set("Content-Type", "video/mp4");
            if let Some(t) = &config.token {
                request = request.set("Authorization", &format!("Bearer {t}"));
            }
            let failure = match request.send_bytes(&body) {
                Ok(_) => {
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::error!("cannot remove delivered clip {}: {e}", path.display());
                    }
                    stats.clips_sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("clip of alarm {id} delivered ({} bytes)", body.len());
                    None
                }
                Err(ureq::Error::Status(code, _))
                    if code != 404
                        && (400..500).contains(&code)
                        && ![401, 403, 408, 429].contains(&code) =>
                {
                    let rejected = config.clips.join("rejected");
                    let _ = std::fs::create_dir_all(&rejected);
                    let _ =
                        std::fs::rename(&path, rejected.join(path.file_name().unwrap_or_default()));
                    tracing::error!(
                        "server refused the clip of alarm {id} ({code}); kept in {}",
                        rejected.display()
                    );
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure {
                tracing::warn!("clip of alarm {id} not delivered yet: {why}");
                self.next_try = std::time::Instant::now() + jitter(self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                return;
            }
        }
        self.backoff = BACKOFF_START;
    }
}

/// The capture time an event's id carries.
fn capture_ms(r: &Record) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: &'a str,
    }
    let id: Id<'_> = serde_json::from_slice(&r.payload).ok()?;
    safecity_core::EventId::parse(id.id)
        .ok()
        .map(|i| i.unix_ms())
}

fn keep_rejected(path: &PathBuf, r: &Record, status: u16, reason: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::json!({
        "status": status,
        "reason": reason,
        "event": String::from_utf8_lossy(&r.payload),
    });
    writeln!(f, "{line}")?;
    f.sync_all()
}

fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    // 75% to 125% of the step.
    d.mul_f64(0.75 + 0.5 * (nanos % 1000) as f64 / 1000.0)
}

fn sleep_unless(shutdown: &AtomicBool, d: Duration) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !shutdown.load(Ordering::SeqCst) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
