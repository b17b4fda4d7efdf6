//! Building the events the edge sends: one per vehicle pass, per pillar
//! press and per stream state change (schema in `safecity_core::Event`).

use base64::Engine;
use safecity_core::{
    AlarmInfo, Candidate, Event, EventId, EventKind, PlateInfo, StatusInfo, VehicleInfo,
};
use time::OffsetDateTime;

use crate::passes::Pass;

/// A fresh event id for something that happened at `unix_ms`.
pub fn new_id(unix_ms: u64) -> String {
    let mut random = [0u8; 16];
    getrandom::getrandom(&mut random).expect("the operating system gives random bytes");
    EventId::new(unix_ms, u128::from_le_bytes(random)).to_string()
}

/// Milliseconds since 1970 as a UTC time.
pub fn utc(unix_ms: u64) -> OffsetDateTime {
    safecity_core::clock::utc(i64::try_from(unix_ms).unwrap_or(i64::MAX))
}

/// Now, in milliseconds since 1970.
pub fn now_ms() -> u64 {
    u64::try_from(safecity_core::clock::now_ms()).unwrap_or(0)
}

fn xywh(b: [f32; 4]) -> [i32; 4] {
    let x = b[0].round() as i32;
    let y = b[1].round() as i32;
    [x, y, b[2].round() as i32 - x, b[3].round() as i32 - y]
}

fn unit(v: f32) -> f32 {
    ((v.clamp(0.0, 1.0) * 1000.0).round()) / 1000.0
}

/// The `plate_read` (or `vehicle`) event of a pass whose best view was
/// captured at `capture_unix_ms`.
pub fn pass_event(edge_id: &str, camera_id: &str, pass: &Pass, capture_unix_ms: u64) -> Event {
    let plate = pass.plate.as_ref().map(|p| PlateInfo {
        text: p.best.text.clone(),
        display: p.best.display.clone(),
        confidence: unit(p.best.confidence),
        format: p.best.format,
        region: p.best.region.clone(),
        candidates: p
            .candidates
            .iter()
            .map(|c| Candidate {
                text: c.text.clone(),
                confidence: unit(c.confidence),
            })
            .collect(),
        bbox: xywh(p.bbox),
    });
    let vehicle = pass.vehicle_bbox.map(|b| VehicleInfo {
        class: pass.class.clone(),
        colour: pass.colour.clone(),
        confidence: unit(pass.class_confidence),
        bbox: xywh(b),
        track_id: pass.track_id,
    });
    Event {
        id: new_id(capture_unix_ms),
        kind: if plate.is_some() {
            EventKind::PlateRead
        } else {
            EventKind::Vehicle
        },
        edge_id: edge_id.to_owned(),
        camera_id: camera_id.to_owned(),
        ts: utc(capture_unix_ms),
        plate,
        vehicle,
        alarm: None,
        status: None,
        snapshot: pass
            .snapshot
            .as_ref()
            .map(|j| base64::engine::general_purpose::STANDARD.encode(j)),
    }
}

/// A `panic_alarm` event for a press at `unix_ms`, with a JPEG if one is at
/// hand.
pub fn alarm_event(
    edge_id: &str,
    pillar_id: &str,
    unix_ms: u64,
    source: &str,
    snapshot: Option<&[u8]>,
) -> Event {
    Event {
        id: new_id(unix_ms),
        kind: EventKind::PanicAlarm,
        edge_id: edge_id.to_owned(),
        camera_id: pillar_id.to_owned(),
        ts: utc(unix_ms),
        plate: None,
        vehicle: None,
        alarm: Some(AlarmInfo {
            source: source.to_owned(),
            clip: None,
        }),
        status: None,
        snapshot: snapshot.map(|j| base64::engine::general_purpose::STANDARD.encode(j)),
    }
}

/// A `camera_status` event.
pub fn status_event(edge_id: &str, camera_id: &str, online: bool, message: &str) -> Event {
    let now = now_ms();
    Event {
        id: new_id(now),
        kind: EventKind::CameraStatus,
        edge_id: edge_id.to_owned(),
        camera_id: camera_id.to_owned(),
        ts: utc(now),
        plate: None,
        vehicle: None,
        alarm: None,
        status: Some(StatusInfo {
            state: if online { "online" } else { "offline" }.to_owned(),
            message: clipped(message, safecity_core::MAX_MESSAGE),
        }),
        snapshot: None,
    }
}

/// `text` cut at a character boundary to at most `max` bytes, so a long
/// stream error still makes an event the server takes.
fn clipped(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::PassPlate;
    use safecity_core::parse_plate;
    use safecity_models::PlateCandidate;

    #[test]
    fn events_are_valid_and_carry_the_pass() {
        let p = parse_plate("715KXM02").unwrap();
        let cand = PlateCandidate {
            text: p.text.clone(),
            display: p.display.clone(),
            format: p.format,
            region: p.region.clone(),
            confidence: 0.93,
        };
        let pass = Pass {
            track_id: 4,
            class: "car".into(),
            class_confidence: 0.8,
            colour: Some("white".into()),
            frame: 10,
            ts_ms: 1000,
            first_ms: 0,
            last_ms: 2000,
            vehicle_bbox: Some([10.0, 20.0, 110.0, 90.0]),
            plate: Some(PassPlate {
                best: cand.clone(),
                candidates: vec![cand],
                bbox: [40.0, 70.0, 80.0, 80.0],
                reads: 5,
            }),
            snapshot: Some(vec![0xFF, 0xD8, 0xFF]),
            hits: 12,
        };
        let e = pass_event("edge-1", "cam-1", &pass, 1_764_000_000_123);
        e.validate().unwrap();
        assert_eq!(e.kind, EventKind::PlateRead);
        assert_eq!(e.ts.unix_timestamp_nanos(), 1_764_000_000_123_000_000);
        assert_eq!(e.plate.as_ref().unwrap().bbox, [40, 70, 40, 10]);
        assert_eq!(e.vehicle.as_ref().unwrap().track_id, 4);
        assert_eq!(e.snapshot.as_deref(), Some("/9j/"));
        assert_eq!(EventId::parse(&e.id).unwrap().unix_ms(), 1_764_000_000_123);
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains("\"ts\":\"2025-11-24T16:00:00.123Z\""),
            "{json}"
        );

        let mut plain = pass.clone();
        plain.plate = None;
        let e = pass_event("edge-1", "cam-1", &plain, 1_764_000_000_005);
        e.validate().unwrap();
        assert_eq!(e.kind, EventKind::Vehicle);

        alarm_event("edge-1", "pil-1", 1_764_000_000_007, "http", None)
            .validate()
            .unwrap();
        let s = status_event("edge-1", "cam-1", false, "connection refused");
        s.validate().unwrap();
        assert_eq!(s.status.unwrap().state, "offline");
        // A stream error of any length still makes an event the server takes,
        // cut at a character boundary.
        let long = "ошибка ".repeat(200);
        let s = status_event("edge-1", "cam-1", false, &long);
        s.validate().unwrap();
        let message = s.status.unwrap().message;
        assert!(message.len() <= safecity_core::MAX_MESSAGE && long.starts_with(&message));
        assert!(message.len() > safecity_core::MAX_MESSAGE - 14);
        assert_ne!(new_id(1), new_id(1));
    }
}
