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
//! - `cli/`: flags, `envlock.toml` and `ENVLOCK_*` resolved once into [`Settings`]; the only
//!   layer that prints, reads the process environment or picks exit codes.
//!
//! The API is two calls: [`snapshot`] and [`check`].

pub mod audit;
mod capture;
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
mod stop;
mod verdict;
mod warning;

use std::path::Path;

pub use capture::{ImageSource, Progress, Snapshot, Source};
pub use config::{load as load_config, Config, RunAs, DEFAULT_FILE as CONFIG_FILE};
pub use declared::{DeclaredFormat, DeclaredSource, Selection};
pub use diff::{Cause, Code, Finding, FindingLayer, Severity, Suspect};
pub use error::{EngineFault, Error, ImageProblem, Result};
pub use lock::Lock;
pub use report::{Report, ReportedCase};
pub use settings::{
    seconds, Environment, ImagePlatform, Settings, DEFAULT_ENGINE_TIMEOUT, DEFAULT_PROBE_TIMEOUT,
    DEFAULT_REGISTRY_TIMEOUT,
};
pub use stop::Stop;
pub use warning::{Warning, WarningCode};

use capture::{ModelsFrom, Session};

/// The pauses before each retry of a read that may fail for a moment, for `--help`: one
/// try more than pauses in all.
pub struct RetryPauses {
    /// Between tries of a registry request that failed with a 5xx, a 429 or a cut connection.
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

/// Captures `source` (a live interpreter or an image; a lock is read) with the models of
/// `settings`, and records its golden cases when `settings.golden` and the source can run
/// them. `progress` hears about model hashing.
pub fn snapshot(settings: &Settings, source: &Source, progress: &dyn Progress) -> Result<Snapshot> {
    let session = Session::new(settings);
    let source = &through_engine(source.clone(), settings);
    let from = match settings.models {
        Some(_) => ModelsFrom::CurrentFolder,
        None => ModelsFrom::ConfigFolder,
    };
    let models = settings.model_paths();
    let no_jobs = &capture::Jobs::default();
    let mut snapshot =
        capture::capture(source, models, from, settings, &session, progress, no_jobs)?;
    for model in &snapshot.lock.models {
        if let Some(summary) = model.unsafe_summary() {
            snapshot.warnings.push(Warning::new(
                WarningCode::ModelUnsafe,
                format!("loading model `{}` {summary}", model.path),
            ));
        }
    }
    record_golden(settings, source, &session, &mut snapshot)?;
    Ok(snapshot)
}

/// Writes `snapshot` to `path` (see [`lock::write_lock`]), with the golden inputs too large
/// for the lock saved beside it — unless `path` is a device or a FIFO, beside which nothing
/// is written.
pub fn write_snapshot(snapshot: &mut Snapshot, path: &Path, settings: &Settings) -> Result<()> {
    let special = std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file());
    if !special {
        golden::save_inputs(&mut snapshot.lock.golden, path, &settings.config_folder)?;
    }
    lock::write_lock(path, &lock::render_lock(&snapshot.lock))
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// The report, after the policy.
    pub report: Report,
    /// How either side was captured, when people should know, one line each.
    pub notes: Vec<String>,
}

/// The lock `text` names: a lock file, or a CycloneDX SBOM (`*.cdx.json`, `cyclonedx:PATH`)
/// read as one.
pub fn read_lock_or_sbom(text: &str) -> Result<Lock> {
    match Source::parse(text)? {
        Source::Sbom(path) => Ok(sbom::read_sbom(&path)?.0),
        _ => lock::read_lock(Path::new(text)),
    }
}

