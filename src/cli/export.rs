//! `envlock export`.

use std::path::PathBuf;
use std::process::ExitCode;

use envlock::export::{ExportFormat, Stamp};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  envlock export dev.lock --format requirements -o requirements.lock.txt
  envlock export dev.lock --format pylock -o pylock.toml
  envlock export image.lock --format cyclonedx -o ml-model-42.cdx.json

Every installed distribution of the lock is written with its exact version; direct installs
keep their source (`name @ URL`, a VCS commit, a folder, `-e` for editable ones). Hashes are
written only when the lock knows one for every package: installers record an archive's hash
for direct URL installs only, and pip checks hashes on every line or on none.

`cyclonedx` writes a CycloneDX 1.6 JSON SBOM: the image or interpreter as the document's
component, every distribution (`pkg:pypi`), conda and system package (`pkg:conda`,
`pkg:deb`, `pkg:rpm`, `pkg:apk`), each native numerics library with its SHA-256, and each
model as a `machine-learning-model` with its SHA-256, format and writer. What CycloneDX has
no field for (the RECORD digest, the installer, a direct URL) is an `envlock:` property.
Two exports of one lock are byte-identical: the serial number comes from the lock's content,
and there is no timestamp unless `--timestamp` asks for one. The SBOM is an operand again:
`envlock diff ml-model-42.cdx.json ml-model:43`, and can be exported in turn
(`envlock export release-41.cdx.json --format requirements`).")]
pub(super) struct Args {
    /// The lock to export (or a CycloneDX SBOM: `*.cdx.json`, `cyclonedx:PATH`).
    lock: String,
    /// What to write.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write to FILE (whole or not at all) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// cyclonedx: date the document (`SOURCE_DATE_EPOCH` when set, else now).
    #[arg(long)]
    timestamp: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.timestamp && args.format != ExportFormat::Cyclonedx {
        anyhow::bail!("`--timestamp` dates a CycloneDX document: use it with `--format cyclonedx`");
    }
    let stamp = if args.timestamp {
        Stamp(Some(timestamp()?))
    } else {
        Stamp(None)
    };
    let lock = envlock::read_lock_or_sbom(&args.lock)?;
    let text = envlock::export::export(&lock, args.format, stamp);
    match &args.output {
        Some(path) => envlock::lock::write_text(path, &text)?,
        None => anstream::print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `SOURCE_DATE_EPOCH` (reproducible builds), else the current time, in seconds.
fn timestamp() -> anyhow::Result<u64> {
    // 9999-12-31T23:59:59Z, the last time an RFC 3339 date-time can say.
    const LAST: u64 = 253_402_300_799;
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(seconds) if seconds <= LAST => Ok(seconds),
            _ => anyhow::bail!(
                "`SOURCE_DATE_EPOCH={text}` is not a number of seconds since 1970 before the year 10000"
            ),
        },
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())),
    }
}
