//! Plates in the Kazakhstan formats. (Placeholder body, being written.)

use image::{Rgba, RgbaImage};
use rand::Rng;
use safecity_core::PlateFormat;

use super::truth::PlateLayout;

/// A plate to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateSpec {
    /// Canonical text, `123ABC02`; it parses as `format`.
    pub text: String,
    pub format: PlateFormat,
    pub layout: PlateLayout,
    /// 0 clean .. 1 very dirty.
    pub dirt: f32,
    /// Varies small details (wear, stroke weight) deterministically.
    pub style_seed: u64,
}

impl PlateSpec {
    /// A random plate with the mix of formats seen on Almaty roads.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> PlateSpec {
        let text = format!("{:03}ABC02", rng.gen_range(0..1000));
        PlateSpec {
            text,
            format: PlateFormat::KzPrivate,
            layout: PlateLayout::SingleLine,
            dirt: 0.0,
            style_seed: rng.gen(),
        }
    }
}

/// Physical size `(width, height)` in millimetres of a plate layout.
pub fn plate_size_mm(layout: PlateLayout) -> (f32, f32) {
    match layout {
        PlateLayout::SingleLine => (520.0, 112.0),
        PlateLayout::TwoLine => (280.0, 200.0),
    }
}

/// Draws the plate flat and front-facing; its corners are the image corners.
pub fn render_plate(spec: &PlateSpec) -> RgbaImage {
    let (w, h) = plate_size_mm(spec.layout);
    RgbaImage::from_pixel(w as u32, h as u32, Rgba([255, 255, 255, 255]))
}
