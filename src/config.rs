//! `envlock.toml`: project defaults that flags override.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file read from the current folder when `--config` is not given.
pub(crate) const DEFAULT_FILE: &str = "envlock.toml";

/// The contents of `envlock.toml`. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The interpreter to snapshot: a path (relative to the config's folder) or a command name
    /// looked up on `PATH`.
    pub python: Option<PathBuf>,
    /// Model files and folders to hash, relative to the config's folder.
    #[serde(default)]
    pub models: Vec<String>,
    /// `[image]`: how images are captured.
    #[serde(default)]
    pub image: ImageSection,
    /// Where a model of the dev side is inside the image, when not at the same path under
    /// the image's WORKDIR: `"model/" = "/opt/models/current"`.
    #[serde(default)]
    pub image_models: BTreeMap<String, String>,
    /// Golden cases: run in the dev runtime by `snapshot`, in the target by `diff`.
    #[serde(default)]
    pub golden: Vec<crate::lock::GoldenSpec>,
    /// The gate's policy for `envlock diff`.
    #[serde(default)]
    pub policy: crate::diff::Policy,
}

/// `[image]` of `envlock.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSection {
    /// The interpreter to capture in images: a path inside the image, or a name looked up on
    /// the image's `PATH`. Without it, the one the image's ENTRYPOINT/CMD runs.
    pub python: Option<String>,
}

impl Config {
    /// Models to hash inside an image: each as named, with its path in the image.
    pub(crate) fn image_models(&self, models: &[String]) -> Vec<(String, String)> {
        models
            .iter()
            .map(|model| {
                let inside = self.image_models.get(model).unwrap_or(model);
                (model.clone(), inside.clone())
            })
            .collect()
    }
}

/// Loads `explicit`, else `envlock.toml` in the current folder if there is one; returns the
/// config and the folder its relative paths start from.
pub fn load(explicit: Option<&Path>) -> Result<(Config, PathBuf)> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok((Config::default(), PathBuf::from("."))),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let config: Config = toml::from_str(&text).map_err(|source| Error::InvalidConfig {
        path: path.clone(),
        source,
    })?;
    if let Some(message) = config.policy.problem() {
        return Err(Error::InvalidPolicy { path, message });
    }
    let folder = crate::lock::containing_folder(&path).to_path_buf();
    Ok((config, folder))
}
