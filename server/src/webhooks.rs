//! Alert delivery to webhooks: each alert at or above a hook's
//! `min_priority` is POSTed as JSON (the same object the live stream
//! sends), with retries.
//!
//! Each hook has its own thread and queue, so a slow or failing endpoint
//! delays only its own deliveries and never ingest. A failed attempt (no
//! answer, or a 5xx, 408 or 429 status) is retried after 0.5 s, then
//! 1 s, 2 s and so on up to 30 s between tries, `max_attempts` tries in
//! all; another 4xx is not retried. When a queue holds
//! [`QUEUE`] alerts, further ones are dropped for that hook and
//! counted. Alerts are stored whatever happens here: a receiver can catch
//! up through `GET /api/v1/alerts`.
//!
//! `https://` receivers are checked against the public web's CAs, or
//! against the hook's own `ca` file (a private CA) when it has one.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use safecity_core::Backoff;

use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::model::Priority;

/// Alerts waiting per hook before new ones are dropped.
pub const QUEUE: usize = 10_000;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The running delivery threads.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    hooks: Vec<(Priority, SyncSender<Arc<str>>)>,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Starts one thread per hook; they end when this is dropped.
    pub fn start(config: &[WebhookConfig], metrics: Arc<Metrics>) -> Webhooks {
        let mut hooks = Vec::new();
        for (index, hook) in config.iter().enumerate() {
            let tls = match hook.tls(index) {
                Ok(tls) => tls,
                Err(e) => {
                    // validate() read the same file at start.
                    tracing::error!(url = %hook.url, "webhook not started: {e}");
                    continue;
                }
            };
            let (tx, rx) = sync_channel(QUEUE);
            let (h, m) = (hook.clone(), metrics.clone());
            let spawned = std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || deliver_all(h, tls, rx, m));
            match spawned {
                Ok(_) => hooks.push((hook.min_priority, tx)),
                Err(e) => {
                    tracing::error!(url = %hook.url, error = %e, "cannot start a webhook thread")
                }
            }
        }
        Webhooks { hooks, metrics }
    }

    /// Queues an alert's JSON for every hook that wants its priority.
    pub fn deliver(&self, priority: Priority, json: &str) {
        let body: Arc<str> = Arc::from(json);
        for (min, tx) in &self.hooks {
            if priority < *min {
                continue;
            }
            match tx.try_send(body.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.metrics
                        .webhooks_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!("a webhook queue is full; an alert was not sent to it");
                }
            }
        }
    }
}

fn deliver_all(
    hook: WebhookConfig,
    tls: Option<Arc<safecity_core::tls::ClientConfig>>,
    rx: Receiver<Arc<str>>,
    metrics: Arc<Metrics>,
) {
    let mut agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(hook.timeout_s));
    if let Some(tls) = tls {
        agent = agent.tls_config(tls);
    }
    let agent = agent.build();
    while let Ok(body) = rx.recv() {
        let mut wait = Backoff::new(FIRST_RETRY, MAX_RETRY);
        for attempt in 1..=hook.max_attempts {
            let mut req = agent
                .post(&hook.url)
                .set("Content-Type", "application/json");
            if let Some(secret) = &hook.secret {
                req = req.set(&hook.secret_header, secret);
            }
            let retry = match req.send_string(&body) {
                Ok(_) => {
                    metrics.webhooks_delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(ureq::Error::Status(code, _)) => {
                    tracing::warn!(url = %hook.url, status = code, attempt, "webhook refused an alert");
                    code >= 500 || code == 408 || code == 429
                }
                Err(e) => {
                    tracing::warn!(url = %hook.url, error = %e, attempt, "webhook unreachable");
                    true
                }
            };
            if !retry || attempt == hook.max_attempts {
                metrics.webhooks_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(url = %hook.url, attempts = attempt, "gave up delivering an alert to a webhook");
                break;
            }
            metrics.webhooks_retried.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait.next_delay());
        }
    }
}
