//! envlock: capture a Python ML runtime into a lock, and catch drift between a dev
//! environment and its Docker image before deployment.
//!
//! The data flow is the folder list:
//! - `capture`: a live interpreter or an image becomes a [`Lock`]: sources (the host,
//!   the engine, an image's layers) give one view of a runtime's files (`capture/fs`), and
//!   the readers over it (`capture/read`, numerics) are the same for every source;
//! - `lock/`: the lock model, its TOML form and schema;
//! - `golden/`: golden cases run in a runtime (local process groups, containers), and
//!   `verdict.rs`, how a case is judged;
//! - `diff/`: pure, two locks (and the golden verdicts) in, findings out, with the policy;
//! - `report/`: human, JSON, Markdown and JUnit renderings of the findings;
//! - `snapshot.rs`: the [`snapshot`] call, capture and golden recording;
//! - `check.rs`: the gate, [`check`]: both operands captured, golden cases run in the
//!   target, the locks diffed and the policy applied.
//!
//! The binary's `cli/` resolves flags, `envlock.toml` and `ENVLOCK_*` once into
//! [`Settings`]; it is the only layer that prints, reads the process environment or picks
//! exit codes.
//!
//! The API is two calls: [`snapshot`] and [`check`].

pub mod audit;
mod capture;
mod check;
mod config;
mod declared;
mod diff;
mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
mod golden;
pub mod lock;
mod process;
pub mod report;
mod sbom;
mod settings;
mod snapshot;
mod stop;
mod verdict;
mod warning;

use std::path::Path;

pub use capture::{ImageSource, Progress, Snapshot, Source};
pub use check::{check, Checked};
pub use config::{load as load_config, Config, InvalidRunAs, RunAs};
pub use declared::{DeclaredFormat, DeclaredSource, Selection};
pub use diff::{Cause, Code, DriverVersion, Finding, FindingLayer, GpuArch, Severity, Suspect};
pub use error::{EngineFault, Error, ImageProblem, Result};
pub use lock::Lock;
pub use report::{Report, ReportedCase};
pub use settings::{
    seconds, Environment, ImagePlatform, InvalidPlatform, Settings, DEFAULT_ENGINE_TIMEOUT,
    DEFAULT_PROBE_TIMEOUT, DEFAULT_REGISTRY_TIMEOUT,
};
pub use snapshot::{snapshot, write_snapshot};
pub use stop::Stop;
pub use warning::{Warning, WarningCode};

/// The pauses before each retry of a read that may fail for a moment, for `--help`: one
/// try more than pauses in all.
pub struct RetryPauses {
    /// Between tries of a registry request answered 429, 502, 503 or 504, or cut off.
    pub registry: Vec<std::time::Duration>,
    /// Between tries of the engine's archive endpoint that answered 404 for a path a stat
    /// finds, or whose connection was cut.
    pub archive: Vec<std::time::Duration>,
}

/// The pauses the code waits, from the values it uses.
pub fn retry_pauses() -> RetryPauses {
    let archive = capture::engine::ArchiveRetry::TRIES;
    RetryPauses {
        registry: (0..capture::layers::REGISTRY_TRIES - 1)
            .map(capture::layers::registry_pause)
            .collect(),
        archive: (0..archive - 1)
            .map(capture::engine::ArchiveRetry::pause)
            .collect(),
    }
}

/// The lock `text` names: a lock file, or a CycloneDX SBOM (`*.cdx.json`, `cyclonedx:PATH`)
/// read as one.
pub fn read_lock_or_sbom(text: &str) -> Result<Lock> {
    match Source::parse(text)? {
        Source::Sbom(path) => Ok(sbom::read_sbom(&path)?.0),
        _ => lock::read_lock(Path::new(text)),
    }
}