/// Compares `target` with `baseline` (each a lock file, `python:PATH` or an image): both are
/// captured (the target with the baseline's models, without being told), the baseline's
/// golden cases run in the target, and the policy applied. One engine connection serves it
/// all.
pub fn check(settings: &Settings, baseline: &str, target: &str) -> Result<Checked> {
    let session = Session::new(settings);
    let baseline_source = through_engine(Source::parse(baseline)?, settings);
    let target_source = through_engine(Source::parse(target)?, settings);
    if let Source::Declared(_) = target_source {
        return Err(Error::DeclaredTarget {
            operand: target.to_string(),
        });
    }
    let config_models = &settings.config.models.paths;
    let (base, mut other, prerun) = if let Source::Declared(declared) = &baseline_source {
        // The target first: what the project's lock requires depends on the target's
        // markers. A lock runs no golden cases: there is no runtime behind it.
        let no_jobs = &capture::Jobs::default();
        let other = capture_operand(
            target,
            &target_source,
            config_models,
            settings,
            &session,
            no_jobs,
        )?;
        let selected = declared::baseline(declared, Some(&other.lock), &settings.selection)?;
        let mut notes = selected.notes;
        if settings.golden && !settings.config.golden.is_empty() {
            notes.push(format!(
                "golden cases not run: `{baseline}` is a project's lock, with no runtime to give reference outputs; diff a snapshot of the dev runtime (`envlock snapshot -o dev.lock`) to run them"
            ));
        }
        let base = Snapshot::of(selected.lock, selected.warnings, notes);
        (base, other, golden::Prerun::new())
    } else {
        let mut base = capture_operand(
            baseline,
            &baseline_source,
            config_models,
            settings,
            &session,
            &capture::Jobs::default(),
        )?;
        if base.lock.golden.is_empty() {
            record_golden(settings, &baseline_source, &session, &mut base)?;
        }
        // The target is checked for the baseline's models.
        let models: Vec<String> = if base.lock.models.is_empty() {
            config_models.clone()
        } else {
            base.lock
                .models
                .iter()
                .map(|model| model.path.clone())
                .collect()
        };
        // The command cases run in the target's probe container, beside the probe.
        let in_engine = matches!(target_source, Source::Image(ImageSource::Engine(_)));
        let shared = if settings.golden
            && settings.run_as.is_none()
            && in_engine
            && !runs_nothing(settings, &target_source)
        {
            golden::shared(
                &base.lock.golden,
                &golden_inputs(settings, &baseline_source),
            )
        } else {
            golden::Shared::default()
        };
        let mut other = capture_operand(
            target,
            &target_source,
            &models,
            settings,
            &session,
            &shared.jobs,
        )?;
        let prerun = golden::outcomes(&shared, other.ran.take());
        (base, other, prerun)
    };
    let mut warnings = base.warnings;
    warnings.append(&mut other.warnings);
    let mut notes = base.notes;
    notes.append(&mut other.notes);
    let mut golden_findings = Vec::new();
    let mut cases = Vec::new();
    if settings.golden && !base.lock.golden.is_empty() {
        if runs_nothing(settings, &target_source) {
            warnings.push(Warning::new(
                WarningCode::GoldenNotRun,
                "golden cases not run: `--no-exec` runs nothing from the image",
            ));
        } else if let Some(why) = no_container(&target_source) {
            golden_findings = diff::golden_skipped(&base.lock.golden, &why);
        } else {
            let judged = check_golden(
                settings,
                &session,
                &baseline_source,
                &base.lock,
                &target_source,
                &other,
                prerun,
            )?;
            golden_findings = diff::golden_findings(&judged);
            cases = judged.into_iter().map(|case| case.result).collect();
        }
    }
    // What the target's runs mapped, before its numerics are compared.
    let mapped = cases
        .iter()
        .filter_map(|case: &verdict::CaseResult| case.loaded.as_ref());
    golden::trace::mark_mapped(&mut other.lock.numerics, mapped);
    let mut findings = diff::diff(&base.lock, &other.lock);
    findings.extend(golden_findings);
    match diff::loaded_distributions(&base.lock.golden, &cases) {
        Ok(loaded) => diff::mark_loaded(&mut findings, &loaded, [&base.lock, &other.lock]),
        Err(why) if settings.config.policy.scope == diff::Scope::Loaded => notes.push(format!(
            "`[policy] scope = \"loaded\"` did not apply, so every package finding gates: {why}"
        )),
        Err(_) => {}
    }
    let findings = settings.config.policy.apply(findings);
    Ok(Checked {
        report: Report::new(
            baseline,
            target,
            findings,
            cases,
            settings.config.policy.cross_platform,
        )
        .with_warnings(warnings),
        notes,
    })
}

/// A diff or audit operand read or captured; an image the engine lacks is an operand that
/// is neither a lock nor an image.
pub(crate) fn capture_operand(
    text: &str,
    source: &Source,
    models: &[String],
    settings: &Settings,
    session: &Session,
    jobs: &capture::Jobs,
) -> Result<Snapshot> {
    let silent = &capture::models::Silent;
    capture::capture(
        source,
        models,
        ModelsFrom::ConfigFolder,
        settings,
        session,
        silent,
        jobs,
    )
    .map_err(|error| match error {
        Error::ImageNotFound { .. } => Error::UnknownOperand {
            operand: text.to_string(),
        },
        other => other,
    })
}

