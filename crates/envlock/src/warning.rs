//! What capture could not do as asked, and said so: each warning has a stable code (scripts
//! read them in the JSON report's `warnings`) and a message for people. A warning never
//! stands for a read that failed: that is an error, and nothing is written.

use schemars::JsonSchema;
use serde::Serialize;

/// A warning: its code and one line for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Warning {
    /// Stable, kebab-case.
    pub code: WarningCode,
    /// What happened and what to do, one line.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(code: WarningCode, message: impl Into<String>) -> Warning {
        Warning {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// The warning codes (kebab-case, stable; codes are added, never renamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema, strum::AsRefStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum WarningCode {
    /// A `.dist-info` or `.egg-info` whose metadata names no package, or no version.
    SkippedDistribution,
    /// A `.pth` file that is not a readable file (a link to nothing).
    SkippedPth,
    /// A conda record that is not a readable record.
    SkippedCondaRecord,
    /// A `.pth` file with an `import` line, which static capture does not run.
    PthImport,
    /// The image's ENTRYPOINT/CMD could not be followed to a Python; `python3` on its
    /// PATH was captured instead.
    CommandNotFollowed,
    /// The image has no Python, or the one it names is not a Python install.
    NoPython,
    /// The image's system package database is there but was not read.
    SystemPackages,
    /// `--numerics-check` ran no kernels.
    NumericsCheck,
    /// Golden cases that were not run (`--no-exec`).
    GoldenNotRun,
    /// A golden case already over its latency budget in the baseline.
    GoldenOverBudget,
    /// A snapshotted model whose loading would call something outside the allow-list (the
    /// diff makes it a `model-unsafe` finding).
    ModelUnsafe,
    /// A declared lock's marker needs a value the target's capture lacks
    /// (`platform_release` under static capture): the package was taken as required.
    MarkerNotEvaluated,
}
