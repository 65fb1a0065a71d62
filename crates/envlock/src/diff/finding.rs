//! Findings and the words scripts match on: codes, severities, areas. The string tables are
//! derived (serde for JSON, strum for text) so a code is spelled in one place.

use schemars::JsonSchema;
use serde::Serialize;

use super::version::{Change, Direction};

/// A finding's stable code. Scripts match on these: add codes, never rename one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Code {
    /// `sys.implementation` differs (cpython, pypy).
    PythonImplementation,
    /// The Python version differs.
    PythonVersion,
    /// The operating system differs.
    PlatformOs,
    /// The CPU architecture differs.
    PlatformArch,
    /// The C library's family or version differs.
    Libc,
    /// A package of the baseline is not in the target.
    PackageMissing,
    /// The target has a package the baseline lacks.
    PackageAdded,
    /// A package's version differs.
    PackageVersion,
    /// Same version, another build: local label, wheel tag, installer, source, editable.
    PackageBuild,
    /// Same version, different installed files (RECORD digest).
    PackageFiles,
    /// A model of the baseline is not in the target.
    ModelMissing,
    /// A model's bytes differ.
    ModelHash,
    /// A library version the model file records differs from the runtime's (an error when
    /// the runtime lacks the library).
    ModelFramework,
    /// A module the model's pickle imports cannot be imported in the runtime.
    ModelImport,
    /// Loading the model would call something outside the allow-list (a pickle is a
    /// program), or a pickle in it cannot be read to its end.
    ModelUnsafe,
    /// An allow-listed environment variable is set, unset or changed.
    EnvVar,
    /// A system package (dpkg, apk) differs.
    SystemPackage,
    /// The image configuration (entrypoint, cmd, workdir, user, ports, labels) differs.
    ImageConfig,
    /// A golden case's output is out of tolerance.
    GoldenMismatch,
    /// A golden case could not be run or its output not read.
    GoldenError,
    /// A golden case's latency is over its budget, or too far over the baseline's.
    GoldenLatency,
    /// A policy ignore rule matched nothing (so policies do not rot).
    PolicyUnused,
    /// A package of a conda prefix is added, removed, or another version or build.
    CondaPackage,
    /// The golden cases could not run in the target: it is not in an engine.
    GoldenSkipped,
    /// A native numeric library (BLAS, LAPACK, OpenMP, CUDA) is added, removed, or of
    /// another family, version or build.
    NumericLibrary,
    /// The CPU's float-relevant features, logical CPUs or quota differ (live runtimes).
    CpuFeatures,
    /// A `--numerics-check` kernel gives other bits.
    NumericsKernel,
    /// An installed distribution's requirement is not met in that runtime (what `pip check`
    /// reports): the target's fail the gate, the baseline's are information.
    RequirementUnmet,
    /// The runtime's CUDA needs a newer NVIDIA driver than the deploy nodes have
    /// (`[deploy] driver`, `--driver`).
    CudaDriver,
    /// A CUDA library has no GPU code that runs on a deploy GPU (`[deploy] gpu`, `--gpu`),
    /// or only PTX the driver compiles at first start.
    GpuArch,
    /// A CUDA library's GPU architectures differ between the two runtimes.
    GpuLibrary,
}

/// How serious a finding is. Ordered: `info < warning < error`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Severity {
    /// Reported, never fails the gate unless `--fail-on info`.
    Info,
    /// Fails the gate with `--fail-on warning`.
    Warning,
    /// Fails the gate (the default `--fail-on error`).
    Error,
}

/// The part of a runtime a finding is about, for grouping in reports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub(crate) enum Area {
    /// Interpreter.
    Python,
    /// OS, architecture, libc.
    Platform,
    /// Python distributions.
    Packages,
    /// Packages of a conda prefix.
    CondaPackages,
    /// Model files.
    Models,
    /// Allow-listed environment.
    Environment,
    /// dpkg/apk packages.
    SystemPackages,
    /// Image configuration.
    Image,
    /// Native libraries, CPU and kernels behind the numbers.
    Numerics,
    /// Golden predictions.
    Golden,
    /// The policy itself.
    Policy,
}

/// One difference between the two runtimes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// What kind of difference.
    pub code: Code,
    /// How serious, after the policy.
    pub severity: Severity,
    /// The thing that differs: a package name, model path, variable name, case name.
    pub subject: String,
    /// The baseline's value, absent when the baseline lacks the thing.
    pub baseline: Option<String>,
    /// The target's value, absent when the target lacks the thing.
    pub target: Option<String>,
    /// For versions: the first PEP 440 part that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// For versions: whether the target is newer or older.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// One line for people.
    pub message: String,
    /// A finding about a target from a layered source: the layer that wrote the thing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<FindingLayer>,
    /// The finding that explains this one (another platform explains other wheel tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<super::causes::Cause>,
    /// Whether a golden case loaded the thing: for a distribution, whether any case
    /// imported it on either side (absent when that is unknown); for a numeric library,
    /// `true` when a traced run mapped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<bool>,
    /// For `package-build`: what tells the two builds apart, for the causes; not reported
    /// (the message says it).
    #[serde(skip)]
    pub(crate) build: Option<Build>,
    /// For `requirement-unmet`: the distribution required, for the causes; not reported
    /// (the value and message name it).
    #[serde(skip)]
    pub(crate) required: Option<String>,
}

/// What tells two builds of one version apart, in a `package-build` finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// The `WHEEL` file's tags: what a platform or Python change gives.
    WheelTags,
    /// The tool that installed it (`INSTALLER`).
    Installer,
    /// Where it came from: an index, an archive, a folder, a VCS; editable or not.
    Source,
}

