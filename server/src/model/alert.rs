//! Watch-list entries and the alerts they and pillar presses raise.
//!
//! An alert's [`AlertState`] moves `new` → `acknowledged` → `closed`
//! (closing a new alert directly is allowed); nothing else.

use serde::{Deserialize, Serialize};

use super::BlobHash;

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
