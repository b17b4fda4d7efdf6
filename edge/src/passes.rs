//! From per-frame detections to one record per vehicle pass.
//!
//! Vehicles are tracked per stream ([`IouTracker`]); each plate goes to the
//! vehicle whose box holds its centre, and plates seen without a vehicle
//! are tracked on their own. A track's reads are voted character by
//! character ([`PlateVote`]). When a track ends (or reaches the maximum
//! dwell time) it yields one [`Pass`]: with the voted plate if any read was
//! made, else as a plain vehicle. The pass's time and snapshot are those
//! of the nearest view, where the plate is biggest, among the reads that
//! spell the voted text: far, sure reads do not outweigh a near one, and a
//! near misread does not stand for the plate. A track never read gives its
//! largest view.
//!
//! A track can break while its vehicle is still in view (the tracker loses
//! it beside another vehicle, or behind one) and a new track picks the
//! vehicle up: two passes with the same plate whose times overlap or nearly
//! meet. A track that ends while a live track of at least as many frames
//! reads the same plate gives that track its reads and its best view, and
//! yields nothing itself: a stray box of a few frames must not stand for
//! the vehicle. Otherwise the later pass is folded into the first, which
//! is already out ([`PassConfig::rejoin_ms`]). Either way the vehicle
//! yields one event. Plates one look-alike swap apart (`O`/`Q`) count as
//! the same plate for both. A pass cut by the maximum dwell time is not
//! folded into: a parked vehicle yields one pass per dwell period. A plate
//! seen without a vehicle whose vote is unsure is dropped
//! ([`PassConfig::min_lone_plate_confidence`]).

use std::collections::HashMap;
use std::io::Cursor;

use crate::analyse::FrameAnalysis;
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use safecity_core::{parse_plate, plate_distance, OwnedPicture, LOOKALIKE_COST};
use safecity_models::{Picture, PlateCandidate};

mod track;
mod vote;

pub use track::{IouTracker, Track, TrackInput, TrackUpdate, TrackerConfig};
pub use vote::{PlateVote, VoteResult};

/// Candidates kept per plate.
const TOP_K: usize = 5;
/// Snapshots are scaled down to at most this width.
const SNAPSHOT_MAX_WIDTH: u32 = 480;
/// A track keeps the best view of this many of its texts, those nearest
/// the vote so far: each view holds a crop.
const VIEW_TEXTS: usize = 3;

/// The plate of a pass: the voted text and the best single read's box.
#[derive(Debug, Clone, PartialEq)]
pub struct PassPlate {
    pub best: PlateCandidate,
    pub candidates: Vec<PlateCandidate>,
    /// `x1, y1, x2, y2` in the best frame.
    pub bbox: [f32; 4],
    /// Frames whose read went into the vote.
    pub reads: usize,
}

/// One vehicle pass through a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub track_id: u64,
    /// `car`, `bus`, `truck`, `motorcycle`; empty for a plate seen without
    /// its vehicle.
    pub class: String,
    /// The detector's mean score over the track (0 for a lone plate).
    pub class_confidence: f32,
    pub colour: Option<String>,
    /// Frame index and time (ms, the caller's clock) of the best view.
    pub frame: u64,
    pub ts_ms: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    /// `x1, y1, x2, y2` of the vehicle in the best frame.
    pub vehicle_bbox: Option<[f32; 4]>,
    pub plate: Option<PassPlate>,
    /// JPEG of the best view's crop.
    pub snapshot: Option<Vec<u8>>,
    /// Frames the vehicle was detected in.
    pub hits: u32,
}

/// A view of a track: the frame that stands for it.
struct View {
    frame: u64,
    ts_ms: u64,
    /// For views with a read: the plate's height in pixels (the nearest
    /// view, as an investigator wants it); for views without one, the
    /// vehicle box area.
    score: f32,
    vehicle_bbox: Option<[f32; 4]>,
    plate: Option<([f32; 4], PlateCandidate, Vec<PlateCandidate>)>,
    /// The best view's pixels, copied as the frame holds them: converted,
    /// scaled and encoded only for the view a pass keeps.
    crop: Option<OwnedPicture>,
}

#[derive(Default)]
struct TrackState {
    vote: PlateVote,
    /// The biggest read view of each of at most [`VIEW_TEXTS`] texts, those
    /// nearest the vote when they were offered.
    read_views: Vec<(String, View)>,
    /// The largest view, while the track has no read.
    unread: Option<View>,
    colours: HashMap<String, f32>,
    /// Summed detector scores and their count.
    scores: (f32, u32),
    /// The best detector score of the track.
    peak: f32,
    /// The earliest time of the tracks folded into this one.
    since_ms: Option<u64>,
}

