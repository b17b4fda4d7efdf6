//! A monoline plate font drawn in code, in the manner of DIN 1451 as used on
//! Kazakhstan, Russian and European plates.
//!
//! Each glyph is a set of centre-line paths (lines and elliptic arcs) on a
//! design grid 100 units high, drawn for a nominal stroke of 14 units so the
//! ink spans `0..width` by `0..100`. At render time the centre lines are
//! scaled so that the ink keeps the requested height for any stroke weight,
//! stroked with the chosen cap, given mitred corners, and clipped to the ink
//! box, which cuts diagonal ends flat at the top and base line as on real
//! plates. Coverage comes from the signed distance to the strokes, so edges
//! are anti-aliased at any size. Rendered glyphs are cached per thread.
//!
//! Look-alikes are told apart on purpose: `0` is a narrow stadium and `O` a
//! wide one, `1` has a flag, `8` is two round loops and `B` has a straight
//! stem, `2` has a curved top and `Z` straight bars, `5` has a corner and
//! `S` none, `6` a curved neck and `G` a spur.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::raster::{blend_mask, sd_capsule, sd_convex, Canvas, Mask, Pt};

/// Nominal stroke in design units; glyph coordinates assume it.
const NOMINAL: f32 = 14.0;
/// Half the nominal stroke: where the centre lines of the outer strokes lie.
const INSET: f32 = NOMINAL / 2.0;

/// How open stroke ends are finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// Flat, extended by half the stroke: bars end flush with stems.
    Square,
    /// Flat at the end point.
    Butt,
    /// Half a disc: the softer look of worn or cheap plates.
    Round,
}

/// Weight, width and finish of the font.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FontStyle {
    /// Stroke width as a fraction of the character height.
    pub stroke: f32,
    /// Horizontal scale of the centre lines (1 is the design width).
    pub width: f32,
    pub cap: Cap,
}

impl FontStyle {
    /// The standard plate weight.
    pub const REGULAR: FontStyle = FontStyle {
        stroke: 0.14,
        width: 1.0,
        cap: Cap::Square,
    };
    /// Slightly condensed and bolder, as on some plate makers' dies.
    pub const CONDENSED: FontStyle = FontStyle {
        stroke: 0.155,
        width: 0.86,
        cap: Cap::Square,
    };

    /// A style near `REGULAR` or `CONDENSED`, varied by `seed`.
    pub fn from_seed(seed: u64) -> FontStyle {
        let u = |k: u32| super::raster::hash01(seed as i32, (seed >> 32) as i32 ^ k as i32, 0x51ED);
        let base = if u(1) < 0.7 {
            FontStyle::REGULAR
        } else {
            FontStyle::CONDENSED
        };
        FontStyle {
            // A few discrete steps, so that plates share cached glyphs.
            stroke: base.stroke * (0.9 + 0.05 * (u(2) * 5.0).floor()),
            width: base.width * (0.95 + 0.025 * (u(3) * 5.0).floor()),
            cap: match u(4) {
                v if v < 0.08 => Cap::Round,
                v if v < 0.12 => Cap::Butt,
                _ => Cap::Square,
            },
        }
    }
}

/// One centre-line path in design units.
struct Path {
    pts: Vec<Pt>,
    closed: bool,
}

/// A glyph: ink width at the nominal stroke and its paths.
struct Glyph {
    width: f32,
    paths: Vec<Path>,
}

/// Builds glyph paths; coordinates are in the ink box of the nominal stroke.
struct G {
    width: f32,
    paths: Vec<Path>,
    cur: Vec<Pt>,
}

fn g(width: f32) -> G {
    G {
        width,
        paths: Vec::new(),
        cur: Vec::new(),
    }
}

impl G {
    fn flush(&mut self, closed: bool) {
        if self.cur.len() >= 2 {
            let pts = std::mem::take(&mut self.cur);
            self.paths.push(Path { pts, closed });
        }
        self.cur.clear();
    }

    /// Starts a new path at `(x, y)`.
    fn m(mut self, x: f32, y: f32) -> G {
        self.flush(false);
        self.cur.push([x, y]);
        self
    }

