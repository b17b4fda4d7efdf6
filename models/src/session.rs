//! ort sessions for detectors, checked against their descriptions.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use rayon::prelude::*;

use crate::description::{
    DescriptionError, DetectorDescription, InputDescription, ModelDescription,
};
use crate::detect::{decode_detections, nms, DetectorLayout, OutputShape, OutputShapeError};
use crate::preprocess::{input_len, preprocess_into, Letterbox};
use crate::runtime::{Runtime, RuntimeError};
use safecity_core::{iou, Picture};

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
        source: OutputShapeError,
    },
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// ONNX Runtime's CPU kernels (the default; always available).
    #[default]
    Cpu,
    /// NVIDIA CUDA on the given device; needs the `cuda` cargo feature and
    /// the GPU build of ONNX Runtime.
    Cuda { device: i32 },
    /// NVIDIA TensorRT on the given device, engines cached beside the
    /// model; needs the `tensorrt` cargo feature and the GPU build of ONNX
    /// Runtime with TensorRT.
    TensorRt { device: i32 },
}

impl std::str::FromStr for Provider {
    type Err = String;

    /// `cpu`, `cuda`, `cuda:1`, `tensorrt`, `tensorrt:0`.
    fn from_str(s: &str) -> Result<Provider, String> {
        let (name, device) = match s.split_once(':') {
            Some((n, d)) => (
                n,
                d.parse::<i32>()
                    .map_err(|_| format!("provider {s:?}: device {d:?} is not a number"))?,
            ),
            None => (s, 0),
        };
        match name.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda { device }),
            "tensorrt" | "trt" => Ok(Provider::TensorRt { device }),
            _ => Err(format!(
                "unknown execution provider {s:?}; use cpu, cuda[:N] or tensorrt[:N]"
            )),
        }
    }
}

/// Session settings the user may tune.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// Threads inside one operator; 0 lets ONNX Runtime choose.
    pub intra_threads: usize,
    pub provider: Provider,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_threads: 1,
            provider: Provider::Cpu,
        }
    }
}

