//! Capturing a live Python runtime: ask the interpreter once (the probe), then read its
//! distributions in Rust.

mod cache;
pub(crate) mod probe;

use crate::warning::{Warning, WarningCode};
use std::path::{Path, PathBuf};

use super::fs::{host::HostFiles, Files};
use super::models::{hash_models, Progress};
use super::read::conda;
use super::read::distributions::{self as metadata, read_sys_path, Found};
use super::read::imports;
use super::{env, numerics, platform, Snapshot};
use crate::error::{Error, Result};
use crate::lock::{
    CondaPackage, Header, Lock, Package, Platform, PthFile, Python, SelectedBy, Source, SourceKind,
};
use crate::settings::{Environment, Settings};

/// Everything a Python runtime contributes to a lock.
#[derive(Debug)]
pub(crate) struct Interpreter {
    /// The interpreter's facts.
    pub(crate) python: Python,
    /// The platform it runs on.
    pub(crate) platform: Platform,
    /// Its distributions.
    pub(crate) packages: Vec<Package>,
    /// `.pth` files on its `sys.path`.
    pub(crate) pth_files: Vec<PthFile>,
    /// Distributions that were skipped, and why.
    pub(crate) warnings: Vec<Warning>,
    /// The numeric binaries its distributions' RECORDs list.
    pub(crate) binaries: Vec<metadata::Binary>,
}

