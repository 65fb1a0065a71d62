//! Golden predictions: running the model on known inputs in a runtime, recording the
//! baseline's outputs in the lock, and comparing a target's outputs with them.
//!
//! The cases come from `envlock.toml` (`[[golden]]`) when recording and from the baseline
//! lock when checking, so a lock alone is enough to check an image in CI.

pub mod compare;
mod http;
pub mod local;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::diff::{default_severity, Code, Finding};
use crate::error::{Error, Result};
use crate::lock::{GoldenCase, GoldenSpec, OutputFormat};
use compare::{Comparison, Tolerance};

pub use http::call_when_ready;

/// Why a case gave no output: the command failed, timed out, or the server never answered.
#[derive(Debug, Clone)]
pub struct Failure(pub String);

/// Somewhere a golden case can run: the dev interpreter, an image, a live `python:PATH`.
pub trait Runtime {
    /// Runs `spec` once on the input file `input` and returns its output.
    fn run(&self, spec: &GoldenSpec, input: &Path) -> Result<String, Failure>;

    /// Whether Ctrl-C stopped a run (the caller then stops too).
    fn interrupted(&self) -> bool {
        false
    }
}

/// The largest input kept inside the lock.
const INLINE_LIMIT: usize = 1 << 20;

/// Runs every case in the baseline runtime and records its output (`runs` times, noting
/// whether the outputs agree). A case that fails here has no reference: an error.
pub fn record(
    specs: &[GoldenSpec],
    folder: &Path,
    runtime: &dyn Runtime,
) -> Result<Vec<GoldenCase>> {
    let mut cases = Vec::with_capacity(specs.len());
    for spec in specs {
        let path = folder.join(&spec.input);
        let bytes = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let failed = |detail: String| Error::GoldenBaseline {
            name: spec.name.clone(),
            detail,
        };
        let mut outputs = Vec::new();
        for _ in 0..spec.runs.max(1) {
            let output = runtime
                .run(spec, &path)
                .map_err(|failure| failed(failure.0))?;
            parse(spec.format, &output).map_err(|error| {
                failed(format!(
                    "its output is not {}: {error}",
                    format_name(spec.format)
                ))
            })?;
            outputs.push(output);
        }
        let deterministic = (outputs.len() > 1).then(|| outputs.windows(2).all(|w| w[0] == w[1]));
        let input_text = String::from_utf8(bytes.clone())
            .ok()
            .filter(|text| text.len() <= INLINE_LIMIT);
        cases.push(GoldenCase {
            spec: spec.clone(),
            input_sha256: format!("sha256:{:x}", Sha256::digest(&bytes)),
            input_text,
            input_file: None,
            output: outputs.swap_remove(0),
            deterministic,
        });
    }
    Ok(cases)
}

/// How one case fared in the target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// `pass`, `mismatch` or `error`.
    pub status: CaseStatus,
    /// Values compared.
    pub values: usize,
    /// Values out of tolerance.
    pub out_of_tolerance: usize,
    /// Largest absolute error (also on a pass).
    pub max_abs_error: f64,
    /// Largest relative error (also on a pass).
    pub max_rel_error: f64,
    /// JSON pointer of the value that moved most against its tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
}

/// A golden case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CaseStatus {
    /// Within tolerance.
    Pass,
    /// Out of tolerance, or another structure.
    Mismatch,
    /// No output to compare.
    Error,
}

