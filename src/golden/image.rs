//! Running golden cases in an image: a command case in the same locked-down container as
//! the probe (no network), with the model's own command and the input mounted read-only; an
//! HTTP case in a container started with the image's own entrypoint (or the case's command),
//! its port published on 127.0.0.1 only. Containers are removed on every way out; the
//! engine connection is the run's own ([`Session`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::call_when_ready;
use super::local::read_input;
use super::{substitute, CaseError, Runner};
use crate::capture::image::{Engine, Launch, DEFAULT_PATH};
use crate::capture::Session;
use crate::error::Result;
use crate::lock::{GoldenSpec, HttpCase};
use crate::process::{tail, Unfinished};
use crate::stop::Stop;

/// An image of the local engine, ready to run golden cases.
pub(super) struct ImageRunner<'a> {
    session: &'a Session,
    image: String,
    /// `PATH=…` with the captured interpreter's folder first, as on the dev side.
    path: Option<String>,
    /// The run's stop request, which also ends a wait for a server.
    stop: Arc<Stop>,
}

/// Where the input is mounted inside the container.
const INPUT_FOLDER: &str = "/envlock/input";

impl<'a> ImageRunner<'a> {
    /// Finds `reference` in the engine (it must exist locally); cases run with the folder of
    /// `python` (the captured interpreter) first on the image's `PATH`.
    pub(super) fn new(
        session: &'a Session,
        reference: &str,
        python: Option<&str>,
    ) -> Result<ImageRunner<'a>> {
        let inspect = session.run(|engine| engine.inspect(reference))?;
        let image_path = inspect
            .config
            .and_then(|config| config.env)
            .unwrap_or_default()
            .into_iter()
            .find_map(|pair| pair.strip_prefix("PATH=").map(str::to_string))
            .unwrap_or_else(|| DEFAULT_PATH.to_string());
        let path = python
            .and_then(|python| python.rsplit_once('/'))
            .map(|(bin, _)| format!("PATH={bin}:{image_path}"));
        let image = inspect.id.unwrap_or_else(|| reference.to_string());
        Ok(ImageRunner {
            session,
            image,
            path,
            stop: session.stop(),
        })
    }
}

impl Runner for ImageRunner<'_> {
    fn run(&self, spec: &GoldenSpec, input: &Path) -> Result<Result<String, CaseError>> {
        self.session
            .run(|engine| async move { Ok(run_case(engine, self, spec, input).await) })
    }
}

async fn run_case(
    engine: &Engine,
    runner: &ImageRunner<'_>,
    spec: &GoldenSpec,
    input: &Path,
) -> Result<String, CaseError> {
    let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
    let name = super::file_name(input);
    let inside = format!("{INPUT_FOLDER}/{name}");
    let host_input = std::path::absolute(input).map_err(|e| CaseError(e.to_string()))?;
    let launch = Launch {
        command: substitute(&spec.command, &inside),
        binds: vec![format!("{}:{inside}:ro", host_input.display())],
        workdir: spec.workdir.clone(),
        env: runner.path.iter().cloned().collect(),
        stdin: spec.stdin && spec.http.is_none(),
        publish: spec.http.as_ref().map(|http| http.port),
        role: "golden",
    };
    let id = engine
        .create(&runner.image, launch)
        .await
        .map_err(|e| CaseError(e.to_string()))?;
    let result = match &spec.http {
        Some(http) => serve(engine, runner, &id, http, input, limit).await,
        None => command(engine, &id, spec, input, limit).await,
    };
    engine.remove(&id).await;
    result
}

async fn command(
    engine: &Engine,
    id: &str,
    spec: &GoldenSpec,
    input: &Path,
    limit: Duration,
) -> Result<String, CaseError> {
    let stdin = if spec.stdin {
        Some(read_input(input)?)
    } else {
        None
    };
    match engine.run(id, limit, stdin).await {
        Ok(finished) if finished.success() => {
            Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
        }
        Ok(finished) => Err(CaseError(format!(
            "the command exited with {}; stderr: `{}`",
            finished.exit(),
            tail(&finished.stderr, 5)
        ))),
        Err(Unfinished::NotStarted(_)) => Err(CaseError(format!(
            "`{}` was not found in the image",
            spec.command.first().map_or("", String::as_str)
        ))),
        Err(Unfinished::Timeout) => Err(CaseError(format!("timed out after {}s", spec.timeout))),
        Err(Unfinished::Engine(error)) => Err(CaseError(error.to_string())),
        Err(Unfinished::Stopped(_)) => Err(CaseError("stopped".to_string())),
    }
}

async fn serve(
    engine: &Engine,
    runner: &ImageRunner<'_>,
    id: &str,
    http: &HttpCase,
    input: &Path,
    limit: Duration,
) -> Result<String, CaseError> {
    let deadline = Instant::now() + limit;
    match engine.start(id).await {
        Ok(()) => {}
        Err(Unfinished::NotStarted(_)) => {
            return Err(CaseError(
                "the server's command was not found in the image".into(),
            ))
        }
        Err(Unfinished::Engine(error)) => return Err(CaseError(error.to_string())),
        Err(Unfinished::Timeout | Unfinished::Stopped(_)) => {
            return Err(CaseError("timed out starting the server".into()))
        }
    }
    let port = engine
        .published_port(id, http.port)
        .await
        .ok_or_else(|| CaseError(format!("port {} was not published", http.port)))?;
    let body = read_input(input)?;
    let (method, path) = (http.method.clone(), http.path.clone());
    let stop = runner.stop.clone();
    let stopped = move || stop.requested().is_some();
    tokio::task::spawn_blocking(move || {
        call_when_ready(port, &method, &path, &body, deadline, &stopped)
    })
    .await
    .map_err(|e| CaseError(e.to_string()))?
    .map_err(CaseError)
}
