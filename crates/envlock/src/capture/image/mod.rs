//! Capturing a Docker image's runtime into the same [`Lock`] as a dev snapshot.
//!
//! exec (the default, `engine/exec.rs`): the embedded probe runs with the image's own
//! `python3` (or `python`) in a locked-down throwaway container and also sends back the
//! metadata files on its `sys.path`, which the same distribution reader parses. static
//! (`--no-exec`, an image without Python, or one read from its layers: `static_read.rs`
//! over `read/site.rs`): the same files read through the image's view, nothing from the
//! image run. Models are streamed out and hashed in envlock (`models.rs`). Containers are
//! removed on every way out.

mod attribute;
mod files;
pub(crate) mod layered;
mod models;
mod static_read;

pub(crate) use files::Files;

use super::engine::jobs::{Jobs, Ran};
use super::engine::{exec, Container, Engine, Launch};
use super::fs::{Failure, ReadError};
use super::numerics;
use super::numerics::{Binary, ProbedNumerics};
use super::read::distributions::read_sys_path;
use super::read::facts::Facts;
use super::read::imports::{self, Modules};
use super::read::{history, select, system};
use super::{env, platform, python, Snapshot};
use crate::error::{Error, Result};
use crate::lock::{
    CaptureMode, CondaPackage, Header, HistoryStep, Image, Layer, Lock, Model, Numerics, Package,
    Platform, PthFile, Python, SelectedBy, Source, SourceKind, SystemPackage,
};
use crate::settings::Settings;
use crate::warning::{Warning, WarningCode};
use static_read::{from_files, Inputs};

/// The interpreter to capture in the image.
struct Chosen {
    /// Its absolute path inside the image (as started, symlinks not resolved).
    path: String,
    selected_by: SelectedBy,
    /// `python3` (else `python`) on the image's `PATH`, when that is another file.
    others: Vec<String>,
}

/// The runtime read from the image's files (and its probe).
pub(crate) struct Inside {
    pub(crate) mode: CaptureMode,
    pub(crate) python: Option<Python>,
    pub(crate) packages: Vec<Package>,
    pub(crate) pth_files: Vec<PthFile>,
    pub(crate) conda_packages: Vec<CondaPackage>,
    pub(crate) platform: Platform,
    pub(crate) models: Vec<Model>,
    pub(crate) system_packages: Vec<SystemPackage>,
    /// Other interpreters on the image's `PATH` (see [`Chosen::others`]).
    pub(crate) others: Vec<String>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) notes: Vec<String>,
    /// The numeric binaries the distributions' RECORDs list.
    pub(crate) binaries: Vec<Binary>,
    /// The modules the distributions' RECORDs install (for the models' imports).
    pub(crate) modules: Modules,
    /// What the probe read of the numeric libraries (exec capture).
    pub(crate) probed: Option<ProbedNumerics>,
    pub(crate) numerics: Numerics,
    /// What the jobs run beside the probe did (golden command cases).
    pub(crate) ran: Option<Ran>,
}

/// Captures image `reference` of the engine with its models (each as named in the lock, and
/// its path inside the image; a relative one starts at the image's WORKDIR); `jobs` run in
/// the probe's container (unless `--no-exec`).
pub(crate) async fn capture(
    engine: &Engine,
    reference: &str,
    models: &[(String, String)],
    settings: &Settings,
    jobs: &Jobs,
) -> Result<Snapshot> {
    if settings.pull {
        engine.pull(reference).await?;
    }
    let facts = Facts::of(engine.inspect(reference).await?, reference);
    if !settings.no_exec {
        refuse_foreign_platform(engine, reference, &facts).await?;
    }
    // Created, never started: its files are read (the probe, when it runs, has its own).
    let container = create_idle(engine, &facts.id).await?;
    let view = Container::new(engine, &container);
    let files = Files::Container(&view);
    let probe = (!settings.no_exec).then_some((engine, jobs));
    let inside = read_inside(files, probe, reference, models, settings, &facts).await;
    let history = async {
        let history = engine.timed(engine.docker().image_history(&facts.id)).await;
        history.map_err(engine.failed(format!("reading the history of `{reference}`")))
    };
    // The container goes while the history is read.
    let ((), history) = tokio::join!(engine.remove(&container), history);
    let (mut inside, history) = (inside?, history?);
    let steps = history
        .into_iter()
        .rev()
        .map(|step| HistoryStep {
            created_by: history::redact_step(&step.created_by),
            size: step.size,
        })
        .collect();
    let mut layers = Layer::of_diff_ids(&facts.diff_ids);
    if settings.layers {
        layers = layered::attribute_engine_image(engine, &facts, models, &mut inside).await?;
    }
    Ok(assemble(reference, facts, inside, steps, layers))
}

