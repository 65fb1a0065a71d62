//! The Docker engine: connecting, inspecting images, and envlock's throwaway containers.
//!
//! Every container envlock creates is locked down (no network, read-only root, no
//! capabilities, no-new-privileges, memory and pid limits), labelled `org.envlock.role` so a
//! leftover can be found (`docker ps -a --filter label=org.envlock.role`), and registered so
//! that every way out — success, error, timeout, Ctrl-C — removes it. A create runs to its
//! answer even when a stop drops its caller, and the way out waits for it; one that got no
//! answer (a timeout, a cut connection) may still land in the engine unregistered: each
//! connection also labels its containers with its own run id (`org.envlock.run`), and the
//! way out sweeps by it. A removal the engine refuses is tried again; one it still refuses
//! is recorded ([`Engine::left`]) and the run fails naming it.
//!
//! Every call has the engine timeout (`ENVLOCK_ENGINE_TIMEOUT`): for its answer, and for
//! each piece of a streamed body ([`Engine::limit`]). A container's own run is bounded by
//! the probe's or the golden case's limit instead.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, ImageInspect};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{EngineFault, Error, Result};
use crate::process::{Finished, Unfinished};

/// The label on every container envlock creates.
pub(super) const LABEL: &str = "org.envlock.role";
/// The label naming the connection (run) that created a container.
const RUN_LABEL: &str = "org.envlock.run";

/// A connection to the engine and the containers envlock has alive on it.
pub(crate) struct Engine {
    docker: Docker,
    /// Where it is, for messages.
    host: String,
    /// How long one call may take (`ENVLOCK_ENGINE_TIMEOUT`).
    timeout: Duration,
    /// The containers created and not yet removed, with their role.
    alive: Arc<Mutex<BTreeMap<String, &'static str>>>,
    /// The containers the engine would not remove, with their role.
    left: Mutex<BTreeMap<String, &'static str>>,
    /// This connection's value of [`RUN_LABEL`].
    run: String,
    /// A create got no answer (a timeout, a cut connection): its container may exist
    /// without being registered.
    create_cut: Arc<AtomicBool>,
    /// The creates started and not yet known to be done, each a task that registers what
    /// the engine made.
    creating: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What a container runs and what it may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// Entrypoint and arguments; empty keeps the image's own entrypoint and cmd.
    pub command: Vec<String>,
    /// Files put in the container before it starts, through the API (never a bind mount
    /// of a host path, so a remote engine gets them too), in an anonymous volume labelled
    /// as the container is.
    pub volume: Option<Volume>,
    /// The working folder; `None` keeps the image's.
    pub workdir: Option<String>,
    /// `NAME=value` variables over the image's own.
    pub env: Vec<String>,
    /// Whether input will be written to its stdin.
    pub stdin: bool,
    /// A container port to publish on 127.0.0.1 (gives the container a network).
    pub publish: Option<u16>,
    /// `UID:GID` to run as; `None` keeps the image's `USER`.
    pub user: Option<String>,
    /// Whether the root file system is writable, as where the model is deployed (golden
    /// runs: a model may write a cache); the probe's is read-only.
    pub writable: bool,
    /// The value of envlock's label: `probe`, `golden`.
    pub role: &'static str,
    /// GPUs to ask the engine for (`-1`: all), as `docker run --gpus` does.
    pub gpus: Option<i64>,
}

/// An anonymous volume at `folder`, filled before the container starts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Volume {
    /// Where it is mounted.
    pub folder: String,
    /// Its files (read-only) and folders (writable by any user), by relative path.
    pub entries: Vec<(String, Option<Vec<u8>>)>,
}

impl Engine {
    /// Connects to `host` (`DOCKER_HOST` as `Settings` holds it; also named in errors) and
    /// agrees on an API version, so engines from 20.10 on work. Each call may then take
    /// `timeout`.
    pub(crate) async fn connect(host: &str, timeout: Duration) -> Result<Engine> {
        let host = host.to_string();
        let unreachable = |source: bollard::errors::Error| Error::EngineUnreachable {
            host: host.clone(),
            source: fault(source, timeout),
        };
        // The host from `Settings` (`DOCKER_HOST`, resolved once by the CLI), never bollard's own
        // reading of the environment. bollard's own timeout (whole seconds, for a response's
        // head) is a backstop under envlock's.
        let docker = Docker::connect_with_host(&host)
            .map_err(unreachable)?
            .with_timeout(Duration::from_secs(timeout.as_secs() + 1));
        let docker = bounded(timeout, docker.negotiate_version())
            .await
            .map_err(unreachable)?;
        Ok(Engine {
            docker,
            host,
            timeout,
            alive: Arc::new(Mutex::new(BTreeMap::new())),
            left: Mutex::new(BTreeMap::new()),
            run: run_id(),
            create_cut: Arc::new(AtomicBool::new(false)),
            creating: Mutex::new(Vec::new()),
        })
    }

