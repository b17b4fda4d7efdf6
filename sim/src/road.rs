//! The static part of a scene: road, markings, pavements, buildings, trees
//! and street lamps, ray-cast once per scene into a background image.

use image::RgbImage;
use rand::Rng;
use rayon::prelude::*;

use super::camera::{normalize, Camera, V3};
use super::effects::{fill_convex, vignette_table, Look};
use super::raster::{hash01, value_noise};
use super::truth::{Direction, Lighting};

#[derive(Debug, Clone)]
pub(crate) struct Lane {
    /// Centre line of the lane.
    pub x: f32,
    pub dir: Direction,
}

#[derive(Debug, Clone)]
enum FacadeKind {
    Building {
        colour: [f32; 3],
        floor_h: f32,
        bay_w: f32,
        shop: bool,
    },
    Fence {
        colour: [f32; 3],
        panel_w: f32,
    },
    Open,
}

#[derive(Debug, Clone)]
struct Facade {
    y0: f32,
    y1: f32,
    height: f32,
    kind: FacadeKind,
}

#[derive(Debug, Clone)]
pub(crate) struct Lamp {
    /// The light itself, above the road.
    pub head: V3,
    /// Foot of the pole.
    pub foot: V3,
}

#[derive(Debug, Clone)]
struct Tree {
    x: f32,
    y: f32,
    trunk_h: f32,
    r: f32,
    colour: [f32; 3],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Centre {
    Solid,
    Double,
    Dashed,
}

/// One road and its surroundings.
#[derive(Debug, Clone)]
pub(crate) struct Road {
    pub lanes: Vec<Lane>,
    pub lane_w: f32,
    pub half_w: f32,
    /// Per side (0: x < 0, 1: x > 0): kerb, pavement and verge widths.
    pave_w: [f32; 2],
    grass: [bool; 2],
    /// Distance of the first and second row of frontages from the road centre.
    front_x: [f32; 2],
    back_x: [f32; 2],
    front: [Vec<Facade>; 2],
    back: [Vec<Facade>; 2],
    pub lamps: Vec<Lamp>,
    trees: Vec<Tree>,
    centre: Centre,
    edge_lines: bool,
    dash_phase: f32,
    crossing: Option<(f32, f32)>,
    asphalt: [f32; 3],
    pave: [f32; 3],
    seed: u32,
}

const KERB_W: f32 = 0.25;

impl Road {
    pub fn random<R: Rng>(rng: &mut R) -> Road {
        let n = rng.gen_range(2..=4usize);
        let lane_w = rng.gen_range(3.2..3.75);
        let half_w = n as f32 * lane_w / 2.0;
        let one_way = rng.gen_bool(0.12);
        let towards_n = if one_way {
            if rng.gen_bool(0.5) {
                n
            } else {
                0
            }
        } else {
            match n {
                2 => 1,
                3 => rng.gen_range(1..=2),
                _ => 2,
            }
        };
        // Right-hand traffic: vehicles coming towards the camera use the
        // lanes on the -x side.
        let lanes = (0..n)
            .map(|i| Lane {
                x: -half_w + lane_w * (i as f32 + 0.5),
                dir: if i < towards_n {
                    Direction::Towards
                } else {
                    Direction::Away
                },
            })
            .collect();
        let side = |rng: &mut R| {
            let pave = rng.gen_range(1.5..5.0);
            let verge = if rng.gen_bool(0.6) {
                rng.gen_range(1.0..6.0)
            } else {
                0.0
            };
            (pave, verge, rng.gen_bool(0.6))
        };
        let (p0, v0, g0) = side(rng);
        let (p1, v1, g1) = side(rng);
        let front_x = [
            half_w + KERB_W + p0 + v0 + rng.gen_range(0.5..8.0),
            half_w + KERB_W + p1 + v1 + rng.gen_range(0.5..8.0),
        ];
        let back_x = [
            front_x[0] + rng.gen_range(10.0..40.0),
            front_x[1] + rng.gen_range(10.0..40.0),
        ];
        let front = [facades(rng, true), facades(rng, true)];
        let back = [facades(rng, false), facades(rng, false)];
        let mut lamps = Vec::new();
        let spacing = rng.gen_range(25.0..40.0);
        let lamp_h = rng.gen_range(8.0..11.0);
        let both = rng.gen_bool(0.5);
        let mut y = rng.gen_range(-10.0..15.0);
        let mut k = 0;
        while y < 400.0 {
            let s = if both { k % 2 } else { 1 };
            let sign = if s == 0 { -1.0 } else { 1.0 };
            let fx = sign * (half_w + KERB_W + 0.6);
            lamps.push(Lamp {
                head: [fx - sign * 1.8, y, lamp_h],
                foot: [fx, y, 0.0],
            });
            y += spacing;
            k += 1;
        }
        let mut trees = Vec::new();
        for s in 0..2 {
            if v_or_pave(if s == 0 { v0 } else { v1 }) && rng.gen_bool(0.75) {
                let sign = if s == 0 { -1.0 } else { 1.0 };
                let xm = half_w + KERB_W + [p0, p1][s] + [v0, v1][s] * 0.5;
                let mut y = rng.gen_range(0.0..10.0);
                let step = rng.gen_range(7.0..15.0);
                let autumn = rng.gen_bool(0.2);
                while y < 300.0 {
                    let g = rng.gen_range(0.6..1.2);
                    trees.push(Tree {
                        x: sign * (xm + rng.gen_range(-0.3..0.3)),
                        y,
                        trunk_h: rng.gen_range(1.8..3.0),
                        r: rng.gen_range(1.5..3.2),
                        colour: if autumn {
                            [0.25 * g, 0.18 * g, 0.03]
                        } else {
                            [0.04 * g, 0.09 * g, 0.03 * g]
                        },
                    });
                    y += step * rng.gen_range(0.7..1.3);
                }
            }
        }
        let grey = rng.gen_range(0.07..0.14);
        Road {
            lanes,
            lane_w,
            half_w,
            pave_w: [p0, p1],
            grass: [g0, g1],
            front_x,
            back_x,
            front,
            back,
            lamps,
            trees,
            centre: match rng.gen_range(0..3) {
                0 => Centre::Solid,
                1 => Centre::Double,
                _ => Centre::Dashed,
            },
            edge_lines: rng.gen_bool(0.6),
            dash_phase: rng.gen_range(0.0..9.0),
            crossing: if rng.gen_bool(0.3) {
                let y = rng.gen_range(8.0..40.0);
                Some((y, y + rng.gen_range(3.0..5.0)))
            } else {
                None
            },
            asphalt: [
                grey,
                grey * rng.gen_range(0.97..1.03),
                grey * rng.gen_range(0.98..1.06),
            ],
            pave: {
                let p = rng.gen_range(0.18..0.32);
                [p, p * 0.98, p * 0.95]
            },
            seed: rng.gen(),
        }
    }

