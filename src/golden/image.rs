//! Running golden cases in an image: a command case in the same locked-down container as
//! the probe (no network), with the model's own command and the input mounted read-only; an
//! HTTP case in a container started with the image's own entrypoint (or the case's command),
//! its port published on 127.0.0.1 only. Containers are removed on every way out; the
//! engine connection is the run's own ([`Session`]).

use std::path::Path;
use std::time::{Duration, Instant};

use super::http::call_when_ready;
use super::local::read_input;
use super::{substitute, CaseError, Runner};
use crate::capture::image::{Engine, Launch};
use crate::capture::Session;
use crate::error::Result;
use crate::lock::{GoldenSpec, HttpCase};
use crate::process::{tail, Unfinished};

/// An image of the local engine, ready to run golden cases.
pub(super) struct ImageRunner<'a> {
    session: &'a Session,
    image: String,
}

/// Where the input is mounted inside the container.
const INPUT_FOLDER: &str = "/envlock/input";

impl<'a> ImageRunner<'a> {
    /// Finds `reference` in the engine (it must exist locally).
    pub(super) fn new(session: &'a Session, reference: &str) -> Result<ImageRunner<'a>> {
        let image = session.run(|engine| async move {
            let inspect = engine.inspect(reference).await?;
            Ok(inspect.id.unwrap_or_else(|| reference.to_string()))
        })?;
        Ok(ImageRunner { session, image })
    }
}

impl Runner for ImageRunner<'_> {
    fn run(&self, spec: &GoldenSpec, input: &Path) -> Result<Result<String, CaseError>> {
        let image = self.image.as_str();
        self.session
            .run(|engine| async move { Ok(run_case(engine, image, spec, input).await) })
    }
}

async fn run_case(
    engine: &Engine,
    image: &str,
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
        stdin: spec.stdin && spec.http.is_none(),
        publish: spec.http.as_ref().map(|http| http.port),
        role: "golden",
    };
    let id = engine
        .create(image, launch)
        .await
        .map_err(|e| CaseError(e.to_string()))?;
    let result = match &spec.http {
        Some(http) => serve(engine, &id, http, input, limit).await,
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
    }
}

async fn serve(
    engine: &Engine,
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
        Err(Unfinished::Timeout) => return Err(CaseError("timed out starting the server".into())),
    }
    let port = engine
        .published_port(id, http.port)
        .await
        .ok_or_else(|| CaseError(format!("port {} was not published", http.port)))?;
    let body = read_input(input)?;
    let (method, path) = (http.method.clone(), http.path.clone());
    tokio::task::spawn_blocking(move || call_when_ready(port, &method, &path, &body, deadline))
        .await
        .map_err(|e| CaseError(e.to_string()))?
        .map_err(CaseError)
}