    /// A straight line to `(x, y)`.
    fn l(mut self, x: f32, y: f32) -> G {
        self.cur.push([x, y]);
        self
    }

    /// An elliptic arc from angle `a0` to `a1` (degrees, y down: 90 is the
    /// bottom); joined to the path by a line if it starts elsewhere.
    #[allow(clippy::too_many_arguments)]
    fn arc(mut self, cx: f32, cy: f32, rx: f32, ry: f32, a0: f32, a1: f32) -> G {
        let n = ((a1 - a0).abs() / 7.5).ceil().max(1.0) as usize;
        for i in 0..=n {
            let a = (a0 + (a1 - a0) * i as f32 / n as f32).to_radians();
            let p = [cx + rx * a.cos(), cy + ry * a.sin()];
            let dup = self
                .cur
                .last()
                .is_some_and(|q| (q[0] - p[0]).abs() + (q[1] - p[1]).abs() < 0.05);
            if !dup {
                self.cur.push(p);
            }
        }
        self
    }

    /// Closes the current path back to its start.
    fn z(mut self) -> G {
        if let (Some(a), Some(b)) = (self.cur.first().copied(), self.cur.last().copied()) {
            if (a[0] - b[0]).abs() + (a[1] - b[1]).abs() < 0.05 {
                self.cur.pop();
            }
        }
        self.flush(true);
        self
    }

    fn done(mut self) -> Glyph {
        self.flush(false);
        Glyph {
            width: self.width,
            paths: self.paths,
        }
    }
}

/// Rotates a glyph half a turn inside its box (a `6` becomes a `9`).
fn turned(gl: Glyph) -> Glyph {
    let w = gl.width;
    Glyph {
        width: w,
        paths: gl
            .paths
            .into_iter()
            .map(|p| Path {
                pts: p.pts.iter().map(|q| [w - q[0], 100.0 - q[1]]).collect(),
                closed: p.closed,
            })
            .collect(),
    }
}

/// Top and bottom centre lines.
const T: f32 = 7.0;
const B: f32 = 93.0;

fn six() -> Glyph {
    g(56.0)
        .m(7.0, 68.0)
        .arc(28.0, 68.0, 21.0, 25.0, 180.0, 540.0)
        .m(7.0, 68.0)
        .arc(57.0, 68.0, 50.0, 64.0, 180.0, 250.0)
        .done()
}

