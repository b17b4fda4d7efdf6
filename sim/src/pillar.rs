//! Panic-pillar camera scenes: a street corner with an alarm pillar (post,
//! blue and white call panel, red SOS button, lamp on top), and a person who
//! walks up, presses the button and waits while the lamp flashes.
//!
//! The static street and pillar are drawn once; a frame is a copy of them
//! with the person, the lamp and sensor noise drawn over, so rendering is
//! cheap and every frame is a pure function of the seed and its index.

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::font::{self, FontStyle, TextOpts};
use super::raster::{
    fbm, fill_circle, fill_convex, fill_ellipse, fill_round_rect, fill_sdf, hash01, hash2,
    sd_capsule, stroke_round_rect, Pt,
};

/// How long the hand stays on the button, seconds.
const PRESS_S: f64 = 1.0;
/// The hand travels to and from the button in this time, seconds.
const REACH_S: f64 = 0.4;
/// The person arrives this long before pressing and leaves this long after.
const ARRIVE_BEFORE_S: f64 = 1.8;
const LEAVE_AFTER_S: f64 = 9.0;
/// Walking speed in person heights per second (1.3 m/s for 1.75 m).
const WALK_SPEED: f32 = 0.74;
/// Seconds between passers-by when nobody presses.
const PASSER_PERIOD_S: f64 = 14.0;

/// A pillar camera: a person walks up to the pillar and presses its button.
pub struct PillarScene {
    width: u32,
    height: u32,
    fps: u32,
    seed: u64,
    press_at_s: Option<f64>,
    background: RgbImage,
    geo: Geometry,
    person: Look,
    noise: Vec<i8>,
}

/// Where things are in the frame, pixels.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// Pillar axis and foot.
    px: f32,
    foot_y: f32,
    /// Scale: frame height / 720.
    u: f32,
    button: Pt,
    lamp: Pt,
    /// The person's height and the line their feet walk on.
    person_h: f32,
    walk_y: f32,
    /// Where the person stands to press; `side` is -1 left of the pillar.
    stand_x: f32,
    side: f32,
}

/// Colours of the person.
#[derive(Debug, Clone, Copy)]
struct Look {
    skin: [u8; 3],
    hair: [u8; 3],
    jacket: [u8; 3],
    trousers: [u8; 3],
    shoes: [u8; 3],
    hat: Option<[u8; 3]>,
    bag: bool,
}

/// The person's pose in one frame.
#[derive(Debug, Clone, Copy)]
struct Pose {
    x: f32,
    /// +1 facing right, -1 facing left.
    facing: f32,
    /// Gait phase in radians and its strength (0 standing, 1 walking).
    phase: f32,
    stride: f32,
    /// 0 arm down .. 1 hand on the button.
    reach: f32,
}

fn shade(c: [u8; 3], k: f32) -> [u8; 3] {
    c.map(|v| (v as f32 * k).clamp(0.0, 255.0) as u8)
}

