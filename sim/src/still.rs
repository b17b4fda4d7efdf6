//! Independent still images with ground truth: training and evaluation data
//! for the detector and the plate reader.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::effects::Look;
use super::error::{Result, SimError};
use super::render::{
    frame_seed, plate_pixel, random_class, random_colour, random_plate, render, Actor, PlateTex,
    World,
};
use super::road::Road;
use super::scene::{best_plate_y, random_camera, random_conditions, visible_range, Framing};
use super::truth::{Direction, FrameTruth};
use super::vehicle::{build, Model};

/// What `write_stills` makes.
#[derive(Debug, Clone, PartialEq)]
pub struct StillsConfig {
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// Each image is a small window of a `width` x `height` frame around one
    /// plate (see [`render_plate_window`]) instead of the whole frame.
    pub plates: bool,
}

fn still_rng(seed: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Mixed into the seed of plate windows, so that they never repeat a still.
const PLATE_WINDOW_SALT: u64 = 0x504c_4154_4553;

/// One in ten vehicles stands still; the rest drive at 20-70 km/h (m/s).
fn random_speed(rng: &mut ChaCha8Rng) -> f32 {
    if rng.gen_bool(0.1) {
        0.0
    } else {
        rng.gen_range(20.0..70.0f32) / 3.6
    }
}

/// Renders still image `index` of the set made from `seed`.
pub fn render_still(width: u32, height: u32, seed: u64, index: u64) -> (RgbImage, FrameTruth) {
    let width = width.max(16);
    let height = height.max(16);
    let mut rng = still_rng(seed, index);
    let (lighting, rain) = random_conditions(&mut rng);
    let road = Road::random(&mut rng);
    // Framed like close-up plate cameras, stream cameras or overview cameras.
    let framing = match rng.gen_range(0..10) {
        0..=3 => Framing::CloseUp,
        4..=6 => Framing::PlateReader,
        _ => Framing::Overview,
    };
    let cam = random_camera(&mut rng, &road, width, height, framing);
    let look = Look::random(&mut rng, lighting, rain);
    let world = World::new(cam, road, look, rng.gen());

    struct Placed {
        model: Model,
        colour: super::truth::VehicleColour,
        dir: Direction,
        x: f32,
        y: f32,
        speed: f32,
        plate: PlateTex,
    }
    let n = rng.gen_range(1..=12);
    let mut placed: Vec<Placed> = Vec::new();
    for k in 0..n {
        let class = random_class(&mut rng);
        let colour = random_colour(&mut rng);
        let lane = &world.road.lanes[rng.gen_range(0..world.road.lanes.len())];
        let (x, dir) = (lane.x, lane.dir);
        let model = build(&mut rng, class, colour);
        let range = visible_range(&world.cam, &model, x);
        if range.1 <= range.0 {
            continue;
        }
        let far = range.1.min(range.0 + 150.0);
        for attempt in 0..6 {
            let y = if k < 2 && attempt == 0 && rng.gen_bool(0.75) {
                // A close vehicle with its plate in the best place.
                match best_plate_y(&world.cam, &model, dir, x, range, rng.gen_range(0.5..0.92)) {
                    Some(y) => y + rng.gen_range(-2.0..2.0),
                    None => continue,
                }
            } else {
                range.0 + (far - range.0) * rng.gen::<f32>().powf(1.6)
            };
            let free = placed.iter().all(|p| {
                (p.x - x).abs() > 0.5
                    || (p.y - y).abs() > (p.model.length + model.length) / 2.0 + 1.5
            });
            if free {
                let speed = random_speed(&mut rng);
                let plate = PlateTex::new(random_plate(&mut rng, class), false);
                placed.push(Placed {
                    model,
                    colour,
                    dir,
                    x,
                    y,
                    speed,
                    plate,
                });
                break;
            }
        }
    }
    let actors: Vec<Actor<'_>> = placed
        .iter()
        .enumerate()
        .map(|(i, p)| Actor {
            id: i as u64 + 1,
            model: &p.model,
            colour: p.colour,
            dir: p.dir,
            x: p.x,
            y: p.y,
            speed: p.speed,
            plate: Some(&p.plate),
        })
        .collect();
    render(&world, &actors, frame_seed(seed, index))
}

/// Renders a window of a `width` x `height` frame around one vehicle's
/// plate: the camera, light, weather, sensor and plate are drawn as for
/// [`render_still`], but only the pixels near the plate are rendered, so
/// plate-reader training data comes some thirty times faster. The plate
/// lands anywhere from just readable to large; the truth is in window
/// pixels. `None` when the draw left no plate in view (rare: call again
/// with another index).
pub fn render_plate_window(
    width: u32,
    height: u32,
    seed: u64,
    index: u64,
) -> Option<(RgbImage, FrameTruth)> {
    let seed = seed ^ PLATE_WINDOW_SALT;
    let mut rng = still_rng(seed, index);
    let (lighting, rain) = random_conditions(&mut rng);
    let road = Road::random(&mut rng);
    let framing = if rng.gen_bool(0.5) {
        Framing::CloseUp
    } else {
        Framing::PlateReader
    };
    let mut cam = random_camera(&mut rng, &road, width.max(16), height.max(16), framing);
    let look = Look::random(&mut rng, lighting, rain);
    let class = random_class(&mut rng);
    let colour = random_colour(&mut rng);
    let lane = &road.lanes[rng.gen_range(0..road.lanes.len())];
    let (x, dir) = (lane.x, lane.dir);
    let model = build(&mut rng, class, colour);
    let range = visible_range(&cam, &model, x);
    if range.1 <= range.0 {
        return None;
    }
    let best = best_plate_y(&cam, &model, dir, x, range, rng.gen_range(0.4..0.9))?;
    // From the best place out to farther away, where plates get small.
    let y = best + rng.gen::<f32>().powf(2.0) * rng.gen_range(0.0..30.0) + rng.gen_range(-2.0..2.0);
    let (centre, pw) = plate_pixel(&cam, &model, dir, x, y)?;
    // Room for the plate and a margin of its own size around it, on the
    // 8-pixel grid of the whole frame (as a codec's blocks would fall).
    let (fw, fh) = (cam.width as f32, cam.height as f32);
    let ww = ((pw * 2.6 + 16.0) / 8.0).ceil() * 8.0;
    let wh = ((pw * 2.4 + 16.0) / 8.0).ceil() * 8.0;
    let ww = ww.min(fw);
    let wh = wh.min(fh);
    let x0 = ((centre[0] - ww / 2.0 + rng.gen_range(-0.2..0.2) * pw) / 8.0).floor() * 8.0;
    let y0 = ((centre[1] - wh / 2.0 + rng.gen_range(-0.2..0.2) * pw) / 8.0).floor() * 8.0;
    let x0 = x0.clamp(0.0, fw - ww);
    let y0 = y0.clamp(0.0, fh - wh);
    cam.cx -= x0;
    cam.cy -= y0;
    cam.width = ww as u32;
    cam.height = wh as u32;
    let world = World::new(cam, road, look, rng.gen());
    let speed = random_speed(&mut rng);
    let plate = PlateTex::new(random_plate(&mut rng, class), false);
    let actor = Actor {
        id: 1,
        model: &model,
        colour,
        dir,
        x,
        y,
        speed,
        plate: Some(&plate),
    };
    let (img, truth) = render(&world, &[actor], frame_seed(seed, index));
    truth
        .vehicles
        .iter()
        .any(|v| v.plate.is_some())
        .then_some((img, truth))
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    #[serde(flatten)]
    truth: &'a FrameTruth,
}

/// Writes `count` JPEGs and `ground_truth.jsonl` into `out`.
pub fn write_stills(
    config: &StillsConfig,
    out: &Path,
    progress: &(dyn Fn(u32) + Sync),
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| SimError::io(out, e))?;
    let done = AtomicU32::new(0);
    let truths: Vec<(String, FrameTruth)> = (0..config.count)
        .into_par_iter()
        .map(|i| {
            let (img, truth) = if config.plates {
                // A few draws leave no plate in view; the next index is tried.
                (i as u64 * 64..)
                    .find_map(|k| render_plate_window(config.width, config.height, config.seed, k))
                    .expect("a plate comes into view within a few draws")
            } else {
                render_still(config.width, config.height, config.seed, i as u64)
            };
            let name = format!("{i:06}.jpg");
            let path = out.join(&name);
            // Compression varies like it does between real cameras.
            let quality = still_rng(config.seed ^ 0x4a50_4547, i as u64).gen_range(50..=95u8);
            let file = File::create(&path).map_err(|e| SimError::io(&path, e))?;
            let mut w = BufWriter::new(file);
            JpegEncoder::new_with_quality(&mut w, quality)
                .encode_image(&img)
                .map_err(|source| SimError::Image {
                    path: path.clone(),
                    source,
                })?;
            w.flush().map_err(|e| SimError::io(&path, e))?;
            progress(done.fetch_add(1, Ordering::SeqCst) + 1);
            Ok((name, truth))
        })
        .collect::<Result<_>>()?;
    let gt = out.join("ground_truth.jsonl");
    let file = File::create(&gt).map_err(|e| SimError::io(&gt, e))?;
    let mut w = BufWriter::new(file);
    for (name, truth) in &truths {
        let line = serde_json::to_string(&Line { file: name, truth })
            .map_err(|e| SimError::io(&gt, e.into()))?;
        writeln!(w, "{line}").map_err(|e| SimError::io(&gt, e))?;
    }
    w.flush().map_err(|e| SimError::io(&gt, e))?;
    Ok(())
}

