//! Road scenes in time order. (Placeholder body, being written.)

use image::RgbImage;

use super::error::{Result, SimError};
use super::truth::{Direction, FrameTruth, Lighting, VehicleClass, VehicleColour};

/// Settings of one simulated road camera.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Length of the rendered clip; no pass is cut by its end.
    pub duration_s: f64,
    pub seed: u64,
    /// `None`: chosen from the seed.
    pub lighting: Option<Lighting>,
    /// `None`: chosen from the seed.
    pub rain: Option<bool>,
    /// Random traffic besides the scripted passes.
    pub vehicles_per_minute: f64,
}

/// A vehicle a scenario sends past this camera.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedPass {
    /// Seconds from the clip start at which its plate is best seen.
    pub at_s: f64,
    /// Canonical plate text.
    pub plate: String,
    pub class: VehicleClass,
    pub colour: VehicleColour,
    pub direction: Direction,
}

/// A road camera's scene, rendered frame by frame.
pub struct Scene {
    config: SceneConfig,
}

impl Scene {
    pub fn new(config: SceneConfig, _scripted: Vec<ScriptedPass>) -> Result<Scene> {
        if config.width == 0 || config.height == 0 || config.fps == 0 {
            return Err(SimError::Config("width, height and fps must be > 0".into()));
        }
        Ok(Scene { config })
    }

    pub fn config(&self) -> &SceneConfig {
        &self.config
    }

    /// Renders frame `index` (time `index / fps`). Frames are rendered in
    /// increasing order.
    pub fn render_frame(&mut self, index: u64) -> (RgbImage, FrameTruth) {
        let c = &self.config;
        let v = (index % 255) as u8;
        (
            RgbImage::from_pixel(c.width, c.height, image::Rgb([v, 90, 90])),
            FrameTruth {
                width: c.width,
                height: c.height,
                lighting: Lighting::Day,
                rain: false,
                vehicles: vec![],
            },
        )
    }
}