impl PillarScene {
    /// `press_at_s`: when the button is pressed, seconds from the clip start.
    pub fn new(
        width: u32,
        height: u32,
        fps: u32,
        seed: u64,
        press_at_s: Option<f64>,
    ) -> PillarScene {
        let (width, height) = (width.max(16), height.max(16));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0091_11A2);
        let (w, h) = (width as f32, height as f32);
        let u = h / 720.0;
        let px = w * rng.gen_range(0.52..0.66);
        let foot_y = h * 0.84;
        let person_h = h * 0.47;
        let side = if rng.gen_bool(0.75) { -1.0 } else { 1.0 };
        let geo = Geometry {
            px,
            foot_y,
            u,
            button: [px, h * 0.505],
            lamp: [px, h * 0.105],
            person_h,
            walk_y: h * 0.885,
            stand_x: px + side * (36.0 * u + person_h * 0.17),
            side,
        };
        let person = Look {
            skin: *[
                [236, 200, 170],
                [214, 170, 130],
                [180, 130, 95],
                [150, 105, 75],
            ]
            .choose(&mut rng)
            .unwrap(),
            hair: *[[25, 20, 18], [60, 40, 25], [100, 70, 40], [150, 150, 150]]
                .choose(&mut rng)
                .unwrap(),
            jacket: *[
                [30, 35, 55],
                [25, 25, 28],
                [170, 30, 35],
                [85, 95, 55],
                [120, 120, 125],
                [190, 170, 130],
                [110, 150, 200],
                [200, 120, 40],
            ]
            .choose(&mut rng)
            .unwrap(),
            trousers: *[[45, 60, 95], [30, 30, 32], [95, 95, 100], [150, 135, 100]]
                .choose(&mut rng)
                .unwrap(),
            shoes: *[[20, 20, 20], [90, 60, 40], [230, 230, 230]]
                .choose(&mut rng)
                .unwrap(),
            hat: if rng.gen_bool(0.3) {
                Some(
                    *[[30, 30, 30], [140, 30, 40], [60, 80, 120]]
                        .choose(&mut rng)
                        .unwrap(),
                )
            } else {
                None
            },
            bag: rng.gen_bool(0.35),
        };
        let background = draw_background(width, height, &geo, &mut rng);
        let noise = (0..1 << 16)
            .map(|_| {
                // Roughly Gaussian: the sum of three uniforms.
                let s: i32 = (0..3).map(|_| rng.gen_range(-2..=2)).sum();
                s as i8
            })
            .collect();
        PillarScene {
            width,
            height,
            fps: fps.max(1),
            seed,
            press_at_s,
            background,
            geo,
            person,
            noise,
        }
    }

    fn time(&self, index: u64) -> f64 {
        index as f64 / self.fps as f64
    }

    /// Whether the hand is on the button in frame `index`.
    pub fn pressing(&self, index: u64) -> bool {
        let t = self.time(index);
        self.press_at_s.is_some_and(|p| t >= p && t < p + PRESS_S)
    }

    /// Whether the alarm has been raised by frame `index` (the lamp flashes
    /// from then on).
    pub fn alarm_raised(&self, index: u64) -> bool {
        let t = self.time(index);
        self.press_at_s.is_some_and(|p| t >= p)
    }

    /// Box `[x, y, w, h]` around the person in frame `index`, clipped to the
    /// frame, or `None` when nobody is in view.
    pub fn person_bbox(&self, index: u64) -> Option<[f32; 4]> {
        let pose = self.pose(self.time(index))?;
        let g = &self.geo;
        let ph = g.person_h;
        let mut x0 = pose.x - ph * 0.2;
        let mut x1 = pose.x + ph * 0.2;
        if pose.reach > 0.0 {
            let hand = g.button[0];
            x0 = x0.min(hand - 8.0 * g.u);
            x1 = x1.max(hand + 8.0 * g.u);
        }
        let y0 = g.walk_y - ph * 1.02;
        let y1 = g.walk_y + ph * 0.02;
        let (w, h) = (self.width as f32, self.height as f32);
        let (cx0, cx1) = (x0.max(0.0), x1.min(w));
        if cx1 - cx0 < 2.0 {
            return None;
        }
        Some([cx0, y0.max(0.0), cx1 - cx0, y1.min(h) - y0.max(0.0)])
    }

    /// Where the person is at time `t`, or `None` when out of view.
    fn pose(&self, t: f64) -> Option<Pose> {
        let g = &self.geo;
        let w = self.width as f32;
        let ph = g.person_h;
        let speed = WALK_SPEED * ph;
        let stride_len = 0.8 * ph;
        let off = ph * 0.35;
        let walking = |x: f32, facing: f32| Pose {
            x,
            facing,
            phase: x / stride_len * std::f32::consts::TAU * facing,
            stride: 1.0,
            reach: 0.0,
        };
        let Some(p) = self.press_at_s else {
            // Passers-by cross the view now and then.
            let k = (t / PASSER_PERIOD_S).floor();
            let local = (t - k * PASSER_PERIOD_S) as f32;
            let dir = if hash2(k as i32, 0, self.seed as u32) & 1 == 0 {
                1.0
            } else {
                -1.0
            };
            let start = if dir > 0.0 { -off } else { w + off };
            let x = start + dir * local * speed;
            return (x > -off && x < w + off).then(|| walking(x, dir));
        };
        let entry = if g.side < 0.0 { -off } else { w + off };
        let to_stand = g.stand_x - entry;
        let facing = to_stand.signum();
        let walk_s = (to_stand.abs() / speed) as f64;
        let arrive = p - ARRIVE_BEFORE_S;
        let leave = p + LEAVE_AFTER_S;
        if t < arrive - walk_s {
            return None;
        }
        if t < arrive {
            let x = g.stand_x - facing * ((arrive - t) as f32) * speed;
            return Some(walking(x, facing));
        }
        if t < leave {
            let reach = if t < p - REACH_S || t > p + PRESS_S + REACH_S {
                0.0
            } else if t < p {
                1.0 - ((p - t) / REACH_S) as f32
            } else if t <= p + PRESS_S {
                1.0
            } else {
                1.0 - ((t - p - PRESS_S) / REACH_S) as f32
            };
            // Settle the last step as the person stops.
            let settle = ((t - arrive) / 0.4).min(1.0) as f32;
            return Some(Pose {
                x: g.stand_x,
                facing,
                phase: 0.0,
                stride: 1.0 - settle,
                reach: reach.clamp(0.0, 1.0),
            });
        }
        let x = g.stand_x - facing * ((t - leave) as f32) * speed;
        (x > -off && x < w + off).then(|| walking(x, -facing))
    }

    /// Renders frame `index`; frames are rendered in increasing order.
    pub fn render_frame(&mut self, index: u64) -> RgbImage {
        let t = self.time(index);
        let mut img = self.background.clone();
        self.draw_lamp(&mut img, t);
        if let Some(pose) = self.pose(t) {
            draw_person(&mut img, &self.geo, &self.person, &pose);
        }
        self.draw_overlay(&mut img, t);
        self.add_noise(&mut img, index);
        img
    }

    /// The lamp and the button light: dark until the alarm, then the lamp
    /// flashes red twice a second and the button glows.
    fn draw_lamp(&self, img: &mut RgbImage, t: f64) {
        let g = &self.geo;
        let u = g.u;
        let Some(p) = self.press_at_s.filter(|p| t >= *p) else {
            return;
        };
        let lit = ((t - p) * 2.0).fract() < 0.5;
        let b = g.button;
        fill_circle(img, b, 15.0 * u, [255, 70, 60], 0.35);
        fill_circle(img, b, 10.0 * u, [255, 90, 80], 1.0);
        if lit {
            let l = g.lamp;
            for (r, a) in [(70.0, 0.10), (45.0, 0.18), (28.0, 0.35)] {
                fill_circle(img, l, r * u, [255, 40, 30], a);
            }
            draw_lamp(img, l, u, [255, 120, 100], (5.0, 8.0, [255, 235, 225], 0.9));
        }
    }

    /// A camera caption: name and time of day, as CCTV recorders print.
    fn draw_overlay(&self, img: &mut RgbImage, t: f64) {
        let h = 18.0 * self.geo.u;
        if h < 6.0 {
            return;
        }
        let start = (self.seed % 86_400) as f64;
        let s = (start + t) as u64 % 86_400;
        let text = format!(
            "SOS {:02}  {:02}:{:02}:{:02}",
            self.seed % 100,
            s / 3600,
            s / 60 % 60,
            s % 60
        );
        let style = FontStyle::REGULAR;
        let mut l = font::layout_text(&text, &TextOpts::new(h), &style);
        l.translate(h, h);
        let mut shadow = l.clone();
        shadow.translate(1.5, 1.5);
        font::draw_text(img, &shadow, [0, 0, 0], 0.8);
        font::draw_text(img, &l, [240, 240, 240], 1.0);
    }

    /// Sensor noise: a fixed table of small deviations read from an offset
    /// that changes every frame.
    fn add_noise(&self, img: &mut RgbImage, index: u64) {
        let mask = self.noise.len() - 1;
        let mut k = hash2(index as i32, (index >> 32) as i32, self.seed as u32) as usize;
        let buf: &mut [u8] = img;
        for (i, v) in buf.iter_mut().enumerate() {
            // A stride that is not a multiple of 3 so channels decorrelate.
            let n = self.noise[(k + i * 7) & mask];
            *v = (*v as i16 + n as i16).clamp(0, 255) as u8;
            if i & 0xFFF == 0xFFF {
                k = k.wrapping_add(0x9E37);
            }
        }
    }
}

