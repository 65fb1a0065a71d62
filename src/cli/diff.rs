//! `envlock diff`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Output;
use crate::diff::{self, Severity};
use crate::operand::Operand;
use crate::report::{Format, Report};
use crate::{config, golden};

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
pub struct Args {
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

pub fn run(args: Args, output: &Output) -> anyhow::Result<ExitCode> {
    let loaded = config::load(args.config.as_deref())?;
    let baseline_operand = Operand::parse(&args.baseline)?;
    let target_operand = Operand::parse(&args.target)?;
    let config_models = &loaded.config.models;
    let mut baseline =
        baseline_operand.load(&args.baseline, config_models, &loaded, args.no_exec)?;
    let golden_on = !args.no_golden;
    let specs = &loaded.config.golden;
    let baseline_is_image = matches!(baseline_operand, Operand::Image(_));
    if golden_on && baseline.lock.golden.is_empty() && !(args.no_exec && baseline_is_image) {
        baseline_operand.record_golden(&mut baseline, specs, &loaded.folder)?;
    }
    // The target is checked for the baseline's models, without being told.
    let models: Vec<String> = if baseline.lock.models.is_empty() {
        config_models.clone()
    } else {
        let models = &baseline.lock.models;
        models.iter().map(|model| model.path.clone()).collect()
    };
    let target = target_operand.load(&args.target, &models, &loaded, args.no_exec)?;
    for warning in baseline.warnings.iter().chain(&target.warnings) {
        output.warning(warning);
    }
    let mut findings = diff::diff(&baseline.lock, &target.lock);
    let mut cases = Vec::new();
    if golden_on && !baseline.lock.golden.is_empty() {
        if args.no_exec && matches!(target_operand, Operand::Image(_)) {
            output.warning("golden cases not run: `--no-exec` runs nothing from the image");
        } else {
            let inputs = golden::Inputs {
                lock_folder: match &baseline_operand {
                    Operand::Lock(path) => Some(crate::lock::containing_folder(path).to_path_buf()),
                    _ => None,
                },
                config_folder: loaded.folder.clone(),
            };
            let (results, golden_findings) =
                target_operand.check_golden(&baseline.lock.golden, &target.lock, &inputs)?;
            cases = results;
            findings.extend(golden_findings);
        }
    }
    let findings = loaded.config.policy.apply(findings);
    let mut report = Report::new(&args.baseline, &args.target, findings);
    report.golden = cases;
    let color = output.color && args.format == Format::Human && stdout_is_terminal();
    print!("{}", report.render(args.format, args.fail_on, color));
    Ok(if report.fails(args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}
