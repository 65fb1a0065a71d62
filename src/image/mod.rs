//! Capturing a Docker image's runtime into the same [`Lock`] as a dev snapshot.
//!
//! exec (the default): the embedded probe runs with the image's own `python3` (or `python`)
//! in a locked-down throwaway container and also sends back the metadata files on its
//! `sys.path`, which envlock's own distribution reader parses. Models are streamed out of
//! the same container through the archive endpoint and hashed in envlock; nothing else from
//! the image runs. The container is removed on every way out, Ctrl-C included.

mod archive;
pub mod engine;
mod files;
mod golden;

pub use golden::ImageRuntime;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::lock::{CaptureMode, Header, HistoryStep, Image, Lock, Source, SourceKind};
use crate::python::{probe, MemoryFiles};
use crate::snapshot::{probe_timeout, Snapshot};
use engine::{Engine, Launch, RunError};

/// What to capture from an image.
pub struct ImageRequest {
    /// The image reference in the local engine.
    pub reference: String,
    /// Models: each as it is named in the lock, and its path inside the image (a relative
    /// one starts at the image's WORKDIR).
    pub models: Vec<(String, String)>,
    /// Run nothing from the image.
    pub no_exec: bool,
    /// Pull the image from its registry first.
    pub pull: bool,
}

/// Captures an image. Runs its own small async runtime; Ctrl-C removes envlock's containers
/// before returning [`Error::Interrupted`].
pub fn capture(request: &ImageRequest) -> Result<Snapshot> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime always builds");
    runtime.block_on(async {
        let engine = Engine::connect().await?;
        let result = tokio::select! {
            result = capture_with(&engine, request) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        };
        engine.remove_all().await;
        result
    })
}