/// The street, wall and pillar, drawn once.
fn draw_background(width: u32, height: u32, g: &Geometry, rng: &mut ChaCha8Rng) -> RgbImage {
    let (w, h) = (width as f32, height as f32);
    let u = g.u;
    let seed: u32 = rng.gen();
    let wall = *[
        [206, 190, 160],
        [188, 186, 180],
        [214, 200, 150],
        [170, 150, 130],
        [200, 205, 210],
    ]
    .choose(rng)
    .unwrap();
    let plinth = shade(wall, 0.55);
    let tile = *[[150, 150, 148], [165, 150, 135], [135, 138, 142]]
        .choose(rng)
        .unwrap();
    let wall_base = h * 0.58;
    let horizon = h * 0.30;
    let mut img = RgbImage::new(width, height);
    // Plaster with stains, pavement tiles in perspective, a curb and road.
    let curb_y = h * 0.955;
    for y in 0..height {
        let fy = y as f32 + 0.5;
        for x in 0..width {
            let fx = x as f32 + 0.5;
            let c: [f32; 3] = if fy < wall_base {
                let n = fbm(fx / (60.0 * u), fy / (60.0 * u), seed, 3);
                let stain = ((fy / wall_base - 0.6) * 2.0).max(0.0) * 0.12;
                let k = 0.9 + 0.2 * n - stain;
                let base = if fy > wall_base - 34.0 * u {
                    plinth
                } else {
                    wall
                };
                base.map(|v| v as f32 * k)
            } else if fy < curb_y {
                let z = 2870.0 * u / (fy - horizon);
                let gx = (fx - w * 0.5) * z / (1280.0 * u);
                let (tx, tz) = (gx / 0.4, z / 0.4);
                // Joint width in tile units: one pixel's footprint.
                let jz = z / (fy - horizon) / 0.4;
                let jx = z / (1280.0 * u) / 0.4;
                let fxz = tx - tx.floor();
                let fzz = tz - tz.floor();
                let joint = fxz < jx * 1.2 || fzz < jz * 1.2;
                let var = hash01(tx.floor() as i32, tz.floor() as i32, seed) * 0.14 - 0.07;
                let grain = hash01(x as i32, y as i32, seed ^ 5) * 0.06;
                let k = if joint { 0.62 } else { 0.95 + var + grain };
                tile.map(|v| v as f32 * k)
            } else if fy < curb_y + 10.0 * u {
                [175.0, 175.0, 170.0]
            } else {
                let n = hash01(x as i32, y as i32, seed ^ 9) * 18.0;
                [62.0 + n, 63.0 + n, 66.0 + n]
            };
            img.put_pixel(x, y, image::Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8)));
        }
    }
    // Windows: a row of upper-floor windows and a shop front below.
    let glass_top = [70, 85, 105];
    let frame = *[[235, 235, 230], [90, 60, 40], [60, 60, 65]]
        .choose(rng)
        .unwrap();
    let n_win = 4;
    let ww = w / n_win as f32;
    let offset: f32 = rng.gen_range(0.0..ww * 0.5);
    for i in -1..=n_win {
        let x0 = offset + i as f32 * ww + ww * 0.22;
        let x1 = x0 + ww * 0.5;
        for (y0, y1) in [(h * 0.03, h * 0.22), (h * 0.30, h * 0.50)] {
            fill_round_rect(
                &mut img,
                [x0 - 5.0 * u, y0 - 5.0 * u, x1 + 5.0 * u, y1 + 5.0 * u],
                1.0,
                frame,
                1.0,
            );
            fill_round_rect(&mut img, [x0, y0, x1, y1], 0.0, glass_top, 1.0);
            // A sky reflection across the glass.
            let refl = [
                [x0, y0],
                [x0 + (x1 - x0) * 0.45, y0],
                [x0, y0 + (y1 - y0) * 0.7],
            ];
            fill_convex(&mut img, &refl, [160, 180, 200], 0.35);
            fill_round_rect(
                &mut img,
                [(x0 + x1) * 0.5 - 2.5 * u, y0, (x0 + x1) * 0.5 + 2.5 * u, y1],
                0.0,
                frame,
                1.0,
            );
            fill_round_rect(
                &mut img,
                [x0 - 8.0 * u, y1 + 5.0 * u, x1 + 8.0 * u, y1 + 11.0 * u],
                1.0,
                shade(wall, 0.8),
                1.0,
            );
        }
    }
    // A drain pipe.
    let dx = offset + ww * 0.05;
    fill_round_rect(
        &mut img,
        [dx, 0.0, dx + 12.0 * u, wall_base],
        3.0 * u,
        [120, 120, 125],
        1.0,
    );
    // Shadow along the wall foot.
    for k in 0..6 {
        let y = wall_base + k as f32 * 2.0 * u;
        fill_round_rect(
            &mut img,
            [0.0, y, w, y + 2.0 * u],
            0.0,
            [0, 0, 0],
            0.12 - k as f32 * 0.02,
        );
    }
    draw_pillar(&mut img, g);
    // Vignette: corners a little darker, as with a wide lens.
    let (cx, cy) = (w * 0.5, h * 0.5);
    let r2 = cx * cx + cy * cy;
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let k = 1.0 - 0.25 * (dx * dx + dy * dy) / r2;
        p.0 = p.0.map(|v| (v as f32 * k) as u8);
    }
    img
}

