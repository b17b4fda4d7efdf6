//! Multi-object tracking per camera: IoU matching against positions
//! predicted from each track's velocity.
//!
//! At a detection rate of 5-10 fps a car at 60 km/h moves a good part of its
//! own length between frames, so matching last boxes alone loses tracks;
//! predicting each box forward first keeps them.

use safecity_core::iou;

/// Settings of an [`IouTracker`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Least overlap between a prediction and a detection to match them.
    pub iou_threshold: f32,
    /// A track that is not seen for longer than this ends.
    pub max_missed_ms: u64,
    /// A track ends anyway after this long, so a parked vehicle still yields
    /// its event (the maximum dwell time).
    pub max_dwell_ms: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_threshold: 0.2,
            max_missed_ms: 800,
            max_dwell_ms: 60_000,
        }
    }
}

/// One detection offered to the tracker: `x1, y1, x2, y2` and a class.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInput {
    pub bbox: [f32; 4],
    pub class: String,
    pub score: f32,
}

/// A tracked object.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u64,
    pub bbox: [f32; 4],
    /// Box movement per millisecond.
    velocity: [f32; 4],
    /// Summed detection scores per class; the track's class is the largest.
    class_votes: Vec<(String, f32)>,
    pub hits: u32,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

impl Track {
    /// The class most detections gave, weighted by score.
    pub fn class(&self) -> &str {
        self.class_votes
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or("", |(c, _)| c.as_str())
    }

    fn predict(&self, ts_ms: u64) -> [f32; 4] {
        let dt = ts_ms.saturating_sub(self.last_seen_ms) as f32;
        let mut b = self.bbox;
        for (v, d) in b.iter_mut().zip(self.velocity) {
            *v += d * dt;
        }
        b
    }
}

/// Tracks objects across the frames of one camera.
#[derive(Debug, Default)]
pub struct IouTracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

/// What one frame did to the tracks.
#[derive(Debug, Default, PartialEq)]
pub struct TrackUpdate {
    /// The track id each detection was given, in the order offered.
    pub assigned: Vec<u64>,
    /// Tracks that ended: not seen for too long, or dwelling too long.
    pub ended: Vec<Track>,
}

impl IouTracker {
    pub fn new(config: TrackerConfig) -> Self {
        IouTracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Tracks alive now.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Matches one frame's detections (taken at `ts_ms`) to the tracks.
    pub fn update(&mut self, detections: &[TrackInput], ts_ms: u64) -> TrackUpdate {
        let predicted: Vec<[f32; 4]> = self.tracks.iter().map(|t| t.predict(ts_ms)).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, p) in predicted.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                let o = iou(*p, d.bbox).max(iou(self.tracks[ti].bbox, d.bbox));
                if o >= self.config.iou_threshold {
                    pairs.push((o, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut assigned = vec![0u64; detections.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if track_taken[ti] || assigned[di] != 0 {
                continue;
            }
            track_taken[ti] = true;
            let t = &mut self.tracks[ti];
            let d = &detections[di];
            let dt = ts_ms.saturating_sub(t.last_seen_ms).max(1) as f32;
            for k in 0..4 {
                let v = (d.bbox[k] - t.bbox[k]) / dt;
                // Smooth the velocity; the first match sets it outright.
                t.velocity[k] = if t.hits == 1 {
                    v
                } else {
                    0.5 * t.velocity[k] + 0.5 * v
                };
            }
            t.bbox = d.bbox;
            t.hits += 1;
            t.last_seen_ms = ts_ms;
            vote(&mut t.class_votes, &d.class, d.score);
            assigned[di] = t.id;
        }
        for (di, d) in detections.iter().enumerate() {
            if assigned[di] == 0 {
                let id = self.next_id;
                self.next_id += 1;
                self.tracks.push(Track {
                    id,
                    bbox: d.bbox,
                    velocity: [0.0; 4],
                    class_votes: vec![(d.class.clone(), d.score)],
                    hits: 1,
                    first_seen_ms: ts_ms,
                    last_seen_ms: ts_ms,
                });
                assigned[di] = id;
            }
        }
        let (max_missed, max_dwell) = (self.config.max_missed_ms, self.config.max_dwell_ms);
        let (ended, alive): (Vec<Track>, Vec<Track>) = self.tracks.drain(..).partition(|t| {
            ts_ms.saturating_sub(t.last_seen_ms) > max_missed
                || ts_ms.saturating_sub(t.first_seen_ms) > max_dwell
        });
        self.tracks = alive;
        TrackUpdate { assigned, ended }
    }

    /// Ends every track (the stream is over).
    pub fn finish(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.tracks)
    }
}

fn vote(votes: &mut Vec<(String, f32)>, class: &str, score: f32) {
    match votes.iter_mut().find(|(c, _)| c == class) {
        Some((_, s)) => *s += score,
        None => votes.push((class.to_owned(), score)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, class: &str) -> TrackInput {
        TrackInput {
            bbox: [x, y, x + 100.0, y + 60.0],
            class: class.into(),
            score: 0.9,
        }
    }

    #[test]
    fn a_fast_vehicle_keeps_its_track_across_a_missed_frame() {
        let mut t = IouTracker::new(TrackerConfig::default());
        // 40 px per 100 ms; the detection at 400 ms is missed, so at 500 ms
        // the box has moved 80 px since last seen: IoU 0.11 with the old box,
        // but the predicted box matches.
        let mut ids = Vec::new();
        for i in (0..8u64).filter(|&i| i != 4) {
            let u = t.update(&[det(i as f32 * 40.0, 100.0, "car")], i * 100);
            ids.push(u.assigned[0]);
            assert!(u.ended.is_empty());
        }
        assert!(iou(det(120.0, 100.0, "car").bbox, det(200.0, 100.0, "car").bbox) < 0.2);
        assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
        // Then it leaves; after max_missed_ms the track ends, with its class.
        assert!(t.update(&[], 1_200).ended.is_empty());
        let ended = t.update(&[], 1_800).ended;
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].hits, 7);
        assert_eq!(ended[0].class(), "car");
    }

    #[test]
    fn two_vehicles_side_by_side_keep_separate_tracks() {
        let mut t = IouTracker::new(TrackerConfig::default());
        let mut seen = std::collections::HashSet::new();
        for i in 0..5u64 {
            let y = i as f32 * 20.0;
            let u = t.update(&[det(0.0, y, "car"), det(300.0, y, "truck")], i * 100);
            assert_ne!(u.assigned[0], u.assigned[1]);
            seen.extend(u.assigned);
        }
        assert_eq!(seen.len(), 2);
        let mut ended = t.finish();
        ended.sort_by_key(|t| t.id);
        assert_eq!(ended[1].class(), "truck");
    }

    #[test]
    fn the_class_is_the_weighted_majority_and_dwell_is_capped() {
        let mut t = IouTracker::new(TrackerConfig {
            max_dwell_ms: 1_000,
            ..TrackerConfig::default()
        });
        t.update(&[det(0.0, 0.0, "truck")], 0);
        t.update(&[det(0.0, 0.0, "car")], 500);
        t.update(&[det(0.0, 0.0, "car")], 900);
        let u = t.update(&[det(0.0, 0.0, "car")], 1_100);
        assert_eq!(
            u.ended.len(),
            1,
            "a parked vehicle's track ends at the dwell limit"
        );
        assert_eq!(u.ended[0].class(), "car");
    }
}
