//! `envlock export`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::export::ExportFormat;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  envlock export dev.lock --format requirements -o requirements.lock.txt
  envlock export dev.lock --format pylock -o pylock.toml

Every installed distribution of the lock is written with its exact version; direct installs
keep their source (`name @ URL`, a VCS commit, a folder, `-e` for editable ones). Hashes are
written only when the lock knows one for every package: installers record an archive's hash
for direct URL installs only, and pip checks hashes on every line or on none.")]
pub(super) struct Args {
    /// The lock to export.
    lock: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write to FILE (whole or not at all) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let lock = crate::lock::read_lock(&args.lock)?;
    let text = crate::export::export(&lock, args.format);
    match &args.output {
        Some(path) => crate::lock::write_text(path, &text)?,
        None => anstream::print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
