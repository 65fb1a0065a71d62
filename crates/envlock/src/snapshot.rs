//! The `snapshot` call: a source captured into a lock, with its golden cases recorded when
//! it can run them; and the lock written with the golden inputs beside it.

use std::path::Path;

use crate::capture::{self, ImageSource, ModelsFrom, Progress, Session, Snapshot, Source};
use crate::error::Result;
use crate::settings::Settings;
use crate::warning::{Warning, WarningCode};
use crate::{golden, lock};

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

/// With `--pull`, a registry's image is pulled into the engine and captured there, so that
/// golden cases can run in it.
pub(crate) fn through_engine(source: Source, settings: &Settings) -> Source {
    match source {
        Source::Image(ImageSource::Registry(reference)) if settings.pull => {
            Source::Image(ImageSource::Engine(reference))
        }
        other => other,
    }
}

/// Whether `source` is an image that `--no-exec` forbids running anything in.
pub(crate) fn runs_nothing(settings: &Settings, source: &Source) -> bool {
    settings.no_exec && matches!(source, Source::Image(_))
}

/// Records the config's golden cases in `snapshot` when asked for and `source` can run them.
pub(crate) fn record_golden(
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
        snapshot.notes.extend(runner.notes());
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