    /// Lanes whose traffic drives in `dir`.
    pub fn lanes_for(&self, dir: Direction) -> Vec<f32> {
        self.lanes
            .iter()
            .filter(|l| l.dir == dir)
            .map(|l| l.x)
            .collect()
    }

    /// Street-lamp light reaching a point on or above the ground.
    pub fn lamp_light(&self, look: &Look, x: f32, y: f32, z: f32) -> f32 {
        if !look.lamps_on {
            return 0.0;
        }
        let mut e = 0.0;
        for l in &self.lamps {
            if (l.head[1] - y).abs() > 60.0 {
                continue;
            }
            let dx = x - l.head[0];
            let dy = y - l.head[1];
            let dz = (l.head[2] - z).max(0.5);
            let d2 = dx * dx + dy * dy + dz * dz;
            // Inverse square with the cosine of incidence on the ground.
            e += 30.0 * dz / (d2 * d2.sqrt());
        }
        e * if look.lighting == Lighting::Night {
            1.0
        } else {
            0.5
        }
    }

    /// Whether the sun reaches ground point `(x, y)`.
    fn sun_shadow(&self, look: &Look, x: f32, y: f32) -> bool {
        let s = look.sun_dir;
        if s[2] <= 0.02 || look.sun[0] <= 0.0 {
            return false;
        }
        // Frontages on the side the sun shines from.
        let side = if s[0] < 0.0 { 0 } else { 1 };
        let sign = if side == 0 { -1.0 } else { 1.0 };
        let wall = sign * self.front_x[side];
        let t = (wall - x) / s[0];
        if t > 0.0 {
            let z = t * s[2];
            let yy = y + t * s[1];
            if let Some(f) = facade_at(&self.front[side], yy) {
                if z < f.height {
                    return true;
                }
            }
            let t2 = (sign * self.back_x[side] - x) / s[0];
            if let Some(f) = facade_at(&self.back[side], y + t2 * s[1]) {
                if t2 * s[2] < f.height {
                    return true;
                }
            }
        }
        for tr in &self.trees {
            let cz = tr.trunk_h + tr.r * 0.8;
            let t = cz / s[2];
            let px = x + s[0] * t - tr.x;
            let py = y + s[1] * t - tr.y;
            if px * px + py * py < tr.r * tr.r * 0.8 {
                return true;
            }
        }
        for l in &self.lamps {
            // The pole's shadow: a thin line from its foot away from the sun.
            let dx = x - l.foot[0];
            let dy = y - l.foot[1];
            let hx = -s[0];
            let hy = -s[1];
            let hl = (hx * hx + hy * hy).sqrt().max(1e-6);
            let along = (dx * hx + dy * hy) / hl;
            let len = l.head[2] * hl / s[2];
            if along > 0.0 && along < len && (dx * hy - dy * hx).abs() / hl < 0.08 {
                return true;
            }
        }
        false
    }

