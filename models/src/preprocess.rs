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
    // Source x sample positions and weights per output column.
    let columns: Vec<Option<(usize, usize, f32)>> = (0..iw)
        .map(|x| {
            let sx = (x as f32 + 0.5 - offset[0]) / scale[0] - 0.5 + rx;
            sample_pos(sx, rx, rw, frame.width)
        })
        .collect();
    let plane = iw * ih;
    for y in 0..ih {
        let sy = (y as f32 + 0.5 - offset[1]) / scale[1] - 0.5 + ry;
        let row = sample_pos(sy, ry, rh, frame.height);
        for (x, col) in columns.iter().enumerate() {
            let rgb = match (row, col) {
                (Some((y0, y1, fy)), &Some((x0, x1, fx))) => {
                    let px = |xx: usize, yy: usize, c: usize| {
                        frame.data[yy * frame.stride + xx * 3 + c] as f32
                    };
                    let mut v = [0.0f32; 3];
                    for (c, vc) in v.iter_mut().enumerate() {
                        let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
                        let bottom = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
                        *vc = top * (1.0 - fy) + bottom * fy;
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

/// Bilinear neighbours of source coordinate `s`, or `None` outside the
/// region `[start, start + len)` (the letterbox padding).
fn sample_pos(s: f32, start: f32, len: f32, size: u32) -> Option<(usize, usize, f32)> {
    if s < start - 0.5 || s > start + len - 0.5 {
        return None;
    }
    let max = (size - 1) as f32;
    let s = s.clamp(0.0, max);
    let s0 = s.floor();
    let s1 = (s0 + 1.0).min(max);
    Some((s0 as usize, s1 as usize, s - s0))
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
        // Left half black, right half white; crop the right half.
        let mut data = vec![0u8; 20 * 10 * 3];
        for y in 0..10 {
            for x in 10..20 {
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
}
