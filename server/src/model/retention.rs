//! How long each class of event is kept, and what a purge deleted.

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
}
