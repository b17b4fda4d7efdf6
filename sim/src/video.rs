//! Encoding rendered frames to H.264 MP4 clips, and reading them back as
//! access units for the RTSP server.

use std::path::Path;
use std::sync::Arc;

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use image::RgbImage;

use super::error::{Result, SimError};

/// How a clip is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u64,
    /// Frames between key frames; a client can join at each one.
    pub keyframe_interval: u32,
    /// x264 constant-quality quantizer (lower is better, 18..30 is sensible).
    pub quantizer: u32,
}

impl ClipSpec {
    /// One key frame a second and the quality of a typical city camera.
    pub fn new(width: u32, height: u32, fps: u32, frames: u64) -> ClipSpec {
        ClipSpec {
            width,
            height,
            fps,
            frames,
            keyframe_interval: fps,
            quantizer: 24,
        }
    }
}

pub(crate) fn gst_init() -> Result<()> {
    gst::init().map_err(|e| SimError::Gst(format!("cannot initialise GStreamer: {e}")))
}

pub(crate) fn gst_error(context: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Gst(format!("{context}: {e}"))
}

fn element<T: IsA<gst::Element>>(bin: &gst::Bin, name: &str) -> Result<T> {
    bin.by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or_else(|| SimError::Gst(format!("pipeline has no element {name:?}")))
}

/// Waits for end of stream or an error on a pipeline's bus.
fn wait_for_eos(pipeline: &gst::Pipeline, what: &str) -> Result<()> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => return Ok(()),
            gst::MessageView::Error(err) => {
                return Err(SimError::Gst(format!(
                    "{what}: {} ({})",
                    err.error(),
                    err.debug().unwrap_or_default()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renders `spec.frames` frames with `frame(index)` and encodes them to an
/// H.264 MP4 file at `path`. The file appears only once it is complete.
pub fn encode_clip(
    spec: &ClipSpec,
    path: &Path,
    mut frame: impl FnMut(u64) -> RgbImage,
) -> Result<()> {
    gst_init()?;
    if spec.width == 0 || spec.height == 0 || spec.fps == 0 || spec.frames == 0 {
        return Err(SimError::Config(format!(
            "clip of {}x{} at {} fps with {} frames is empty",
            spec.width, spec.height, spec.fps, spec.frames
        )));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SimError::io(dir, e))?;
    }
    // Unique per process: two simulators filling one cache must not write
    // into the same file.
    let partial = path.with_extension(format!("mp4.{}.partial", std::process::id()));
    // x264enc turns RGB into 4:4:4 unless told otherwise; decoders and
    // cameras use 4:2:0.
    let launch = format!(
        "appsrc name=src format=time block=true max-bytes={max_bytes} \
           caps=video/x-raw,format=RGB,width={w},height={h},framerate={fps}/1 \
         ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc speed-preset=veryfast tune=zerolatency bframes=0 \
           key-int-max={kf} pass=quant quantizer={q} \
         ! h264parse ! mp4mux ! filesink name=sink",
        max_bytes = (spec.width * spec.height * 3 * 4) as u64,
        w = spec.width,
        h = spec.height,
        fps = spec.fps,
        kf = spec.keyframe_interval.max(1),
        q = spec.quantizer,
    );
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| gst_error("building the encoder", e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| SimError::Gst("encoder is not a pipeline".into()))?;
    let sink: gst::Element = element(pipeline.upcast_ref(), "sink")?;
    sink.set_property("location", partial.to_string_lossy().as_ref());
    let src: gst_app::AppSrc = element(pipeline.upcast_ref(), "src")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| gst_error("starting the encoder", e))?;

    let frame_ns = 1_000_000_000u64 / spec.fps as u64;
    let mut result = Ok(());
    for i in 0..spec.frames {
        let img = frame(i);
        if img.width() != spec.width || img.height() != spec.height {
            result = Err(SimError::Config(format!(
                "frame {i} is {}x{}, expected {}x{}",
                img.width(),
                img.height(),
                spec.width,
                spec.height
            )));
            break;
        }
        let mut buffer = gst::Buffer::from_mut_slice(img.into_raw());
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(i * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        if let Err(e) = src.push_buffer(buffer) {
            result = Err(SimError::Gst(format!("encoder stopped at frame {i}: {e}")));
            break;
        }
    }
    if result.is_ok() {
        let _ = src.end_of_stream();
        result = wait_for_eos(&pipeline, "encoding the clip");
    }
    let _ = pipeline.set_state(gst::State::Null);
    match result {
        Ok(()) => std::fs::rename(&partial, path).map_err(|e| SimError::io(path, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// One H.264 access unit (a frame) in byte-stream form.
#[derive(Clone)]
pub(crate) struct AccessUnit {
    pub data: Arc<[u8]>,
    pub keyframe: bool,
}

/// Shares an access unit's bytes with GStreamer buffers without copying.
pub(crate) struct SharedBytes(pub Arc<[u8]>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads an MP4 clip back as byte-stream access units, in decode order.
pub(crate) fn read_access_units(path: &Path) -> Result<Vec<AccessUnit>> {
    gst_init()?;
    let launch = "filesrc name=src ! qtdemux ! h264parse \
                  ! video/x-h264,stream-format=byte-stream,alignment=au \
                  ! appsink name=sink sync=false";
    let pipeline = gst::parse::launch(launch)
        .map_err(|e| gst_error("building the clip reader", e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| SimError::Gst("clip reader is not a pipeline".into()))?;
    let src: gst::Element = element(pipeline.upcast_ref(), "src")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink: gst_app::AppSink = element(pipeline.upcast_ref(), "sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| gst_error("starting the clip reader", e))?;
    let mut units = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        let map = buffer
            .map_readable()
            .map_err(|e| SimError::Gst(format!("mapping a buffer: {e}")))?;
        units.push(AccessUnit {
            data: Arc::from(map.as_slice()),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        });
    }
    let outcome = wait_for_eos(&pipeline, &format!("reading {}", path.display()));
    let _ = pipeline.set_state(gst::State::Null);
    outcome?;
    if units.is_empty() || !units[0].keyframe {
        return Err(SimError::Gst(format!(
            "{} holds no H.264 stream that starts with a key frame; delete it to render again",
            path.display()
        )));
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reads_back_every_frame_with_key_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let spec = ClipSpec::new(160, 96, 10, 25);
        encode_clip(&spec, &path, |i| {
            RgbImage::from_pixel(160, 96, image::Rgb([(i * 9) as u8, 100, 50]))
        })
        .unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["clip.mp4"], "no partial file is left");
        let units = read_access_units(&path).unwrap();
        assert_eq!(units.len(), 25);
        let keys: Vec<_> = units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.keyframe)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keys, vec![0, 10, 20]);
    }

    #[test]
    fn rejects_frames_of_the_wrong_size_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let spec = ClipSpec::new(160, 96, 10, 5);
        let err = encode_clip(&spec, &path, |_| RgbImage::new(10, 10)).unwrap_err();
        assert!(err.to_string().contains("expected 160x96"), "{err}");
        assert!(!path.exists());
    }
}
