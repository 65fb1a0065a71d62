//! `envlock snapshot`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::terminal;
use envlock::lock::{render_lock, Lock};
use envlock::{Progress, Source, Stop};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  envlock snapshot -o dev.lock
  envlock snapshot --python .venv/bin/python --model model/ -o dev.lock
  envlock snapshot --image ml-model:latest --model model/ -o image.lock
  envlock snapshot --image ml-model:latest --python /opt/venv/bin/python
  envlock snapshot --image registry:registry.example.com/ml-model:1.4 --platform linux/amd64
  envlock snapshot --image docker-archive:ml-model.tar --model model/
  envlock snapshot --image ml-model:latest --layers

Images: `docker:REF` or a bare reference (the local engine, or `DOCKER_HOST`),
`registry:HOST/REPO:TAG` or `@sha256:…` (the registry itself, no engine; credentials from the
Docker config), `docker-archive:PATH` (`docker save`), `oci-dir:PATH`, `oci-archive:PATH`.
Images read from their layers are captured statically, each package and model attributed to
the layer that wrote it.

The interpreter is `--python`, else `python` in envlock.toml, else `$VIRTUAL_ENV/bin/python`,
else `python3` on PATH. The probe may take ENVLOCK_PROBE_TIMEOUT seconds (default 30).")]
pub(super) struct Args {
    /// Python interpreter to capture (a path, or a command name on PATH). With --image, a
    /// path inside the image or a name on its PATH; without it, the image's own
    /// ENTRYPOINT/CMD decides (see docs/images.md, "Which Python is captured").
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Capture an image instead: of the engine (`REF`, `docker:REF`; never pulled), whose
    /// Python runs the probe in a locked-down container (no network, read-only, no
    /// capabilities); or read from its layers (`registry:`, `docker-archive:`, `oci-dir:`,
    /// `oci-archive:`), where nothing runs.
    #[arg(long, value_name = "SOURCE")]
    image: Option<String>,
    /// With --image: run nothing from the image; read its files through the API only.
    #[arg(long, requires = "image")]
    no_exec: bool,
    /// With --image: pull the image from its registry first (envlock never pulls otherwise).
    #[arg(long, requires = "image")]
    pull: bool,
    /// Model file or folder to hash; repeat for several. Replaces `models` of envlock.toml.
    /// With --image, a path inside the image; a relative one starts at its WORKDIR.
    #[arg(long = "model", value_name = "PATH")]
    models: Vec<String>,
    /// Read defaults from FILE instead of ./envlock.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also run a built-in set of small numeric kernels (matmul, dot, sum, exp/log/sin/tanh,
    /// solve) with the runtime's numpy and record their bit-exact digests: catches a BLAS or
    /// CPU change with no golden case. It imports numpy (in an image, in the probe's
    /// locked-down container), so it is opt-in.
    #[arg(long)]
    numerics_check: bool,
    #[command(flatten)]
    image_args: super::ImageArgs,
    /// Write the lock to FILE instead of stdout: a file is replaced atomically (keeping its
    /// mode), a symlink's target is written, a device or FIFO is written to directly.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(super) fn run(args: Args, stop: &Arc<Stop>) -> anyhow::Result<ExitCode> {
    let mut settings = super::settings::resolve(args.config.as_deref())?;
    settings.stop = stop.clone();
    settings.no_exec = args.no_exec;
    settings.pull = args.pull;
    settings.numerics_check = args.numerics_check;
    args.image_args.apply(&mut settings)?;
    if !args.models.is_empty() {
        settings.models = Some(args.models.clone());
    }
    if let Some(path) = &args.output {
        check_output_folder(path)?;
    }
    let source = match &args.image {
        Some(reference) => {
            settings.image_python = args
                .python
                .as_ref()
                .map(|python| python.to_string_lossy().into_owned());
            Source::Image(envlock::ImageSource::parse(reference)?)
        }
        None => Source::Python(args.python.clone()),
    };
    let progress = Bar::new(std::io::stderr().is_terminal());
    let mut snapshot = envlock::snapshot(&settings, &source, &progress)?;
    progress.finish();
    for warning in &snapshot.warnings {
        terminal::warning(&warning.message);
    }
    for note in &snapshot.notes {
        terminal::note(note);
    }
    let summary = summary(&snapshot.lock);
    // Stopped while capturing: no lock at all, rather than one of a run cut short.
    stop.check()?;
    match &args.output {
        Some(path) => {
            envlock::write_snapshot(&mut snapshot, path, &settings)?;
            terminal::note(&format!("{summary} into `{}`", path.display()));
        }
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(render_lock(&snapshot.lock).as_bytes())
                .context("cannot write the lock to stdout")?;
            terminal::note(&summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(lock: &Lock) -> String {
    format!(
        "captured {} with {} packages, {} models and {} golden cases",
        match &lock.python {
            Some(python) => format!("Python {}", python.version),
            None => "no Python".to_string(),
        },
        lock.packages.len(),
        lock.models.len(),
        lock.golden.len()
    )
}

/// Fails before any work when the lock could not be written at the end.
fn check_output_folder(path: &Path) -> envlock::Result<()> {
    let folder = envlock::lock::containing_folder(path);
    if folder.is_dir() {
        return Ok(());
    }
    Err(envlock::Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("folder `{}` does not exist", folder.display()),
        ),
    })
}

/// A progress bar for model hashing, drawn only on a terminal and only for large models
/// (small ones finish before a bar would be readable).
struct Bar {
    enabled: bool,
    bar: OnceLock<ProgressBar>,
}

const BAR_THRESHOLD: u64 = 256 << 20;

impl Bar {
    fn new(enabled: bool) -> Bar {
        Bar {
            enabled,
            bar: OnceLock::new(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        if !self.enabled || total_bytes < BAR_THRESHOLD {
            return;
        }
        let bar = ProgressBar::new(total_bytes).with_style(
            ProgressStyle::with_template(
                "hashing models {bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .expect("the template is valid"),
        );
        let _ = self.bar.set(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.get() {
            bar.inc(bytes);
        }
    }
}