    /// Albedo of the ground at `(x, y)`; `fp` is the pixel footprint in metres,
    /// used to fade detail finer than a pixel.
    fn ground(&self, look: &Look, x: f32, y: f32, fp: f32) -> [f32; 3] {
        let ax = x.abs();
        let side = usize::from(x > 0.0);
        let seed = self.seed;
        let fine = |scale: f32| (scale / fp - 0.5).clamp(0.0, 1.0);
        if ax < self.half_w {
            let mut c = self.asphalt;
            let n1 = value_noise(x * 0.3, y * 0.3, seed) - 0.5;
            let n2 = (value_noise(x * 3.0, y * 3.0, seed + 1) - 0.5) * fine(0.3);
            let n3 = (hash01((x * 40.0) as i32, (y * 40.0) as i32, seed + 2) - 0.5) * fine(0.05);
            let mut k = 1.0 + n1 * 0.25 + n2 * 0.2 + n3 * 0.35;
            // Patches of newer or older asphalt.
            let (cx, cy) = ((x / 3.0).floor() as i32, (y / 7.0).floor() as i32);
            let h = hash01(cx, cy, seed + 3);
            if h < 0.12 {
                let fx = x / 3.0 - cx as f32;
                let fy = y / 7.0 - cy as f32;
                if fx > 0.15 && fx < 0.85 && fy > 0.2 && fy < 0.7 {
                    k *= if h < 0.06 { 0.75 } else { 1.18 };
                }
            }
            // Cracks along noise ridges.
            // Cracks along noise ridges, only in worn stretches.
            let cr = (value_noise(x * 1.7, y * 1.1, seed + 4) - 0.5).abs();
            if cr < 0.006 && value_noise(x * 0.2, y * 0.1, seed + 15) > 0.62 {
                k *= 1.0 - 0.35 * fine(0.02);
            }
            // Darker wheel tracks in each lane.
            for l in &self.lanes {
                let d = (x - l.x).abs();
                if (d - 0.85).abs() < 0.3 {
                    k *= 0.92;
                }
                if d < 0.4 {
                    // Oil drips down the lane centre.
                    k *= 1.0 - 0.12 * value_noise(x * 2.0, y * 0.5, seed + 5);
                }
            }
            let paint = self.marking(x, y, fp);
            c = [c[0] * k, c[1] * k, c[2] * k];
            if paint > 0.0 {
                let wear = 0.55 + 0.45 * value_noise(x * 2.0, y * 2.0, seed + 6);
                let p = paint * wear;
                c = [
                    c[0] + (0.6 - c[0]) * p,
                    c[1] + (0.6 - c[1]) * p,
                    c[2] + (0.58 - c[2]) * p,
                ];
            }
            if look.rain {
                c = [c[0] * 0.55, c[1] * 0.55, c[2] * 0.58];
            }
            return c;
        }
        let d = ax - self.half_w;
        if d < KERB_W {
            let k = 0.9 + 0.2 * value_noise(y * 2.0, 0.0, seed + 7);
            let stripe = ((y / 1.0).floor() as i32).rem_euclid(2) == 0
                && side == 1
                && self.seed.is_multiple_of(5);
            let base = if stripe {
                [0.05, 0.05, 0.05]
            } else {
                [0.4, 0.4, 0.38]
            };
            return [base[0] * k, base[1] * k, base[2] * k];
        }
        let d = d - KERB_W;
        if d < self.pave_w[side] {
            let mut c = self.pave;
            // Paving slabs: joints every 0.5 m.
            let jx = ((d / 0.5).fract() - 0.5).abs();
            let jy = ((y / 0.5).fract() - 0.5).abs();
            if (jx > 0.46 || jy > 0.46) && fp < 0.08 {
                c = [c[0] * 0.7, c[1] * 0.7, c[2] * 0.7];
            }
            let k = 0.85 + 0.3 * value_noise(x * 1.3, y * 1.3, seed + 8);
            return [c[0] * k, c[1] * k, c[2] * k];
        }
        let n = value_noise(x * 0.7, y * 0.7, seed + 9);
        let n2 = value_noise(x * 5.0, y * 5.0, seed + 10) * fine(0.2);
        if self.grass[side] {
            let k = 0.7 + 0.4 * n + 0.2 * n2;
            [0.05 * k, 0.09 * k, 0.03 * k]
        } else {
            let k = 0.7 + 0.4 * n + 0.2 * n2;
            [0.13 * k, 0.1 * k, 0.07 * k]
        }
    }

