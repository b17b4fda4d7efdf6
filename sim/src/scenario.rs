//! Scenario files: which vehicle passes which camera when.
//!
//! A scenario is TOML with `[[camera]]`, `[[pillar]]`, `[[pass]]` and
//! `[[alarm]]` tables; see `sim/scenarios/hit-and-run.toml`, which is
//! also built in as [`Scenario::hit_and_run`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Result, SimError};
use super::scene::ScriptedPass;
use super::serve::{StreamSource, StreamSpec};
use super::truth::{Direction, Lighting, VehicleClass, VehicleColour};

const HIT_AND_RUN: &str = include_str!("../scenarios/hit-and-run.toml");

/// Random traffic when a camera does not say.
pub const DEFAULT_VEHICLES_PER_MINUTE: f64 = 10.0;

/// A scripted scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Length of the loop every stream plays.
    pub loop_s: f64,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<CameraSpec>,
    #[serde(default, rename = "pillar")]
    pub pillars: Vec<PillarSpec>,
    #[serde(default, rename = "pass")]
    pub passes: Vec<PassSpec>,
    #[serde(default, rename = "alarm")]
    pub alarms: Vec<AlarmSpec>,
}

/// A road camera of a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub lighting: Option<Lighting>,
    #[serde(default)]
    pub rain: Option<bool>,
    #[serde(default)]
    pub vehicles_per_minute: Option<f64>,
}

/// A panic pillar of a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PillarSpec {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

/// A scripted vehicle pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassSpec {
    pub camera: String,
    /// Seconds from the loop start at which the plate is best seen.
    pub at_s: f64,
    pub plate: String,
    pub class: VehicleClass,
    pub colour: VehicleColour,
    #[serde(default = "towards")]
    pub direction: Direction,
}

fn towards() -> Direction {
    Direction::Towards
}

