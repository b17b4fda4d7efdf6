//! Light, tone mapping and camera effects: glow, rain, sensor noise.

use image::RgbImage;
use rand::Rng;

use super::camera::{normalize, XorShift, V3};
use super::truth::Lighting;

/// How a scene is lit and how its camera responds.
#[derive(Debug, Clone)]
pub(crate) struct Look {
    pub lighting: Lighting,
    pub rain: bool,
    /// Unit vector towards the sun.
    pub sun_dir: V3,
    /// Direct sunlight (linear, 0 at night).
    pub sun: [f32; 3],
    /// Light from the sky on a surface facing up.
    pub ambient: [f32; 3],
    pub sky_top: [f32; 3],
    pub sky_horizon: [f32; 3],
    /// Colour balance of the camera.
    pub wb: [f32; 3],
    /// Exposure gain before tone mapping.
    pub gain: f32,
    pub exposure_s: f32,
    /// Standard deviation of sensor noise in 8-bit levels.
    pub noise_sigma: f32,
    pub fog: [f32; 3],
    /// Fraction of light lost per metre to haze or rain.
    pub fog_density: f32,
    pub lamps_on: bool,
    pub lamp_colour: [f32; 3],
    /// 0 lights off .. 1 full night.
    pub vehicle_lights: f32,
    pub vignette: f32,
}

impl Look {
    pub fn random<R: Rng>(rng: &mut R, lighting: Lighting, rain: bool) -> Look {
        let az: f32 = rng.gen_range(0.0..std::f32::consts::TAU);
        let (elev, sun, ambient, sky_top, sky_horizon): (
            f32,
            [f32; 3],
            [f32; 3],
            [f32; 3],
            [f32; 3],
        ) = match lighting {
            Lighting::Day => {
                let s = rng.gen_range(2.2..3.2) * if rain { 0.0 } else { 1.0 };
                let cloudy = rng.gen_bool(0.3) || rain;
                let s = if cloudy { s * 0.15 } else { s };
                let amb = if cloudy {
                    rng.gen_range(1.0..1.5)
                } else {
                    rng.gen_range(0.6..0.9)
                };
                (
                    rng.gen_range(0.35..1.1),
                    [s, s * 0.97, s * 0.9],
                    [amb * 0.9, amb * 0.95, amb * 1.08],
                    if cloudy {
                        [0.55, 0.57, 0.6]
                    } else {
                        [0.22, 0.38, 0.75]
                    },
                    if cloudy {
                        [0.75, 0.76, 0.78]
                    } else {
                        [0.7, 0.78, 0.9]
                    },
                )
            }
            Lighting::Dusk => {
                let s = if rain { 0.0 } else { rng.gen_range(0.5..1.1) };
                let amb = rng.gen_range(0.18..0.32);
                (
                    rng.gen_range(0.03..0.15),
                    [s, s * 0.6, s * 0.35],
                    [amb * 0.85, amb * 0.85, amb * 1.15],
                    [0.12, 0.14, 0.3],
                    [0.75, 0.45, 0.3],
                )
            }
            Lighting::Night => {
                let amb = rng.gen_range(0.008..0.02);
                (
                    -0.3,
                    [0.0; 3],
                    [amb, amb * 1.05, amb * 1.4],
                    [0.004, 0.006, 0.015],
                    [0.03, 0.03, 0.04],
                )
            }
        };
        let sun_dir = normalize([az.cos() * elev.cos(), az.sin() * elev.cos(), elev.sin()]);
        let wb_shift = rng.gen_range(-0.06f32..0.06);
        let wb = [1.0 + wb_shift, 1.0, 1.0 - wb_shift * 0.8];
        let night = lighting == Lighting::Night;
        let fog_density = if rain {
            rng.gen_range(0.008..0.02)
        } else {
            rng.gen_range(0.001..0.004)
        };
        let fog = match lighting {
            Lighting::Day => {
                let a = sky_horizon;
                [a[0] * 1.1, a[1] * 1.1, a[2] * 1.1]
            }
            Lighting::Dusk => [0.3, 0.25, 0.25],
            Lighting::Night => [0.02, 0.02, 0.025],
        };
        Look {
            lighting,
            rain,
            sun_dir,
            sun,
            ambient,
            sky_top,
            sky_horizon,
            wb,
            gain: match lighting {
                Lighting::Day => rng.gen_range(0.55..0.8),
                Lighting::Dusk => rng.gen_range(1.2..1.8),
                Lighting::Night => rng.gen_range(0.9..1.4),
            },
            exposure_s: match lighting {
                Lighting::Day => 1.0 / rng.gen_range(250.0..1000.0),
                Lighting::Dusk => 1.0 / rng.gen_range(200.0..500.0),
                Lighting::Night => 1.0 / rng.gen_range(100.0..250.0),
            },
            noise_sigma: match lighting {
                Lighting::Day => rng.gen_range(1.0..3.0),
                Lighting::Dusk => rng.gen_range(2.5..5.0),
                Lighting::Night => rng.gen_range(4.0..8.0),
            },
            fog,
            fog_density,
            lamps_on: night || (lighting == Lighting::Dusk && rng.gen_bool(0.6)),
            lamp_colour: if rng.gen_bool(0.5) {
                [1.0, 0.62, 0.3]
            } else {
                [0.9, 0.92, 1.0]
            },
            vehicle_lights: match lighting {
                Lighting::Day => {
                    if rain {
                        0.3
                    } else {
                        0.0
                    }
                }
                Lighting::Dusk => 0.6,
                Lighting::Night => 1.0,
            },
            vignette: rng.gen_range(0.1..0.35),
        }
    }

