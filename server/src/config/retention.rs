//! The `[retention]` table: days kept per class of event and how often the
//! purge runs.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::RetentionPolicy;

/// Longest retention accepted, in days (about 100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Longest purge interval accepted, in seconds (a week).
pub const MAX_PURGE_INTERVAL_S: u64 = 7 * 24 * 3600;

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

#[cfg(test)]
mod tests {
    use super::*;

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