async fn refuse_foreign_platform(engine: &Engine, reference: &str, facts: &Facts) -> Result<()> {
    let image_platform = format!("{}/{}", facts.os, platform::normalize_arch(&facts.arch));
    let engine_platform = engine.platform().await?;
    if image_platform != engine_platform {
        return Err(Error::ForeignPlatform {
            reference: reference.to_string(),
            image: image_platform,
            engine: engine_platform,
        });
    }
    Ok(())
}

/// A container that is created and never started, for reading files.
async fn create_idle(engine: &Engine, image_id: &str) -> Result<String> {
    let launch = Launch {
        command: vec!["/.envlock-never-started".to_string()],
        role: "probe",
        ..Launch::default()
    };
    engine.create(image_id, launch).await
}

/// The interpreter to capture: the one asked for, else the one the image's ENTRYPOINT/CMD
/// runs, else `python3` (then `python`) on its `PATH`. `None` when the image has none.
async fn choose(
    reader: &select::Reader<'_, Files<'_>>,
    settings: &Settings,
    facts: &Facts,
    reference: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Chosen>> {
    let path = facts.path();
    let workdir = facts.workdir().unwrap_or_else(|| "/".to_string());
    let mut on_path = None;
    for name in ["python3", "python"] {
        on_path = reader.which(name, path, &workdir).await;
        if on_path.is_some() {
            break;
        }
    }
    let chosen = match settings.requested_image_python() {
        Some((python, by)) => {
            let found = reader.which(&python, path, &workdir).await;
            // A read that failed is the engine's error, not a missing interpreter.
            if let Some(error) = reader.failure() {
                return Err(unreadable(reference, error));
            }
            let found = found.ok_or_else(|| Error::ImagePython {
                path: python.clone(),
                reference: reference.to_string(),
                detail: "no such file in the image (nor on its PATH)".to_string(),
            })?;
            Some((found, by))
        }
        None => from_command(reader, facts, warnings).await,
    };
    let (chosen, selected_by) = match (chosen, &on_path) {
        (Some(chosen), _) => chosen,
        (None, Some(found)) => (found.clone(), SelectedBy::Path),
        (None, None) => return Ok(None),
    };
    let mut others = Vec::new();
    if let Some(found) = on_path.filter(|found| *found != chosen) {
        if !reader.same_interpreter(&found, &chosen).await {
            others.push(found);
        }
    }
    Ok(Some(Chosen {
        path: chosen,
        selected_by,
        others,
    }))
}

/// The interpreter the image's ENTRYPOINT/CMD runs, found in the image.
async fn from_command(
    reader: &select::Reader<'_, Files<'_>>,
    facts: &Facts,
    warnings: &mut Vec<Warning>,
) -> Option<(String, SelectedBy)> {
    let workdir = facts.workdir().unwrap_or_else(|| "/".to_string());
    let command = select::Command {
        entrypoint: facts.config.entrypoint.as_deref().unwrap_or_default(),
        cmd: facts.config.cmd.as_deref().unwrap_or_default(),
        workdir: &workdir,
        path: facts.path(),
    };
    let choice = select::from_command(reader, &command, warnings).await?;
    match reader.which(&choice.program, facts.path(), &workdir).await {
        Some(found) => Some((found, choice.selected_by)),
        None => {
            warnings.push(Warning::new(WarningCode::CommandNotFollowed, format!(
                "the image's {} runs `{}`, which is not in the image; captured `python3` on its PATH instead (pass `--python PATH` to name the interpreter)",
                choice.selected_by.as_ref().to_ascii_uppercase(),
                choice.program
            )));
            None
        }
    }
}

/// The models, each at its path inside the image (a relative one under WORKDIR).
async fn hash_models(
    files: Files<'_>,
    reference: &str,
    models: &[(String, String)],
    facts: &Facts,
) -> Result<Vec<Model>> {
    let mut hashed = Vec::with_capacity(models.len());
    for (given, inside) in models {
        let path = facts.model_path(inside);
        hashed.push(models::hash_model(files, reference, given, &path).await?);
    }
    Ok(hashed)
}

/// Reads the runtime from the image's `files`; with `probe`, the engine runs the probe with
/// the chosen interpreter meanwhile (and the jobs beside it), and its answer wins over the
/// files.
pub(crate) async fn read_inside(
    files: Files<'_>,
    probe: Option<(&Engine, &Jobs)>,
    reference: &str,
    models: &[(String, String)],
    settings: &Settings,
    facts: &Facts,
) -> Result<Inside> {
    let reader = select::Reader::new(&files);
    let mut warnings = Vec::new();
    let chosen = choose(&reader, settings, facts, reference, &mut warnings).await?;
    if let Some(error) = reader.failure() {
        return Err(unreadable(reference, error));
    }
    let exec = chosen.as_ref().zip(probe);
    // The probe runs in its own container while the files are read from this one.
    let probe = async {
        match exec {
            Some((chosen, (engine, jobs))) => {
                let limit = settings.probe_timeout;
                let program = &chosen.path;
                let numerics = numerics::probe_request(&platform::normalize_arch(&facts.arch));
                exec::run_probe(
                    engine, reference, &facts.id, program, &numerics, limit, jobs,
                )
                .await
                .map(Some)
            }
            None => Ok(None),
        }
    };
    let read = async {
        let hashed = hash_models(files, reference, models, facts).await?;
        let system_packages = system::system_packages(&files)
            .await
            .map_err(|error| unreadable(reference, error))?;
        Ok::<_, Error>((hashed, system_packages))
    };
    let (answer, read) = tokio::join!(probe, read);
    let (answer, (hashed, (system_packages, system_warning))) = (answer?, read?);
    let mut inside = match answer {
        Some((answer, ran)) => {
            let mut inside = from_probe(answer)
                .await
                .map_err(|error| unreadable(reference, error))?;
            inside.ran = Some(ran);
            inside
        }
        _ => {
            let runs = Inputs {
                files,
                reference,
                facts,
                system_packages: &system_packages,
            };
            from_files(&runs, chosen.as_ref(), settings).await?
        }
    };
    if let (Some(python), Some(chosen)) = (&mut inside.python, &chosen) {
        python.selected_by = Some(chosen.selected_by);
        inside.others.clone_from(&chosen.others);
        if !chosen.others.is_empty() {
            inside.notes.push(format!(
                "captured `{}` ({}); `{}` on the image's PATH is another interpreter",
                chosen.path,
                describe(chosen.selected_by),
                chosen.others.join("`, `")
            ));
        }
    }
    inside.warnings.splice(0..0, warnings);
    inside
        .warnings
        .extend(system_warning.map(|text| Warning::new(WarningCode::SystemPackages, text)));
    if inside.platform.libc.is_none() {
        (inside.platform.libc, inside.platform.libc_version) = system::libc_of(&system_packages);
    }
    // The image's own platform, not the kernel the probe ran on.
    inside.platform.os = facts.os.to_ascii_lowercase();
    inside.platform.arch = platform::normalize_arch(&facts.arch);
    inside.models = hashed;
    // The models' imports are looked for in the image's files (not the probe's answer,
    // which holds only metadata), on `sys.path` and in the WORKDIR, where `python serve.py`
    // puts the folder of its script.
    if let Some(python) = &inside.python {
        let mut roots = python.sys_path.clone();
        roots.extend(facts.workdir());
        let version = Some(python.version.as_str());
        imports::check_models(&mut inside.models, &inside.modules, &roots, version, &files)
            .await
            .map_err(|error| unreadable(reference, error))?;
    }
    inside.system_packages = system_packages;
    let exec = exec.map(|(chosen, (engine, _))| (chosen, engine));
    add_numerics(&mut inside, &files, exec, reference, settings, facts).await?;
    Ok(inside)
}

/// The numerics fingerprint of what was read, and with `--numerics-check` (and a probe to
/// run them) the kernels.
async fn add_numerics(
    inside: &mut Inside,
    files: &Files<'_>,
    exec: Option<(&Chosen, &Engine)>,
    reference: &str,
    settings: &Settings,
    facts: &Facts,
) -> Result<()> {
    let runtime = numerics::Runtime {
        python: inside.python.as_ref(),
        packages: &inside.packages,
        binaries: &inside.binaries,
        system_packages: &inside.system_packages,
        platform: &inside.platform,
        conda: !inside.conda_packages.is_empty(),
        probed: inside.probed.as_ref(),
    };
    inside.numerics = numerics::capture(numerics::Reach::Image(files), &runtime)
        .await
        .map_err(|error| unreadable(reference, error))?;
    if !settings.numerics_check {
        return Ok(());
    }
    let kernels = match exec {
        Some((chosen, engine)) => {
            exec::run_kernels(engine, &facts.id, &chosen.path, settings.probe_timeout).await?
        }
        None => Err(numerics::check::KernelsFailed::Static),
    };
    match kernels {
        Ok(Some(kernels)) => inside.numerics.kernels = kernels,
        Ok(None) => inside.warnings.push(Warning::new(
            WarningCode::NumericsCheck,
            "`--numerics-check`: the image's Python has no numpy, so no kernels ran",
        )),
        Err(problem) => inside.warnings.push(Warning::new(
            WarningCode::NumericsCheck,
            format!("`--numerics-check`: {problem}; no kernels recorded"),
        )),
    }
    Ok(())
}

/// Why an interpreter was captured, in a note.
fn describe(selected_by: SelectedBy) -> &'static str {
    match selected_by {
        SelectedBy::Flag => "named by `--python`",
        SelectedBy::Config => "named by `[image] python` in envlock.toml",
        SelectedBy::Entrypoint => "the image's ENTRYPOINT runs it",
        SelectedBy::Cmd => "the image's CMD runs it",
        SelectedBy::Shebang => "the shebang of the script the image runs names it",
        SelectedBy::Path => "found on the image's PATH",
    }
}