/// Fills a vertical box shaded like a rounded metal body lit from the left.
fn cylinder(img: &mut RgbImage, r: [f32; 4], rgb: [u8; 3]) {
    let (w, h) = img.dimensions();
    let x0 = r[0].max(0.0) as u32;
    let x1 = (r[2].ceil().max(0.0) as u32).min(w);
    for x in x0..x1 {
        let t = ((x as f32 + 0.5 - r[0]) / (r[2] - r[0])).clamp(0.0, 1.0);
        let k = 0.75 + 0.45 * (std::f32::consts::PI * (t * 0.8 + 0.1)).sin() - 0.25 * t;
        let c = shade(rgb, k);
        for y in (r[1].max(0.0) as u32)..(r[3].max(0.0) as u32).min(h) {
            img.put_pixel(x, y, image::Rgb(c));
        }
    }
}

fn draw_pillar(img: &mut RgbImage, g: &Geometry) {
    let u = g.u;
    let (x, foot) = (g.px, g.foot_y);
    // Shadow on the pavement, falling back and to the right.
    let sh = [
        [x - 20.0 * u, foot],
        [x + 22.0 * u, foot],
        [x + 120.0 * u, foot - 40.0 * u],
        [x + 90.0 * u, foot - 44.0 * u],
    ];
    fill_convex(img, &sh, [0, 0, 0], 0.25);
    // Post, foot plate and lamp head.
    cylinder(
        img,
        [x - 13.0 * u, g.lamp[1], x + 13.0 * u, foot],
        [150, 155, 160],
    );
    fill_round_rect(
        img,
        [x - 26.0 * u, foot - 10.0 * u, x + 26.0 * u, foot + 2.0 * u],
        3.0 * u,
        [70, 72, 75],
        1.0,
    );
    cylinder(
        img,
        [
            x - 20.0 * u,
            g.lamp[1] + 19.0 * u,
            x + 20.0 * u,
            g.lamp[1] + 34.0 * u,
        ],
        [50, 52, 56],
    );
    let l = g.lamp;
    draw_lamp(img, l, u, [110, 25, 25], (4.0, 7.0, [190, 110, 100], 0.6));
    // Camera dome under the lamp head.
    fill_ellipse(
        img,
        [x, l[1] + 44.0 * u],
        13.0 * u,
        10.0 * u,
        [30, 32, 36],
        1.0,
    );
    fill_circle(
        img,
        [x - 3.0 * u, l[1] + 42.0 * u],
        3.0 * u,
        [120, 140, 170],
        0.8,
    );
    // Call panel: blue head with "SOS", white face with button, camera and
    // speaker.
    let (top, bot) = (
        g.button[1] - 0.16 * 720.0 * u,
        g.button[1] + 0.14 * 720.0 * u,
    );
    let hw = 34.0 * u;
    fill_round_rect(
        img,
        [
            x - hw - 2.0 * u,
            top - 2.0 * u,
            x + hw + 2.0 * u,
            bot + 2.0 * u,
        ],
        7.0 * u,
        [40, 42, 46],
        1.0,
    );
    cylinder(
        img,
        [x - hw, top + 4.0 * u, x + hw, bot - 4.0 * u],
        [236, 238, 240],
    );
    let blue_bot = top + 0.09 * 720.0 * u;
    cylinder(
        img,
        [x - hw, top + 4.0 * u, x + hw, blue_bot],
        [25, 85, 170],
    );
    let th = (blue_bot - top) * 0.5;
    let mut sos = font::layout_text("SOS", &TextOpts::new(th), &FontStyle::REGULAR);
    sos.translate(
        x - sos.width * 0.5,
        top + 4.0 * u + (blue_bot - top - 4.0 * u - th) * 0.5,
    );
    font::draw_text(img, &sos, [250, 250, 250], 1.0);
    // Button: bezel, red cap.
    let b = g.button;
    fill_circle(img, b, 17.0 * u, [60, 60, 64], 1.0);
    fill_circle(img, b, 12.5 * u, [180, 20, 25], 1.0);
    fill_circle(
        img,
        [b[0] - 4.0 * u, b[1] - 4.0 * u],
        4.0 * u,
        [240, 120, 120],
        0.5,
    );
    stroke_round_rect(
        img,
        [
            b[0] - 20.0 * u,
            b[1] - 20.0 * u,
            b[0] + 20.0 * u,
            b[1] + 20.0 * u,
        ],
        4.0 * u,
        2.0 * u,
        [200, 30, 35],
        1.0,
    );
    // Panel camera lens.
    fill_circle(img, [x, blue_bot + 14.0 * u], 6.0 * u, [20, 20, 24], 1.0);
    // Speaker grille.
    for row in 0..4 {
        for col in 0..5 {
            let c = [
                x + (col as f32 - 2.0) * 7.0 * u,
                b[1] + 36.0 * u + row as f32 * 7.0 * u,
            ];
            fill_circle(img, c, 1.8 * u, [60, 60, 66], 1.0);
        }
    }
}

