//! Capturing a runtime into a [`Lock`].

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::lock::{Header, Lock, Source, SourceKind};
use crate::model::{self, Progress};

/// How long an interpreter may take to answer the probe, unless `ENVLOCK_PROBE_TIMEOUT` says.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The probe's time limit: `ENVLOCK_PROBE_TIMEOUT` (seconds) or the default.
pub fn probe_timeout() -> Duration {
    std::env::var("ENVLOCK_PROBE_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map_or(DEFAULT_PROBE_TIMEOUT, Duration::from_secs_f64)
}

/// What to capture from a live interpreter.
pub struct PythonRequest<'a> {
    /// The interpreter (see [`crate::python::locate_interpreter`]).
    pub interpreter: PathBuf,
    /// Model paths: each as given, and where it is on disk.
    pub models: Vec<(String, PathBuf)>,
    /// Told about hashing progress.
    pub progress: &'a dyn Progress,
}

/// A lock and the warnings gathered while capturing it.
pub struct Snapshot {
    /// The captured runtime.
    pub lock: Lock,
    /// Things skipped along the way, one line each.
    pub warnings: Vec<String>,
}

/// Captures a live interpreter, its distributions, this process's allow-listed environment
/// and the models.
pub fn python(request: PythonRequest<'_>) -> Result<Snapshot> {
    let capture = crate::python::capture(&request.interpreter, probe_timeout())?;
    let models = model::hash_models(&request.models, request.progress)?;
    let lock = Lock {
        envlock: Header::current(),
        source: Source {
            kind: SourceKind::Python,
            interpreter: Some(request.interpreter.to_string_lossy().into_owned()),
            ..Source::default()
        },
        python: Some(capture.python),
        platform: capture.platform,
        env: crate::env::capture_process(),
        packages: capture.packages,
        pth_files: capture.pth_files,
        models,
        golden: Vec::new(),
        system_packages: Vec::new(),
        image: None,
    };
    Ok(Snapshot {
        lock,
        warnings: capture.warnings,
    })
}
