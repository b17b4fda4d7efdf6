//! Decoding video files to frames through GStreamer, in the decoder's I420:
//! the same [`Frame`] a live [`Source`](crate::Source) hands on, with the
//! file's clock ([`CaptureClock::File`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use crate::source::{CaptureClock, Frame};

/// Why a video could not be decoded, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot initialise GStreamer: {0}; run `make setup`")]
    Init(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Frames of a video file, decoded in order, optionally sampled down to a
/// rate. The sampling happens on decoded buffers, before any scaling, and
/// frames stay in I420 (`videoconvert` passes the decoder's output through).
/// Each [`Frame`] has the file's path as its source, its index among the
/// frames returned as `seq`, and as its capture time the file's start
/// ([`VideoFrames::starting_at`], 1970 unless set) plus its position.
pub struct VideoFrames {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    path: PathBuf,
    source: Arc<str>,
    start_unix_ms: u64,
    next_index: u64,
    done: bool,
}

impl VideoFrames {
    /// Opens `path`; `sample_fps` keeps at most that many frames a second.
    /// `max_width` scales larger videos down (aspect kept) before conversion.
    pub fn open(
        path: &Path,
        sample_fps: Option<f64>,
        max_width: Option<u32>,
    ) -> Result<VideoFrames, DecodeError> {
        gst::init().map_err(|e| DecodeError::Init(e.to_string()))?;
        let file_err = |message: String| DecodeError::File {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(file_err("no such file".into()));
        }
        let rate = match sample_fps {
            Some(fps) if fps > 0.0 => {
                let (n, d) = ((fps * 1000.0).round() as i32, 1000);
                format!("! videorate drop-only=true ! video/x-raw,framerate={n}/{d} ")
            }
            _ => String::new(),
        };
        // Scale before converting: converting full-size frames only to
        // shrink them afterwards is wasted work.
        let scale = match max_width {
            Some(w) => format!("! videoscale ! capsfilter name=size caps=video/x-raw,width=[1,{w}],pixel-aspect-ratio=1/1 "),
            None => String::new(),
        };
        let launch = format!(
            "filesrc name=src ! decodebin ! queue max-size-buffers=8 {rate}{scale}\
             ! videoconvert ! video/x-raw,format={format} ! appsink name=sink sync=false max-buffers=4",
            format = crate::pixels::FORMAT,
        );
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| file_err(format!("building the decoder: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| file_err("decoder is not a pipeline".into()))?;
        pipeline
            .by_name("src")
            .expect("filesrc in launch line")
            .set_property("location", path.to_string_lossy().as_ref());
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .expect("appsink in launch line");
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| file_err(format!("cannot start decoding: {e}")))?;
        Ok(VideoFrames {
            pipeline,
            sink,
            path: path.to_path_buf(),
            source: Arc::from(path.display().to_string()),
            start_unix_ms: 0,
            next_index: 0,
            done: false,
        })
    }

    /// Frames' capture times count from `unix_ms` (the wall-clock time of
    /// the file's first frame) instead of 1970.
    pub fn starting_at(mut self, unix_ms: u64) -> VideoFrames {
        self.start_unix_ms = unix_ms;
        self
    }

    /// The first error on the pipeline's bus, if any.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Some(err.error().to_string());
            }
        }
        None
    }
}

impl Iterator for VideoFrames {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Poll, so that an error (after which no end-of-stream comes) is seen.
        let sample = loop {
            if let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            {
                break sample;
            }
            if let Some(message) = self.bus_error() {
                self.done = true;
                return Some(Err(DecodeError::File {
                    path: self.path.clone(),
                    message: format!("{message}; is it a video file GStreamer can decode?"),
                }));
            }
            if self.sink.is_eos() {
                self.done = true;
                return None;
            }
        };
        let info = sample
            .caps()
            .and_then(|c| gst_video::VideoInfo::from_caps(c).ok());
        let (Some(buffer), Some(info)) = (sample.buffer(), info) else {
            return self.next();
        };
        let Some((data, layout)) =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                .ok()
                .and_then(|video| crate::pixels::copy_out(&video))
        else {
            return self.next();
        };
        let (width, height) = (info.width(), info.height());
        let pts_ms = buffer.pts().map_or(0, |t| t.mseconds());
        let frame = Frame {
            source: self.source.clone(),
            seq: self.next_index,
            pts_ms,
            capture_unix_ms: self.start_unix_ms + pts_ms,
            clock: CaptureClock::File,
            width,
            height,
            data,
            layout,
        };
        self.next_index += 1;
        Some(Ok(frame))
    }
}

impl Drop for VideoFrames {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safecity_sim::{encode_clip, ClipSpec};

    fn clip(dir: &Path, frames: u64) -> PathBuf {
        let path = dir.join("clip.mp4");
        encode_clip(&ClipSpec::new(320, 180, 25, frames), &path, |i| {
            image::RgbImage::from_pixel(320, 180, image::Rgb([(i * 5) as u8, 60, 200]))
        })
        .unwrap();
        path
    }

    #[test]
    fn decodes_every_frame_in_order_with_times() {
        let dir = tempfile::tempdir().unwrap();
        let frames: Vec<_> = VideoFrames::open(&clip(dir.path(), 50), None, None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 50);
        assert_eq!((frames[0].width, frames[0].height), (320, 180));
        assert_eq!(frames[0].data.len(), 320 * 180 * 3 / 2, "I420");
        assert_eq!(frames[10].pts_ms, 400);
        // The red channel ramps up frame by frame.
        let red = |f: &Frame| f.picture().pixel(160, 90)[0];
        assert!(red(&frames[40]) > red(&frames[10]) + 100);
    }

    #[test]
    fn samples_down_to_a_rate_and_scales_down() {
        let dir = tempfile::tempdir().unwrap();
        let frames: Vec<_> = VideoFrames::open(&clip(dir.path(), 50), Some(5.0), Some(160))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            (9..=11).contains(&frames.len()),
            "{} frames at 5 fps from 2 s",
            frames.len()
        );
        assert_eq!((frames[0].width, frames[0].height), (160, 90));
        assert!(frames.windows(2).all(|w| w[1].pts_ms >= w[0].pts_ms + 190));
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.mp4");
        std::fs::write(&path, vec![0x42u8; 50_000]).unwrap();
        let result: Result<Vec<_>, _> = VideoFrames::open(&path, None, None).unwrap().collect();
        let err = result.unwrap_err().to_string();
        assert!(err.contains("broken.mp4"), "{err}");
        let missing = VideoFrames::open(&dir.path().join("none.mp4"), None, None)
            .err()
            .unwrap();
        assert!(missing.to_string().contains("none.mp4"), "{missing}");
    }
}