async fn capture_with(engine: &Engine, request: &ImageRequest) -> Result<Snapshot> {
    let reference = request.reference.as_str();
    if request.pull {
        engine.pull(reference).await?;
    }
    let inspect = engine.inspect(reference).await?;
    let image_id = inspect.id.clone().unwrap_or_else(|| reference.to_string());
    let config = inspect.config.clone().unwrap_or_default();
    let os = inspect.os.clone().unwrap_or_default();
    let arch = inspect.architecture.clone().unwrap_or_default();
    let variant = inspect.variant.clone().filter(|v| !v.is_empty());
    let mut warnings = Vec::new();

    if !request.no_exec {
        let image_platform = format!("{}/{}", os, crate::platform::normalize_arch(&arch));
        let engine_platform = engine.platform().await?;
        if image_platform != engine_platform {
            return Err(Error::ForeignPlatform {
                reference: reference.to_string(),
                image: image_platform,
                engine: engine_platform,
            });
        }
    }
    // exec unless told otherwise; static when the image has no Python to run.
    let probed = match request.no_exec {
        true => None,
        false => run_probe(engine, reference, &image_id).await?,
    };
    let mode = match probed {
        Some(_) => CaptureMode::Exec,
        None => CaptureMode::Static,
    };
    let (container, answer) = match probed {
        Some((container, answer)) => (container, Some(answer)),
        // Created, never started: only its files are read.
        None => (
            engine
                .create(
                    &image_id,
                    Launch {
                        command: vec!["/.envlock-never-started".to_string()],
                        role: "probe",
                        ..Launch::default()
                    },
                )
                .await?,
            None,
        ),
    };

    let workdir = config
        .working_dir
        .clone()
        .filter(|dir| !dir.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let mut models = Vec::with_capacity(request.models.len());
    for (given, inside) in &request.models {
        let path = if inside.starts_with('/') {
            inside.clone()
        } else {
            format!(
                "{}/{}",
                workdir.trim_end_matches('/'),
                inside.trim_end_matches('/')
            )
        };
        models.push(archive::hash_model(engine, &container, reference, given, &path).await?);
    }

    let history = engine
        .docker()
        .image_history(&image_id)
        .await
        .map_err(|source| Error::Docker {
            action: format!("reading the history of `{reference}`"),
            source,
        })?;

    let env_pairs: BTreeMap<String, String> = config
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (pair, String::new()),
        })
        .collect();
    let env = crate::env::capture(|name| env_pairs.get(name).cloned());
    let env_names = env_pairs
        .keys()
        .filter(|name| !crate::env::ALLOW_LIST.contains(&name.as_str()))
        .cloned()
        .collect();

    let system_packages = files::system_packages(engine, &container).await;
    let (python, packages, pth_files, mut platform) = match answer {
        Some(mut answer) => {
            let files = MemoryFiles::from_probe(answer.files.take().unwrap_or_default());
            let found = crate::python::read_sys_path(&files, &answer.sys_path);
            let capture = crate::python::from_answer(answer, found);
            warnings.extend(capture.warnings);
            (
                Some(capture.python),
                capture.packages,
                capture.pth_files,
                capture.platform,
            )
        }
        None => {
            let os_release = match files::read_file(engine, &container, "/etc/os-release").await {
                Some(bytes) => Some(bytes),
                None => files::read_file(engine, &container, "/usr/lib/os-release").await,
            };
            let (libc, libc_version) = files::libc_of(&system_packages);
            let platform = crate::platform::platform(
                &os,
                &arch,
                libc,
                libc_version,
                os_release
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .as_deref(),
            );
            let debian_python = files::debian_python_version(&system_packages);
            match files::read_python(engine, &container, &env_pairs, debian_python.as_deref()).await
            {
                Some(found_python) => {
                    let found = crate::python::read_sys_path(
                        &found_python.files,
                        &found_python.python.sys_path,
                    );
                    warnings.extend(found_python.warnings);
                    warnings.extend(found.warnings);
                    (
                        Some(found_python.python),
                        found.packages,
                        found.pth_files,
                        platform,
                    )
                }
                None => {
                    warnings.push(format!(
                        "image `{reference}` has no `python3` or `python` on its PATH: captured without Python"
                    ));
                    (None, Vec::new(), Vec::new(), platform)
                }
            }
        }
    };
    engine.remove(&container).await;
    if platform.libc.is_none() {
        (platform.libc, platform.libc_version) = files::libc_of(&system_packages);
    }
    // The image's own platform, not the kernel the probe ran on.
    platform.os = os.to_ascii_lowercase();
    platform.arch = crate::platform::normalize_arch(&arch);

    let image = Image {
        capture: mode,
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
        history: history
            .into_iter()
            .rev()
            .map(|step| HistoryStep {
                created_by: crate::env::redact_history_step(&step.created_by),
                size: step.size,
            })
            .collect(),
    };
    let lock = Lock {
        envlock: Header::current(),
        source: Source {
            kind: SourceKind::Image,
            interpreter: None,
            reference: Some(reference.to_string()),
            id: Some(image_id),
            repo_digests: sorted(inspect.repo_digests.clone().unwrap_or_default()),
            platform: Some(match &variant {
                Some(variant) => format!("{os}/{arch}/{variant}"),
                None => format!("{os}/{arch}"),
            }),
        },
        python,
        platform,
        env,
        packages,
        pth_files,
        models,
        golden: Vec::new(),
        system_packages,
        image: Some(image),
    };
    Ok(Snapshot { lock, warnings })
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// Runs the probe with `python3`, then `python`, resolved on the image's PATH. `None` when
/// the image has neither. On success the container is kept (stopped) for reading models.
async fn run_probe(
    engine: &Engine,
    reference: &str,
    image_id: &str,
) -> Result<Option<(String, probe::Answer)>> {
    let limit = probe_timeout();
    for program in ["python3", "python"] {
        let command = vec![
            program.to_string(),
            "-c".to_string(),
            probe::SCRIPT.to_string(),
            "--files".to_string(),
        ];
        let launch = Launch {
            command,
            role: "probe",
            ..Launch::default()
        };
        let container = engine.create(image_id, launch).await?;
        let failed = |detail: String| Error::ImageProbeFailed {
            reference: reference.to_string(),
            detail,
        };
        let outcome = match engine.run(&container, limit, None).await {
            Ok(finished) if finished.code == 0 => probe::Answer::parse(&finished.stdout)
                .map_err(|error| failed(format!("its output is not the probe's JSON ({error})"))),
            Ok(finished) => Err(failed(format!(
                "`{program}` exited with {}; its last words: `{}`",
                finished.code,
                crate::process::tail(&finished.stderr, 3)
            ))),
            Err(RunError::NotFound) => {
                engine.remove(&container).await;
                continue;
            }
            Err(RunError::Timeout) => Err(Error::ImageProbeTimeout {
                reference: reference.to_string(),
                seconds: limit.as_secs(),
            }),
            Err(RunError::Engine(error)) => Err(error),
        };
        return match outcome {
            Ok(answer) => Ok(Some((container, answer))),
            Err(error) => {
                engine.remove(&container).await;
                Err(error)
            }
        };
    }
    Ok(None)
}
