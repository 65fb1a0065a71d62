//! Capturing a Docker image's runtime into the same [`Lock`] as a dev snapshot.
//!
//! exec (the default, `exec.rs`): the embedded probe runs with the image's own `python3` (or
//! `python`) in a locked-down throwaway container and also sends back the metadata files on
//! its `sys.path`, which envlock's own distribution reader parses. static (`--no-exec`, or an
//! image without Python, `static_python.rs`): the same files read through the engine's API,
//! nothing from the image run. Models are streamed out of the container through the archive
//! endpoint and hashed in envlock (`models.rs`). Containers are removed on every way out.

mod archive;
mod engine;
mod exec;
mod models;
mod session;
mod static_python;
mod system;

pub(crate) use engine::{Engine, Launch};
pub(crate) use session::Session;

use std::collections::BTreeMap;

use bollard::models::{ImageConfig, ImageInspect};

use super::python::files::MemoryFiles;
use super::python::metadata::read_sys_path;
use super::{env, platform, python, Snapshot};
use crate::error::{Error, Result};
use crate::lock::{
    CaptureMode, Header, HistoryStep, Image, Lock, Model, Package, Platform, PthFile, Python,
    Source, SourceKind, SystemPackage,
};
use crate::settings::Settings;

/// Captures image `reference` with its models (each as named in the lock, and its path
/// inside the image; a relative one starts at the image's WORKDIR).
pub(crate) fn snapshot(
    reference: &str,
    models: &[(String, String)],
    settings: &Settings,
    session: &Session,
) -> Result<Snapshot> {
    session.run(|engine| capture(engine, reference, models, settings))
}

/// What the engine says about the image.
struct Facts {
    inspect: ImageInspect,
    id: String,
    config: ImageConfig,
    os: String,
    arch: String,
    /// `KEY=VALUE` pairs of the config's `Env`.
    env: BTreeMap<String, String>,
}

impl Facts {
    fn of(inspect: ImageInspect, reference: &str) -> Facts {
        let config = inspect.config.clone().unwrap_or_default();
        let env = config
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (pair, String::new()),
            })
            .collect();
        Facts {
            id: inspect.id.clone().unwrap_or_else(|| reference.to_string()),
            os: inspect.os.clone().unwrap_or_default(),
            arch: inspect.architecture.clone().unwrap_or_default(),
            inspect,
            config,
            env,
        }
    }

    fn workdir(&self) -> Option<String> {
        self.config
            .working_dir
            .clone()
            .filter(|dir| !dir.is_empty())
    }
}

/// The runtime read from inside a container of the image.
struct Inside {
    mode: CaptureMode,
    python: Option<Python>,
    packages: Vec<Package>,
    pth_files: Vec<PthFile>,
    platform: Platform,
    models: Vec<Model>,
    system_packages: Vec<SystemPackage>,
    warnings: Vec<String>,
}