/// Settings of a [`PassBuilder`].
#[derive(Debug, Clone)]
pub struct PassConfig {
    pub tracker: TrackerConfig,
    /// Keep a JPEG of each pass's best view.
    pub snapshots: bool,
    /// Vehicle tracks seen in fewer frames and never read are dropped as
    /// noise.
    pub min_hits: u32,
    /// Vehicle tracks never read must have been detected this surely at
    /// least once: a flicker of low scores is not a vehicle.
    pub min_peak_score: f32,
    /// A pass whose plate an earlier pass of this stream had, and whose
    /// time span overlaps that pass's or starts at most this long after it
    /// ended, is the same vehicle on a broken track: it yields no pass.
    /// Plates one look-alike apart (`O`/`Q`) count as the same here.
    pub rejoin_ms: u64,
    /// A plate seen without its vehicle yields a pass only if its vote is
    /// at least this sure: a lone box that reads as noise is not a vehicle.
    pub min_lone_plate_confidence: f32,
}

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            tracker: TrackerConfig::default(),
            snapshots: true,
            min_hits: 3,
            min_peak_score: 0.4,
            rejoin_ms: 2_000,
            min_lone_plate_confidence: 0.1,
        }
    }
}

/// Tracks one stream and yields its passes.
pub struct PassBuilder {
    config: PassConfig,
    vehicles: IouTracker,
    plates: IouTracker,
    /// `(is_vehicle_track, track id)`.
    states: HashMap<(bool, u64), TrackState>,
    /// The plates of the passes yielded lately, for [`PassConfig::rejoin_ms`].
    recent: Vec<Yielded>,
    folded: u64,
}

/// A pass with a plate, as [`PassBuilder`] remembers it.
struct Yielded {
    plate: String,
    first_ms: u64,
    last_ms: u64,
    /// Cut by the maximum dwell time: what follows is a new pass.
    dwelled: bool,
}

impl PassBuilder {
    pub fn new(config: PassConfig) -> PassBuilder {
        PassBuilder {
            vehicles: IouTracker::new(config.tracker.clone()),
            plates: IouTracker::new(config.tracker.clone()),
            config,
            states: HashMap::new(),
            recent: Vec::new(),
            folded: 0,
        }
    }

    /// Passes folded into an earlier one, or into a live track, of the same
    /// plate so far.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// `pass`, unless it is the continuation of a recent pass of the same
    /// plate (see [`PassConfig::rejoin_ms`]).
    fn admit(&mut self, pass: Pass, dwelled: bool) -> Option<Pass> {
        let Some(plate) = pass.plate.as_ref().map(|p| p.best.text.clone()) else {
            return Some(pass);
        };
        let rejoin = self.config.rejoin_ms;
        let earlier = self.recent.iter_mut().find(|y| {
            same_plate(&y.plate, &plate)
                && !y.dwelled
                && pass.first_ms <= y.last_ms + rejoin
                && pass.last_ms + rejoin >= y.first_ms
        });
        if let Some(y) = earlier {
            tracing::debug!(
                "{plate}: track {} continues a pass of {}..{} ms; folded into it",
                pass.track_id,
                y.first_ms,
                y.last_ms
            );
            y.first_ms = y.first_ms.min(pass.first_ms);
            y.last_ms = y.last_ms.max(pass.last_ms);
            y.dwelled = dwelled;
            self.folded += 1;
            return None;
        }
        self.recent.push(Yielded {
            plate,
            first_ms: pass.first_ms,
            last_ms: pass.last_ms,
            dwelled,
        });
        Some(pass)
    }

    /// Forgets yielded passes no track alive now can continue: a track
    /// lasts at most the maximum dwell time.
    fn forget(&mut self, now_ms: u64) {
        let keep = self.config.tracker.max_dwell_ms + self.config.rejoin_ms;
        self.recent
            .retain(|y| now_ms.saturating_sub(y.last_ms) <= keep);
    }

