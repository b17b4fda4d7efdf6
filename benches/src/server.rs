//! Generated data and queries for the server benchmark (`server-bench`).
//!
//! [`Dataset`] makes a deterministic stream of plate reads from a seed:
//!
//! - **Plates**: distinct canonical Kazakhstan plates, about 80 % private
//!   (`123ABC02`), 10 % organisation (`123AB02`), 7 % pre-2012
//!   (`A123BCD`) and 3 % foreign (Russian-style `A123BC77`), with regions
//!   weighted towards Almaty (`02`, `05`).
//! - **Sightings per plate**: every plate is read at least once, and the
//!   remaining reads are spread by a Zipf-Mandelbrot law over the plates
//!   (weight `1 / (rank + 200)`), so a few plates (buses, taxis) are read
//!   thousands of times and most a handful.
//! - **Time**: the reads are in time order over [`Spec::days`] days, with
//!   more traffic by day than by night (a morning and an evening peak).
//! - **Cameras**: [`Spec::cameras`] cameras (`alm-cam-0001`...), five per
//!   edge, some busier than others.
//! - **Content**: each read has a plate (confidence, candidates, box) and a
//!   vehicle (class, colour, box, track); there are **no snapshots**, so
//!   the figures leave out blob writes.
//!
//! [`Dataset::event`] rebuilds event `i` from the seed alone, so the events
//! never need to be held in memory. [`QuerySet`] draws exact, wildcard and
//! fuzzy searches from the sightings stored so far, each around a known
//! sighting so that every search has at least one true hit.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safecity_core::{
    parse_plate, Candidate, Event, EventId, EventKind, PlateInfo, PlatePattern, VehicleInfo,
    LOOKALIKE_GROUPS,
};
use serde::Serialize;
use time::OffsetDateTime;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// What to generate.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// Number of events.
    pub events: u64,
    /// Number of distinct plates (at most `events`).
    pub plates: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of cameras.
    pub cameras: u32,
    /// Days the events span.
    pub days: u32,
    /// Time of the first event, milliseconds since 1970.
    pub start_ms: i64,
}

impl Spec {
    /// `events` reads of `plates` plates from `seed`, over 30 days from
    /// 2026-11-01T00:00:00Z on 50 cameras.
    pub fn new(events: u64, plates: u32, seed: u64) -> Spec {
        Spec {
            events,
            plates,
            seed,
            cameras: 50,
            days: 30,
            start_ms: 1_793_491_200_000,
        }
    }
}

/// SplitMix64: a small, fast, deterministic generator for per-event fields.
struct Mix(u64);

impl Mix {
    fn new(seed: u64, i: u64) -> Mix {
        let mut m = Mix(seed ^ i.wrapping_mul(0xA076_1D64_78BD_642F));
        m.next();
        m
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index into `cdf` (cumulative weights ending at 1).
    fn pick(&mut self, cdf: &[f64]) -> usize {
        let u = self.unit();
        cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
    }
}

fn cdf(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    out
}

const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Letters with a Cyrillic look-alike, the only ones on Russian plates.
const RU_LETTERS: &[u8] = b"ABEKMHOPCTYX";
const CLASSES: [(&str, f64); 4] = [
    ("car", 0.86),
    ("truck", 0.06),
    ("bus", 0.05),
    ("motorcycle", 0.03),
];
const COLOURS: [(&str, f64); 9] = [
    ("white", 0.30),
    ("black", 0.20),
    ("silver", 0.16),
    ("grey", 0.12),
    ("blue", 0.07),
    ("red", 0.06),
    ("green", 0.03),
    ("brown", 0.03),
    ("yellow", 0.03),
];

fn region(rng: &mut ChaCha8Rng) -> String {
    // Almaty and Almaty Region most, then the other regions evenly.
    let r: f64 = rng.gen();
    let code = if r < 0.45 {
        2
    } else if r < 0.55 {
        5
    } else {
        rng.gen_range(1..=20)
    };
    format!("{code:02}")
}

fn chars(rng: &mut ChaCha8Rng, from: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(from[rng.gen_range(0..from.len())]))
        .collect()
}

