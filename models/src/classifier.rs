//! Image classifiers on object crops: the vehicle colour model.

use std::path::Path;

use crate::description::{ClassifierDescription, ModelDescription};
use crate::plate_session::PlateCrop;
use crate::runtime::Runtime;
use crate::session::{ModelError, Runner, SessionOptions};

/// A classifier with its description. `classify` takes `&mut self`: give
/// each worker its own.
pub struct ClassifierSession {
    runner: Runner,
    description: ClassifierDescription,
}

impl ClassifierSession {
    /// Opens `model` with the description beside it, or at `description`.
    pub fn open(
        runtime: &Runtime,
        model: &Path,
        description: Option<&Path>,
        options: &SessionOptions,
    ) -> Result<ClassifierSession, ModelError> {
        let desc_path =
            description.map_or_else(|| ModelDescription::sidecar(model), Path::to_path_buf);
        let description = match ModelDescription::from_file(&desc_path)? {
            ModelDescription::Classifier(d) => d,
            other => {
                return Err(ModelError::Mismatch {
                    path: model.to_path_buf(),
                    message: format!(
                        "{} describes a {}, not a classifier",
                        desc_path.display(),
                        other.kind()
                    ),
                })
            }
        };
        let runner = Runner::open(runtime, model, &description.input, options)?;
        if let Some(out) = runner.output_dims() {
            let k = out.last().copied().unwrap_or(-1);
            if !(2..=3).contains(&out.len()) || (k >= 0 && k as usize != description.classes.len())
            {
                return Err(runner.mismatch(format!(
                    "output is {out:?}, but {} classes give [batch, {}]",
                    description.classes.len(),
                    description.classes.len()
                )));
            }
        }
        Ok(ClassifierSession {
            runner,
            description,
        })
    }

    pub fn description(&self) -> &ClassifierDescription {
        &self.description
    }

    /// The best class and its probability for each object box.
    pub fn classify(&mut self, crops: &[PlateCrop<'_>]) -> Result<Vec<(String, f32)>, ModelError> {
        let d = &self.description;
        self.runner.run(
            crops.len(),
            |i, slot| crops[i].preprocess_into(d.crop_margin, &d.input, slot),
            |_, [_, k], row| {
                let probs: Vec<f32> = if d.logits {
                    let max = row.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    e.into_iter().map(|v| v / sum).collect()
                } else {
                    row.to_vec()
                };
                let (best, p) = probs
                    .iter()
                    .take(k)
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or((0, 0.0), |(i, p)| (i, *p));
                Ok((
                    d.classes.get(best).cloned().unwrap_or_default(),
                    p.clamp(0.0, 1.0),
                ))
            },
        )
    }
}