    /// Paint coverage (0..1) of lane markings at a road point.
    fn marking(&self, x: f32, y: f32, fp: f32) -> f32 {
        let lw = 0.13f32.max(fp * 0.5);
        let line = |c: f32| {
            let d = (x - c).abs();
            if d < lw / 2.0 {
                (0.13 / lw).min(1.0)
            } else {
                0.0
            }
        };
        let mut p: f32 = 0.0;
        if self.edge_lines {
            p = p.max(line(-self.half_w + 0.3)).max(line(self.half_w - 0.3));
        }
        let dashed = ((y + self.dash_phase).rem_euclid(9.0)) < 3.0;
        for i in 1..self.lanes.len() {
            let b = -self.half_w + self.lane_w * i as f32;
            let split = self.lanes[i - 1].dir != self.lanes[i].dir;
            if split {
                match self.centre {
                    Centre::Solid => p = p.max(line(b)),
                    Centre::Double => p = p.max(line(b - 0.12)).max(line(b + 0.12)),
                    Centre::Dashed => {
                        if dashed {
                            p = p.max(line(b));
                        }
                    }
                }
            } else if dashed {
                p = p.max(line(b));
            }
        }
        if let Some((y0, y1)) = self.crossing {
            if y > y0 && y < y1 && x.abs() < self.half_w - 0.2 && (x * 2.0).rem_euclid(2.0) < 1.0 {
                p = 1.0;
            }
            if y > y0 - 1.5 && y < y0 - 1.1 && x < 0.0 {
                // Stop line for traffic coming towards the camera.
                p = 1.0;
            }
        }
        p
    }

