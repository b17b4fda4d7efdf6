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
//! [`Store::purge`](crate::Store::purge) deletes expired events in batches,
//! with the alerts they raised (and those alerts' state changes), the
//! distinct-plate rows no remaining event names, and the snapshot and clip
//! blobs no remaining event names. The audit log is never purged.
//!
//! The server runs the purge every `purge_interval_s` seconds (an hour
//! unless set) while it serves; `safecity-server purge` runs it once, e.g.
//! from cron.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;

use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Store;

/// Longest retention accepted, in days (about 100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Longest purge interval accepted, in seconds (a week).
pub const MAX_PURGE_INTERVAL_S: u64 = 7 * 24 * 3600;
/// Most events a backend deletes in one transaction.
pub const PURGE_BATCH: usize = 1_000;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// How long each class of event is kept, in days; `None` keeps it for
/// ever. The classes are those of [`EventClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `plate_read` and `vehicle` events that raised no alert.
    pub plate_reads_days: Option<u32>,
    /// Events that hit a watchlist entry (and raised an alert).
    pub hotlist_hits_days: Option<u32>,
    /// `panic_alarm` events and their clips.
    pub alarms_days: Option<u32>,
    /// `camera_status` events.
    pub status_days: Option<u32>,
}

/// The retention class of an event: plain reads (`plate_read` and
/// `vehicle` events that raised no alert), hotlist hits (events that hit a
/// watchlist entry), alarms (`panic_alarm`) and status (`camera_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    PlainRead,
    HotlistHit,
    Alarm,
    Status,
}

impl EventClass {
    /// Every class, in the order purges report them.
    pub const ALL: [EventClass; 4] = [
        EventClass::PlainRead,
        EventClass::HotlistHit,
        EventClass::Alarm,
        EventClass::Status,
    ];

    /// The class of an event of `kind` (`Event::kind` as text);
    /// `watchlist_hit` tells whether it raised a watchlist alert.
    pub fn of(kind: &str, watchlist_hit: bool) -> EventClass {
        match kind {
            "panic_alarm" => EventClass::Alarm,
            "camera_status" => EventClass::Status,
            _ if watchlist_hit => EventClass::HotlistHit,
            _ => EventClass::PlainRead,
        }
    }

    /// The name used in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::PlainRead => "plate_reads",
            EventClass::HotlistHit => "hotlist_hits",
            EventClass::Alarm => "alarms",
            EventClass::Status => "status",
        }
    }
}

impl RetentionPolicy {
    /// Days kept for `class`; `None` for ever.
    pub fn days(&self, class: EventClass) -> Option<u32> {
        match class {
            EventClass::PlainRead => self.plate_reads_days,
            EventClass::HotlistHit => self.hotlist_hits_days,
            EventClass::Alarm => self.alarms_days,
            EventClass::Status => self.status_days,
        }
    }

    /// Events of `class` with `ts` (milliseconds since 1970) strictly
    /// before the returned time have expired at `now_ms`; `None` when the
    /// class is kept for ever.
    pub fn cutoff_ms(&self, class: EventClass, now_ms: i64) -> Option<i64> {
        self.days(class)
            .map(|d| now_ms.saturating_sub(i64::from(d) * DAY_MS))
    }

    /// Whether every class is kept for ever (a purge does nothing).
    pub fn keeps_everything(&self) -> bool {
        EventClass::ALL.iter().all(|c| self.days(*c).is_none())
    }
}

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Plain reads (`plate_read` and `vehicle` events without an alert).
    pub plate_reads: u64,
    /// Events that hit a watchlist entry.
    pub hotlist_hits: u64,
    /// `panic_alarm` events.
    pub alarms: u64,
    /// `camera_status` events.
    pub status: u64,
    /// Alerts deleted with their events.
    pub alerts: u64,
    /// Distinct plates that no event names any more.
    pub plates: u64,
    /// Snapshot and clip files that no event names any more.
    pub blobs: u64,
}

impl PurgeReport {
    /// Events deleted, of every class.
    pub fn events(&self) -> u64 {
        self.plate_reads + self.hotlist_hits + self.alarms + self.status
    }

    /// Counts one deleted event of `class`.
    pub fn count(&mut self, class: EventClass) {
        *match class {
            EventClass::PlainRead => &mut self.plate_reads,
            EventClass::HotlistHit => &mut self.hotlist_hits,
            EventClass::Alarm => &mut self.alarms,
            EventClass::Status => &mut self.status,
        } += 1;
    }

    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: &PurgeReport) {
        self.plate_reads += other.plate_reads;
        self.hotlist_hits += other.hotlist_hits;
        self.alarms += other.alarms;
        self.status += other.status;
        self.alerts += other.alerts;
        self.plates += other.plates;
        self.blobs += other.blobs;
    }
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events (plate reads {}, hotlist hits {}, alarms {}, status {}), {} alerts, {} plates, {} blobs",
            self.events(),
            self.plate_reads,
            self.hotlist_hits,
            self.alarms,
            self.status,
            self.alerts,
            self.plates,
            self.blobs
        )
    }
}

