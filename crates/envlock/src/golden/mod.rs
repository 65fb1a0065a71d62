//! Golden predictions: running the model on known inputs in a runtime (`local.rs`, `image.rs`),
//! recording the baseline's outputs in the lock, and judging a target's outputs against them
//! with numeric tolerance (`compare.rs`). The judgement is data; the diff turns it into
//! findings.
//!
//! The cases come from `envlock.toml` (`[[golden]]`) when recording and from the baseline
//! lock when checking, so a lock alone is enough to check an image in CI.

pub(crate) mod compare;
mod http;
mod image;
pub(crate) use image::{outcomes, shared, Prerun, Shared};
pub(crate) mod latency;
mod local;
pub(crate) mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::capture::read::imports::Modules;
use crate::capture::{python, ImageSource, Session, Source};
use crate::error::{Error, Result};
use crate::lock::{GoldenCase, GoldenSpec, Latency, Lock, OutputFormat, Sha256};
use crate::settings::Settings;
use crate::verdict;
pub(crate) use crate::verdict::{CaseResult, CaseStatus, Judged};

/// For the fuzz targets (`src/fuzzing.rs`): a golden HTTP server's raw response.
pub(crate) fn fuzz_http_response(raw: &[u8]) {
    let _ = http::parse_response(raw);
}
use compare::{Comparison, Tolerance};

/// Why a case gave no output: the command failed, timed out, or the server never answered.
#[derive(Debug, Clone)]
pub(crate) struct CaseError(pub(crate) String);

/// What one run of a case gave.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Its output.
    pub(crate) output: String,
    /// When timed (a case with `latency`): the timed runs in milliseconds, or why they
    /// could not be timed.
    pub(crate) samples: Option<Result<Vec<f64>, CaseError>>,
    /// What its processes loaded (the timed runs are not traced).
    pub(crate) trace: trace::Traced,
}

/// Somewhere a golden case can run: a local interpreter or an image.
pub(crate) trait Runner {
    /// Runs `spec` once on the input file `input`: its output, or why it gave none; with
    /// `timed` and a `latency` spec, also its latency (the warm-up and timed runs follow
    /// the first, with the same server for an HTTP case). An error stops the whole run
    /// (Ctrl-C, an engine that went away).
    fn run(&self, spec: &GoldenSpec, input: &Path, timed: bool) -> Result<Result<Ran, CaseError>>;

    /// The identity cases run as, when not the runtime's own (`--run-as` in an image).
    fn run_as(&self) -> Option<&str> {
        None
    }

    /// What the report should say of where the cases ran.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where golden cases run for `source` (captured as `captured`, with `prerun` the cases
/// already run in its probe's container): `None` for a lock (its outputs are recorded).
pub(crate) fn runner<'a>(
    source: &Source,
    captured: &Lock,
    settings: &'a Settings,
    session: &'a Session,
    prerun: Prerun,
) -> Result<Option<Box<dyn Runner + 'a>>> {
    Ok(match source {
        Source::Lock(_) | Source::Declared(_) | Source::Sbom(_) => None,
        Source::Python(explicit) => Some(Box::new(local::LocalRunner {
            interpreter: python::configured_interpreter(explicit.as_deref(), settings)?.0,
            settings,
        })),
        Source::Image(ImageSource::Engine(reference)) => {
            let python = captured.python.as_ref();
            let executable = python.and_then(|python| python.executable.as_deref());
            let run_as = settings.run_as.as_ref().map(|run_as| run_as.user.as_str());
            Some(Box::new(image::ImageRunner::new(
                session,
                reference,
                executable,
                run_as,
                prerun,
                settings.config.deploy.gpus,
            )?))
        }
        // An image not in an engine has no container to run in (see `golden-skipped`).
        Source::Image(_) => None,
    })
}

/// The largest input kept inside the lock.
const INLINE_LIMIT: usize = 1 << 20;

/// Runs every case in the baseline runtime and records its output (`runs` times, noting
/// whether the outputs agree) and what its runs loaded (`modules` maps their imports to
/// distributions). A case that fails here has no reference: an error.
pub(crate) fn record(
    specs: &[GoldenSpec],
    folder: &Path,
    runner: &dyn Runner,
    modules: &Modules,
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
        let mut traces = Vec::new();
        let mut measured_latency = None;
        for run in 0..spec.runs.max(1) {
            let ran = runner
                .run(spec, &path, run == 0)?
                .map_err(|error| failed(error.0))?;
            parse(spec.format, &ran.output).map_err(|error| {
                failed(format!(
                    "its output is not {}: {error}",
                    format_name(spec.format)
                ))
            })?;
            if let (Some(samples), Some(latency)) = (ran.samples, &spec.latency) {
                let samples = samples
                    .map_err(|error| failed(format!("it could not be timed: {}", error.0)))?;
                measured_latency = Latency::of(&samples, latency.percentile);
            }
            outputs.push(ran.output);
            traces.push(ran.trace);
        }
        let deterministic = (outputs.len() > 1).then(|| outputs.windows(2).all(|w| w[0] == w[1]));
        let input_text = String::from_utf8(bytes.clone())
            .ok()
            .filter(|text| text.len() <= INLINE_LIMIT);
        cases.push(GoldenCase {
            spec: spec.clone(),
            input_sha256: Sha256::of(&bytes),
            input_text,
            input_file: None,
            output: outputs.swap_remove(0),
            deterministic,
            measured_latency,
            loaded: Some(trace::loaded(traces, modules)),
            run_as: runner.run_as().map(str::to_string),
        });
    }
    Ok(cases)
}

