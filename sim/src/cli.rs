//! `safecity-edge simulate`: still images or live simulated cameras.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{
    Lighting, Scenario, SimEvent, SimServer, SimServerConfig, StillsConfig, StreamSource,
    StreamSpec,
};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use safecity_core::sync::Locked;

/// Light for every simulated camera.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LightingArg {
    Day,
    Dusk,
    Night,
}

impl From<LightingArg> for Lighting {
    fn from(l: LightingArg) -> Lighting {
        match l {
            LightingArg::Day => Lighting::Day,
            LightingArg::Dusk => Lighting::Dusk,
            LightingArg::Night => Lighting::Night,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    safecity-edge simulate --images 1000 --out data/sim --seed 7\n  \
    safecity-edge simulate --images 20000 --plates --out data/plates --seed 8\n  \
    safecity-edge simulate --cameras 4 --pillars 1 --width 1280 --height 720\n  \
    safecity-edge simulate --scenario hit-and-run --alarm-url http://127.0.0.1:8081/api/v1/alarm")]
pub struct SimulateArgs {
    /// Everything rendered is a function of the seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Render N independent still images (JPEG) and ground_truth.jsonl.
    #[arg(long, value_name = "N", conflicts_with_all = ["cameras", "pillars", "scenario"], requires = "out")]
    pub images: Option<u32>,
    /// Folder for --images.
    #[arg(long, value_name = "DIR", requires = "images")]
    pub out: Option<PathBuf>,
    /// With --images: each image is a small window around one plate of a
    /// --width x --height frame (plate-reader training data, ~30x faster).
    #[arg(long, requires = "images")]
    pub plates: bool,
    /// Also tile the first 12 images into one PNG.
    #[arg(long, value_name = "FILE", requires = "images")]
    pub contact_sheet: Option<PathBuf>,

    /// Serve N simulated road cameras at rtsp://ADDRESS:PORT/cam1..N.
    #[arg(long, value_name = "N", conflicts_with = "scenario")]
    pub cameras: Option<u32>,
    /// Serve N simulated panic pillars at rtsp://ADDRESS:PORT/pillar1..N.
    #[arg(long, value_name = "N", conflicts_with = "scenario")]
    pub pillars: Option<u32>,
    /// A scenario TOML file, or `hit-and-run` for the built-in one.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<String>,

    /// RTSP port; 0 picks a free one.
    #[arg(long, default_value_t = 8554)]
    pub rtsp_port: u16,
    /// Address to serve RTSP on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// Stop after S seconds; 0 runs until Ctrl-C.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub duration: f64,
    /// Frame width (default 1920 for streams, 1280 for images).
    #[arg(long)]
    pub width: Option<u32>,
    /// Frame height (default 1080 for streams, 720 for images).
    #[arg(long)]
    pub height: Option<u32>,
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Length of the clip each stream loops, in seconds.
    #[arg(long = "loop", value_name = "S", default_value_t = 60.0)]
    pub loop_s: f64,
    /// Light for all cameras (default: chosen per camera from the seed).
    #[arg(long, value_enum)]
    pub lighting: Option<LightingArg>,
    /// Random traffic per camera.
    #[arg(long, default_value_t = crate::DEFAULT_VEHICLES_PER_MINUTE)]
    pub vehicles_per_minute: f64,
    /// POST each pillar press here as JSON; without it presses are printed.
    #[arg(long, value_name = "URL")]
    pub alarm_url: Option<String>,
    /// Ground-truth log (JSON lines of passes and alarms).
    #[arg(long, value_name = "FILE", default_value = "simulate-truth.jsonl")]
    pub truth: PathBuf,
    /// Where rendered clips are cached by seed.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

pub fn run(args: SimulateArgs, shutdown: &AtomicBool) -> anyhow::Result<()> {
    if let Some(count) = args.images {
        let out = args.out.clone().expect("clap requires --out with --images");
        return stills(&args, count, &out);
    }
    if args.cameras.is_none() && args.pillars.is_none() && args.scenario.is_none() {
        bail!("nothing to simulate: give --images N --out DIR, --cameras N (and --pillars N), or --scenario FILE");
    }
    serve(&args, shutdown)
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn stills(args: &SimulateArgs, count: u32, out: &Path) -> anyhow::Result<()> {
    if count == 0 {
        bail!("--images must be at least 1");
    }
    let config = StillsConfig {
        count,
        width: args.width.unwrap_or(1280),
        height: args.height.unwrap_or(720),
        seed: args.seed,
        plates: args.plates,
    };
    if !(64..=7680).contains(&config.width) || !(64..=4320).contains(&config.height) {
        bail!(
            "--width/--height {}x{} is out of range 64x64..7680x4320",
            config.width,
            config.height
        );
    }
    let started = Instant::now();
    let bar = progress_bar(count as u64, "rendering");
    crate::write_stills(&config, out, &|done| bar.set_position(done as u64))
        .with_context(|| format!("rendering {count} images into {}", out.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {count} images and ground_truth.jsonl to {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(sheet) = &args.contact_sheet {
        let mut images = Vec::new();
        for file in contact_sheet_picks(out)? {
            let path = out.join(&file);
            let img = image::open(&path).with_context(|| format!("reading {}", path.display()))?;
            images.push(img.to_rgb8());
        }
        crate::contact_sheet(&images, 4, 480)
            .save(sheet)
            .with_context(|| format!("writing contact sheet {}", sheet.display()))?;
        eprintln!("contact sheet: {}", sheet.display());
    }
    Ok(())
}

/// Up to 12 image files for a contact sheet: half by day, the rest at dusk
/// and night, so a reader can judge every light.
fn contact_sheet_picks(out: &Path) -> anyhow::Result<Vec<String>> {
    let truth_path = out.join("ground_truth.jsonl");
    let text = std::fs::read_to_string(&truth_path)
        .with_context(|| format!("reading {}", truth_path.display()))?;
    let mut quota = [("day", 6), ("dusk", 3), ("night", 3)];
    let (mut picks, mut rest) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("parsing {}", truth_path.display()))?;
        let file = v["file"].as_str().unwrap_or_default().to_owned();
        let lighting = v["lighting"].as_str().unwrap_or_default();
        match quota.iter_mut().find(|(l, n)| *l == lighting && *n > 0) {
            Some((_, n)) => {
                *n -= 1;
                picks.push(file);
            }
            None => rest.push(file),
        }
    }
    let missing = 12usize.saturating_sub(picks.len());
    picks.extend(rest.into_iter().take(missing));
    Ok(picks)
}

/// Places simulated cameras on a grid around central Almaty.
fn grid_position(index: u32) -> (f64, f64) {
    let (row, col) = ((index / 4) as f64, (index % 4) as f64);
    (43.2380 - row * 0.0045, 76.9300 + col * 0.0060)
}

fn streams_from_args(args: &SimulateArgs) -> anyhow::Result<(Vec<StreamSpec>, u64, f64)> {
    if let Some(scenario) = &args.scenario {
        let scenario = if scenario == "hit-and-run" {
            Scenario::hit_and_run()
        } else {
            Scenario::from_file(Path::new(scenario))?
        };
        let mut streams = scenario.streams();
        if let Some(l) = args.lighting {
            for s in &mut streams {
                if let StreamSource::Road { lighting, .. } = &mut s.source {
                    *lighting = Some(l.into());
                }
            }
        }
        return Ok((streams, scenario.seed.unwrap_or(args.seed), scenario.loop_s));
    }
    let cameras = args.cameras.unwrap_or(0);
    let pillars = args.pillars.unwrap_or(0);
    if args.cameras == Some(0) {
        bail!("--cameras must be at least 1");
    }
    if args.pillars == Some(0) && cameras == 0 {
        bail!("--pillars must be at least 1");
    }
    if !(0.0..=120.0).contains(&args.vehicles_per_minute) {
        bail!(
            "--vehicles-per-minute {} is out of range 0..120",
            args.vehicles_per_minute
        );
    }
    let mut streams = Vec::new();
    for i in 0..cameras {
        let (lat, lon) = grid_position(i);
        streams.push(StreamSpec {
            id: format!("cam{}", i + 1),
            name: format!("Simulated camera {}", i + 1),
            lat,
            lon,
            source: StreamSource::Road {
                lighting: args.lighting.map(Into::into),
                rain: None,
                vehicles_per_minute: args.vehicles_per_minute,
                scripted: Vec::new(),
            },
        });
    }
    for i in 0..pillars {
        let (lat, lon) = grid_position(i);
        // Each pillar's press lands in the middle part of the loop, at a
        // time of its own.
        let frac = 0.3
            + 0.4 * ((args.seed.wrapping_mul(31).wrapping_add(i as u64 * 7919)) % 1000) as f64
                / 1000.0;
        streams.push(StreamSpec {
            id: format!("pillar{}", i + 1),
            name: format!("Simulated pillar {}", i + 1),
            lat: lat + 0.0002,
            lon: lon + 0.0002,
            source: StreamSource::Pillar {
                press_at_s: Some((args.loop_s * frac * 10.0).round() / 10.0),
            },
        });
    }
    Ok((streams, args.seed, args.loop_s))
}

fn serve(args: &SimulateArgs, shutdown: &AtomicBool) -> anyhow::Result<()> {
    if args.duration.is_nan() || args.duration < 0.0 {
        bail!("--duration must be 0 (run until Ctrl-C) or more seconds");
    }
    let (streams, seed, loop_s) = streams_from_args(args)?;
    let config = SimServerConfig {
        address: args.address.clone(),
        port: args.rtsp_port,
        width: args.width.unwrap_or(1920),
        height: args.height.unwrap_or(1080),
        fps: args.fps,
        loop_s,
        seed,
        cache_dir: args
            .cache_dir
            .clone()
            .unwrap_or_else(crate::default_cache_dir),
        streams,
    };
    config.validate()?;
    if config.port != 0 {
        // Fail on a busy port before spending minutes on rendering.
        if let Err(e) = std::net::TcpListener::bind((config.address.as_str(), config.port)) {
            bail!(
                "RTSP port {} on {}: {e}; stop what listens there or pick another with --rtsp-port",
                config.port,
                config.address
            );
        }
    }
    eprintln!(
        "preparing {} streams at {}x{} {} fps, {} s loop (cache: {})",
        config.streams.len(),
        config.width,
        config.height,
        config.fps,
        loop_s,
        config.cache_dir.display()
    );
    let started = Instant::now();
    let prepared = crate::prepare_streams(&config, &|id, cached| {
        eprintln!("  {id}: {}", if cached { "cached" } else { "rendered" });
    })?;
    eprintln!("streams ready in {:.1} s", started.elapsed().as_secs_f64());

    let truth = File::create(&args.truth)
        .with_context(|| format!("creating ground-truth log {}", args.truth.display()))?;
    let truth = Arc::new(Mutex::new(std::io::LineWriter::new(truth)));
    let alarm_url = args.alarm_url.clone();
    let server = {
        let truth = truth.clone();
        SimServer::start(&config, prepared, move |event| {
            if let SimEvent::Alarm(alarm) = event {
                match &alarm_url {
                    Some(url) => {
                        let (url, alarm) = (url.clone(), alarm.clone());
                        std::thread::spawn(move || match crate::post_alarm(&url, &alarm) {
                            Ok(()) => {
                                tracing::info!(pillar = %alarm.pillar_id, ts = %alarm.ts, "alarm sent")
                            }
                            Err(e) => {
                                tracing::warn!(pillar = %alarm.pillar_id, error = %e, "alarm not delivered")
                            }
                        });
                    }
                    None => println!("alarm {} at {}", alarm.pillar_id, alarm.ts),
                }
            }
            let line = serde_json::to_string(event).expect("events serialise");
            let mut out = truth.locked();
            if let Err(e) = writeln!(out, "{line}") {
                tracing::error!(error = %e, "cannot write the ground-truth log");
            }
        })?
    };
    for s in server.streams() {
        println!(
            "stream {} {} {}  ({}, {:.5},{:.5})",
            s.id, s.kind, s.url, s.name, s.lat, s.lon
        );
    }
    if let Some(first) = server.streams().first() {
        println!("watch with: gst-launch-1.0 playbin uri={}", first.url);
    }
    println!("ground truth: {}", args.truth.display());
    let _ = std::io::stdout().flush();

    let deadline =
        (args.duration > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.duration));
    while !shutdown.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    eprintln!("simulator stopped");
    Ok(())
}