/// A path of the image that could not be read: the capture stops (a lock is never a
/// picture of what envlock could not see).
fn unreadable(reference: &str, error: ReadError) -> Error {
    Error::RuntimeRead {
        runtime: format!("image `{reference}`"),
        path: error.path,
        detail: error.detail,
        not_kept: error.failure == Failure::NotKept,
    }
}

async fn from_probe(mut answer: python::probe::Answer) -> Result<Inside, ReadError> {
    let files = answer.files.take().unwrap_or_default().into_files();
    let probed = answer.numerics.take();
    let mut found = read_sys_path(&files, &answer.sys_path).await?;
    let modules = std::mem::take(&mut found.modules);
    let mut interpreter = python::from_answer(answer, found);
    let conda_packages = interpreter.conda_packages(&files).await?;
    Ok(Inside {
        conda_packages,
        mode: CaptureMode::Exec,
        python: Some(interpreter.python),
        packages: interpreter.packages,
        pth_files: interpreter.pth_files,
        platform: interpreter.platform,
        models: Vec::new(),
        system_packages: Vec::new(),
        others: Vec::new(),
        warnings: interpreter.warnings,
        notes: Vec::new(),
        binaries: interpreter.binaries,
        modules,
        probed,
        numerics: Numerics::default(),
        ran: None,
    })
}

