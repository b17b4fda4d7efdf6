//! Pinhole camera on a pole, small vector maths and hash noise.
//!
//! World axes: `x` across the road, `y` along it (away from the camera), `z`
//! up, in metres. The camera stands near `y = 0`.

pub(crate) type V3 = [f32; 3];

pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub(crate) fn normalize(a: V3) -> V3 {
    let n = dot(a, a).sqrt().max(1e-9);
    scale(a, 1.0 / n)
}

/// Nearest depth (metres along the optical axis) that is projected; geometry
/// in front of it is clipped away.
pub(crate) const NEAR: f32 = 0.3;

/// A pinhole camera with square pixels and the principal point at the centre.
#[derive(Debug, Clone)]
pub(crate) struct Camera {
    pub pos: V3,
    right: V3,
    down: V3,
    fwd: V3,
    /// Focal length in pixels.
    pub f: f32,
    pub cx: f32,
    pub cy: f32,
    pub width: u32,
    pub height: u32,
}

impl Camera {
    /// `yaw` turns towards +x, `pitch` tilts down, `roll` turns the image
    /// clockwise; all in radians.
    pub fn new(pos: V3, yaw: f32, pitch: f32, roll: f32, f: f32, width: u32, height: u32) -> Self {
        let fwd = [
            yaw.sin() * pitch.cos(),
            yaw.cos() * pitch.cos(),
            -pitch.sin(),
        ];
        let right0 = [yaw.cos(), -yaw.sin(), 0.0];
        let down0 = cross(fwd, right0);
        let (s, c) = roll.sin_cos();
        let right = add(scale(right0, c), scale(down0, s));
        let down = add(scale(right0, -s), scale(down0, c));
        Camera {
            pos,
            right,
            down,
            fwd,
            f,
            cx: width as f32 / 2.0,
            cy: height as f32 / 2.0,
            width,
            height,
        }
    }

    /// World point to camera coordinates (right, down, depth).
    pub fn to_cam(&self, p: V3) -> V3 {
        let d = sub(p, self.pos);
        [dot(d, self.right), dot(d, self.down), dot(d, self.fwd)]
    }

    /// Camera coordinates to pixel position; depth must be positive.
    pub fn cam_to_px(&self, c: V3) -> [f32; 2] {
        [
            self.cx + self.f * c[0] / c[2],
            self.cy + self.f * c[1] / c[2],
        ]
    }

    /// Pixel position and depth of a world point in front of the camera.
    pub fn project(&self, p: V3) -> Option<[f32; 3]> {
        let c = self.to_cam(p);
        if c[2] < NEAR {
            return None;
        }
        let [u, v] = self.cam_to_px(c);
        Some([u, v, c[2]])
    }

    /// Direction (not normalised) of the ray through pixel position `(u, v)`.
    pub fn ray(&self, u: f32, v: f32) -> V3 {
        add(
            self.fwd,
            add(
                scale(self.right, (u - self.cx) / self.f),
                scale(self.down, (v - self.cy) / self.f),
            ),
        )
    }

    /// Ground point (z = 0) seen at pixel `(u, v)`, if the ray goes down.
    #[cfg(test)]
    pub fn ground_at(&self, u: f32, v: f32) -> Option<[f32; 2]> {
        let d = self.ray(u, v);
        if d[2] >= -1e-6 {
            return None;
        }
        let t = -self.pos[2] / d[2];
        Some([self.pos[0] + t * d[0], self.pos[1] + t * d[1]])
    }

    /// Unit vector towards the camera from a world point.
    pub fn view_dir(&self, p: V3) -> V3 {
        normalize(sub(self.pos, p))
    }
}

/// Fast deterministic generator for per-pixel noise.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_the_aim_point_to_the_centre_and_back() {
        let h = 6.0f32;
        let pitch = (h / 20.0).atan();
        let cam = Camera::new([0.0, 0.0, h], 0.0, pitch, 0.0, 1000.0, 1280, 720);
        let p = cam.project([0.0, 20.0, 0.0]).unwrap();
        assert!(
            (p[0] - 640.0).abs() < 1e-2 && (p[1] - 360.0).abs() < 1e-2,
            "{p:?}"
        );
        // Points to the right land right of the centre, nearer points lower.
        assert!(cam.project([2.0, 20.0, 0.0]).unwrap()[0] > 640.0);
        assert!(cam.project([0.0, 10.0, 0.0]).unwrap()[1] > 360.0);
        let g = cam.ground_at(300.0, 600.0).unwrap();
        let back = cam.project([g[0], g[1], 0.0]).unwrap();
        assert!((back[0] - 300.0).abs() < 1e-2 && (back[1] - 600.0).abs() < 1e-2);
        assert!(cam.project([0.0, -5.0, 0.0]).is_none());
    }
}