/// The `[retention]` table of the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days to keep plain reads (`plate_read` and `vehicle` events that
    /// hit no watchlist entry); none keeps them for ever.
    pub plate_reads_days: Option<i64>,
    /// Days to keep events that raised a watchlist alert.
    pub hotlist_hits_days: Option<i64>,
    /// Days to keep `panic_alarm` events and their clips.
    pub alarms_days: Option<i64>,
    /// Days to keep `camera_status` events.
    pub status_days: Option<i64>,
    /// Seconds between purges while the server runs; 0 runs none (run
    /// `safecity-server purge` from cron instead).
    pub purge_interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            plate_reads_days: None,
            hotlist_hits_days: None,
            alarms_days: None,
            status_days: None,
            purge_interval_s: 3600,
        }
    }
}

impl RetentionConfig {
    /// Checks the values, naming the field that is wrong.
    pub fn validate(&self) -> Result<()> {
        for (field, days) in [
            ("plate_reads_days", self.plate_reads_days),
            ("hotlist_hits_days", self.hotlist_hits_days),
            ("alarms_days", self.alarms_days),
            ("status_days", self.status_days),
        ] {
            if let Some(d) = days {
                if !(1..=i64::from(MAX_RETENTION_DAYS)).contains(&d) {
                    return Err(Error::Config(format!(
                        "retention.{field}: {d} is outside 1..={MAX_RETENTION_DAYS} days; leave it out to keep these events for ever"
                    )));
                }
            }
        }
        if self.purge_interval_s > MAX_PURGE_INTERVAL_S {
            return Err(Error::Config(format!(
                "retention.purge_interval_s: {} is over {MAX_PURGE_INTERVAL_S} seconds (a week); use 0 to purge only with `safecity-server purge`",
                self.purge_interval_s
            )));
        }
        Ok(())
    }

    /// The policy these settings give; call [`validate`](Self::validate)
    /// first (values out of range are clamped).
    pub fn policy(&self) -> RetentionPolicy {
        let days = |d: Option<i64>| d.map(|d| d.clamp(1, i64::from(MAX_RETENTION_DAYS)) as u32);
        RetentionPolicy {
            plate_reads_days: days(self.plate_reads_days),
            hotlist_hits_days: days(self.hotlist_hits_days),
            alarms_days: days(self.alarms_days),
            status_days: days(self.status_days),
        }
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

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
pub fn purge_data_dir(config: &crate::ServerConfig) -> Result<PurgeReport> {
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

/// Starts the background purge of a serving server: at once, then every
/// `purge_interval_s` seconds. Does nothing when the interval is 0 or the
/// policy keeps everything. Call inside a Tokio runtime.
pub(crate) fn spawn(state: &crate::AppState, config: &RetentionConfig) {
    let policy = config.policy();
    if config.purge_interval_s == 0 || policy.keeps_everything() {
        return;
    }
    let state = state.clone();
    let period = Duration::from_secs(config.purge_interval_s);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let state = state.clone();
            // Failures are logged and counted; the next tick tries again.
            let _ = tokio::task::spawn_blocking(move || {
                run_purge(
                    &**state.store(),
                    state.blobs(),
                    state.metrics(),
                    &policy,
                    now_ms(),
                )
            })
            .await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_cutoffs() {
        assert_eq!(EventClass::of("plate_read", false), EventClass::PlainRead);
        assert_eq!(EventClass::of("vehicle", false), EventClass::PlainRead);
        assert_eq!(EventClass::of("plate_read", true), EventClass::HotlistHit);
        assert_eq!(EventClass::of("panic_alarm", false), EventClass::Alarm);
        assert_eq!(EventClass::of("camera_status", false), EventClass::Status);
        let policy = RetentionPolicy {
            plate_reads_days: Some(2),
            ..RetentionPolicy::default()
        };
        assert_eq!(
            policy.cutoff_ms(EventClass::PlainRead, 10 * DAY_MS),
            Some(8 * DAY_MS)
        );
        assert_eq!(policy.cutoff_ms(EventClass::Alarm, 10 * DAY_MS), None);
        assert!(!policy.keeps_everything());
        assert!(RetentionPolicy::default().keeps_everything());
    }

    #[test]
    fn bad_settings_are_named() {
        for (text, field) in [
            ("plate_reads_days = 0", "retention.plate_reads_days"),
            ("hotlist_hits_days = -3", "retention.hotlist_hits_days"),
            ("alarms_days = 99999", "retention.alarms_days"),
            ("status_days = 0", "retention.status_days"),
            ("purge_interval_s = 99999999", "retention.purge_interval_s"),
        ] {
            let c: RetentionConfig = toml::from_str(text).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let c: RetentionConfig = toml::from_str("plate_reads_days = 30").unwrap();
        c.validate().unwrap();
        assert_eq!(c.purge_interval_s, 3600);
        assert_eq!(c.policy().plate_reads_days, Some(30));
        assert_eq!(c.policy().alarms_days, None);
        let typo = toml::from_str::<RetentionConfig>("plate_read_days = 3").unwrap_err();
        assert!(typo.to_string().contains("plate_read_days"), "{typo}");
    }
}
