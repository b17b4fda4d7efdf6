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
//! - 400, 413 or 422 with the server's own error body (`{"error": "..."}`,
//!   the contract's way of refusing content): the batch is halved until
//!   the refused event is alone; that one is written to `rejected.jsonl`
//!   in the spool directory with the server's reason, counted, and removed,
//!   so one bad event cannot block the ones behind it.
//! - Anything else: network errors, 5xx, 401, 403, 404, 408, 429, and a
//!   4xx without the server's error body (a wrong URL path, a proxy's
//!   page): nothing is removed; the batch is retried after an exponential
//!   backoff (0.5 s doubling to 10 s, with jitter). A refusal is never
//!   guessed from a status alone. A request cut off or timed out on the way
//!   (not a refused connection) also halves the next batch, so that a slow
//!   or lossy link carries smaller requests; each success doubles it back.
//!
//! Each request may take the configured timeout plus the time its body
//! needs at [`SLOWEST_LINK`] bytes a second, so a large batch or clip on a
//! rural link is not cut off for being large. And each batch is sized to
//! what the link carried last time: at most [`REQUEST_SECONDS`] of the last
//! delivered batch's bytes a second (never under [`MIN_BATCH_BYTES`]), so
//! an alarm raised during an upload waits for a short request, not a long
//! one.
//!
//! Pillar clips wait as `<event id>.mp4` files in the spool's `clips/`
//! folder (written whole, synced, renamed) and go as
//! `PUT {server}/api/v1/events/{id}/clip` (`video/mp4`) once their alarm
//! event is delivered, from a thread of their own, so that a clip crawling
//! over a slow link never holds up the events (alarms first) behind it, and
//! no clip starts while an alarm waits to go. A file is deleted only on a
//! 2xx. A 404 (the server does not know the event yet) or any failure
//! retries with the same backoff; another 4xx moves the file to
//! `clips/rejected/`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use safecity_core::sync::Locked;
use safecity_core::Backoff;

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
    /// TLS settings trusting the server's CA (`[server] ca`); `None`: the
    /// public web's CAs for `https://`.
    pub tls: Option<Arc<safecity_core::tls::ClientConfig>>,
    /// Where `tls` came from, for messages.
    pub ca_file: Option<PathBuf>,
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
    /// Retry later; `true` when the request was cut off on the way (a
    /// timeout, a reset), so a smaller one may get through.
    Retry(String, bool),
    /// The server refused the content (status, body).
    Refused(u16, String),
}

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The slowest link, in bytes a second, whose transfer time a request is
/// given on top of the configured timeout (16 kbit/s).
pub const SLOWEST_LINK: u64 = 2_000;

/// The time one batch should take on the link as last measured.
pub const REQUEST_SECONDS: u64 = 5;
/// The smallest batch, in uncompressed bytes, however slow the link.
pub const MIN_BATCH_BYTES: usize = 16 * 1024;

/// The bytes of the next batch after `bytes` went in `elapsed`.
fn batch_bytes_for(config: &ForwarderConfig, bytes: usize, elapsed: Duration) -> usize {
    let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-3);
    ((rate * REQUEST_SECONDS as f64) as usize)
        .clamp(MIN_BATCH_BYTES, config.max_bytes.max(MIN_BATCH_BYTES))
}

/// The time a request with a body of `bytes` may take.
fn timeout_for(config: &ForwarderConfig, bytes: usize) -> Duration {
    config.timeout + Duration::from_millis(bytes as u64 * 1000 / SLOWEST_LINK)
}

