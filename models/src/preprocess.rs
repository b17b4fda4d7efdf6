//! Pictures to input tensors: crop, letterbox or stretch, channel order and
//! normalisation from the model's description, written into a caller's
//! reused buffer in one pass.

use safecity_core::{Layout, Picture, YuvToRgb};

use crate::description::{Channels, InputDescription, Resize};

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
/// `out` must hold [`input_len`] floats. Where the region reaches past the
/// frame, a stretched crop repeats the frame's edge pixels and a letterbox
/// pads: a region larger than the frame, around it, shrinks the picture
/// within the input.
pub fn preprocess_into(
    frame: &Picture<'_>,
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
    // are); plain bilinear when enlarging. Vertical pass first, over the
    // source columns the output reads: consecutive bytes times one weight
    // a row, which the compiler vectorises; then the horizontal pass on
    // that one line. I420 pictures are filtered plane by plane (chroma at
    // half size) and converted to RGB after: the filter is linear, so only
    // the output's pixels are converted.
    let pad_outside = input.resize == Resize::Letterbox;
    let columns = AxisTaps::new(iw, offset[0], scale[0], rx, rw, frame.width, pad_outside);
    let rows = AxisTaps::new(ih, offset[1], scale[1], ry, rh, frame.height, pad_outside);
    let mut hline = vec![0.0f32; iw * 3];
    let mut lines = match frame.layout {
        Layout::Rgb { stride } => Lines::Rgb(PlaneFilter::new(frame.data, stride, columns, rows)),
        Layout::I420(p) => {
            let (cw, ch) = (frame.width.div_ceil(2), frame.height.div_ceil(2));
            let chroma = |at: usize| {
                PlaneFilter::new(
                    &frame.data[at..],
                    p.uv_stride,
                    AxisTaps::new(
                        iw,
                        offset[0],
                        scale[0] * 2.0,
                        rx / 2.0,
                        rw / 2.0,
                        cw,
                        pad_outside,
                    ),
                    AxisTaps::new(
                        ih,
                        offset[1],
                        scale[1] * 2.0,
                        ry / 2.0,
                        rh / 2.0,
                        ch,
                        pad_outside,
                    ),
                )
            };
            Lines::I420 {
                y: PlaneFilter::new(frame.data, p.y_stride, columns, rows),
                u: chroma(p.u_offset),
                v: chroma(p.v_offset),
                convert: p.converter(),
            }
        }
    };
    let plane = iw * ih;
    for y in 0..ih {
        let row = lines.row(y, &mut hline);
        let inside_columns = lines.columns();
        for c in 0..channels {
            let (mul, sub) = norm[c];
            let value = |v: &[f32]| -> f32 {
                let p = match input.channels {
                    Channels::Rgb => v[c],
                    Channels::Bgr => v[2 - c],
                    Channels::Gray => 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2],
                };
                p * mul - sub
            };
            let pixels = hline.chunks_exact(3).zip(inside_columns);
            if input.nhwc {
                for (x, (v, &f)) in pixels.enumerate() {
                    let inside = row && f != usize::MAX;
                    out[(y * iw + x) * channels + c] = if inside { value(v) } else { pad[c] };
                }
            } else {
                let dst = &mut out[c * plane + y * iw..c * plane + (y + 1) * iw];
                for (o, (v, &f)) in dst.iter_mut().zip(pixels) {
                    let inside = row && f != usize::MAX;
                    *o = if inside { value(v) } else { pad[c] };
                }
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

/// The taps of every output pixel along one axis, flat: each output pixel
/// reads `n` consecutive source pixels from its first one (weights padded
/// with zeros), so the inner loops have a fixed length and no lookups.
struct AxisTaps {
    /// First source pixel of each output pixel; `usize::MAX` for padding.
    first: Vec<usize>,
    n: usize,
    weights: Vec<f32>,
}

impl AxisTaps {
    /// Taps of `outputs` pixels over source pixels `start..start + len`
    /// of `size`; with `pad_outside`, output pixels whose centre falls off
    /// the source are padding, else they repeat its edge.
    fn new(
        outputs: usize,
        offset: f32,
        scale: f32,
        start: f32,
        len: f32,
        size: u32,
        pad_outside: bool,
    ) -> AxisTaps {
        let (lo, hi) = if pad_outside {
            (start.max(0.0), (start + len).min(size as f32))
        } else {
            (start, start + len)
        };
        let taps: Vec<Option<Taps>> = (0..outputs)
            .map(|o| taps(o, offset, scale, start, (lo, hi), size))
            .collect();
        let n = taps
            .iter()
            .flatten()
            .map(|t| t.0.len())
            .max()
            .unwrap_or(1)
            .min(size as usize);
        let mut first = Vec::with_capacity(outputs);
        let mut weights = vec![0.0f32; outputs * n];
        for (o, t) in taps.iter().enumerate() {
            let Some(t) = t else {
                first.push(usize::MAX);
                continue;
            };
            // Taps are consecutive; near the far edge the window starts
            // earlier and its first weights stay zero.
            let f = t.0[0].0.min(size as usize - n);
            for &(i, w) in &t.0 {
                weights[o * n + i - f] = w;
            }
            first.push(f);
        }
        AxisTaps { first, n, weights }
    }

    fn get(&self, o: usize) -> Option<(usize, &[f32])> {
        let f = self.first[o];
        (f != usize::MAX).then(|| (f, &self.weights[o * self.n..(o + 1) * self.n]))
    }

    /// Source pixels `[lo, hi)` that some output pixel reads.
    fn span(&self) -> (usize, usize) {
        let used = self.first.iter().filter(|&&f| f != usize::MAX);
        let lo = used.clone().min().copied().unwrap_or(0);
        let hi = used.max().map_or(lo, |&f| f + self.n);
        (lo, hi)
    }

    /// A line of `K`-channel floats for source pixels from `lo` on,
    /// filtered into `out` (`K` floats per output pixel; padding pixels are
    /// left as they are).
    fn filter_line<const K: usize>(&self, line: &[f32], lo: usize, out: &mut [f32]) {
        let n = self.n;
        for (o, (&f, out)) in self.first.iter().zip(out.chunks_exact_mut(K)).enumerate() {
            if f == usize::MAX {
                continue;
            }
            let px = &line[(f - lo) * K..(f - lo + n) * K];
            let w = &self.weights[o * n..(o + 1) * n];
            let mut v = [0.0f32; K];
            if K == 1 {
                // One plane: four lanes at a time, which vectorise.
                let mut lanes = [0.0f32; 4];
                for (p, w) in px.chunks_exact(4).zip(w.chunks_exact(4)) {
                    for i in 0..4 {
                        lanes[i] += p[i] * w[i];
                    }
                }
                let tail = n - n % 4;
                v[0] = lanes.iter().sum::<f32>()
                    + px[tail..]
                        .iter()
                        .zip(&w[tail..])
                        .map(|(p, w)| p * w)
                        .sum::<f32>();
            } else {
                for (p, &w) in px.chunks_exact(K).zip(w) {
                    for c in 0..K {
                        v[c] += p[c] * w;
                    }
                }
            }
            out.copy_from_slice(&v);
        }
    }
}

/// The filtered output rows of a picture, as RGB floats.
// One lives on the stack per call; boxing the planes would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Lines<'a> {
    Rgb(PlaneFilter<'a, 3>),
    I420 {
        y: PlaneFilter<'a, 1>,
        u: PlaneFilter<'a, 1>,
        v: PlaneFilter<'a, 1>,
        convert: YuvToRgb,
    },
}

impl Lines<'_> {
    /// First source pixel of each output column at full resolution;
    /// `usize::MAX` for letterbox padding.
    fn columns(&self) -> &[usize] {
        match self {
            Lines::Rgb(rgb) => &rgb.columns.first,
            Lines::I420 { y, .. } => &y.columns.first,
        }
    }

    /// Output row `y` into `out` (3 floats a pixel; padding pixels are left
    /// as they are); false for a padding row.
    fn row(&mut self, y: usize, out: &mut [f32]) -> bool {
        match self {
            Lines::Rgb(rgb) => rgb.row(y, out),
            Lines::I420 {
                y: l,
                u,
                v,
                convert,
            } => {
                if !(l.row(y, &mut []) && u.row(y, &mut []) && v.row(y, &mut [])) {
                    return false;
                }
                let pixels = l.hline.iter().zip(&u.hline).zip(&v.hline);
                for ((o, ((&l, &u), &v)), &f) in
                    out.chunks_exact_mut(3).zip(pixels).zip(&l.columns.first)
                {
                    if f != usize::MAX {
                        let rgb = convert.rgb(l, u, v).map(|c| c.clamp(0.0, 255.0));
                        o.copy_from_slice(&rgb);
                    }
                }
                true
            }
        }
    }
}

/// The separable filter over one plane of `K` interleaved channels.
struct PlaneFilter<'a, const K: usize> {
    data: &'a [u8],
    stride: usize,
    columns: AxisTaps,
    rows: AxisTaps,
    /// First source column read.
    lo: usize,
    /// Vertical pass: source columns `lo..` of one output row.
    vline: Vec<f32>,
    /// Horizontal pass, when the caller gives no line of its own.
    hline: Vec<f32>,
}

impl<'a, const K: usize> PlaneFilter<'a, K> {
    fn new(data: &'a [u8], stride: usize, columns: AxisTaps, rows: AxisTaps) -> Self {
        let (lo, hi) = columns.span();
        let outputs = columns.first.len();
        PlaneFilter {
            data,
            stride,
            lo,
            vline: vec![0.0; (hi - lo) * K],
            hline: if K == 1 {
                vec![0.0; outputs]
            } else {
                Vec::new()
            },
            columns,
            rows,
        }
    }

    /// Filters output row `y` into `out`, or into `self.hline` when `out`
    /// is empty; false for a padding row.
    fn row(&mut self, y: usize, out: &mut [f32]) -> bool {
        let Some((first, weights)) = self.rows.get(y) else {
            return false;
        };
        self.vline.fill(0.0);
        for (k, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let start = (first + k) * self.stride + self.lo * K;
            let src = &self.data[start..start + self.vline.len()];
            for (a, &p) in self.vline.iter_mut().zip(src) {
                *a += p as f32 * w;
            }
        }
        let out = if out.is_empty() {
            &mut self.hline[..]
        } else {
            out
        };
        self.columns.filter_line::<K>(&self.vline, self.lo, out);
        true
    }
}

/// The taps of output pixel `o` along one axis, or `None` when it falls in
/// the letterbox padding: its centre maps outside `[start, start + len]`.
/// Taps that fall outside the frame are dropped and the rest weigh more (as
/// PIL does); a region wholly outside the frame repeats its nearest edge.
fn taps(
    o: usize,
    offset: f32,
    scale: f32,
    start: f32,
    within: (f32, f32),
    size: u32,
) -> Option<Taps> {
    let centre = (o as f32 + 0.5 - offset) / scale + start;
    if centre < within.0 || centre > within.1 {
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
    use safecity_core::{Planes420, YuvMatrix};

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
        let frame = Picture::rgb(&data, 200, 100);
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
    fn a_letterbox_region_around_the_frame_shrinks_it_within_padding() {
        // A 100x50 red picture, fitted as the 200x100 region around it
        // into 100x100: 50x25 of red in the middle, grey all around.
        let data: Vec<u8> = [255u8, 0, 0].repeat(100 * 50);
        let frame = Picture::rgb(&data, 100, 50);
        let spec = input(100, 100, Channels::Rgb, Resize::Letterbox);
        let mut out = vec![0.0; input_len(&spec)];
        let lb = preprocess_into(&frame, Some([-50.0, -25.0, 200.0, 100.0]), &spec, &mut out);
        assert_eq!((lb.scale, lb.offset), ([0.5, 0.5], [0.0, 25.0]));
        let at = |c: usize, y: usize, x: usize| out[c * 10_000 + y * 100 + x];
        for (y, x) in [(40, 10), (40, 90), (30, 50), (70, 50)] {
            assert_eq!(at(0, y, x), 114.0, "padding at {x},{y}");
        }
        for (y, x) in [(38, 26), (61, 73), (50, 50)] {
            assert_eq!((at(0, y, x), at(1, y, x)), (255.0, 0.0), "red at {x},{y}");
        }
        // Boxes map back onto the frame.
        assert_eq!(
            lb.to_source([25.0, 37.5, 75.0, 62.5]),
            [0.0, 0.0, 100.0, 50.0]
        );
        // A stretched crop past the edge repeats the edge instead.
        let spec = input(20, 10, Channels::Rgb, Resize::Stretch);
        let mut out = vec![0.0; input_len(&spec)];
        preprocess_into(&frame, Some([80.0, 40.0, 40.0, 20.0]), &spec, &mut out);
        assert!(out[..200].iter().all(|&v| v == 255.0), "{out:?}");
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
        let frame = Picture::rgb(&data, 20, 10);
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
        let frame = Picture::rgb(&data, 64, 16);
        let spec = input(16, 4, Channels::Gray, Resize::Stretch);
        let mut out = vec![0.0; input_len(&spec)];
        preprocess_into(&frame, None, &spec, &mut out);
        assert!(out.iter().all(|v| (v - 127.5).abs() < 12.0), "{out:?}");
        // Enlarging stays bilinear: a 2x2 picture to 4x4 keeps its corners
        // and blends in between.
        let data = [0u8, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0];
        let frame = Picture::rgb(&data, 2, 2);
        let spec = input(4, 4, Channels::Gray, Resize::Stretch);
        let mut out = vec![0.0; input_len(&spec)];
        preprocess_into(&frame, None, &spec, &mut out);
        assert!(
            out[0].abs() < 1e-3 && (out[3] - 255.0).abs() < 1e-3,
            "{out:?}"
        );
        assert!((out[1] - 63.75).abs() < 1e-3, "{out:?}");
    }

    /// The same filter written the plain way: every output pixel sums its
    /// row taps times its column taps.
    fn reference(
        frame: &Picture<'_>,
        region: [f32; 4],
        iw: usize,
        ih: usize,
    ) -> Vec<Option<[f32; 3]>> {
        let [rx, ry, rw, rh] = region;
        let s = [iw as f32 / rw, ih as f32 / rh];
        let mut out = Vec::new();
        for y in 0..ih {
            for x in 0..iw {
                let row = taps(y, 0.0, s[1], ry, (ry, ry + rh), frame.height);
                let col = taps(x, 0.0, s[0], rx, (rx, rx + rw), frame.width);
                out.push(row.zip(col).map(|(row, col)| {
                    let mut v = [0.0f32; 3];
                    for &(sy, wy) in &row.0 {
                        for &(sx, wx) in &col.0 {
                            for (c, vc) in v.iter_mut().enumerate() {
                                *vc += frame.pixel(sx as u32, sy as u32)[c] as f32 * wy * wx;
                            }
                        }
                    }
                    v
                }));
            }
        }
        out
    }

    #[test]
    fn matches_the_plain_filter_on_noise_at_any_scale_and_region() {
        let (w, h) = (97u32, 61u32);
        let mut seed = 7u32;
        let data: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        let frame = Picture::rgb(&data, w, h);
        for (region, iw, ih) in [
            ([0.0, 0.0, 97.0, 61.0], 32, 20),   // shrink about 3:1
            ([0.0, 0.0, 97.0, 61.0], 200, 150), // enlarge
            ([10.5, 3.2, 40.0, 20.0], 16, 8),   // a plate-like crop
            ([80.0, 50.0, 30.0, 20.0], 12, 9),  // running off the far edge
            ([-5.0, -4.0, 20.0, 10.0], 9, 7),   // off the near edge
            ([96.5, 60.5, 0.5, 0.5], 3, 3),     // a sliver at the corner
        ] {
            let want = reference(&frame, region, iw as usize, ih as usize);
            let plane = (iw * ih) as usize;
            let mut planar = vec![0.0; plane * 3];
            let mut spec = input(iw, ih, Channels::Rgb, Resize::Stretch);
            preprocess_into(&frame, Some(region), &spec, &mut planar);
            let mut packed = vec![0.0; plane * 3];
            spec.nhwc = true;
            preprocess_into(&frame, Some(region), &spec, &mut packed);
            for (i, v) in want.iter().enumerate() {
                let v = v.unwrap_or([114.0; 3]);
                for c in 0..3 {
                    let got = planar[c * plane + i];
                    assert_eq!(got, packed[i * 3 + c], "NHWC holds the same values");
                    assert!(
                        (got - v[c]).abs() < 0.01,
                        "{region:?} {iw}x{ih} pixel {i} channel {c}: {got} vs {}",
                        v[c]
                    );
                }
            }
        }
    }

    #[test]
    fn i420_frames_preprocess_like_their_rgb_conversion() {
        // Noisy luma, smooth chroma (as in camera pictures), no colours
        // clipped by the conversion: filtering the
        // planes and converting after gives what converting first gives, up
        // to how the two interpolate chroma.
        let (w, h) = (67u32, 45u32);
        for matrix in [YuvMatrix::Bt709, YuvMatrix::Bt601] {
            let (layout, len) = Layout::i420_packed(w, h, matrix, false);
            let Layout::I420(Planes420 {
                u_offset,
                v_offset,
                uv_stride,
                ..
            }) = layout
            else {
                unreachable!()
            };
            let mut data = vec![0u8; len];
            let mut seed = 11u32;
            for luma in &mut data[..(w * h) as usize] {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *luma = 70 + (seed >> 24) as u8 % 110;
            }
            for cy in 0..h.div_ceil(2) as usize {
                for cx in 0..uv_stride {
                    data[u_offset + cy * uv_stride + cx] = (100 + cx + cy) as u8;
                    data[v_offset + cy * uv_stride + cx] = (160 - cx / 2 - cy) as u8;
                }
            }
            let yuv = Picture::new(&data, w, h, layout);
            let rgb_bytes = yuv.to_rgb();
            let rgb = Picture::rgb(&rgb_bytes, w, h);
            for (region, iw, ih, resize) in [
                (None, 24, 16, Resize::Letterbox),
                (Some([5.5, 7.0, 30.0, 12.0]), 32, 16, Resize::Stretch),
                (Some([50.0, 30.0, 20.0, 20.0]), 8, 8, Resize::Stretch),
            ] {
                let spec = input(iw, ih, Channels::Rgb, resize);
                let mut a = vec![0.0; input_len(&spec)];
                let mut b = vec![0.0; input_len(&spec)];
                let la = preprocess_into(&yuv, region, &spec, &mut a);
                let lb = preprocess_into(&rgb, region, &spec, &mut b);
                assert_eq!(la, lb);
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(worst < 4.0, "{matrix:?} {region:?}: off by {worst}");
            }
        }
    }
}