    /// An engine error, named with the engine and what envlock was doing.
    pub(crate) fn failed(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Error {
        let host = self.host.clone();
        let action = action.into();
        let timeout = self.timeout;
        move |source| Error::Docker {
            host,
            action,
            source: fault(source, timeout),
        }
    }

    /// What the client said, as text (a timeout named with its limit).
    pub(crate) fn describe(&self, source: bollard::errors::Error) -> String {
        self.fault(source).to_string()
    }

    /// The engine's error as the library carries it, a timeout named with its limit.
    pub(crate) fn fault(&self, source: bollard::errors::Error) -> EngineFault {
        fault(source, self.timeout)
    }

    /// How long one call may take, and a streamed body stay silent.
    pub(crate) fn limit(&self) -> Duration {
        self.timeout
    }

    /// `call`, bounded by the engine timeout (an elapsed one is bollard's timeout error,
    /// which [`Engine::failed`] names with the limit).
    pub(crate) async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, bollard::errors::Error> {
        bounded(self.timeout, call).await
    }

    /// The containers the engine would not remove since the last call, with their role
    /// (`org.envlock.role`).
    pub(crate) fn take_left(&self) -> Vec<(String, &'static str)> {
        std::mem::take(&mut *self.left.lock().expect("never poisoned"))
            .into_iter()
            .collect()
    }

    /// A command the image lacks is [`Unfinished::NotStarted`]; anything else is the engine's.
    /// The engine answers a start whose program is missing with the OCI runtime's words and
    /// no code of its own, so its message is the only place that fact is.
    fn start_error(&self, source: bollard::errors::Error) -> Unfinished {
        if let bollard::errors::Error::DockerResponseServerError { message, .. } = &source {
            if message.contains("executable file not found")
                || message.contains("no such file or directory")
            {
                let text = source.to_string();
                return Unfinished::NotStarted(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    text,
                ));
            }
        }
        Unfinished::Engine(self.failed("starting a container")(source))
    }

