//! Pictures to input tensors: crop, letterbox or stretch, channel order and
//! normalisation from the model's description, written into a caller's
//! reused buffer in one pass.

use crate::description::{Channels, InputDescription, Resize};

/// An RGB picture in memory, 3 bytes a pixel, rows `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct RgbFrame<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

impl<'a> RgbFrame<'a> {
    /// A tightly packed frame; panics if `data` is shorter than `width * height * 3`.
    pub fn packed(data: &'a [u8], width: u32, height: u32) -> RgbFrame<'a> {
        assert!(
            data.len() >= width as usize * height as usize * 3,
            "frame data too short"
        );
        RgbFrame {
            data,
            width,
            height,
            stride: width as usize * 3,
        }
    }
}

/// How input pixels map back to the source picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Input pixels per source pixel.
    pub scale: [f32; 2],
    /// Top-left of the picture in the input, in input pixels.
    pub offset: [f32; 2],
    /// Top-left of the region of the source that was fitted.
    pub origin: [f32; 2],
    pub source_size: [u32; 2],
}

impl Letterbox {
    /// Maps an `x1, y1, x2, y2` box from input pixels to source pixels,
    /// clipped to the source.
    pub fn to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let [sw, sh] = self.source_size.map(|v| v as f32);
        let x = |v: f32| ((v - self.offset[0]) / self.scale[0] + self.origin[0]).clamp(0.0, sw);
        let y = |v: f32| ((v - self.offset[1]) / self.scale[1] + self.origin[1]).clamp(0.0, sh);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

/// Number of floats one picture takes in the input tensor.
pub fn input_len(input: &InputDescription) -> usize {
    input.width as usize * input.height as usize * input.channels.count()
}

/// Fits `region` (`x, y, w, h` in source pixels; the whole frame when
/// `None`) into `out` as the model wants it, with bilinear sampling.
/// `out` must hold [`input_len`] floats.
pub fn preprocess_into(
    frame: &RgbFrame<'_>,
    region: Option<[f32; 4]>,
    input: &InputDescription,
    out: &mut [f32],
) -> Letterbox {
    let (iw, ih) = (input.width as usize, input.height as usize);
    assert_eq!(out.len(), input_len(input), "output buffer size");
    let [rx, ry, rw, rh] = region.unwrap_or([0.0, 0.0, frame.width as f32, frame.height as f32]);
    let (rw, rh) = (rw.max(1.0), rh.max(1.0));
    let (scale, offset) = match input.resize {
        Resize::Stretch => ([iw as f32 / rw, ih as f32 / rh], [0.0, 0.0]),
        Resize::Letterbox => {
            let s = (iw as f32 / rw).min(ih as f32 / rh);
            let (cw, ch) = (rw * s, rh * s);
            // Centred, on whole pixels as the usual exporters do.
            (
                [s, s],
                [
                    ((iw as f32 - cw) / 2.0).floor(),
                    ((ih as f32 - ch) / 2.0).floor(),
                ],
            )
        }
    };
    let channels = input.channels.count();
    // Per output channel: value = (pixel * scale - mean) / std.
    let norm: Vec<(f32, f32)> = (0..channels)
        .map(|c| (input.scale / input.std[c], input.mean[c] / input.std[c]))
        .collect();
    let pad: Vec<f32> = norm
        .iter()
        .map(|(mul, sub)| input.pad as f32 * mul - sub)
        .collect();
    // Separable triangle filter, widened when shrinking so every source
    // pixel counts (antialiased, as PIL's and OpenCV's area-aware resizes
    // are); plain bilinear when enlarging.
    let columns: Vec<Option<Taps>> = (0..iw)
        .map(|x| taps(x, offset[0], scale[0], rx, rw, frame.width))
        .collect();
    let rows: Vec<Option<Taps>> = (0..ih)
        .map(|y| taps(y, offset[1], scale[1], ry, rh, frame.height))
        .collect();
    // Rows filtered horizontally once, kept while later output rows need
    // them.
    let mut filtered: Vec<Option<Vec<f32>>> = vec![None; frame.height as usize];
    let plane = iw * ih;
    for (y, row) in rows.iter().enumerate() {
        if let Some(row) = row {
            for &(sy, _) in &row.0 {
                if filtered[sy].is_none() {
                    let src = &frame.data[sy * frame.stride..];
                    let mut line = vec![0.0f32; iw * 3];
                    for (x, col) in columns.iter().enumerate() {
                        if let Some(col) = col {
                            let mut v = [0.0f32; 3];
                            for &(sx, w) in &col.0 {
                                for (c, vc) in v.iter_mut().enumerate() {
                                    *vc += src[sx * 3 + c] as f32 * w;
                                }
                            }
                            line[x * 3..x * 3 + 3].copy_from_slice(&v);
                        }
                    }
                    filtered[sy] = Some(line);
                }
            }
            // Rows above the lowest one this output row needs are done with
            // (output rows walk down the source).
            let lowest = row.0.iter().map(|t| t.0).min().unwrap_or(0);
            for done in filtered.iter_mut().take(lowest) {
                *done = None;
            }
        }
        for (x, col) in columns.iter().enumerate() {
            let rgb = match (row, col) {
                (Some(row), Some(_)) => {
                    let mut v = [0.0f32; 3];
                    for &(sy, w) in &row.0 {
                        let line = filtered[sy].as_ref().expect("filtered above");
                        for (c, vc) in v.iter_mut().enumerate() {
                            *vc += line[x * 3 + c] * w;
                        }
                    }
                    Some(v)
                }
                _ => None,
            };
            for c in 0..channels {
                let value = match rgb {
                    None => pad[c],
                    Some(v) => {
                        let p = match input.channels {
                            Channels::Rgb => v[c],
                            Channels::Bgr => v[2 - c],
                            Channels::Gray => 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2],
                        };
                        p * norm[c].0 - norm[c].1
                    }
                };
                let i = if input.nhwc {
                    (y * iw + x) * channels + c
                } else {
                    c * plane + y * iw + x
                };
                out[i] = value;
            }
        }
    }
    Letterbox {
        scale,
        offset,
        origin: [rx, ry],
        source_size: [frame.width, frame.height],
    }
}

