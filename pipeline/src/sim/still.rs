//! Independent still images with ground truth. (Placeholder body, being written.)

use std::path::Path;

use image::RgbImage;

use super::error::Result;
use super::truth::FrameTruth;

/// What `write_stills` makes.
#[derive(Debug, Clone, PartialEq)]
pub struct StillsConfig {
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

/// Renders still image `index` of the set made from `seed`.
pub fn render_still(width: u32, height: u32, seed: u64, index: u64) -> (RgbImage, FrameTruth) {
    let _ = (seed, index);
    (
        RgbImage::new(width, height),
        FrameTruth {
            width,
            height,
            lighting: super::truth::Lighting::Day,
            rain: false,
            vehicles: vec![],
        },
    )
}

/// Writes `count` JPEGs and `ground_truth.jsonl` into `out`.
pub fn write_stills(config: &StillsConfig, out: &Path, progress: &(dyn Fn(u32) + Sync)) -> Result<()> {
    let _ = (config, out, progress);
    Ok(())
}

/// Tiles images into one picture, `columns` wide, each scaled to `tile_width`.
pub fn contact_sheet(images: &[RgbImage], columns: u32, tile_width: u32) -> RgbImage {
    let _ = (images, columns);
    RgbImage::new(tile_width, tile_width)
}