    /// Feeds one analysed frame (index, time in ms, pixels); returns the
    /// passes that ended.
    pub fn update(
        &mut self,
        frame: u64,
        ts_ms: u64,
        rgb: &Picture<'_>,
        analysis: &FrameAnalysis,
    ) -> Vec<Pass> {
        let inputs: Vec<TrackInput> = analysis
            .vehicles
            .iter()
            .map(|v| TrackInput {
                bbox: v.det.bbox,
                class: v.det.class.clone(),
                score: v.det.score,
            })
            .collect();
        let update = self.vehicles.update(&inputs, ts_ms);
        for (v, &id) in analysis.vehicles.iter().zip(&update.assigned) {
            let state = self.states.entry((true, id)).or_default();
            state.scores.0 += v.det.score;
            state.scores.1 += 1;
            state.peak = state.peak.max(v.det.score);
            if let Some((c, p)) = &v.colour {
                *state.colours.entry(c.clone()).or_default() += p;
            }
        }
        let mut orphans = Vec::new();
        let mut read_vehicles = Vec::new();
        for p in &analysis.plates {
            let Some(best) = p.candidates.first() else {
                continue;
            };
            match carrier(p.det.bbox, analysis) {
                Some(i) => {
                    read_vehicles.push(i);
                    let key = (true, update.assigned[i]);
                    let vb = analysis.vehicles[i].det.bbox;
                    self.record(
                        key,
                        frame,
                        ts_ms,
                        rgb,
                        Some(vb),
                        p.det.bbox,
                        best,
                        &p.candidates,
                    );
                }
                None => orphans.push(p),
            }
        }
        // Views without a read: the largest so far stands for the track.
        for (i, v) in analysis.vehicles.iter().enumerate() {
            if read_vehicles.contains(&i) {
                continue;
            }
            let state = self.states.entry((true, update.assigned[i])).or_default();
            let area = (v.det.bbox[2] - v.det.bbox[0]) * (v.det.bbox[3] - v.det.bbox[1]);
            let better =
                state.read_views.is_empty() && state.unread.as_ref().is_none_or(|b| area > b.score);
            if better {
                state.unread = Some(View {
                    frame,
                    ts_ms,
                    score: area,
                    vehicle_bbox: Some(v.det.bbox),
                    plate: None,
                    crop: self.config.snapshots.then(|| crop(rgb, v.det.bbox)),
                });
            }
        }
        let plate_inputs: Vec<TrackInput> = orphans
            .iter()
            .map(|p| TrackInput {
                bbox: p.det.bbox,
                class: "plate".into(),
                score: p.det.score,
            })
            .collect();
        let plate_update = self.plates.update(&plate_inputs, ts_ms);
        for (p, id) in orphans.into_iter().zip(plate_update.assigned) {
            let best = p.candidates.first().expect("filtered above");
            self.record(
                (false, id),
                frame,
                ts_ms,
                rgb,
                None,
                p.det.bbox,
                best,
                &p.candidates,
            );
        }
        let mut out = Vec::new();
        for t in update.ended {
            out.extend(self.finish_track(true, t));
        }
        for t in plate_update.ended {
            out.extend(self.finish_track(false, t));
        }
        self.forget(ts_ms);
        out
    }

    /// Ends every track (the stream is over) and returns their passes.
    pub fn finish(&mut self) -> Vec<Pass> {
        let mut out = Vec::new();
        for t in self.vehicles.finish() {
            out.extend(self.finish_track(true, t));
        }
        for t in self.plates.finish() {
            out.extend(self.finish_track(false, t));
        }
        self.states.clear();
        self.recent.clear();
        out
    }

    /// Tracks alive now.
    pub fn active(&self) -> usize {
        self.vehicles.tracks().len() + self.plates.tracks().len()
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        key: (bool, u64),
        frame: u64,
        ts_ms: u64,
        rgb: &Picture<'_>,
        vehicle_bbox: Option<[f32; 4]>,
        plate_bbox: [f32; 4],
        best: &PlateCandidate,
        candidates: &[PlateCandidate],
    ) {
        let snapshots = self.config.snapshots;
        let state = self.states.entry(key).or_default();
        if !state.vote.add(&best.text, best.confidence) {
            return;
        }
        let height = (plate_bbox[3] - plate_bbox[1]).max(1.0);
        let Some(slot) = state.view_slot(&best.text, height, best.confidence) else {
            return;
        };
        let area = vehicle_bbox.unwrap_or_else(|| widen(plate_bbox, 1.5, 3.0));
        let view = View {
            frame,
            ts_ms,
            score: height,
            vehicle_bbox,
            plate: Some((plate_bbox, best.clone(), candidates.to_vec())),
            crop: snapshots.then(|| crop(rgb, area)),
        };
        state.put_view(slot, &best.text, view);
    }

