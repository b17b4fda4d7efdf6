//! Watch-list matching: which active entries a plate read hits.
//!
//! A [`WatchEntry`] names a plate exactly, by a `?`/`*` pattern, or
//! fuzzily (weighted look-alike edit distance up to 2). Ingest matches every
//! new `plate_read` against the active entries with a [`Matcher`]; each hit
//! becomes an [`Alert`](crate::model::Alert) stored in the same transaction
//! as the event, so an acknowledged batch never loses its alerts. A
//! `panic_alarm` event is an alert of its own, always
//! [`Priority::Critical`](crate::model::Priority::Critical). The entries'
//! and alerts' types are in `model`.

use std::collections::HashMap;

use safecity_core::{plate_distance, PlatePattern};

use crate::model::{WatchEntry, WatchMode};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

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