fn glyph(ch: char) -> Option<Glyph> {
    let gl = match ch {
        '0' => g(52.0)
            .m(7.0, 26.0)
            .arc(26.0, 26.0, 19.0, 19.0, 180.0, 360.0)
            .l(45.0, 74.0)
            .arc(26.0, 74.0, 19.0, 19.0, 0.0, 180.0)
            .z()
            .done(),
        '1' => g(38.0).m(12.0, 24.0).l(31.0, T).l(31.0, B).done(),
        '2' => g(56.0)
            .m(8.5, 24.0)
            .arc(28.0, 28.0, 20.5, 21.0, 192.0, 380.0)
            .l(8.0, B)
            .l(49.0, B)
            .done(),
        '3' => g(56.0)
            .m(9.0, 20.0)
            .arc(27.0, 28.5, 19.0, 21.5, 205.0, 450.0)
            .m(19.0, 50.0)
            .l(28.0, 50.0)
            .arc(28.0, 71.5, 21.0, 21.5, 270.0, 520.0)
            .done(),
        '4' => g(58.0)
            .m(51.0, 68.0)
            .l(7.0, 68.0)
            .l(39.0, T)
            .l(39.0, B)
            .done(),
        '5' => g(56.0)
            .m(47.0, T)
            .l(11.0, T)
            .l(9.0, 47.5)
            .arc(27.0, 68.0, 21.0, 25.0, 235.0, 510.0)
            .done(),
        '6' => six(),
        '7' => g(56.0).m(7.0, T).l(49.0, T).l(19.0, B + 6.0).done(),
        '8' => g(56.0)
            .m(28.0, 50.0)
            .arc(28.0, 29.0, 18.0, 21.5, 90.0, 450.0)
            .z()
            .m(28.0, 50.0)
            .arc(28.0, 71.5, 21.0, 21.5, -90.0, 270.0)
            .z()
            .done(),
        '9' => turned(six()),
        'A' => g(62.0)
            .m(5.0, B + 8.0)
            .l(31.0, T - 8.0)
            .l(57.0, B + 8.0)
            .m(15.0, 68.0)
            .l(47.0, 68.0)
            .done(),
        'B' => g(56.0)
            .m(7.0, 49.5)
            .l(27.0, 49.5)
            .arc(27.0, 28.25, 20.0, 21.25, 90.0, -90.0)
            .l(7.0, T)
            .l(7.0, B)
            .l(28.0, B)
            .arc(28.0, 71.25, 21.0, 21.75, 90.0, -90.0)
            .done(),
        'C' => g(60.0)
            .m(52.0, 18.0)
            .arc(31.0, 31.0, 24.0, 24.0, -32.0, -180.0)
            .l(7.0, 69.0)
            .arc(31.0, 69.0, 24.0, 24.0, 180.0, 32.0)
            .done(),
        'D' => g(58.0)
            .m(7.0, T)
            .l(26.0, T)
            .arc(26.0, 32.0, 25.0, 25.0, -90.0, 0.0)
            .l(51.0, 68.0)
            .arc(26.0, 68.0, 25.0, 25.0, 0.0, 90.0)
            .l(7.0, B)
            .z()
            .done(),
        'E' => g(52.0)
            .m(45.0, T)
            .l(7.0, T)
            .l(7.0, B)
            .l(45.0, B)
            .m(7.0, 49.0)
            .l(40.0, 49.0)
            .done(),
        'F' => g(50.0)
            .m(43.0, T)
            .l(7.0, T)
            .l(7.0, B)
            .m(7.0, 51.0)
            .l(39.0, 51.0)
            .done(),
        'G' => g(62.0)
            .m(53.0, 18.0)
            .arc(31.0, 31.0, 24.0, 24.0, -30.0, -180.0)
            .l(7.0, 69.0)
            .arc(31.0, 69.0, 24.0, 24.0, 180.0, 0.0)
            .l(55.0, 53.0)
            .l(35.0, 53.0)
            .done(),
        'H' => g(58.0)
            .m(7.0, T)
            .l(7.0, B)
            .m(51.0, T)
            .l(51.0, B)
            .m(7.0, 50.0)
            .l(51.0, 50.0)
            .done(),
        'I' => g(14.0).m(7.0, T).l(7.0, B).done(),
        'J' => g(50.0)
            .m(43.0, T)
            .l(43.0, 70.0)
            .arc(25.0, 70.0, 18.0, 23.0, 0.0, 165.0)
            .done(),
        'K' => g(58.0)
            .m(7.0, T)
            .l(7.0, B)
            .m(51.0, T - 3.0)
            .l(8.0, 63.0)
            .m(23.0, 44.0)
            .l(53.0, B + 4.0)
            .done(),
        'L' => g(50.0).m(7.0, T).l(7.0, B).l(44.0, B).done(),
        'M' => g(68.0)
            .m(7.0, B)
            .l(7.0, T)
            .l(34.0, 72.0)
            .l(61.0, T)
            .l(61.0, B)
            .done(),
        'N' => g(58.0).m(7.0, B).l(7.0, T).l(51.0, B).l(51.0, T).done(),
        'O' => g(62.0)
            .m(7.0, 31.0)
            .arc(31.0, 31.0, 24.0, 24.0, 180.0, 360.0)
            .l(55.0, 69.0)
            .arc(31.0, 69.0, 24.0, 24.0, 0.0, 180.0)
            .z()
            .done(),
        'P' => g(56.0)
            .m(7.0, B)
            .l(7.0, T)
            .l(27.0, T)
            .arc(27.0, 29.5, 22.0, 22.5, -90.0, 90.0)
            .l(7.0, 52.0)
            .done(),
        'Q' => g(62.0)
            .m(7.0, 31.0)
            .arc(31.0, 31.0, 24.0, 24.0, 180.0, 360.0)
            .l(55.0, 69.0)
            .arc(31.0, 69.0, 24.0, 24.0, 0.0, 180.0)
            .z()
            .m(36.0, 72.0)
            .l(58.0, 100.0)
            .done(),
        'R' => g(58.0)
            .m(7.0, B)
            .l(7.0, T)
            .l(27.0, T)
            .arc(27.0, 29.5, 22.0, 22.5, -90.0, 90.0)
            .l(7.0, 52.0)
            .m(26.0, 52.0)
            .l(52.0, B + 5.0)
            .done(),
        'S' => g(56.0)
            .m(47.0, 19.0)
            .arc(28.0, 28.5, 19.5, 21.5, -28.0, -235.0)
            .l(39.0, 53.0)
            .arc(28.0, 71.5, 21.0, 21.5, -55.0, 160.0)
            .done(),
        'T' => g(56.0).m(7.0, T).l(49.0, T).m(28.0, T).l(28.0, B).done(),
        'U' => g(56.0)
            .m(7.0, T)
            .l(7.0, 68.0)
            .arc(28.0, 68.0, 21.0, 25.0, 180.0, 0.0)
            .l(49.0, T)
            .done(),
        'V' => g(60.0)
            .m(5.0, T - 8.0)
            .l(30.0, B + 8.0)
            .l(55.0, T - 8.0)
            .done(),
        'W' => g(78.0)
            .m(5.0, T - 8.0)
            .l(21.0, B + 8.0)
            .l(39.0, 22.0)
            .l(57.0, B + 8.0)
            .l(73.0, T - 8.0)
            .done(),
        'X' => g(58.0)
            .m(5.0, T - 6.0)
            .l(53.0, B + 6.0)
            .m(53.0, T - 6.0)
            .l(5.0, B + 6.0)
            .done(),
        'Y' => g(58.0)
            .m(5.0, T - 6.0)
            .l(29.0, 50.0)
            .l(53.0, T - 6.0)
            .m(29.0, 50.0)
            .l(29.0, B)
            .done(),
        'Z' => g(56.0).m(8.0, T).l(48.0, T).l(8.0, B).l(49.0, B).done(),
        '-' => g(36.0).m(7.0, 55.0).l(29.0, 55.0).done(),
        '.' => g(14.0).m(7.0, B - 2.0).l(7.0, B).done(),
        ':' => g(14.0)
            .m(7.0, 33.0)
            .l(7.0, 35.0)
            .m(7.0, B - 2.0)
            .l(7.0, B)
            .done(),
        '/' => g(40.0).m(5.0, B + 6.0).l(35.0, T - 6.0).done(),
        _ => return None,
    };
    Some(gl)
}

