//! Counters served at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use safecity_core::sync::Locked;

use crate::model::{EventClass, PurgeReport};

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
    pub purge_runs: AtomicU64,
    pub purge_failures: AtomicU64,
    /// Events purged, by [`EventClass`] in [`EventClass::ALL`] order.
    purged_events: [AtomicU64; 4],
    pub purged_alerts: AtomicU64,
    pub purged_plates: AtomicU64,
    pub purged_blobs: AtomicU64,
    /// Requests by (method, route template, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.locked();
        *map.entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts what a purge deleted.
    pub fn count_purge(&self, r: &PurgeReport) {
        let events = [r.plate_reads, r.hotlist_hits, r.alarms, r.status];
        for (counter, n) in self.purged_events.iter().zip(events) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        self.purged_alerts.fetch_add(r.alerts, Ordering::Relaxed);
        self.purged_plates.fetch_add(r.plates, Ordering::Relaxed);
        self.purged_blobs.fetch_add(r.blobs, Ordering::Relaxed);
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
            (
                "safecity_purge_runs_total",
                "Retention purges run.",
                &self.purge_runs,
            ),
            (
                "safecity_purge_failures_total",
                "Retention purges that failed.",
                &self.purge_failures,
            ),
            (
                "safecity_purged_alerts_total",
                "Alerts deleted with their expired events.",
                &self.purged_alerts,
            ),
            (
                "safecity_purged_plates_total",
                "Distinct plates deleted when no event named them any more.",
                &self.purged_plates,
            ),
            (
                "safecity_purged_blobs_total",
                "Snapshot and clip files deleted when no event named them any more.",
                &self.purged_blobs,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP safecity_purged_events_total Expired events deleted by the retention purge, by class."
        );
        let _ = writeln!(out, "# TYPE safecity_purged_events_total counter");
        for (class, n) in EventClass::ALL.iter().zip(&self.purged_events) {
            let _ = writeln!(
                out,
                "safecity_purged_events_total{{class=\"{}\"}} {}",
                class.as_str(),
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP safecity_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE safecity_http_requests_total counter");
        let map = self.requests.locked();
        for ((method, route, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "safecity_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}
