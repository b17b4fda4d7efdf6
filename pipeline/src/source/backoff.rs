//! How long to wait before reconnecting a source.

use std::time::Duration;

/// The first wait after a stream is lost.
pub(crate) const INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub(crate) const MAX: Duration = Duration::from_secs(30);
/// A connection that delivered video this long counts as stable: the next
/// loss starts the schedule from [`INITIAL`] again.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Exponential backoff: `initial`, doubling on each failed attempt, capped
/// at `max`, back to `initial` after [`Backoff::reset`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial.min(max),
        }
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts the schedule again (after a stable connection).
    pub(crate) fn reset(&mut self) {
        self.next = self.initial.min(self.max);
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(INITIAL, MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_up_to_thirty_seconds() {
        let mut b = Backoff::default();
        let ms: Vec<u128> = (0..10).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            ms,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.next_delay(), INITIAL);
        assert_eq!(b.next_delay(), INITIAL * 2);
    }

    #[test]
    fn a_small_cap_wins_over_the_first_delay() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(b.next_delay(), Duration::from_secs(2));
        assert_eq!(b.next_delay(), Duration::from_secs(2));
    }
}