/// A warning for a recorded case already over its latency budget in the baseline, so a
/// budget that no runtime meets is seen when it is set, not first in CI.
pub(crate) fn over_budget(case: &GoldenCase) -> Option<String> {
    let budget = case.spec.latency.as_ref()?.budget_ms?;
    let measured = case.measured_latency.as_ref()?;
    (measured.at_percentile_ms > budget).then(|| {
        format!(
            "golden case `{}`: p{} latency {} is already over its budget of {} here ({})",
            case.spec.name,
            measured.percentile,
            verdict::ms(measured.at_percentile_ms),
            verdict::ms(budget),
            verdict::summary(measured)
        )
    })
}

/// Where the target's outputs come from.
pub(crate) enum Target<'a> {
    /// Recorded in the target's lock.
    Recorded(&'a [GoldenCase]),
    /// Run now.
    Live(&'a dyn Runner),
}

/// Where inputs that are not inside the lock are: beside the lock (`input-file`), else at
/// their configured path.
pub(crate) struct Inputs {
    /// The baseline lock's folder, when the baseline is a lock file.
    pub(crate) lock_folder: Option<PathBuf>,
    /// The config's folder.
    pub(crate) config_folder: PathBuf,
}

/// Saves, beside the lock at `lock`, the inputs too large or not text enough to go inside
/// it, and records where (`input-file`).
pub(crate) fn save_inputs(
    cases: &mut [GoldenCase],
    lock: &Path,
    config_folder: &Path,
) -> Result<()> {
    let folder = crate::lock::containing_folder(lock);
    let lock_name = lock
        .file_name()
        .map_or_else(|| "lock".into(), |name| name.to_string_lossy().into_owned());
    for case in cases.iter_mut().filter(|case| case.input_text.is_none()) {
        let source = config_folder.join(&case.spec.input);
        let relative = format!(
            "{lock_name}.inputs/{}-{}",
            case.spec.name,
            file_name(&case.spec.input)
        );
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

/// The file name of an input path, `input` when it has none.
fn file_name(path: impl AsRef<Path>) -> String {
    path.as_ref().file_name().map_or_else(
        || "input".into(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Runs (or looks up) every baseline case in the target and judges its output; `modules`
/// maps a live run's imports to the target's distributions.
pub(crate) fn check(
    baseline: &[GoldenCase],
    target: Target<'_>,
    inputs: &Inputs,
    modules: &Modules,
) -> Result<Vec<Judged>> {
    let mut judged = Vec::with_capacity(baseline.len());
    for case in baseline {
        let (output, latency, loaded, run_as) = match &target {
            Target::Recorded(cases) => {
                match cases.iter().find(|other| other.spec.name == case.spec.name) {
                    Some(other) => (
                        Ok(other.output.clone()),
                        latency::recorded(case, other),
                        other.loaded.clone(),
                        other.run_as.clone(),
                    ),
                    None => (
                        Err(CaseError(
                            "the target lock has no output for this case".to_string(),
                        )),
                        None,
                        None,
                        None,
                    ),
                }
            }
            Target::Live(runner) => {
                let run_as = runner.run_as().map(str::to_string);
                match run_recorded(case, *runner, inputs)? {
                    Ok(ran) => (
                        Ok(ran.output),
                        latency::measured(case, ran.samples),
                        Some(trace::loaded([ran.trace], modules)),
                        run_as,
                    ),
                    Err(error) => (Err(error), None, None, run_as),
                }
            }
        };
        let mut judged_case = judge(case, output);
        judged_case.result.loaded = loaded;
        judged_case.result.run_as = run_as;
        if let Some(spec) = &case.spec.latency {
            let (result, problem) = latency::judge(case, spec, latency);
            judged_case.result.latency = Some(result);
            judged_case.latency_problem = problem;
        }
        judged.push(judged_case);
    }
    Ok(judged)
}

/// Runs a recorded case, with its input written out again when the lock holds it.
fn run_recorded(
    case: &GoldenCase,
    runner: &dyn Runner,
    inputs: &Inputs,
) -> Result<Result<Ran, CaseError>> {
    match input_path(case, inputs) {
        // The temp folder (when the lock held the input) lives until the case has run.
        Ok((_folder, path)) => runner.run(&case.spec, &path, true),
        Err(error) => Ok(Err(error)),
    }
}

/// The input file of a recorded case: written to a temp folder from the lock, or found
/// beside the lock or the config and checked against the recorded digest.
fn input_path(
    case: &GoldenCase,
    inputs: &Inputs,
) -> Result<(Option<tempfile::TempDir>, PathBuf), CaseError> {
    if let Some(text) = &case.input_text {
        let folder = tempfile::tempdir()
            .map_err(|error| CaseError(format!("cannot make a temp folder: {error}")))?;
        let path = folder.path().join(file_name(&case.spec.input));
        std::fs::write(&path, text)
            .map_err(|error| CaseError(format!("cannot write the input: {error}")))?;
        return Ok((Some(folder), path));
    }
    let path = match (&case.input_file, &inputs.lock_folder) {
        (Some(file), Some(lock_folder)) => lock_folder.join(file),
        _ => inputs.config_folder.join(&case.spec.input),
    };
    let bytes = std::fs::read(&path)
        .map_err(|error| CaseError(format!("cannot read input `{}`: {error}", path.display())))?;
    if Sha256::of(&bytes) != case.input_sha256 {
        return Err(CaseError(format!(
            "input `{}` changed since the baseline recorded it",
            path.display()
        )));
    }
    Ok((None, path))
}

/// Judges one output against the baseline's.
fn judge(case: &GoldenCase, output: Result<String, CaseError>) -> Judged {
    let name = &case.spec.name;
    let mut judged = Judged {
        result: CaseResult {
            name: name.clone(),
            status: CaseStatus::Error,
            values: 0,
            out_of_tolerance: 0,
            max_abs_error: 0.0,
            max_rel_error: 0.0,
            worst: None,
            latency: None,
            loaded: None,
            run_as: None,
        },
        expected: case.output.clone(),
        actual: None,
        problem: None,
        latency_problem: None,
    };
    let output = match output {
        Ok(output) => output,
        Err(CaseError(detail)) => {
            judged.problem = Some(format!("golden case `{name}`: {detail}"));
            return judged;
        }
    };
    judged.actual = Some(output.clone());
    let comparison = match parse_both(case, &output) {
        Ok((expected, actual)) => compare::compare(
            &expected,
            &actual,
            tolerance(&case.spec),
            &fields(&case.spec),
        ),
        Err(problem) => {
            judged.problem = Some(format!("golden case `{name}`: {problem}"));
            return judged;
        }
    };
    let result = &mut judged.result;
    result.values = comparison.values;
    result.out_of_tolerance = comparison.out_of_tolerance;
    result.max_abs_error = comparison.max_abs;
    result.max_rel_error = comparison.max_rel;
    result.worst = comparison.worst.clone();
    if comparison.passes() {
        result.status = CaseStatus::Pass;
    } else {
        result.status = CaseStatus::Mismatch;
        judged.problem = Some(mismatch_message(name, &comparison));
    }
    judged
}

/// Why a case's two outputs cannot be compared.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    /// The output recorded in the baseline's lock.
    #[error("the baseline's output is unreadable: {0}")]
    Baseline(#[source] compare::OutputError),
    /// The target's output, with its start.
    #[error("the output is not {} ({source}): `{}`", format_name(*format), head.trim())]
    Target {
        format: OutputFormat,
        head: String,
        #[source]
        source: compare::OutputError,
    },
}

/// Both outputs parsed, or why one could not be.
fn parse_both(
    case: &GoldenCase,
    output: &str,
) -> Result<(serde_json::Value, serde_json::Value), Unreadable> {
    let format = case.spec.format;
    let expected = parse(format, &case.output).map_err(Unreadable::Baseline)?;
    let actual = parse(format, output).map_err(|source| Unreadable::Target {
        format,
        head: output.chars().take(200).collect(),
        source,
    })?;
    Ok((expected, actual))
}

fn tolerance(spec: &GoldenSpec) -> Tolerance {
    Tolerance {
        rtol: spec.rtol,
        atol: spec.atol,
    }
}

fn fields(spec: &GoldenSpec) -> BTreeMap<String, Tolerance> {
    spec.fields
        .iter()
        .map(|(pointer, field)| {
            let tolerance = Tolerance {
                rtol: field.rtol,
                atol: field.atol,
            };
            (pointer.clone(), tolerance)
        })
        .collect()
}

fn mismatch_message(name: &str, comparison: &Comparison) -> String {
    match &comparison.structure {
        Some(structure) => {
            format!("golden case `{name}`: the output's structure differs: {structure}")
        }
        None => format!(
            "golden case `{name}`: {} of {} values out of tolerance \
             (max abs error {:.3e}, max rel error {:.3e}, worst at {})",
            comparison.out_of_tolerance,
            comparison.values,
            comparison.max_abs,
            comparison.max_rel,
            comparison.worst.as_deref().unwrap_or("/")
        ),
    }
}

fn parse(format: OutputFormat, text: &str) -> Result<serde_json::Value, compare::OutputError> {
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
fn substitute(command: &[String], input: &str) -> Vec<String> {
    command
        .iter()
        .map(|arg| arg.replace("{input}", input))
        .collect()
}