/// One random plate in canonical form.
fn random_plate(rng: &mut ChaCha8Rng) -> String {
    let r: f64 = rng.gen();
    if r < 0.80 {
        let (d, l, g) = (chars(rng, DIGITS, 3), chars(rng, LETTERS, 3), region(rng));
        format!("{d}{l}{g}")
    } else if r < 0.90 {
        let (d, l, g) = (chars(rng, DIGITS, 3), chars(rng, LETTERS, 2), region(rng));
        format!("{d}{l}{g}")
    } else if r < 0.97 {
        let (a, d, l) = (
            chars(rng, LETTERS, 1),
            chars(rng, DIGITS, 3),
            chars(rng, LETTERS, 3),
        );
        format!("{a}{d}{l}")
    } else {
        let (a, d, l) = (
            chars(rng, RU_LETTERS, 1),
            chars(rng, DIGITS, 3),
            chars(rng, RU_LETTERS, 2),
        );
        let g = rng.gen_range(1..=199);
        format!("{a}{d}{l}{g:02}")
    }
}

/// The generated data: plates, which plate each event reads, and the
/// tables that place events in time and on cameras.
pub struct Dataset {
    pub spec: Spec,
    /// Distinct canonical plates; index 0 is the most often read.
    pub plates: Vec<String>,
    /// Display form and format of each plate.
    parsed: Vec<(String, safecity_core::PlateFormat, Option<String>)>,
    /// The plate (index into `plates`) of each event.
    schedule: Vec<u32>,
    /// Cumulative traffic over the minutes of a day.
    day: Vec<f64>,
    /// Cumulative traffic over the cameras.
    camera: Vec<f64>,
    /// Cumulative shares of [`CLASSES`] and [`COLOURS`].
    class: Vec<f64>,
    colour: Vec<f64>,
}

impl Dataset {
    /// Generates the plates and the schedule of reads.
    ///
    /// # Panics
    ///
    /// When `spec.plates` is 0 or more than `spec.events`.
    pub fn generate(spec: Spec) -> Dataset {
        assert!(
            spec.plates > 0 && u64::from(spec.plates) <= spec.events,
            "need 1 to {} plates for {} events",
            spec.events,
            spec.events
        );
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let n = spec.plates as usize;
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut plates = Vec::with_capacity(n);
        while plates.len() < n {
            let p = random_plate(&mut rng);
            if seen.insert(p.clone()) {
                plates.push(p);
            }
        }
        drop(seen);
        let parsed = plates
            .iter()
            .map(|p| {
                let parsed = parse_plate(p).expect("generated plates are valid");
                debug_assert_eq!(&parsed.text, p);
                (parsed.display, parsed.format, parsed.region)
            })
            .collect();

        // Reads per plate: one each, the rest by Zipf-Mandelbrot.
        let extra = spec.events - n as u64;
        let weights: Vec<f64> = (0..n).map(|r| 1.0 / (r as f64 + 200.0)).collect();
        let total: f64 = weights.iter().sum();
        let mut counts: Vec<u64> = weights
            .iter()
            .map(|w| 1 + (extra as f64 * w / total).floor() as u64)
            .collect();
        let assigned: u64 = counts.iter().sum();
        let plate_cdf = cdf(&weights);
        for _ in assigned..spec.events {
            let u: f64 = rng.gen();
            let r = plate_cdf.partition_point(|&c| c <= u).min(n - 1);
            counts[r] += 1;
        }
        let mut schedule = Vec::with_capacity(spec.events as usize);
        for (r, &c) in counts.iter().enumerate() {
            schedule.extend(std::iter::repeat_n(r as u32, c as usize));
        }
        schedule.shuffle(&mut rng);

        // Traffic by minute of day: night floor, day plateau, two peaks.
        let day: Vec<f64> = (0..1440)
            .map(|m| {
                let h = m as f64 / 60.0;
                let bump = |at: f64, width: f64| (-((h - at) / width).powi(2)).exp();
                0.15 + if (6.5..22.0).contains(&h) { 0.6 } else { 0.0 }
                    + bump(8.5, 1.5)
                    + 0.8 * bump(18.0, 2.0)
            })
            .collect();
        let camera: Vec<f64> = (0..spec.cameras)
            .map(|c| 1.0 / (f64::from(c) + 5.0))
            .collect();
        Dataset {
            day: cdf(&day),
            camera: cdf(&camera),
            class: cdf(&CLASSES.map(|c| c.1)),
            colour: cdf(&COLOURS.map(|c| c.1)),
            spec,
            plates,
            parsed,
            schedule,
        }
    }

