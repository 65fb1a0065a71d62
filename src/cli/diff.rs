//! `envlock diff`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::terminal;
use crate::report::Format;
use crate::{Severity, Stop};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Operands: an existing file is a lock; `python:PATH` is a live interpreter;
anything else is an image reference in the local Docker engine (`ml-model:latest`,
`sha256:…`, `repo@sha256:…`). Interpreters and images are captured on the spot; when the
baseline lists models, the same models are hashed in the target (a relative path starts at
the image's WORKDIR; `[image-models]` in envlock.toml maps a dev path to another image path).

Examples:
  envlock diff dev.lock ml-model:latest
  envlock diff ml-model:1.4 ml-model:1.5 --format markdown
  envlock diff dev.lock ml-model:latest --format junit > envlock.xml

Exit codes: 0 nothing at or above --fail-on, 1 drift at or above it, 2 could not run."
)]
pub(super) struct Args {
    /// The reference runtime: a lock file, `python:PATH`, or an image.
    baseline: String,
    /// The runtime to check against it: a lock file, `python:PATH`, or an image.
    target: String,
    /// Read the policy and defaults from FILE instead of ./envlock.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// The gate: exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value = "error")]
    fail_on: Severity,
    /// Do not run the golden cases (recorded in the baseline lock, or `[[golden]]` of
    /// envlock.toml for a baseline captured on the spot).
    #[arg(long)]
    no_golden: bool,
    /// Capture images without running anything from them (static capture).
    #[arg(long)]
    no_exec: bool,
}

impl clap::ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &[Severity::Error, Severity::Warning, Severity::Info]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

pub(super) fn run(args: Args, stop: &Arc<Stop>) -> anyhow::Result<ExitCode> {
    let mut settings = super::settings::resolve(args.config.as_deref())?;
    settings.stop = stop.clone();
    settings.no_exec = args.no_exec;
    settings.golden = !args.no_golden;
    let checked = crate::check(&settings, &args.baseline, &args.target)?;
    stop.check()?;
    for warning in &checked.warnings {
        terminal::warning(warning);
    }
    for note in &checked.notes {
        terminal::note(note);
    }
    let report = &checked.report;
    anstream::print!("{}", report.render(args.format, args.fail_on));
    Ok(if report.fails(args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