impl Build {
    /// The words the finding's message uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Build::WheelTags => "wheel tags",
            Build::Installer => "installer",
            Build::Source => "source",
        }
    }
}

/// The layer a finding's subject comes from (`"layer"` in the JSON report).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct FindingLayer {
    /// Its place among the image's layers, 0 for the base.
    pub index: usize,
    /// Its diff-id.
    pub digest: String,
    /// The history step that made it (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl FindingLayer {
    /// `layer 3: RUN pip install -r requirements.txt`, as the human and Markdown reports
    /// show it.
    pub fn describe(&self) -> String {
        match &self.created_by {
            Some(step) => format!("layer {}: {}", self.index, short_step(step)),
            None => format!("layer {}", self.index),
        }
    }
}

/// A history step as a Dockerfile line: the legacy builder's `/bin/sh -c #(nop) ` and
/// `/bin/sh -c ` prefixes become the instruction, BuildKit's `RUN /bin/sh -c ` becomes `RUN `
/// and its `# buildkit` suffix goes.
fn short_step(step: &str) -> String {
    let step = step.trim().trim_end_matches("# buildkit").trim();
    let step = if let Some(instruction) = step.strip_prefix("/bin/sh -c #(nop) ") {
        instruction.trim().to_string()
    } else if let Some(command) = step
        .strip_prefix("/bin/sh -c ")
        .or_else(|| step.strip_prefix("RUN /bin/sh -c "))
    {
        format!("RUN {command}")
    } else {
        step.to_string()
    };
    const LIMIT: usize = 80;
    match step.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &step[..cut]),
        None => step,
    }
}

impl Finding {
    /// A finding with the code's default severity.
    pub(crate) fn new(
        code: Code,
        subject: &str,
        baseline: Option<String>,
        target: Option<String>,
        message: String,
    ) -> Finding {
        Finding {
            code,
            severity: default_severity(code, None),
            subject: subject.to_string(),
            baseline,
            target,
            change: None,
            direction: None,
            message,
            layer: None,
            cause: None,
            loaded: None,
            build: None,
            required: None,
        }
    }

    /// With a classified version change, which may lower the default severity.
    pub(crate) fn classified(mut self, classified: Option<(Change, Direction)>) -> Finding {
        self.change = classified.map(|(change, _)| change);
        self.direction = classified.map(|(_, direction)| direction);
        self.severity = default_severity(self.code, self.change);
        self
    }
}

impl Code {
    /// The area the code belongs to.
    pub(crate) fn area(self) -> Area {
        match self {
            Code::PythonImplementation | Code::PythonVersion => Area::Python,
            Code::PlatformOs | Code::PlatformArch | Code::Libc => Area::Platform,
            Code::PackageMissing
            | Code::PackageAdded
            | Code::PackageVersion
            | Code::PackageBuild
            | Code::PackageFiles
            | Code::RequirementUnmet => Area::Packages,
            Code::ModelMissing
            | Code::ModelHash
            | Code::ModelFramework
            | Code::ModelImport
            | Code::ModelUnsafe => Area::Models,
            Code::EnvVar => Area::Environment,
            Code::SystemPackage => Area::SystemPackages,
            Code::ImageConfig => Area::Image,
            Code::GoldenMismatch
            | Code::GoldenError
            | Code::GoldenLatency
            | Code::GoldenSkipped => Area::Golden,
            Code::PolicyUnused => Area::Policy,
            Code::CondaPackage => Area::CondaPackages,
            Code::NumericLibrary
            | Code::CpuFeatures
            | Code::NumericsKernel
            | Code::CudaDriver
            | Code::GpuArch
            | Code::GpuLibrary => Area::Numerics,
        }
    }

    /// The kebab-case code, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every code, in report order.
    pub fn all() -> impl Iterator<Item = Code> {
        <Code as strum::IntoEnumIterator>::iter()
    }
}

impl Area {
    /// The area's name in reports.
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Severity {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `--fail-on`'s values, most severe first, as `--help` lists them.
#[cfg(feature = "clap")]
impl clap::ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &[Severity::Error, Severity::Warning, Severity::Info]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// The default severity of a finding (the policy overrides it): what changes predictions
/// most often is an error, what may is a warning, the rest is information.
pub(crate) fn default_severity(code: Code, change: Option<Change>) -> Severity {
    use Severity::*;
    match code {
        Code::PackageVersion | Code::PythonVersion => match change {
            Some(Change::Patch | Change::Pre | Change::Post | Change::Dev | Change::Local) => {
                Warning
            }
            _ => Error,
        },
        Code::PythonImplementation
        | Code::PlatformOs
        | Code::PlatformArch
        | Code::PackageMissing
        | Code::ModelMissing
        | Code::ModelHash
        | Code::ModelImport
        | Code::ModelUnsafe
        | Code::GoldenMismatch
        | Code::GoldenError
        | Code::GoldenLatency
        | Code::RequirementUnmet
        | Code::CudaDriver
        | Code::GpuArch => Error,
        Code::Libc
        | Code::ModelFramework
        | Code::PackageAdded
        | Code::PackageBuild
        | Code::PackageFiles
        | Code::CondaPackage
        | Code::NumericLibrary
        | Code::GpuLibrary
        | Code::NumericsKernel
        | Code::EnvVar => Warning,
        Code::SystemPackage
        | Code::ImageConfig
        | Code::PolicyUnused
        | Code::GoldenSkipped
        | Code::CpuFeatures => Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in Code::all() {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
        assert_eq!(Code::all().count(), 31);
        assert_eq!(Area::SystemPackages.as_str(), "system-packages");
        assert_eq!(Severity::Warning.as_str(), "warning");
    }
}
