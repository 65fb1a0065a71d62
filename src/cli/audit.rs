//! `envlock audit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::terminal;
use envlock::audit::{Audit, AuditFormat, Focus, Shard};
use envlock::Stop;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Operands: lock files, `python:PATH`, images, and CycloneDX SBOMs
(`cyclonedx:PATH`, `*.cdx.json`), as for `envlock diff`, and projects' own locks (uv.lock,
pylock.toml, poetry.lock, requirements.txt), selected for the first runtime among the
operands. A `registry:HOST/REPO` operand with no tag stands for the repository's tags
(listed through the registry's API, page by page), narrowed by `--tags`, in version order
where tags are versions.
Each is captured (images of the engine with their own throwaway containers, `--jobs` at a
time, tags sharing their base layers; nothing runs with `--no-exec`), then one row is
printed per fact that differs across them: the Python, the platform, each package, conda
and system package, each model of envlock.toml's `models`.

Fleets: `--shard K/N` captures every N-th operand from the K-th, so N machines (a CI
matrix, a Kubernetes Indexed Job: `--shard /N` takes K from JOB_COMPLETION_INDEX) split one
audit. With `--format json` a shard writes its part and what the whole audit was;
`envlock audit --merge *.json` checks that they are the N parts of one audit and prints the
matrix an unsharded run prints, byte for byte.

Examples:
  envlock audit ml-model:1.3 ml-model:1.4 ml-model:1.5
  envlock audit dev.lock ml-model:latest --package 'numpy' --package 'torch*' --all
  envlock audit registry:registry.example.com/ml-model --tags 'v1.*' --package numpy
  envlock audit registry:registry.example.com/ml-model --shard 2/4 --format json > part-2.json
  envlock audit --merge part-*.json --format markdown

Exit codes: 0 the matrix was printed, 2 an operand could not be captured, or a shard spec,
a repository, or the files to merge were wrong."
)]
pub(super) struct Args {
    /// The runtimes to compare: lock files, `python:PATH`, images, SBOMs, repositories.
    #[arg(required_unless_present = "merge", num_args = 1..)]
    operands: Vec<String>,
    /// Only the tags of a `registry:HOST/REPO` operand that match GLOB (`*`, `?`); repeatable.
    #[arg(long, value_name = "GLOB")]
    tags: Vec<String>,
    /// Audit every N-th operand from the K-th (K from 1), after tags are listed; `/N`
    /// takes K from JOB_COMPLETION_INDEX (from 0).
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Join the JSON outputs of every shard of one audit into its matrix.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["operands", "tags", "shard", "package", "all", "no_exec", "extra", "group", "jobs"])]
    merge: Vec<PathBuf>,
    /// How many operands to capture at once (default: the number of CPUs).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: AuditFormat,
    /// Write to FILE (whole or not at all) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
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
    if !args.merge.is_empty() {
        let text = merge(&args.merge, args.format)?;
        return print(&text, args.output.as_deref());
    }
    let mut settings = super::settings::resolve(args.config.as_deref())?;
    settings.stop = stop.clone();
    settings.no_exec = args.no_exec;
    settings.golden = false;
    settings.selection = envlock::Selection {
        extras: args.extra.clone(),
        groups: args.group.clone(),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        anyhow::bail!("`--jobs 0` captures nothing: give 1 or more");
    }
    // A bad shard spec is told before any registry is asked.
    let job_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let shard = args
        .shard
        .as_deref()
        .map(|spec| Shard::parse(spec, job_index.as_deref()))
        .transpose()?;
    let (operands, notes) = envlock::audit::expand(&settings, &args.operands, &args.tags)?;
    for note in &notes {
        terminal::note(note);
    }
    let focus = Focus {
        all: args.all,
        packages: args.package,
    };
    let audit = Audit {
        envlock: format!("envlock {}", env!("CARGO_PKG_VERSION")),
        models: settings.config.models.paths.clone(),
        operands,
        focus,
        tags: args.tags,
        no_exec: args.no_exec,
        extras: args.extra,
        groups: args.group,
    };
    let own = match shard {
        Some(shard) => {
            // A project's lock is selected for the first runtime of the whole audit, which
            // another shard may hold.
            let declared = audit.operands.iter().find(|operand| {
                matches!(
                    envlock::Source::parse(operand),
                    Ok(envlock::Source::Declared(_))
                )
            });
            if let Some(declared) = declared {
                return Err(envlock::Error::InvalidShard {
                    spec: args.shard.unwrap_or_default(),
                    detail: format!(
                        "`{declared}` is a project's lock, selected for the first runtime among the operands, which another shard may hold; audit it unsharded, or shard the runtimes alone"
                    ),
                }
                .into());
            }
            let own = envlock::audit::own_operands(&audit, shard);
            terminal::note(&format!(
                "shard {}/{}: {} of {} operands",
                shard.index,
                shard.count,
                own.len(),
                audit.operands.len()
            ));
            own
        }
        None => audit.operands.clone(),
    };
    let (locks, warnings) = envlock::audit::capture_all(&settings, &own, jobs)?;
    stop.check()?;
    for warning in &warnings {
        terminal::warning(warning);
    }
    let text = match (shard, args.format) {
        (Some(shard), AuditFormat::Json) => envlock::audit::shard_output(&audit, shard, &locks),
        _ => {
            let matrix = envlock::audit::matrix(&own, &locks, &audit.focus);
            envlock::audit::render(&matrix, args.format)
        }
    };
    print(&text, args.output.as_deref())
}

/// `text` to `output`, or to standard output.
fn print(text: &str, output: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    match output {
        Some(path) => envlock::lock::write_text(path, text)?,
        None => anstream::print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `--merge`: the shards' JSON outputs, read whole, joined.
fn merge(files: &[PathBuf], format: AuditFormat) -> anyhow::Result<String> {
    // A shard's output is envlock's own, but the files come from elsewhere: bounded.
    const LIMIT: u64 = 256 << 20;
    let mut read = Vec::with_capacity(files.len());
    for file in files {
        let failed = |source| envlock::Error::Read {
            path: file.clone(),
            source,
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(file).map_err(failed)?, LIMIT + 1),
            &mut bytes,
        )
        .map_err(failed)?;
        if bytes.len() as u64 > LIMIT {
            anyhow::bail!(
                "`{}` is larger than {} MiB: not the output of an audit's shard",
                file.display(),
                LIMIT >> 20
            );
        }
        read.push((file.display().to_string(), bytes));
    }
    let matrix = envlock::audit::merge(&read)?;
    Ok(envlock::audit::render(&matrix, format))
}
