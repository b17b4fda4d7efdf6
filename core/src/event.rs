//! The event: what an edge sends and the server stores and returns.
//!
//! One JSON object per event, as in `docs/contract.md`. `id` is made on the edge
//! ([`EventId`], a ULID: 48 bits of milliseconds then 80 random bits, in
//! Crockford base 32) and is the idempotency key. `ts` is the frame's
//! capture time in UTC. Unknown fields are refused, so a typo in a sender
//! is an error rather than silently lost data.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::plate::{parse_plate, PlateFormat};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A vehicle pass with a plate read.
    PlateRead,
    /// A vehicle pass without a readable plate.
    Vehicle,
    /// A panic-pillar button press.
    PanicAlarm,
    /// A camera or pillar stream lost or recovered.
    CameraStatus,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PlateRead => "plate_read",
            EventKind::Vehicle => "vehicle",
            EventKind::PanicAlarm => "panic_alarm",
            EventKind::CameraStatus => "camera_status",
        }
    }
}

/// One ranked reading of a plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub text: String,
    pub confidence: f32,
}

/// The plate of a `plate_read` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateInfo {
    /// Canonical text, `123ABC02`.
    pub text: String,
    /// Display form, `123 ABC 02`.
    pub display: String,
    pub confidence: f32,
    pub format: PlateFormat,
    /// Kazakhstan region code, `02`; absent for foreign plates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// `[x, y, w, h]` in source pixels.
    pub bbox: [i32; 4],
}

/// The vehicle of a `plate_read` or `vehicle` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleInfo {
    /// `car`, `bus`, `truck` or `motorcycle`.
    pub class: String,
    /// Body colour name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    pub confidence: f32,
    /// `[x, y, w, h]` in source pixels.
    pub bbox: [i32; 4],
    pub track_id: u64,
}

/// A pillar press (`panic_alarm`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmInfo {
    /// What raised it: `button`, `http`, `mqtt`.
    pub source: String,
    /// Id of the event-clip object once the edge delivered the clip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
}

/// A stream's state change (`camera_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    /// `online` or `offline`.
    pub state: String,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    pub edge_id: String,
    pub camera_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<PlateInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<VehicleInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusInfo>,
    /// Base64 JPEG of the best frame's crop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// Why an event is refused, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event {id}: {field}: {message}")]
pub struct EventError {
    pub id: String,
    pub field: &'static str,
    pub message: String,
}

