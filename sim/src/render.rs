//! Draws vehicles over a pre-rendered background and records ground truth.
//!
//! Each vehicle is rasterised with a depth buffer into its own layer (body,
//! details, plate, shadow), blurred along its image motion and composited
//! far to near; lights, rain and sensor noise follow.

use image::{RgbImage, RgbaImage};
use rand::Rng;

use super::camera::{add, dot, scale, sub, Camera, NEAR, V3};
use super::effects::{
    fill_convex, rain_streaks, srgb_to_linear, vignette_table, Glow, Look, Sensor,
};
use super::plate::{render_plate, PlateSpec};
use super::raster::hash01;
use super::road::Road;
use super::truth::{
    Direction, FrameTruth, Lighting, PlateLayout, PlateTruth, VehicleClass, VehicleColour,
    VehicleTruth,
};
use super::vehicle::{Mat, Model};

/// Camera, road and light of a scene with its background drawn once.
pub(crate) struct World {
    pub cam: Camera,
    pub road: Road,
    pub look: Look,
    pub background: RgbImage,
    vignette: Vec<u16>,
    sensor: Sensor,
}

impl World {
    pub fn new(cam: Camera, road: Road, look: Look, seed: u64) -> World {
        let background = road.bake(&cam, &look);
        let vignette = vignette_table(cam.width, cam.height, look.vignette);
        let sensor = Sensor::new(cam.width, cam.height, look.noise_sigma, seed);
        World {
            cam,
            road,
            look,
            background,
            vignette,
            sensor,
        }
    }
}

/// A plate ready to draw: its spec and a pyramid of its picture.
pub(crate) struct PlateTex {
    pub spec: PlateSpec,
    pub display: String,
    levels: Vec<RgbaImage>,
    /// Scripted passes keep their plates clean and lit.
    pub favoured: bool,
}

impl PlateTex {
    pub fn new(spec: PlateSpec, favoured: bool) -> PlateTex {
        let display = safecity_core::parse_plate(&spec.text)
            .map(|p| p.display)
            .unwrap_or_else(|_| spec.text.clone());
        let mut levels = vec![render_plate(&spec)];
        while levels
            .last()
            .is_some_and(|l| l.width() > 24 && l.height() > 8)
        {
            levels.push(halve(levels.last().unwrap()));
        }
        PlateTex {
            spec,
            display,
            levels,
            favoured,
        }
    }
}

fn halve(img: &RgbaImage) -> RgbaImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    let mut out = RgbaImage::new(w.max(1), h.max(1));
    for y in 0..out.height() {
        for x in 0..out.width() {
            let mut acc = [0u32; 4];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = img.get_pixel(
                    (2 * x + dx).min(img.width() - 1),
                    (2 * y + dy).min(img.height() - 1),
                );
                for c in 0..4 {
                    acc[c] += p[c] as u32;
                }
            }
            out.put_pixel(x, y, image::Rgba(acc.map(|v| ((v + 2) / 4) as u8)));
        }
    }
    out
}

/// A vehicle at one instant.
pub(crate) struct Actor<'a> {
    pub id: u64,
    pub model: &'a Model,
    pub colour: VehicleColour,
    pub dir: Direction,
    /// Centre of the footprint.
    pub x: f32,
    pub y: f32,
    /// Metres per second along its heading.
    pub speed: f32,
    pub plate: Option<&'a PlateTex>,
}

impl Actor<'_> {
    fn sign(&self) -> f32 {
        match self.dir {
            Direction::Away => 1.0,
            Direction::Towards => -1.0,
        }
    }
    fn to_world(&self, p: V3) -> V3 {
        let s = self.sign();
        [self.x + s * p[0], self.y + s * p[1], p[2]]
    }
    fn dir_world(&self, n: V3) -> V3 {
        let s = self.sign();
        [s * n[0], s * n[1], n[2]]
    }
    fn heading(&self) -> V3 {
        [0.0, self.sign(), 0.0]
    }
}

/// Characters are about this share of the plate height.
fn char_share(layout: PlateLayout) -> f32 {
    match layout {
        PlateLayout::SingleLine => 0.55,
        PlateLayout::TwoLine => 0.36,
    }
}

struct Layer {
    x0: i32,
    y0: i32,
    w: usize,
    h: usize,
    /// Premultiplied colour in 8-bit levels and alpha.
    px: Vec<[f32; 4]>,
    z: Vec<f32>,
    /// Pixel extent of the body: min x, min y, max x, max y (inclusive).
    body: [i32; 4],
}

const SHADOW_Z: f32 = 1.0e6;

/// Spare colour and depth buffers.
type Pool = (Vec<Vec<[f32; 4]>>, Vec<Vec<f32>>);

thread_local! {
    /// Buffers of finished layers, reused so that big layers do not fault in
    /// fresh pages every frame.
    static POOL: std::cell::RefCell<Pool> = Default::default();
}

fn take_px(len: usize) -> Vec<[f32; 4]> {
    let mut v = POOL.with(|p| p.borrow_mut().0.pop()).unwrap_or_default();
    v.clear();
    v.resize(len, [0.0; 4]);
    v
}

fn give_px(v: Vec<[f32; 4]>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.0.len() < 8 {
            p.0.push(v);
        }
    });
}

impl Drop for Layer {
    fn drop(&mut self) {
        give_px(std::mem::take(&mut self.px));
        let z = std::mem::take(&mut self.z);
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.1.len() < 8 {
                p.1.push(z);
            }
        });
    }
}

impl Layer {
    fn new(x0: i32, y0: i32, w: usize, h: usize) -> Layer {
        Layer {
            x0,
            y0,
            w,
            h,
            px: take_px(w * h),
            z: {
                let mut z = POOL.with(|p| p.borrow_mut().1.pop()).unwrap_or_default();
                z.clear();
                z.resize(w * h, f32::MAX);
                z
            },
            body: [i32::MAX, i32::MAX, i32::MIN, i32::MIN],
        }
    }

