//! ort sessions for detectors, checked against their descriptions.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use crate::description::{
    DescriptionError, DetectorDescription, InputDescription, ModelDescription,
};
use crate::detect::{decode_detections, nms, DecodeError, DetectorLayout, OutputShape};
use crate::preprocess::{input_len, preprocess_into, Letterbox, RgbFrame};
use crate::runtime::{Runtime, RuntimeError};

/// What went wrong with a model, naming its file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Description(#[from] DescriptionError),
    #[error("model {path}: cannot load it ({message}); is it a valid .onnx file?")]
    Load { path: PathBuf, message: String },
    #[error("model {path} does not match its description: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("model {path}: inference failed: {message}")]
    Run { path: PathBuf, message: String },
    #[error("model {path}: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: DecodeError,
    },
}

/// Session settings the user may tune.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// Threads inside one operator; 0 lets ONNX Runtime choose.
    pub intra_threads: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { intra_threads: 1 }
    }
}

/// One detected object in source pixels, with our class name.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDetection {
    /// `car`, `bus`, `truck`, `motorcycle` or `plate`.
    pub class: String,
    pub score: f32,
    /// `x1, y1, x2, y2` in the source picture.
    pub bbox: [f32; 4],
}

/// A detector with its description, a reused input buffer and the class
/// names it reports. `detect` takes `&mut self`: give each worker its own.
pub struct DetectorSession {
    session: Session,
    description: DetectorDescription,
    path: PathBuf,
    /// Our class name for each model class, `None` for classes we ignore.
    targets: Vec<Option<String>>,
    /// The model's fixed batch size, if its batch dimension is not dynamic.
    fixed_batch: Option<usize>,
    buffer: Vec<f32>,
}

pub(crate) fn tensor_dims(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
        _ => None,
    }
}

/// Builds a session from a model file, naming the file on failure.
pub(crate) fn load(
    runtime: &Runtime,
    model: &Path,
    options: &SessionOptions,
) -> Result<Session, ModelError> {
    let load = |message: String| ModelError::Load {
        path: model.to_path_buf(),
        message,
    };
    if !model.is_file() {
        return Err(load("no such file".into()));
    }
    Session::builder(runtime.environment())
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(options.intra_threads)
        .map_err(|e| load(e.to_string()))?
        .commit_from_file(model)
        .map_err(|e| load(e.to_string()))
}

/// Checks the model's single input against the description, now rather
/// than at the first frame; returns its dimensions (`-1` where dynamic).
pub(crate) fn check_input(
    session: &Session,
    model: &Path,
    d: &InputDescription,
) -> Result<Vec<i64>, ModelError> {
    let mismatch = |message: String| ModelError::Mismatch {
        path: model.to_path_buf(),
        message,
    };
    let [input] = session.inputs() else {
        return Err(mismatch(format!(
            "it has {} inputs; one is expected",
            session.inputs().len()
        )));
    };
    let dims =
        tensor_dims(input.dtype()).ok_or_else(|| mismatch("its input is not a tensor".into()))?;
    let expected: [i64; 3] = if d.nhwc {
        [d.height as i64, d.width as i64, d.channels.count() as i64]
    } else {
        [d.channels.count() as i64, d.height as i64, d.width as i64]
    };
    let fits = dims.len() == 4
        && dims[1..]
            .iter()
            .zip(expected)
            .all(|(&got, want)| got < 0 || got == want);
    if !fits {
        return Err(mismatch(format!(
            "input {:?} is {dims:?}, but the description says [batch, {}, {}, {}]",
            input.name(),
            expected[0],
            expected[1],
            expected[2]
        )));
    }
    Ok(dims)
}