/// Elbow of a two-bone arm from shoulder `s` reaching `t`, bending down.
fn elbow(s: Pt, t: Pt, a: f32, b: f32) -> Pt {
    let (dx, dy) = (t[0] - s[0], t[1] - s[1]);
    let d = (dx * dx + dy * dy).sqrt().clamp(1e-3, (a + b) * 0.999);
    let base = dy.atan2(dx);
    let cos_a = ((a * a + d * d - b * b) / (2.0 * a * d)).clamp(-1.0, 1.0);
    let alpha = cos_a.acos();
    let e1 = [
        s[0] + a * (base + alpha).cos(),
        s[1] + a * (base + alpha).sin(),
    ];
    let e2 = [
        s[0] + a * (base - alpha).cos(),
        s[1] + a * (base - alpha).sin(),
    ];
    if e1[1] > e2[1] {
        e1
    } else {
        e2
    }
}

/// A limb segment: a capsule from `p` to `q`.
fn limb(img: &mut RgbImage, p: Pt, q: Pt, w: f32, rgb: [u8; 3]) {
    let r = w * 0.5;
    let bb = [
        p[0].min(q[0]) - r - 1.0,
        p[1].min(q[1]) - r - 1.0,
        p[0].max(q[0]) + r + 1.0,
        p[1].max(q[1]) + r + 1.0,
    ];
    fill_sdf(img, bb, rgb, 1.0, |x, y| sd_capsule(x, y, p, q, r));
}

