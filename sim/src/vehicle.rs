//! Vehicle models built from prisms and flat details, in vehicle
//! coordinates: `x` to the right, `y` forward (the front at `+length / 2`),
//! `z` up, in metres.

use rand::Rng;

use super::camera::{add, cross, dot, normalize, scale, sub, V3};
use super::plate::plate_size_mm;
use super::truth::{PlateLayout, VehicleClass, VehicleColour};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mat {
    Paint,
    /// A second paint, e.g. a truck's cargo box.
    Paint2,
    Glass,
    Tyre,
    Rim,
    Plastic,
    Chrome,
    Head,
    Tail,
    Grille,
    Rider,
    Helmet,
}

/// A flat convex polygon with outward normal.
#[derive(Debug, Clone)]
pub(crate) struct Poly {
    pub pts: Vec<V3>,
    pub normal: V3,
    pub mat: Mat,
    /// Depth bias in metres so that details on a face win over the face.
    pub bias: f32,
}

/// Where a plate sits: its centre on the front or rear face.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlateMount {
    pub centre: V3,
    /// +1 front, -1 rear.
    pub facing: f32,
    pub layout: PlateLayout,
}

impl PlateMount {
    /// Plate corners in vehicle coordinates, TL, TR, BR, BL as seen when
    /// looking at the plate.
    pub fn corners(&self) -> [V3; 4] {
        let (wmm, hmm) = plate_size_mm(self.layout);
        let (hw, hh) = (wmm / 2000.0, hmm / 2000.0);
        let c = self.centre;
        // Seen from the front (looking towards -y) the viewer's left is +x.
        let s = self.facing;
        [
            [c[0] + s * hw, c[1], c[2] + hh],
            [c[0] - s * hw, c[1], c[2] + hh],
            [c[0] - s * hw, c[1], c[2] - hh],
            [c[0] + s * hw, c[1], c[2] - hh],
        ]
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub class: VehicleClass,
    pub length: f32,
    pub width: f32,
    pub height: f32,
    pub polys: Vec<Poly>,
    pub paint: [f32; 3],
    pub paint2: [f32; 3],
    pub rider: [f32; 3],
    pub heads: Vec<V3>,
    pub tails: Vec<V3>,
    pub front_plate: Option<PlateMount>,
    pub rear_plate: Option<PlateMount>,
    /// Rear plate lamp brightness (0 when broken).
    pub plate_lamp: f32,
}

/// Linear albedo of a body colour with some variation in shade.
pub(crate) fn paint<R: Rng>(rng: &mut R, colour: VehicleColour) -> [f32; 3] {
    let base = match colour {
        VehicleColour::White => [0.8, 0.8, 0.78],
        VehicleColour::Black => [0.02, 0.02, 0.022],
        VehicleColour::Silver => [0.45, 0.46, 0.47],
        VehicleColour::Grey => [0.16, 0.165, 0.17],
        VehicleColour::Red => [0.5, 0.03, 0.03],
        VehicleColour::Blue => [0.03, 0.08, 0.35],
        VehicleColour::Green => [0.04, 0.2, 0.06],
        VehicleColour::Yellow => [0.7, 0.5, 0.04],
        VehicleColour::Brown => [0.17, 0.08, 0.035],
    };
    let k = rng.gen_range(0.8..1.15);
    let tint = [rng.gen_range(0.95..1.05), 1.0, rng.gen_range(0.95..1.05)];
    [base[0] * k * tint[0], base[1] * k, base[2] * k * tint[2]]
}

/// Extrudes a convex side profile `(y, z, half width)` about `x = xc`.
/// `edge_mat(i)` gives the material of the face between points `i` and `i+1`
/// (`None` leaves it out); the two sides get `side`.
fn prism(
    out: &mut Vec<Poly>,
    profile: &[[f32; 3]],
    xc: f32,
    edge_mat: impl Fn(usize) -> Option<Mat>,
    side: Option<Mat>,
) {
    let n = profile.len();
    let centre = {
        let mut c = [xc, 0.0, 0.0];
        for p in profile {
            c[1] += p[0] / n as f32;
            c[2] += p[1] / n as f32;
        }
        c
    };
    let mut push = |pts: Vec<V3>, mat: Mat| {
        let nrm = normalize(cross(sub(pts[1], pts[0]), sub(pts[2], pts[0])));
        let mid = scale(
            pts.iter().fold([0.0; 3], |a, &b| add(a, b)),
            1.0 / pts.len() as f32,
        );
        let nrm = if dot(nrm, sub(mid, centre)) < 0.0 {
            scale(nrm, -1.0)
        } else {
            nrm
        };
        out.push(Poly {
            pts,
            normal: nrm,
            mat,
            bias: 0.0,
        });
    };
    for i in 0..n {
        let j = (i + 1) % n;
        if let Some(m) = edge_mat(i) {
            let (a, b) = (profile[i], profile[j]);
            push(
                vec![
                    [xc - a[2], a[0], a[1]],
                    [xc + a[2], a[0], a[1]],
                    [xc + b[2], b[0], b[1]],
                    [xc - b[2], b[0], b[1]],
                ],
                m,
            );
        }
    }
    if let Some(m) = side {
        for s in [-1.0, 1.0] {
            push(
                profile
                    .iter()
                    .map(|p| [xc + s * p[2], p[0], p[1]])
                    .collect(),
                m,
            );
        }
    }
}

/// Axis-aligned box.
fn cuboid(out: &mut Vec<Poly>, x: [f32; 2], y: [f32; 2], z: [f32; 2], mat: Mat) {
    let hw = (x[1] - x[0]) / 2.0;
    let xc = (x[0] + x[1]) / 2.0;
    let prof = [
        [y[0], z[0], hw],
        [y[1], z[0], hw],
        [y[1], z[1], hw],
        [y[0], z[1], hw],
    ];
    prism(out, &prof, xc, |_| Some(mat), Some(mat));
}

/// A flat detail on a plane of constant `y` (facing `facing` = +1 front).
fn decal_y(out: &mut Vec<Poly>, y: f32, facing: f32, x: [f32; 2], z: [f32; 2], mat: Mat) {
    out.push(Poly {
        pts: vec![
            [x[0], y, z[0]],
            [x[1], y, z[0]],
            [x[1], y, z[1]],
            [x[0], y, z[1]],
        ],
        normal: [0.0, facing, 0.0],
        mat,
        bias: 0.04,
    });
}

/// A flat detail on the side face (x = ±`x`), covering a polygon in (y, z).
fn decal_side(out: &mut Vec<Poly>, x: f32, pts: &[[f32; 2]], mat: Mat) {
    for s in [-1.0, 1.0] {
        out.push(Poly {
            pts: pts.iter().map(|p| [s * x, p[0], p[1]]).collect(),
            normal: [s, 0.0, 0.0],
            mat,
            bias: 0.04,
        });
    }
}

/// A flat detail on a sloping face between profile points `a` and `b`,
/// spanning `t` along the edge and `x` across.
fn decal_edge(
    out: &mut Vec<Poly>,
    a: [f32; 2],
    b: [f32; 2],
    t: [f32; 2],
    x: [f32; 2],
    outward: f32,
    mat: Mat,
) {
    let p = |tt: f32| [a[0] + (b[0] - a[0]) * tt, a[1] + (b[1] - a[1]) * tt];
    let (p0, p1) = (p(t[0]), p(t[1]));
    let (dy, dz) = (b[0] - a[0], b[1] - a[1]);
    let l = (dy * dy + dz * dz).sqrt().max(1e-6);
    let n = [0.0, outward * dz / l, -outward * dy / l];
    out.push(Poly {
        pts: vec![
            [x[0], p0[0], p0[1]],
            [x[1], p0[0], p0[1]],
            [x[1], p1[0], p1[1]],
            [x[0], p1[0], p1[1]],
        ],
        normal: n,
        mat,
        bias: 0.04,
    });
}

fn wheel(out: &mut Vec<Poly>, y: f32, xc: f32, r: f32, hw: f32) {
    let oct: Vec<[f32; 3]> = (0..10)
        .map(|i| {
            let a = i as f32 * std::f32::consts::TAU / 10.0;
            [y + r * a.cos(), r + r * a.sin(), hw]
        })
        .collect();
    prism(out, &oct, xc, |_| Some(Mat::Tyre), Some(Mat::Tyre));
    let rim: Vec<[f32; 2]> = (0..8)
        .map(|i| {
            let a = i as f32 * std::f32::consts::TAU / 8.0;
            [y + 0.6 * r * a.cos(), r + 0.6 * r * a.sin()]
        })
        .collect();
    let outer = xc.abs() + hw;
    let s = xc.signum();
    out.push(Poly {
        pts: rim.iter().map(|p| [s * outer, p[0], p[1]]).collect(),
        normal: [s, 0.0, 0.0],
        mat: Mat::Rim,
        bias: 0.04,
    });
}

/// Inset of a convex polygon towards its centroid by `d` metres (approx.).
fn inset(pts: &[[f32; 2]], d: f32) -> Vec<[f32; 2]> {
    let n = pts.len() as f32;
    let c = pts
        .iter()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    pts.iter()
        .map(|p| {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            let l = (dx * dx + dy * dy).sqrt().max(1e-6);
            let k = ((l - d) / l).max(0.1);
            [c[0] + dx * k, c[1] + dy * k]
        })
        .collect()
}

/// Makes a random model of `class`.
pub(crate) fn build<R: Rng>(rng: &mut R, class: VehicleClass, colour: VehicleColour) -> Model {
    let paint_c = paint(rng, colour);
    let cargo = match rng.gen_range(0..4) {
        0 | 1 => [0.75, 0.75, 0.73],
        2 => [0.4, 0.42, 0.43],
        _ => {
            let c = VehicleColour::ALL[rng.gen_range(0..9)];
            paint(rng, c)
        }
    };
    let rider = [
        rng.gen_range(0.02..0.15),
        rng.gen_range(0.02..0.12),
        rng.gen_range(0.02..0.15),
    ];
    let mut m = match class {
        VehicleClass::Car => car(rng),
        VehicleClass::Bus => bus(rng),
        VehicleClass::Truck => truck(rng),
        VehicleClass::Motorcycle => motorcycle(rng),
    };
    m.paint = paint_c;
    m.paint2 = cargo;
    m.rider = rider;
    m.plate_lamp = if rng.gen_bool(0.1) {
        0.05
    } else {
        rng.gen_range(0.5..1.0)
    };
    m
}

fn empty(class: VehicleClass, length: f32, width: f32, height: f32) -> Model {
    Model {
        class,
        length,
        width,
        height,
        polys: Vec::new(),
        paint: [0.5; 3],
        paint2: [0.5; 3],
        rider: [0.1; 3],
        heads: Vec::new(),
        tails: Vec::new(),
        front_plate: None,
        rear_plate: None,
        plate_lamp: 1.0,
    }
}

fn car<R: Rng>(rng: &mut R) -> Model {
    // 0 sedan, 1 hatchback, 2 SUV / wagon
    let kind = rng.gen_range(0..3);
    let (l, w, h) = match kind {
        0 => (
            rng.gen_range(4.3..4.9),
            rng.gen_range(1.72..1.85),
            rng.gen_range(1.42..1.5),
        ),
        1 => (
            rng.gen_range(3.8..4.3),
            rng.gen_range(1.66..1.78),
            rng.gen_range(1.45..1.55),
        ),
        _ => (
            rng.gen_range(4.4..4.95),
            rng.gen_range(1.8..1.95),
            rng.gen_range(1.65..1.85),
        ),
    };
    let mut m = empty(VehicleClass::Car, l, w, h);
    let hw = w / 2.0;
    let (f, r) = (l / 2.0, -l / 2.0);
    let belt = if kind == 2 { 1.0 } else { 0.88 };
    let low = 0.25;
    let front_top = [f - 0.12, belt - 0.06];
    let bumper = [f, 0.55];
    let front_low = [f - 0.06, low];
    let rear_top = [r + if kind == 0 { 0.12 } else { 0.05 }, belt];
    let rear_mid = [r, 0.52];
    let rear_low = [r + 0.05, low];
    let body = [
        [rear_low[0], rear_low[1], hw - 0.03],
        [front_low[0], front_low[1], hw - 0.03],
        [bumper[0], bumper[1], hw],
        [front_top[0], front_top[1], hw],
        [rear_top[0], rear_top[1], hw],
        [rear_mid[0], rear_mid[1], hw],
    ];
    prism(
        &mut m.polys,
        &body,
        0.0,
        |i| if i == 0 { None } else { Some(Mat::Paint) },
        Some(Mat::Paint),
    );
    // Greenhouse: windscreen base, roof, rear screen.
    let hood = match kind {
        0 => rng.gen_range(1.1..1.3),
        1 => rng.gen_range(0.9..1.1),
        _ => rng.gen_range(1.0..1.2),
    };
    let ws_base = f - hood;
    let roof_f = ws_base - rng.gen_range(0.6..0.8);
    let (rear_base, roof_r) = match kind {
        0 => (r + rng.gen_range(0.75..0.95), r + rng.gen_range(1.3..1.6)),
        1 => (r + 0.12, r + 0.35),
        _ => (r + 0.08, r + 0.22),
    };
    let hwt = hw - 0.2;
    let hwb = hw - 0.05;
    let gh = [
        [rear_base, belt, hwb],
        [ws_base, belt, hwb],
        [roof_f, h, hwt],
        [roof_r, h, hwt],
    ];
    prism(
        &mut m.polys,
        &gh,
        0.0,
        |i| match i {
            0 => None,
            1 | 3 => Some(Mat::Glass),
            _ => Some(Mat::Paint),
        },
        Some(Mat::Paint),
    );
    // Side windows, split by the B pillar.
    let side: Vec<[f32; 2]> = gh.iter().map(|p| [p[0], p[1]]).collect();
    let win = inset(&side, 0.07);
    let mid = (ws_base + rear_base) / 2.0 + 0.1;
    let (front_w, rear_w) = split_at_y(&win, mid, 0.06);
    decal_side(&mut m.polys, hw - 0.12, &front_w, Mat::Glass);
    decal_side(&mut m.polys, hw - 0.12, &rear_w, Mat::Glass);
    // Front: lights, grille, plate.
    let hl_t = [0.55, 0.95];
    decal_edge(
        &mut m.polys,
        bumper,
        front_top,
        hl_t,
        [hw - 0.42, hw - 0.06],
        1.0,
        Mat::Head,
    );
    decal_edge(
        &mut m.polys,
        bumper,
        front_top,
        hl_t,
        [-hw + 0.06, -hw + 0.42],
        1.0,
        Mat::Head,
    );
    decal_edge(
        &mut m.polys,
        bumper,
        front_top,
        [0.3, 0.9],
        [-0.36, 0.36],
        1.0,
        Mat::Grille,
    );
    decal_edge(
        &mut m.polys,
        front_low,
        bumper,
        [0.0, 0.35],
        [-hw + 0.15, hw - 0.15],
        1.0,
        Mat::Plastic,
    );
    let hz = 0.55 + 0.3 * 0.75 * (front_top[1] - bumper[1]) / 0.3;
    m.heads = vec![[hw - 0.24, f - 0.05, hz], [-hw + 0.24, f - 0.05, hz]];
    // Rear: tail lights on the upper rear face.
    let tl_t = [0.05, 0.45];
    decal_edge(
        &mut m.polys,
        rear_top,
        rear_mid,
        tl_t,
        [hw - 0.38, hw - 0.04],
        -1.0,
        Mat::Tail,
    );
    decal_edge(
        &mut m.polys,
        rear_top,
        rear_mid,
        tl_t,
        [-hw + 0.04, -hw + 0.38],
        -1.0,
        Mat::Tail,
    );
    decal_edge(
        &mut m.polys,
        rear_mid,
        rear_low,
        [0.2, 0.9],
        [-hw + 0.1, hw - 0.1],
        -1.0,
        Mat::Plastic,
    );
    let tz = rear_top[1] - 0.25 * (rear_top[1] - rear_mid[1]);
    m.tails = vec![[hw - 0.2, r + 0.05, tz], [-hw + 0.2, r + 0.05, tz]];
    let wr = rng.gen_range(0.3..0.35) + if kind == 2 { 0.03 } else { 0.0 };
    let overhang = rng.gen_range(0.75..0.95);
    for y in [f - overhang, r + overhang] {
        for s in [-1.0, 1.0] {
            wheel(&mut m.polys, y, s * (hw - 0.13), wr, 0.12);
        }
    }
    // Mirrors.
    for s in [-1.0f32, 1.0] {
        let x = if s > 0.0 {
            [hw - 0.02, hw + 0.14]
        } else {
            [-hw - 0.14, -hw + 0.02]
        };
        cuboid(
            &mut m.polys,
            x,
            [ws_base - 0.25, ws_base - 0.12],
            [belt + 0.02, belt + 0.14],
            Mat::Paint,
        );
    }
    m.front_plate = Some(PlateMount {
        centre: [0.0, f + 0.01, rng.gen_range(0.4..0.48)],
        facing: 1.0,
        layout: PlateLayout::SingleLine,
    });
    let rear_z = if kind == 0 {
        rng.gen_range(0.62..0.72)
    } else {
        rng.gen_range(0.45..0.6)
    };
    m.rear_plate = Some(PlateMount {
        centre: [0.0, r - 0.02, rear_z],
        facing: -1.0,
        layout: PlateLayout::SingleLine,
    });
    // Occasional things in front of the plate.
    if rng.gen_bool(0.04) {
        bike_rack(&mut m.polys, r, hw);
    } else if kind == 2 && rng.gen_bool(0.1) {
        // Bull bar across the front.
        cuboid(
            &mut m.polys,
            [-0.55, 0.55],
            [f + 0.08, f + 0.14],
            [0.4, 0.46],
            Mat::Chrome,
        );
        for x in [-0.45, 0.45] {
            cuboid(
                &mut m.polys,
                [x - 0.03, x + 0.03],
                [f + 0.08, f + 0.14],
                [0.3, 0.85],
                Mat::Chrome,
            );
        }
    }
    m
}

/// Splits a convex polygon at `y = at` leaving a gap.
fn split_at_y(pts: &[[f32; 2]], at: f32, gap: f32) -> (Vec<[f32; 2]>, Vec<[f32; 2]>) {
    let clip = |keep_above: bool, at: f32| -> Vec<[f32; 2]> {
        let inside = |p: &[f32; 2]| if keep_above { p[0] >= at } else { p[0] <= at };
        let mut out = Vec::new();
        for i in 0..pts.len() {
            let a = pts[i];
            let b = pts[(i + 1) % pts.len()];
            if inside(&a) {
                out.push(a);
            }
            if inside(&a) != inside(&b) {
                let t = (at - a[0]) / (b[0] - a[0]);
                out.push([at, a[1] + (b[1] - a[1]) * t]);
            }
        }
        out
    };
    (clip(true, at + gap / 2.0), clip(false, at - gap / 2.0))
}

fn bike_rack(polys: &mut Vec<Poly>, r: f32, hw: f32) {
    let y = r - 0.45;
    for x in [-0.35, 0.35] {
        cuboid(
            polys,
            [x - 0.02, x + 0.02],
            [y, r],
            [0.45, 0.5],
            Mat::Plastic,
        );
        cuboid(
            polys,
            [x - 0.02, x + 0.02],
            [y - 0.02, y + 0.02],
            [0.4, 1.0],
            Mat::Plastic,
        );
    }
    cuboid(
        polys,
        [-0.7, 0.7],
        [y - 0.02, y + 0.02],
        [0.58, 0.62],
        Mat::Plastic,
    );
    // A bicycle across the back: two wheels as rings and the frame.
    let by = y - 0.1;
    for cx in [-0.5, 0.5] {
        for i in 0..10 {
            let a0 = i as f32 * std::f32::consts::TAU / 10.0;
            let a1 = a0 + std::f32::consts::TAU / 10.0;
            let (r0, r1) = (0.33, 0.3);
            let p = |a: f32, rr: f32| [cx + rr * a.cos(), by, 0.68 + rr * a.sin()];
            polys.push(Poly {
                pts: vec![p(a0, r0), p(a1, r0), p(a1, r1), p(a0, r1)],
                normal: [0.0, -1.0, 0.0],
                mat: Mat::Tyre,
                bias: 0.0,
            });
        }
    }
    let _ = hw;
    cuboid(
        polys,
        [-0.5, 0.2],
        [by - 0.02, by + 0.02],
        [0.93, 0.97],
        Mat::Paint2,
    );
    cuboid(
        polys,
        [-0.1, -0.05],
        [by - 0.02, by + 0.02],
        [0.68, 0.95],
        Mat::Paint2,
    );
}

fn bus<R: Rng>(rng: &mut R) -> Model {
    let (l, w, h) = (rng.gen_range(9.5..12.5), 2.5, rng.gen_range(2.9..3.3));
    let mut m = empty(VehicleClass::Bus, l, w, h);
    let hw = w / 2.0;
    let (f, r) = (l / 2.0, -l / 2.0);
    let prof = [
        [r, 0.35, hw],
        [f, 0.35, hw],
        [f, h - 0.2, hw],
        [f - 0.15, h, hw - 0.05],
        [r + 0.1, h, hw - 0.05],
        [r, h - 0.15, hw],
    ];
    prism(
        &mut m.polys,
        &prof,
        0.0,
        |i| if i == 0 { None } else { Some(Mat::Paint) },
        Some(Mat::Paint),
    );
    decal_y(
        &mut m.polys,
        f,
        1.0,
        [-hw + 0.1, hw - 0.1],
        [1.05, h - 0.45],
        Mat::Glass,
    );
    decal_y(
        &mut m.polys,
        f,
        1.0,
        [-hw + 0.25, hw - 0.25],
        [h - 0.4, h - 0.22],
        Mat::Grille,
    );
    decal_y(
        &mut m.polys,
        f,
        1.0,
        [-hw + 0.05, hw - 0.05],
        [0.35, 0.6],
        Mat::Plastic,
    );
    for s in [-1.0f32, 1.0] {
        let x = if s > 0.0 {
            [hw - 0.45, hw - 0.1]
        } else {
            [-hw + 0.1, -hw + 0.45]
        };
        decal_y(&mut m.polys, f, 1.0, x, [0.65, 0.82], Mat::Head);
        decal_y(&mut m.polys, r, -1.0, x, [0.7, 1.1], Mat::Tail);
    }
    decal_y(
        &mut m.polys,
        r,
        -1.0,
        [-hw + 0.2, hw - 0.2],
        [1.5, h - 0.3],
        Mat::Glass,
    );
    // Side windows and doors.
    let mut y = r + 0.6;
    while y < f - 1.6 {
        decal_side(
            &mut m.polys,
            hw,
            &[
                [y, 1.25],
                [y + 1.2, 1.25],
                [y + 1.2, h - 0.35],
                [y, h - 0.35],
            ],
            Mat::Glass,
        );
        y += 1.35;
    }
    for dy in [f - 1.4, (f + r) / 2.0] {
        m.polys.push(Poly {
            pts: vec![
                [hw, dy - 0.55, 0.4],
                [hw, dy + 0.55, 0.4],
                [hw, dy + 0.55, h - 0.35],
                [hw, dy - 0.55, h - 0.35],
            ],
            normal: [1.0, 0.0, 0.0],
            mat: Mat::Glass,
            bias: 0.05,
        });
    }
    m.heads = vec![[hw - 0.28, f, 0.74], [-hw + 0.28, f, 0.74]];
    m.tails = vec![[hw - 0.28, r, 0.9], [-hw + 0.28, r, 0.9]];
    for y in [f - 2.4, r + 2.8] {
        for s in [-1.0, 1.0] {
            wheel(&mut m.polys, y, s * (hw - 0.2), 0.5, 0.16);
        }
    }
    m.front_plate = Some(PlateMount {
        centre: [rng.gen_range(-0.3..0.3), f + 0.02, 0.48],
        facing: 1.0,
        layout: PlateLayout::SingleLine,
    });
    m.rear_plate = Some(PlateMount {
        centre: [0.0, r - 0.02, rng.gen_range(0.55..0.9)],
        facing: -1.0,
        layout: PlateLayout::SingleLine,
    });
    m
}

fn truck<R: Rng>(rng: &mut R) -> Model {
    let cargo_l = rng.gen_range(3.5..6.5);
    let cab_l = rng.gen_range(1.7..2.2);
    let l = cab_l + cargo_l + 0.2;
    let w = rng.gen_range(2.2..2.5);
    let box_body = rng.gen_bool(0.65);
    let box_h: f32 = rng.gen_range(2.9..3.6);
    let cab_h = rng.gen_range(2.5..2.9);
    let h = if box_body { box_h.max(cab_h) } else { cab_h };
    let mut m = empty(VehicleClass::Truck, l, w, h);
    let hw = w / 2.0;
    let (f, r) = (l / 2.0, -l / 2.0);
    let cb = f - cab_l;
    let cab = [
        [cb, 0.55, hw],
        [f, 0.55, hw],
        [f, 1.4, hw],
        [f - 0.25, cab_h, hw - 0.05],
        [cb, cab_h, hw - 0.05],
    ];
    prism(
        &mut m.polys,
        &cab,
        0.0,
        |i| if i == 0 { None } else { Some(Mat::Paint) },
        Some(Mat::Paint),
    );
    decal_edge(
        &mut m.polys,
        [f, 1.4],
        [f - 0.25, cab_h],
        [0.1, 0.85],
        [-hw + 0.1, hw - 0.1],
        1.0,
        Mat::Glass,
    );
    decal_side(
        &mut m.polys,
        hw - 0.01,
        &[
            [f - 0.9, 1.45],
            [f - 0.15, 1.45],
            [f - 0.3, cab_h - 0.15],
            [f - 0.9, cab_h - 0.15],
        ],
        Mat::Glass,
    );
    decal_y(&mut m.polys, f, 1.0, [-0.6, 0.6], [0.75, 1.3], Mat::Grille);
    decal_y(&mut m.polys, f, 1.0, [-hw, hw], [0.5, 0.72], Mat::Plastic);
    for s in [-1.0f32, 1.0] {
        let x = if s > 0.0 {
            [hw - 0.4, hw - 0.08]
        } else {
            [-hw + 0.08, -hw + 0.4]
        };
        decal_y(&mut m.polys, f, 1.0, x, [0.78, 0.95], Mat::Head);
    }
    // Chassis under the load.
    cuboid(
        &mut m.polys,
        [-hw + 0.35, hw - 0.35],
        [r, cb],
        [0.55, 0.95],
        Mat::Plastic,
    );
    let rear_face = r;
    if box_body {
        let prof = [
            [r, 1.0, hw],
            [cb - 0.1, 1.0, hw],
            [cb - 0.1, box_h, hw],
            [r, box_h, hw],
        ];
        prism(
            &mut m.polys,
            &prof,
            0.0,
            |_| Some(Mat::Paint2),
            Some(Mat::Paint2),
        );
        // Rear doors.
        decal_y(
            &mut m.polys,
            r,
            -1.0,
            [-0.02, 0.02],
            [1.05, box_h - 0.05],
            Mat::Plastic,
        );
    } else {
        let prof = [
            [r, 1.0, hw],
            [cb - 0.1, 1.0, hw],
            [cb - 0.1, 1.6, hw],
            [r, 1.6, hw],
        ];
        prism(
            &mut m.polys,
            &prof,
            0.0,
            |_| Some(Mat::Paint2),
            Some(Mat::Paint2),
        );
    }
    for s in [-1.0f32, 1.0] {
        let x = if s > 0.0 {
            [hw - 0.4, hw - 0.1]
        } else {
            [-hw + 0.1, -hw + 0.4]
        };
        decal_y(&mut m.polys, rear_face, -1.0, x, [0.62, 0.82], Mat::Tail);
    }
    // Rear bumper bar below the load.
    cuboid(
        &mut m.polys,
        [-hw + 0.1, hw - 0.1],
        [r + 0.05, r + 0.15],
        [0.45, 0.55],
        Mat::Plastic,
    );
    m.heads = vec![[hw - 0.24, f, 0.86], [-hw + 0.24, f, 0.86]];
    m.tails = vec![[hw - 0.25, r, 0.72], [-hw + 0.25, r, 0.72]];
    let wr = rng.gen_range(0.45..0.52);
    for y in [f - 1.1, r + 1.3] {
        for s in [-1.0, 1.0] {
            wheel(&mut m.polys, y, s * (hw - 0.25), wr, 0.2);
        }
    }
    m.front_plate = Some(PlateMount {
        centre: [0.0, f + 0.02, 0.6],
        facing: 1.0,
        layout: PlateLayout::SingleLine,
    });
    m.rear_plate = Some(PlateMount {
        centre: [rng.gen_range(-0.5..0.5), r - 0.02, 0.76],
        facing: -1.0,
        layout: PlateLayout::SingleLine,
    });
    m
}

fn motorcycle<R: Rng>(rng: &mut R) -> Model {
    let l = rng.gen_range(1.9..2.2);
    let mut m = empty(VehicleClass::Motorcycle, l, 0.8, 1.75);
    let (f, r) = (l / 2.0, -l / 2.0);
    let wr = 0.31;
    wheel(&mut m.polys, f - wr, 0.0, wr, 0.06);
    wheel(&mut m.polys, r + wr, 0.0, wr, 0.07);
    // Engine, tank and seat.
    cuboid(
        &mut m.polys,
        [-0.18, 0.18],
        [r + 0.55, f - 0.55],
        [0.3, 0.65],
        Mat::Plastic,
    );
    cuboid(
        &mut m.polys,
        [-0.16, 0.16],
        [0.0, f - 0.45],
        [0.65, 0.9],
        Mat::Paint,
    );
    cuboid(
        &mut m.polys,
        [-0.15, 0.15],
        [r + 0.15, 0.05],
        [0.7, 0.85],
        Mat::Paint,
    );
    cuboid(
        &mut m.polys,
        [-0.1, 0.1],
        [r + 0.02, r + 0.25],
        [0.65, 0.8],
        Mat::Paint,
    );
    // Fork and handlebar.
    cuboid(
        &mut m.polys,
        [-0.05, 0.05],
        [f - wr - 0.05, f - wr + 0.08],
        [wr, 1.0],
        Mat::Chrome,
    );
    cuboid(
        &mut m.polys,
        [-0.35, 0.35],
        [f - 0.5, f - 0.42],
        [1.0, 1.05],
        Mat::Plastic,
    );
    decal_y(
        &mut m.polys,
        f - 0.25,
        1.0,
        [-0.08, 0.08],
        [0.88, 1.02],
        Mat::Head,
    );
    cuboid(
        &mut m.polys,
        [-0.09, 0.09],
        [f - 0.33, f - 0.26],
        [0.86, 1.04],
        Mat::Plastic,
    );
    decal_y(
        &mut m.polys,
        r + 0.02,
        -1.0,
        [-0.07, 0.07],
        [0.8, 0.86],
        Mat::Tail,
    );
    // Rider: legs, torso, arms and helmet.
    for s in [-1.0f32, 1.0] {
        cuboid(
            &mut m.polys,
            [s * 0.2 - 0.07, s * 0.2 + 0.07],
            [-0.1, 0.25],
            [0.55, 0.95],
            Mat::Rider,
        );
        cuboid(
            &mut m.polys,
            [s * 0.22 - 0.05, s * 0.22 + 0.05],
            [0.0, f - 0.45],
            [1.15, 1.3],
            Mat::Rider,
        );
    }
    cuboid(
        &mut m.polys,
        [-0.2, 0.2],
        [-0.35, -0.05],
        [0.85, 1.5],
        Mat::Rider,
    );
    cuboid(
        &mut m.polys,
        [-0.13, 0.13],
        [-0.3, -0.02],
        [1.5, 1.78],
        Mat::Helmet,
    );
    m.heads = vec![[0.0, f - 0.25, 0.95]];
    m.tails = vec![[0.0, r + 0.02, 0.83]];
    m.rear_plate = Some(PlateMount {
        centre: [0.0, r - 0.0, 0.58],
        facing: -1.0,
        layout: PlateLayout::TwoLine,
    });
    // The plate hangs on a bracket below the tail.
    cuboid(
        &mut m.polys,
        [-0.12, 0.12],
        [r + 0.02, r + 0.25],
        [0.66, 0.7],
        Mat::Plastic,
    );
    m.height = 1.78;
    m
}
