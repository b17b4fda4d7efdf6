//! Ground truth: what the simulator drew, in pixels of the frame it drew.

use safecity_core::PlateFormat;
use serde::{Deserialize, Serialize};

/// Vehicle classes, as the detector names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    Car,
    Bus,
    Truck,
    Motorcycle,
}

impl VehicleClass {
    pub const ALL: [VehicleClass; 4] = [Self::Car, Self::Bus, Self::Truck, Self::Motorcycle];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Car => "car",
            Self::Bus => "bus",
            Self::Truck => "truck",
            Self::Motorcycle => "motorcycle",
        }
    }
}

/// Vehicle body colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleColour {
    White,
    Black,
    Silver,
    Grey,
    Red,
    Blue,
    Green,
    Yellow,
    Brown,
}

impl VehicleColour {
    pub const ALL: [VehicleColour; 9] = [
        Self::White,
        Self::Black,
        Self::Silver,
        Self::Grey,
        Self::Red,
        Self::Blue,
        Self::Green,
        Self::Yellow,
        Self::Brown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::White => "white",
            Self::Black => "black",
            Self::Silver => "silver",
            Self::Grey => "grey",
            Self::Red => "red",
            Self::Blue => "blue",
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Brown => "brown",
        }
    }
}

/// How the characters are laid out on the plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateLayout {
    /// One row of characters on a long plate (520 x 112 mm).
    SingleLine,
    /// A square plate with two rows (280 x 200 mm class).
    TwoLine,
}

/// Light conditions of a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lighting {
    Day,
    Dusk,
    Night,
}

impl Lighting {
    pub const ALL: [Lighting; 3] = [Self::Day, Self::Dusk, Self::Night];
}

/// Which way a vehicle drives relative to the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards the camera: the front plate is seen.
    Towards,
    /// Away from the camera: the rear plate is seen.
    Away,
}

/// A plate as drawn in the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateTruth {
    /// Canonical text, `123ABC02`.
    pub text: String,
    /// Display form, `123 ABC 02`.
    pub display: String,
    pub format: PlateFormat,
    pub layout: PlateLayout,
    /// Axis-aligned box `[x, y, w, h]` in frame pixels around the corners.
    pub bbox: [f32; 4],
    /// Corner points in frame pixels: top-left, top-right, bottom-right,
    /// bottom-left as seen on the plate.
    pub corners: [[f32; 2]; 4],
    /// Big, sharp, lit and unhidden enough that a person could read it.
    pub readable: bool,
}

/// A vehicle as drawn in the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleTruth {
    /// Stable for one vehicle pass through the scene.
    pub id: u64,
    pub class: VehicleClass,
    pub colour: VehicleColour,
    pub direction: Direction,
    /// Axis-aligned box `[x, y, w, h]` in frame pixels, clipped to the frame.
    pub bbox: [f32; 4],
    /// The plate facing the camera, if the vehicle shows one.
    pub plate: Option<PlateTruth>,
}

/// Everything in one rendered frame or still image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameTruth {
    pub width: u32,
    pub height: u32,
    pub lighting: Lighting,
    pub rain: bool,
    pub vehicles: Vec<VehicleTruth>,
}

#[cfg(test)]
impl FrameTruth {
    /// Asserts the ground truth's geometry: every vehicle box non-empty and
    /// inside the frame, every plate box inside its vehicle's, every corner
    /// inside its plate box. `what` names the frame in failures.
    pub(crate) fn assert_nested(&self, what: &str) {
        const EPS: f32 = 1e-3;
        let (w, h) = (self.width as f32, self.height as f32);
        for v in &self.vehicles {
            let b = v.bbox;
            assert!(b[2] >= 1.0 && b[3] >= 1.0, "{what}: {b:?}");
            assert!(
                b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= w + EPS && b[1] + b[3] <= h + EPS,
                "{what}: {b:?}"
            );
            if let Some(p) = &v.plate {
                let q = p.bbox;
                assert!(
                    q[0] >= b[0] - EPS
                        && q[1] >= b[1] - EPS
                        && q[0] + q[2] <= b[0] + b[2] + EPS
                        && q[1] + q[3] <= b[1] + b[3] + EPS,
                    "{what}: plate {q:?} outside vehicle {b:?}"
                );
                for c in p.corners {
                    assert!(
                        c[0] >= q[0] - EPS
                            && c[0] <= q[0] + q[2] + EPS
                            && c[1] >= q[1] - EPS
                            && c[1] <= q[1] + q[3] + EPS,
                        "{what}: corner {c:?} outside {q:?}"
                    );
                }
            }
        }
    }
}