/// Source pixels and weights (summing to 1) for one output column or row.
#[derive(Debug, Clone)]
struct Taps(Vec<(usize, f32)>);

/// The taps of output pixel `o` along one axis, or `None` when it falls in
/// the letterbox padding: its centre maps outside `[start, start + len]`.
/// Taps that fall outside the frame are dropped and the rest weigh more (as
/// PIL does); a region wholly outside the frame repeats its nearest edge.
fn taps(o: usize, offset: f32, scale: f32, start: f32, len: f32, size: u32) -> Option<Taps> {
    let centre = (o as f32 + 0.5 - offset) / scale + start;
    if centre < start || centre > start + len {
        return None;
    }
    let support = (1.0 / scale).max(1.0);
    let first = (centre - support - 0.5).floor() as i64;
    let last = (centre + support - 0.5).ceil() as i64;
    let max = size as i64 - 1;
    let mut taps: Vec<(usize, f32)> = Vec::with_capacity((last - first + 1) as usize);
    let mut total = 0.0;
    for i in first..=last {
        let w = 1.0 - ((i as f32 + 0.5 - centre) / support).abs();
        if w <= 0.0 || i < 0 || i > max {
            continue;
        }
        let i = i as usize;
        total += w;
        taps.push((i, w));
    }
    if taps.is_empty() {
        let nearest = ((centre - 0.5).round() as i64).clamp(0, max) as usize;
        return Some(Taps(vec![(nearest, 1.0)]));
    }
    for t in &mut taps {
        t.1 /= total;
    }
    Some(Taps(taps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(w: u32, h: u32, channels: Channels, resize: Resize) -> InputDescription {
        InputDescription {
            width: w,
            height: h,
            channels,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize,
            pad: 114,
            nhwc: false,
        }
    }

    #[test]
    fn letterbox_pads_and_maps_boxes_back() {
        // A 200x100 red picture into 100x100: 100x50 content, 25 px bars.
        let data: Vec<u8> = [255u8, 0, 0].repeat(200 * 100);
        let frame = RgbFrame::packed(&data, 200, 100);
        let spec = input(100, 100, Channels::Bgr, Resize::Letterbox);
        let mut out = vec![0.0; input_len(&spec)];
        let lb = preprocess_into(&frame, None, &spec, &mut out);
        assert_eq!(lb.scale, [0.5, 0.5]);
        assert_eq!(lb.offset, [0.0, 25.0]);
        let at = |c: usize, y: usize, x: usize| out[c * 10_000 + y * 100 + x];
        assert_eq!(at(0, 0, 50), 114.0, "padding above");
        assert_eq!(at(0, 99, 50), 114.0, "padding below");
        assert_eq!(at(2, 50, 50), 255.0, "BGR: red is the last channel");
        assert_eq!(at(0, 50, 50), 0.0);
        assert_eq!(
            lb.to_source([10.0, 25.0, 60.0, 75.0]),
            [20.0, 0.0, 120.0, 100.0]
        );
        assert_eq!(
            lb.to_source([-10.0, 0.0, 500.0, 90.0]),
            [0.0, 0.0, 200.0, 100.0]
        );
    }

    #[test]
    fn stretches_a_region_with_normalisation() {
        // Black then white from x = 5; crop the right half. Shrinking
        // filters reach a little past the region, so its edge stays clear
        // of the black.
        let mut data = vec![0u8; 20 * 10 * 3];
        for y in 0..10 {
            for x in 5..20 {
                data[(y * 20 + x) * 3..(y * 20 + x) * 3 + 3].fill(255);
            }
        }
        let frame = RgbFrame::packed(&data, 20, 10);
        let mut spec = input(8, 4, Channels::Gray, Resize::Stretch);
        spec.scale = 1.0 / 255.0;
        spec.mean = [0.5; 3];
        spec.std = [0.5; 3];
        let mut out = vec![0.0; input_len(&spec)];
        let lb = preprocess_into(&frame, Some([10.0, 0.0, 10.0, 10.0]), &spec, &mut out);
        assert!(out.iter().all(|v| (v - 1.0).abs() < 1e-5), "{out:?}");
        assert_eq!(lb.to_source([0.0, 0.0, 8.0, 4.0]), [10.0, 0.0, 20.0, 10.0]);
    }

    #[test]
    fn shrinking_averages_fine_detail_instead_of_picking_pixels() {
        // One-pixel black and white stripes, shrunk 4:1, are mid grey (a
        // point sampler would give all black, all white or a moire).
        let mut data = vec![0u8; 64 * 16 * 3];
        for y in 0..16 {
            for x in (1..64).step_by(2) {
                data[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3].fill(255);
            }
        }
        let frame = RgbFrame::packed(&data, 64, 16);
        let spec = input(16, 4, Channels::Gray, Resize::Stretch);
        let mut out = vec![0.0; input_len(&spec)];
        preprocess_into(&frame, None, &spec, &mut out);
        assert!(out.iter().all(|v| (v - 127.5).abs() < 12.0), "{out:?}");
        // Enlarging stays bilinear: a 2x2 picture to 4x4 keeps its corners
        // and blends in between.
        let data = [0u8, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0];
        let frame = RgbFrame::packed(&data, 2, 2);
        let spec = input(4, 4, Channels::Gray, Resize::Stretch);
        let mut out = vec![0.0; input_len(&spec)];
        preprocess_into(&frame, None, &spec, &mut out);
        assert!(
            out[0].abs() < 1e-3 && (out[3] - 255.0).abs() < 1e-3,
            "{out:?}"
        );
        assert!((out[1] - 63.75).abs() < 1e-3, "{out:?}");
    }
}