/// Where the glyph's design units land in pixels.
struct Frame {
    k: f32,
    kx: f32,
    h: f32,
}

impl Frame {
    fn new(height: f32, style: &FontStyle) -> Frame {
        let h = style.stroke * height * 0.5;
        let k = (height - 2.0 * h) / (100.0 - NOMINAL);
        Frame {
            k,
            kx: k * style.width,
            h,
        }
    }

    fn map(&self, p: Pt, ox: f32, oy: f32) -> Pt {
        [
            ox + self.h + (p[0] - INSET) * self.kx,
            oy + self.h + (p[1] - INSET) * self.k,
        ]
    }

    fn ink_width(&self, design_width: f32) -> f32 {
        (design_width - NOMINAL).max(0.0) * self.kx + 2.0 * self.h
    }
}

/// Ink width in pixels of `ch` drawn `height` pixels tall; characters the
/// font lacks are as wide as a digit.
pub fn char_width(ch: char, height: f32, style: &FontStyle) -> f32 {
    let w = glyph(ch).map_or(56.0, |g| g.width);
    Frame::new(height, style).ink_width(w)
}

/// Whether the font has a glyph for `ch`.
pub fn has_glyph(ch: char) -> bool {
    glyph(ch).is_some()
}

/// Distance to a segment whose ends are either round or flat.
#[inline]
fn sd_stroke(px: f32, py: f32, a: Pt, b: Pt, r: f32, flat_a: bool, flat_b: bool) -> f32 {
    let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
    let len = (ex * ex + ey * ey).sqrt();
    if len < 1e-6 {
        return sd_capsule(px, py, a, b, r);
    }
    let (ux, uy) = (ex / len, ey / len);
    let (qx, qy) = (px - a[0], py - a[1]);
    let along = qx * ux + qy * uy;
    let across = (qx * uy - qy * ux).abs() - r;
    let out = if along < 0.0 {
        if !flat_a {
            return sd_capsule(px, py, a, b, r);
        }
        -along
    } else if along > len {
        if !flat_b {
            return sd_capsule(px, py, a, b, r);
        }
        along - len
    } else {
        return across;
    };
    if across > 0.0 {
        (out * out + across * across).sqrt()
    } else {
        out
    }
}