    /// The bollard client.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Inspects a local image; a 404, or a 400 for a reference the engine cannot parse, is
    /// [`Error::ImageNotFound`].
    pub(crate) async fn inspect(&self, reference: &str) -> Result<ImageInspect> {
        self.timed(self.docker.inspect_image(reference))
            .await
            .map_err(|source| match source {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 400 | 404,
                    ..
                } => Error::ImageNotFound {
                    reference: reference.to_string(),
                },
                source => self.failed(format!("inspecting image `{reference}`"))(source),
            })
    }

    /// Pulls `reference` from its registry (only when the user asked with `--pull`).
    pub(crate) async fn pull(&self, reference: &str) -> Result<()> {
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(reference.to_string()),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        let failed = |source| Error::Pull {
            reference: reference.to_string(),
            source: fault(source, self.timeout),
        };
        // A pull may take long; each step of its progress comes within the timeout.
        while self
            .timed(async { progress.next().await.transpose() })
            .await
            .map_err(failed)?
            .is_some()
        {}
        Ok(())
    }

    /// The engine's own `os/arch`, e.g. `linux/x86_64` (kernel spelling).
    pub(crate) async fn platform(&self) -> Result<String> {
        let version = self
            .timed(self.docker.version())
            .await
            .map_err(self.failed("asking the engine for its version"))?;
        Ok(format!(
            "{}/{}",
            version.os.unwrap_or_default(),
            crate::capture::platform::normalize_arch(&version.arch.unwrap_or_default())
        ))
    }

    /// Creates a locked-down container of `image` (not started): no network (unless a port
    /// is published, then on 127.0.0.1 only), read-only root with a small `/tmp`, all
    /// capabilities dropped, no-new-privileges, memory and pid limits, envlock's label.
    pub(crate) async fn create(&self, image: &str, launch: Launch) -> Result<String> {
        let mut host = HostConfig {
            network_mode: Some("none".to_string()),
            readonly_rootfs: Some(!launch.writable),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,noexec,nosuid,size=64m".to_string(),
            )])),
            cap_drop: Some(vec!["ALL".to_string()]),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            memory: Some(1 << 30),
            memory_swap: Some(1 << 30),
            pids_limit: Some(256),
            ..Default::default()
        };
        // An anonymous volume (removed with its container), labelled as the container is so
        // a leftover can be found (`docker volume ls --filter label=org.envlock.role`).
        host.mounts = launch.volume.as_ref().map(|volume| {
            vec![bollard::models::Mount {
                target: Some(volume.folder.clone()),
                typ: Some(bollard::models::MountType::VOLUME),
                volume_options: Some(bollard::models::MountVolumeOptions {
                    labels: Some(self.labels(launch.role)),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        host.device_requests = launch.gpus.map(|count| {
            vec![bollard::models::DeviceRequest {
                driver: Some(String::new()),
                count: Some(count),
                capabilities: Some(vec![vec!["gpu".to_string()]]),
                ..Default::default()
            }]
        });
        let mut exposed = None;
        if let Some(port) = launch.publish {
            let key = format!("{port}/tcp");
            host.network_mode = Some("bridge".to_string());
            host.port_bindings = Some(HashMap::from([(
                key.clone(),
                Some(vec![bollard::models::PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(String::new()),
                }]),
            )]));
            exposed = Some(vec![key]);
        }
        let (entrypoint, cmd) = match launch.command.split_first() {
            Some((program, args)) => (Some(vec![program.clone()]), Some(args.to_vec())),
            None => (None, None),
        };
        let config = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint,
            cmd,
            working_dir: launch.workdir.clone(),
            user: launch.user.clone(),
            env: (!launch.env.is_empty()).then(|| launch.env.clone()),
            labels: Some(self.labels(launch.role)),
            network_disabled: Some(launch.publish.is_none()),
            exposed_ports: exposed,
            open_stdin: Some(launch.stdin),
            stdin_once: Some(launch.stdin),
            attach_stdin: Some(launch.stdin),
            host_config: Some(host),
            ..Default::default()
        };
        // The create runs as a task of its own: a stop drops the caller, never the request,
        // so a container the engine makes is registered, and the way out, which waits for
        // creates in flight, removes it.
        let (answer, answered) = tokio::sync::oneshot::channel();
        let docker = self.docker.clone();
        let alive = self.alive.clone();
        let cut = self.create_cut.clone();
        let (timeout, role) = (self.timeout, launch.role);
        let task = tokio::spawn(async move {
            let created = bounded(
                timeout,
                docker.create_container(None::<CreateContainerOptions>, config),
            )
            .await;
            match &created {
                Ok(response) => {
                    alive
                        .lock()
                        .expect("never poisoned")
                        .insert(response.id.clone(), role);
                }
                // The engine's refusal: nothing was made.
                Err(bollard::errors::Error::DockerResponseServerError { .. }) => {}
                // No answer in time, or a cut connection: the engine may still make it, and
                // the way out sweeps by this run's label.
                Err(_) => cut.store(true, Ordering::Relaxed),
            }
            // The caller may be gone (a stop): the container is registered all the same.
            let _ = answer.send(created);
        });
        {
            let mut creating = self.creating.lock().expect("never poisoned");
            creating.retain(|task| !task.is_finished());
            creating.push(task);
        }
        let created = answered
            .await
            .expect("the create task answers unless it panicked");
        let created = created.map_err(self.failed(format!("creating a container of `{image}`")))?;
        if let Some(volume) = &launch.volume {
            if let Err(error) = self.upload(&created.id, volume).await {
                self.remove(&created.id).await;
                return Err(error);
            }
        }
        Ok(created.id)
    }

    /// Fills `volume` of container `id`: its files read-only, its folders writable by any
    /// user (a run as another UID writes its trace there).
    async fn upload(&self, id: &str, volume: &Volume) -> Result<()> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut written = Ok(());
        for (path, bytes) in &volume.entries {
            let mut header = tar::Header::new_gnu();
            let data: &[u8] = match bytes {
                Some(bytes) => {
                    header.set_mode(0o444);
                    bytes
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o1777);
                    &[]
                }
            };
            header.set_size(data.len() as u64);
            header.set_cksum();
            written = written.and_then(|()| tar.append_data(&mut header, path, data));
        }
        let tar = written
            .and_then(|()| tar.into_inner())
            .map_err(|source| Error::Docker {
                host: self.host.clone(),
                action: "packing a golden input".to_string(),
                source: bollard::errors::Error::IOError { err: source }.into(),
            })?;
        let folder = &volume.folder;
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: folder.clone(),
            ..Default::default()
        };
        self.timed(self.docker.upload_to_container(
            id,
            Some(options),
            bollard::body_full(tar.into()),
        ))
        .await
        .map_err(self.failed(format!("putting the golden input into `{folder}`")))
    }

    /// envlock's labels on what it creates in the engine, for `role`.
    fn labels(&self, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL.to_string(), role.to_string()),
            (RUN_LABEL.to_string(), self.run.clone()),
        ])
    }

    /// The host port that `port` of a started container is published on (`None`: it is
    /// not); an engine that fails the inspection is an error, not an unpublished port.
    pub(crate) async fn published_port(&self, id: &str, port: u16) -> Result<Option<u16>> {
        let inspect = self
            .timed(self.docker.inspect_container(id, None))
            .await
            .map_err(self.failed("inspecting a golden case's container"))?;
        let bindings = inspect
            .network_settings
            .and_then(|settings| settings.ports)
            .and_then(|mut ports| ports.remove(&format!("{port}/tcp")))
            .flatten()
            .unwrap_or_default();
        Ok(bindings
            .iter()
            .find_map(|binding| binding.host_port.as_ref()?.parse().ok()))
    }

    /// Starts `id` without waiting for it.
    pub(crate) async fn start(&self, id: &str) -> Result<(), Unfinished> {
        self.timed(self.docker.start_container(id, None))
            .await
            .map_err(|source| self.start_error(source))
    }

    /// Whether the engine can give containers of `image` `count` GPUs (`-1`: all): `Err`
    /// holds its refusal. Asked without running anything from the image: a container that
    /// requests them and whose program does not exist is started; the engine selects the
    /// GPUs' driver before it looks for the program, so an engine without GPUs refuses the
    /// start for them, and one with them for the missing program. Its words are the only
    /// place the refusal is told apart (as in [`Engine::start_error`]).
    pub(crate) async fn gpus_available(
        &self,
        image: &str,
        count: i64,
    ) -> Result<std::result::Result<(), String>> {
        let launch = Launch {
            command: vec!["/.envlock-no-such-program".to_string()],
            gpus: Some(count),
            role: "golden",
            ..Launch::default()
        };
        let id = self.create(image, launch).await?;
        let started = self.timed(self.docker.start_container(&id, None)).await;
        self.remove(&id).await;
        match started {
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("could not select device driver") =>
            {
                Ok(Err(message))
            }
            // Its program not found: the GPUs were given. Any other refusal of the start (an
            // NVIDIA runtime with no driver loaded, say) is the engine's, in its words.
            Err(source) => match self.start_error(source) {
                Unfinished::Engine(error) => Ok(Err(error.to_string())),
                _ => Ok(Ok(())),
            },
            Ok(()) => Ok(Ok(())),
        }
    }

    /// Starts `id`, feeds it `input` on stdin (when created with `stdin`), and collects its
    /// output until it exits or `limit` passes.
    pub(crate) async fn run(
        &self,
        id: &str,
        limit: Duration,
        input: Option<Vec<u8>>,
    ) -> Result<Finished, Unfinished> {
        let engine_error = |action: &str, source| Unfinished::Engine(self.failed(action)(source));
        let attached = self
            .timed(self.docker.attach_container(
                id,
                Some(AttachContainerOptions {
                    stdin: input.is_some(),
                    stdout: true,
                    stderr: true,
                    stream: true,
                    logs: true,
                    ..Default::default()
                }),
            ))
            .await
            .map_err(|e| engine_error("attaching to a container", e))?;
        self.start(id).await?;
        // Written while the output is read, within the limit: a container that does not
        // read its stdin must not hold the write forever.
        let feed = async {
            if let Some(bytes) = input {
                use tokio::io::AsyncWriteExt;
                let mut writer = attached.input;
                let _ = writer.write_all(&bytes).await;
                let _ = writer.shutdown().await;
            }
        };
        let collect = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut output = attached.output;
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        stdout.extend_from_slice(&message)
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.extend_from_slice(&message)
                    }
                    Ok(_) => {}
                    Err(source) => {
                        return Err(engine_error("reading a container's output", source))
                    }
                }
            }
            let code = match self.docker.wait_container(id, None).next().await {
                Some(Ok(response)) => response.status_code,
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(source)) => return Err(engine_error("waiting for a container", source)),
                None => -1,
            };
            Ok(Finished {
                code: Some(code),
                stdout,
                stderr,
            })
        };
        let both = async { tokio::join!(feed, collect).1 };
        tokio::time::timeout(limit, both)
            .await
            .unwrap_or(Err(Unfinished::Timeout))
    }

    /// Removes a container (killing it if it runs) and its volume. Tried
    /// [`REMOVAL_TRIES`] times, each bounded: an engine that never answers a removal must
    /// not hold the way out (a stop included) forever. A container still there is recorded
    /// in [`Engine::left`], for the run to name.
    pub(crate) async fn remove(&self, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let limit = self.timeout.clamp(REMOVAL_FLOOR, REMOVAL_TIMEOUT);
        let mut removed = false;
        for attempt in 0..REMOVAL_TRIES {
            if attempt > 0 {
                tokio::time::sleep(REMOVAL_PAUSE).await;
            }
            let removal = self.docker.remove_container(id, Some(options.clone()));
            match bounded(limit, removal).await {
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {
                    removed = true;
                    break;
                }
                Err(_) => {}
            }
        }
        if !removed {
            // A removal still in progress (409) may have finished since.
            let inspect = bounded(limit, self.docker.inspect_container(id, None)).await;
            removed = matches!(
                inspect,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })
            );
        }
        let role = self.alive.lock().expect("never poisoned").remove(id);
        if !removed {
            let role = role.unwrap_or("unknown");
            self.left
                .lock()
                .expect("never poisoned")
                .insert(id.to_string(), role);
        }
    }

    /// Removes every container still registered (on the way out, Ctrl-C included), once
    /// the creates in flight have their answers.
    pub(crate) async fn remove_all(&self) {
        // Each answer is awaited for a bounded while (a stop is on its way out, and a
        // supervisor's kill follows its stop within seconds); a create that does not answer
        // by then, or whose task failed, may still land: the sweep below finds it by label.
        let creating = std::mem::take(&mut *self.creating.lock().expect("never poisoned"));
        let wait = self.timeout.min(CREATE_WAIT);
        for task in creating {
            if !matches!(tokio::time::timeout(wait, task).await, Ok(Ok(()))) {
                self.create_cut.store(true, Ordering::Relaxed);
            }
        }
        let alive: Vec<String> = self
            .alive
            .lock()
            .expect("never poisoned")
            .keys()
            .cloned()
            .collect();
        for id in alive {
            self.remove(&id).await;
        }
        if self.create_cut.swap(false, Ordering::Relaxed) {
            self.sweep().await;
        }
    }

    /// Removes the containers labelled with this run, until none has shown up for a moment:
    /// the engine finishes a create whose client went away on its own time.
    async fn sweep(&self) {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{RUN_LABEL}={}", self.run)],
        )]);
        let mut quiet = 0;
        for _ in 0..SWEEP_ROUNDS {
            let options = ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            };
            let found = bounded(
                self.timeout.clamp(REMOVAL_FLOOR, REMOVAL_TIMEOUT),
                self.docker.list_containers(Some(options)),
            )
            .await;
            // One the engine already refused to remove is named, not asked again.
            let left = self.left.lock().expect("never poisoned").clone();
            let ids: Vec<String> = found
                .unwrap_or_default()
                .into_iter()
                .filter_map(|container| container.id)
                .filter(|id| !left.contains_key(id))
                .collect();
            if ids.is_empty() {
                quiet += 1;
                if quiet == SWEEP_QUIET {
                    return;
                }
            } else {
                quiet = 0;
            }
            for id in ids {
                self.remove(&id).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sweep's bound: 100 ms rounds, done after this many empty ones in a row.
const SWEEP_ROUNDS: usize = 30;
/// How long one removal of a container may take: the engine timeout, but at least the
/// floor (a busy engine takes seconds) and at most the ceiling (the way out must end).
const REMOVAL_FLOOR: Duration = Duration::from_secs(10);
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a removal is asked for, and the pause between two.
const REMOVAL_TRIES: usize = 3;
const REMOVAL_PAUSE: Duration = Duration::from_millis(500);
const SWEEP_QUIET: usize = 3;
/// How long the way out waits for a create in flight to answer, at most.
const CREATE_WAIT: Duration = Duration::from_secs(5);

/// `call` bounded by `limit`: past it, bollard's own timeout error.
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, bollard::errors::Error> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(bollard::errors::Error::RequestTimeoutError))
}

/// What the client said, a timeout named with its limit and variable.
fn fault(source: bollard::errors::Error, limit: Duration) -> EngineFault {
    match source {
        bollard::errors::Error::RequestTimeoutError => {
            EngineFault::timeout(crate::settings::waited(limit, "ENVLOCK_ENGINE_TIMEOUT"))
        }
        source => source.into(),
    }
}

/// A value of [`RUN_LABEL`] unique on this machine: the process and the moment.
fn run_id() -> String {
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let connection = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos:x}-{connection}", std::process::id())
}