    /// Alpha at a frame pixel (0 outside the layer).
    fn alpha_at(&self, x: i32, y: i32) -> f32 {
        let (lx, ly) = (x - self.x0, y - self.y0);
        if lx < 0 || ly < 0 || lx >= self.w as i32 || ly >= self.h as i32 {
            return 0.0;
        }
        self.px[ly as usize * self.w + lx as usize][3]
    }

    /// Fills a triangle given in frame pixels with depth and vertex colours.
    fn tri(&mut self, v: [[f32; 3]; 3], c: [[f32; 3]; 3], bias: f32, alpha: f32) {
        let ox = self.x0 as f32;
        let oy = self.y0 as f32;
        let p: [[f32; 2]; 3] = v.map(|q| [q[0] - ox, q[1] - oy]);
        let area =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
        if area.abs() < 1e-6 {
            return;
        }
        let inv = 1.0 / area;
        let minx = p.iter().map(|q| q[0]).fold(f32::MAX, f32::min);
        let maxx = p.iter().map(|q| q[0]).fold(f32::MIN, f32::max);
        let miny = p.iter().map(|q| q[1]).fold(f32::MAX, f32::min);
        let maxy = p.iter().map(|q| q[1]).fold(f32::MIN, f32::max);
        let x0 = (minx - 0.5).ceil().max(0.0) as i32;
        let x1 = ((maxx - 0.5).floor() as i32).min(self.w as i32 - 1);
        let y0 = (miny - 0.5).ceil().max(0.0) as i32;
        let y1 = ((maxy - 0.5).floor() as i32).min(self.h as i32 - 1);
        if x1 < x0 || y1 < y0 {
            return;
        }
        let iz = v.map(|q| 1.0 / q[2]);
        let body = bias < SHADOW_Z * 0.5 && v[0][2] < SHADOW_Z * 0.5;
        // Barycentric weights are linear in x along a row: w = a * x + b.
        let a0 = (p[1][1] - p[2][1]) * inv;
        let a1 = (p[2][1] - p[0][1]) * inv;
        let a2 = -a0 - a1;
        let eps = 1e-5;
        for y in y0..=y1 {
            let py = y as f32 + 0.5;
            let b0 = (p[1][0] * (p[2][1] - py) - p[2][0] * (p[1][1] - py)) * inv;
            let b1 = (p[2][0] * (p[0][1] - py) - p[0][0] * (p[2][1] - py)) * inv;
            let b2 = 1.0 - b0 - b1;
            // The span of x where all three weights are >= 0.
            let (mut lo, mut hi) = (x0 as f32 + 0.5, x1 as f32 + 0.5);
            for (a, b) in [(a0, b0), (a1, b1), (a2, b2)] {
                if a > 0.0 {
                    lo = lo.max((-eps - b) / a);
                } else if a < 0.0 {
                    hi = hi.min((-eps - b) / a);
                } else if b < -eps {
                    hi = lo - 1.0;
                }
            }
            if hi < lo {
                continue;
            }
            let xs = ((lo - 0.5).ceil() as i32).max(x0);
            let xe = ((hi - 0.5).floor() as i32).min(x1);
            let row = y as usize * self.w;
            for x in xs..=xe {
                let px = x as f32 + 0.5;
                let w0 = a0 * px + b0;
                let w1 = a1 * px + b1;
                let w2 = 1.0 - w0 - w1;
                let z = 1.0 / (w0 * iz[0] + w1 * iz[1] + w2 * iz[2]);
                let i = row + x as usize;
                if z - bias >= self.z[i] {
                    continue;
                }
                self.z[i] = z;
                self.px[i] = [
                    (w0 * c[0][0] + w1 * c[1][0] + w2 * c[2][0]) * alpha,
                    (w0 * c[0][1] + w1 * c[1][1] + w2 * c[2][1]) * alpha,
                    (w0 * c[0][2] + w1 * c[1][2] + w2 * c[2][2]) * alpha,
                    alpha,
                ];
            }
            if body && xe >= xs {
                let fy = y + self.y0;
                self.body = [
                    self.body[0].min(xs + self.x0),
                    self.body[1].min(fy),
                    self.body[2].max(xe + self.x0),
                    self.body[3].max(fy),
                ];
            }
        }
    }

    /// [1 2 1] / 4 in both directions: soft edges, as a real lens gives.
    fn soften(&mut self) {
        let (w, h) = (self.w, self.h);
        if w < 3 || h < 3 {
            return;
        }
        let mut t = take_px(self.px.len());
        for y in 0..h {
            t[y * w] = self.px[y * w];
            t[y * w + w - 1] = self.px[y * w + w - 1];
            for x in 1..w - 1 {
                let i = y * w + x;
                let (l, c, r) = (self.px[i - 1], self.px[i], self.px[i + 1]);
                t[i] = std::array::from_fn(|k| 0.25 * (l[k] + r[k]) + 0.5 * c[k]);
            }
        }
        for y in 1..h - 1 {
            for x in 0..w {
                let i = y * w + x;
                let (u, c, d) = (t[i - w], t[i], t[i + w]);
                self.px[i] = std::array::from_fn(|k| 0.25 * (u[k] + d[k]) + 0.5 * c[k]);
            }
        }
        give_px(t);
    }

    /// Box blur along `(dx, dy)` pixels, centred: the vehicle's movement
    /// during the exposure.
    fn motion_blur(&mut self, dx: f32, dy: f32) {
        if (dx * dx + dy * dy).sqrt() < 0.8 {
            return;
        }
        let old = if dy.abs() >= dx.abs() {
            let b = shear_blur(&self.px, self.w, self.h, dx / dy, dy.abs());
            std::mem::replace(&mut self.px, b)
        } else {
            let t = transpose(&self.px, self.w, self.h);
            let b = shear_blur(&t, self.h, self.w, dy / dx, dx.abs());
            give_px(t);
            let back = transpose(&b, self.h, self.w);
            give_px(b);
            std::mem::replace(&mut self.px, back)
        };
        give_px(old);
    }

