//! Watchlists (hotlists) and the alerts they raise.
//!
//! A [`WatchEntry`] names a plate exactly, by a `?`/`*` pattern, or
//! fuzzily (weighted look-alike edit distance up to 2). Ingest matches every
//! new `plate_read` against the active entries with a [`Matcher`]; each hit
//! becomes an [`Alert`] stored in the same transaction as the event, so an
//! acknowledged batch never loses its alerts. A `panic_alarm` event is an
//! alert of its own, always [`Priority::Critical`].
//!
//! An alert's [`AlertState`] moves `new` → `acknowledged` → `closed`
//! (closing a new alert directly is allowed); nothing else.

use std::collections::HashMap;

use safecity_core::{plate_distance, PlatePattern};
use serde::{Deserialize, Serialize};

use crate::blobs::BlobHash;

/// How urgent an entry's hits are, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How an entry's `pattern` is compared with a plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchMode {
    /// The canonical plate, exactly.
    Exact,
    /// `?` one character, `*` any run.
    Wildcard,
    /// Within `max_distance` of the plate (look-alike swaps cost 0.5).
    Fuzzy,
}

impl WatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchMode::Exact => "exact",
            WatchMode::Wildcard => "wildcard",
            WatchMode::Fuzzy => "fuzzy",
        }
    }

    pub fn parse(s: &str) -> Option<WatchMode> {
        [WatchMode::Exact, WatchMode::Wildcard, WatchMode::Fuzzy]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A watchlist entry to add, already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWatch {
    /// A canonical plate (exact, fuzzy) or a normalised pattern (wildcard).
    pub pattern: String,
    pub mode: WatchMode,
    /// Only for [`WatchMode::Fuzzy`].
    pub max_distance: Option<f32>,
    pub reason: String,
    pub priority: Priority,
    /// Milliseconds since 1970; the entry stops matching then.
    pub expires_ms: Option<i64>,
    pub created_ms: i64,
    /// The token's name.
    pub created_by: String,
}

/// A stored watchlist entry.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEntry {
    pub id: i64,
    pub entry: NewWatch,
    /// When and by whom it was removed; removed entries are kept for the
    /// alerts that name them.
    pub removed_ms: Option<i64>,
    pub removed_by: Option<String>,
}

impl WatchEntry {
    /// Whether the entry matches plates read at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.removed_ms.is_none() && self.entry.expires_ms.is_none_or(|e| e > now_ms)
    }
}

/// Matches plates against the active watchlist entries.
#[derive(Debug, Default)]
pub struct Matcher {
    entries: Vec<WatchEntry>,
    /// Canonical plate → indexes of exact entries.
    exact: HashMap<String, Vec<usize>>,
    /// Wildcard entries with their parsed patterns.
    wildcard: Vec<(usize, PlatePattern)>,
    fuzzy: Vec<usize>,
}

impl Matcher {
    /// A matcher over the entries that are not removed (expiry is checked
    /// at each match).
    pub fn new(entries: Vec<WatchEntry>) -> Matcher {
        let mut m = Matcher::default();
        for entry in entries.into_iter().filter(|e| e.removed_ms.is_none()) {
            let i = m.entries.len();
            match entry.entry.mode {
                WatchMode::Exact => m
                    .exact
                    .entry(entry.entry.pattern.clone())
                    .or_default()
                    .push(i),
                WatchMode::Wildcard => match PlatePattern::parse(&entry.entry.pattern) {
                    Ok(p) => m.wildcard.push((i, p)),
                    Err(e) => {
                        tracing::error!(id = entry.id, error = %e, "watchlist entry has a bad pattern; it is ignored");
                        continue;
                    }
                },
                WatchMode::Fuzzy => m.fuzzy.push(i),
            }
            m.entries.push(entry);
        }
        m
    }

    /// The entries active at `now_ms` that `plate` (canonical) matches,
    /// with the fuzzy distance where the entry is fuzzy.
    pub fn matches(&self, plate: &str, now_ms: i64) -> Vec<(&WatchEntry, Option<f32>)> {
        let mut out: Vec<(&WatchEntry, Option<f32>)> = Vec::new();
        for &i in self.exact.get(plate).into_iter().flatten() {
            out.push((&self.entries[i], None));
        }
        for (i, pattern) in &self.wildcard {
            if pattern.matches(plate) {
                out.push((&self.entries[*i], None));
            }
        }
        for &i in &self.fuzzy {
            let e = &self.entries[i];
            let max = e.entry.max_distance.unwrap_or(1.0);
            // Each inserted or deleted character costs 1.
            if (e.entry.pattern.len() as f32 - plate.len() as f32).abs() > max {
                continue;
            }
            let d = plate_distance(&e.entry.pattern, plate);
            if d <= max {
                out.push((e, Some(d)));
            }
        }
        out.retain(|(e, _)| e.is_active(now_ms));
        out.sort_by_key(|(e, _)| e.id);
        out
    }

