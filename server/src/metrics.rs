//! Counters served at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_ingested: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub ingest_batches: AtomicU64,
    pub clips_stored: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub webhooks_delivered: AtomicU64,
    pub webhooks_retried: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub webhooks_dropped: AtomicU64,
    /// Requests by (method, route template, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "safecity_events_ingested_total",
                "Events stored by ingest.",
                &self.events_ingested,
            ),
            (
                "safecity_events_duplicate_total",
                "Events sent again whose id was already stored.",
                &self.events_duplicate,
            ),
            (
                "safecity_ingest_batches_total",
                "Event batches committed.",
                &self.ingest_batches,
            ),
            (
                "safecity_clips_stored_total",
                "Clips uploaded and linked to their event.",
                &self.clips_stored,
            ),
            (
                "safecity_alerts_raised_total",
                "Alerts raised by watchlist hits and pillar alarms.",
                &self.alerts_raised,
            ),
            (
                "safecity_webhooks_delivered_total",
                "Alerts a webhook accepted.",
                &self.webhooks_delivered,
            ),
            (
                "safecity_webhooks_retried_total",
                "Webhook attempts that failed and were tried again.",
                &self.webhooks_retried,
            ),
            (
                "safecity_webhooks_failed_total",
                "Alerts a webhook did not accept after every try.",
                &self.webhooks_failed,
            ),
            (
                "safecity_webhooks_dropped_total",
                "Alerts not queued for a webhook because its queue was full.",
                &self.webhooks_dropped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP safecity_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE safecity_http_requests_total counter");
        let map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((method, route, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "safecity_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}