/// The lock of an image: its facts, what was read inside, its history and its layers.
pub(crate) fn assemble(
    reference: &str,
    facts: Facts,
    inside: Inside,
    history: Vec<HistoryStep>,
    layers: Vec<Layer>,
) -> Snapshot {
    let Facts {
        id,
        config,
        os,
        arch,
        variant,
        env: env_pairs,
        repo_tags,
        repo_digests,
        created,
        diff_ids: _,
    } = facts;
    let env_names = env_pairs
        .keys()
        .filter(|name| !env::ALLOW_LIST.contains(&name.as_str()))
        .cloned()
        .collect();
    let image = Image {
        capture: inside.mode,
        repo_tags,
        created,
        entrypoint: config.entrypoint.clone().unwrap_or_default(),
        cmd: config.cmd.clone().unwrap_or_default(),
        workdir: config.working_dir.clone().filter(|dir| !dir.is_empty()),
        user: config.user.clone().filter(|user| !user.is_empty()),
        labels: config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        exposed_ports: sorted(config.exposed_ports.clone().unwrap_or_default()),
        other_pythons: inside.others,
        env_names,
        layers,
        history,
    };
    let lock = Lock {
        envlock: Header::current(),
        source: Source {
            kind: SourceKind::Image,
            interpreter: None,
            reference: Some(reference.to_string()),
            id: Some(id),
            repo_digests,
            platform: Some(match &variant {
                Some(variant) => format!("{os}/{arch}/{variant}"),
                None => format!("{os}/{arch}"),
            }),
        },
        python: inside.python,
        platform: inside.platform,
        env: env::capture(|name| env_pairs.get(name).cloned()),
        packages: inside.packages,
        pth_files: inside.pth_files,
        conda_packages: inside.conda_packages,
        numerics: inside.numerics,
        models: inside.models,
        golden: Vec::new(),
        system_packages: inside.system_packages,
        image: Some(image),
        declared: None,
    };
    Snapshot {
        lock,
        warnings: inside.warnings,
        notes: inside.notes,
        modules: inside.modules,
        ran: inside.ran,
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// For the fuzz targets (`src/fuzzing.rs`): a model folder's tar.
pub(crate) fn fuzz_model_tar(tar: &[u8]) {
    models::fuzz(tar);
}