    /// Radiance seen along a ray; `fp_per_m` is pixel footprint per metre of
    /// distance.
    fn shade_ray(&self, look: &Look, o: V3, d: V3, fp_per_m: f32) -> [f32; 3] {
        let dn = normalize(d);
        let t_ground = if dn[2] < -1e-5 {
            -o[2] / dn[2]
        } else {
            f32::MAX
        };
        // Frontages on the side the ray goes to.
        let mut best: Option<(f32, [f32; 3])> = None;
        if dn[0].abs() > 1e-5 {
            let side = usize::from(dn[0] > 0.0);
            let sign = if side == 0 { -1.0 } else { 1.0 };
            for (row, xs) in [
                (&self.front[side], self.front_x[side]),
                (&self.back[side], self.back_x[side]),
            ] {
                let t = (sign * xs - o[0]) / dn[0];
                if t <= 0.0 || t >= t_ground {
                    continue;
                }
                let y = o[1] + t * dn[1];
                let z = o[2] + t * dn[2];
                if let Some(f) = facade_at(row, y) {
                    if z < f.height && z >= 0.0 {
                        let c = self.facade(look, f, sign, sign * xs, y, z, t * fp_per_m);
                        best = Some((t, c));
                        break;
                    }
                }
            }
        }
        if let Some((t, c)) = best {
            return look.fogged(c, t);
        }
        if t_ground < 5000.0 {
            let x = o[0] + t_ground * dn[0];
            let y = o[1] + t_ground * dn[1];
            let alb = self.ground(look, x, y, t_ground * fp_per_m / (-dn[2]).max(0.05));
            let shadow = self.sun_shadow(look, x, y);
            let mut e = look.irradiance([0.0, 0.0, 1.0], shadow);
            let lamp = self.lamp_light(look, x, y, 0.0);
            for (i, ei) in e.iter_mut().enumerate() {
                *ei += lamp * look.lamp_colour[i];
            }
            let mut c = [alb[0] * e[0], alb[1] * e[1], alb[2] * e[2]];
            if look.rain {
                // Wet asphalt mirrors the sky at grazing angles.
                let fres = (1.0 + dn[2]).powi(6) * 0.5;
                let puddle = value_noise(x * 0.4, y * 0.25, self.seed + 11);
                let k = fres * if puddle > 0.6 { 1.6 } else { 0.6 };
                for (i, ci) in c.iter_mut().enumerate() {
                    *ci += look.sky_horizon[i]
                        * k
                        * if look.lighting == Lighting::Night {
                            0.5
                        } else {
                            1.0
                        };
                }
            }
            return look.fogged(c, t_ground);
        }
        self.sky(look, dn)
    }

    fn sky(&self, look: &Look, dn: V3) -> [f32; 3] {
        let t = dn[2].clamp(0.0, 1.0).powf(0.6);
        let mut c = [0.0; 3];
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = look.sky_horizon[i] + (look.sky_top[i] - look.sky_horizon[i]) * t;
        }
        if look.lighting == Lighting::Day {
            let cl = value_noise(
                dn[0] / (dn[2] + 0.1) * 3.0,
                dn[1] / (dn[2] + 0.1) * 3.0,
                self.seed + 12,
            );
            let k = ((cl - 0.45) * 2.5).clamp(0.0, 1.0);
            for ci in c.iter_mut() {
                *ci += (0.95 - *ci) * k * 0.7;
            }
        }
        [c[0] * 1.6, c[1] * 1.6, c[2] * 1.6]
    }