    /// Number of events.
    pub fn len(&self) -> u64 {
        self.spec.events
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.spec.events == 0
    }

    /// Capture time of event `i`, milliseconds since 1970; never
    /// decreasing in `i`.
    pub fn ts_ms(&self, i: u64) -> i64 {
        let days = f64::from(self.spec.days);
        let at = i as f64 / self.spec.events as f64 * days;
        let d = at.floor();
        let frac = at - d;
        // Invert the day's cumulative traffic, linear within a minute.
        let m = self.day.partition_point(|&c| c <= frac).min(1439);
        let lo = if m == 0 { 0.0 } else { self.day[m - 1] };
        let within = ((frac - lo) / (self.day[m] - lo)).clamp(0.0, 1.0);
        let ms = (m as f64 + within) * 60_000.0;
        self.spec.start_ms + d as i64 * DAY_MS + ms as i64
    }

    /// The plate of event `i`.
    pub fn plate_of(&self, i: u64) -> &str {
        &self.plates[self.schedule[i as usize] as usize]
    }

    /// The plate index of event `i`.
    pub fn plate_index(&self, i: u64) -> u32 {
        self.schedule[i as usize]
    }

    /// Event `i`, the same for the same seed.
    pub fn event(&self, i: u64) -> Event {
        let mut m = Mix::new(self.spec.seed, i);
        let ts_ms = self.ts_ms(i);
        let p = self.schedule[i as usize] as usize;
        let text = self.plates[p].clone();
        let (display, format, region) = self.parsed[p].clone();
        let camera = m.pick(&self.camera);
        let confidence = 0.80 + 0.19 * m.unit() as f32;
        let mut candidates = vec![Candidate {
            text: text.clone(),
            confidence,
        }];
        if m.below(10) < 3 {
            // A second reading with one look-alike changed, when there is one.
            if let Some(alt) = lookalike_swaps(&text, 1, &mut m) {
                candidates.push(Candidate {
                    text: alt,
                    confidence: confidence * 0.3,
                });
            }
        }
        let (px, py) = (200 + m.below(1200) as i32, 300 + m.below(500) as i32);
        let class = CLASSES[m.pick(&self.class)].0;
        let colour = COLOURS[m.pick(&self.colour)].0;
        Event {
            id: EventId::new(
                ts_ms as u64,
                (u128::from(m.next()) << 16) | u128::from(m.next()),
            )
            .to_string(),
            kind: EventKind::PlateRead,
            edge_id: format!("edge-alm-{:02}", camera / 5 + 1),
            camera_id: format!("alm-cam-{:04}", camera + 1),
            ts: OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
                .expect("times in range"),
            plate: Some(PlateInfo {
                text,
                display,
                confidence,
                format,
                region,
                candidates,
                bbox: [px, py, 90 + m.below(30) as i32, 20 + m.below(8) as i32],
            }),
            vehicle: Some(VehicleInfo {
                class: class.to_owned(),
                colour: Some(colour.to_owned()),
                confidence: 0.70 + 0.29 * m.unit() as f32,
                bbox: [px - 120, py - 160, 300 + m.below(100) as i32, 200],
                track_id: m.below(100_000),
            }),
            alarm: None,
            status: None,
            snapshot: None,
        }
    }

    /// Number of distinct plates among the first `n` events.
    pub fn distinct_plates(&self, n: u64) -> u64 {
        let mut seen = vec![false; self.plates.len()];
        let mut count = 0;
        for &p in &self.schedule[..n as usize] {
            if !std::mem::replace(&mut seen[p as usize], true) {
                count += 1;
            }
        }
        count
    }
}

/// `plate` with `swaps` characters at distinct positions replaced by a
/// look-alike from [`LOOKALIKE_GROUPS`], or `None` when it has fewer such
/// characters.
fn lookalike_swaps(plate: &str, swaps: usize, m: &mut Mix) -> Option<String> {
    let group = |b: u8| {
        LOOKALIKE_GROUPS
            .iter()
            .map(|g| g.as_bytes())
            .find(|g| g.contains(&b))
    };
    let mut bytes = plate.as_bytes().to_vec();
    let mut at: Vec<usize> = (0..bytes.len())
        .filter(|&i| group(bytes[i]).is_some())
        .collect();
    if at.len() < swaps {
        return None;
    }
    for k in 0..swaps {
        let j = k + m.below((at.len() - k) as u64) as usize;
        at.swap(k, j);
        let i = at[k];
        let g = group(bytes[i])?;
        let others: Vec<u8> = g.iter().copied().filter(|&c| c != bytes[i]).collect();
        bytes[i] = others[m.below(others.len() as u64) as usize];
    }
    String::from_utf8(bytes).ok()
}