/// The interpreter to capture: `explicit`, else `$VIRTUAL_ENV/bin/python`, else `python3` on
/// `PATH`. The path is made absolute but not resolved: a venv's `bin/python` is a symlink whose
/// target is the base interpreter, and only the link's path starts the venv.
pub(crate) fn locate_interpreter(
    explicit: Option<&Path>,
    environment: &Environment,
) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) if path.components().count() == 1 && !path.exists() => {
            // A bare name such as `python3.11` is looked up on PATH, as a shell would.
            find_on_path(path.as_os_str(), environment).ok_or_else(|| {
                Error::InterpreterNotFound {
                    path: path.to_path_buf(),
                }
            })?
        }
        Some(path) => path.to_path_buf(),
        None => match environment.get("VIRTUAL_ENV") {
            Some(venv) => PathBuf::from(venv).join("bin").join("python"),
            None => find_on_path("python3".as_ref(), environment).ok_or(Error::NoInterpreter)?,
        },
    };
    if !path.exists() {
        return Err(Error::InterpreterNotFound { path });
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn find_on_path(name: &std::ffi::OsStr, environment: &Environment) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    environment
        .path_folders()
        .into_iter()
        .map(|folder| folder.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The interpreter `--python` (or the config's `python`, relative to its folder) names,
/// else the default one; and how it was chosen.
pub(crate) fn configured_interpreter(
    flag: Option<&Path>,
    settings: &Settings,
) -> Result<(PathBuf, SelectedBy)> {
    let configured = settings.config.python.as_ref().map(|python| {
        if python.components().count() > 1 {
            settings.config_folder.join(python)
        } else {
            python.clone()
        }
    });
    let (explicit, selected_by) = match (flag, &configured) {
        (Some(flag), _) => (Some(flag), SelectedBy::Flag),
        (None, Some(configured)) => (Some(configured.as_path()), SelectedBy::Config),
        (None, None) => (None, SelectedBy::Path),
    };
    let interpreter = locate_interpreter(explicit, &settings.environment)?;
    Ok((interpreter, selected_by))
}

/// Captures a live interpreter, its distributions, this process's allow-listed environment
/// and the models (each as given, and where it is on disk).
pub(crate) fn snapshot(
    (interpreter, selected_by): (PathBuf, SelectedBy),
    models: &[(String, PathBuf)],
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Snapshot> {
    use futures_util::FutureExt as _;
    let answer = probe::probe(&interpreter, settings)?;
    let host_read = |error: super::fs::ReadError| Error::Read {
        path: PathBuf::from(&error.path),
        source: std::io::Error::other(error.detail),
    };
    let mut found = read_sys_path(&HostFiles, &answer.sys_path)
        .now_or_never()
        .expect("reading this machine's files never waits")
        .map_err(host_read)?;
    let modules = std::mem::take(&mut found.modules);
    // Where its imports are looked for: `sys.path`, and the current folder, from which a
    // golden command or a server started here imports the project's own modules.
    let mut roots = answer.sys_path.clone();
    if let Ok(here) = std::env::current_dir() {
        roots.push(here.to_string_lossy().into_owned());
    }
    let mut captured = from_answer(answer, found);
    captured.python.selected_by = Some(selected_by);
    let conda_packages = captured
        .conda_packages(&HostFiles)
        .now_or_never()
        .expect("reading this machine's files never waits")
        .map_err(host_read)?;
    let conda = !conda_packages.is_empty();
    let numerics = host_numerics(&interpreter, &mut captured, conda, settings)?;
    let mut models = hash_models(models, progress, &settings.stop)?;
    imports::check_models(
        &mut models,
        &modules,
        &roots,
        Some(&captured.python.version),
        &HostFiles,
    )
    .now_or_never()
    .expect("reading this machine's files never waits")
    .map_err(host_read)?;
    let lock = Lock {
        envlock: Header::current(),
        source: Source {
            kind: SourceKind::Python,
            interpreter: Some(interpreter.to_string_lossy().into_owned()),
            ..Source::default()
        },
        python: Some(captured.python),
        platform: captured.platform,
        env: env::capture(|name| settings.environment.text(name)),
        packages: captured.packages,
        pth_files: captured.pth_files,
        conda_packages,
        numerics,
        models,
        golden: Vec::new(),
        system_packages: Vec::new(),
        image: None,
        declared: None,
    };
    Ok(Snapshot {
        lock,
        warnings: captured.warnings,
        notes: Vec::new(),
        modules,
        ran: None,
    })
}

/// The numerics fingerprint of a live interpreter: its libraries, this machine's CPU, and
/// with `--numerics-check` the kernels run with it.
fn host_numerics(
    interpreter: &Path,
    captured: &mut Interpreter,
    conda: bool,
    settings: &Settings,
) -> Result<crate::lock::Numerics> {
    use futures_util::FutureExt as _;
    let runtime = numerics::Runtime {
        python: Some(&captured.python),
        packages: &captured.packages,
        binaries: &captured.binaries,
        system_packages: &[],
        platform: &captured.platform,
        conda,
        probed: None,
    };
    // The host's libraries are read in place.
    let mut found = numerics::capture(numerics::Reach::<HostFiles>::Host, &runtime)
        .now_or_never()
        .expect("reading this machine's files never waits")
        .map_err(|error| Error::Read {
            path: PathBuf::from(&error.path),
            source: std::io::Error::other(error.detail),
        })?;
    found.cpu = numerics::host_cpu();
    if settings.numerics_check {
        match numerics::check::run_local(interpreter, settings.probe_timeout, &settings.stop) {
            Ok(Some(kernels)) => found.kernels = kernels,
            Ok(None) => captured.warnings.push(Warning::new(
                WarningCode::NumericsCheck,
                "`--numerics-check`: the interpreter has no numpy, so no kernels ran",
            )),
            Err(problem) => captured.warnings.push(Warning::new(
                WarningCode::NumericsCheck,
                format!("`--numerics-check`: {problem}; no kernels recorded"),
            )),
        }
    }
    Ok(found)
}

impl Interpreter {
    /// The conda packages of its prefix (and its base's, for a venv made from a conda
    /// Python), read from `files`; records that cannot be read are warnings.
    pub(crate) async fn conda_packages(
        &mut self,
        files: &impl Files,
    ) -> Result<Vec<CondaPackage>, super::fs::ReadError> {
        let prefixes: Vec<&str> = [&self.python.prefix, &self.python.base_prefix]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        conda::read_prefixes(files, &prefixes, &mut self.warnings).await
    }
}

/// Assembles what an interpreter contributes from a probe's answer and the distributions
/// found on its `sys.path`.
pub(crate) fn from_answer(answer: probe::Answer, found: Found) -> Interpreter {
    let marker = |key: &str| answer.markers.get(key).cloned().unwrap_or_default();
    let platform = platform::platform(
        &marker("platform_system"),
        &marker("platform_machine"),
        answer.libc.clone(),
        answer.libc_version.clone(),
        answer.os_release.as_deref(),
    );
    let python = Python {
        implementation: answer.implementation,
        version: answer.version,
        executable: answer.executable,
        prefix: answer.prefix,
        base_prefix: answer.base_prefix,
        soabi: answer.soabi,
        cache_tag: answer.cache_tag,
        sys_path: answer.sys_path,
        markers: answer.markers,
        selected_by: None,
    };
    Interpreter {
        python,
        platform,
        packages: found.packages,
        pth_files: found.pth_files,
        warnings: found.warnings,
        binaries: found.binaries,
    }
}
