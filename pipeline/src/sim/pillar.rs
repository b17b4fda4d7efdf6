//! Panic-pillar camera scenes. (Placeholder body, being written.)

use image::RgbImage;

/// A pillar camera: a person walks up to the pillar and presses its button.
pub struct PillarScene {
    width: u32,
    height: u32,
}

impl PillarScene {
    /// `press_at_s`: when the button is pressed, seconds from the clip start.
    pub fn new(width: u32, height: u32, fps: u32, seed: u64, press_at_s: Option<f64>) -> PillarScene {
        let _ = (fps, seed, press_at_s);
        PillarScene { width, height }
    }

    /// Renders frame `index`; frames are rendered in increasing order.
    pub fn render_frame(&mut self, index: u64) -> RgbImage {
        let v = (index % 255) as u8;
        RgbImage::from_pixel(self.width, self.height, image::Rgb([40, v, 200]))
    }
}
