//! A plate's trajectory: sightings in time order and the hops between them.
//!
//! A hop whose implied speed no car reaches points to a cloned plate (two
//! cars with one number) or a misread. The rule, with slack for the clocks
//! of different edges and for where on a camera's view a car was seen:
//!
//! ```text
//! impossible  ⇔  max(0, distance − DISTANCE_SLACK_M) / (elapsed + CLOCK_SLACK_S) > MAX_SPEED_KMH
//! ```
//!
//! with [`MAX_SPEED_KMH`] = 250 km/h, [`CLOCK_SLACK_S`] = 60 s and
//! [`DISTANCE_SLACK_M`] = 200 m. A hop to or from a camera that is not in
//! the registry has no distance and is never flagged.

use crate::model::{haversine_m, Camera, Sighting};

/// Above this speed a hop is impossible, in km/h.
pub const MAX_SPEED_KMH: f64 = 250.0;
/// Allowed clock error between two sightings, in seconds.
pub const CLOCK_SLACK_S: f64 = 60.0;
/// Allowed error from camera spacing and field of view, in metres.
pub const DISTANCE_SLACK_M: f64 = 200.0;

/// The move between two consecutive sightings.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// Straight-line distance; `None` when a camera is not registered.
    pub distance_m: Option<f64>,
    pub elapsed_s: f64,
    /// `None` without a distance, or when no time passed between two
    /// different places.
    pub speed_kmh: Option<f64>,
    pub impossible: bool,
}

/// The hop from `a` to `b`, seen at cameras `ca` and `cb`.
pub fn hop(a: &Sighting, ca: Option<&Camera>, b: &Sighting, cb: Option<&Camera>) -> Hop {
    let elapsed_s = (b.ts_ms - a.ts_ms) as f64 / 1000.0;
    let distance_m = match (ca, cb) {
        _ if a.camera_id == b.camera_id => Some(0.0),
        (Some(x), Some(y)) => Some(haversine_m(x.lat, x.lon, y.lat, y.lon)),
        _ => None,
    };
    let speed_kmh = distance_m.and_then(|d| {
        if elapsed_s > 0.0 {
            Some(d / elapsed_s * 3.6)
        } else if d == 0.0 {
            Some(0.0)
        } else {
            None
        }
    });
    let impossible = distance_m.is_some_and(|d| {
        let d = (d - DISTANCE_SLACK_M).max(0.0);
        d / (elapsed_s.max(0.0) + CLOCK_SLACK_S) * 3.6 > MAX_SPEED_KMH
    });
    Hop {
        distance_m,
        elapsed_s,
        speed_kmh,
        impossible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CameraKind;

    fn cam(id: &str, lat: f64, lon: f64) -> Camera {
        Camera {
            id: id.into(),
            name: id.into(),
            kind: CameraKind::Camera,
            lat,
            lon,
        }
    }

    fn seen(camera: &str, ts_ms: i64) -> Sighting {
        Sighting {
            event_id: String::new(),
            ts_ms,
            camera_id: camera.into(),
            confidence: None,
            snapshot: None,
            clip: None,
        }
    }

    #[test]
    fn far_and_fast_is_impossible_near_and_simultaneous_is_not() {
        let almaty = cam("a", 43.2389, 76.8897);
        let astana = cam("b", 51.1694, 71.4491);
        let next_door = cam("c", 43.2389, 76.8920);
        // About 970 km in 10 minutes.
        let h = hop(
            &seen("a", 0),
            Some(&almaty),
            &seen("b", 600_000),
            Some(&astana),
        );
        assert!(h.impossible, "{h:?}");
        assert!(h.distance_m.unwrap() > 900_000.0);
        // About 190 m at the same instant: within the slack.
        let h = hop(
            &seen("a", 0),
            Some(&almaty),
            &seen("c", 0),
            Some(&next_door),
        );
        assert!(!h.impossible, "{h:?}");
        assert_eq!(h.speed_kmh, None);
        // Same camera, no time: standing still.
        let h = hop(&seen("a", 0), None, &seen("a", 0), None);
        assert_eq!(
            (h.distance_m, h.speed_kmh, h.impossible),
            (Some(0.0), Some(0.0), false)
        );
        // An unregistered camera: no distance, never flagged.
        let h = hop(&seen("a", 0), Some(&almaty), &seen("x", 1), None);
        assert_eq!((h.distance_m, h.impossible), (None, false));
        // 970 km in 4 hours is 243 km/h: fast, but possible.
        let h = hop(
            &seen("a", 0),
            Some(&almaty),
            &seen("b", 4 * 3_600_000),
            Some(&astana),
        );
        assert!(!h.impossible, "{h:?}");
    }
}