/// Point at `len` from `p` at angle `a` from straight down, forward
/// positive.
fn swing(p: Pt, len: f32, a: f32, facing: f32) -> Pt {
    [p[0] + facing * len * a.sin(), p[1] + len * a.cos()]
}

/// A side view of a person: legs and arms swing with the gait; the arm
/// nearest the pillar reaches for the button.
fn draw_person(img: &mut RgbImage, g: &Geometry, look: &Look, pose: &Pose) {
    let ph = g.person_h;
    let f = pose.facing;
    let bob = -ph * 0.012 * (pose.phase * 2.0).cos().abs() * pose.stride;
    let foot = [pose.x, g.walk_y + bob];
    let hip = [pose.x, foot[1] - ph * 0.50];
    let shoulder = [pose.x + f * ph * 0.01, foot[1] - ph * 0.80];
    let (thigh, shin) = (ph * 0.25, ph * 0.245);
    let (upper, fore) = (ph * 0.165, ph * 0.16);
    let limb_w = ph * 0.065;
    // Shadow on the ground.
    fill_ellipse(
        img,
        [pose.x, g.walk_y + ph * 0.01],
        ph * 0.16,
        ph * 0.025,
        [0, 0, 0],
        0.3,
    );

    let leg = |img: &mut RgbImage, psi: f32, k: f32| {
        let a = 0.42 * psi.sin() * pose.stride;
        let bend = 0.7 * (psi + 1.2).sin().max(0.0) * pose.stride;
        let knee = swing(hip, thigh, a, f);
        let ankle = swing(knee, shin, a - bend, f);
        let t = shade(look.trousers, k);
        limb(img, hip, knee, limb_w * 1.1, t);
        limb(img, knee, ankle, limb_w, t);
        let toe = [ankle[0] + f * ph * 0.06, ankle[1] + ph * 0.008];
        limb(img, ankle, toe, ph * 0.04, shade(look.shoes, k));
    };
    let arm_swing = |img: &mut RgbImage, psi: f32, k: f32| {
        let a = -0.35 * psi.sin() * pose.stride;
        let e = swing(shoulder, upper, a, f);
        let hnd = swing(e, fore, a + 0.25, f);
        let c = shade(look.jacket, k);
        limb(img, shoulder, e, limb_w * 0.95, c);
        limb(img, e, hnd, limb_w * 0.85, c);
        fill_circle(img, hnd, ph * 0.028, shade(look.skin, k), 1.0);
    };

    // Far side first, darker.
    leg(img, pose.phase + std::f32::consts::PI, 0.75);
    arm_swing(img, pose.phase, 0.75);
    leg(img, pose.phase, 1.0);
    // Torso: a tapered jacket with a collar.
    let tw = ph * 0.075;
    let torso = [
        [shoulder[0] - tw, shoulder[1] - ph * 0.01],
        [shoulder[0] + tw, shoulder[1] - ph * 0.01],
        [hip[0] + tw * 0.95, hip[1] + ph * 0.04],
        [hip[0] - tw * 0.95, hip[1] + ph * 0.04],
    ];
    fill_convex(img, &torso, look.jacket, 1.0);
    limb(
        img,
        [shoulder[0] - tw * 0.6, shoulder[1]],
        [shoulder[0] + tw * 0.6, shoulder[1]],
        ph * 0.05,
        look.jacket,
    );
    if look.bag {
        let strap_a = [shoulder[0] - f * tw * 0.4, shoulder[1]];
        let bag_c = [hip[0] - f * tw * 1.2, hip[1] - ph * 0.02];
        limb(img, strap_a, bag_c, ph * 0.012, [40, 30, 25]);
        fill_round_rect(
            img,
            [
                bag_c[0] - ph * 0.05,
                bag_c[1] - ph * 0.03,
                bag_c[0] + ph * 0.05,
                bag_c[1] + ph * 0.07,
            ],
            ph * 0.01,
            [70, 45, 30],
            1.0,
        );
    }
    // Neck and head.
    let head = [shoulder[0] + f * ph * 0.015, shoulder[1] - ph * 0.115];
    limb(
        img,
        [shoulder[0], shoulder[1] - ph * 0.01],
        [head[0], head[1] + ph * 0.05],
        ph * 0.045,
        look.skin,
    );
    fill_ellipse(img, head, ph * 0.055, ph * 0.066, look.skin, 1.0);
    let hair_c = [head[0] - f * ph * 0.012, head[1] - ph * 0.022];
    fill_ellipse(img, hair_c, ph * 0.056, ph * 0.048, look.hair, 1.0);
    if let Some(hat) = look.hat {
        fill_ellipse(
            img,
            [head[0] - f * ph * 0.005, head[1] - ph * 0.04],
            ph * 0.06,
            ph * 0.042,
            hat,
            1.0,
        );
    }
    // Nose and ear hint the facing direction.
    fill_circle(
        img,
        [head[0] + f * ph * 0.053, head[1] + ph * 0.005],
        ph * 0.012,
        shade(look.skin, 0.92),
        1.0,
    );
    fill_circle(
        img,
        [head[0] - f * ph * 0.01, head[1] + ph * 0.005],
        ph * 0.011,
        shade(look.skin, 0.85),
        1.0,
    );

    // Near arm: swings, or reaches for the button.
    if pose.reach > 0.0 {
        let rest = swing(swing(shoulder, upper, 0.0, f), fore, 0.25, f);
        let k = pose.reach * pose.reach * (3.0 - 2.0 * pose.reach);
        let target = [
            rest[0] + (g.button[0] - rest[0]) * k,
            rest[1] + (g.button[1] - rest[1]) * k,
        ];
        let e = elbow(shoulder, target, upper, fore);
        limb(img, shoulder, e, limb_w * 0.95, look.jacket);
        limb(img, e, target, limb_w * 0.85, look.jacket);
        fill_circle(img, target, ph * 0.03, look.skin, 1.0);
    } else {
        arm_swing(img, pose.phase + std::f32::consts::PI, 1.0);
    }
}