impl DetectorSession {
    /// Opens `model` with the description beside it (`model.toml`), or
    /// the one at `description` when given.
    pub fn open(
        runtime: &Runtime,
        model: &Path,
        description: Option<&Path>,
        options: &SessionOptions,
    ) -> Result<DetectorSession, ModelError> {
        let desc_path =
            description.map_or_else(|| ModelDescription::sidecar(model), Path::to_path_buf);
        let description = match ModelDescription::from_file(&desc_path)? {
            ModelDescription::Detector(d) => d,
            ModelDescription::PlateReader(_) => {
                return Err(ModelError::Mismatch {
                    path: model.to_path_buf(),
                    message: format!(
                        "{} describes a plate reader, not a detector",
                        desc_path.display()
                    ),
                })
            }
        };
        let load = |message: String| ModelError::Load {
            path: model.to_path_buf(),
            message,
        };
        if !model.is_file() {
            return Err(load("no such file".into()));
        }
        let session = Session::builder(runtime.environment())
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(options.intra_threads)
            .map_err(|e| load(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| load(e.to_string()))?;
        let mismatch = |message: String| ModelError::Mismatch {
            path: model.to_path_buf(),
            message,
        };
        // Check the input against the description now, not at the first frame.
        let [input] = session.inputs() else {
            return Err(mismatch(format!(
                "it has {} inputs; a detector has one",
                session.inputs().len()
            )));
        };
        let dims = tensor_dims(input.dtype())
            .ok_or_else(|| mismatch("its input is not a tensor".into()))?;
        let d = &description.input;
        let expected: [i64; 3] = if d.nhwc {
            [d.height as i64, d.width as i64, d.channels.count() as i64]
        } else {
            [d.channels.count() as i64, d.height as i64, d.width as i64]
        };
        let fits = dims.len() == 4
            && dims[1..]
                .iter()
                .zip(expected)
                .all(|(&got, want)| got < 0 || got == want);
        if !fits {
            return Err(mismatch(format!(
                "input {:?} is {dims:?}, but the description says [batch, {}, {}, {}]",
                input.name(),
                expected[0],
                expected[1],
                expected[2]
            )));
        }
        if let Some(out) = session
            .outputs()
            .first()
            .and_then(|o| tensor_dims(o.dtype()))
        {
            let attrs = match description.layout {
                DetectorLayout::Yolov8 => out.get(1).copied(),
                _ => out.get(2).copied(),
            };
            let want = match description.layout {
                DetectorLayout::Yolov8 => 4 + description.classes.len() as i64,
                DetectorLayout::Yolov5 | DetectorLayout::Yolox => {
                    5 + description.classes.len() as i64
                }
                DetectorLayout::EndToEnd => 6,
            };
            if out.len() != 3 || attrs.is_some_and(|a| a >= 0 && a != want) {
                return Err(mismatch(format!(
                    "output is {out:?}, but a {:?} model with {} classes gives {want} values per candidate",
                    description.layout,
                    description.classes.len()
                )));
            }
        }
        let targets = description
            .classes
            .iter()
            .map(|name| {
                if description.class_map.is_empty() {
                    Some(name.clone())
                } else {
                    description.class_map.get(name).cloned()
                }
            })
            .collect();
        let buffer = Vec::with_capacity(input_len(&description.input));
        let fixed_batch = (dims[0] > 0).then_some(dims[0] as usize);
        Ok(DetectorSession {
            session,
            description,
            path: model.to_path_buf(),
            targets,
            fixed_batch,
            buffer,
        })
    }

    pub fn description(&self) -> &DetectorDescription {
        &self.description
    }

    /// The largest batch one run takes: the model's fixed batch size, if it
    /// has one.
    pub fn max_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    /// Detects objects in a batch of frames; one list per frame, best first.
    /// A model with a fixed batch size runs the frames in chunks of it.
    pub fn detect(
        &mut self,
        frames: &[RgbFrame<'_>],
    ) -> Result<Vec<Vec<ObjectDetection>>, ModelError> {
        let chunk = self.fixed_batch.unwrap_or(frames.len()).max(1);
        let mut result = Vec::with_capacity(frames.len());
        for batch in frames.chunks(chunk) {
            if batch.len() < chunk && self.fixed_batch.is_some() {
                // Pad the last chunk of a fixed-batch model with copies.
                let mut padded = batch.to_vec();
                padded.resize(chunk, batch[0]);
                let mut out = self.run_batch(&padded)?;
                out.truncate(batch.len());
                result.extend(out);
            } else {
                result.extend(self.run_batch(batch)?);
            }
        }
        Ok(result)
    }

    fn run_batch(
        &mut self,
        frames: &[RgbFrame<'_>],
    ) -> Result<Vec<Vec<ObjectDetection>>, ModelError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let d = &self.description;
        let per_image = input_len(&d.input);
        self.buffer.resize(per_image * frames.len(), 0.0);
        let boxes: Vec<Letterbox> = frames
            .iter()
            .zip(self.buffer.chunks_exact_mut(per_image))
            .map(|(f, out)| preprocess_into(f, None, &d.input, out))
            .collect();
        let c = d.input.channels.count();
        let (h, w) = (d.input.height as usize, d.input.width as usize);
        let shape = if d.input.nhwc {
            [frames.len(), h, w, c]
        } else {
            [frames.len(), c, h, w]
        };
        let run_err = |e: ort::Error| ModelError::Run {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let tensor = TensorRef::from_array_view((shape, &self.buffer[..])).map_err(run_err)?;
        let outputs = self
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| ModelError::Run {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        let (out_shape, data) =
            outputs[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| ModelError::Run {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
        let dims: Vec<usize> = out_shape.iter().map(|&v| v.max(0) as usize).collect();
        if dims.len() != 3 || dims[0] != frames.len() {
            return Err(ModelError::Mismatch {
                path: self.path.clone(),
                message: format!("output shape {dims:?} for a batch of {}", frames.len()),
            });
        }
        let per_out = dims[1] * dims[2];
        let mut result = Vec::with_capacity(frames.len());
        for (i, lb) in boxes.iter().enumerate() {
            let raw = decode_detections(
                d.layout,
                &data[i * per_out..(i + 1) * per_out],
                OutputShape {
                    dims: [dims[1], dims[2]],
                },
                d.classes.len(),
                (d.input.width, d.input.height),
                &d.strides,
                d.score_threshold,
            )
            .map_err(|source| ModelError::Decode {
                path: self.path.clone(),
                source,
            })?;
            let kept = raw
                .into_iter()
                .filter(|det| self.targets.get(det.class).is_some_and(Option::is_some))
                .collect();
            let dets = nms(kept, d.iou_threshold)
                .into_iter()
                .map(|det| ObjectDetection {
                    class: self.targets[det.class].clone().expect("filtered above"),
                    score: det.score,
                    bbox: lb.to_source(det.bbox),
                })
                .collect();
            result.push(dets);
        }
        Ok(result)
    }
}
