//! `envlock diff`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::terminal;
use envlock::report::Format;
use envlock::{Severity, Stop};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Operands: an existing file is a lock; `python:PATH` is a live interpreter;
an image is `docker:REF` or a bare reference in the local Docker engine (`ml-model:latest`,
`sha256:…`, `repo@sha256:…`), `registry:HOST/REPO:TAG`, `docker-archive:PATH`, `oci-dir:PATH`
or `oci-archive:PATH`. The baseline may be the project's own lock: `uv.lock`, `pylock.toml`,
`pylock.NAME.toml`, `poetry.lock` or `requirements*.txt` of exact pins (any name with a
`uv-lock:`, `pylock:`, `poetry-lock:` or `requirements:` prefix): what it requires for the
target (markers evaluated against the target's Python and platform; extras and dependency
groups only with `--extra` and `--group`) is checked against what the target has. Golden cases need a container: against an image that is not in an
engine they are reported as skipped (`golden-skipped`; `--pull` pulls a `registry:` image
into the engine first). Interpreters and images are captured on the spot; when the
baseline lists models, the same models are hashed in the target (a relative path starts at
the image's WORKDIR; `[image-models]` in envlock.toml maps a dev path to another image path).

Examples:
  envlock diff dev.lock ml-model:latest
  envlock diff ml-model:1.4 ml-model:1.5 --format markdown
  envlock diff registry:registry.example.com/ml:1.4 registry:registry.example.com/ml:1.5
  envlock diff dev.lock ml-model:latest --format junit > envlock.xml
  envlock diff dev.lock ml-model:latest --report junit:envlock.xml --report markdown:summary.md
  envlock diff uv.lock ml-model:latest --extra gpu
  envlock diff requirements.txt registry:registry.example.com/ml:1.5 --no-exec

Exit codes: 0 nothing at or above --fail-on, 1 drift at or above it, 2 could not run."
)]
pub(super) struct Args {
    /// The reference runtime: a lock file, `python:PATH`, an image, or the project's own
    /// lock (uv.lock, pylock.toml, poetry.lock, requirements.txt).
    baseline: String,
    /// The runtime to check against it: a lock file, `python:PATH`, or an image.
    target: String,
    /// Read the policy and defaults from FILE instead of ./envlock.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The format of the report on standard output.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Also write the report as FORMAT to PATH (`junit:envlock.xml`, `markdown:summary.md`,
    /// `json:…`, `human:…`); repeatable. Each file is written whole or not at all, from the
    /// same run: one capture feeds every report.
    #[arg(long, value_name = "FORMAT:PATH", value_parser = parse_report)]
    report: Vec<(Format, PathBuf)>,
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
    /// Pull image operands into the engine first (a `registry:` one is then captured from
    /// the engine, where its golden cases run).
    #[arg(long)]
    pull: bool,
    /// Run the built-in numeric kernels in runtimes captured on the spot (see `snapshot
    /// --numerics-check`) and compare their digests (`numerics-kernel`).
    #[arg(long)]
    numerics_check: bool,
    /// The baseline was captured on another OS or architecture on purpose (a laptop's lock
    /// against a Linux image): the platform findings and everything they explain are
    /// `info`; versions, models and golden outputs still gate. As `[policy] cross-platform`.
    #[arg(long)]
    cross_platform: bool,
    /// The NVIDIA driver of the nodes the target is deployed to (`nvidia-smi`'s `Driver
    /// Version`, e.g. `550.54.15`): a CUDA runtime in the target that needs a newer one is
    /// `cuda-driver`. As `[deploy] driver`.
    #[arg(long, value_name = "VERSION")]
    driver: Option<envlock::DriverVersion>,
    /// The GPU architecture of the nodes the target is deployed to (`sm_80`, or the compute
    /// capability `8.0`); repeatable or comma-separated: a CUDA library of the target
    /// without code that runs on it is `gpu-arch`. As `[deploy] gpu`, which it replaces.
    #[arg(long, value_name = "ARCH", value_delimiter = ',')]
    gpu: Vec<envlock::GpuArch>,
    /// A baseline from the project's lock also requires the packages of its extra NAME
    /// (`[project.optional-dependencies]`); repeatable.
    #[arg(long, value_name = "NAME")]
    extra: Vec<String>,
    /// A baseline from the project's lock also requires its dependency group NAME (`dev`,
    /// `test`); repeatable. Without it no group is required, as `uv sync --no-dev` installs.
    #[arg(long, value_name = "NAME")]
    group: Vec<String>,
    #[command(flatten)]
    image_args: super::ImageArgs,
}

