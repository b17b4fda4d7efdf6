//! The plate reader's ort session: crops of plate boxes in, ranked plate
//! texts out. A reader whose description has a `[cascade]` opens the
//! second reader it names and hands it every plate it did not read as a
//! Kazakhstan plate with enough confidence: the fast model reads the easy
//! plates, the strong one the rest (the fast one's Kazakhstan read stands
//! where it is the more confident of the two).

use std::path::Path;

use crate::description::{
    InputDescription, ModelDescription, PlateDecoder, PlateReaderDescription,
};
use crate::plate_decode::{
    ctc_beam, fixed_slots_k_best, mean_candidates, mean_probabilities, rank_candidates,
    tempered_probabilities, PlateCandidate,
};
use crate::preprocess::preprocess_into;
use crate::runtime::Runtime;
use crate::session::{ModelError, Runner, SessionOptions};
use safecity_core::Picture;

/// How many raw texts are ranked per plate before the grammar prior.
const RAW_CANDIDATES: usize = 8;

/// How many readers a cascade may chain (a description that names itself
/// would otherwise open forever).
const MAX_CASCADE: usize = 3;

/// A plate reader with its description.
pub struct PlateReaderSession {
    runner: Runner,
    description: PlateReaderDescription,
    alphabet: Vec<char>,
    /// How many of the description's margins are read (see [`Self::set_views`]).
    views: usize,
    /// The reader the description's `[cascade]` names.
    next: Option<Box<PlateReaderSession>>,
    stats: CascadeStats,
}

/// How many plates a reader has read, and how many of them its cascade
/// handed on to the next reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CascadeStats {
    pub plates: u64,
    pub handed_on: u64,
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
        Self::open_stage(runtime, model, description, options, 0)
    }

    fn open_stage(
        runtime: &Runtime,
        model: &Path,
        description: Option<&Path>,
        options: &SessionOptions,
        depth: usize,
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
        let next = match &description.cascade {
            None => None,
            Some(_) if depth + 1 >= MAX_CASCADE => {
                return Err(runner.mismatch(format!(
                    "{} chains more than {MAX_CASCADE} readers in its cascade; \
                     the last reader's description must not name a [cascade]",
                    desc_path.display()
                )))
            }
            Some(c) => {
                let path = desc_path.parent().unwrap_or(Path::new(".")).join(&c.model);
                let next = Self::open_stage(runtime, &path, None, options, depth + 1)?;
                Some(Box::new(next))
            }
        };
        Ok(PlateReaderSession {
            runner,
            description,
            alphabet,
            views,
            next,
            stats: CascadeStats::default(),
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

    /// Plates read so far and how many went on to the next reader.
    pub fn stats(&self) -> CascadeStats {
        self.stats
    }

    /// The cascade's second reader, if the description names one.
    pub fn next_stage(&self) -> Option<&PlateReaderSession> {
        self.next.as_deref()
    }

    /// Reads a batch of plates: for each, up to `top_k` candidates, best
    /// first, after the Kazakhstan grammar prior. A plate nothing could be
    /// read from gets an empty list. Each plate is read at every margin of
    /// the description (`crop_margin`, then `crop_views`, up to
    /// [`Self::views`]), in one batch, and its views are averaged before
    /// ranking. With a cascade, every plate at least `min_height` high
    /// whose best read is not a Kazakhstan plate at `below` confidence or
    /// more is read again by the next reader, whose reading stands unless the first read a
    /// Kazakhstan plate more confidently.
    pub fn read(
        &mut self,
        crops: &[PlateCrop<'_>],
        top_k: usize,
    ) -> Result<Vec<Vec<PlateCandidate>>, ModelError> {
        let mut reads = self.read_own(crops, top_k)?;
        self.stats.plates += crops.len() as u64;
        if let (Some(next), Some(c)) = (&mut self.next, &self.description.cascade) {
            let unsure: Vec<usize> = reads
                .iter()
                .enumerate()
                .filter(|&(i, r)| {
                    let [_, y1, _, y2] = crops[i].bbox;
                    y2 - y1 >= c.min_height
                        && !r
                            .first()
                            .is_some_and(|b| b.confidence >= c.below && b.format.is_kazakh())
                })
                .map(|(i, _)| i)
                .collect();
            self.stats.handed_on += unsure.len() as u64;
            if !unsure.is_empty() {
                let again: Vec<PlateCrop<'_>> = unsure.iter().map(|&i| crops[i]).collect();
                for (i, read) in unsure.into_iter().zip(next.read(&again, top_k)?) {
                    reads[i] = settle(std::mem::take(&mut reads[i]), read);
                }
            }
        }
        Ok(reads)
    }

    /// This reader's own reading, without the cascade.
    fn read_own(
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
            |_, [_, classes], data| {
                Ok((
                    classes,
                    tempered_probabilities(data, classes, d.logits, d.temperature),
                ))
            },
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

/// The reading of a plate the first reader handed on: the second reader's,
/// unless the first read a Kazakhstan plate (what it was trained for) more
/// confidently than the second read anything.
fn settle(first: Vec<PlateCandidate>, second: Vec<PlateCandidate>) -> Vec<PlateCandidate> {
    let kazakh = |r: &[PlateCandidate]| {
        r.first()
            .filter(|c| c.format.is_kazakh())
            .map(|c| c.confidence)
    };
    let best = second.first().map_or(0.0, |c| c.confidence);
    if kazakh(&first).is_some_and(|c| c > best) {
        first
    } else {
        second
    }
}