/// The lamp on the pillar's head at `l`, `u` pixels a unit: its body and a
/// glint `(rx, ry, colour, alpha)`; lit and dark lamps differ only in colour.
fn draw_lamp(
    img: &mut RgbImage,
    l: [f32; 2],
    u: f32,
    body: [u8; 3],
    glint: (f32, f32, [u8; 3], f32),
) {
    let half = [17.0 * u, 19.0 * u];
    fill_round_rect(
        img,
        [
            l[0] - half[0],
            l[1] - half[1],
            l[0] + half[0],
            l[1] + half[1],
        ],
        9.0 * u,
        body,
        1.0,
    );
    let (rx, ry, colour, alpha) = glint;
    fill_ellipse(
        img,
        [l[0] - 5.0 * u, l[1] - 6.0 * u],
        rx * u,
        ry * u,
        colour,
        alpha,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage, r: [u32; 4]) -> f32 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in r[1]..r[3] {
            for x in r[0]..r[2] {
                for c in 0..3 {
                    sum += (a.get_pixel(x, y).0[c] as f32 - b.get_pixel(x, y).0[c] as f32).abs();
                }
                n += 3.0;
            }
        }
        sum / n
    }

    #[test]
    fn frames_are_deterministic_and_sized() {
        let mut a = PillarScene::new(320, 180, 10, 42, Some(5.0));
        let mut b = PillarScene::new(320, 180, 10, 42, Some(5.0));
        for i in [0, 30, 50, 55, 80] {
            let fa = a.render_frame(i);
            assert_eq!(fa.dimensions(), (320, 180));
            assert_eq!(fa, b.render_frame(i), "frame {i}");
        }
        let mut c = PillarScene::new(320, 180, 10, 43, Some(5.0));
        assert_ne!(a.render_frame(50), c.render_frame(50));
    }

    #[test]
    fn the_press_is_timed_and_lights_the_lamp() {
        let fps = 25;
        let mut s = PillarScene::new(640, 360, fps, 7, Some(4.0));
        assert!(!s.pressing(99) && !s.alarm_raised(99));
        assert!(s.pressing(100) && s.pressing(124));
        assert!(!s.pressing(125) && s.alarm_raised(125));
        // Before the press the lamp is dark; in a lit phase after it, the
        // lamp area is much redder.
        let before = s.render_frame(90);
        let after = s.render_frame(126);
        let l = s.geo.lamp;
        let red = |img: &RgbImage| {
            let p = img.get_pixel(l[0] as u32, l[1] as u32 + 4).0;
            p[0] as i32 - p[1] as i32
        };
        let (rb, ra) = (red(&before), red(&after));
        assert!(before.get_pixel(l[0] as u32, l[1] as u32).0[0] < 160);
        assert!(
            after.get_pixel(l[0] as u32, l[1] as u32).0[0] > 200,
            "{ra} vs {rb}"
        );
        // The lamp flashes: half a second later it is dark again.
        let dark = s.render_frame(126 + 6);
        assert!(dark.get_pixel(l[0] as u32, l[1] as u32).0[0] < 160);
    }

    #[test]
    fn the_person_walks_up_and_reaches_for_the_button() {
        let mut s = PillarScene::new(640, 360, 25, 9, Some(6.0));
        assert!(s.person_bbox(0).is_none(), "nobody in view at first");
        let walking = s.person_bbox(100).unwrap();
        let standing = s.person_bbox(140).unwrap();
        let pressing = s.person_bbox(155).unwrap();
        assert!((walking[0] - standing[0]).abs() > 5.0);
        // The reaching arm widens the box towards the button.
        let b = s.geo.button[0];
        assert!(
            pressing[0] <= b && pressing[0] + pressing[2] >= b,
            "{pressing:?} {b}"
        );
        // The figure is drawn: the frame differs from the empty street
        // inside the box, and the arm covers the button while pressing.
        let empty = s.background.clone();
        let f = s.render_frame(155);
        // The middle third of the box is mostly body.
        let r = standing.map(|v| v as u32);
        let mid = [r[0] + r[2] / 3, r[1], r[0] + 2 * r[2] / 3, r[1] + r[3]];
        assert!(mean_abs_diff(&f, &empty, mid) > 20.0);
        let before = s.render_frame(120);
        let bx = s.geo.button;
        let area = [
            bx[0] as u32 - 4,
            bx[1] as u32 - 4,
            bx[0] as u32 + 4,
            bx[1] as u32 + 4,
        ];
        assert!(mean_abs_diff(&before, &f, area) > 30.0);
    }

    #[test]
    fn without_a_press_people_only_pass_by() {
        let mut s = PillarScene::new(320, 180, 10, 3, None);
        let seen = (0..300).filter(|&i| s.person_bbox(i).is_some()).count();
        assert!(seen > 50, "{seen}");
        assert!((0..300).all(|i| !s.pressing(i) && !s.alarm_raised(i)));
        let l = s.geo.lamp;
        let f = s.render_frame(200);
        assert!(f.get_pixel(l[0] as u32, l[1] as u32).0[0] < 160);
    }

    /// Writes frames before, during and after a press to `/tmp`.
    #[test]
    #[ignore]
    fn write_pillar_frames() {
        let mut s = PillarScene::new(1280, 720, 25, 5, Some(6.0));
        for (name, i) in [
            ("walk", 100),
            ("stand", 130),
            ("press", 152),
            ("after", 180),
        ] {
            s.render_frame(i)
                .save(format!("/tmp/safecity_pillar_{name}.png"))
                .unwrap();
        }
    }
}
