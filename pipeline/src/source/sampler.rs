//! Choosing which decoded frames to keep for a detection rate.

/// Keeps frames at most every `interval` on their own timestamps, as
/// `videorate drop-only=true max-rate=N` would, but for any rate (not only
/// whole frames a second) and on decoded buffers of any memory type, so
/// that dropped frames are never scaled or converted.
///
/// A frame up to an eighth of the interval early is kept, so that jitter in
/// live timestamps does not drop every other frame when the stream's rate
/// is an exact multiple of the target. After a gap the schedule restarts at the
/// next frame; when timestamps go backwards (a loop or a reconnect) too.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    interval_ns: u64,
    next_due: Option<u64>,
}

impl Sampler {
    /// A sampler keeping `fps` frames a second; `fps <= 0` keeps every frame.
    pub(crate) fn new(fps: f64) -> Sampler {
        let interval_ns = if fps > 0.0 && fps.is_finite() {
            (1e9 / fps).round() as u64
        } else {
            0
        };
        Sampler {
            interval_ns,
            next_due: None,
        }
    }

    /// Whether to keep the frame at `t_ns`.
    pub(crate) fn keep(&mut self, t_ns: u64) -> bool {
        let interval = self.interval_ns;
        if interval == 0 {
            return true;
        }
        let tolerance = interval / 8;
        let Some(due) = self.next_due else {
            self.next_due = Some(t_ns + interval);
            return true;
        };
        if t_ns + tolerance >= due {
            let next = due + interval;
            // Behind schedule after a gap: restart from this frame.
            self.next_due = Some(if next <= t_ns { t_ns + interval } else { next });
            true
        } else if t_ns + interval + tolerance < due {
            // Earlier than the last kept frame: the timeline restarted.
            self.next_due = Some(t_ns + interval);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn kept(fps: f64, times_ms: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut s = Sampler::new(fps);
        times_ms.into_iter().filter(|t| s.keep(t * MS)).collect()
    }

    #[test]
    fn halves_ten_frames_a_second() {
        assert_eq!(kept(5.0, (0..10).map(|i| i * 100)), [0, 200, 400, 600, 800]);
    }

    #[test]
    fn jitter_does_not_drop_a_whole_period() {
        // 10 fps to 5 fps with frames a millisecond early or late.
        let times = [0, 101, 199, 301, 399, 502, 598, 700, 801];
        assert_eq!(kept(5.0, times), [0, 199, 399, 598, 801]);
    }

    #[test]
    fn twenty_five_to_ten_keeps_ten_a_second_on_average() {
        let k = kept(10.0, (0..250).map(|i| i * 40));
        assert!((99..=101).contains(&k.len()), "{} kept", k.len());
        assert!(k.windows(2).all(|w| (80..=120).contains(&(w[1] - w[0]))));
    }

    #[test]
    fn slower_streams_pass_whole() {
        assert_eq!(kept(10.0, [0, 500, 1000, 1500]), [0, 500, 1000, 1500]);
    }

    #[test]
    fn restarts_after_gaps_and_when_time_goes_back() {
        // A two-second gap, then a loop back to zero.
        let times = [0, 200, 2400, 2500, 2600, 0, 100, 200];
        assert_eq!(kept(5.0, times), [0, 200, 2400, 2600, 0, 200]);
    }

    #[test]
    fn zero_keeps_everything() {
        assert_eq!(kept(0.0, [0, 1, 2]), [0, 1, 2]);
        let mut s = Sampler::new(5.0);
        assert!(s.keep(0));
        assert!(!s.keep(MS));
    }
}
