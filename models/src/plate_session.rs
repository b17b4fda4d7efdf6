//! The plate reader's ort session: crops of plate boxes in, ranked plate
//! texts out.

use std::path::Path;

use crate::description::{
    InputDescription, ModelDescription, PlateDecoder, PlateReaderDescription,
};
use crate::plate_decode::{
    ctc_beam, fixed_slots_k_best, mean_candidates, mean_probabilities, probabilities,
    rank_candidates, PlateCandidate,
};
use crate::preprocess::preprocess_into;
use crate::runtime::Runtime;
use crate::session::{ModelError, Runner, SessionOptions};
use safecity_core::Picture;

/// How many raw texts are ranked per plate before the grammar prior.
const RAW_CANDIDATES: usize = 8;

/// A plate reader with its description.
pub struct PlateReaderSession {
    runner: Runner,
    description: PlateReaderDescription,
    alphabet: Vec<char>,
    /// How many of the description's margins are read (see [`Self::set_views`]).
    views: usize,
}

/// A plate box in a frame to read.
#[derive(Debug, Clone, Copy)]
pub struct PlateCrop<'a> {
    pub frame: Picture<'a>,
    /// `x1, y1, x2, y2` of the plate in the frame.
    pub bbox: [f32; 4],
}

impl PlateCrop<'_> {
    /// The box widened by `margin` (fractions of its width and height on
    /// each side), clamped to the frame, into `slot` as `input` wants it.
    pub(crate) fn preprocess_into(
        &self,
        margin: [f32; 2],
        input: &InputDescription,
        slot: &mut [f32],
    ) {
        let [mx, my] = margin;
        let [x1, y1, x2, y2] = self.bbox;
        let (w, h) = (x2 - x1, y2 - y1);
        let (fw, fh) = (self.frame.width as f32, self.frame.height as f32);
        let rx1 = (x1 - w * mx).clamp(0.0, fw - 1.0);
        let ry1 = (y1 - h * my).clamp(0.0, fh - 1.0);
        let rx2 = (x2 + w * mx).clamp(rx1 + 1.0, fw);
        let ry2 = (y2 + h * my).clamp(ry1 + 1.0, fh);
        preprocess_into(
            &self.frame,
            Some([rx1, ry1, rx2 - rx1, ry2 - ry1]),
            input,
            slot,
        );
    }
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
            other => {
                return Err(ModelError::Mismatch {
                    path: model.to_path_buf(),
                    message: format!(
                        "{} describes a {}, not a plate reader",
                        desc_path.display(),
                        other.kind()
                    ),
                })
            }
        };
        let runner = Runner::open(runtime, model, &description.input, options)?;
        let alphabet: Vec<char> = description.alphabet.chars().collect();
        let classes = match description.decoder {
            PlateDecoder::Ctc => alphabet.len() + 1,
            PlateDecoder::FixedSlots => alphabet.len(),
        };
        if let Some(out) = runner.output_dims() {
            if out.len() != 3 || (out[2] >= 0 && out[2] as usize != classes) {
                return Err(runner.mismatch(format!(
                    "output is {out:?}, but a {:?} reader over {:?} gives [batch, steps, {classes}]",
                    description.decoder, description.alphabet
                )));
            }
        }
        let views = description.margins().len();
        Ok(PlateReaderSession {
            runner,
            description,
            alphabet,
            views,
        })
    }

    pub fn description(&self) -> &PlateReaderDescription {
        &self.description
    }

    /// Reads each plate at only the first `views` margins of the
    /// description (at least one; more than it has reads them all). Each
    /// view costs one network input per plate: a caller that already votes
    /// across frames can trade views for speed.
    pub fn set_views(&mut self, views: usize) {
        self.views = views.clamp(1, self.description.margins().len());
    }

    /// How many margins each plate is read at.
    pub fn views(&self) -> usize {
        self.views
    }

    /// Reads a batch of plates: for each, up to `top_k` candidates, best
    /// first, after the Kazakhstan grammar prior. A plate nothing could be
    /// read from gets an empty list. Each plate is read at every margin of
    /// the description (`crop_margin`, then `crop_views`, up to
    /// [`Self::views`]), in one batch, and its views are averaged before
    /// ranking.
    pub fn read(
        &mut self,
        crops: &[PlateCrop<'_>],
        top_k: usize,
    ) -> Result<Vec<Vec<PlateCandidate>>, ModelError> {
        let d = &self.description;
        let alphabet = &self.alphabet;
        let mut margins = d.margins();
        margins.truncate(self.views);
        let n = margins.len();
        let views = self.runner.run(
            crops.len() * n,
            |i, slot| crops[i / n].preprocess_into(margins[i % n], &d.input, slot),
            |_, [_, classes], data| Ok((classes, probabilities(data, classes, d.logits))),
        )?;
        Ok(views
            .chunks(n)
            .map(|plate| {
                let classes = plate[0].0;
                let probs: Vec<&[f32]> = plate.iter().map(|(_, p)| &p[..]).collect();
                let raw = match d.decoder {
                    PlateDecoder::Ctc => mean_candidates(probs.iter().map(|p| {
                        ctc_beam(p, classes, alphabet, d.blank, false, 16, RAW_CANDIDATES)
                    })),
                    PlateDecoder::FixedSlots => {
                        let pad = alphabet
                            .iter()
                            .position(|&ch| ch == d.pad)
                            .expect("validated");
                        let mean = mean_probabilities(&probs);
                        fixed_slots_k_best(&mean, classes, alphabet, pad, false, RAW_CANDIDATES)
                    }
                };
                rank_candidates(&raw, top_k)
            })
            .collect())
    }
}
