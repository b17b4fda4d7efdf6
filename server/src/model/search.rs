//! Searches: which plates, where and when, and the pages of hits.

use safecity_core::PlatePattern;

use super::{BlobHash, Camera};

/// Which plates a search looks for.
#[derive(Debug, Clone)]
pub enum PlateQuery {
    /// Every event, with or without a plate.
    Any,
    /// One canonical plate.
    Exact(String),
    /// Plates matching a `?`/`*` pattern.
    Wildcard(PlatePattern),
    /// Plates within a weighted edit distance of a canonical plate.
    Fuzzy { plate: String, max_distance: f32 },
}

/// A circle on the map: cameras inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub metres: f64,
}

/// Where a page of results continues: the last hit's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts_ms: i64,
    pub id: String,
}

/// A search, already checked.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub plate: PlateQuery,
    /// Inclusive bounds, milliseconds since 1970.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only these cameras, when given.
    pub cameras: Option<Vec<String>>,
    /// Only cameras inside this circle.
    pub near: Option<Near>,
    pub class: Option<String>,
    pub colour: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// One search result.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The event as sent, without its snapshot.
    pub event: serde_json::Value,
    pub id: String,
    pub ts_ms: i64,
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
    /// Weighted edit distance to the queried plate, for fuzzy searches.
    pub distance: Option<f32>,
}

/// One page of results, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl SearchPage {
    /// The first `limit` of `hits` (fetched as `limit + 1` to learn whether
    /// more follow), with the cursor after the last one kept.
    pub fn cut(mut hits: Vec<Hit>, limit: usize) -> SearchPage {
        let next = if hits.len() > limit {
            hits.truncate(limit);
            hits.last().map(|h| Cursor {
                ts_ms: h.ts_ms,
                id: h.id.clone(),
            })
        } else {
            None
        };
        SearchPage { hits, next }
    }
}

/// Distance in metres between two points on the Earth (haversine).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().asin()
}

/// The ids of the cameras inside `near`.
pub fn cameras_near(cameras: &[Camera], near: Near) -> Vec<String> {
    cameras
        .iter()
        .filter(|c| haversine_m(near.lat, near.lon, c.lat, c.lon) <= near.metres)
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is about 111.2 km.
        let d = haversine_m(43.0, 76.0, 44.0, 76.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
        assert_eq!(haversine_m(43.25, 76.9, 43.25, 76.9), 0.0);
    }
}