    fn finish_track(&mut self, vehicle: bool, track: Track) -> Option<Pass> {
        let mut state = self.states.remove(&(vehicle, track.id))?;
        let tracker = &self.config.tracker;
        let dwelled = track.last_seen_ms - track.first_seen_ms + tracker.max_missed_ms
            >= tracker.max_dwell_ms;
        if !dwelled {
            state = self.fold_into_live(vehicle, &track, state)?;
        }
        let vote = state.vote.result(TOP_K);
        let view = match &vote {
            Some(v) => state.take_read_view(&v.text),
            None => state.unread.take(),
        }?;
        let plate = vote.and_then(|vote| {
            let (bbox, single, singles) = view.plate.clone()?;
            let parsed = parse_plate(&vote.text).ok()?;
            let mut candidates: Vec<PlateCandidate> = vote
                .candidates
                .iter()
                .filter_map(|(t, c)| {
                    let p = parse_plate(t).ok()?;
                    Some(PlateCandidate {
                        text: p.text,
                        display: p.display,
                        format: p.format,
                        region: p.region,
                        confidence: *c,
                    })
                })
                .collect();
            // A single read gives its own ranked alternatives.
            if vote.reads == 1 {
                candidates = singles;
            }
            let _ = single;
            Some(PassPlate {
                best: PlateCandidate {
                    text: parsed.text,
                    display: parsed.display,
                    format: parsed.format,
                    region: parsed.region,
                    confidence: vote.confidence,
                },
                candidates,
                bbox,
                reads: vote.reads,
            })
        });
        if !vehicle
            && plate
                .as_ref()
                .is_some_and(|p| p.best.confidence < self.config.min_lone_plate_confidence)
        {
            return None;
        }
        if plate.is_none()
            && (!vehicle
                || track.hits < self.config.min_hits
                || state.peak < self.config.min_peak_score)
        {
            return None;
        }
        let colour = state
            .colours
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c);
        let class_confidence = state.scores.0 / state.scores.1.max(1) as f32;
        let pass = Pass {
            track_id: track.id,
            class: if vehicle {
                track.class().to_owned()
            } else {
                String::new()
            },
            class_confidence,
            colour,
            frame: view.frame,
            ts_ms: view.ts_ms,
            first_ms: state
                .since_ms
                .map_or(track.first_seen_ms, |t| t.min(track.first_seen_ms)),
            last_ms: track.last_seen_ms,
            vehicle_bbox: view.vehicle_bbox,
            plate,
            snapshot: None,
            hits: track.hits,
        };
        // Encoded only for a pass that is kept.
        let mut pass = self.admit(pass, dwelled)?;
        pass.snapshot = view.crop.as_ref().and_then(|c| jpeg(&snapshot_image(c)));
        Some(pass)
    }
}

impl PassBuilder {
    /// `state` of the ended `track`, or `None` when a live track of this
    /// stream reads the same plate and has been seen in at least as many
    /// frames: that track takes the reads and the views that beat its own,
    /// and its pass stands for both. A lone plate's track may give itself
    /// to a vehicle's or a lone plate's, a vehicle's only to a vehicle's.
    fn fold_into_live(
        &mut self,
        vehicle: bool,
        track: &Track,
        state: TrackState,
    ) -> Option<TrackState> {
        let Some(text) = state.vote.result(1).map(|v| v.text) else {
            return Some(state);
        };
        let live = |tracks: &[Track], is_vehicle: bool| -> Vec<(bool, u64)> {
            tracks
                .iter()
                .filter(|t| t.hits >= track.hits)
                .map(|t| (is_vehicle, t.id))
                .collect()
        };
        let mut keys = live(self.vehicles.tracks(), true);
        if !vehicle {
            keys.extend(live(self.plates.tracks(), false));
        }
        let Some(key) = keys.into_iter().find(|k| {
            self.states
                .get(k)
                .and_then(|s| s.vote.result(1))
                .is_some_and(|v| same_plate(&v.text, &text))
        }) else {
            return Some(state);
        };
        let into = self.states.get_mut(&key).expect("found above");
        tracing::debug!(
            "{text}: track {} ({} frames) ends while track {} reads the same plate; folded into it",
            track.id,
            track.hits,
            key.1
        );
        into.vote.absorb(state.vote);
        for (text, view) in state.read_views {
            let conf = view.plate.as_ref().map_or(0.0, |p| p.1.confidence);
            if let Some(slot) = into.view_slot(&text, view.score, conf) {
                into.put_view(slot, &text, view);
            }
        }
        let since = state.since_ms.unwrap_or(track.first_seen_ms);
        into.since_ms = Some(into.since_ms.map_or(since, |t| t.min(since)));
        self.folded += 1;
        None
    }
}

/// Where a new read view goes among a track's kept views.
enum Slot {
    /// Replaces the view of the same text.
    Same(usize),
    /// Joins the kept views.
    Add,
    /// Replaces the view of a text farther from the vote.
    Evict(usize),
}

