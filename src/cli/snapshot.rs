//! `envlock snapshot`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use crate::lock::{render_lock, write_lock};
use crate::operand::Operand;
use crate::{config, image, model, python, snapshot};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  envlock snapshot -o dev.lock
  envlock snapshot --python .venv/bin/python --model model/ -o dev.lock
  envlock snapshot --image ml-model:latest --model model/ -o image.lock

The interpreter is `--python`, else `python` in envlock.toml, else `$VIRTUAL_ENV/bin/python`,
else `python3` on PATH. The probe may take ENVLOCK_PROBE_TIMEOUT seconds (default 30).")]
pub struct Args {
    /// Python interpreter to capture (a path, or a command name on PATH).
    #[arg(long, value_name = "PATH", conflicts_with = "image")]
    python: Option<PathBuf>,
    /// Capture a Docker image of the local engine instead (never pulled). Its Python runs
    /// the probe in a locked-down container: no network, read-only, no capabilities.
    #[arg(long, value_name = "REF")]
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
    /// Write the lock to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args, output: &Output) -> anyhow::Result<ExitCode> {
    let loaded = config::load(args.config.as_deref())?;
    if let Some(path) = &args.output {
        check_output_folder(path)?;
    }
    let mut snapshot = match &args.image {
        Some(reference) => image::capture(&image::ImageRequest {
            reference: reference.clone(),
            models: loaded.image_models(if args.models.is_empty() {
                &loaded.config.models
            } else {
                &args.models
            }),
            no_exec: args.no_exec,
            pull: args.pull,
        })?,
        None => capture_python(&args, &loaded, output)?,
    };
    let operand = match &args.image {
        Some(reference) => Operand::Image(reference.clone()),
        None => Operand::Python(PathBuf::from(
            snapshot.lock.source.interpreter.clone().unwrap_or_default(),
        )),
    };
    if args.no_exec && !loaded.config.golden.is_empty() {
        output.warning("golden cases not run: `--no-exec` runs nothing from the image");
    } else {
        operand.record_golden(&mut snapshot, &loaded.config.golden, &loaded.folder)?;
    }
    for warning in &snapshot.warnings {
        output.warning(warning);
    }
    if let Some(path) = &args.output {
        crate::golden::save_inputs(&mut snapshot.lock.golden, path, &loaded.folder)?;
    }
    let lock = &snapshot.lock;
    let text = render_lock(lock);
    let summary = format!(
        "captured {} with {} packages, {} models and {} golden cases",
        match &lock.python {
            Some(python) => format!("Python {}", python.version),
            None => "no Python".to_string(),
        },
        lock.packages.len(),
        lock.models.len(),
        lock.golden.len()
    );
    match &args.output {
        Some(path) => {
            write_lock(path, &text)?;
            output.note(&format!("{summary} into `{}`", path.display()));
        }
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write the lock to stdout")?;
            output.note(&summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn capture_python(
    args: &Args,
    loaded: &config::Loaded,
    output: &Output,
) -> anyhow::Result<snapshot::Snapshot> {
    let explicit = args.python.clone().or_else(|| loaded.python());
    let interpreter = python::locate_interpreter(explicit.as_deref())?;
    let models: Vec<(String, PathBuf)> = if args.models.is_empty() {
        let folder = &loaded.folder;
        let models = &loaded.config.models;
        models.iter().map(|m| (m.clone(), folder.join(m))).collect()
    } else {
        let models = &args.models;
        models
            .iter()
            .map(|m| (m.clone(), PathBuf::from(m)))
            .collect()
    };
    let progress = Bar::new(output.terminal);
    let snapshot = snapshot::python(snapshot::PythonRequest {
        interpreter,
        models,
        progress: &progress,
    })?;
    progress.finish();
    Ok(snapshot)
}

/// Fails before any work when the lock could not be written at the end.
fn check_output_folder(path: &Path) -> Result<(), crate::Error> {
    let folder = crate::lock::containing_folder(path);
    if folder.is_dir() {
        return Ok(());
    }
    Err(crate::Error::Write {
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

impl model::Progress for Bar {
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