/// Largest mitre, in half strokes, before a corner is bevelled instead.
const MITRE_LIMIT: f32 = 4.5;

/// The patch that turns the round join at `p` into a sharp corner, or
/// `None` for nearly straight joins.
fn mitre_patch(prev: Pt, p: Pt, next: Pt, r: f32) -> Option<Vec<Pt>> {
    let unit = |a: Pt, b: Pt| {
        let (x, y) = (b[0] - a[0], b[1] - a[1]);
        let l = (x * x + y * y).sqrt();
        (l > 1e-6).then(|| [x / l, y / l])
    };
    let d1 = unit(prev, p)?;
    let d2 = unit(p, next)?;
    if d1[0] * d2[0] + d1[1] * d2[1] > 0.97 {
        return None;
    }
    let bis = unit([0.0, 0.0], [d1[0] - d2[0], d1[1] - d2[1]])?;
    let side = |d: Pt| {
        let n = [-d[1], d[0]];
        if n[0] * bis[0] + n[1] * bis[1] < 0.0 {
            [-n[0], -n[1]]
        } else {
            n
        }
    };
    let n1 = side(d1);
    let n2 = side(d2);
    let c = n1[0] * bis[0] + n1[1] * bis[1];
    let a = [p[0] + n1[0] * r, p[1] + n1[1] * r];
    let b = [p[0] + n2[0] * r, p[1] + n2[1] * r];
    if c < 1.0 / MITRE_LIMIT {
        return Some(vec![p, a, b]);
    }
    let m = [p[0] + bis[0] * r / c, p[1] + bis[1] * r / c];
    Some(vec![p, a, m, b])
}