/// Which kind of plate search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Exact,
    Wildcard,
    Fuzzy,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Exact, Kind::Wildcard, Kind::Fuzzy];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Wildcard => "wildcard",
            Kind::Fuzzy => "fuzzy",
        }
    }
}

/// One search: a plate query and a time window around a known sighting.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub kind: Kind,
    /// Canonical plate (exact, fuzzy) or `?`/`*` pattern (wildcard).
    pub text: String,
    /// The plate the query was made from; it was seen inside the window.
    pub source: String,
    /// For wildcard queries, which of [`WILDCARD_SHAPES`] it follows.
    pub shape: Option<&'static str>,
    /// Inclusive window, milliseconds since 1970.
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Query {
    /// The pattern as SQL `LIKE` (`?` to `_`, `*` to `%`); plates have
    /// neither `_` nor `%`.
    pub fn like(&self) -> String {
        self.text
            .chars()
            .map(|c| match c {
                '?' => '_',
                '*' => '%',
                c => c,
            })
            .collect()
    }
}

/// The searches run at one checkpoint.
#[derive(Debug, Clone, Default)]
pub struct QuerySet {
    pub exact: Vec<Query>,
    pub wildcard: Vec<Query>,
    pub fuzzy: Vec<Query>,
}

/// Width of every search's time window.
pub const WINDOW_MS: i64 = DAY_MS;

/// The wildcard shapes, in turn: `12?AB*`, `*KXM0?`, `???ABC02`,
/// `1?3A?C02`.
pub const WILDCARD_SHAPES: [&str; 4] = ["12?AB*", "*KXM0?", "???ABC02", "1?3A?C02"];

fn wildcard_of(plate: &str, shape: usize) -> String {
    let b = plate.as_bytes();
    let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).into_owned();
    let n = b.len();
    match shape {
        0 => format!("{}?{}*", s(0..2), s(3..5)),
        1 => format!("*{}?", s(n - 5..n - 1)),
        2 => format!("???{}", s(3..n)),
        _ => {
            let mut v = b.to_vec();
            v[1] = b'?';
            v[4] = b'?';
            String::from_utf8_lossy(&v).into_owned()
        }
    }
}

impl QuerySet {
    /// `exact`, `wildcard` and `fuzzy` searches around sightings drawn
    /// uniformly from the first `stored` events (so often-read plates are
    /// searched more often), each window [`WINDOW_MS`] wide and holding
    /// the sighting at a random place. Fuzzy queries are the plate with
    /// one or two look-alike swaps (alternately), searched within weighted
    /// distance 2.
    pub fn draw(data: &Dataset, stored: u64, counts: [usize; 3], seed: u64) -> QuerySet {
        let mut m = Mix::new(seed ^ 0x5EA2_C4E5, stored);
        let window = |m: &mut Mix, i: u64| {
            let ts = data.ts_ms(i);
            let from = ts - m.below(WINDOW_MS as u64) as i64;
            (from, from + WINDOW_MS)
        };
        let mut out = QuerySet::default();
        for _ in 0..counts[0] {
            let i = m.below(stored);
            let (from_ms, to_ms) = window(&mut m, i);
            let p = data.plate_of(i).to_owned();
            out.exact.push(Query {
                kind: Kind::Exact,
                text: p.clone(),
                source: p,
                shape: None,
                from_ms,
                to_ms,
            });
        }
        let mut k = 0;
        while out.wildcard.len() < counts[1] {
            let i = m.below(stored);
            let p = data.plate_of(i);
            if p.len() < 7 {
                continue;
            }
            let shape = k % WILDCARD_SHAPES.len();
            let text = wildcard_of(p, shape);
            k += 1;
            if PlatePattern::parse(&text).is_ok_and(|pat| !pat.is_exact()) {
                let (from_ms, to_ms) = window(&mut m, i);
                out.wildcard.push(Query {
                    kind: Kind::Wildcard,
                    text,
                    source: p.to_owned(),
                    shape: Some(WILDCARD_SHAPES[shape]),
                    from_ms,
                    to_ms,
                });
            }
        }
        while out.fuzzy.len() < counts[2] {
            let i = m.below(stored);
            let p = data.plate_of(i);
            let swaps = 1 + out.fuzzy.len() % 2;
            if let Some(text) = lookalike_swaps(p, swaps, &mut m) {
                let (from_ms, to_ms) = window(&mut m, i);
                out.fuzzy.push(Query {
                    kind: Kind::Fuzzy,
                    text,
                    source: p.to_owned(),
                    shape: None,
                    from_ms,
                    to_ms,
                });
            }
        }
        out
    }