    /// How many entries the matcher holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the matcher holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A plate read matched a watchlist entry.
    Watchlist,
    /// A citizen pressed a pillar's button.
    PanicAlarm,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Watchlist => "watchlist",
            AlertKind::PanicAlarm => "panic_alarm",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        [AlertKind::Watchlist, AlertKind::PanicAlarm]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The kind of event behind such an alert.
    pub fn event_kind(self) -> &'static str {
        match self {
            AlertKind::Watchlist => "plate_read",
            AlertKind::PanicAlarm => "panic_alarm",
        }
    }
}

/// Where an alert is in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    New,
    Acknowledged,
    Closed,
}

impl AlertState {
    pub const ALL: [AlertState; 3] = [
        AlertState::New,
        AlertState::Acknowledged,
        AlertState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::New => "new",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether an alert in this state may move to `to`.
    pub fn may_become(self, to: AlertState) -> bool {
        matches!(
            (self, to),
            (AlertState::New, AlertState::Acknowledged)
                | (AlertState::New, AlertState::Closed)
                | (AlertState::Acknowledged, AlertState::Closed)
        )
    }
}

/// The watchlist entry an alert came from, as the alert shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRef {
    pub id: i64,
    pub pattern: String,
    pub mode: WatchMode,
    pub reason: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Increases with every alert; the server-sent event id.
    pub id: i64,
    pub kind: AlertKind,
    pub state: AlertState,
    pub priority: Priority,
    pub event_id: String,
    pub camera_id: String,
    /// The canonical plate, for watchlist hits.
    pub plate: Option<String>,
    /// The event's capture time, milliseconds since 1970.
    pub ts_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub watch: Option<WatchRef>,
    /// Distance to the entry's plate, for fuzzy entries.
    pub distance: Option<f32>,
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
}

/// One change of an alert's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChange {
    pub at_ms: i64,
    /// The token's name and role.
    pub who: String,
    pub role: String,
    pub from: AlertState,
    pub to: AlertState,
    pub note: Option<String>,
}

/// What asking for a state change did.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// Done; the alert as it is now.
    Changed(Box<Alert>),
    /// No alert with that id.
    NotFound,
    /// The alert's state does not allow the change.
    Refused(AlertState),
}

/// Which alerts to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    pub state: Option<AlertState>,
    /// Only ids below this, newest first (a page cursor).
    pub before: Option<i64>,
    /// Only ids above this, oldest first (a replay).
    pub after: Option<i64>,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, pattern: &str, mode: WatchMode, max: Option<f32>) -> WatchEntry {
        WatchEntry {
            id,
            entry: NewWatch {
                pattern: pattern.into(),
                mode,
                max_distance: max,
                reason: "r".into(),
                priority: Priority::High,
                expires_ms: None,
                created_ms: 0,
                created_by: "op".into(),
            },
            removed_ms: None,
            removed_by: None,
        }
    }

    #[test]
    fn exact_wildcard_fuzzy_and_expiry() {
        let mut expired = entry(4, "777KXM17", WatchMode::Exact, None);
        expired.entry.expires_ms = Some(100);
        let mut removed = entry(5, "123ABC02", WatchMode::Exact, None);
        removed.removed_ms = Some(1);
        let m = Matcher::new(vec![
            entry(1, "123ABC02", WatchMode::Exact, None),
            entry(2, "123*02", WatchMode::Wildcard, None),
            entry(3, "I23ABC02", WatchMode::Fuzzy, Some(1.0)),
            expired,
            removed,
        ]);
        assert_eq!(m.len(), 4);
        let ids = |plate: &str, now: i64| -> Vec<i64> {
            m.matches(plate, now).iter().map(|(e, _)| e.id).collect()
        };
        assert_eq!(ids("123ABC02", 0), [1, 2, 3]);
        assert_eq!(ids("123XYZ02", 0), [2]);
        assert_eq!(ids("777KXM17", 99), [4]);
        assert!(ids("777KXM17", 100).is_empty());
        assert!(ids("999ZZZ01", 0).is_empty());
        assert_eq!(m.matches("123ABC02", 0)[2].1, Some(0.5));
    }

    #[test]
    fn states_move_forward_only() {
        use AlertState::*;
        assert!(New.may_become(Acknowledged));
        assert!(New.may_become(Closed));
        assert!(Acknowledged.may_become(Closed));
        assert!(!Acknowledged.may_become(Acknowledged));
        assert!(!Closed.may_become(Acknowledged));
        assert!(!Closed.may_become(Closed));
        assert!(Priority::Critical > Priority::High && Priority::Low < Priority::Normal);
    }
}
