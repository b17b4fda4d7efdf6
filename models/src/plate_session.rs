//! The plate reader's ort session: crops of plate boxes in, ranked plate
//! texts out.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::TensorRef;

use crate::description::{ModelDescription, PlateDecoder, PlateReaderDescription};
use crate::plate_decode::{ctc_beam, rank_candidates, PlateCandidate};
use crate::preprocess::{input_len, preprocess_into, RgbFrame};
use crate::runtime::Runtime;
use crate::session::{check_input, tensor_dims, ModelError, SessionOptions};

/// How many raw texts are ranked per plate before the grammar prior.
const RAW_CANDIDATES: usize = 8;

/// A plate reader with its description and a reused input buffer.
pub struct PlateReaderSession {
    session: Session,
    description: PlateReaderDescription,
    alphabet: Vec<char>,
    path: PathBuf,
    fixed_batch: Option<usize>,
    buffer: Vec<f32>,
}

/// A plate box in a frame to read.
#[derive(Debug, Clone, Copy)]
pub struct PlateCrop<'a> {
    pub frame: RgbFrame<'a>,
    /// `x1, y1, x2, y2` of the plate in the frame.
    pub bbox: [f32; 4],
}

impl PlateReaderSession {
    /// Opens `model` with the description beside it, or at `description`.
    pub fn open(
        runtime: &Runtime,
        model: &Path,
        description: Option<&Path>,
        options: &SessionOptions,
    ) -> Result<PlateReaderSession, ModelError> {
        let desc_path =
            description.map_or_else(|| ModelDescription::sidecar(model), Path::to_path_buf);
        let description = match ModelDescription::from_file(&desc_path)? {
            ModelDescription::PlateReader(d) => d,
            ModelDescription::Detector(_) => {
                return Err(ModelError::Mismatch {
                    path: model.to_path_buf(),
                    message: format!(
                        "{} describes a detector, not a plate reader",
                        desc_path.display()
                    ),
                })
            }
        };
        let session = crate::session::load(runtime, model, options)?;
        let dims = check_input(&session, model, &description.input)?;
        let mismatch = |message: String| ModelError::Mismatch {
            path: model.to_path_buf(),
            message,
        };
        let alphabet: Vec<char> = description.alphabet.chars().collect();
        let classes = match description.decoder {
            PlateDecoder::Ctc => alphabet.len() + 1,
            PlateDecoder::FixedSlots => alphabet.len(),
        };
        if let Some(out) = session
            .outputs()
            .first()
            .and_then(|o| tensor_dims(o.dtype()))
        {
            if out.len() != 3 || (out[2] >= 0 && out[2] as usize != classes) {
                return Err(mismatch(format!(
                    "output is {out:?}, but a {:?} reader over {:?} gives [batch, steps, {classes}]",
                    description.decoder, description.alphabet
                )));
            }
        }
        Ok(PlateReaderSession {
            buffer: Vec::with_capacity(input_len(&description.input)),
            fixed_batch: (dims[0] > 0).then_some(dims[0] as usize),
            session,
            description,
            alphabet,
            path: model.to_path_buf(),
        })
    }

    pub fn description(&self) -> &PlateReaderDescription {
        &self.description
    }

    /// Reads a batch of plates: for each, up to `top_k` candidates, best
    /// first, after the Kazakhstan grammar prior. A plate nothing could be
    /// read from gets an empty list.
    pub fn read(
        &mut self,
        crops: &[PlateCrop<'_>],
        top_k: usize,
    ) -> Result<Vec<Vec<PlateCandidate>>, ModelError> {
        let chunk = self.fixed_batch.unwrap_or(crops.len()).max(1);
        let mut out = Vec::with_capacity(crops.len());
        for batch in crops.chunks(chunk) {
            let mut padded = batch.to_vec();
            if self.fixed_batch.is_some() {
                padded.resize(chunk, batch[0]);
            }
            let mut read = self.run_batch(&padded, top_k)?;
            read.truncate(batch.len());
            out.extend(read);
        }
        Ok(out)
    }

    fn run_batch(
        &mut self,
        crops: &[PlateCrop<'_>],
        top_k: usize,
    ) -> Result<Vec<Vec<PlateCandidate>>, ModelError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let d = &self.description;
        let per = input_len(&d.input);
        self.buffer.resize(per * crops.len(), 0.0);
        let [mx, my] = d.crop_margin;
        for (crop, out) in crops.iter().zip(self.buffer.chunks_exact_mut(per)) {
            let [x1, y1, x2, y2] = crop.bbox;
            let (w, h) = (x2 - x1, y2 - y1);
            let (fw, fh) = (crop.frame.width as f32, crop.frame.height as f32);
            let rx1 = (x1 - w * mx).clamp(0.0, fw - 1.0);
            let ry1 = (y1 - h * my).clamp(0.0, fh - 1.0);
            let rx2 = (x2 + w * mx).clamp(rx1 + 1.0, fw);
            let ry2 = (y2 + h * my).clamp(ry1 + 1.0, fh);
            preprocess_into(
                &crop.frame,
                Some([rx1, ry1, rx2 - rx1, ry2 - ry1]),
                &d.input,
                out,
            );
        }
        let c = d.input.channels.count();
        let (h, w) = (d.input.height as usize, d.input.width as usize);
        let shape = if d.input.nhwc {
            [crops.len(), h, w, c]
        } else {
            [crops.len(), c, h, w]
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
        let per_out = dims[1] * dims[2];
        let classes = dims[2];
        let mut result = Vec::with_capacity(crops.len());
        for i in 0..crops.len() {
            let slice = &data[i * per_out..(i + 1) * per_out];
            let raw = match d.decoder {
                PlateDecoder::Ctc => ctc_beam(
                    slice,
                    classes,
                    &self.alphabet,
                    d.blank,
                    d.logits,
                    16,
                    RAW_CANDIDATES,
                ),
                PlateDecoder::FixedSlots => {
                    let pad = self
                        .alphabet
                        .iter()
                        .position(|&ch| ch == d.pad)
                        .expect("validated");
                    crate::plate_decode::fixed_slots_k_best(
                        slice,
                        classes,
                        &self.alphabet,
                        pad,
                        d.logits,
                        RAW_CANDIDATES,
                    )
                }
            };
            result.push(rank_candidates(&raw, top_k));
        }
        Ok(result)
    }
}