    /// The queries of one kind.
    pub fn of(&self, kind: Kind) -> &[Query] {
        match kind {
            Kind::Exact => &self.exact,
            Kind::Wildcard => &self.wildcard,
            Kind::Fuzzy => &self.fuzzy,
        }
    }
}

/// Latency figures of a set of timed calls, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `times`.
    pub fn of(times: &[Duration]) -> Latency {
        if times.is_empty() {
            return Latency::default();
        }
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Latency {
            n: ms.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: ms[ms.len() - 1],
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        }
    }
}

/// A figure from `/proc/self/status` (`VmRSS`, `VmHWM`) in bytes, or 0
/// where that file is missing.
pub fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A counter from `/proc/self/io` (`wchar`: bytes passed to write calls;
/// `write_bytes`: bytes this process caused to be written to storage), or
/// 0 where that file is missing.
pub fn proc_io(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// The 1-minute load average, or 0 where `/proc/loadavg` is missing.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safecity_core::{plate_distance, PlateFormat};

    fn small() -> Dataset {
        Dataset::generate(Spec::new(20_000, 2_000, 7))
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let (a, b) = (small(), small());
        for i in [0, 1, 999, 19_999] {
            assert_eq!(a.event(i), b.event(i));
        }
        let other = Dataset::generate(Spec::new(20_000, 2_000, 8));
        assert_ne!(a.event(5).id, other.event(5).id);
    }

    #[test]
    fn events_are_valid_in_time_order_and_cover_every_plate() {
        let d = small();
        let mut last = i64::MIN;
        let mut formats = std::collections::HashSet::new();
        for i in 0..d.len() {
            let e = d.event(i);
            e.validate().unwrap();
            let ts = d.ts_ms(i);
            assert!(ts >= last);
            last = ts;
            formats.insert(e.plate.unwrap().format);
        }
        assert!(formats.contains(&PlateFormat::KzPrivate));
        assert!(formats.contains(&PlateFormat::KzLegacy));
        assert_eq!(d.distinct_plates(d.len()), 2_000);
        let span = d.ts_ms(d.len() - 1) - d.ts_ms(0);
        assert!(span > 29 * DAY_MS && span <= 30 * DAY_MS, "{span}");
        // Popular plates are read far more often than the median one.
        let mut counts = vec![0u32; d.plates.len()];
        for i in 0..d.len() {
            counts[d.plate_index(i) as usize] += 1;
        }
        assert!(
            counts[0] > 4 * counts[1_999],
            "{} {}",
            counts[0],
            counts[1_999]
        );
    }

    #[test]
    fn queries_hold_their_source_sighting() {
        let d = small();
        let q = QuerySet::draw(&d, 10_000, [50, 40, 40], 1);
        assert_eq!(
            (q.exact.len(), q.wildcard.len(), q.fuzzy.len()),
            (50, 40, 40)
        );
        for w in &q.wildcard {
            let pattern = PlatePattern::parse(&w.text).unwrap();
            assert!(pattern.matches(&w.source), "{} {}", w.text, w.source);
            assert!(!w.like().contains(['?', '*']));
        }
        for f in &q.fuzzy {
            let dist = plate_distance(&f.text, &f.source);
            assert!(dist > 0.0 && dist <= 1.0, "{} {} {dist}", f.text, f.source);
        }
        for e in q.exact.iter().chain(&q.wildcard).chain(&q.fuzzy) {
            assert_eq!(e.to_ms - e.from_ms, WINDOW_MS);
            let seen = (0..10_000)
                .any(|i| d.plate_of(i) == e.source && (e.from_ms..=e.to_ms).contains(&d.ts_ms(i)));
            assert!(seen, "{e:?}");
        }
    }

    #[test]
    fn latency_percentiles_by_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&times);
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (50.0, 99.0, 100.0));
    }
}
