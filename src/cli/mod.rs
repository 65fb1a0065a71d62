//! The command line: parses flags, runs a command, prints, and picks the exit code.
//! Everything below this module returns values; only this layer writes to the terminal.

mod diff;
mod output;
mod snapshot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::Output;

/// Lock a Python ML runtime and catch drift between a dev environment and its Docker image.
///
/// Exit codes: 0 ran and found nothing at or above the gate, 1 found drift, 2 could not run.
#[derive(Debug, Parser)]
#[command(name = "envlock", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture a Python runtime (interpreter, packages, platform, environment, models) into a lock.
    Snapshot(snapshot::Args),
    /// Compare two runtimes (locks, interpreters, images) and gate on the drift.
    Diff(diff::Args),
}

/// Runs envlock with the process's arguments and returns its exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints usage errors to stderr (exit 2) and --help/--version to stdout (exit 0).
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let output = Output::detect();
    let result = match cli.command {
        Command::Snapshot(args) => snapshot::run(args, &output),
        Command::Diff(args) => diff::run(args, &output),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            output.error(&error);
            ExitCode::from(2)
        }
    }
}
