//! `envlock audit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::terminal;
use crate::audit::{AuditFormat, Focus};
use crate::Stop;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Operands: lock files, `python:PATH`, and images, as for `envlock diff`, and
projects' own locks (uv.lock, pylock.toml, poetry.lock, requirements.txt), selected for the
first runtime among the operands.
Each is captured (images of the engine with their own throwaway containers, `--jobs` at a
time; nothing runs with `--no-exec`), then one row is printed per fact that differs across
them: the Python, the platform, each package, conda and system package, each model of
envlock.toml's `models`.

Examples:
  envlock audit ml-model:1.3 ml-model:1.4 ml-model:1.5
  envlock audit dev.lock ml-model:latest --package 'numpy' --package 'torch*' --all
  envlock audit $(docker images --format '{{.Repository}}:{{.Tag}}' ml-model) --format csv

Exit codes: 0 the matrix was printed, 2 an operand could not be captured."
)]
pub(super) struct Args {
    /// The runtimes to compare: lock files, `python:PATH`, images.
    #[arg(required = true, num_args = 1..)]
    operands: Vec<String>,
    /// How many operands to capture at once (default: the number of CPUs).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: AuditFormat,
    /// Only the package rows (Python, conda, system) whose names match GLOB; repeatable.
    #[arg(long, value_name = "GLOB")]
    package: Vec<String>,
    /// Also show the rows on which every runtime agrees.
    #[arg(long)]
    all: bool,
    /// Read models and the image settings from FILE instead of ./envlock.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Capture images without running anything from them (static capture).
    #[arg(long)]
    no_exec: bool,
    /// A project's lock among the operands also requires its extra NAME; repeatable.
    #[arg(long, value_name = "NAME")]
    extra: Vec<String>,
    /// A project's lock among the operands also requires its dependency group NAME; repeatable.
    #[arg(long, value_name = "NAME")]
    group: Vec<String>,
}

pub(super) fn run(args: Args, stop: &Arc<Stop>) -> anyhow::Result<ExitCode> {
    let mut settings = super::settings::resolve(args.config.as_deref())?;
    settings.stop = stop.clone();
    settings.no_exec = args.no_exec;
    settings.golden = false;
    settings.selection = crate::Selection {
        extras: args.extra,
        groups: args.group,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        anyhow::bail!("`--jobs 0` captures nothing: give 1 or more");
    }
    let (locks, warnings) = crate::audit::capture_all(&settings, &args.operands, jobs)?;
    stop.check()?;
    for warning in &warnings {
        terminal::warning(warning);
    }
    let focus = Focus {
        all: args.all,
        packages: args.package,
    };
    let matrix = crate::audit::matrix(&args.operands, &locks, &focus);
    anstream::print!("{}", crate::audit::render(&matrix, args.format));
    Ok(ExitCode::SUCCESS)
}
