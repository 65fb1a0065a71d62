//! The image config blob (the OCI image config, which Docker's is too): the facts an engine
//! would report, the layers' diff-ids, and the history whose steps name the layers.

use bollard::models::ImageConfig;
use serde::Deserialize;

use crate::capture::read::history::redact_step;
use crate::error::{Error, ImageProblem, Result};
use crate::lock::{HistoryStep, Layer, Sha256};

/// What the config blob says.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageFacts {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
    #[serde(default)]
    pub(crate) created: Option<String>,
    #[serde(default)]
    pub(crate) config: Option<ImageConfig>,
    #[serde(default)]
    rootfs: RootFs,
    #[serde(default)]
    history: Vec<Step>,
    /// The digest of the config blob: the image id, as an engine names it.
    #[serde(skip)]
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) diff_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Step {
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    empty_layer: bool,
}

impl ImageFacts {
    /// Parses the config blob of the image `name`.
    pub(crate) fn parse(bytes: &[u8], name: &str) -> Result<ImageFacts> {
        let mut facts: ImageFacts =
            serde_json::from_slice(bytes).map_err(|error| Error::ImageRead {
                image: name.to_string(),
                detail: format!("its config is not an image config ({error})"),
                problem: ImageProblem::NotAnImage,
            })?;
        facts.id = Sha256::of(bytes);
        facts.diff_ids = std::mem::take(&mut facts.rootfs.diff_ids);
        Ok(facts)
    }

    /// The history, oldest first (a step's size is its layer's file bytes), and the layers,
    /// each named by the step that made it.
    pub(crate) fn history(&self, sizes: &[u64]) -> (Vec<HistoryStep>, Vec<Layer>) {
        let mut steps = Vec::with_capacity(self.history.len());
        let mut layers = Layer::of_diff_ids(&self.diff_ids);
        let mut next = 0;
        for step in &self.history {
            let created_by = redact_step(step.created_by.as_deref().unwrap_or_default());
            let mut size = 0;
            if !step.empty_layer {
                if let Some(layer) = layers.get_mut(next) {
                    layer.created_by = Some(created_by.clone()).filter(|step| !step.is_empty());
                    size = sizes.get(next).copied().unwrap_or(0);
                }
                next += 1;
            }
            steps.push(HistoryStep {
                created_by,
                size: i64::try_from(size).unwrap_or(i64::MAX),
            });
        }
        (steps, layers)
    }
}