/// Draws glyph `ch` into a fresh mask, its ink box's top-left corner at the
/// sub-pixel offset `(fx, fy)` in `[0, 1)`.
fn render_glyph(ch: char, height: f32, style: &FontStyle, fx: f32, fy: f32) -> Mask {
    let Some(gl) = glyph(ch) else {
        return Mask::new(1, 1);
    };
    let fr = Frame::new(height, style);
    let ink_w = fr.ink_width(gl.width);
    let mw = (fx + ink_w).ceil() as u32 + 1;
    let mh = (fy + height).ceil() as u32 + 1;
    let mut sdf = vec![f32::MAX; (mw * mh) as usize];
    let r = fr.h;

    let mut splat = |bb: [f32; 4], f: &dyn Fn(f32, f32) -> f32| {
        let x0 = bb[0].floor().max(0.0) as u32;
        let y0 = bb[1].floor().max(0.0) as u32;
        let x1 = (bb[2].ceil().max(0.0) as u32).min(mw);
        let y1 = (bb[3].ceil().max(0.0) as u32).min(mh);
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y * mw + x) as usize;
                let d = f(x as f32 + 0.5, y as f32 + 0.5);
                if d < sdf[i] {
                    sdf[i] = d;
                }
            }
        }
    };

    for path in &gl.paths {
        let pts: Vec<Pt> = path.pts.iter().map(|&p| fr.map(p, fx, fy)).collect();
        let n = pts.len();
        let segs = if path.closed { n } else { n - 1 };
        for i in 0..segs {
            let mut a = pts[i];
            let mut b = pts[(i + 1) % n];
            let first = !path.closed && i == 0;
            let last = !path.closed && i == segs - 1;
            let (mut flat_a, mut flat_b) = (false, false);
            if style.cap != Cap::Round {
                let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
                let len = (ex * ex + ey * ey).sqrt().max(1e-6);
                let ext = if style.cap == Cap::Square { r } else { 0.0 };
                let (ux, uy) = (ex / len * ext, ey / len * ext);
                if first {
                    flat_a = true;
                    a = [a[0] - ux, a[1] - uy];
                }
                if last {
                    flat_b = true;
                    b = [b[0] + ux, b[1] + uy];
                }
            }
            let bb = [
                a[0].min(b[0]) - r - 1.0,
                a[1].min(b[1]) - r - 1.0,
                a[0].max(b[0]) + r + 1.0,
                a[1].max(b[1]) + r + 1.0,
            ];
            splat(bb, &|x, y| sd_stroke(x, y, a, b, r, flat_a, flat_b));
        }
        // Sharp corners wherever the path turns.
        let joins: Vec<usize> = if path.closed {
            (0..n).collect()
        } else {
            (1..n - 1).collect()
        };
        for j in joins {
            let prev = pts[(j + n - 1) % n];
            let next = pts[(j + 1) % n];
            if let Some(poly) = mitre_patch(prev, pts[j], next, r) {
                let mut bb = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
                for q in &poly {
                    bb = [
                        bb[0].min(q[0] - 1.0),
                        bb[1].min(q[1] - 1.0),
                        bb[2].max(q[0] + 1.0),
                        bb[3].max(q[1] + 1.0),
                    ];
                }
                splat(bb, &|x, y| sd_convex(x, y, &poly));
            }
        }
    }

    // Clip to the ink box: cuts diagonal ends and mitre tips flat.
    let clip = [fx, fy, fx + ink_w, fy + height];
    let mut mask = Mask::new(mw, mh);
    for y in 0..mh {
        let py = y as f32 + 0.5;
        for x in 0..mw {
            let px = x as f32 + 0.5;
            let i = (y * mw + x) as usize;
            let dbox = (clip[0] - px)
                .max(px - clip[2])
                .max(clip[1] - py)
                .max(py - clip[3]);
            mask.data[i] = (0.5 - sdf[i].max(dbox)).clamp(0.0, 1.0);
        }
    }
    mask
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    ch: char,
    height: u32,
    stroke: u32,
    width: u32,
    cap: Cap,
    fx: u8,
    fy: u8,
}

thread_local! {
    static CACHE: RefCell<HashMap<CacheKey, Rc<Mask>>> = RefCell::new(HashMap::new());
}

/// Cached glyphs per thread before the cache is emptied.
const CACHE_LIMIT: usize = 8192;

/// The mask of `ch`, `height` pixels tall, and the offset from the ink box's
/// top-left corner `(x, y)` to the mask's top-left pixel. Positions are
/// rounded to a quarter pixel and sizes to a hundredth, so masks repeat and
/// come from the cache.
pub fn glyph_mask(
    ch: char,
    height: f32,
    style: &FontStyle,
    x: f32,
    y: f32,
) -> (Rc<Mask>, i64, i64) {
    let qx = (x * 4.0).round() / 4.0;
    let qy = (y * 4.0).round() / 4.0;
    let (ix, iy) = (qx.floor(), qy.floor());
    let key = CacheKey {
        ch,
        height: (height * 100.0).round() as u32,
        stroke: (style.stroke * 10_000.0).round() as u32,
        width: (style.width * 1000.0).round() as u32,
        cap: style.cap,
        fx: ((qx - ix) * 4.0) as u8,
        fy: ((qy - iy) * 4.0) as u8,
    };
    let mask = CACHE.with(|c| {
        if let Some(m) = c.borrow().get(&key) {
            return m.clone();
        }
        let style = FontStyle {
            stroke: key.stroke as f32 / 10_000.0,
            width: key.width as f32 / 1000.0,
            cap: key.cap,
        };
        let m = Rc::new(render_glyph(
            ch,
            key.height as f32 / 100.0,
            &style,
            key.fx as f32 / 4.0,
            key.fy as f32 / 4.0,
        ));
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(key, m.clone());
        m
    });
    (mask, ix as i64, iy as i64)
}

