//! The edge's ceilings, measured on one video file, for `make bench`:
//!
//! - `edge-bench decode VIDEO`: decode only, through GStreamer (`decodebin`
//!   to a counting sink, no conversion), frames a second.
//! - `edge-bench infer VIDEO`: the detector, plate reader and colour model
//!   through ort, exactly as an edge worker runs them
//!   ([`safecity_edge::analyse::Analyser`]), on frames decoded and
//!   converted to RGB in advance, frames a second.
//!
//! Each prints one JSON object on stdout; `scripts/bench.py` puts them side
//! by side with the edge's end-to-end rate and the peer baseline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use gst::prelude::*;
use gstreamer as gst;
use safecity_edge::analyse::{Analyser, ModelPaths};
use safecity_models::{Picture, PlateCrop, Provider, SessionOptions};
use safecity_pipeline::VideoFrames;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Decode and inference ceilings of the edge on one video file")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode every frame through GStreamer and count them.
    Decode { video: PathBuf },
    /// Run the models on frames decoded in advance.
    Infer {
        video: PathBuf,
        /// Frames to decode and analyse.
        #[arg(long, default_value_t = 200)]
        frames: usize,
        /// Frames per detector call, as `[batching] max_batch`.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Threads per session, as `[models] threads`.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Frames wider than this are scaled down first, as `max_width`.
        #[arg(long, default_value_t = 1920)]
        max_width: u32,
        /// `cpu`, `cuda[:N]` or `tensorrt[:N]`, as `[models] provider`.
        #[arg(long, default_value = "cpu")]
        provider: Provider,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Decode { video } => decode(&video),
        Command::Infer {
            video,
            frames,
            batch,
            threads,
            max_width,
            provider,
        } => infer(&video, frames, batch, threads, max_width, provider),
    }
}

fn decode(video: &std::path::Path) -> anyhow::Result<()> {
    gst::init().context("initialising GStreamer; run `make setup`")?;
    // Hardware decoders first where GStreamer has them, as the edge does.
    safecity_pipeline::source::hardware_decoders();
    if !video.is_file() {
        bail!("{}: no such file", video.display());
    }
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin name=dec ! fakesink name=sink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline
        .by_name("src")
        .context("filesrc")?
        .set_property("location", video.to_string_lossy().as_ref());
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    pipeline
        .by_name("sink")
        .context("fakesink")?
        .static_pad("sink")
        .context("sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("bus")?;
    let mut decoder = String::new();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                bail!("{}: {}", video.display(), e.error());
            }
            gst::MessageView::StateChanged(s) if decoder.is_empty() => {
                if let Some(el) = s.src().and_then(|o| o.downcast_ref::<gst::Element>()) {
                    if let Some(f) = el.factory() {
                        if f.metadata(gst::ELEMENT_METADATA_KLASS)
                            .is_some_and(|k| k.contains("Decoder") && k.contains("Video"))
                        {
                            decoder = f.name().to_string();
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null)?;
    let frames = frames.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "video": video,
            "decoder": decoder,
            "frames": frames,
            "seconds": seconds,
            "fps": frames as f64 / seconds,
        })
    );
    Ok(())
}

fn infer(
    video: &std::path::Path,
    count: usize,
    batch: usize,
    threads: usize,
    max_width: u32,
    provider: Provider,
) -> anyhow::Result<()> {
    if batch == 0 || count == 0 {
        bail!("--frames and --batch must be at least 1");
    }
    let mut frames = Vec::with_capacity(count);
    for frame in VideoFrames::open(video, None, Some(max_width))?.take(count) {
        frames.push(frame?);
    }
    if frames.is_empty() {
        bail!("{}: no frames decoded", video.display());
    }
    let options = SessionOptions {
        intra_threads: threads,
        provider,
    };
    let mut analyser = Analyser::open(&ModelPaths::default(), &options)?;
    let rgb: Vec<_> = frames.iter().map(|f| f.picture()).collect();
    // One batch to warm the sessions up (allocations, first-run kernels).
    analyser.analyse(&rgb[..batch.min(rgb.len())])?;
    let (mut vehicles, mut plates) = (0usize, 0usize);
    let start = Instant::now();
    for chunk in rgb.chunks(batch) {
        for a in analyser.analyse(chunk)? {
            vehicles += a.vehicles.len();
            plates += a.plates.len();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = rgb.len() as f64;
    let reader = time_reader(&mut analyser, &rgb, batch)?;
    println!(
        "{}",
        json!({
            "video": video,
            "frames": rgb.len(),
            "width": frames[0].width,
            "height": frames[0].height,
            "batch": batch,
            "threads": threads,
            "provider": format!("{provider:?}"),
            "seconds": seconds,
            "fps": n / seconds,
            "ms_per_frame": seconds * 1e3 / n,
            "vehicles_per_frame": vehicles as f64 / n,
            "plates_per_frame": plates as f64 / n,
            "reader": reader,
        })
    );
    Ok(())
}

/// The plate reader alone on every plate the detector finds in `frames`,
/// read in batches of 16 after one untimed batch: milliseconds per plate,
/// and the share of plates its cascade handed to the second reader.
fn time_reader(
    analyser: &mut Analyser,
    frames: &[Picture<'_>],
    batch: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut crops = Vec::new();
    for chunk in frames.chunks(batch) {
        for (frame, a) in chunk.iter().zip(analyser.analyse(chunk)?) {
            crops.extend(a.plates.iter().map(|p| PlateCrop {
                frame: *frame,
                bbox: p.det.bbox,
            }));
        }
    }
    if crops.is_empty() {
        return Ok(json!(null));
    }
    let reader = analyser.reader_mut();
    reader.read(&crops[..crops.len().min(16)], 5)?;
    let before = reader.stats();
    let start = Instant::now();
    for chunk in crops.chunks(16) {
        reader.read(chunk, 5)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = reader.stats();
    let plates = after.plates - before.plates;
    Ok(json!({
        "plates": plates,
        "ms_per_plate": seconds * 1e3 / plates as f64,
        "second_stage_share": (after.handed_on - before.handed_on) as f64 / plates as f64,
    }))
}