/// Tiles images into one picture, `columns` wide, each scaled to `tile_width`.
pub fn contact_sheet(images: &[RgbImage], columns: u32, tile_width: u32) -> RgbImage {
    let columns = columns.max(1);
    let tile_width = tile_width.max(1);
    let gap = 4;
    let tile_h = images
        .iter()
        .map(|i| (i.height() as u64 * tile_width as u64 / i.width().max(1) as u64) as u32)
        .max()
        .unwrap_or(tile_width)
        .max(1);
    let rows = (images.len() as u32).div_ceil(columns).max(1);
    let mut sheet = RgbImage::from_pixel(
        columns * (tile_width + gap) + gap,
        rows * (tile_h + gap) + gap,
        image::Rgb([24, 24, 24]),
    );
    for (i, img) in images.iter().enumerate() {
        let th =
            ((img.height() as u64 * tile_width as u64) / img.width().max(1) as u64).max(1) as u32;
        let small = image::imageops::resize(img, tile_width, th, FilterType::Triangle);
        let (c, r) = (i as u32 % columns, i as u32 / columns);
        image::imageops::replace(
            &mut sheet,
            &small,
            (gap + c * (tile_width + gap)) as i64,
            (gap + r * (tile_h + gap)) as i64,
        );
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stills_are_deterministic_and_differ_by_index() {
        let (a, ta) = render_still(256, 160, 5, 3);
        let (b, tb) = render_still(256, 160, 5, 3);
        assert_eq!(a.as_raw(), b.as_raw());
        assert_eq!(ta, tb);
        let (c, _) = render_still(256, 160, 5, 4);
        assert_ne!(a.as_raw(), c.as_raw());
    }

    #[test]
    fn boxes_nest_in_many_stills() {
        let mut vehicles = 0;
        let mut classes = std::collections::HashSet::new();
        let mut lights = std::collections::HashSet::new();
        for i in 0..200 {
            let (_, t) = render_still(320, 180, 42, i);
            t.assert_nested(&format!("still {i}"));
            vehicles += t.vehicles.len();
            classes.extend(t.vehicles.iter().map(|v| v.class));
            lights.insert(t.lighting);
        }
        assert!(vehicles > 300, "{vehicles} vehicles");
        assert_eq!(classes.len(), 4, "{classes:?}");
        assert_eq!(lights.len(), 3);
    }

    #[test]
    fn some_plates_are_readable_and_some_not() {
        let (mut readable, mut unreadable) = (0, 0);
        for i in 0..24 {
            let (_, t) = render_still(1280, 720, 42, i);
            t.assert_nested(&format!("still {i}"));
            for p in t.vehicles.iter().filter_map(|v| v.plate.as_ref()) {
                if p.readable {
                    readable += 1;
                    // Readable plates are big enough to read.
                    assert!(p.bbox[2] >= 38.0, "{p:?}");
                } else {
                    unreadable += 1;
                }
            }
        }
        assert!(
            readable >= 3 && unreadable >= 10,
            "readable {readable}, unreadable {unreadable}"
        );
    }

    #[test]
    #[ignore]
    fn readable_share() {
        for (w, h) in [(640, 360), (960, 540), (1280, 720)] {
            let t0 = std::time::Instant::now();
            let (mut r, mut u) = (0, 0);
            for i in 0..40 {
                for v in render_still(w, h, 42, i).1.vehicles {
                    if let Some(p) = v.plate {
                        if p.readable {
                            r += 1;
                        } else {
                            u += 1;
                        }
                    }
                }
            }
            eprintln!(
                "{w}x{h}: readable {r}, unreadable {u}, {:.2} s",
                t0.elapsed().as_secs_f64()
            );
        }
    }

    #[test]
    fn writes_jpegs_and_ground_truth() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StillsConfig {
            count: 5,
            width: 200,
            height: 120,
            seed: 9,
            plates: false,
        };
        let calls = AtomicU32::new(0);
        write_stills(&cfg, dir.path(), &|_| {
            calls.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let gt = std::fs::read_to_string(dir.path().join("ground_truth.jsonl")).unwrap();
        let lines: Vec<&str> = gt.lines().collect();
        assert_eq!(lines.len(), 5);
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["file"], format!("{i:06}.jpg"));
            assert_eq!(v["width"], 200);
            let img = image::open(dir.path().join(format!("{i:06}.jpg"))).unwrap();
            assert_eq!(img.width(), 200);
        }
        // A file where the directory should be is reported with its path.
        let file = dir.path().join("000000.jpg");
        let err = write_stills(&cfg, &file, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("000000.jpg"), "{err}");
    }

    #[test]
    fn plate_windows_hold_one_plate_with_room_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StillsConfig {
            count: 40,
            width: 1280,
            height: 720,
            seed: 3,
            plates: true,
        };
        write_stills(&cfg, dir.path(), &|_| {}).unwrap();
        let gt = std::fs::read_to_string(dir.path().join("ground_truth.jsonl")).unwrap();
        let (mut readable, mut heights) = (0, Vec::new());
        for line in gt.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (w, h) = (v["width"].as_f64().unwrap(), v["height"].as_f64().unwrap());
            assert!(w <= 1280.0 && h <= 720.0 && w < 1280.0 * 0.6, "{line}");
            let img = image::open(dir.path().join(v["file"].as_str().unwrap())).unwrap();
            assert_eq!((img.width() as f64, img.height() as f64), (w, h));
            let plates: Vec<&serde_json::Value> = v["vehicles"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.get("plate").filter(|p| !p.is_null()))
                .collect();
            assert_eq!(plates.len(), 1, "{line}");
            let p = plates[0];
            let b: Vec<f64> = serde_json::from_value(p["bbox"].clone()).unwrap();
            // Inside the window, with some room on each side.
            assert!(
                b[0] > 0.0 && b[1] > 0.0 && b[0] + b[2] < w && b[1] + b[3] < h,
                "{line}"
            );
            readable += p["readable"].as_bool().unwrap() as u32;
            heights.push(b[3]);
        }
        heights.sort_by(f64::total_cmp);
        // Many readable, from small to large.
        assert!(readable >= 8, "{readable} of 40 readable");
        assert!(heights[4] < 20.0 && heights[35] > 25.0, "{heights:?}");
    }

    #[test]
    fn contact_sheet_tiles() {
        let imgs = vec![RgbImage::from_pixel(100, 50, image::Rgb([200, 0, 0])); 5];
        let s = contact_sheet(&imgs, 3, 60);
        assert_eq!(s.width(), 3 * 64 + 4);
        assert_eq!(s.height(), 2 * 34 + 4);
        assert_eq!(s.get_pixel(10, 10)[0], 200);
    }

    /// Preview for people: `cargo test --release -p safecity-pipeline --lib
    /// sim::still::tests::preview -- --ignored`; writes PNG sheets to the
    /// temporary directory.
    #[test]
    #[ignore]
    fn preview() {
        let (w, h) = (960, 540);
        let mut by_light: std::collections::BTreeMap<String, Vec<RgbImage>> = Default::default();
        for i in 0..40 {
            let (img, t) = render_still(w, h, 1, i);
            let key = format!("{:?}{}", t.lighting, if t.rain { "_rain" } else { "" });
            let mut dbg = img.clone();
            for v in &t.vehicles {
                draw_box(&mut dbg, v.bbox, [0, 255, 0]);
                if let Some(p) = &v.plate {
                    let c = if p.readable {
                        [255, 255, 0]
                    } else {
                        [255, 0, 0]
                    };
                    draw_box(&mut dbg, p.bbox, c);
                    for q in p.corners {
                        draw_box(&mut dbg, [q[0] - 1.0, q[1] - 1.0, 2.0, 2.0], [255, 0, 255]);
                    }
                }
            }
            if i < 8 {
                dbg.save(std::env::temp_dir().join(format!("safecity_dbg_{i}.png")))
                    .unwrap();
            }
            by_light.entry(key).or_default().push(img);
            by_light.entry("debug".into()).or_default().push(dbg);
        }
        for (seed, l) in [
            (1u64, super::super::Lighting::Day),
            (2, super::super::Lighting::Night),
            (3, super::super::Lighting::Dusk),
        ] {
            let cfg = super::super::SceneConfig {
                width: 1280,
                height: 720,
                fps: 25,
                duration_s: 60.0,
                seed,
                lighting: Some(l),
                rain: None,
                vehicles_per_minute: 40.0,
            };
            let mut scene = super::super::Scene::new(cfg, vec![]).unwrap();
            for i in 0..6 {
                let (img, _) = scene.render_frame(300 + i * 111);
                by_light.entry("video".into()).or_default().push(img);
            }
        }
        let tmp = std::env::temp_dir();
        for (k, imgs) in by_light {
            contact_sheet(&imgs, 3, 640)
                .save(tmp.join(format!("safecity_{k}.png")))
                .unwrap();
        }
    }

    fn draw_box(img: &mut RgbImage, b: [f32; 4], c: [u8; 3]) {
        let (w, h) = (img.width() as i32, img.height() as i32);
        let x0 = b[0] as i32;
        let y0 = b[1] as i32;
        let x1 = (b[0] + b[2]) as i32;
        let y1 = (b[1] + b[3]) as i32;
        for x in x0..=x1 {
            for y in [y0, y1] {
                if x >= 0 && y >= 0 && x < w && y < h {
                    img.put_pixel(x as u32, y as u32, image::Rgb(c));
                }
            }
        }
        for y in y0..=y1 {
            for x in [x0, x1] {
                if x >= 0 && y >= 0 && x < w && y < h {
                    img.put_pixel(x as u32, y as u32, image::Rgb(c));
                }
            }
        }
    }
}
