//! How long to wait before reconnecting a source: the shared
//! [`Backoff`](safecity_core::Backoff) with the sources' own limits.

use std::time::Duration;

use safecity_core::Backoff;

/// The first wait after a stream is lost.
pub(crate) const INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub(crate) const MAX: Duration = Duration::from_secs(30);
/// A connection that delivered video this long counts as stable: the next
/// loss starts the schedule from [`INITIAL`] again.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The reconnect schedule: half a second doubling up to 30 s.
pub(crate) fn reconnect() -> Backoff {
    Backoff::new(INITIAL, MAX)
}