/// A `--report` that is not `FORMAT:PATH`, for clap to print as a usage error.
#[derive(Debug)]
enum BadReport {
    /// No `:` in it.
    NoFormat(String),
    /// The part before the `:` names no report format.
    UnknownFormat(String),
    /// Nothing after the `:`.
    NoPath(String),
}

impl std::fmt::Display for BadReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadReport::NoFormat(text) => write!(
                formatter,
                "`{text}` is not FORMAT:PATH (e.g. `junit:envlock.xml`)"
            ),
            BadReport::UnknownFormat(format) => write!(
                formatter,
                "`{format}` is not a report format: use human, json, markdown or junit"
            ),
            BadReport::NoPath(text) => {
                write!(formatter, "`{text}` names no file after the format")
            }
        }
    }
}

impl std::error::Error for BadReport {}

/// `FORMAT:PATH` of `--report`.
fn parse_report(text: &str) -> Result<(Format, PathBuf), BadReport> {
    let (format, path) = text
        .split_once(':')
        .ok_or_else(|| BadReport::NoFormat(text.to_string()))?;
    let format = <Format as clap::ValueEnum>::from_str(format, true)
        .map_err(|_| BadReport::UnknownFormat(format.to_string()))?;
    if path.is_empty() {
        return Err(BadReport::NoPath(text.to_string()));
    }
    Ok((format, PathBuf::from(path)))
}

pub(super) fn run(args: Args, stop: &Arc<Stop>) -> anyhow::Result<ExitCode> {
    if let Some(path) = twice(&args.report) {
        anyhow::bail!(
            "`--report` names `{}` twice: give each report its own file",
            path.display()
        );
    }
    let mut settings = super::settings::resolve(args.config.as_deref())?;
    settings.stop = stop.clone();
    settings.no_exec = args.no_exec;
    settings.golden = !args.no_golden;
    settings.pull = args.pull;
    settings.numerics_check = args.numerics_check;
    settings.config.policy.cross_platform |= args.cross_platform;
    if let Some(driver) = args.driver {
        settings.config.deploy.driver = Some(driver);
    }
    if !args.gpu.is_empty() {
        settings.config.deploy.gpu = args.gpu;
    }
    settings.selection = envlock::Selection {
        extras: args.extra,
        groups: args.group,
    };
    args.image_args.apply(&mut settings)?;
    let checked = envlock::check(&settings, &args.baseline, &args.target)?;
    stop.check()?;
    for warning in &checked.report.warnings {
        terminal::warning(&warning.message);
    }
    for note in &checked.notes {
        terminal::note(note);
    }
    let report = &checked.report;
    for (format, path) in &args.report {
        let text = report.render(*format, args.fail_on);
        // Files get no colour, whatever the terminal.
        let plain = anstream::adapter::strip_str(&text).to_string();
        envlock::lock::write_text(path, &plain)?;
    }
    anstream::print!("{}", report.render(args.format, args.fail_on));
    Ok(if report.fails(args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A path that two `--report`s name.
fn twice(reports: &[(Format, PathBuf)]) -> Option<&PathBuf> {
    reports
        .iter()
        .enumerate()
        .find(|(index, (_, path))| reports[..*index].iter().any(|(_, seen)| seen == path))
        .map(|(_, (_, path))| path)
}