/// Runs until `shutdown`; `wake` is signalled whenever the spool grows.
pub fn run(
    config: ForwarderConfig,
    spool: Arc<Mutex<Spool>>,
    wake: Receiver<()>,
    stats: Arc<ForwarderStats>,
    shutdown: Arc<AtomicBool>,
) {
    let mut agent = ureq::AgentBuilder::new().timeout(config.timeout);
    if let Some(tls) = &config.tls {
        agent = agent.tls_config(tls.clone());
    }
    let agent = agent.build();
    let clips = {
        let (agent, config, stats, shutdown, spool) = (
            agent.clone(),
            config.clone(),
            stats.clone(),
            shutdown.clone(),
            spool.clone(),
        );
        std::thread::Builder::new()
            .name("clips".into())
            .spawn(move || {
                let mut clips = ClipQueue::new(&config);
                // Alarms waiting to go have the link to themselves.
                let alarms_waiting = || spool.locked().stats().alarm_records > 0;
                while !shutdown.load(Ordering::SeqCst) {
                    clips.deliver(&agent, &config, &stats, &alarms_waiting);
                    sleep_unless(&shutdown, Duration::from_millis(500));
                }
            })
    };
    if let Err(e) = &clips {
        tracing::error!("cannot start the clip delivery thread: {e}; clips wait in the spool");
    }
    let url = format!("{}/api/v1/events", config.server.trim_end_matches('/'));
    let mut backoff = delivery_backoff();
    // Lowered while halving a refused batch or one cut off on the way.
    let mut limit = config.batch.max(1);
    // Sized to the link's last measured rate.
    let mut byte_limit = config.max_bytes;
    while !shutdown.load(Ordering::SeqCst) {
        let records = {
            let spool = spool.locked();
            spool.peek(limit, byte_limit)
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
        let started = std::time::Instant::now();
        match send(&agent, &url, &config, &records) {
            Outcome::Delivered => {
                let bytes = records.iter().map(|r| r.payload.len()).sum();
                byte_limit = batch_bytes_for(&config, bytes, started.elapsed());
                let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
                if let Err(e) = spool.locked().ack(&ids) {
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
                backoff.reset();
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
                    sleep_unless(&shutdown, backoff.current());
                    continue;
                }
                if let Err(e) = spool.locked().ack(&[r.id]) {
                    tracing::error!("spool: cannot drop a refused event: {e}");
                }
                stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Retry(why, cut_off) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if cut_off {
                    limit = (records.len() / 2).max(1);
                    byte_limit = (byte_limit / 2).max(MIN_BATCH_BYTES);
                }
                if stats.offline.swap(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "cannot deliver to {}: {why}; events stay in the spool and are retried",
                        config.server
                    );
                }
                sleep_unless(&shutdown, backoff.next_delay());
            }
        }
    }
    if let Ok(clips) = clips {
        let _ = clips.join();
    }
}

fn send(agent: &ureq::Agent, url: &str, config: &ForwarderConfig, records: &[Record]) -> Outcome {
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
        Err(e) => return Outcome::Retry(format!("compressing: {e}"), false),
    };
    let mut request = agent
        .post(url)
        .timeout(timeout_for(config, body.len()))
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip");
    if let Some(t) = &config.token {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    match request.send_bytes(&body) {
        Ok(_) => Outcome::Delivered,
        Err(ureq::Error::Status(code, response)) => {
            let body = response.into_string().unwrap_or_default();
            outcome_of(code, &body)
        }
        Err(e) => Outcome::Retry(transport_error(&e, config), cut_off(&e)),
    }
}

/// A request that reached the server's address and then failed on the way
/// (timed out, reset, closed early), as opposed to one that never got a
/// connection (refused, no route, no name) or got an answer.
fn cut_off(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Transport(t) => !matches!(
            t.kind(),
            ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::InvalidUrl
        ),
        ureq::Error::Status(..) => false,
    }
}

/// A failure below HTTP, with what to check when it is the server's
/// certificate that is not trusted.
fn transport_error(e: &ureq::Error, config: &ForwarderConfig) -> String {
    let text = e.to_string();
    if !text.contains("invalid peer certificate") {
        return text;
    }
    match &config.ca_file {
        Some(ca) => format!(
            "{text}: the server's certificate is not signed by the CA in server.ca ({}), or \
             does not name the host in server.url; give the CA that signed it",
            ca.display()
        ),
        None => format!(
            "{text}: the server's certificate is not signed by a public CA; give the CA that \
             signed it as server.ca"
        ),
    }
}

/// What an error status with its body means for the batch: a refusal only
/// where the server itself said what is wrong with the content.
fn outcome_of(code: u16, body: &str) -> Outcome {
    let shown: String = body.chars().take(500).collect();
    let servers_own = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match (code, servers_own) {
        (400 | 413 | 422, Some(_)) => Outcome::Refused(code, shown),
        _ => Outcome::Retry(format!("{code}: {shown}"), false),
    }
}

