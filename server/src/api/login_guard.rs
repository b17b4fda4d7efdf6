//! Failed authentication, per client address: each failure is counted and
//! logged (the first of each window in full, then every hundredth), and an
//! address with [`MAX_FAILURES`] failures within [`WINDOW`] gets 429 for
//! any token not already known to this server until the window ends, so a
//! token guesser can neither flood the log nor keep the database busy
//! looking tokens up. Callers whose token this server has already seen go
//! on working from a blocked address (people behind one NAT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use safecity_core::sync::Locked;

/// Failures from one address that start a block.
pub const MAX_FAILURES: u32 = 20;
/// How long failures are counted, and a block lasts, from the first.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; older windows are dropped beyond it.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginGuard {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl LoginGuard {
    /// The seconds left of the block on `address`, if it is blocked.
    pub fn blocked(&self, address: IpAddr) -> Option<u64> {
        let windows = self.windows.locked();
        let w = windows.get(&address)?;
        let left = WINDOW.checked_sub(w.started.elapsed())?;
        (w.failures >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    /// Counts a failure from `address` and logs it; `why` says what was
    /// wrong (never the token itself).
    pub fn failed(&self, address: Option<IpAddr>, why: &str) {
        let Some(address) = address else {
            tracing::warn!("failed authentication: {why}");
            return;
        };
        let mut windows = self.windows.locked();
        if windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, w| w.started.elapsed() < WINDOW);
        }
        let w = windows.entry(address).or_insert(Window {
            started: Instant::now(),
            failures: 0,
        });
        if w.started.elapsed() >= WINDOW {
            *w = Window {
                started: Instant::now(),
                failures: 0,
            };
        }
        w.failures += 1;
        let n = w.failures;
        drop(windows);
        if n == 1 || n % 100 == 0 {
            tracing::warn!(%address, failures = n, "failed authentication: {why}");
        }
        if n == MAX_FAILURES {
            tracing::warn!(
                %address,
                "{MAX_FAILURES} failed authentications within {} s: unknown tokens from this \
                 address are refused for the rest of the window",
                WINDOW.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_the_allowed_failures_only() {
        let guard = LoginGuard::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..MAX_FAILURES - 1 {
            guard.failed(Some(a), "unknown token");
        }
        assert_eq!(guard.blocked(a), None);
        guard.failed(Some(a), "unknown token");
        let left = guard.blocked(a).expect("blocked");
        assert!((1..=WINDOW.as_secs()).contains(&left));
        assert_eq!(guard.blocked(b), None);
        guard.failed(None, "no address");
        assert_eq!(guard.blocked(b), None);
    }
}