/// The ink box of one laid-out character, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharBox {
    pub ch: char,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// How to set a line of text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextOpts {
    /// Character height in pixels.
    pub height: f32,
    /// Gap between the ink boxes of neighbouring characters, pixels.
    pub spacing: f32,
    /// Advance of a space character, pixels (added to the spacing).
    pub space: f32,
    /// Digits take the width of the widest digit and sit centred in it, as
    /// on plates where narrow `1`s keep the rhythm.
    pub tabular_digits: bool,
}

impl TextOpts {
    /// Plate-like defaults for a character height.
    pub fn new(height: f32) -> TextOpts {
        TextOpts {
            height,
            spacing: height * 0.09,
            space: height * 0.3,
            tabular_digits: true,
        }
    }
}

/// A laid-out line of text starting at `(0, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLayout {
    pub boxes: Vec<CharBox>,
    pub width: f32,
    pub height: f32,
    pub style: FontStyle,
}

impl TextLayout {
    /// Moves every box by `(dx, dy)`.
    pub fn translate(&mut self, dx: f32, dy: f32) {
        for b in &mut self.boxes {
            b.x += dx;
            b.y += dy;
        }
    }
}

/// Sets `text` on one line; spaces advance by `opts.space`.
pub fn layout_text(text: &str, opts: &TextOpts, style: &FontStyle) -> TextLayout {
    let cell = char_width('8', opts.height, style);
    let mut boxes = Vec::new();
    let mut x = 0.0f32;
    let mut first = true;
    for ch in text.chars() {
        if ch == ' ' {
            x += opts.space;
            continue;
        }
        if !first {
            x += opts.spacing;
        }
        first = false;
        let w = char_width(ch, opts.height, style);
        let adv = if opts.tabular_digits && ch.is_ascii_digit() {
            w.max(cell)
        } else {
            w
        };
        boxes.push(CharBox {
            ch,
            x: x + (adv - w) * 0.5,
            y: 0.0,
            w,
            h: opts.height,
        });
        x += adv;
    }
    TextLayout {
        boxes,
        width: x,
        height: opts.height,
        style: *style,
    }
}

/// Draws every box of `layout` in `rgb` with opacity `a`.
pub fn draw_text<C: Canvas>(img: &mut C, layout: &TextLayout, rgb: [u8; 3], a: f32) {
    for b in &layout.boxes {
        draw_char(img, b, &layout.style, rgb, a);
    }
}