/// A scripted pillar button press.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSpec {
    pub pillar: String,
    pub at_s: f64,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::io(path, e))?;
        Scenario::parse(&text, path)
    }

    /// The built-in hit-and-run scenario of the demo.
    pub fn hit_and_run() -> Scenario {
        Scenario::parse(HIT_AND_RUN, Path::new("hit-and-run.toml"))
            .expect("the built-in scenario is valid")
    }

    /// Parses scenario text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        let err = |message: String| SimError::Scenario {
            path: PathBuf::from(path),
            message,
        };
        let scenario: Scenario = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        scenario.validate().map_err(err)?;
        Ok(scenario)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.cameras.is_empty() && self.pillars.is_empty() {
            return Err("has no [[camera]] or [[pillar]]".into());
        }
        if !(10.0..=3600.0).contains(&self.loop_s) {
            return Err(format!("loop_s = {} is out of range 10..3600", self.loop_s));
        }
        let mut ids = HashSet::new();
        let positions = self
            .cameras
            .iter()
            .map(|c| (&c.id, c.lat, c.lon))
            .chain(self.pillars.iter().map(|p| (&p.id, p.lat, p.lon)));
        for (id, lat, lon) in positions {
            if id.is_empty() || !ids.insert(id.as_str()) {
                return Err(format!("id {id:?} is empty or used twice"));
            }
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(format!("{id}: lat/lon {lat},{lon} is not a place on Earth"));
            }
        }
        for c in &self.cameras {
            if let Some(v) = c.vehicles_per_minute {
                if !(0.0..=120.0).contains(&v) {
                    return Err(format!(
                        "{}: vehicles_per_minute = {v} is out of range 0..120",
                        c.id
                    ));
                }
            }
        }
        // A pass needs a few seconds to drive in and out of view.
        let window = 4.0..=(self.loop_s - 4.0);
        for (i, p) in self.passes.iter().enumerate() {
            let what = format!("pass {} (plate {:?})", i + 1, p.plate);
            if !self.cameras.iter().any(|c| c.id == p.camera) {
                return Err(format!(
                    "{what}: camera {:?} is not a [[camera]] id",
                    p.camera
                ));
            }
            if !window.contains(&p.at_s) {
                return Err(format!(
                    "{what}: at_s = {} must lie within 4 s of the loop's ends (4..{})",
                    p.at_s,
                    self.loop_s - 4.0
                ));
            }
            safecity_core::normalize_plate(&p.plate).map_err(|e| format!("{what}: {e}"))?;
        }
        let mut pressed = HashSet::new();
        for a in &self.alarms {
            if !self.pillars.iter().any(|p| p.id == a.pillar) {
                return Err(format!(
                    "alarm: pillar {:?} is not a [[pillar]] id",
                    a.pillar
                ));
            }
            if !pressed.insert(&a.pillar) {
                return Err(format!(
                    "alarm: pillar {:?} has more than one alarm",
                    a.pillar
                ));
            }
            if !window.contains(&a.at_s) {
                return Err(format!(
                    "alarm at pillar {:?}: at_s = {} is outside 4..{}",
                    a.pillar,
                    a.at_s,
                    self.loop_s - 4.0
                ));
            }
        }
        Ok(())
    }

    /// The streams to serve: cameras first, then pillars, in file order.
    pub fn streams(&self) -> Vec<StreamSpec> {
        let cameras = self.cameras.iter().map(|c| StreamSpec {
            id: c.id.clone(),
            name: c.name.clone(),
            lat: c.lat,
            lon: c.lon,
            source: StreamSource::Road {
                lighting: c.lighting,
                rain: c.rain,
                vehicles_per_minute: c.vehicles_per_minute.unwrap_or(DEFAULT_VEHICLES_PER_MINUTE),
                scripted: self
                    .passes
                    .iter()
                    .filter(|p| p.camera == c.id)
                    .map(|p| ScriptedPass {
                        at_s: p.at_s,
                        plate: safecity_core::normalize_plate(&p.plate).expect("validated"),
                        class: p.class,
                        colour: p.colour,
                        direction: p.direction,
                    })
                    .collect(),
            },
        });
        let pillars = self.pillars.iter().map(|p| StreamSpec {
            id: p.id.clone(),
            name: p.name.clone(),
            lat: p.lat,
            lon: p.lon,
            source: StreamSource::Pillar {
                press_at_s: self
                    .alarms
                    .iter()
                    .find(|a| a.pillar == p.id)
                    .map(|a| a.at_s),
            },
        });
        cameras.chain(pillars).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_scenario_scripts_one_plate_past_four_cameras() {
        let s = Scenario::hit_and_run();
        let streams = s.streams();
        assert_eq!(streams.len(), 5);
        let plates: HashSet<_> = s.passes.iter().map(|p| p.plate.as_str()).collect();
        assert_eq!(plates.len(), 1);
        assert_eq!(s.passes.len(), 4);
        assert!(matches!(
            streams[4].source,
            StreamSource::Pillar {
                press_at_s: Some(_)
            }
        ));
    }

    fn parse(text: &str) -> std::result::Result<Scenario, String> {
        Scenario::parse(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    const CAM: &str = "loop_s = 60\nname = \"t\"\n[[camera]]\nid = \"c1\"\nname = \"C\"\nlat = 43.2\nlon = 76.9\n";

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err = parse(&format!("{CAM}[[pass]]\ncamera = \"c9\"\nat_s = 10\nplate = \"123ABC02\"\nclass = \"car\"\ncolour = \"red\"\n")).unwrap_err();
        assert!(err.contains("test.toml") && err.contains("\"c9\""), "{err}");

        let err = parse(&format!("{CAM}[[pass]]\ncamera = \"c1\"\nat_s = 10\nplate = \"123ABC02\"\nclass = \"tank\"\ncolour = \"red\"\n")).unwrap_err();
        assert!(err.contains("tank") && err.contains("motorcycle"), "{err}");

        let err = parse(&format!("{CAM}[[pass]]\ncamera = \"c1\"\nat_s = 59\nplate = \"123ABC02\"\nclass = \"car\"\ncolour = \"red\"\n")).unwrap_err();
        assert!(err.contains("at_s = 59"), "{err}");

        let err = parse(&format!("{CAM}[[pass]]\ncamera = \"c1\"\nat_s = 10\nplate = \"12#\"\nclass = \"car\"\ncolour = \"red\"\n")).unwrap_err();
        assert!(err.contains("'#'"), "{err}");

        let err = parse(&format!("{CAM}colour = \"red\"\n")).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");

        let err = parse("name = \"t\"\nloop_s = 60\n").unwrap_err();
        assert!(err.contains("no [[camera]]"), "{err}");
    }
}
