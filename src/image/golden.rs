//! Running golden cases in an image: a command case in the same locked-down container as
//! the probe (no network), with the model's own command and the input mounted read-only; an
//! HTTP case in a container started with the image's own entrypoint (or the case's command),
//! its port published on 127.0.0.1 only. Containers are removed on every way out.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::engine::{Engine, Launch, RunError};
use crate::error::Result;
use crate::golden::{call_when_ready, substitute, Failure, Runtime};
use crate::lock::GoldenSpec;

/// An image of the local engine, ready to run golden cases.
pub struct ImageRuntime {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    image: String,
    interrupted: AtomicBool,
}

/// Where the input is mounted inside the container.
const INPUT_FOLDER: &str = "/envlock/input";

impl ImageRuntime {
    /// Connects to the engine for `reference` (which must exist locally).
    pub fn connect(reference: &str) -> Result<ImageRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime always builds");
        let (engine, image) = runtime.block_on(async {
            let engine = Engine::connect().await?;
            let inspect = engine.inspect(reference).await?;
            Ok::<_, crate::Error>((engine, inspect.id.unwrap_or_else(|| reference.to_string())))
        })?;
        Ok(ImageRuntime {
            runtime,
            engine,
            image,
            interrupted: AtomicBool::new(false),
        })
    }

    async fn run_case(&self, spec: &GoldenSpec, input: &Path) -> Result<String, Failure> {
        let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
        let name = input
            .file_name()
            .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
        let inside = format!("{INPUT_FOLDER}/{name}");
        let host_input = std::path::absolute(input).map_err(|e| Failure(e.to_string()))?;
        let launch = Launch {
            command: substitute(&spec.command, &inside),
            binds: vec![format!("{}:{inside}:ro", host_input.display())],
            workdir: spec.workdir.clone(),
            stdin: spec.stdin && spec.http.is_none(),
            publish: spec.http.as_ref().map(|http| http.port),
            role: "golden",
        };
        let id = self
            .engine
            .create(&self.image, launch)
            .await
            .map_err(|e| Failure(e.to_string()))?;
        let result = match &spec.http {
            Some(http) => self.serve(&id, http, input, limit).await,
            None => self.command(&id, spec, input, limit).await,
        };
        self.engine.remove(&id).await;
        result
    }

    async fn command(
        &self,
        id: &str,
        spec: &GoldenSpec,
        input: &Path,
        limit: Duration,
    ) -> Result<String, Failure> {
        let stdin = if spec.stdin {
            Some(std::fs::read(input).map_err(|e| Failure(format!("cannot read the input: {e}")))?)
        } else {
            None
        };
        match self.engine.run(id, limit, stdin).await {
            Ok(finished) if finished.code == 0 => {
                Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
            }
            Ok(finished) => Err(Failure(format!(
                "the command exited with {}; stderr: `{}`",
                finished.code,
                crate::process::tail(&finished.stderr, 5)
            ))),
            Err(RunError::NotFound) => Err(Failure(format!(
                "`{}` was not found in the image",
                spec.command.first().map_or("", String::as_str)
            ))),
            Err(RunError::Timeout) => Err(Failure(format!("timed out after {}s", spec.timeout))),
            Err(RunError::Engine(error)) => Err(Failure(error.to_string())),
        }
    }

    async fn serve(
        &self,
        id: &str,
        http: &crate::lock::HttpCase,
        input: &Path,
        limit: Duration,
    ) -> Result<String, Failure> {
        let deadline = Instant::now() + limit;
        match self.engine.start(id).await {
            Ok(()) => {}
            Err(RunError::NotFound) => {
                return Err(Failure(
                    "the server's command was not found in the image".into(),
                ))
            }
            Err(RunError::Engine(error)) => return Err(Failure(error.to_string())),
            Err(RunError::Timeout) => return Err(Failure("timed out starting the server".into())),
        }
        let port = self
            .engine
            .published_port(id, http.port)
            .await
            .ok_or_else(|| Failure(format!("port {} was not published", http.port)))?;
        let body =
            std::fs::read(input).map_err(|e| Failure(format!("cannot read the input: {e}")))?;
        let (method, path) = (http.method.clone(), http.path.clone());
        tokio::task::spawn_blocking(move || call_when_ready(port, &method, &path, &body, deadline))
            .await
            .map_err(|e| Failure(e.to_string()))?
            .map_err(Failure)
    }
}

impl Runtime for ImageRuntime {
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    fn run(&self, spec: &GoldenSpec, input: &Path) -> Result<String, Failure> {
        if self.interrupted() {
            return Err(Failure("interrupted".to_string()));
        }
        self.runtime.block_on(async {
            tokio::select! {
                result = self.run_case(spec, input) => result,
                _ = tokio::signal::ctrl_c() => {
                    self.engine.remove_all().await;
                    self.interrupted.store(true, Ordering::Relaxed);
                    Err(Failure("interrupted".to_string()))
                }
            }
        })
    }
}