/// The ort execution providers for `provider`, or why it cannot be had.
#[allow(clippy::unnecessary_wraps)]
fn execution_providers(
    provider: Provider,
    model: &Path,
) -> Result<Vec<ort::ep::ExecutionProviderDispatch>, String> {
    match provider {
        Provider::Cpu => Ok(Vec::new()),
        #[cfg(feature = "cuda")]
        Provider::Cuda { device } => Ok(vec![ort::ep::CUDA::default()
            .with_device_id(device)
            .build()
            .error_on_failure()]),
        #[cfg(feature = "tensorrt")]
        Provider::TensorRt { device } => {
            let cache = model
                .parent()
                .unwrap_or(Path::new("."))
                .join("tensorrt-cache");
            Ok(vec![ort::ep::TensorRT::default()
                .with_device_id(device)
                .with_engine_cache(true)
                .with_engine_cache_path(cache.display())
                .build()
                .error_on_failure()])
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = model;
            let feature = match other {
                Provider::TensorRt { .. } => "tensorrt",
                _ => "cuda",
            };
            Err(format!(
                "this build has no {other:?} support; rebuild with `--features safecity-models/{feature}` \
                 and the GPU build of ONNX Runtime"
            ))
        }
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

pub(crate) fn tensor_dims(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
        _ => None,
    }
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

/// One model file with its input description: loads it, checks its input,
/// and runs batches through a reused buffer. Models with a fixed batch size
/// get their items in chunks of it, the last chunk padded with copies.
pub(crate) struct Runner {
    session: Session,
    input: InputDescription,
    path: PathBuf,
    fixed_batch: Option<usize>,
    buffer: Vec<f32>,
}

impl Runner {
    pub(crate) fn open(
        runtime: &Runtime,
        model: &Path,
        input: &InputDescription,
        options: &SessionOptions,
    ) -> Result<Runner, ModelError> {
        let load = |message: String| ModelError::Load {
            path: model.to_path_buf(),
            message,
        };
        if !model.is_file() {
            return Err(load("no such file".into()));
        }
        let providers = execution_providers(options.provider, model).map_err(load)?;
        let session = Session::builder(runtime.environment())
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(options.intra_threads)
            .map_err(|e| load(e.to_string()))?
            .with_execution_providers(providers)
            .map_err(|e| load(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| load(e.to_string()))?;
        let dims = check_input(&session, model, input)?;
        Ok(Runner {
            session,
            input: input.clone(),
            path: model.to_path_buf(),
            fixed_batch: (dims[0] > 0).then_some(dims[0] as usize),
            buffer: Vec::with_capacity(input_len(input)),
        })
    }

    /// Dimensions of the first output as the model declares them.
    pub(crate) fn output_dims(&self) -> Option<Vec<i64>> {
        self.session
            .outputs()
            .first()
            .and_then(|o| tensor_dims(o.dtype()))
    }

    pub(crate) fn mismatch(&self, message: String) -> ModelError {
        ModelError::Mismatch {
            path: self.path.clone(),
            message,
        }
    }

    /// Runs `n` items: `fill(i, slot)` writes item `i` into its slot of the
    /// input and returns what `read` needs to interpret the output;
    /// `read(&that, [rows, cols], output)` gets each item's output matrix.
    pub(crate) fn run<P, T>(
        &mut self,
        n: usize,
        fill: impl Fn(usize, &mut [f32]) -> P + Sync,
        mut read: impl FnMut(&P, [usize; 2], &[f32]) -> Result<T, ModelError>,
    ) -> Result<Vec<T>, ModelError>
    where
        P: Send,
    {
        let chunk = self.fixed_batch.unwrap_or(n).max(1);
        let per_item = input_len(&self.input);
        let mut results = Vec::with_capacity(n);
        for start in (0..n).step_by(chunk) {
            let real = chunk.min(n - start);
            let batch = if self.fixed_batch.is_some() {
                chunk
            } else {
                real
            };
            self.buffer.resize(per_item * batch, 0.0);
            // Items are prepared in parallel: resizing a 1080p frame costs
            // more than the detector's share of a batch on the same cores.
            let prepared: Vec<P> = self
                .buffer
                .par_chunks_exact_mut(per_item)
                .enumerate()
                .map(|(k, slot)| fill(start + if k < real { k } else { 0 }, slot))
                .collect();
            let c = self.input.channels.count();
            let (h, w) = (self.input.height as usize, self.input.width as usize);
            let shape = if self.input.nhwc {
                [batch, h, w, c]
            } else {
                [batch, c, h, w]
            };
            let path = &self.path;
            let run_err = |e: ort::Error| ModelError::Run {
                path: path.clone(),
                message: e.to_string(),
            };
            let tensor = TensorRef::from_array_view((shape, &self.buffer[..])).map_err(run_err)?;
            let outputs = self.session.run(ort::inputs![tensor]).map_err(run_err)?;
            let (out_shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
            let dims: Vec<usize> = out_shape.iter().map(|&v| v.max(0) as usize).collect();
            // [B, K] outputs (classifiers) read as one row of K.
            let matrix = match dims[..] {
                [b, k] if b == batch => [1, k],
                [b, r, k] if b == batch => [r, k],
                _ => {
                    return Err(ModelError::Mismatch {
                        path: path.clone(),
                        message: format!("output shape {dims:?} for a batch of {batch}"),
                    })
                }
            };
            let per_out = matrix[0] * matrix[1];
            for (k, p) in prepared.iter().take(real).enumerate() {
                results.push(read(p, matrix, &data[k * per_out..(k + 1) * per_out])?);
            }
        }
        Ok(results)
    }
}

/// In [`DetectorSession::detect_stills`], boxes from the shrunk picture
/// count only if at least this share of the picture high: smaller objects
/// are better seen at full size, and the shrunk picture's guesses at them
/// are mostly wrong.
const BIG_IN_A_STILL: f32 = 0.15;

/// The class [`DetectorSession::detect_stills`] takes from the shrunk
/// picture. Plates bigger than those in training are what a full-size pass
/// misses in close-up photos; the shrunk picture's vehicle boxes lowered
/// the vehicle mAP50 of `make eval` (0.918 to 0.912 on its simulator
/// hold-out), as big vehicles are found at full size already.
const STILL_ZOOM_CLASS: &str = "plate";

/// A detector with its description and the class names it reports.
/// `detect` takes `&mut self`: give each worker its own.
pub struct DetectorSession {
    runner: Runner,
    description: DetectorDescription,
    /// Our class name for each model class, `None` for classes we ignore.
    targets: Vec<Option<String>>,
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
            other => {
                return Err(ModelError::Mismatch {
                    path: model.to_path_buf(),
                    message: format!(
                        "{} describes a {}, not a detector",
                        desc_path.display(),
                        other.kind()
                    ),
                })
            }
        };
        let runner = Runner::open(runtime, model, &description.input, options)?;
        if let Some(out) = runner.output_dims() {
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
                return Err(runner.mismatch(format!(
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
        Ok(DetectorSession {
            runner,
            description,
            targets,
        })
    }

    pub fn description(&self) -> &DetectorDescription {
        &self.description
    }

    /// Overrides the description's score threshold, e.g. to trace a whole
    /// precision-recall curve in an evaluation.
    pub fn set_score_threshold(&mut self, threshold: f32) {
        self.description.score_threshold = threshold;
    }

    /// The largest batch one run takes: the model's fixed batch size, if it
    /// has one.
    pub fn max_batch(&self) -> Option<usize> {
        self.runner.fixed_batch
    }

    /// Detects objects in a batch of frames; one list per frame, best first.
    pub fn detect(
        &mut self,
        frames: &[Picture<'_>],
    ) -> Result<Vec<Vec<ObjectDetection>>, ModelError> {
        self.detect_fitted(frames.len(), |i| (frames[i], None))
    }

    /// Detects objects in still pictures at two scales: as
    /// [`detect`](Self::detect) does, and with each picture shrunk by
    /// `zoom_out` within the input (centred, padded around), so that
    /// plates bigger than the model saw in training, filling a close-up
    /// photo, are found too. A plate box from the shrunk picture is added
    /// only if it is at least 0.15 of the picture high and the full-size
    /// pass has no box (of any class) overlapping it: at full size boxes
    /// are surer.
    /// Twice the work of `detect`: for photos, not for every frame of a
    /// stream.
    pub fn detect_stills(
        &mut self,
        frames: &[Picture<'_>],
        zoom_out: f32,
    ) -> Result<Vec<Vec<ObjectDetection>>, ModelError> {
        let n = frames.len();
        let around = |f: &Picture<'_>| {
            let (w, h) = (f.width as f32, f.height as f32);
            let grow = zoom_out.max(1.0) - 1.0;
            [-grow * w / 2.0, -grow * h / 2.0, w + grow * w, h + grow * h]
        };
        let mut all = self.detect_fitted(2 * n, |i| {
            if i < n {
                (frames[i], None)
            } else {
                (frames[i - n], Some(around(&frames[i - n])))
            }
        })?;
        let shrunk = all.split_off(n);
        let iou_threshold = self.description.iou_threshold;
        Ok(all
            .into_iter()
            .zip(shrunk)
            .zip(frames)
            .map(|((mut dets, more), frame)| {
                let big = BIG_IN_A_STILL * frame.height as f32;
                let added: Vec<ObjectDetection> = more
                    .into_iter()
                    .filter(|m| m.class == STILL_ZOOM_CLASS && m.bbox[3] - m.bbox[1] >= big)
                    .filter(|m| !dets.iter().any(|d| iou(d.bbox, m.bbox) > iou_threshold))
                    .collect();
                dets.extend(added);
                dets.sort_by(|a, b| b.score.total_cmp(&a.score));
                dets
            })
            .collect())
    }

    /// Detects in `count` pictures, the `i`-th being `fit(i)`: a frame and
    /// the region of it to fit (the whole frame when `None`).
    fn detect_fitted<'a>(
        &mut self,
        count: usize,
        fit: impl Fn(usize) -> (Picture<'a>, Option<[f32; 4]>) + Sync,
    ) -> Result<Vec<Vec<ObjectDetection>>, ModelError> {
        let d = &self.description;
        let targets = &self.targets;
        let path = self.runner.path.clone();
        self.runner.run(
            count,
            |i, slot| {
                let (frame, region) = fit(i);
                preprocess_into(&frame, region, &d.input, slot)
            },
            |letterbox: &Letterbox, dims, data| {
                let raw = decode_detections(
                    d.layout,
                    data,
                    OutputShape { dims },
                    d.classes.len(),
                    (d.input.width, d.input.height),
                    &d.strides,
                    d.score_threshold,
                )
                .map_err(|source| ModelError::Decode {
                    path: path.clone(),
                    source,
                })?;
                let kept = raw
                    .into_iter()
                    .filter(|det| targets.get(det.class).is_some_and(Option::is_some))
                    .collect();
                Ok(nms(kept, d.iou_threshold)
                    .into_iter()
                    .map(|det| ObjectDetection {
                        class: targets[det.class].clone().expect("filtered above"),
                        score: det.score,
                        bbox: letterbox.to_source(det.bbox),
                    })
                    .collect())
            },
        )
    }
}