impl Event {
    /// Checks what serde cannot: id syntax, canonical plate text, value
    /// ranges and the parts each kind needs.
    pub fn validate(&self) -> Result<(), EventError> {
        let err = |field: &'static str, message: String| EventError {
            id: self.id.clone(),
            field,
            message,
        };
        EventId::parse(&self.id).map_err(|m| err("id", m))?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&self.ts.year()) {
            return Err(err(
                "ts",
                format!(
                    "{} is outside the years {MIN_YEAR} to {MAX_YEAR}; send the capture time in UTC",
                    self.ts.year()
                ),
            ));
        }
        let short = |field: &'static str, v: &str, max: usize| {
            if v.len() > max {
                Err(err(
                    field,
                    format!("{} bytes long; at most {max} are stored", v.len()),
                ))
            } else {
                Ok(())
            }
        };
        for (field, v) in [("edge_id", &self.edge_id), ("camera_id", &self.camera_id)] {
            if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_graphic()) {
                return Err(err(
                    field,
                    format!("{v:?} must be 1 to 64 printable ASCII characters"),
                ));
            }
        }
        let unit = |field: &'static str, v: f32| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(err(field, format!("confidence {v} is outside 0..1")))
            }
        };
        let bbox = |field: &'static str, b: [i32; 4]| {
            if b[2] < 0 || b[3] < 0 {
                Err(err(field, format!("{b:?} has a negative width or height")))
            } else {
                Ok(())
            }
        };
        if let Some(p) = &self.plate {
            let parsed = parse_plate(&p.text).map_err(|e| err("plate.text", e.to_string()))?;
            if parsed.text != p.text {
                return Err(err(
                    "plate.text",
                    format!(
                        "{:?} is not canonical; send {:?} (upper-case Latin letters and digits)",
                        p.text, parsed.text
                    ),
                ));
            }
            short("plate.display", &p.display, MAX_SHORT_TEXT)?;
            short(
                "plate.region",
                p.region.as_deref().unwrap_or(""),
                MAX_SHORT_TEXT,
            )?;
            unit("plate.confidence", p.confidence)?;
            if p.candidates.len() > MAX_CANDIDATES {
                return Err(err(
                    "plate.candidates",
                    format!(
                        "{} candidates; send at most {MAX_CANDIDATES}",
                        p.candidates.len()
                    ),
                ));
            }
            for c in &p.candidates {
                short("plate.candidates", &c.text, MAX_SHORT_TEXT)?;
                unit("plate.candidates", c.confidence)?;
            }
            bbox("plate.bbox", p.bbox)?;
        }
        if let Some(v) = &self.vehicle {
            short("vehicle.class", &v.class, MAX_SHORT_TEXT)?;
            short(
                "vehicle.colour",
                v.colour.as_deref().unwrap_or(""),
                MAX_SHORT_TEXT,
            )?;
            unit("vehicle.confidence", v.confidence)?;
            bbox("vehicle.bbox", v.bbox)?;
        }
        if let Some(a) = &self.alarm {
            short("alarm.source", &a.source, MAX_SHORT_TEXT)?;
            short("alarm.clip", a.clip.as_deref().unwrap_or(""), MAX_ID_TEXT)?;
        }
        if let Some(st) = &self.status {
            short("status.state", &st.state, MAX_SHORT_TEXT)?;
            short("status.message", &st.message, MAX_MESSAGE)?;
        }
        let need = |field: &'static str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(err(
                    field,
                    format!("a {} event needs it", self.kind.as_str()),
                ))
            }
        };
        match self.kind {
            EventKind::PlateRead => need("plate", self.plate.is_some()),
            EventKind::Vehicle => need("vehicle", self.vehicle.is_some()),
            EventKind::PanicAlarm => need("alarm", self.alarm.is_some()),
            EventKind::CameraStatus => need("status", self.status.is_some()),
        }
    }
}