    #[allow(clippy::too_many_arguments)]
    fn facade(
        &self,
        look: &Look,
        f: &Facade,
        sign: f32,
        x: f32,
        y: f32,
        z: f32,
        fp: f32,
    ) -> [f32; 3] {
        let normal = [-sign, 0.0, 0.0];
        let lit = look.irradiance(normal, false);
        let lamp = self.lamp_light(look, x, y, z) * 0.6;
        let e = [
            lit[0] + lamp * look.lamp_colour[0],
            lit[1] + lamp * look.lamp_colour[1],
            lit[2] + lamp * look.lamp_colour[2],
        ];
        let night = look.lighting != Lighting::Day;
        let n = 0.85 + 0.3 * value_noise(y * 0.5, z * 0.5, self.seed + 13);
        match &f.kind {
            FacadeKind::Building {
                colour,
                floor_h,
                bay_w,
                shop,
            } => {
                let floor = (z / floor_h).floor();
                let fz = z / floor_h - floor;
                let fy = ((y - f.y0) / bay_w).fract();
                let window = if *shop && floor == 0.0 {
                    fz > 0.1 && fz < 0.85 && fy > 0.05 && fy < 0.95
                } else {
                    fz > 0.3 && fz < 0.8 && fy > 0.25 && fy < 0.75
                };
                if window && fp < bay_w * 0.4 {
                    let h = hash01(((y - f.y0) / bay_w) as i32, floor as i32, self.seed + 14);
                    if night && h < 0.35 {
                        return [0.9 * h + 0.3, 0.6 * h + 0.2, 0.2];
                    }
                    let g = 0.02 + 0.04 * h;
                    return [
                        g + lit[0] * 0.02,
                        g + lit[1] * 0.025,
                        g * 1.2 + lit[2] * 0.03,
                    ];
                }
                [
                    colour[0] * e[0] * n,
                    colour[1] * e[1] * n,
                    colour[2] * e[2] * n,
                ]
            }
            FacadeKind::Fence { colour, panel_w } => {
                let fy = ((y - f.y0) / panel_w).fract();
                let joint = if !(0.03..=0.97).contains(&fy) && fp < 0.1 {
                    0.6
                } else {
                    1.0
                };
                let k = n * joint;
                [
                    colour[0] * e[0] * k,
                    colour[1] * e[1] * k,
                    colour[2] * e[2] * k,
                ]
            }
            FacadeKind::Open => [0.0; 3],
        }
    }