    /// Light reaching a surface with normal `n` from sun and sky.
    pub fn irradiance(&self, n: V3, in_shadow: bool) -> [f32; 3] {
        let sky = 0.55 + 0.45 * n[2];
        let sun = if in_shadow {
            0.0
        } else {
            (n[0] * self.sun_dir[0] + n[1] * self.sun_dir[1] + n[2] * self.sun_dir[2]).max(0.0)
        };
        [
            self.ambient[0] * sky + self.sun[0] * sun,
            self.ambient[1] * sky + self.sun[1] * sun,
            self.ambient[2] * sky + self.sun[2] * sun,
        ]
    }

    /// Blends linear radiance towards the haze colour over `dist` metres.
    pub fn fogged(&self, c: [f32; 3], dist: f32) -> [f32; 3] {
        let k = 1.0 - (-dist * self.fog_density).exp();
        [
            c[0] + (self.fog[0] - c[0]) * k,
            c[1] + (self.fog[1] - c[1]) * k,
            c[2] + (self.fog[2] - c[2]) * k,
        ]
    }

    /// Linear radiance to 8-bit sRGB levels (as f32), with colour balance
    /// and a soft shoulder so that lights saturate smoothly.
    pub fn tone(&self, c: [f32; 3]) -> [f32; 3] {
        let mut out = [0.0; 3];
        for i in 0..3 {
            let s = (c[i] * self.gain * self.wb[i]).max(0.0);
            let t = (s / (1.0 + s * 0.25) * 1.25).min(1.0);
            out[i] = 255.0 * fast_gamma(t);
        }
        out
    }
}

/// `x^(1/2.2)` for x in [0, 1], by table lookup (the tone curve runs per pixel).
pub(crate) fn fast_gamma(x: f32) -> f32 {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        (0..=4096)
            .map(|i| (i as f32 / 4096.0).powf(1.0 / 2.2))
            .collect()
    });
    let p = x.clamp(0.0, 1.0) * 4096.0;
    let i = p as usize;
    if i >= 4096 {
        return 1.0;
    }
    let f = p - i as f32;
    t[i] + (t[i + 1] - t[i]) * f
}

