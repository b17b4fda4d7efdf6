//! The one retry schedule: exponential backoff for reconnecting cameras,
//! delivering events and clips, and webhooks.

use std::time::Duration;

/// Exponential backoff: `initial`, doubling on each failed attempt, capped
/// at `max`, back to `initial` after [`Backoff::reset`]. With
/// [`Backoff::jittered`] each wait is spread over 75 % to 125 % of its step,
/// so that edges cut off together do not all come back in the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
}

impl Backoff {
    /// A schedule from `initial` up to `max`, without jitter.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial.min(max),
            jitter: false,
        }
    }

    /// The same schedule with each wait spread by ±25 %.
    pub fn jittered(self) -> Backoff {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jitter {
            // The clock's nanoseconds are random enough to spread retries
            // and keep this crate free of a random source.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.subsec_nanos());
            step.mul_f64(0.75 + 0.5 * f64::from(nanos % 1000) / 1000.0)
        } else {
            step
        }
    }

    /// The step the next [`Backoff::next_delay`] is drawn from.
    pub fn current(&self) -> Duration {
        self.next
    }

    /// Starts the schedule again (after a success or a stable connection).
    pub fn reset(&mut self) {
        self.next = self.initial.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(b: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| b.next_delay().as_millis()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(
            ms(&mut b, 10),
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        ms(&mut b, 5);
        b.reset();
        assert_eq!(ms(&mut b, 2), [500, 1000]);
    }

    #[test]
    fn a_small_cap_wins_over_the_first_delay() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(ms(&mut b, 2), [2000, 2000]);
    }

    #[test]
    fn jitter_stays_within_a_quarter_of_each_step() {
        let mut b =
            Backoff::new(Duration::from_millis(400), Duration::from_millis(1600)).jittered();
        for step in [400.0, 800.0, 1600.0, 1600.0] {
            let d = b.next_delay().as_secs_f64() * 1000.0;
            assert!(
                (0.75 * step..=1.25 * step).contains(&d),
                "{d} ms for a step of {step}"
            );
        }
    }
}
