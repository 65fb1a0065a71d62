//! `envlock.toml`: project defaults that flags override.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file read from the current folder when `--config` is not given.
pub const DEFAULT_FILE: &str = "envlock.toml";

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
}

/// A config and the folder its relative paths start from.
#[derive(Debug, Default)]
pub struct Loaded {
    /// What the file says.
    pub config: Config,
    /// The folder holding the file.
    pub folder: PathBuf,
}

impl Loaded {
    /// The configured interpreter, with a relative path resolved against the config's folder.
    pub fn python(&self) -> Option<PathBuf> {
        let python = self.config.python.as_ref()?;
        Some(if python.components().count() > 1 {
            self.folder.join(python)
        } else {
            python.clone()
        })
    }
}

/// Loads `explicit`, else `envlock.toml` in the current folder if there is one.
pub fn load(explicit: Option<&Path>) -> Result<Loaded> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => {
            return Ok(Loaded {
                config: Config::default(),
                folder: PathBuf::from("."),
            })
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let config = toml::from_str(&text).map_err(|source| Error::InvalidConfig {
        path: path.clone(),
        source,
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Loaded { config, folder })
}