    fn composite(&self, img: &mut RgbImage, vig: &[u16]) {
        let fw = img.width() as usize;
        let buf: &mut [u8] = img;
        for ly in 0..self.h {
            let fy = ly + self.y0 as usize;
            for lx in 0..self.w {
                let i = ly * self.w + lx;
                let a = self.px[i][3].min(1.0);
                if a < 0.002 {
                    continue;
                }
                let fx = lx + self.x0 as usize;
                let fi = fy * fw + fx;
                let g = vig[fi] as f32 / 256.0;
                let c = self.px[i];
                let o = fi * 3;
                for k in 0..3 {
                    let v = buf[o + k] as f32 * (1.0 - a) + c[k] * g;
                    buf[o + k] = v.clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

fn transpose(src: &[[f32; 4]], w: usize, h: usize) -> Vec<[f32; 4]> {
    let mut out = take_px(w * h);
    for y in 0..h {
        for x in 0..w {
            out[x * h + y] = src[y * w + x];
        }
    }
    out
}

/// Box blur over `steps` rows along lines that move `slope` columns per
/// row. Sums run row by row over all lines at once, so the cost does not
/// grow with the blur length and memory is read in order.
fn shear_blur(src: &[[f32; 4]], w: usize, h: usize, slope: f32, steps: f32) -> Vec<[f32; 4]> {
    let half = (steps / 2.0).round() as i64;
    let n = (2 * half + 1) as f32;
    let shift: Vec<i64> = (0..h).map(|y| (y as f32 * slope).round() as i64).collect();
    let smin = shift.iter().copied().min().unwrap_or(0);
    let smax = shift.iter().copied().max().unwrap_or(0);
    // Lines are indexed by their column at row 0, offset to be >= 0.
    let off = smax;
    let lines = w + (smax - smin) as usize + 1;
    let mut acc = vec![[0.0f32; 4]; lines];
    let mut out = take_px(w * h);
    let add_row = |acc: &mut [[f32; 4]], r: i64, sign: f32| {
        if r < 0 || r >= h as i64 {
            return;
        }
        let r = r as usize;
        let base = (off - shift[r]) as usize;
        for (x, p) in src[r * w..(r + 1) * w].iter().enumerate() {
            if p[3] == 0.0 {
                continue;
            }
            let a = &mut acc[base + x];
            a[0] += sign * p[0];
            a[1] += sign * p[1];
            a[2] += sign * p[2];
            a[3] += sign * p[3];
        }
    };
    for r in 0..half {
        add_row(&mut acc, r, 1.0);
    }
    for y in 0..h as i64 {
        add_row(&mut acc, y + half, 1.0);
        let base = (off - shift[y as usize]) as usize;
        let row = &mut out[y as usize * w..(y as usize + 1) * w];
        for (x, o) in row.iter_mut().enumerate() {
            let a = acc[base + x];
            *o = [a[0] / n, a[1] / n, a[2] / n, (a[3] / n).max(0.0)];
        }
        add_row(&mut acc, y - half, -1.0);
    }
    out
}

/// Clips a camera-space polygon to the near plane and projects it.
fn project_poly(cam: &Camera, pts: &[V3]) -> Vec<[f32; 3]> {
    let c: Vec<V3> = pts.iter().map(|&p| cam.to_cam(p)).collect();
    let mut out = Vec::with_capacity(c.len() + 2);
    for i in 0..c.len() {
        let a = c[i];
        let b = c[(i + 1) % c.len()];
        let (ia, ib) = (a[2] >= NEAR, b[2] >= NEAR);
        if ia {
            out.push(a);
        }
        if ia != ib {
            let t = (NEAR - a[2]) / (b[2] - a[2]);
            out.push(add(a, scale(sub(b, a), t)));
        }
    }
    out.iter()
        .map(|&q| {
            let p = cam.cam_to_px(q);
            [p[0], p[1], q[2]]
        })
        .collect()
}

/// Inverse of the homography taking the unit square to `q` (TL, TR, BR, BL).
fn square_to_quad_inv(q: &[[f32; 2]; 4]) -> Option<[f64; 9]> {
    let [x0, y0] = q[0].map(f64::from);
    let [x1, y1] = q[1].map(f64::from);
    let [x2, y2] = q[2].map(f64::from);
    let [x3, y3] = q[3].map(f64::from);
    let (dx1, dx2, dx3) = (x1 - x2, x3 - x2, x0 - x1 + x2 - x3);
    let (dy1, dy2, dy3) = (y1 - y2, y3 - y2, y0 - y1 + y2 - y3);
    let det = dx1 * dy2 - dx2 * dy1;
    if det.abs() < 1e-12 {
        return None;
    }
    let g = (dx3 * dy2 - dx2 * dy3) / det;
    let h = (dx1 * dy3 - dx3 * dy1) / det;
    let m = [
        x1 - x0 + g * x1,
        x3 - x0 + h * x3,
        x0,
        y1 - y0 + g * y1,
        y3 - y0 + h * y3,
        y0,
        g,
        h,
        1.0,
    ];
    // Adjugate: the inverse up to scale, which the division removes.
    let inv = [
        m[4] * m[8] - m[5] * m[7],
        m[2] * m[7] - m[1] * m[8],
        m[1] * m[5] - m[2] * m[4],
        m[5] * m[6] - m[3] * m[8],
        m[0] * m[8] - m[2] * m[6],
        m[2] * m[3] - m[0] * m[5],
        m[3] * m[7] - m[4] * m[6],
        m[1] * m[6] - m[0] * m[7],
        m[0] * m[4] - m[1] * m[3],
    ];
    Some(inv)
}

/// What happened to one vehicle while it was drawn.
struct Drawn {
    actor: usize,
    layer: Layer,
    /// Area of the unclipped projected box, for the visible share.
    full_area: f32,
    plate: Option<DrawnPlate>,
}

struct DrawnPlate {
    corners: [[f32; 2]; 4],
    own_hidden: f32,
    white: f32,
    blur: f32,
    glare: f32,
}

fn mat_colour(m: &Model, mat: Mat) -> [f32; 3] {
    match mat {
        Mat::Paint => m.paint,
        Mat::Paint2 => m.paint2,
        Mat::Glass => [0.02, 0.022, 0.025],
        Mat::Tyre => [0.025, 0.025, 0.025],
        Mat::Rim => [0.3, 0.3, 0.31],
        Mat::Plastic => [0.035, 0.035, 0.037],
        Mat::Chrome => [0.45, 0.45, 0.47],
        Mat::Head => [0.5, 0.5, 0.52],
        Mat::Tail => [0.3, 0.02, 0.02],
        Mat::Grille => [0.03, 0.03, 0.032],
        Mat::Rider => m.rider,
        Mat::Helmet => [
            m.paint[1] * 0.5 + 0.05,
            m.paint[1] * 0.5 + 0.05,
            m.paint[2] * 0.5 + 0.05,
        ],
    }
}

/// Renders `actors` into a copy of the world's background.
pub(crate) fn render(
    world: &World,
    actors: &[Actor<'_>],
    frame_seed: u64,
) -> (RgbImage, FrameTruth) {
    let cam = &world.cam;
    let look = &world.look;
    let (fw, fh) = (cam.width as i32, cam.height as i32);
    let mut img = world.background.clone();
    let lights = look.vehicle_lights;

    // Light cones of headlights on the road, under every vehicle.
    if lights > 0.0 {
        for a in actors {
            light_cone(&mut img, cam, look, a, lights);
        }
    }

    let mut order: Vec<(usize, f32)> = actors
        .iter()
        .enumerate()
        .map(|(i, a)| (i, cam.to_cam([a.x, a.y, 0.8])[2]))
        .filter(|(_, d)| *d > -10.0)
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));

    let mut drawn: Vec<Drawn> = Vec::new();
    for &(index, _) in &order {
        if let Some(d) = draw_actor(world, &actors[index], index) {
            d.layer.composite(&mut img, &world.vignette);
            drawn.push(d);
        }
    }

    // Lights glow over everything in front of them.
    let mut glows: Vec<Glow> = Vec::new();
    if lights > 0.0 {
        for (di, d) in drawn.iter().enumerate() {
            let a = &actors[d.actor];
            for (pts, front) in [(&a.model.heads, true), (&a.model.tails, false)] {
                for &p in pts {
                    let wp = a.to_world(p);
                    let facing = a.dir_world([0.0, if front { 1.0 } else { -1.0 }, 0.0]);
                    let cosv = dot(facing, cam.view_dir(wp));
                    if cosv <= 0.05 {
                        continue;
                    }
                    let Some(pp) = cam.project(wp) else { continue };
                    let (px, py) = (pp[0] as i32, pp[1] as i32);
                    if px < 0 || py < 0 || px >= fw || py >= fh {
                        continue;
                    }
                    if drawn[di + 1..]
                        .iter()
                        .any(|n| n.layer.alpha_at(px, py) > 0.5)
                    {
                        continue;
                    }
                    let size = if a.model.class == VehicleClass::Motorcycle {
                        0.06
                    } else {
                        0.09
                    };
                    let g = if front {
                        Glow {
                            x: pp[0],
                            y: pp[1],
                            r: (cam.f * size / pp[2]).max(0.8),
                            colour: [1.0, 0.95, 0.85],
                            strength: lights * cosv.powf(3.0) * 0.9,
                        }
                    } else {
                        Glow {
                            x: pp[0],
                            y: pp[1],
                            r: (cam.f * size * 0.7 / pp[2]).max(0.7),
                            colour: [1.0, 0.12, 0.06],
                            strength: lights * cosv * 0.45,
                        }
                    };
                    g.add_to(&mut img);
                    glows.push(g);
                }
            }
        }
    }

    if look.rain {
        rain_streaks(
            &mut img,
            frame_seed,
            1.0,
            if look.lighting == Lighting::Night {
                0.25
            } else {
                0.4
            },
        );
    }
    world.sensor.apply(&mut img, frame_seed);

    // Ground truth, nearest vehicles drawn last.
    let mut vehicles = Vec::new();
    for (di, d) in drawn.iter().enumerate() {
        let a = &actors[d.actor];
        let nearer = &drawn[di + 1..];
        let b = d.layer.body;
        if b[2] < b[0] {
            continue;
        }
        let bw = (b[2] - b[0] + 1) as f32;
        let bh = (b[3] - b[1] + 1) as f32;
        let clip_share = (bw * bh / d.full_area.max(1.0)).min(1.0);
        // Share of body pixels covered by nearer vehicles, sampled.
        let mut total = 0;
        let mut hidden = 0;
        let step = ((bw * bh / 400.0).sqrt().ceil() as i32).max(1);
        let mut y = b[1];
        while y <= b[3] {
            let mut x = b[0];
            while x <= b[2] {
                let (lx, ly) = (x - d.layer.x0, y - d.layer.y0);
                if d.layer.z[ly as usize * d.layer.w + lx as usize] < SHADOW_Z * 0.5 {
                    total += 1;
                    if nearer.iter().any(|n| n.layer.alpha_at(x, y) > 0.6) {
                        hidden += 1;
                    }
                }
                x += step;
            }
            y += step;
        }
        let occ = if total > 0 {
            hidden as f32 / total as f32
        } else {
            1.0
        };
        if bw < 12.0 || bh < 12.0 {
            continue;
        }
        let mut bbox = [
            b[0] as f32,
            b[1] as f32,
            (b[2] + 1) as f32,
            (b[3] + 1) as f32,
        ];
        let plate = d.plate.as_ref().and_then(|p| {
            let tex = a.plate?;
            let xs = p.corners.map(|c| c[0]);
            let ys = p.corners.map(|c| c[1]);
            let minx = xs.iter().copied().fold(f32::MAX, f32::min);
            let maxx = xs.iter().copied().fold(f32::MIN, f32::max);
            let miny = ys.iter().copied().fold(f32::MAX, f32::min);
            let maxy = ys.iter().copied().fold(f32::MIN, f32::max);
            // Hidden by nearer vehicles: sample a grid over the plate.
            let mut hid = 0;
            for i in 0..12 {
                for j in 0..4 {
                    let u = (i as f32 + 0.5) / 12.0;
                    let v = (j as f32 + 0.5) / 4.0;
                    let top = lerp2(p.corners[0], p.corners[1], u);
                    let bot = lerp2(p.corners[3], p.corners[2], u);
                    let q = lerp2(top, bot, v);
                    if nearer
                        .iter()
                        .any(|n| n.layer.alpha_at(q[0] as i32, q[1] as i32) > 0.5)
                    {
                        hid += 1;
                    }
                }
            }
            let hidden = (hid as f32 / 48.0 + p.own_hidden).min(1.0);
            if hidden > 0.7 {
                return None;
            }
            let top_w = dist2(p.corners[0], p.corners[1]);
            let left_h = dist2(p.corners[0], p.corners[3]);
            let right_h = dist2(p.corners[1], p.corners[2]);
            let layout = tex.spec.layout;
            let char_h = (left_h + right_h) / 2.0 * char_share(layout);
            let min_w = if layout == PlateLayout::SingleLine {
                55.0
            } else {
                38.0
            };
            let min_char = if look.lighting == Lighting::Night {
                9.0
            } else {
                8.0
            };
            let readable = char_h >= min_char
                && top_w >= min_w
                && hidden <= 0.1
                && p.blur <= (0.4 * char_h).max(1.5)
                && p.white >= 70.0
                && p.glare < 90.0
                && tex.spec.dirt < 0.6;
            bbox = [
                bbox[0].min(minx),
                bbox[1].min(miny),
                bbox[2].max(maxx),
                bbox[3].max(maxy),
            ];
            Some(PlateTruth {
                text: tex.spec.text.clone(),
                display: tex.display.clone(),
                format: tex.spec.format,
                layout,
                bbox: [minx, miny, maxx - minx, maxy - miny],
                corners: p.corners,
                readable,
            })
        });
        // Mostly cut off or hidden: dropped, unless its plate is in plain view
        // (a detector must still find that plate).
        if clip_share * (1.0 - occ) < 0.3 && plate.is_none() {
            continue;
        }
        let bbox = [
            bbox[0].max(0.0),
            bbox[1].max(0.0),
            bbox[2].min(fw as f32),
            bbox[3].min(fh as f32),
        ];
        vehicles.push(VehicleTruth {
            id: a.id,
            class: a.model.class,
            colour: a.colour,
            direction: a.dir,
            bbox: [bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]],
            plate,
        });
    }
    vehicles.sort_by_key(|v| v.id);
    let truth = FrameTruth {
        width: cam.width,
        height: cam.height,
        lighting: look.lighting,
        rain: look.rain,
        vehicles,
    };
    (img, truth)
}

fn lerp2(a: [f32; 2], b: [f32; 2], t: f32) -> [f32; 2] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

fn dist2(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Additive pool of headlight on the road ahead of a vehicle.
fn light_cone(img: &mut RgbImage, cam: &Camera, look: &Look, a: &Actor<'_>, lights: f32) {
    let front = a.model.length / 2.0;
    let strips = 10;
    let reach = if a.model.class == VehicleClass::Motorcycle {
        14.0
    } else {
        22.0
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gain = if look.rain { 1.4 } else { 1.0 };
    for k in 0..strips {
        let d0 = front + reach * k as f32 / strips as f32;
        let d1 = front + reach * (k + 1) as f32 / strips as f32;
        let hw = |d: f32| 0.8 + (d - front) * 0.2;
        let pts = [
            a.to_world([-hw(d0), d0, 0.0]),
            a.to_world([hw(d0), d0, 0.0]),
            a.to_world([hw(d1), d1, 0.0]),
            a.to_world([-hw(d1), d1, 0.0]),
        ];
        let proj = project_poly(cam, &pts);
        if proj.len() < 3 {
            continue;
        }
        let t = (k as f32 + 0.5) / strips as f32;
        let add = lights * gain * 38.0 * (1.0 - t).powi(2) * (0.4 + 2.0 * t).min(1.0);
        if add < 0.5 {
            continue;
        }
        let p2: Vec<[f32; 2]> = proj.iter().map(|p| [p[0], p[1]]).collect();
        let buf: &mut [u8] = img;
        fill_convex(&p2, w, h, |x, y| {
            let i = (y * w + x) * 3;
            for (c, m) in [1.0, 0.95, 0.8].iter().enumerate() {
                buf[i + c] = (buf[i + c] as f32 + add * m).min(255.0) as u8;
            }
        });
    }
}

/// Rasterises one vehicle into a layer; `None` when it is out of view.
fn draw_actor(world: &World, a: &Actor<'_>, index: usize) -> Option<Drawn> {
    let cam = &world.cam;
    let look = &world.look;
    let m = a.model;
    let (fw, fh) = (cam.width as i32, cam.height as i32);

    // Image motion during the exposure, from the centre of the vehicle.
    let centre = [a.x, a.y, m.height * 0.4];
    let half = scale(a.heading(), a.speed * look.exposure_s / 2.0);
    let blur = match (
        cam.project(sub(centre, half)),
        cam.project(add(centre, half)),
    ) {
        (Some(p0), Some(p1)) => [p1[0] - p0[0], p1[1] - p0[1]],
        _ => [0.0, 0.0],
    };
    let margin = (blur[0].abs().max(blur[1].abs()) / 2.0).ceil() as i32 + 2;

    // Projected polygons that face the camera.
    let mut polys: Vec<(Vec<[f32; 3]>, usize)> = Vec::with_capacity(m.polys.len());
    let (mut minx, mut miny, mut maxx, mut maxy) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for (pi, p) in m.polys.iter().enumerate() {
        let wp: Vec<V3> = p.pts.iter().map(|&q| a.to_world(q)).collect();
        let n = a.dir_world(p.normal);
        if dot(n, sub(cam.pos, wp[0])) <= 0.0 {
            continue;
        }
        let pr = project_poly(cam, &wp);
        if pr.len() < 3 {
            continue;
        }
        for q in &pr {
            minx = minx.min(q[0]);
            maxx = maxx.max(q[0]);
            miny = miny.min(q[1]);
            maxy = maxy.max(q[1]);
        }
        polys.push((pr, pi));
    }
    if polys.is_empty() {
        return None;
    }
    let full_area = (maxx - minx).max(1.0) * (maxy - miny).max(1.0);
    if maxx < 0.0 || maxy < 0.0 || minx > fw as f32 || miny > fh as f32 {
        return None;
    }
    if (maxx - minx) > 20.0 * fw as f32 {
        return None;
    }

    // Shadow on the ground: the box swept along the sunlight, and a dark
    // patch right under the body.
    let mut shadow_polys: Vec<(Vec<[f32; 3]>, f32)> = Vec::new();
    let (hl, hw) = (m.length / 2.0, m.width / 2.0);
    let foot = [[-hw, -hl], [hw, -hl], [hw, hl], [-hw, hl]];
    let under: Vec<V3> = foot
        .iter()
        .map(|f| a.to_world([f[0] * 1.03, f[1] * 1.01, 0.0]))
        .collect();
    shadow_polys.push((project_poly(cam, &under), 0.55));
    let s = look.sun_dir;
    if look.sun[0] > 0.0 && s[2] > 0.05 {
        let mut g: Vec<[f32; 2]> = Vec::new();
        for f in foot {
            let w0 = a.to_world([f[0], f[1], 0.0]);
            g.push([w0[0], w0[1]]);
            let k = (m.height * 0.85 / s[2]).min(14.0);
            g.push([w0[0] - s[0] * k, w0[1] - s[1] * k]);
        }
        let hull = convex_hull(&mut g);
        let wp: Vec<V3> = hull.iter().map(|p| [p[0], p[1], 0.0]).collect();
        let strength = (look.sun[0] / (look.sun[0] + look.ambient[0] * 0.55)).min(0.62);
        shadow_polys.push((project_poly(cam, &wp), strength));
    }
    for (sp, _) in &shadow_polys {
        for q in sp {
            minx = minx.min(q[0]);
            maxx = maxx.max(q[0]);
            miny = miny.min(q[1]);
            maxy = maxy.max(q[1]);
        }
    }
    let x0 = ((minx.floor() as i32) - margin).max(0);
    let y0 = ((miny.floor() as i32) - margin).max(0);
    let x1 = ((maxx.ceil() as i32) + margin).min(fw);
    let y1 = ((maxy.ceil() as i32) + margin).min(fh);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let mut layer = Layer::new(x0, y0, (x1 - x0) as usize, (y1 - y0) as usize);

    for (k, (sp, strength)) in shadow_polys.iter().enumerate() {
        let z = SHADOW_Z * (2.0 - k as f32 * 0.1);
        for t in 1..sp.len().saturating_sub(1) {
            let v = [sp[0], sp[t], sp[t + 1]].map(|q| [q[0], q[1], z]);
            layer.tri(v, [[0.0; 3]; 3], 0.0, *strength);
        }
    }

    // Light on this vehicle.
    let lamp = world.road.lamp_light(look, a.x, a.y, 1.0);
    let lights = look.vehicle_lights;
    let sky = [
        look.sky_horizon[0] * 1.6,
        look.sky_horizon[1] * 1.6,
        look.sky_horizon[2] * 1.6,
    ];
    for (pr, pi) in &polys {
        let p = &m.polys[*pi];
        let n = a.dir_world(p.normal);
        let albedo = mat_colour(m, p.mat);
        let mut e = look.irradiance(n, false);
        for (i, ei) in e.iter_mut().enumerate() {
            *ei += lamp * look.lamp_colour[i] * (0.5 + 0.5 * n[2].max(0.0));
        }
        let base = match p.mat {
            Mat::Head if lights > 0.0 => {
                [6.0 * lights + 0.5, 5.8 * lights + 0.5, 5.0 * lights + 0.5]
            }
            Mat::Tail if lights > 0.0 => [2.5 * lights + 0.1, 0.1, 0.06],
            Mat::Glass => {
                let k = 0.05 + 0.35 * n[2].max(0.0);
                [
                    albedo[0] * e[0] + sky[0] * k,
                    albedo[1] * e[1] + sky[1] * k,
                    albedo[2] * e[2] + sky[2] * k,
                ]
            }
            Mat::Paint | Mat::Paint2 | Mat::Chrome | Mat::Head => {
                // Clear coat: a little sky reflection on top of the colour.
                let k = 0.03 + 0.08 * n[2].max(0.0);
                [
                    albedo[0] * e[0] + sky[0] * k,
                    albedo[1] * e[1] + sky[1] * k,
                    albedo[2] * e[2] + sky[2] * k,
                ]
            }
            _ => [albedo[0] * e[0], albedo[1] * e[1], albedo[2] * e[2]],
        };
        let emissive = matches!(p.mat, Mat::Head | Mat::Tail) && lights > 0.0;
        let colours: Vec<[f32; 3]> = p
            .pts
            .iter()
            .zip(pr.iter())
            .map(|(lp, q)| {
                // Darker low down: light from the sky is blocked by the body.
                let ao = if emissive {
                    1.0
                } else {
                    0.6 + 0.4 * (lp[2] / 0.9).clamp(0.0, 1.0)
                };
                let c = look.fogged([base[0] * ao, base[1] * ao, base[2] * ao], q[2]);
                look.tone(c)
            })
            .collect();
        // After near-plane clipping the vertex count can differ; fall back to
        // the mean colour then.
        let flat = {
            let n = colours.len() as f32;
            colours.iter().fold([0.0; 3], |acc, c| {
                [acc[0] + c[0] / n, acc[1] + c[1] / n, acc[2] + c[2] / n]
            })
        };
        let same = colours.len() == pr.len();
        for t in 1..pr.len() - 1 {
            let c = if same {
                [colours[0], colours[t], colours[t + 1]]
            } else {
                [flat; 3]
            };
            layer.tri([pr[0], pr[t], pr[t + 1]], c, p.bias, 1.0);
        }
    }
    if layer.body[2] < layer.body[0] {
        return None;
    }
    layer.soften();

    let plate = draw_plate(world, a, &mut layer, lamp);
    layer.motion_blur(blur[0], blur[1]);
    Some(Drawn {
        actor: index,
        layer,
        full_area,
        plate,
    })
}

fn draw_plate(world: &World, a: &Actor<'_>, layer: &mut Layer, lamp: f32) -> Option<DrawnPlate> {
    let cam = &world.cam;
    let look = &world.look;
    let tex = a.plate?;
    let m = a.model;
    let mount = match a.dir {
        Direction::Towards => m.front_plate?,
        Direction::Away => m.rear_plate?,
    };
    let corners3 = mount.corners().map(|c| a.to_world(c));
    let normal = a.dir_world([0.0, mount.facing, 0.0]);
    let centre3 = a.to_world(mount.centre);
    if dot(normal, cam.view_dir(centre3)) < 0.1 {
        return None;
    }
    let mut corners = [[0.0f32; 2]; 4];
    let mut depths = [0.0f32; 4];
    for i in 0..4 {
        let p = cam.project(corners3[i])?;
        corners[i] = [p[0], p[1]];
        depths[i] = p[2];
    }
    let (fw, fh) = (cam.width as f32, cam.height as f32);
    if corners
        .iter()
        .any(|c| c[0] < 0.0 || c[1] < 0.0 || c[0] > fw || c[1] > fh)
    {
        return None;
    }
    let inv = square_to_quad_inv(&corners)?;

    // Light on the plate.
    let mut e = look.irradiance(normal, false);
    let night = look.lighting != Lighting::Day;
    let lit = if night && mount.facing < 0.0 {
        m.plate_lamp.max(if tex.favoured { 0.7 } else { 0.0 })
    } else if night && tex.favoured {
        0.5
    } else {
        0.0
    };
    for (i, ei) in e.iter_mut().enumerate() {
        *ei += lamp * look.lamp_colour[i] * 0.5 + lit * [1.0, 0.95, 0.85][i];
    }
    let dist = depths.iter().sum::<f32>() / 4.0;
    let lut: Vec<[f32; 256]> = (0..3)
        .map(|c| {
            let mut t = [0.0f32; 256];
            for (v, tv) in t.iter_mut().enumerate() {
                let l = srgb_to_linear(v as u8) * 0.8 * e[c];
                let mut rgb = [0.0; 3];
                rgb[c] = l;
                let f = look.fogged(rgb, dist);
                *tv = look.tone([f[c]; 3])[c];
            }
            t
        })
        .collect();
    let white = (lut[0][255] + lut[1][255] + lut[2][255]) / 3.0;

    // Mip level by how many texels fall on one pixel.
    let quad_w = dist2(corners[0], corners[1]).max(1.0);
    let ratio = tex.levels[0].width() as f32 / quad_w;
    let level = (ratio.log2().floor().max(0.0) as usize).min(tex.levels.len() - 1);
    let t = &tex.levels[level];
    let (tw, th) = (t.width() as f32, t.height() as f32);
    let raw: &[u8] = t.as_raw();
    let tws = t.width() as usize;

    let xs = corners.map(|c| c[0]);
    let ys = corners.map(|c| c[1]);
    let bx0 = (xs.iter().copied().fold(f32::MAX, f32::min).floor() as i32).max(layer.x0);
    let bx1 = (xs.iter().copied().fold(f32::MIN, f32::max).ceil() as i32)
        .min(layer.x0 + layer.w as i32 - 1);
    let by0 = (ys.iter().copied().fold(f32::MAX, f32::min).floor() as i32).max(layer.y0);
    let by1 = (ys.iter().copied().fold(f32::MIN, f32::max).ceil() as i32)
        .min(layer.y0 + layer.h as i32 - 1);
    let mut total = 0u32;
    let mut hidden = 0u32;
    let sample = |x: i32, y: i32, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= tws as i32 || y >= t.height() as i32 {
            return 0.0;
        }
        raw[(y as usize * tws + x as usize) * 4 + c] as f32
    };
    for y in by0..=by1 {
        for x in bx0..=bx1 {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let wq = inv[6] * px + inv[7] * py + inv[8];
            let u = ((inv[0] * px + inv[1] * py + inv[2]) / wq) as f32;
            let v = ((inv[3] * px + inv[4] * py + inv[5]) / wq) as f32;
            if !(-0.02..=1.02).contains(&u) || !(-0.05..=1.05).contains(&v) {
                continue;
            }
            let sx = u * tw - 0.5;
            let sy = v * th - 0.5;
            let (ix, iy) = (sx.floor() as i32, sy.floor() as i32);
            let (fx, fy) = (sx - ix as f32, sy - iy as f32);
            let mut px4 = [0.0f32; 4];
            for (c, pc) in px4.iter_mut().enumerate() {
                let a0 = sample(ix, iy, c) * (1.0 - fx) + sample(ix + 1, iy, c) * fx;
                let a1 = sample(ix, iy + 1, c) * (1.0 - fx) + sample(ix + 1, iy + 1, c) * fx;
                *pc = a0 * (1.0 - fy) + a1 * fy;
            }
            // Texels outside the picture read as transparent black, so
            // colours are premultiplied here.
            let alpha = px4[3] / 255.0;
            if alpha < 0.01 {
                continue;
            }
            let zt = depths[0] * (1.0 - u) * (1.0 - v)
                + depths[1] * u * (1.0 - v)
                + depths[2] * u * v
                + depths[3] * (1.0 - u) * v;
            let i = (y - layer.y0) as usize * layer.w + (x - layer.x0) as usize;
            if (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) {
                total += 1;
            }
            if zt - 0.02 > layer.z[i] {
                if (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) {
                    hidden += 1;
                }
                continue;
            }
            let mut c = [0.0; 3];
            for k in 0..3 {
                let val = (px4[k] / alpha).clamp(0.0, 255.0) as usize;
                c[k] = lut[k][val];
            }
            let old = layer.px[i];
            for k in 0..3 {
                layer.px[i][k] = old[k] * (1.0 - alpha) + c[k] * alpha;
            }
            layer.px[i][3] = old[3] + alpha * (1.0 - old[3]);
        }
    }

    // Blur of the plate itself.
    let half = scale(a.heading(), a.speed * look.exposure_s / 2.0);
    let blur = match (
        cam.project(sub(centre3, half)),
        cam.project(add(centre3, half)),
    ) {
        (Some(p0), Some(p1)) => dist2([p0[0], p0[1]], [p1[0], p1[1]]),
        _ => 0.0,
    };
    // Glare from the vehicle's own headlights around a front plate.
    let mut glare = 0.0;
    if mount.facing > 0.0 && look.vehicle_lights > 0.0 {
        let pc = cam.project(centre3)?;
        for &h in &m.heads {
            if let Some(hp) = cam.project(a.to_world(h)) {
                let g = Glow {
                    x: hp[0],
                    y: hp[1],
                    r: (cam.f * 0.09 / hp[2]).max(0.8),
                    colour: [1.0; 3],
                    strength: look.vehicle_lights * 0.9,
                };
                glare += g.falloff((hp[0] - pc[0]).powi(2) + (hp[1] - pc[1]).powi(2)) * 255.0;
            }
        }
        if tex.favoured {
            glare *= 0.3;
        }
    }
    Some(DrawnPlate {
        corners,
        own_hidden: if total > 0 {
            hidden as f32 / total as f32
        } else {
            0.0
        },
        white,
        blur,
        glare,
    })
}

/// Convex hull (monotone chain), counter-clockwise.
fn convex_hull(pts: &mut [[f32; 2]]) -> Vec<[f32; 2]> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut lower: Vec<[f32; 2]> = Vec::new();
    for &p in pts.iter() {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<[f32; 2]> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// A random plate for a vehicle; motorcycles carry square two-line plates.
pub(crate) fn random_plate<R: Rng>(rng: &mut R, class: VehicleClass) -> PlateSpec {
    let mut spec = PlateSpec::random(rng);
    if class == VehicleClass::Motorcycle {
        spec.layout = PlateLayout::TwoLine;
    } else if spec.layout == PlateLayout::TwoLine && rng.gen_bool(0.7) {
        spec.layout = PlateLayout::SingleLine;
    }
    spec
}

/// The plate of a scripted pass.
pub(crate) fn scripted_plate(text: &str, seed: u64) -> PlateSpec {
    let (text, format) = match safecity_core::parse_plate(text) {
        Ok(p) => (p.text, p.format),
        Err(_) => (text.to_owned(), safecity_core::PlateFormat::Foreign),
    };
    PlateSpec {
        text,
        format,
        layout: PlateLayout::SingleLine,
        dirt: 0.0,
        style_seed: seed,
    }
}

/// Deterministic per-frame seed.
pub(crate) fn frame_seed(seed: u64, index: u64) -> u64 {
    (hash01(seed as i32, (seed >> 32) as i32, index as u32) * 4.0e9) as u64
        ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Where a plate's centre lands in the image for a vehicle of `model`
/// centred at `(x, y)` driving in `dir`.
pub(crate) fn plate_pixel(
    cam: &Camera,
    model: &Model,
    dir: Direction,
    x: f32,
    y: f32,
) -> Option<([f32; 3], f32)> {
    let mount = match dir {
        Direction::Towards => model.front_plate?,
        Direction::Away => model.rear_plate?,
    };
    let s = if dir == Direction::Away { 1.0 } else { -1.0 };
    let c = mount.corners().map(|p| [x + s * p[0], y + s * p[1], p[2]]);
    let p0 = cam.project(c[0])?;
    let p1 = cam.project(c[1])?;
    let centre = cam.project([
        x + s * mount.centre[0],
        y + s * mount.centre[1],
        mount.centre[2],
    ])?;
    Some((centre, dist2([p0[0], p0[1]], [p1[0], p1[1]])))
}

/// Image-space box of a vehicle of `model` at `(x, y)`, unclipped.
pub(crate) fn vehicle_box(cam: &Camera, model: &Model, x: f32, y: f32) -> Option<[f32; 4]> {
    let (hl, hw) = (model.length / 2.0, model.width / 2.0);
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for dx in [-hw, hw] {
        for dy in [-hl, hl] {
            for z in [0.0, model.height] {
                let p = cam.project([x + dx, y + dy, z])?;
                b = [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ];
            }
        }
    }
    Some(b)
}

/// Colour names for random vehicles, weighted like a city's traffic.
pub(crate) fn random_colour<R: Rng>(rng: &mut R) -> VehicleColour {
    let w = [22, 14, 16, 12, 8, 9, 5, 4, 5];
    let total: u32 = w.iter().sum();
    let mut r = rng.gen_range(0..total);
    for (i, wi) in w.iter().enumerate() {
        if r < *wi {
            return VehicleColour::ALL[i];
        }
        r -= wi;
    }
    VehicleColour::White
}

/// Random class, mostly cars.
pub(crate) fn random_class<R: Rng>(rng: &mut R) -> VehicleClass {
    match rng.gen_range(0..100) {
        0..=74 => VehicleClass::Car,
        75..=81 => VehicleClass::Bus,
        82..=91 => VehicleClass::Truck,
        _ => VehicleClass::Motorcycle,
    }
}
