//! Retention: how long each kind of event is kept, and the purge that
//! applies it.
//!
//! Events fall into four classes, each with its own retention in the
//! `[retention]` table of the configuration:
//!
//! | class | which events | setting |
//! |---|---|---|
//! | plain reads | `plate_read` and `vehicle` events that raised no alert | `plate_reads_days` |
//! | hotlist hits | `plate_read` events that hit a watchlist entry | `hotlist_hits_days` |
//! | alarms | `panic_alarm` events, with their clips | `alarms_days` |
//! | status | `camera_status` events | `status_days` |
//!
//! A class without a setting is kept for ever. An event expires when its
//! capture time `ts` is more than that many days before the purge runs.
//! [`Store::purge`](crate::store::Store::purge) deletes expired events in batches,
//! with the alerts they raised (and those alerts' state changes), the
//! distinct-plate rows no remaining event names, and the snapshot and clip
//! blobs no remaining event names. The audit log is never purged.
//!
//! The server runs the purge every `purge_interval_s` seconds (an hour
//! unless set) while it serves (`safecity_server::run`);
//! `safecity-server purge` runs it once, e.g. from cron. The policy's and
//! the report's types are in `model`.

use std::sync::atomic::Ordering;

use safecity_core::clock::now_ms;

use crate::blobs::BlobStore;
use crate::config::ServerConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::model::{PurgeReport, RetentionPolicy};
use crate::store::Store;

/// Runs one purge of `store` and `blobs` with `policy` as of `now_ms`,
/// logs what it deleted and counts it in `metrics`. Blocks.
pub fn run_purge(
    store: &dyn Store,
    blobs: &BlobStore,
    metrics: &Metrics,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Result<PurgeReport> {
    if policy.keeps_everything() {
        return Ok(PurgeReport::default());
    }
    let started = std::time::Instant::now();
    let outcome = store.purge(now_ms, policy, blobs);
    metrics.purge_runs.fetch_add(1, Ordering::Relaxed);
    match &outcome {
        Ok(report) => {
            metrics.count_purge(report);
            tracing::info!(
                events = report.events(),
                plate_reads = report.plate_reads,
                hotlist_hits = report.hotlist_hits,
                alarms = report.alarms,
                status = report.status,
                alerts = report.alerts,
                plates = report.plates,
                blobs = report.blobs,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "retention purge done"
            );
        }
        Err(e) => {
            metrics.purge_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "retention purge failed; it runs again at the next interval");
        }
    }
    outcome
}

/// Runs the purge once on the store `config` names (SQLite in
/// `config.data_dir` or PostgreSQL), with `config.retention`: what
/// `safecity-server purge` does. Blocks: call it off async threads.
pub fn purge_data_dir(config: &ServerConfig) -> Result<PurgeReport> {
    config.validate()?;
    let store = crate::store::open(config)?;
    let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
    run_purge(
        store.as_ref(),
        &blobs,
        &Metrics::default(),
        &config.retention.policy(),
        now_ms(),
    )
}
