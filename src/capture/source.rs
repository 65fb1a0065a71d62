//! Where a runtime comes from, as an operand names it: an existing file is a lock,
//! `python:PATH` a live interpreter, anything else an image reference in the local engine.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A runtime's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A lock file.
    Lock(PathBuf),
    /// A live interpreter, captured on the spot; `None` is the configured or default one.
    Python(Option<PathBuf>),
    /// An image of the local engine, captured on the spot.
    Image(String),
}

impl Source {
    /// Reads an operand as the contract says; a missing file that looks like a lock is an
    /// error here rather than an image reference to look up.
    pub fn parse(text: &str) -> Result<Source> {
        if let Some(interpreter) = text.strip_prefix("python:") {
            return Ok(Source::Python(Some(PathBuf::from(interpreter))));
        }
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Source::Lock(path.to_path_buf()));
        }
        let looks_like_a_file = [".lock", ".toml", ".json"]
            .iter()
            .any(|end| text.ends_with(end))
            || text.starts_with('.')
            || text.starts_with('/')
            || path.exists();
        if looks_like_a_file {
            return Err(Error::LockNotFound {
                operand: text.to_string(),
            });
        }
        Ok(Source::Image(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_are_read_as_the_contract_says() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("dev.lock");
        std::fs::write(&lock, "").unwrap();
        let text = lock.to_str().unwrap();
        assert_eq!(Source::parse(text).unwrap(), Source::Lock(lock.clone()));
        assert_eq!(
            Source::parse("python:.venv/bin/python").unwrap(),
            Source::Python(Some(".venv/bin/python".into()))
        );
        assert_eq!(
            Source::parse("ml-model:latest").unwrap(),
            Source::Image("ml-model:latest".into())
        );
        assert_eq!(
            Source::parse("registry.local:5000/ml@sha256:abc").unwrap(),
            Source::Image("registry.local:5000/ml@sha256:abc".into())
        );
        assert!(matches!(
            Source::parse("missing.lock"),
            Err(Error::LockNotFound { .. })
        ));
    }
}