/// Delivery of the clips in the spool's `clips/` folder, on its own thread
/// with its own backoff, so that neither a server without clip support nor
/// a clip crawling over a slow link holds up events.
struct ClipQueue {
    backoff: Backoff,
    next_try: std::time::Instant,
}

impl ClipQueue {
    fn new(config: &ForwarderConfig) -> ClipQueue {
        if let Err(e) = std::fs::create_dir_all(&config.clips) {
            tracing::error!("cannot create {}: {e}", config.clips.display());
        }
        ClipQueue {
            backoff: delivery_backoff(),
            next_try: std::time::Instant::now(),
        }
    }

    /// Sends every waiting clip whose alarm is delivered, if it is time;
    /// no clip starts while `hold()` says alarms wait to go.
    fn deliver(
        &mut self,
        agent: &ureq::Agent,
        config: &ForwarderConfig,
        stats: &ForwarderStats,
        hold: &dyn Fn() -> bool,
    ) {
        if std::time::Instant::now() < self.next_try || hold() {
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
            if hold() {
                return;
            }
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
            let mut request = agent
                .put(&url)
                .timeout(timeout_for(config, body.len()))
                .set("Content-Type", "video/mp4");
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
                self.next_try = std::time::Instant::now() + self.backoff.next_delay();
                return;
            }
        }
        self.backoff.reset();
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

/// Retries of events and clips: 0.5 s doubling to 10 s, with jitter.
fn delivery_backoff() -> Backoff {
    Backoff::new(BACKOFF_START, BACKOFF_MAX).jittered()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Priority, SpoolConfig};
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;

    #[test]
    fn only_the_servers_own_refusal_removes_an_event() {
        let own = r#"{"error":"event 0: plate.text is empty; send the plate's characters"}"#;
        for code in [400, 413, 422] {
            assert!(matches!(outcome_of(code, own), Outcome::Refused(c, _) if c == code));
        }
        let proxy_page = "<html><body><h1>400 Bad Request</h1></body></html>";
        for (code, body) in [
            (404, ""),
            (404, own),
            (400, proxy_page),
            (400, ""),
            (400, r#"{"message":"bad"}"#),
            (405, own),
            (409, own),
            (413, "<html>Request Entity Too Large</html>"),
            (502, proxy_page),
            (503, own),
            (401, own),
            (429, own),
        ] {
            assert!(
                matches!(outcome_of(code, body), Outcome::Retry(..)),
                "{code} {body:?} removed events"
            );
        }
    }

    /// A server on loopback that answers each request with `reply(n)` for
    /// the n-th request, and records the bodies it was sent. A status of 0
    /// closes the connection without an answer, as a link that dropped.
    fn server(
        reply: fn(usize, &[u8]) -> (u16, &'static str),
    ) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut s) = stream else { continue };
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let mut json = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut json)
                    .unwrap();
                let (code, text) = reply(n, &json);
                log.locked().push(json);
                if code == 0 {
                    continue;
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (url, seen)
    }

