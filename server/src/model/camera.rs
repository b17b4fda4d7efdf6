//! The camera and pillar registry and what events say of each camera.

use serde::{Deserialize, Serialize};

/// What a camera or pillar is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraKind {
    Camera,
    Pillar,
}

impl CameraKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraKind::Camera => "camera",
            CameraKind::Pillar => "pillar",
        }
    }

    pub fn parse(s: &str) -> Option<CameraKind> {
        match s {
            "camera" => Some(CameraKind::Camera),
            "pillar" => Some(CameraKind::Pillar),
            _ => None,
        }
    }
}

/// An entry of the camera and pillar registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub kind: CameraKind,
    pub lat: f64,
    pub lon: f64,
}

/// What the events say of a camera's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameraHealth {
    /// The state of its latest `camera_status` event (`online` or
    /// `offline`) and that event's capture time, ms since the epoch.
    pub status: Option<(String, i64)>,
    /// The capture time of its latest event of any kind.
    pub last_seen_ms: Option<i64>,
}
