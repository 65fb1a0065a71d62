//! What an image's config says (from the engine's inspect, or from the config blob of an
//! image read from its layers): the facts every image capture starts from.

use std::collections::BTreeMap;

use bollard::models::{ImageConfig, ImageInspect};

use super::select;

/// What the image's config says, from the engine or from the config blob.
pub(crate) struct Facts {
    /// The image id: the digest of its config.
    pub(crate) id: String,
    pub(crate) config: ImageConfig,
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) variant: Option<String>,
    /// `KEY=VALUE` pairs of the config's `Env`.
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) repo_digests: Vec<String>,
    pub(crate) created: Option<String>,
    /// The layers' diff-ids, base first.
    pub(crate) diff_ids: Vec<String>,
}

impl Facts {
    pub(crate) fn of(inspect: ImageInspect, reference: &str) -> Facts {
        let diff_ids = inspect
            .root_fs
            .as_ref()
            .and_then(|root| root.layers.clone())
            .unwrap_or_default();
        Facts::new(
            inspect.id.clone().unwrap_or_else(|| reference.to_string()),
            inspect.config.clone().unwrap_or_default(),
            inspect.os.clone().unwrap_or_default(),
            inspect.architecture.clone().unwrap_or_default(),
            inspect.variant.clone(),
        )
        .with(
            inspect.repo_tags.unwrap_or_default(),
            inspect.repo_digests.unwrap_or_default(),
            inspect.created,
            diff_ids,
        )
    }

    /// The facts of a config: its id, `config`, `os`, `arch` and `variant`.
    pub(crate) fn new(
        id: String,
        config: ImageConfig,
        os: String,
        arch: String,
        variant: Option<String>,
    ) -> Facts {
        let env = config
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (pair, String::new()),
            })
            .collect();
        Facts {
            id,
            config,
            os,
            arch,
            variant: variant.filter(|v| !v.is_empty()),
            env,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            created: None,
            diff_ids: Vec::new(),
        }
    }

    /// With names, digests, the build time and the layers.
    pub(crate) fn with(
        mut self,
        repo_tags: Vec<String>,
        repo_digests: Vec<String>,
        created: Option<String>,
        diff_ids: Vec<String>,
    ) -> Facts {
        self.repo_tags = sorted(repo_tags);
        self.repo_digests = sorted(repo_digests);
        self.created = created;
        self.diff_ids = diff_ids;
        self
    }

    /// The image's `PATH`.
    pub(crate) fn path(&self) -> &str {
        self.env
            .get("PATH")
            .map_or(select::DEFAULT_PATH, String::as_str)
    }

    /// Where a model path points inside the image: a relative one under WORKDIR.
    pub(crate) fn model_path(&self, inside: &str) -> String {
        if inside.starts_with('/') {
            return inside.to_string();
        }
        let workdir = self.workdir().unwrap_or_else(|| "/".to_string());
        format!(
            "{}/{}",
            workdir.trim_end_matches('/'),
            inside.trim_end_matches('/')
        )
    }

    pub(crate) fn workdir(&self) -> Option<String> {
        self.config
            .working_dir
            .clone()
            .filter(|dir| !dir.is_empty())
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}