/// The capture years an event may carry.
pub const MIN_YEAR: i32 = 2000;
pub const MAX_YEAR: i32 = 2099;
/// Longest short text field (plate display and region, candidate texts,
/// vehicle class and colour, alarm source, status state), in bytes.
pub const MAX_SHORT_TEXT: usize = 32;
/// Longest alarm clip id, in bytes.
pub const MAX_ID_TEXT: usize = 128;
/// Longest status message, in bytes.
pub const MAX_MESSAGE: usize = 1000;
/// Most candidate readings of a plate.
pub const MAX_CANDIDATES: usize = 16;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID: sortable by time, unique without coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// From a time in milliseconds since 1970 and 80 random bits (the
    /// caller's randomness keeps this crate free of a random source).
    pub fn new(unix_ms: u64, random: u128) -> EventId {
        EventId(((unix_ms as u128 & ((1 << 48) - 1)) << 80) | (random & ((1 << 80) - 1)))
    }

    /// Reads the 26-character text form, in either case.
    pub fn parse(s: &str) -> Result<EventId, String> {
        if s.len() != 26 {
            return Err(format!(
                "{s:?} is not a ULID (26 characters of Crockford base 32)"
            ));
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let c = c.to_ascii_uppercase();
            let d = CROCKFORD.iter().position(|&x| x == c).ok_or_else(|| {
                format!(
                    "{s:?} is not a ULID: {:?} is not Crockford base 32",
                    c as char
                )
            })?;
            if i == 0 && d > 7 {
                return Err(format!("{s:?} is not a ULID: it overflows 128 bits"));
            }
            v = (v << 5) | d as u128;
        }
        Ok(EventId(v))
    }

    /// Milliseconds since 1970 at which it was made.
    pub fn unix_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, o) in out.iter_mut().enumerate() {
            *o = CROCKFORD[((self.0 >> (125 - 5 * i)) & 31) as usize];
        }
        f.write_str(std::str::from_utf8(&out).expect("ASCII"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "id": "01JD3Q6Z8W4M2K9T7R5N1C0XYZ",
      "kind": "plate_read",
      "edge_id": "edge-alm-01",
      "camera_id": "alm-cam-0042",
      "ts": "2026-11-22T10:15:30.123Z",
      "plate": {"text": "123ABC02", "display": "123 ABC 02", "confidence": 0.97,
                "format": "kz_private", "region": "02",
                "candidates": [{"text": "123ABC02", "confidence": 0.97}],
                "bbox": [812, 540, 96, 24]},
      "vehicle": {"class": "car", "colour": "white", "confidence": 0.91,
                  "bbox": [700, 380, 320, 210], "track_id": 17},
      "snapshot": "aGVsbG8="
    }"#;

    #[test]
    fn the_design_example_round_trips() {
        let e: Event = serde_json::from_str(EXAMPLE).unwrap();
        e.validate().unwrap();
        assert_eq!(e.kind, EventKind::PlateRead);
        assert_eq!(e.ts.millisecond(), 123);
        assert_eq!(e.plate.as_ref().unwrap().region.as_deref(), Some("02"));
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_by_name() {
        let typo = EXAMPLE.replace("\"camera_id\"", "\"camera\"");
        let e = serde_json::from_str::<Event>(&typo)
            .unwrap_err()
            .to_string();
        assert!(e.contains("camera"), "{e}");
        let mut ev: Event = serde_json::from_str(EXAMPLE).unwrap();
        ev.plate.as_mut().unwrap().text = "123abc02".into();
        let e = ev.validate().unwrap_err();
        assert_eq!(e.field, "plate.text");
        assert!(e.message.contains("123ABC02"), "{e}");
        ev.plate = None;
        assert_eq!(ev.validate().unwrap_err().field, "plate");
        let mut ev: Event = serde_json::from_str(EXAMPLE).unwrap();
        ev.vehicle.as_mut().unwrap().confidence = 1.5;
        assert_eq!(ev.validate().unwrap_err().field, "vehicle.confidence");
        ev.id = "not-a-ulid".into();
        assert_eq!(ev.validate().unwrap_err().field, "id");
    }

    #[test]
    fn long_texts_and_impossible_times_are_refused_by_name() {
        let base: Event = serde_json::from_str(EXAMPLE).unwrap();
        let refused = |change: &dyn Fn(&mut Event)| {
            let mut e = base.clone();
            change(&mut e);
            e.validate().unwrap_err()
        };
        let e = refused(&|e| e.plate.as_mut().unwrap().display = "1".repeat(15_000_000));
        assert_eq!(e.field, "plate.display");
        assert!(e.message.contains("at most 32"), "{}", e.message);
        let e = refused(&|e| e.vehicle.as_mut().unwrap().colour = Some("x".repeat(33)));
        assert_eq!(e.field, "vehicle.colour");
        let e = refused(&|e| {
            let c = e.plate.as_ref().unwrap().candidates[0].clone();
            e.plate.as_mut().unwrap().candidates = vec![c; 17];
        });
        assert_eq!(e.field, "plate.candidates");
        for ts in [
            "0000-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let json = EXAMPLE.replace("2026-11-22T10:15:30.123Z", ts);
            let e: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(e.validate().unwrap_err().field, "ts", "{ts} accepted");
        }
        // The limits themselves are accepted.
        let mut e = base.clone();
        e.plate.as_mut().unwrap().display = "1".repeat(MAX_SHORT_TEXT);
        e.ts = time::macros::datetime!(2099-12-31 23:59:59 UTC);
        e.validate().unwrap();
    }

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = EventId::new(1_764_000_000_000, 0xFFFF_FFFF_FFFF_FFFF_FFFF);
        let b = EventId::new(1_764_000_000_001, 0);
        assert!(a < b && a.to_string() < b.to_string());
        for id in [a, b, EventId::new(0, 0), EventId::new(u64::MAX, u128::MAX)] {
            let s = id.to_string();
            assert_eq!(s.len(), 26);
            assert_eq!(EventId::parse(&s).unwrap(), id);
            assert_eq!(EventId::parse(&s.to_lowercase()).unwrap(), id);
        }
        assert_eq!(a.unix_ms(), 1_764_000_000_000);
        assert!(EventId::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
        assert!(EventId::parse("01JD3Q6Z8W4M2K9T7R5N1C0XYU").is_err());
    }
}
