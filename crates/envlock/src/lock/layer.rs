//! `[[image.layers]]`: an image's layers as attribution names them.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// One layer of an image, base first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Layer {
    /// Its place, 0 for the base.
    pub index: usize,
    /// `sha256:` of its uncompressed tar, as the image config's `rootfs.diff_ids` names it.
    pub diff_id: String,
    /// The history step that made it, redacted as `[[image.history]]` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Layer {
    /// The layers of `diff_ids`, base first, before any history step names them.
    pub(crate) fn of_diff_ids(diff_ids: &[String]) -> Vec<Layer> {
        diff_ids
            .iter()
            .enumerate()
            .map(|(index, diff_id)| Layer {
                index,
                diff_id: diff_id.clone(),
                created_by: None,
            })
            .collect()
    }
}

/// A layer as a lock writes it: a table, or (envlock before layer attribution) a diff-id.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Table(Layer),
    DiffId(String),
}

/// Reads `layers = [...]` of either form.
pub(super) fn layers_or_digests<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Layer>, D::Error> {
    let written = Vec::<Written>::deserialize(deserializer)?;
    Ok(written
        .into_iter()
        .enumerate()
        .map(|(index, layer)| match layer {
            Written::Table(layer) => layer,
            Written::DiffId(diff_id) => Layer {
                index,
                diff_id,
                created_by: None,
            },
        })
        .collect())
}