/// Where the baseline's golden inputs are.
fn golden_inputs(settings: &Settings, baseline_source: &Source) -> golden::Inputs {
    golden::Inputs {
        lock_folder: match baseline_source {
            Source::Lock(path) => Some(lock::containing_folder(path).to_path_buf()),
            _ => None,
        },
        config_folder: settings.config_folder.clone(),
    }
}

/// Runs the baseline's golden cases in the target (or looks them up in a target lock).
fn check_golden(
    settings: &Settings,
    session: &Session,
    baseline_source: &Source,
    baseline: &Lock,
    target_source: &Source,
    target: &Snapshot,
    prerun: golden::Prerun,
) -> Result<Vec<golden::Judged>> {
    let inputs = golden_inputs(settings, baseline_source);
    let runner = golden::runner(target_source, &target.lock, settings, session, prerun)?;
    let outputs = match &runner {
        Some(runner) => golden::Target::Live(runner.as_ref()),
        None => golden::Target::Recorded(&target.lock.golden),
    };
    golden::check(&baseline.golden, outputs, &inputs, &target.modules)
}

/// With `--pull`, a registry's image is pulled into the engine and captured there, so that
/// golden cases can run in it.
fn through_engine(source: Source, settings: &Settings) -> Source {
    match source {
        Source::Image(ImageSource::Registry(reference)) if settings.pull => {
            Source::Image(ImageSource::Engine(reference))
        }
        other => other,
    }
}

/// Why golden cases cannot run in `source`: an image that is in no engine.
fn no_container(source: &Source) -> Option<String> {
    let image = match source {
        Source::Image(image) => image,
        Source::Sbom(path) => {
            return Some(format!(
                "`{}` is an SBOM, with no runtime to run golden cases in; diff the image or interpreter it describes",
                path.display()
            ))
        }
        _ => return None,
    };
    let fix = match image {
        ImageSource::Engine(_) => return None,
        ImageSource::Registry(_) => {
            "pass `--pull` to have the Docker engine pull it and run them there"
        }
        ImageSource::DockerArchive(_) => {
            "load it into the Docker engine (`docker load -i PATH`) and diff against that image"
        }
        ImageSource::OciDir(_) | ImageSource::OciArchive(_) => {
            "copy it into the Docker engine (`skopeo copy oci:PATH docker-daemon:NAME:TAG`) and diff against that image"
        }
    };
    Some(format!(
        "`{image}` is not in a Docker engine, where golden cases run in a container; {fix}"
    ))
}

/// Whether `source` is an image that `--no-exec` forbids running anything in.
fn runs_nothing(settings: &Settings, source: &Source) -> bool {
    settings.no_exec && matches!(source, Source::Image(_))
}

/// Records the config's golden cases in `snapshot` when asked for and `source` can run them.
fn record_golden(
    settings: &Settings,
    source: &Source,
    session: &Session,
    snapshot: &mut Snapshot,
) -> Result<()> {
    let specs = &settings.config.golden;
    if !settings.golden || specs.is_empty() {
        return Ok(());
    }
    if runs_nothing(settings, source) {
        snapshot.warnings.push(Warning::new(
            WarningCode::GoldenNotRun,
            "golden cases not run: `--no-exec` runs nothing from the image",
        ));
        return Ok(());
    }
    let prerun = golden::Prerun::new();
    if let Some(runner) = golden::runner(source, &snapshot.lock, settings, session, prerun)? {
        snapshot.lock.golden = golden::record(
            specs,
            &settings.config_folder,
            runner.as_ref(),
            &snapshot.modules,
        )?;
        let mapped = snapshot
            .lock
            .golden
            .iter()
            .filter_map(|case| case.loaded.as_ref());
        golden::trace::mark_mapped(&mut snapshot.lock.numerics, mapped);
        snapshot.warnings.extend(
            snapshot
                .lock
                .golden
                .iter()
                .filter_map(golden::over_budget)
                .map(|text| Warning::new(WarningCode::GoldenOverBudget, text)),
        );
    }
    Ok(())
}
