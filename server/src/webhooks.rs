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

use serde::Deserialize;

use crate::alerts::Priority;
use crate::metrics::Metrics;

/// Alerts waiting per hook before new ones are dropped.
pub const QUEUE: usize = 10_000;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// One `[[webhooks]]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST, `https://host:port/path` (or `http://`).
    pub url: String,
    /// PEM file of the CA that signed an `https://` receiver's certificate
    /// (a private CA); without it, the public web's CAs.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// Sent in the `secret_header` header, for the receiver to check.
    #[serde(default)]
    pub secret: Option<String>,
    /// The header that carries `secret`.
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
    /// Alerts below this priority are not sent.
    #[serde(default = "default_min_priority")]
    pub min_priority: Priority,
    /// Tries per alert, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds to wait for an answer.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

fn default_secret_header() -> String {
    "X-Safecity-Secret".into()
}

fn default_min_priority() -> Priority {
    Priority::Low
}

fn default_max_attempts() -> u32 {
    6
}

fn default_timeout_s() -> u64 {
    10
}

impl WebhookConfig {
    /// Checks the values, naming the field.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let at = format!("webhooks[{index}]");
        let rest = ["https://", "http://"]
            .iter()
            .find_map(|scheme| self.url.strip_prefix(scheme))
            .ok_or_else(|| {
                format!(
                    "{at}.url: {:?} must start with https:// (or http://)",
                    self.url
                )
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{at}.url: {:?} has no host", self.url));
        }
        if self.ca.is_some() && !self.url.starts_with("https://") {
            return Err(format!(
                "{at}.ca is given but {at}.url {:?} is not https://",
                self.url
            ));
        }
        self.tls(index)?;
        let header_ok = !self.secret_header.is_empty()
            && self
                .secret_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(format!(
                "{at}.secret_header: {:?} is not a header name (letters, digits, - and _)",
                self.secret_header
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!("{at}.max_attempts: must be from 1 to 100"));
        }
        if !(1..=300).contains(&self.timeout_s) {
            return Err(format!("{at}.timeout_s: must be from 1 to 300"));
        }
        Ok(())
    }

    /// TLS settings trusting the hook's `ca`, when it has one.
    fn tls(&self, index: usize) -> Result<Option<Arc<safecity_core::tls::ClientConfig>>, String> {
        self.ca
            .as_deref()
            .map(|ca| safecity_core::tls::client_trusting(ca, &format!("webhooks[{index}].ca")))
            .transpose()
            .map_err(|e| e.to_string())
    }
}

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
        let mut wait = FIRST_RETRY;
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
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_RETRY);
        }
    }
}