/// 8-bit sRGB level to linear light.
pub(crate) fn srgb_to_linear(v: u8) -> f32 {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; 256];
        for (i, x) in t.iter_mut().enumerate() {
            *x = (i as f32 / 255.0).powf(2.2);
        }
        t
    })[v as usize]
}

/// Calls `f(x, y)` for every pixel whose centre lies in the convex polygon,
/// clipped to `w` x `h`.
pub(crate) fn fill_convex(pts: &[[f32; 2]], w: usize, h: usize, mut f: impl FnMut(usize, usize)) {
    if pts.len() < 3 {
        return;
    }
    let ymin = pts.iter().map(|p| p[1]).fold(f32::MAX, f32::min);
    let ymax = pts.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
    let y0 = (ymin - 0.5).ceil().max(0.0) as usize;
    let y1 = ((ymax - 0.5).floor() as i64).min(h as i64 - 1);
    if y1 < y0 as i64 {
        return;
    }
    for y in y0..=y1 as usize {
        let yc = y as f32 + 0.5;
        let mut xl = f32::MAX;
        let mut xr = f32::MIN;
        for i in 0..pts.len() {
            let a = pts[i];
            let b = pts[(i + 1) % pts.len()];
            if (a[1] <= yc && b[1] > yc) || (b[1] <= yc && a[1] > yc) {
                let x = a[0] + (yc - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                xl = xl.min(x);
                xr = xr.max(x);
            }
        }
        if xl > xr {
            continue;
        }
        let x0 = (xl - 0.5).ceil().max(0.0) as usize;
        let x1 = ((xr - 0.5).floor() as i64).min(w as i64 - 1);
        if x1 < x0 as i64 {
            continue;
        }
        for x in x0..=x1 as usize {
            f(x, y);
        }
    }
}

/// A light seen by the camera: an additive glow in 8-bit levels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Glow {
    pub x: f32,
    pub y: f32,
    /// Core radius in pixels.
    pub r: f32,
    pub colour: [f32; 3],
    pub strength: f32,
}

impl Glow {
    /// Added light (scale of `colour`) at distance squared `d2` from the centre.
    pub fn falloff(&self, d2: f32) -> f32 {
        let r2 = self.r * self.r;
        let core = if d2 < r2 * 9.0 {
            (-d2 / r2).exp() * 1.6
        } else {
            0.0
        };
        self.strength * (core + 0.35 / (1.0 + d2 / (r2 * 9.0)))
    }

    pub fn reach(&self) -> f32 {
        // Where the halo falls below about one level.
        (self.r * 3.0 * (self.strength * 0.35 * 255.0).sqrt()).min(self.r * 15.0)
    }

    pub fn add_to(&self, img: &mut RgbImage) {
        let (w, h) = (img.width() as i32, img.height() as i32);
        let reach = self.reach();
        let x0 = ((self.x - reach).floor() as i32).max(0);
        let x1 = ((self.x + reach).ceil() as i32).min(w - 1);
        let y0 = ((self.y - reach).floor() as i32).max(0);
        let y1 = ((self.y + reach).ceil() as i32).min(h - 1);
        if x1 < x0 || y1 < y0 {
            return;
        }
        let buf: &mut [u8] = img;
        for y in y0..=y1 {
            let dy = y as f32 + 0.5 - self.y;
            let row = (y * w) as usize * 3;
            for x in x0..=x1 {
                let dx = x as f32 + 0.5 - self.x;
                let k = self.falloff(dx * dx + dy * dy) * 255.0;
                if k < 0.5 {
                    continue;
                }
                let i = row + x as usize * 3;
                for c in 0..3 {
                    let v = buf[i + c] as f32 + k * self.colour[c];
                    buf[i + c] = v.min(255.0) as u8;
                }
            }
        }
    }
}

/// Per-scene sensor noise and vignetting, applied to finished frames.
pub(crate) struct Sensor {
    width: usize,
    height: usize,
    /// Noise texture larger than the frame; each frame reads it at an offset.
    noise: Vec<i8>,
    noise_w: usize,
    noise_h: usize,
}