impl TrackState {
    /// Where a read of `text` with a plate `height` px high and
    /// `confidence` goes, or `None` if it is not kept: a text's bigger
    /// plate (then surer read) replaces its view. When all kept views are
    /// taken, a text nearer the vote so far (then heavier) takes the place
    /// of the farthest: the voted text keeps its view though a misread
    /// outweighs it, as character votes over several misreads can.
    fn view_slot(&self, text: &str, height: f32, confidence: f32) -> Option<Slot> {
        if let Some(i) = self.read_views.iter().position(|(t, _)| t == text) {
            let kept = &self.read_views[i].1;
            let kept_conf = kept.plate.as_ref().map_or(0.0, |p| p.1.confidence);
            let bigger = height > kept.score || (height == kept.score && confidence > kept_conf);
            return bigger.then_some(Slot::Same(i));
        }
        if self.read_views.len() < VIEW_TEXTS {
            return Some(Slot::Add);
        }
        let voted = self.vote.result(1)?.text;
        // Lower ranks first: nearer the vote, then heavier.
        let rank = |t: &str| (plate_distance(t, &voted), -self.vote.weight(t));
        let worse = |a: (f32, f32), b: (f32, f32)| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1));
        let (farthest, far) = self
            .read_views
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (i, rank(t)))
            .max_by(|a, b| worse(a.1, b.1))?;
        worse(rank(text), far)
            .is_lt()
            .then_some(Slot::Evict(farthest))
    }

    fn put_view(&mut self, slot: Slot, text: &str, view: View) {
        self.unread = None;
        match slot {
            Slot::Same(i) => self.read_views[i].1 = view,
            Slot::Add => self.read_views.push((text.to_owned(), view)),
            Slot::Evict(i) => self.read_views[i] = (text.to_owned(), view),
        }
    }

    /// The view of the voted `text`; if no kept view spells it, that of
    /// the heaviest kept text.
    fn take_read_view(&mut self, text: &str) -> Option<View> {
        let weight = |t: &str| self.vote.weight(t);
        let i = self
            .read_views
            .iter()
            .position(|(t, _)| t == text)
            .or_else(|| {
                (0..self.read_views.len()).max_by(|&a, &b| {
                    weight(&self.read_views[a].0).total_cmp(&weight(&self.read_views[b].0))
                })
            })?;
        Some(self.read_views.swap_remove(i).1)
    }
}

/// Whether two voted plates are one: equal, or one look-alike swap apart
/// (reads of one plate by two tracks).
fn same_plate(a: &str, b: &str) -> bool {
    a == b || plate_distance(a, b) <= LOOKALIKE_COST
}

/// The vehicle whose box holds the plate's centre; the smallest if several.
fn carrier(plate: [f32; 4], analysis: &FrameAnalysis) -> Option<usize> {
    let (cx, cy) = ((plate[0] + plate[2]) / 2.0, (plate[1] + plate[3]) / 2.0);
    let area = |b: [f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    analysis
        .vehicles
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            let b = v.det.bbox;
            b[0] <= cx && cx <= b[2] && b[1] <= cy && cy <= b[3]
        })
        .min_by(|a, b| area(a.1.det.bbox).total_cmp(&area(b.1.det.bbox)))
        .map(|(i, _)| i)
}

