//! The gate, `check`: both operands captured (the target with the baseline's models), the
//! baseline's golden cases run in the target, the two locks diffed and the policy applied.

use crate::capture::{self, ImageSource, ModelsFrom, Session, Snapshot, Source};
use crate::error::{Error, Result};
use crate::lock::{self, Lock};
use crate::report::Report;
use crate::settings::Settings;
use crate::snapshot::{record_golden, runs_nothing, through_engine};
use crate::warning::{Warning, WarningCode};
use crate::{declared, diff, golden, verdict};

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// The report, after the policy.
    pub report: Report,
    /// How either side was captured, when people should know, one line each.
    pub notes: Vec<String>,
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
        // The command cases run in the target's probe container, beside the probe; not when
        // they ask for GPUs, which the probe's container has none of.
        let in_engine = matches!(target_source, Source::Image(ImageSource::Engine(_)));
        let shared = if settings.golden
            && settings.run_as.is_none()
            && settings.config.deploy.gpus.is_none()
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
    // Where the cases ran, for the report (GPUs asked for that the engine has none of).
    let mut golden_notes = Vec::new();
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
            let (judged, notes) = check_golden(
                settings,
                &session,
                &baseline_source,
                &base.lock,
                &target_source,
                &other,
                prerun,
            )?;
            golden_notes = notes;
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
    let deploy = &settings.config.deploy;
    findings.extend(diff::deploy_findings(
        &other.lock,
        deploy.driver.as_ref(),
        &deploy.gpu,
    ));
    findings.extend(golden_findings);
    match diff::loaded_distributions(&base.lock.golden, &cases) {
        Ok(loaded) => diff::mark_loaded(&mut findings, &loaded, [&base.lock, &other.lock]),
        Err(why) if settings.config.policy.scope == diff::Scope::Loaded => notes.push(format!(
            "`[policy] scope = \"loaded\"` did not apply, so every package finding gates: {why}"
        )),
        Err(_) => {}
    }
    let findings = settings.config.policy.apply(findings);
    let mut report = Report::new(
        baseline,
        target,
        findings,
        cases,
        settings.config.policy.cross_platform,
    )
    .with_warnings(warnings);
    report.notes.extend(golden_notes);
    Ok(Checked { report, notes })
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

/// Runs the baseline's golden cases in the target (or looks them up in a target lock), with
/// what the report should say of where they ran.
fn check_golden(
    settings: &Settings,
    session: &Session,
    baseline_source: &Source,
    baseline: &Lock,
    target_source: &Source,
    target: &Snapshot,
    prerun: golden::Prerun,
) -> Result<(Vec<golden::Judged>, Vec<String>)> {
    let inputs = golden_inputs(settings, baseline_source);
    let runner = golden::runner(target_source, &target.lock, settings, session, prerun)?;
    let notes = runner.iter().flat_map(|runner| runner.notes()).collect();
    let outputs = match &runner {
        Some(runner) => golden::Target::Live(runner.as_ref()),
        None => golden::Target::Recorded(&target.lock.golden),
    };
    golden::check(&baseline.golden, outputs, &inputs, &target.modules).map(|judged| (judged, notes))
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