async fn capture(
    engine: &Engine,
    reference: &str,
    models: &[(String, String)],
    settings: &Settings,
) -> Result<Snapshot> {
    if settings.pull {
        engine.pull(reference).await?;
    }
    let facts = Facts::of(engine.inspect(reference).await?, reference);
    if !settings.no_exec {
        refuse_foreign_platform(engine, reference, &facts).await?;
    }
    // exec unless told otherwise; static when the image has no Python to run.
    let probed = match settings.no_exec {
        true => None,
        false => exec::run_probe(engine, reference, &facts.id, settings.probe_timeout).await?,
    };
    let (container, answer) = match probed {
        Some((container, answer)) => (container, Some(answer)),
        // Created, never started: only its files are read.
        None => (create_idle(engine, &facts.id).await?, None),
    };
    let inside = read_inside(engine, &container, reference, models, &facts, answer).await;
    engine.remove(&container).await;
    let inside = inside?;
    let history = engine
        .docker()
        .image_history(&facts.id)
        .await
        .map_err(|source| Error::Docker {
            action: format!("reading the history of `{reference}`"),
            source,
        })?;
    let steps = history
        .into_iter()
        .rev()
        .map(|step| HistoryStep {
            created_by: env::redact_history_step(&step.created_by),
            size: step.size,
        })
        .collect();
    Ok(assemble(reference, facts, inside, steps))
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

async fn read_inside(
    engine: &Engine,
    container: &str,
    reference: &str,
    models: &[(String, String)],
    facts: &Facts,
    answer: Option<python::probe::Answer>,
) -> Result<Inside> {
    let workdir = facts.workdir().unwrap_or_else(|| "/".to_string());
    let mut hashed = Vec::with_capacity(models.len());
    for (given, inside) in models {
        let path = if inside.starts_with('/') {
            inside.clone()
        } else {
            format!(
                "{}/{}",
                workdir.trim_end_matches('/'),
                inside.trim_end_matches('/')
            )
        };
        hashed.push(models::hash_model(engine, container, reference, given, &path).await?);
    }
    let system_packages = system::system_packages(engine, container).await;
    let mut inside = match answer {
        Some(answer) => from_probe(answer),
        None => from_files(engine, container, reference, facts, &system_packages).await,
    };
    if inside.platform.libc.is_none() {
        (inside.platform.libc, inside.platform.libc_version) = system::libc_of(&system_packages);
    }
    // The image's own platform, not the kernel the probe ran on.
    inside.platform.os = facts.os.to_ascii_lowercase();
    inside.platform.arch = platform::normalize_arch(&facts.arch);
    inside.models = hashed;
    inside.system_packages = system_packages;
    Ok(inside)
}

fn from_probe(mut answer: python::probe::Answer) -> Inside {
    let files = MemoryFiles::from_probe(answer.files.take().unwrap_or_default());
    let found = read_sys_path(&files, &answer.sys_path);
    let interpreter = python::from_answer(answer, found);
    Inside {
        mode: CaptureMode::Exec,
        python: Some(interpreter.python),
        packages: interpreter.packages,
        pth_files: interpreter.pth_files,
        platform: interpreter.platform,
        models: Vec::new(),
        system_packages: Vec::new(),
        warnings: interpreter.warnings,
    }
}

async fn from_files(
    engine: &Engine,
    container: &str,
    reference: &str,
    facts: &Facts,
    system_packages: &[SystemPackage],
) -> Inside {
    let os_release = match archive::read_file(engine, container, "/etc/os-release").await {
        Some(bytes) => Some(bytes),
        None => archive::read_file(engine, container, "/usr/lib/os-release").await,
    };
    let (libc, libc_version) = system::libc_of(system_packages);
    let platform = platform::platform(
        &facts.os,
        &facts.arch,
        libc,
        libc_version,
        os_release
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .as_deref(),
    );
    let debian_python = system::debian_python_version(system_packages);
    let mut inside = Inside {
        mode: CaptureMode::Static,
        python: None,
        packages: Vec::new(),
        pth_files: Vec::new(),
        platform,
        models: Vec::new(),
        system_packages: Vec::new(),
        warnings: Vec::new(),
    };
    let found_python =
        static_python::read_python(engine, container, &facts.env, debian_python.as_deref()).await;
    let Some(found_python) = found_python else {
        inside.warnings.push(format!(
            "image `{reference}` has no `python3` or `python` on its PATH: captured without Python"
        ));
        return inside;
    };
    let found = read_sys_path(&found_python.files, &found_python.python.sys_path);
    inside.warnings.extend(found_python.warnings);
    inside.warnings.extend(found.warnings);
    inside.python = Some(found_python.python);
    inside.packages = found.packages;
    inside.pth_files = found.pth_files;
    inside
}

fn assemble(reference: &str, facts: Facts, inside: Inside, history: Vec<HistoryStep>) -> Snapshot {
    let Facts {
        inspect,
        id,
        config,
        os,
        arch,
        env: env_pairs,
    } = facts;
    let env_names = env_pairs
        .keys()
        .filter(|name| !env::ALLOW_LIST.contains(&name.as_str()))
        .cloned()
        .collect();
    let image = Image {
        capture: inside.mode,
        repo_tags: sorted(inspect.repo_tags.clone().unwrap_or_default()),
        created: inspect.created.clone(),
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
        env_names,
        layers: inspect
            .root_fs
            .as_ref()
            .and_then(|root| root.layers.clone())
            .unwrap_or_default(),
        history,
    };
    let variant = inspect.variant.clone().filter(|v| !v.is_empty());
    let lock = Lock {
        envlock: Header::current(),
        source: Source {
            kind: SourceKind::Image,
            interpreter: None,
            reference: Some(reference.to_string()),
            id: Some(id),
            repo_digests: sorted(inspect.repo_digests.clone().unwrap_or_default()),
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
        models: inside.models,
        golden: Vec::new(),
        system_packages: inside.system_packages,
        image: Some(image),
    };
    Snapshot {
        lock,
        warnings: inside.warnings,
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}
