//! Anti-aliased drawing primitives shared by the plate, font and pillar code.
//!
//! Shapes are described by signed distance (negative inside, in pixels) and
//! only the pixels of their bounding box are visited, so drawing costs what
//! the shape covers. Coverage of a pixel is `0.5 - distance`, clamped, which
//! is a good approximation of the exact area for edges straighter than a
//! pixel. Everything works on [`RgbImage`] and [`RgbaImage`] through
//! [`Canvas`].

use image::{RgbImage, RgbaImage};

/// A 2-D point or vector in pixels.
pub type Pt = [f32; 2];

/// A grey coverage mask, 0 (empty) .. 1 (full), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl Mask {
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            data: vec![0.0; (width * height) as usize],
        }
    }
}

/// Something pixels can be blended into.
pub trait Canvas {
    fn dims(&self) -> (u32, u32);
    /// Blends `rgb` over pixel `(x, y)` (inside the canvas) with weight `a`.
    fn blend(&mut self, x: u32, y: u32, rgb: [u8; 3], a: f32);
}

#[inline]
fn mix(dst: u8, src: u8, a: f32) -> u8 {
    (dst as f32 + (src as f32 - dst as f32) * a + 0.5) as u8
}

impl Canvas for RgbImage {
    fn dims(&self) -> (u32, u32) {
        self.dimensions()
    }

    #[inline]
    fn blend(&mut self, x: u32, y: u32, rgb: [u8; 3], a: f32) {
        let p = self.get_pixel_mut(x, y);
        for (d, s) in p.0.iter_mut().zip(rgb) {
            *d = mix(*d, s, a);
        }
    }
}

impl Canvas for RgbaImage {
    fn dims(&self) -> (u32, u32) {
        self.dimensions()
    }

    /// Porter-Duff "over" with straight alpha, so a shape drawn into a
    /// transparent area (a plate's cut corner) becomes partly opaque.
    #[inline]
    fn blend(&mut self, x: u32, y: u32, rgb: [u8; 3], a: f32) {
        let p = self.get_pixel_mut(x, y);
        if a >= 1.0 {
            p.0 = [rgb[0], rgb[1], rgb[2], 255];
            return;
        }
        let da = p.0[3] as f32 / 255.0;
        let oa = a + da * (1.0 - a);
        if oa <= 0.0 {
            return;
        }
        let k = a / oa;
        for (d, s) in p.0.iter_mut().zip(rgb) {
            *d = mix(*d, s, k);
        }
        p.0[3] = (oa * 255.0 + 0.5) as u8;
    }
}

/// Visits the pixels of the box `[x0, x1) x [y0, y1)` (clipped to the
/// canvas) and blends `rgb` with the coverage `0.5 - sdf(centre)`.
pub fn fill_sdf<C: Canvas>(
    img: &mut C,
    bbox: [f32; 4],
    rgb: [u8; 3],
    opacity: f32,
    sdf: impl Fn(f32, f32) -> f32,
) {
    let (w, h) = img.dims();
    let x0 = (bbox[0].floor().max(0.0)) as u32;
    let y0 = (bbox[1].floor().max(0.0)) as u32;
    let x1 = (bbox[2].ceil().min(w as f32)).max(0.0) as u32;
    let y1 = (bbox[3].ceil().min(h as f32)).max(0.0) as u32;
    for y in y0..y1 {
        let py = y as f32 + 0.5;
        for x in x0..x1 {
            let cov = (0.5 - sdf(x as f32 + 0.5, py)).clamp(0.0, 1.0);
            if cov > 0.0 {
                img.blend(x, y, rgb, cov * opacity);
            }
        }
    }
}