    /// Runs a forwarder on a spool holding `events` until `done` holds of
    /// the spool or 20 s pass; returns the spool's pending records and the
    /// rejected file's lines.
    fn forward(url: &str, events: &[&str], done: fn(u64, &ForwarderStats) -> bool) -> (u64, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(SpoolConfig {
            dir: dir.path().join("spool"),
            max_bytes: 1 << 20,
            segment_bytes: 64 << 10,
        })
        .unwrap();
        for e in events {
            spool.append(Priority::Normal, e.as_bytes()).unwrap();
        }
        let spool = Arc::new(Mutex::new(spool));
        let stats = Arc::new(ForwarderStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let rejected = dir.path().join("rejected.jsonl");
        let config = ForwarderConfig {
            server: url.to_owned(),
            token: None,
            batch: 8,
            max_bytes: 1 << 20,
            rejected: rejected.clone(),
            clips: dir.path().join("clips"),
            timeout: Duration::from_secs(5),
            tls: None,
            ca_file: None,
        };
        let (_wake, wake_rx) = std::sync::mpsc::channel();
        let thread = {
            let (spool, stats, stop) = (spool.clone(), stats.clone(), stop.clone());
            std::thread::spawn(move || run(config, spool, wake_rx, stats, stop))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let pending = spool.locked().stats().pending_records();
            if done(pending, &stats) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
        let pending = spool.locked().stats().pending_records();
        let lines = std::fs::read_to_string(&rejected).map_or(0, |t| t.lines().count());
        (pending, lines)
    }

    const EVENTS: [&str; 5] = [
        r#"{"id":"a"}"#,
        r#"{"id":"b"}"#,
        r#"{"id":"bad"}"#,
        r#"{"id":"c"}"#,
        r#"{"id":"d"}"#,
    ];

    #[test]
    fn a_wrong_path_or_a_proxy_page_keeps_every_event_in_the_spool() {
        // Four answers of a server that is not ours, then ours.
        let (url, seen) = server(|n, _| match n {
            0 => (404, ""),
            1 => (400, "<html><h1>400 Bad Request</h1></html>"),
            2 => (502, "<html>Bad Gateway</html>"),
            3 => (413, "<html>Request Entity Too Large</html>"),
            _ => (200, r#"{"accepted":5}"#),
        });
        let (pending, rejected) = forward(&url, &EVENTS, |pending, _| pending == 0);
        assert_eq!((pending, rejected), (0, 0), "events lost or set aside");
        let seen = seen.locked();
        assert!(
            seen.len() >= 5,
            "retried after each answer: {} requests",
            seen.len()
        );
        // The last request carried all five, as the first did.
        let last: Vec<serde_json::Value> = serde_json::from_slice(seen.last().unwrap()).unwrap();
        assert_eq!(last.len(), 5);
    }

    #[test]
    fn the_servers_refusal_sets_aside_only_the_refused_event() {
        let (url, _) = server(|_, body| {
            if String::from_utf8_lossy(body).contains("\"bad\"") {
                (
                    400,
                    r#"{"error":"event bad: missing field `kind`; send the kind"}"#,
                )
            } else {
                (200, r#"{"accepted":1}"#)
            }
        });
        let (pending, rejected) = forward(&url, &EVENTS, |pending, stats| {
            pending == 0 && stats.rejected.load(Ordering::Relaxed) > 0
        });
        assert_eq!((pending, rejected), (0, 1));
    }

    /// How many events each request the server saw carried.
    fn batch_sizes(seen: &Mutex<Vec<Vec<u8>>>) -> Vec<usize> {
        let bodies = seen.locked();
        let count = |b: &Vec<u8>| {
            serde_json::from_slice::<Vec<serde_json::Value>>(b)
                .unwrap()
                .len()
        };
        bodies.iter().map(count).collect()
    }

    #[test]
    fn a_batch_cut_off_on_the_way_goes_again_smaller() {
        // A link that drops every request carrying more than two events.
        let (url, seen) = server(|_, body| {
            let n: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
            if n.len() > 2 {
                (0, "")
            } else {
                (200, r#"{"accepted":2}"#)
            }
        });
        let (pending, rejected) = forward(&url, &EVENTS, |pending, _| pending == 0);
        assert_eq!(
            (pending, rejected),
            (0, 0),
            "events left behind or set aside"
        );
        let sizes = batch_sizes(&seen);
        assert_eq!(
            sizes[0], 5,
            "the first try carried the whole batch: {sizes:?}"
        );
        assert!(sizes[1] <= 2, "the next try was halved: {sizes:?}");
    }

    #[test]
    fn after_a_slow_batch_the_next_one_is_smaller() {
        // The first request takes 6 s, over the 5 s a batch should take.
        let (url, seen) = server(|n, _| {
            if n == 0 {
                std::thread::sleep(Duration::from_secs(6));
            }
            (200, r#"{"accepted":1}"#)
        });
        let big: Vec<String> = (0..12)
            .map(|i| format!(r#"{{"id":"e{i}","pad":"{}"}}"#, "x".repeat(4000)))
            .collect();
        let events: Vec<&str> = big.iter().map(String::as_str).collect();
        let (pending, _) = forward(&url, &events, |pending, _| pending == 0);
        assert_eq!(pending, 0);
        let sizes = batch_sizes(&seen);
        // 8 events of 4 kB in 6 s: about 27 kB fit the next 5 s.
        assert_eq!(sizes[0], 8, "{sizes:?}");
        assert!((1..8).contains(&sizes[1]), "{sizes:?}");
        assert!(sizes[1] * 4_000 <= 28_000, "{sizes:?}");
    }
}
