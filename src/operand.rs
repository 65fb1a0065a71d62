//! A diff operand and how it becomes a runtime: an existing file is a lock, `python:PATH` a
//! live interpreter, anything else an image reference in the local engine (both captured on
//! the spot).

use std::path::{Path, PathBuf};

use crate::config::Loaded;
use crate::diff::Finding;
use crate::error::{Error, Result};
use crate::lock::{GoldenCase, GoldenSpec};
use crate::snapshot::Snapshot;
use crate::{golden, image, lock, model, python, snapshot};

/// How envlock reads an operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A lock file.
    Lock(PathBuf),
    /// A live interpreter, captured on the spot.
    Python(PathBuf),
    /// An image of the local engine, captured on the spot.
    Image(String),
}

impl Operand {
    /// Reads an operand as the contract says; a missing file that looks like a lock is an
    /// error here rather than an image reference to look up.
    pub fn parse(text: &str) -> Result<Operand> {
        if let Some(interpreter) = text.strip_prefix("python:") {
            return Ok(Operand::Python(PathBuf::from(interpreter)));
        }
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Operand::Lock(path.to_path_buf()));
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
        Ok(Operand::Image(text.to_string()))
    }

    /// The runtime: read from the lock, or captured with `models` (as named in the lock).
    pub fn load(
        &self,
        text: &str,
        models: &[String],
        config: &Loaded,
        no_exec: bool,
    ) -> Result<Snapshot> {
        match self {
            Operand::Lock(path) => Ok(Snapshot {
                lock: lock::read_lock(path)?,
                warnings: Vec::new(),
            }),
            Operand::Python(interpreter) => snapshot::python(snapshot::PythonRequest {
                interpreter: python::locate_interpreter(Some(interpreter))?,
                models: models
                    .iter()
                    .map(|m| (m.clone(), config.folder.join(m)))
                    .collect(),
                progress: &model::Silent,
            }),
            Operand::Image(reference) => image::capture(&image::ImageRequest {
                reference: reference.clone(),
                models: config.image_models(models),
                no_exec,
                pull: false,
            })
            .map_err(|error| match error {
                Error::ImageNotFound { .. } => Error::UnknownOperand {
                    operand: text.to_string(),
                },
                Error::Docker {
                    source:
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 400, ..
                        },
                    ..
                } => Error::UnknownOperand {
                    operand: text.to_string(),
                },
                other => other,
            }),
        }
    }
}

impl Operand {
    /// Where golden cases run for this operand: `None` for a lock (its outputs are recorded).
    pub fn golden_runtime(&self, folder: &Path) -> Result<Option<Box<dyn golden::Runtime>>> {
        Ok(match self {
            Operand::Lock(_) => None,
            Operand::Python(interpreter) => Some(Box::new(golden::local::Local {
                interpreter: python::locate_interpreter(Some(interpreter))?,
                folder: folder.to_path_buf(),
            })),
            Operand::Image(reference) => Some(Box::new(image::ImageRuntime::connect(reference)?)),
        })
    }

    /// Checks the baseline's golden `cases` against this operand: a lock's recorded outputs,
    /// or the cases run now in the interpreter or image. Ctrl-C during a run is an error.
    pub fn check_golden(
        &self,
        cases: &[GoldenCase],
        captured: &lock::Lock,
        inputs: &golden::Inputs,
    ) -> Result<(Vec<golden::CaseResult>, Vec<Finding>)> {
        let Some(runtime) = self.golden_runtime(&inputs.config_folder)? else {
            return Ok(golden::check(
                cases,
                golden::Target::Recorded(&captured.golden),
                inputs,
            ));
        };
        let checked = golden::check(cases, golden::Target::Live(runtime.as_ref()), inputs);
        if runtime.interrupted() {
            return Err(Error::Interrupted);
        }
        Ok(checked)
    }

    /// Records the outputs of `specs` in `snapshot` (when this operand can run them).
    pub fn record_golden(
        &self,
        snapshot: &mut Snapshot,
        specs: &[GoldenSpec],
        folder: &Path,
    ) -> Result<()> {
        if specs.is_empty() {
            return Ok(());
        }
        if let Some(runtime) = self.golden_runtime(folder)? {
            snapshot.lock.golden = golden::record(specs, folder, runtime.as_ref())?;
            if runtime.interrupted() {
                return Err(Error::Interrupted);
            }
        }
        Ok(())
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
        assert_eq!(Operand::parse(text).unwrap(), Operand::Lock(lock.clone()));
        assert_eq!(
            Operand::parse("python:.venv/bin/python").unwrap(),
            Operand::Python(".venv/bin/python".into())
        );
        assert_eq!(
            Operand::parse("ml-model:latest").unwrap(),
            Operand::Image("ml-model:latest".into())
        );
        assert_eq!(
            Operand::parse("registry.local:5000/ml@sha256:abc").unwrap(),
            Operand::Image("registry.local:5000/ml@sha256:abc".into())
        );
        assert!(matches!(
            Operand::parse("missing.lock"),
            Err(Error::LockNotFound { .. })
        ));
    }
}
