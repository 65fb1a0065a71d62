//! Everything that produces a [`Lock`]: a live interpreter (`python/`), an image of the
//! engine (`image/`) or one read from its layers (`layers/`: registries, archives, OCI
//! layouts), with its models (`models.rs`), allow-listed environment (`env.rs`) and
//! platform (`platform.rs`). Every source gives the same `Lock`, so nothing downstream knows
//! where a runtime came from.

pub(crate) mod engine;
pub(crate) mod env;
pub(crate) mod fs;
pub(crate) mod image;
pub(crate) mod layers;
pub(crate) mod models;
pub(crate) mod numerics;
pub(crate) mod platform;
pub(crate) mod python;
pub(crate) mod read;
mod session;
pub(crate) mod source;

use crate::warning::Warning;
use std::path::PathBuf;

pub(crate) use engine::jobs::{Ended, Job, Jobs, Ran, VOLUME};
pub use models::Progress;
pub(crate) use session::Session;
pub use source::{ImageSource, Source};

use crate::error::Result;
use crate::lock::{read_lock, Lock};
use crate::settings::Settings;

/// The tags of the registry repository `repository` (`HOST/REPO`), as the registry lists
/// them.
pub(crate) fn repository_tags(
    repository: &str,
    settings: &Settings,
    session: &Session,
) -> Result<Vec<String>> {
    session.block(layers::registry_tags(repository, settings))
}

/// A lock and the warnings gathered while capturing it.
#[derive(Debug)]
pub struct Snapshot {
    /// The captured runtime.
    pub lock: Lock,
    /// Things skipped along the way, one line each.
    pub warnings: Vec<Warning>,
    /// What people should know about how it was captured, one line each.
    pub notes: Vec<String>,
    /// The modules the runtime's distributions install, for mapping what a traced golden
    /// run imported to distributions (empty for a lock: its runs are recorded).
    pub(crate) modules: read::imports::Modules,
    /// What the jobs run in an image's probe container did (golden command cases).
    pub(crate) ran: Option<Ran>,
}

impl Snapshot {
    /// A snapshot of `lock` read from somewhere, not captured.
    pub(crate) fn of(lock: Lock, warnings: Vec<Warning>, notes: Vec<String>) -> Snapshot {
        Snapshot {
            lock,
            warnings,
            notes,
            modules: read::imports::Modules::default(),
            ran: None,
        }
    }
}

/// Where model paths start on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelsFrom {
    /// As given on the command line: from the current folder.
    CurrentFolder,
    /// As named in the config or a lock: from the config's folder.
    ConfigFolder,
}

/// Reads or captures `source` with the models `models` (as named in the lock); `jobs` run in
/// an engine image's probe container.
pub(crate) fn capture(
    source: &Source,
    models: &[String],
    from: ModelsFrom,
    settings: &Settings,
    session: &Session,
    progress: &dyn Progress,
    jobs: &Jobs,
) -> Result<Snapshot> {
    match source {
        Source::Lock(path) => Ok(Snapshot::of(read_lock(path)?, Vec::new(), Vec::new())),
        Source::Sbom(path) => {
            let (lock, notes) = crate::sbom::read_sbom(path)?;
            Ok(Snapshot::of(lock, Vec::new(), notes))
        }
        // Without a runtime to select for: `check` and `audit` select for their target.
        Source::Declared(declared) => {
            let selected = crate::declared::baseline(declared, None, &settings.selection)?;
            Ok(Snapshot::of(
                selected.lock,
                selected.warnings,
                selected.notes,
            ))
        }
        Source::Python(explicit) => {
            let interpreter = python::configured_interpreter(explicit.as_deref(), settings)?;
            let on_disk: Vec<(String, PathBuf)> = models
                .iter()
                .map(|model| {
                    let path = match from {
                        ModelsFrom::CurrentFolder => PathBuf::from(model),
                        ModelsFrom::ConfigFolder => settings.config_folder.join(model),
                    };
                    (model.clone(), path)
                })
                .collect();
            python::snapshot(interpreter, &on_disk, settings, progress)
        }
        Source::Image(image) => {
            let inside = settings.config.image_models(models);
            match image {
                ImageSource::Engine(reference) => {
                    session.run(|engine| image::capture(engine, reference, &inside, settings, jobs))
                }
                layered => session.block(image::layered::capture(
                    layered,
                    &inside,
                    settings,
                    &session.layers,
                )),
            }
        }
    }
}