/// Signed distance to an axis-aligned box with rounded corners of radius `r`.
#[inline]
pub fn sd_round_rect(px: f32, py: f32, rect: [f32; 4], r: f32) -> f32 {
    let cx = (rect[0] + rect[2]) * 0.5;
    let cy = (rect[1] + rect[3]) * 0.5;
    let hx = (rect[2] - rect[0]) * 0.5 - r;
    let hy = (rect[3] - rect[1]) * 0.5 - r;
    let dx = (px - cx).abs() - hx;
    let dy = (py - cy).abs() - hy;
    let ox = dx.max(0.0);
    let oy = dy.max(0.0);
    (ox * ox + oy * oy).sqrt() + dx.max(dy).min(0.0) - r
}

/// Signed distance to a capsule (segment `a`-`b` widened by `r`, round ends).
#[inline]
pub fn sd_capsule(px: f32, py: f32, a: Pt, b: Pt, r: f32) -> f32 {
    let (bx, by) = (b[0] - a[0], b[1] - a[1]);
    let (qx, qy) = (px - a[0], py - a[1]);
    let l2 = bx * bx + by * by;
    let t = if l2 > 0.0 {
        ((qx * bx + qy * by) / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (qx - bx * t, qy - by * t);
    (dx * dx + dy * dy).sqrt() - r
}

/// Signed distance to an ellipse, approximate (exact on the axes), good
/// enough for anti-aliasing shapes a few pixels or more across.
#[inline]
pub fn sd_ellipse(px: f32, py: f32, c: Pt, rx: f32, ry: f32) -> f32 {
    let dx = (px - c[0]) / rx;
    let dy = (py - c[1]) / ry;
    let k = (dx * dx + dy * dy).sqrt();
    if k == 0.0 {
        return -rx.min(ry);
    }
    // Gradient length of the implicit function turns the level into pixels.
    let gx = dx / rx;
    let gy = dy / ry;
    let g = (gx * gx + gy * gy).sqrt() / k;
    (k - 1.0) / g.max(1e-6)
}

/// Signed distance to a convex polygon (either winding): the largest
/// distance to its edge lines, exact inside and along edges.
pub fn sd_convex(px: f32, py: f32, pts: &[Pt]) -> f32 {
    let n = pts.len();
    let mut area = 0.0;
    for i in 0..n {
        let a = pts[i];
        let b = pts[(i + 1) % n];
        area += a[0] * b[1] - b[0] * a[1];
    }
    let s = if area >= 0.0 { 1.0 } else { -1.0 };
    let mut d = f32::MIN;
    for i in 0..n {
        let a = pts[i];
        let b = pts[(i + 1) % n];
        let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
        let len = (ex * ex + ey * ey).sqrt();
        if len < 1e-6 {
            continue;
        }
        // Outward normal of a counter-clockwise (in y-down: clockwise) edge.
        let nd = s * (ex * (py - a[1]) - ey * (px - a[0])) / len;
        d = d.max(-nd);
    }
    d
}

fn bbox_of(pts: &[Pt], pad: f32) -> [f32; 4] {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for p in pts {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    [b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad]
}

/// Visits the pixels of a rounded box's bounding box row by row; `band`
/// is how far from the outline pixels must be evaluated, the rest of a row
/// being entirely inside (filled when `fill_inside`) or skipped.
#[allow(clippy::too_many_arguments)]
fn round_rect_rows<C: Canvas>(
    img: &mut C,
    rect: [f32; 4],
    r: f32,
    band: f32,
    rgb: [u8; 3],
    a: f32,
    sdf: impl Fn(f32, f32) -> f32,
    fill_inside: bool,
) {
    let (w, h) = img.dims();
    let x0 = (rect[0] - 1.0).floor().max(0.0) as u32;
    let y0 = (rect[1] - 1.0).floor().max(0.0) as u32;
    let x1 = ((rect[2] + 1.0).ceil().max(0.0) as u32).min(w);
    let y1 = ((rect[3] + 1.0).ceil().max(0.0) as u32).min(h);
    for y in y0..y1 {
        let py = y as f32 + 0.5;
        // Rows clear of the corners and horizontal edges have their
        // outline only near the left and right ends.
        let straight = py > rect[1] + r.max(band) + 1.0 && py < rect[3] - r.max(band) - 1.0;
        let (ia, ib) = if straight {
            (
                ((rect[0] + band + 1.0).floor().max(x0 as f32) as u32).min(x1),
                ((rect[2] - band - 1.0).ceil().max(0.0) as u32)
                    .max(x0)
                    .min(x1),
            )
        } else {
            (x1, x1)
        };
        for x in x0..x1 {
            if x >= ia && x < ib {
                if fill_inside {
                    img.blend(x, y, rgb, a);
                }
                continue;
            }
            let cov = (0.5 - sdf(x as f32 + 0.5, py)).clamp(0.0, 1.0);
            if cov > 0.0 {
                img.blend(x, y, rgb, cov * a);
            }
        }
    }
}

/// Fills the box `rect = [x0, y0, x1, y1]` with corners rounded by `r`.
pub fn fill_round_rect<C: Canvas>(img: &mut C, rect: [f32; 4], r: f32, rgb: [u8; 3], a: f32) {
    let sdf = |x, y| sd_round_rect(x, y, rect, r);
    round_rect_rows(img, rect, r, r, rgb, a, sdf, true);
}

/// Draws the outline of a rounded box; the line of width `lw` lies inside
/// `rect`.
pub fn stroke_round_rect<C: Canvas>(
    img: &mut C,
    rect: [f32; 4],
    r: f32,
    lw: f32,
    rgb: [u8; 3],
    a: f32,
) {
    let inner = [rect[0] + lw, rect[1] + lw, rect[2] - lw, rect[3] - lw];
    let ri = (r - lw).max(0.0);
    let sdf = |x, y| sd_round_rect(x, y, rect, r).max(-sd_round_rect(x, y, inner, ri));
    round_rect_rows(img, rect, r, r.max(lw + 1.0), rgb, a, sdf, false);
}

/// Fills a circle.
pub fn fill_circle<C: Canvas>(img: &mut C, c: Pt, r: f32, rgb: [u8; 3], a: f32) {
    fill_ellipse(img, c, r, r, rgb, a);
}

/// Fills an axis-aligned ellipse.
pub fn fill_ellipse<C: Canvas>(img: &mut C, c: Pt, rx: f32, ry: f32, rgb: [u8; 3], a: f32) {
    let bb = [
        c[0] - rx - 1.0,
        c[1] - ry - 1.0,
        c[0] + rx + 1.0,
        c[1] + ry + 1.0,
    ];
    fill_sdf(img, bb, rgb, a, |x, y| sd_ellipse(x, y, c, rx, ry));
}

/// Draws a line of width `w` with round ends.
pub fn stroke_line<C: Canvas>(img: &mut C, p: Pt, q: Pt, w: f32, rgb: [u8; 3], a: f32) {
    let r = w * 0.5;
    let bb = bbox_of(&[p, q], r + 1.0);
    fill_sdf(img, bb, rgb, a, |x, y| sd_capsule(x, y, p, q, r));
}

/// Fills a convex polygon.
pub fn fill_convex<C: Canvas>(img: &mut C, pts: &[Pt], rgb: [u8; 3], a: f32) {
    if pts.len() < 3 {
        return;
    }
    let bb = bbox_of(pts, 1.0);
    fill_sdf(img, bb, rgb, a, |x, y| sd_convex(x, y, pts));
}

/// Fills any simple or self-intersecting polygon (even-odd rule), with
/// 4 x 4 samples per pixel for the edges.
// Offered for concave outlines in the scene code; the plates need none.
#[allow(dead_code)]
pub fn fill_polygon<C: Canvas>(img: &mut C, pts: &[Pt], rgb: [u8; 3], a: f32) {
    if pts.len() < 3 {
        return;
    }
    let (w, h) = img.dims();
    let bb = bbox_of(pts, 0.0);
    let x0 = bb[0].floor().max(0.0) as i64;
    let x1 = (bb[2].ceil() as i64).min(w as i64);
    let y0 = bb[1].floor().max(0.0) as i64;
    let y1 = (bb[3].ceil() as i64).min(h as i64);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let cols = (x1 - x0) as usize;
    let mut cover = vec![0u8; cols];
    let mut xs: Vec<f32> = Vec::with_capacity(8);
    for y in y0..y1 {
        cover.iter_mut().for_each(|c| *c = 0);
        for sy in 0..4 {
            let fy = y as f32 + (sy as f32 + 0.5) / 4.0;
            xs.clear();
            for i in 0..pts.len() {
                let p = pts[i];
                let q = pts[(i + 1) % pts.len()];
                if (p[1] <= fy) != (q[1] <= fy) {
                    xs.push(p[0] + (fy - p[1]) / (q[1] - p[1]) * (q[0] - p[0]));
                }
            }
            xs.sort_by(|a, b| a.total_cmp(b));
            for pair in xs.chunks_exact(2) {
                // Samples at x + (k + 0.5) / 4 inside [pair[0], pair[1]).
                let s0 = ((pair[0] - x0 as f32) * 4.0 - 0.5).ceil().max(0.0) as i64;
                let s1 = ((pair[1] - x0 as f32) * 4.0 - 0.5).ceil() as i64;
                let s1 = s1.min(cols as i64 * 4);
                for s in s0..s1 {
                    cover[(s / 4) as usize] += 1;
                }
            }
        }
        for (i, &c) in cover.iter().enumerate() {
            if c > 0 {
                img.blend(x0 as u32 + i as u32, y as u32, rgb, a * c as f32 / 16.0);
            }
        }
    }
}

/// Blends `rgb` through `mask` placed with its top-left corner at `(x, y)`.
pub fn blend_mask<C: Canvas>(img: &mut C, mask: &Mask, x: i64, y: i64, rgb: [u8; 3], a: f32) {
    let (w, h) = img.dims();
    for my in 0..mask.height as i64 {
        let iy = y + my;
        if iy < 0 || iy >= h as i64 {
            continue;
        }
        let row = &mask.data[(my as usize) * mask.width as usize..][..mask.width as usize];
        for (mx, &m) in row.iter().enumerate() {
            let ix = x + mx as i64;
            if m > 0.0 && ix >= 0 && ix < w as i64 {
                img.blend(ix as u32, iy as u32, rgb, m * a);
            }
        }
    }
}

/// A cheap integer hash, the basis of the deterministic noise below.
#[inline]
pub fn hash2(x: i32, y: i32, seed: u32) -> u32 {
    let mut h = seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add((x as u32).wrapping_mul(0x85EB_CA6B))
        .wrapping_add((y as u32).wrapping_mul(0xC2B2_AE35));
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    h
}

/// Hash of a lattice point as a value in `[0, 1)`.
#[inline]
pub fn hash01(x: i32, y: i32, seed: u32) -> f32 {
    (hash2(x, y, seed) >> 8) as f32 / (1u32 << 24) as f32
}

/// Smooth value noise in `[0, 1)` with lattice spacing 1.
pub fn value_noise(x: f32, y: f32, seed: u32) -> f32 {
    let xi = x.floor();
    let yi = y.floor();
    let fx = x - xi;
    let fy = y - yi;
    let (xi, yi) = (xi as i32, yi as i32);
    let sx = fx * fx * (3.0 - 2.0 * fx);
    let sy = fy * fy * (3.0 - 2.0 * fy);
    let a = hash01(xi, yi, seed);
    let b = hash01(xi + 1, yi, seed);
    let c = hash01(xi, yi + 1, seed);
    let d = hash01(xi + 1, yi + 1, seed);
    let top = a + (b - a) * sx;
    let bot = c + (d - c) * sx;
    top + (bot - top) * sy
}

/// Fractal value noise: `octaves` layers, each twice as fine and half as
/// strong; result in `[0, 1)`.
pub fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let mut sum = 0.0;
    let mut amp = 0.5;
    let mut norm = 0.0;
    let (mut fx, mut fy) = (x, y);
    for o in 0..octaves {
        sum += amp * value_noise(fx, fy, seed.wrapping_add(o * 1013));
        norm += amp;
        amp *= 0.5;
        fx *= 2.0;
        fy *= 2.0;
    }
    sum / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba};

    #[test]
    fn circle_covers_its_area() {
        let mut img = RgbImage::from_pixel(40, 40, Rgb([0, 0, 0]));
        fill_circle(&mut img, [20.0, 20.0], 10.0, [255, 255, 255], 1.0);
        let sum: f32 = img.pixels().map(|p| p.0[0] as f32 / 255.0).sum();
        let want = std::f32::consts::PI * 100.0;
        assert!((sum - want).abs() < want * 0.02, "{sum} vs {want}");
        assert_eq!(img.get_pixel(20, 20).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(2, 2).0, [0, 0, 0]);
    }

    #[test]
    fn rounded_box_fill_and_outline_match_the_plain_distance() {
        let rect = [3.3, 4.6, 70.2, 41.7];
        let mut fast = RgbImage::new(80, 50);
        let mut plain = RgbImage::new(80, 50);
        fill_round_rect(&mut fast, rect, 6.0, [200, 0, 0], 1.0);
        fill_sdf(
            &mut plain,
            [0.0, 0.0, 80.0, 50.0],
            [200, 0, 0],
            1.0,
            |x, y| sd_round_rect(x, y, rect, 6.0),
        );
        stroke_round_rect(&mut fast, rect, 6.0, 2.5, [0, 90, 0], 0.8);
        let inner = [rect[0] + 2.5, rect[1] + 2.5, rect[2] - 2.5, rect[3] - 2.5];
        fill_sdf(
            &mut plain,
            [0.0, 0.0, 80.0, 50.0],
            [0, 90, 0],
            0.8,
            |x, y| sd_round_rect(x, y, rect, 6.0).max(-sd_round_rect(x, y, inner, 3.5)),
        );
        assert_eq!(fast, plain);
    }

    #[test]
    fn polygon_and_convex_fill_agree() {
        let tri = [[5.0, 5.0], [35.0, 8.0], [12.0, 33.0]];
        let mut a = RgbImage::new(40, 40);
        let mut b = RgbImage::new(40, 40);
        fill_polygon(&mut a, &tri, [255, 255, 255], 1.0);
        fill_convex(&mut b, &tri, [255, 255, 255], 1.0);
        let sa: f32 = a.pixels().map(|p| p.0[0] as f32).sum();
        let sb: f32 = b.pixels().map(|p| p.0[0] as f32).sum();
        assert!((sa - sb).abs() / sb < 0.02, "{sa} vs {sb}");
        // Area of the triangle is 409.5 pixels.
        assert!((sb / 255.0 - 409.5).abs() < 8.0, "{}", sb / 255.0);
    }

    #[test]
    fn blending_into_transparent_rgba_sets_alpha() {
        let mut img = RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0]));
        img.blend(1, 1, [200, 100, 50], 0.5);
        assert_eq!(img.get_pixel(1, 1).0, [200, 100, 50, 128]);
        img.blend(1, 1, [0, 0, 0], 1.0);
        assert_eq!(img.get_pixel(1, 1).0, [0, 0, 0, 255]);
    }

    #[test]
    fn noise_is_smooth_and_in_range() {
        let mut last = value_noise(0.0, 0.3, 7);
        for i in 1..1000 {
            let v = value_noise(i as f32 * 0.01, 0.3, 7);
            assert!((0.0..1.0).contains(&v));
            assert!((v - last).abs() < 0.05);
            last = v;
        }
        assert!((0.0..1.0).contains(&fbm(3.3, 4.4, 1, 4)));
    }
}