const NOISE_PAD: usize = 61;

impl Sensor {
    pub fn new(width: u32, height: u32, sigma: f32, seed: u64) -> Sensor {
        let (w, h) = (width as usize, height as usize);
        let noise_w = w + NOISE_PAD;
        let noise_h = h + NOISE_PAD;
        let mut rng = XorShift::new(seed ^ 0x5e45_0a11);
        let mut noise = vec![0i8; noise_w * noise_h * 3];
        for v in noise.iter_mut() {
            // Sum of uniforms: close enough to Gaussian for sensor grain.
            let s = rng.next_f32() + rng.next_f32() + rng.next_f32() - 1.5;
            *v = (s * 2.0 * sigma).clamp(-127.0, 127.0) as i8;
        }
        Sensor {
            width: w,
            height: h,
            noise,
            noise_w,
            noise_h,
        }
    }

    /// Adds the noise texture at a frame-dependent offset.
    pub fn apply(&self, img: &mut RgbImage, frame_seed: u64) {
        debug_assert_eq!(img.width() as usize, self.width);
        let mut rng = XorShift::new(frame_seed);
        let ox = rng.next_u32() as usize % (self.noise_w - self.width + 1);
        let oy = rng.next_u32() as usize % (self.noise_h - self.height + 1);
        let w3 = self.width * 3;
        let buf: &mut [u8] = img;
        for (y, row) in buf.chunks_exact_mut(w3).enumerate() {
            let start = ((y + oy) * self.noise_w + ox) * 3;
            let n = &self.noise[start..start + w3];
            for (p, &d) in row.iter_mut().zip(n) {
                *p = (*p as i16 + d as i16).clamp(0, 255) as u8;
            }
        }
    }
}

/// Gain of the lens falloff at each pixel, 0..=256.
pub(crate) fn vignette_table(width: u32, height: u32, strength: f32) -> Vec<u16> {
    let (w, h) = (width as f32, height as f32);
    let r2max = (w * w + h * h) / 4.0;
    let mut out = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        let dy = y as f32 + 0.5 - h / 2.0;
        for x in 0..width {
            let dx = x as f32 + 0.5 - w / 2.0;
            let r = (dx * dx + dy * dy) / r2max;
            out.push(((1.0 - strength * r * r.sqrt()) * 256.0) as u16);
        }
    }
    out
}

/// Falling rain: short bright streaks, slanted by the wind.
pub(crate) fn rain_streaks(img: &mut RgbImage, seed: u64, density: f32, brightness: f32) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let mut rng = XorShift::new(seed ^ 0x7a1d);
    let n = (density * (w * h) as f32 / 900.0) as usize;
    let slant = (rng.next_f32() - 0.5) * 0.5;
    let buf: &mut [u8] = img;
    for _ in 0..n {
        let x = rng.next_f32() * w as f32;
        let y = rng.next_f32() * h as f32;
        // Near drops are long and faint, far ones short.
        let depth = rng.next_f32();
        let len = (4.0 + depth * depth * 0.05 * h as f32) as i32;
        let a = brightness * (0.25 + 0.5 * rng.next_f32());
        for s in 0..len {
            let yy = y as i32 + s;
            let xx = (x + slant * s as f32) as i32;
            if yy < 0 || yy >= h || xx < 0 || xx >= w {
                continue;
            }
            let i = ((yy * w + xx) * 3) as usize;
            for c in 0..3 {
                let v = buf[i + c] as f32;
                buf[i + c] = (v + (220.0 - v) * a * 0.5).min(255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_is_monotonic_and_bounded() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        use rand::SeedableRng;
        let look = Look::random(&mut rng, Lighting::Day, false);
        let mut last = -1.0;
        for i in 0..100 {
            let v = look.tone([i as f32 * 0.1; 3])[1];
            assert!(v >= last && v <= 255.0);
            last = v;
        }
    }
}