/// Draws one character into its box.
pub fn draw_char<C: Canvas>(img: &mut C, b: &CharBox, style: &FontStyle, rgb: [u8; 3], a: f32) {
    let (mask, ox, oy) = glyph_mask(b.ch, b.h, style, b.x, b.y);
    blend_mask(img, &mask, ox, oy, rgb, a);
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn ink(ch: char, h: f32, style: &FontStyle) -> GrayImage {
        let (m, _, _) = glyph_mask(ch, h, style, 0.0, 0.0);
        GrayImage::from_fn(m.width, m.height, |x, y| {
            Luma([(m.data[(y * m.width + x) as usize] * 255.0) as u8])
        })
    }

    fn coverage(img: &GrayImage) -> f32 {
        img.pixels().map(|p| p.0[0] as f32 / 255.0).sum()
    }

    #[test]
    fn every_plate_character_has_a_glyph_with_ink_in_its_box() {
        for ch in ('0'..='9').chain('A'..='Z') {
            assert!(has_glyph(ch), "{ch}");
            let img = ink(ch, 60.0, &FontStyle::REGULAR);
            let w = char_width(ch, 60.0, &FontStyle::REGULAR);
            assert!(
                img.width() as f32 >= w && img.width() as f32 <= w + 3.0,
                "{ch}"
            );
            let c = coverage(&img);
            // Ink fills a plausible share of the box: not empty, not a blob.
            let frac = c / (w * 60.0);
            assert!((0.15..0.7).contains(&frac) || ch == 'I', "{ch}: {frac}");
            // The ink reaches the top and bottom rows of the box.
            let row = |y: u32| {
                (0..img.width())
                    .map(|x| img.get_pixel(x, y).0[0] as u32)
                    .sum::<u32>()
            };
            assert!(row(1) > 0 && row(58) > 0, "{ch}");
        }
        assert!(!has_glyph('#'));
    }

    #[test]
    fn look_alikes_differ() {
        let s = FontStyle::REGULAR;
        assert!(char_width('0', 80.0, &s) < char_width('O', 80.0, &s) - 4.0);
        for (a, b) in [
            ('0', 'O'),
            ('1', 'I'),
            ('8', 'B'),
            ('2', 'Z'),
            ('5', 'S'),
            ('6', 'G'),
        ] {
            let ia = ink(a, 80.0, &s);
            let ib = ink(b, 80.0, &s);
            let w = ia.width().min(ib.width());
            let mut diff = 0.0;
            for y in 0..ia.height().min(ib.height()) {
                for x in 0..w {
                    diff += (ia.get_pixel(x, y).0[0] as f32 - ib.get_pixel(x, y).0[0] as f32).abs();
                }
            }
            let diff = diff / 255.0;
            assert!(diff > 300.0, "{a} vs {b}: {diff}");
        }
    }

    #[test]
    fn bolder_style_has_more_ink_at_the_same_height() {
        let thin = FontStyle {
            stroke: 0.11,
            ..FontStyle::REGULAR
        };
        let bold = FontStyle {
            stroke: 0.17,
            ..FontStyle::REGULAR
        };
        let a = coverage(&ink('H', 70.0, &thin));
        let b = coverage(&ink('H', 70.0, &bold));
        assert!(b > a * 1.3, "{a} {b}");
    }

    #[test]
    fn layout_places_characters_left_to_right_without_overlap() {
        let opts = TextOpts::new(50.0);
        let l = layout_text("123 ABC", &opts, &FontStyle::REGULAR);
        assert_eq!(l.boxes.len(), 6);
        for w in l.boxes.windows(2) {
            assert!(w[1].x >= w[0].x + w[0].w, "{w:?}");
        }
        // The gap between groups is the spacing plus the space.
        let gap = l.boxes[3].x - (l.boxes[2].x + l.boxes[2].w);
        assert!(gap >= opts.space, "{gap}");
        let last = l.boxes[5];
        assert!(last.x + last.w <= l.width + 0.01 && last.h == 50.0);
    }

    #[test]
    fn cached_masks_are_identical_to_fresh_ones() {
        let s = FontStyle::CONDENSED;
        let (a, _, _) = glyph_mask('K', 41.3, &s, 10.25, 3.5);
        let (b, _, _) = glyph_mask('K', 41.3, &s, 10.25, 3.5);
        assert!(Rc::ptr_eq(&a, &b));
        let fresh = render_glyph('K', 41.3, &s, 0.25, 0.5);
        assert_eq!(*a, fresh);
    }

    /// Writes every glyph in both styles to `/tmp/safecity_font.png` to look at.
    #[test]
    #[ignore]
    fn write_glyph_sheet() {
        let mut img = image::RgbImage::from_pixel(1500, 420, image::Rgb([255, 255, 255]));
        let rows = [
            "0123456789",
            "ABCDEFGHIJKLM",
            "NOPQRSTUVWXYZ",
            "0O 1I 8B 2Z 5S 6G -.:/",
        ];
        for (i, row) in rows.iter().enumerate() {
            let style = if i == 3 {
                FontStyle::CONDENSED
            } else {
                FontStyle::REGULAR
            };
            let mut l = layout_text(row, &TextOpts::new(80.0), &style);
            l.translate(10.0, 10.0 + 100.0 * i as f32);
            draw_text(&mut img, &l, [10, 10, 10], 1.0);
        }
        img.save("/tmp/safecity_font.png").unwrap();
    }
}