/// A box grown about its centre.
fn widen(b: [f32; 4], fx: f32, fy: f32) -> [f32; 4] {
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let (w, h) = ((b[2] - b[0]) * fx, (b[3] - b[1]) * fy);
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// The pixels of `b` (clamped to the frame), in the frame's layout.
fn crop(frame: &Picture<'_>, b: [f32; 4]) -> OwnedPicture {
    let x0 = (b[0].max(0.0) as u32).min(frame.width.saturating_sub(1));
    let y0 = (b[1].max(0.0) as u32).min(frame.height.saturating_sub(1));
    let x1 = (b[2].ceil().max(0.0) as u32).clamp(x0 + 1, frame.width);
    let y1 = (b[3].ceil().max(0.0) as u32).clamp(y0 + 1, frame.height);
    frame.crop(x0, y0, x1 - x0, y1 - y0)
}

/// A kept crop as RGB, scaled to at most [`SNAPSHOT_MAX_WIDTH`].
fn snapshot_image(crop: &OwnedPicture) -> RgbImage {
    let (w, h) = (crop.width, crop.height);
    let mut img = RgbImage::from_raw(w, h, crop.picture().to_rgb()).expect("w x h RGB pixels");
    if w > SNAPSHOT_MAX_WIDTH {
        let nh = (h as u64 * SNAPSHOT_MAX_WIDTH as u64 / w as u64).max(1) as u32;
        img = image::imageops::resize(
            &img,
            SNAPSHOT_MAX_WIDTH,
            nh,
            image::imageops::FilterType::Triangle,
        );
    }
    img
}

fn jpeg(img: &RgbImage) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(img)
        .ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyse::{PlateDetection, VehicleDetection};
    use safecity_models::ObjectDetection;

    fn candidate(text: &str, confidence: f32) -> PlateCandidate {
        let p = parse_plate(text).unwrap();
        PlateCandidate {
            text: p.text,
            display: p.display,
            format: p.format,
            region: p.region,
            confidence,
        }
    }

    fn frame_with(
        vehicle: Option<[f32; 4]>,
        plate: Option<([f32; 4], &str, f32)>,
    ) -> FrameAnalysis {
        FrameAnalysis {
            vehicles: vehicle
                .map(|b| VehicleDetection {
                    det: ObjectDetection {
                        class: "car".into(),
                        score: 0.9,
                        bbox: b,
                    },
                    colour: Some(("red".into(), 0.8)),
                })
                .into_iter()
                .collect(),
            plates: plate
                .map(|(b, t, c)| PlateDetection {
                    det: ObjectDetection {
                        class: "plate".into(),
                        score: 0.8,
                        bbox: b,
                    },
                    candidates: vec![candidate(t, c)],
                })
                .into_iter()
                .collect(),
        }
    }

    fn without_snapshots() -> PassBuilder {
        PassBuilder::new(PassConfig {
            snapshots: false,
            ..PassConfig::default()
        })
    }

    /// A car at `x` (80 px high) with its plate read as `text`.
    fn car(x: f32, text: &str) -> FrameAnalysis {
        frame_with(
            Some([x, 20.0, x + 60.0, 100.0]),
            Some(([x + 10.0, 80.0, x + 50.0, 90.0], text, 0.9)),
        )
    }

    #[test]
    fn one_pass_per_vehicle_with_the_voted_plate_and_a_snapshot() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = PassBuilder::new(PassConfig::default());
        let mut passes = Vec::new();
        // A car drives down the frame for 8 frames at 100 ms; one misread.
        for i in 0..8u64 {
            let y = 20.0 + i as f32 * 8.0;
            let text = if i == 3 { "123ABG02" } else { "123ABC02" };
            let fa = frame_with(
                Some([100.0, y, 200.0, y + 80.0]),
                Some((
                    [130.0, y + 60.0, 170.0, y + 70.0],
                    text,
                    0.6 + i as f32 * 0.01,
                )),
            );
            passes.extend(b.update(i, i * 100, &rgb, &fa));
        }
        assert!(passes.is_empty(), "still tracking");
        // Nothing for a second: the track ends.
        passes.extend(b.update(8, 2000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 1);
        let p = &passes[0];
        let plate = p.plate.as_ref().unwrap();
        assert_eq!(plate.best.text, "123ABC02");
        assert_eq!(plate.best.display, "123 ABC 02");
        assert_eq!(plate.reads, 8);
        assert_eq!(p.class, "car");
        assert_eq!(p.colour.as_deref(), Some("red"));
        assert_eq!(
            p.frame, 7,
            "the most confident read of plates alike in size"
        );
        assert_eq!((p.first_ms, p.last_ms), (0, 700));
        let jpeg = p.snapshot.as_ref().unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert!(b.finish().is_empty());
    }

    #[test]
    fn the_pass_time_is_the_nearest_legible_view_not_the_surest_far_one() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = PassBuilder::new(PassConfig::default());
        let mut passes = Vec::new();
        // The car comes closer: its plate grows from 8 to 29 px high. The
        // far reads happen to be the surest.
        for i in 0..8u64 {
            let (y, h) = (20.0 + i as f32 * 10.0, 8.0 + i as f32 * 3.0);
            let fa = frame_with(
                Some([100.0, y, 220.0, y + 100.0]),
                Some((
                    [130.0, y + 60.0, 190.0, y + 60.0 + h],
                    "123ABC02",
                    0.95 - i as f32 * 0.02,
                )),
            );
            passes.extend(b.update(i, i * 100, &rgb, &fa));
        }
        passes.extend(b.update(8, 2000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 1);
        let p = &passes[0];
        assert_eq!((p.frame, p.ts_ms), (7, 700), "{p:?}");
        let bbox = p.plate.as_ref().unwrap().bbox;
        assert_eq!(bbox[3] - bbox[1], 29.0);
    }

    /// A car coming closer, read once per frame: `(plate height, text,
    /// confidence)`; returns its one pass.
    fn approach(reads: &[(f32, &str, f32)]) -> Pass {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        let mut passes = Vec::new();
        for (i, &(h, text, conf)) in reads.iter().enumerate() {
            let y = 20.0 + i as f32 * 4.0;
            let fa = frame_with(
                Some([100.0, y, 220.0, y + 120.0]),
                Some(([130.0, y + 60.0, 190.0, y + 60.0 + h], text, conf)),
            );
            passes.extend(b.update(i as u64, i as u64 * 100, &rgb, &fa));
        }
        passes.extend(b.update(99, 9_000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 1, "{passes:?}");
        passes.remove(0)
    }

    #[test]
    fn the_pass_time_is_the_biggest_plate_that_spells_the_voted_text() {
        // Sure reads far off; near, the reader is unsure (a two-line plate
        // at an angle), and the nearest read of all is wrong.
        let p = approach(&[
            (12.0, "123ABC02", 0.9),
            (16.0, "123ABC02", 0.9),
            (20.0, "123ABC02", 0.9),
            (24.0, "123ABC02", 0.8),
            (40.0, "123ABC02", 0.01),
            (45.0, "128ABC02", 0.3),
        ]);
        assert_eq!(p.plate.as_ref().unwrap().best.text, "123ABC02");
        assert_eq!((p.frame, p.ts_ms), (4, 400), "{p:?}");
    }

    #[test]
    fn a_text_read_late_but_most_still_gets_its_view() {
        // Three different misreads fill the kept views first; the plate's
        // own text, read more surely and more often later, must displace
        // one of them.
        let p = approach(&[
            (40.0, "777KXM17", 0.3),
            (41.0, "777KXN17", 0.3),
            (42.0, "771KXM17", 0.3),
            (20.0, "715KXM02", 0.9),
            (22.0, "715KXM02", 0.9),
            (24.0, "715KXM02", 0.9),
            (23.0, "715KXM02", 0.9),
        ]);
        assert_eq!(p.plate.as_ref().unwrap().best.text, "715KXM02");
        assert_eq!(p.frame, 5, "{p:?}");
        let bbox = p.plate.as_ref().unwrap().bbox;
        assert_eq!(bbox[3] - bbox[1], 24.0);
    }

    #[test]
    fn a_broken_track_of_the_same_plate_yields_one_pass() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        let mut passes = Vec::new();
        // The tracker loses the car after 5 frames (it jumps), and picks it
        // up again as a new track; another car is read beside it.
        for i in 0..5u64 {
            passes.extend(b.update(i, i * 100, &rgb, &car(10.0, "123ABC02")));
        }
        for i in 5..10u64 {
            let mut fa = car(200.0, "123ABC02");
            let other = car(100.0, "777KXM17");
            fa.vehicles.extend(other.vehicles);
            fa.plates.extend(other.plates);
            passes.extend(b.update(i, i * 100, &rgb, &fa));
        }
        passes.extend(b.update(10, 3000, &rgb, &FrameAnalysis::default()));
        let mut plates: Vec<&str> = passes
            .iter()
            .map(|p| p.plate.as_ref().unwrap().best.text.as_str())
            .collect();
        plates.sort();
        assert_eq!(plates, ["123ABC02", "777KXM17"], "{passes:?}");
        assert_eq!(b.folded(), 1);

        // The same plate 10 s later is another pass.
        for i in 0..5u64 {
            passes.extend(b.update(20 + i, 13_000 + i * 100, &rgb, &car(10.0, "123ABC02")));
        }
        passes.extend(b.update(30, 16_000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 3);
        assert_eq!(b.folded(), 1);
    }

    #[test]
    fn a_stray_box_of_the_same_plate_does_not_stand_for_the_vehicle() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        let mut passes = Vec::new();
        // A car drives away for 30 frames, its plate shrinking from 40 to
        // 11 px. At frame 5 the detector also boxes it a second time, far
        // off its track, and reads the plate there, small but surely.
        for i in 0..30u64 {
            let (y, h) = (200.0 - i as f32 * 5.0, 40.0 - i as f32);
            let mut fa = frame_with(
                Some([100.0, y - 60.0, 200.0, y + h]),
                Some(([120.0, y, 180.0, y + h], "123ABC02", 0.6)),
            );
            if i == 5 {
                let stray = frame_with(
                    Some([250.0, 0.0, 300.0, 40.0]),
                    Some(([260.0, 20.0, 290.0, 30.0], "123ABC02", 0.99)),
                );
                fa.vehicles.extend(stray.vehicles);
                fa.plates.extend(stray.plates);
            }
            passes.extend(b.update(i, i * 100, &rgb, &fa));
        }
        // The stray track ended long before the car's.
        assert!(passes.is_empty(), "{passes:?}");
        passes.extend(b.update(30, 5000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 1, "{passes:?}");
        let p = &passes[0];
        let plate = p.plate.as_ref().unwrap();
        assert_eq!(plate.best.text, "123ABC02");
        assert_eq!(plate.reads, 31, "the stray read counts in the vote");
        assert_eq!(p.frame, 0, "the nearest view, not the stray one");
        assert_eq!((p.first_ms, p.last_ms), (0, 2900));
        assert_eq!(b.folded(), 1);
    }

    #[test]
    fn tracks_reading_a_plate_one_look_alike_apart_are_one_vehicle() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        let mut passes = Vec::new();
        // The track breaks, and the new one reads Q where the old read O.
        for i in 0..5u64 {
            passes.extend(b.update(i, i * 100, &rgb, &car(10.0, "810UAO05")));
        }
        for i in 5..20u64 {
            passes.extend(b.update(i, i * 100, &rgb, &car(200.0, "810UAQ05")));
        }
        passes.extend(b.update(20, 4000, &rgb, &FrameAnalysis::default()));
        assert_eq!(passes.len(), 1, "{passes:?}");
        let plate = passes[0].plate.as_ref().unwrap();
        assert_eq!(plate.best.text, "810UAQ05", "the vote over both tracks");
        assert_eq!(plate.reads, 20);
        assert_eq!(b.folded(), 1);
    }

    #[test]
    fn a_parked_vehicle_yields_a_pass_per_dwell_period() {
        let pixels = vec![128u8; 320 * 240 * 3];
        let mut config = PassConfig {
            snapshots: false,
            ..PassConfig::default()
        };
        config.tracker.max_dwell_ms = 2_000;
        let mut b = PassBuilder::new(config);
        let rgb = Picture::rgb(&pixels, 320, 240);
        let parked = frame_with(
            Some([10.0, 20.0, 70.0, 100.0]),
            Some(([20.0, 80.0, 60.0, 90.0], "123ABC02", 0.9)),
        );
        let mut passes = Vec::new();
        for i in 0..50u64 {
            passes.extend(b.update(i, i * 100, &rgb, &parked));
        }
        passes.extend(b.finish());
        assert_eq!(passes.len(), 3, "{passes:?}");
        assert_eq!(b.folded(), 0);
    }

    #[test]
    fn a_steady_flicker_of_unsure_detections_is_not_a_vehicle() {
        let pixels = vec![0u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        for i in 0..10u64 {
            let mut unsure = frame_with(Some([10.0, 10.0, 90.0, 70.0]), None);
            unsure.vehicles[0].det.score = 0.3;
            let mut sure = frame_with(Some([150.0, 10.0, 230.0, 70.0]), None);
            sure.vehicles[0].det.score = if i == 5 { 0.6 } else { 0.3 };
            unsure.vehicles.extend(sure.vehicles);
            b.update(i, i * 100, &rgb, &unsure);
        }
        let passes = b.finish();
        assert_eq!(passes.len(), 1, "{passes:?}");
        assert_eq!(passes[0].vehicle_bbox.unwrap()[0], 150.0);
    }

    #[test]
    fn unread_vehicles_and_lone_plates_become_their_own_passes() {
        let pixels = vec![0u8; 320 * 240 * 3];
        let rgb = Picture::rgb(&pixels, 320, 240);
        let mut b = without_snapshots();
        for i in 0..3u64 {
            let mut fa = frame_with(Some([10.0, 10.0, 90.0, 70.0]), None);
            // A plate far from any vehicle box.
            fa.plates =
                frame_with(None, Some(([250.0, 200.0, 290.0, 210.0], "715KXM02", 0.9))).plates;
            // And a lone box that reads as noise.
            fa.plates.extend(
                frame_with(None, Some(([150.0, 150.0, 190.0, 160.0], "777KXM17", 0.02))).plates,
            );
            b.update(i, i * 100, &rgb, &fa);
        }
        // A one-frame flicker is noise.
        b.update(
            3,
            300,
            &rgb,
            &frame_with(Some([200.0, 10.0, 240.0, 40.0]), None),
        );
        let mut passes = b.finish();
        passes.sort_by_key(|p| p.class.clone());
        assert_eq!(passes.len(), 2, "{passes:?}");
        assert_eq!(passes[0].class, "");
        assert_eq!(passes[0].plate.as_ref().unwrap().best.text, "715KXM02");
        assert_eq!(passes[1].class, "car");
        assert!(passes[1].plate.is_none());
        assert!(passes[1].snapshot.is_none());
    }
}