    /// Renders the background as seen by `cam`, with lens falloff.
    pub fn bake(&self, cam: &Camera, look: &Look) -> RgbImage {
        let (w, h) = (cam.width as usize, cam.height as usize);
        let fp_per_m = 1.0 / cam.f;
        let mut lin = vec![[0f32; 3]; w * h];
        lin.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (x, px) in row.iter_mut().enumerate() {
                let d = cam.ray(x as f32 + 0.5, y as f32 + 0.5);
                *px = self.shade_ray(look, cam.pos, d, fp_per_m);
            }
        });
        self.draw_props(cam, look, &mut lin);
        // Slight optical softness; also hides the hard edges of the ray cast.
        soften(&mut lin, w, h);
        let vig = vignette_table(cam.width, cam.height, look.vignette);
        let mut img = RgbImage::new(cam.width, cam.height);
        let buf: &mut [u8] = &mut img;
        buf.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
            for x in 0..w {
                let c = look.tone(lin[y * w + x]);
                let g = vig[y * w + x] as f32 / 256.0;
                for k in 0..3 {
                    row[x * 3 + k] = (c[k] * g).clamp(0.0, 255.0) as u8;
                }
            }
        });
        if look.lamps_on {
            for l in &self.lamps {
                if let Some(p) = cam.project(l.head) {
                    let r = (cam.f * 0.25 / p[2]).max(1.0);
                    super::effects::Glow {
                        x: p[0],
                        y: p[1],
                        r,
                        colour: look.lamp_colour,
                        strength: if look.lighting == Lighting::Night {
                            1.0
                        } else {
                            0.5
                        },
                    }
                    .add_to(&mut img);
                }
            }
        }
        img
    }

    /// Poles and trees, far to near, over the ray-cast image.
    fn draw_props(&self, cam: &Camera, look: &Look, lin: &mut [[f32; 3]]) {
        let (w, h) = (cam.width as usize, cam.height as usize);
        enum Prop<'a> {
            Lamp(&'a Lamp),
            Tree(&'a Tree),
        }
        let mut props: Vec<(f32, Prop<'_>)> = Vec::new();
        // Props right beside the lens would fill the frame; a real camera
        // is mounted clear of them.
        let clear = |p: V3| cam.project(p).filter(|q| q[2] > 3.0);
        for l in &self.lamps {
            if let (Some(p), Some(_), Some(_)) = (
                clear(l.foot),
                clear(l.head),
                clear([l.foot[0], l.foot[1], l.head[2]]),
            ) {
                props.push((p[2], Prop::Lamp(l)));
            }
        }
        for t in &self.trees {
            if let (Some(p), Some(_)) = (clear([t.x, t.y, t.trunk_h]), clear([t.x, t.y, 0.0])) {
                props.push((p[2], Prop::Tree(t)));
            }
        }
        props.sort_by(|a, b| b.0.total_cmp(&a.0));
        let side_lit = look.irradiance([0.0, -1.0, 0.0], false);
        for (depth, prop) in props {
            match prop {
                Prop::Lamp(l) => {
                    let c = [0.25 * side_lit[0], 0.25 * side_lit[1], 0.26 * side_lit[2]];
                    let c = look.fogged(c, depth);
                    let top = [l.foot[0], l.foot[1], l.head[2]];
                    quad_3d(cam, l.foot, top, 0.09, w, h, |i| lin[i] = c);
                    quad_3d(cam, top, l.head, 0.05, w, h, |i| lin[i] = c);
                    let head = look.fogged([0.1, 0.1, 0.1], depth);
                    let a = [l.head[0] - 0.35, l.head[1], l.head[2] - 0.05];
                    let b = [l.head[0] + 0.35, l.head[1], l.head[2] - 0.05];
                    quad_3d(cam, a, b, 0.12, w, h, |i| lin[i] = head);
                }
                Prop::Tree(t) => {
                    let trunk = look.fogged(
                        [0.06 * side_lit[0], 0.045 * side_lit[1], 0.03 * side_lit[2]],
                        depth,
                    );
                    let base = [t.x, t.y, 0.0];
                    let top = [t.x, t.y, t.trunk_h + t.r * 0.5];
                    quad_3d(cam, base, top, 0.12 + t.r * 0.03, w, h, |i| lin[i] = trunk);
                    let centre = [t.x, t.y, t.trunk_h + t.r * 0.8];
                    let Some(p) = cam.project(centre) else {
                        continue;
                    };
                    let rp = cam.f * t.r / p[2];
                    if rp < 0.7 {
                        continue;
                    }
                    let lamp = self.lamp_light(look, t.x, t.y, centre[2]);
                    let x0 = (p[0] - rp * 1.2).max(0.0) as usize;
                    let x1 = ((p[0] + rp * 1.2).min(w as f32 - 1.0)).max(0.0) as usize;
                    let y0 = (p[1] - rp * 1.2).max(0.0) as usize;
                    let y1 = ((p[1] + rp * 1.2).min(h as f32 - 1.0)).max(0.0) as usize;
                    let seed = self.seed.wrapping_add((t.y * 10.0) as u32);
                    for y in y0..=y1 {
                        for x in x0..=x1 {
                            let dx = (x as f32 + 0.5 - p[0]) / rp;
                            let dy = (y as f32 + 0.5 - p[1]) / rp;
                            let r = (dx * dx + dy * dy).sqrt();
                            let clump = value_noise(dx * 3.0, dy * 3.0, seed) * 0.35
                                + value_noise(dx * 9.0, dy * 9.0, seed + 1) * 0.15;
                            if r > 0.75 + clump {
                                continue;
                            }
                            // Lit from above and the sun's side, dark inside.
                            let nz = -dy;
                            let shade = 0.35 + 0.5 * (0.5 + 0.5 * nz) * (0.6 + clump * 1.4);
                            let e = look.irradiance([dx * 0.5, -0.5, nz.max(0.0)], false);
                            let c = [
                                t.colour[0] * shade * (e[0] + lamp * look.lamp_colour[0]),
                                t.colour[1] * shade * (e[1] + lamp * look.lamp_colour[1]),
                                t.colour[2] * shade * (e[2] + lamp * look.lamp_colour[2]),
                            ];
                            lin[y * w + x] = look.fogged(c, p[2]);
                        }
                    }
                }
            }
        }
    }
}

fn v_or_pave(v: f32) -> bool {
    v > 1.5
}

fn facade_at(row: &[Facade], y: f32) -> Option<&Facade> {
    row.iter()
        .find(|f| y >= f.y0 && y < f.y1)
        .filter(|f| !matches!(f.kind, FacadeKind::Open))
}

fn facades<R: Rng>(rng: &mut R, front: bool) -> Vec<Facade> {
    let mut out = Vec::new();
    let mut y = -30.0;
    while y < 600.0 {
        let len = rng.gen_range(10.0..45.0);
        let r: f32 = rng.gen();
        let kind = if front && r < 0.3 {
            let g = rng.gen_range(0.25..0.5);
            FacadeKind::Fence {
                colour: [g, g * 0.98, g * 0.93],
                panel_w: rng.gen_range(2.0..3.5),
            }
        } else if front && r < 0.45 {
            FacadeKind::Open
        } else {
            let palette = [
                [0.55, 0.5, 0.4],
                [0.45, 0.45, 0.45],
                [0.6, 0.55, 0.45],
                [0.35, 0.18, 0.12],
                [0.5, 0.55, 0.6],
                [0.65, 0.62, 0.55],
                [0.4, 0.45, 0.35],
            ];
            let c = palette[rng.gen_range(0..palette.len())];
            let k = rng.gen_range(0.7..1.1);
            FacadeKind::Building {
                colour: [c[0] * k, c[1] * k, c[2] * k],
                floor_h: rng.gen_range(2.8..3.4),
                bay_w: rng.gen_range(2.5..4.0),
                shop: rng.gen_bool(0.5),
            }
        };
        let height = match kind {
            FacadeKind::Fence { .. } => rng.gen_range(1.8..2.6),
            _ if front => rng.gen_range(3.0..20.0),
            _ => rng.gen_range(9.0..40.0),
        };
        out.push(Facade {
            y0: y,
            y1: y + len,
            height,
            kind,
        });
        y += len + if front { rng.gen_range(0.0..6.0) } else { 0.0 };
    }
    out
}

/// Fills a flat strip of `width` metres between two world points, facing
/// the camera.
fn quad_3d(cam: &Camera, a: V3, b: V3, width: f32, w: usize, h: usize, mut f: impl FnMut(usize)) {
    let (Some(pa), Some(pb)) = (cam.project(a), cam.project(b)) else {
        return;
    };
    let ra = (cam.f * width / 2.0 / pa[2]).max(0.5);
    let rb = (cam.f * width / 2.0 / pb[2]).max(0.5);
    let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
    let l = (dx * dx + dy * dy).sqrt().max(1e-6);
    let (nx, ny) = (-dy / l, dx / l);
    let pts = [
        [pa[0] + nx * ra, pa[1] + ny * ra],
        [pb[0] + nx * rb, pb[1] + ny * rb],
        [pb[0] - nx * rb, pb[1] - ny * rb],
        [pa[0] - nx * ra, pa[1] - ny * ra],
    ];
    fill_convex(&pts, w, h, |x, y| f(y * w + x));
}

/// [1 2 1] / 4 blur in both directions.
fn soften(buf: &mut [[f32; 3]], w: usize, h: usize) {
    let mut tmp = buf.to_vec();
    for y in 0..h {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            for c in 0..3 {
                tmp[i][c] = 0.25 * buf[i - 1][c] + 0.5 * buf[i][c] + 0.25 * buf[i + 1][c];
            }
        }
    }
    for y in 1..h.saturating_sub(1) {
        for x in 0..w {
            let i = y * w + x;
            for c in 0..3 {
                buf[i][c] = 0.25 * tmp[i - w][c] + 0.5 * tmp[i][c] + 0.25 * tmp[i + w][c];
            }
        }
    }
}
