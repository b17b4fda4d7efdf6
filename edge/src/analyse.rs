//! The models on a batch of frames: vehicles and plates from the detector,
//! every plate crop of the batch read in one reader call, every vehicle
//! crop's colour in one classifier call. Still pictures go through the
//! detector at two scales, video frames at one.

use std::path::PathBuf;

use anyhow::Context;
use safecity_models::{
    find_model, ClassifierSession, DetectorSession, ObjectDetection, Picture, PlateCandidate,
    PlateCrop, PlateReaderSession, Runtime, SessionOptions, COLOUR_FILE, DETECTOR_FILE,
    PLATE_READER_FILE,
};

/// Still pictures are searched a second time shrunk by this factor: the
/// shipped detector was trained on camera framings and misses a plate that
/// fills a quarter or more of a close-up photo's width; at half size it
/// finds it.
pub const STILL_ZOOM_OUT: f32 = 2.0;

/// Which model files to use; `None` takes the shipped ones.
#[derive(Debug, Clone, Default)]
pub struct ModelPaths {
    pub detector: Option<PathBuf>,
    pub plate_reader: Option<PathBuf>,
    /// The colour model is optional: without it vehicles carry no colour.
    pub colour: Option<PathBuf>,
}

/// A detected vehicle with its colour, when a colour model is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleDetection {
    pub det: ObjectDetection,
    pub colour: Option<(String, f32)>,
}

/// A detected plate with its ranked reads (empty when nothing was read).
#[derive(Debug, Clone, PartialEq)]
pub struct PlateDetection {
    pub det: ObjectDetection,
    pub candidates: Vec<PlateCandidate>,
}

/// What the models found in one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameAnalysis {
    pub vehicles: Vec<VehicleDetection>,
    pub plates: Vec<PlateDetection>,
}

/// One worker's sessions. `analyse` takes `&mut self`: each worker owns one.
pub struct Analyser {
    detector: DetectorSession,
    reader: PlateReaderSession,
    colour: Option<ClassifierSession>,
    top_k: usize,
}

impl Analyser {
    /// Opens the models; a missing colour model is skipped with a note, a
    /// missing detector or reader is an error naming the file.
    pub fn open(paths: &ModelPaths, options: &SessionOptions) -> anyhow::Result<Analyser> {
        let runtime = Runtime::get(None)?;
        let detector = match &paths.detector {
            Some(p) => p.clone(),
            None => find_model(DETECTOR_FILE)?,
        };
        let reader = match &paths.plate_reader {
            Some(p) => p.clone(),
            None => find_model(PLATE_READER_FILE)?,
        };
        let colour = match &paths.colour {
            Some(p) => Some(p.clone()),
            None => find_model(COLOUR_FILE).ok(),
        };
        let colour = match colour {
            Some(p) => Some(
                ClassifierSession::open(runtime, &p, None, options)
                    .with_context(|| format!("colour model {}", p.display()))?,
            ),
            None => {
                tracing::info!("no colour model ({COLOUR_FILE}); vehicles carry no colour");
                None
            }
        };
        Ok(Analyser {
            detector: DetectorSession::open(runtime, &detector, None, options)?,
            reader: PlateReaderSession::open(runtime, &reader, None, options)?,
            colour,
            top_k: 5,
        })
    }

    /// The detector's own score threshold can be lowered or raised.
    pub fn detector_mut(&mut self) -> &mut DetectorSession {
        &mut self.detector
    }

    /// The plate reader, to choose how many views of a plate it reads.
    pub fn reader_mut(&mut self) -> &mut PlateReaderSession {
        &mut self.reader
    }

    /// Runs the models on a batch of frames.
    pub fn analyse(&mut self, frames: &[Picture<'_>]) -> anyhow::Result<Vec<FrameAnalysis>> {
        let detections = self.detector.detect(frames)?;
        self.read(frames, detections)
    }

    /// Runs the models on still pictures, with the detector at two scales
    /// ([`STILL_ZOOM_OUT`]): a photo may be a close-up.
    pub fn analyse_stills(&mut self, frames: &[Picture<'_>]) -> anyhow::Result<Vec<FrameAnalysis>> {
        let detections = self.detector.detect_stills(frames, STILL_ZOOM_OUT)?;
        self.read(frames, detections)
    }

    /// Reads the plates and names the colours of the vehicles detected.
    fn read(
        &mut self,
        frames: &[Picture<'_>],
        detections: Vec<Vec<ObjectDetection>>,
    ) -> anyhow::Result<Vec<FrameAnalysis>> {
        let mut plate_crops = Vec::new();
        let mut vehicle_crops = Vec::new();
        let mut out: Vec<FrameAnalysis> = Vec::with_capacity(frames.len());
        for (frame, dets) in frames.iter().zip(detections) {
            let mut fa = FrameAnalysis::default();
            for det in dets {
                let crop = PlateCrop {
                    frame: *frame,
                    bbox: det.bbox,
                };
                if det.class == "plate" {
                    plate_crops.push(crop);
                    fa.plates.push(PlateDetection {
                        det,
                        candidates: Vec::new(),
                    });
                } else {
                    vehicle_crops.push(crop);
                    fa.vehicles.push(VehicleDetection { det, colour: None });
                }
            }
            out.push(fa);
        }
        let mut reads = self.reader.read(&plate_crops, self.top_k)?.into_iter();
        let mut colours = match &mut self.colour {
            Some(c) if !vehicle_crops.is_empty() => c.classify(&vehicle_crops)?,
            _ => Vec::new(),
        }
        .into_iter();
        for fa in &mut out {
            for p in &mut fa.plates {
                p.candidates = reads.next().unwrap_or_default();
            }
            for v in &mut fa.vehicles {
                v.colour = colours.next();
            }
        }
        Ok(out)
    }
}