/// Where the target's outputs come from.
pub enum Target<'a> {
    /// Recorded in the target's lock.
    Recorded(&'a [GoldenCase]),
    /// Run now.
    Live(&'a dyn Runtime),
}

/// Where inputs that are not inside the lock are: beside the lock (`input-file`), else at
/// their configured path.
pub struct Inputs {
    /// The baseline lock's folder, when the baseline is a lock file.
    pub lock_folder: Option<PathBuf>,
    /// The config's folder.
    pub config_folder: PathBuf,
}

/// Saves, beside the lock at `lock`, the inputs too large or not text enough to go inside
/// it, and records where (`input-file`).
pub fn save_inputs(cases: &mut [GoldenCase], lock: &Path, config_folder: &Path) -> Result<()> {
    let folder = crate::lock::containing_folder(lock);
    let lock_name = lock
        .file_name()
        .map_or_else(|| "lock".into(), |name| name.to_string_lossy().into_owned());
    for case in cases.iter_mut().filter(|case| case.input_text.is_none()) {
        let source = config_folder.join(&case.spec.input);
        let file_name = source.file_name().map_or_else(
            || "input".into(),
            |name| name.to_string_lossy().into_owned(),
        );
        let relative = format!("{lock_name}.inputs/{}-{file_name}", case.spec.name);
        let destination = folder.join(&relative);
        let write_error = |source| Error::Write {
            path: destination.clone(),
            source,
        };
        std::fs::create_dir_all(destination.parent().expect("has a parent"))
            .map_err(write_error)?;
        std::fs::copy(&source, &destination).map_err(write_error)?;
        case.input_file = Some(relative);
    }
    Ok(())
}

/// Runs (or looks up) every baseline case in the target and compares.
pub fn check(
    baseline: &[GoldenCase],
    target: Target<'_>,
    inputs: &Inputs,
) -> (Vec<CaseResult>, Vec<Finding>) {
    let mut results = Vec::new();
    let mut findings = Vec::new();
    for case in baseline {
        let output = match &target {
            Target::Recorded(cases) => cases
                .iter()
                .find(|other| other.spec.name == case.spec.name)
                .map(|other| other.output.clone())
                .ok_or_else(|| Failure("the target lock has no output for this case".to_string())),
            Target::Live(runtime) => run_case(case, *runtime, inputs),
        };
        let (result, finding) = judge(case, output);
        results.push(result);
        findings.extend(finding);
    }
    (results, findings)
}

/// Runs a recorded case, with its input written out again when the lock holds it.
fn run_case(case: &GoldenCase, runtime: &dyn Runtime, inputs: &Inputs) -> Result<String, Failure> {
    let name = Path::new(&case.spec.input)
        .file_name()
        .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    let holder;
    let path: PathBuf = match &case.input_text {
        Some(text) => {
            holder = tempfile::tempdir()
                .map_err(|e| Failure(format!("cannot make a temp folder: {e}")))?;
            let path = holder.path().join(name);
            std::fs::write(&path, text)
                .map_err(|e| Failure(format!("cannot write the input: {e}")))?;
            path
        }
        None => {
            let path = match (&case.input_file, &inputs.lock_folder) {
                (Some(file), Some(lock_folder)) => lock_folder.join(file),
                _ => inputs.config_folder.join(&case.spec.input),
            };
            let bytes = std::fs::read(&path)
                .map_err(|e| Failure(format!("cannot read input `{}`: {e}", path.display())))?;
            let sha = format!("sha256:{:x}", Sha256::digest(&bytes));
            if sha != case.input_sha256 {
                return Err(Failure(format!(
                    "input `{}` changed since the baseline recorded it",
                    path.display()
                )));
            }
            path
        }
    };
    runtime.run(&case.spec, &path)
}

fn judge(case: &GoldenCase, output: Result<String, Failure>) -> (CaseResult, Option<Finding>) {
    let name = &case.spec.name;
    let mut result = CaseResult {
        name: name.clone(),
        status: CaseStatus::Error,
        values: 0,
        out_of_tolerance: 0,
        max_abs_error: 0.0,
        max_rel_error: 0.0,
        worst: None,
    };
    let error = |message: String, target: Option<String>| Finding {
        code: Code::GoldenError,
        severity: default_severity(Code::GoldenError, None),
        subject: name.clone(),
        baseline: Some(case.output.clone()),
        target,
        change: None,
        direction: None,
        message,
    };
    let output = match output {
        Ok(output) => output,
        Err(Failure(detail)) => {
            return (
                result,
                Some(error(format!("golden case `{name}`: {detail}"), None)),
            );
        }
    };
    let (expected, actual) = match (
        parse(case.spec.format, &case.output),
        parse(case.spec.format, &output),
    ) {
        (Ok(expected), Ok(actual)) => (expected, actual),
        (Err(problem), _) => {
            let message =
                format!("golden case `{name}`: the baseline's output is unreadable: {problem}");
            return (result, Some(error(message, Some(output))));
        }
        (_, Err(problem)) => {
            let tail: String = output.chars().take(200).collect();
            let message = format!(
                "golden case `{name}`: the output is not {} ({problem}): `{}`",
                format_name(case.spec.format),
                tail.trim()
            );
            return (result, Some(error(message, Some(output))));
        }
    };
    let fields: BTreeMap<String, Tolerance> = case
        .spec
        .fields
        .iter()
        .map(|(pointer, t)| {
            (
                pointer.clone(),
                Tolerance {
                    rtol: t.rtol,
                    atol: t.atol,
                },
            )
        })
        .collect();
    let tolerance = Tolerance {
        rtol: case.spec.rtol,
        atol: case.spec.atol,
    };
    let comparison = compare::compare(&expected, &actual, tolerance, &fields);
    let Comparison {
        values,
        out_of_tolerance,
        max_abs,
        max_rel,
        ref worst,
        ref structure,
    } = comparison;
    result.values = values;
    result.out_of_tolerance = out_of_tolerance;
    result.max_abs_error = max_abs;
    result.max_rel_error = max_rel;
    result.worst = worst.clone();
    if comparison.passes() {
        result.status = CaseStatus::Pass;
        return (result, None);
    }
    result.status = CaseStatus::Mismatch;
    let message = match structure {
        Some(structure) => {
            format!("golden case `{name}`: the output's structure differs: {structure}")
        }
        None => format!(
            "golden case `{name}`: {out_of_tolerance} of {values} values out of tolerance \
             (max abs error {max_abs:.3e}, max rel error {max_rel:.3e}, worst at {})",
            worst.as_deref().unwrap_or("/")
        ),
    };
    let finding = Finding {
        code: Code::GoldenMismatch,
        severity: default_severity(Code::GoldenMismatch, None),
        subject: name.clone(),
        baseline: Some(case.output.clone()),
        target: Some(output),
        change: None,
        direction: None,
        message,
    };
    (result, Some(finding))
}

fn parse(format: OutputFormat, text: &str) -> Result<serde_json::Value, String> {
    match format {
        OutputFormat::Json => compare::parse_json(text),
        OutputFormat::Numbers => compare::parse_numbers(text),
    }
}

fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Json => "JSON",
        OutputFormat::Numbers => "whitespace-separated numbers",
    }
}

/// `{input}` in each argument replaced by `input`.
pub fn substitute(command: &[String], input: &str) -> Vec<String> {
    command
        .iter()
        .map(|arg| arg.replace("{input}", input))
        .collect()
}
