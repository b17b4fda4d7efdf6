//! The one clock: now, and times as milliseconds since 1970 in UTC, the unit
//! events, the spool, the stores and the API's bounds use.

use time::OffsetDateTime;

/// Now, in milliseconds since 1970 (UTC).
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `ms` since 1970 as a UTC time; a time outside what [`OffsetDateTime`]
/// holds (beyond the years -9999..=9999) gives 1970-01-01.
pub fn utc(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_this_code_was_written_and_round_trips() {
        let now = now_ms();
        assert!(now > 1_780_000_000_000, "{now}");
        assert_eq!((utc(now).unix_timestamp_nanos() / 1_000_000) as i64, now);
    }

    #[test]
    fn times_out_of_range_fall_back_to_the_epoch() {
        assert_eq!(utc(i64::MAX), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(utc(-1).unix_timestamp_nanos(), -1_000_000);
    }
}
