//! Running golden cases in an image: a command case in the same locked-down container as
//! the probe (no network), with the model's own command and the input put in through the API; an
//! HTTP case in a container started with the image's own entrypoint (or the case's command),
//! its port published on 127.0.0.1 only. Containers are removed on every way out; the
//! engine connection is the run's own ([`Session`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::{call_when_ready, time_requests};
use super::local::read_input;
use super::trace::{self, Trace, Traced, Untraced};
use super::{substitute, CaseError, Ran, Runner};
use crate::capture::engine::{ArchiveError, Container, Engine, Launch, Volume};
use crate::capture::read::select::DEFAULT_PATH;
use crate::capture::{Ended, Job, Jobs, Ran as JobsRan, Session, VOLUME};
use crate::config::Gpus;
use crate::error::Result;
use crate::lock::{GoldenCase, GoldenSpec, HttpCase, LatencySpec};
use crate::process::{tail, Unfinished};
use crate::stop::Stop;

/// An image of the local engine, ready to run golden cases.
pub(super) struct ImageRunner<'a> {
    session: &'a Session,
    image: String,
    /// `PATH=…` with the captured interpreter's folder first, as on the dev side.
    path: Option<String>,
    /// `PYTHONPATH=…` with envlock's tracer first, then the image's own.
    python_path: String,
    /// `UID[:GID]` to run as, instead of the image's `USER`.
    run_as: Option<String>,
    /// The captured interpreter, which times command cases from inside the container.
    python: Option<String>,
    /// The run's stop request, which also ends a wait for a server.
    stop: Arc<Stop>,
    /// The cases already run in the probe's container (see [`shared`]): what each gave.
    prerun: Mutex<Prerun>,
    /// The GPUs each case's container asks for (`[deploy] gpus`), when the engine has them.
    gpus: Option<i64>,
    /// What the report says of the run: GPUs asked for that the engine does not have.
    notes: Vec<String>,
}

/// What the cases run in the probe's container gave, by case name: their output and trace.
pub(crate) type Prerun = BTreeMap<String, Result<(String, Traced), CaseError>>;

/// envlock's anonymous volume in the container: the input in `input/`, the tracer in
/// `trace/`, which writes into `trace/out/`.
const INPUT_FOLDER: &str = "/envlock/input";
const TRACE_FOLDER: &str = "/envlock/trace";
const TRACE_OUT: &str = "/envlock/trace/out";

impl<'a> ImageRunner<'a> {
    /// Finds `reference` in the engine (it must exist locally); cases run with the folder of
    /// `python` (the captured interpreter) first on the image's `PATH`, on `gpus` when the
    /// engine has them (else on CPU, and the report says so).
    pub(super) fn new(
        session: &'a Session,
        reference: &str,
        python: Option<&str>,
        run_as: Option<&str>,
        prerun: Prerun,
        gpus: Option<Gpus>,
    ) -> Result<ImageRunner<'a>> {
        let inspect = session.run(|engine| engine.inspect(reference))?;
        let env = inspect
            .config
            .and_then(|config| config.env)
            .unwrap_or_default();
        let variable = |name: &str| {
            env.iter().find_map(|pair| {
                pair.strip_prefix(name)?
                    .strip_prefix('=')
                    .map(str::to_string)
            })
        };
        let image_path = variable("PATH").unwrap_or_else(|| DEFAULT_PATH.to_string());
        let python_path = match variable("PYTHONPATH").filter(|value| !value.is_empty()) {
            Some(own) => format!("PYTHONPATH={TRACE_FOLDER}:{own}"),
            None => format!("PYTHONPATH={TRACE_FOLDER}"),
        };
        let path = python
            .and_then(|python| python.rsplit_once('/'))
            .map(|(bin, _)| format!("PATH={bin}:{image_path}"));
        let image = inspect.id.unwrap_or_else(|| reference.to_string());
        let mut notes = Vec::new();
        let gpus = match gpus {
            Some(gpus) => {
                let count = gpus.count();
                match session.run(|engine| engine.gpus_available(&image, count))? {
                    Ok(()) => Some(count),
                    Err(refusal) => {
                        notes.push(format!(
                            "`[deploy] gpus`: the engine has no GPUs to give ({refusal}), so \
                             the golden cases ran on CPU"
                        ));
                        None
                    }
                }
            }
            None => None,
        };
        Ok(ImageRunner {
            session,
            image,
            path,
            python_path,
            run_as: run_as.map(str::to_string),
            python: python.map(str::to_string),
            stop: session.stop(),
            prerun: Mutex::new(prerun),
            gpus,
            notes,
        })
    }
}

impl Runner for ImageRunner<'_> {
    fn run(&self, spec: &GoldenSpec, input: &Path, timed: bool) -> Result<Result<Ran, CaseError>> {
        self.session
            .run(|engine| async move { Ok(run_case(engine, self, spec, input, timed).await) })
    }

    fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

async fn run_case(
    engine: &Engine,
    runner: &ImageRunner<'_>,
    spec: &GoldenSpec,
    input: &Path,
    timed: bool,
) -> Result<Ran, CaseError> {
    let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
    let latency = spec.latency.as_ref().filter(|_| timed);
    let inside = format!("{INPUT_FOLDER}/{}", super::file_name(input));
    let prerun = runner
        .prerun
        .lock()
        .expect("never poisoned")
        .remove(&spec.name);
    if let Some(prerun) = prerun.filter(|_| spec.http.is_none()) {
        let (output, trace) = prerun?;
        let mut ran = Ran {
            output,
            samples: None,
            trace,
        };
        if let Some(latency) = latency {
            ran.samples = Some(time_command(engine, runner, spec, input, &inside, latency).await);
        }
        return Ok(ran);
    }
    let launch = launch(
        runner,
        spec,
        input,
        substitute(&spec.command, &inside),
        true,
    )?;
    let id = engine
        .create(&runner.image, launch)
        .await
        .map_err(|e| CaseError(e.to_string()))?;
    let result = match &spec.http {
        Some(http) => serve(engine, runner, &id, http, input, limit, latency).await,
        None => command(engine, &id, spec, input, limit)
            .await
            .map(|output| Ran {
                output,
                samples: None,
                trace: Err(Untraced::NotTraced),
            }),
    };
    // Read while the container is there (a server's workers wrote as they loaded).
    let traced = match &result {
        Ok(_) => read_trace(engine, &id, spec).await,
        Err(_) => Err(Untraced::NotTraced),
    };
    engine.remove(&id).await;
    let result = result.map(|ran| Ran {
        trace: traced,
        ..ran
    });
    let mut ran = result?;
    if let (Some(latency), None) = (latency, &spec.http) {
        ran.samples = Some(time_command(engine, runner, spec, input, &inside, latency).await);
    }
    Ok(ran)
}

/// What a case's processes wrote into the trace folder of container `id`.
async fn read_trace(engine: &Engine, id: &str, spec: &GoldenSpec) -> Traced {
    let container = Container::new(engine, id);
    let read = container
        .read_archive(TRACE_OUT, |tar| {
            let mut trace = Trace::default();
            trace.add_tar(tar)?;
            Ok(trace)
        })
        .await;
    match read {
        Ok(trace) => trace.or_why(&spec.command),
        Err(ArchiveError::NotFound) => Err(Untraced::Gone),
        Err(ArchiveError::Other(error)) => Err(Untraced::Unreadable(std::io::Error::other(error))),
    }
}

/// How a case's container is made: its command, the input (and, when `traced`, envlock's
/// tracer) put in through the API (so a remote engine gets it too), the case's working
/// folder, `PATH` with the captured interpreter first, and the identity to run as. Its
/// root is writable, as where the model is deployed.
fn launch(
    runner: &ImageRunner<'_>,
    spec: &GoldenSpec,
    input: &Path,
    command: Vec<String>,
    traced: bool,
) -> Result<Launch, CaseError> {
    let bytes = read_input(input)?;
    let mut entries = vec![(format!("input/{}", super::file_name(input)), Some(bytes))];
    let mut env: Vec<String> = runner.path.iter().cloned().collect();
    if traced {
        entries.push((
            "trace/sitecustomize.py".to_string(),
            Some(trace::SITECUSTOMIZE.as_bytes().to_vec()),
        ));
        entries.push(("trace/out".to_string(), None));
        env.push(runner.python_path.clone());
        env.push(format!("{}={TRACE_OUT}", trace::VARIABLE));
    }
    Ok(Launch {
        command,
        volume: Some(Volume {
            folder: VOLUME.to_string(),
            entries,
        }),
        workdir: spec.workdir.clone(),
        env,
        stdin: spec.stdin && spec.http.is_none(),
        publish: spec.http.as_ref().map(|http| http.port),
        user: runner.run_as.clone(),
        writable: true,
        role: "golden",
        gpus: runner.gpus,
    })
}

/// Runs a command case `warmup + runs` times in one more container, timed from inside it
/// (by the captured interpreter, from each process's start to its exit), so the
/// container's own start is not counted.
async fn time_command(
    engine: &Engine,
    runner: &ImageRunner<'_>,
    spec: &GoldenSpec,
    input: &Path,
    inside: &str,
    latency: &LatencySpec,
) -> Result<Vec<f64>, CaseError> {
    let python = runner.python.as_deref().ok_or_else(|| {
        CaseError(
            "a command case is timed inside the image by its Python, and no Python was captured"
                .to_string(),
        )
    })?;
    let mut timer = vec![
        python.to_string(),
        "-c".to_string(),
        TIMER.to_string(),
        latency.warmup.to_string(),
        latency.runs.to_string(),
        if spec.stdin {
            inside.to_string()
        } else {
            String::new()
        },
    ];
    timer.extend(substitute(&spec.command, inside));
    let mut launch = launch(runner, spec, input, timer, false)?;
    launch.stdin = false;
    let id = engine
        .create(&runner.image, launch)
        .await
        .map_err(|e| CaseError(e.to_string()))?;
    let runs = f64::from(latency.warmup + latency.runs);
    let limit = Duration::from_secs_f64(spec.timeout.max(0.001) * runs);
    let finished = engine.run(&id, limit, None).await;
    engine.remove(&id).await;
    let finished = finished.map_err(|unfinished| match unfinished {
        Unfinished::Timeout => CaseError(format!(
            "the timed runs took longer than {runs} × {}s",
            spec.timeout
        )),
        Unfinished::NotStarted(error) => {
            CaseError(format!("the interpreter `{python}` did not start: {error}"))
        }
        Unfinished::Engine(error) => CaseError(error.to_string()),
        Unfinished::Stopped(_) => CaseError("stopped".to_string()),
    })?;
    if !finished.success() {
        return Err(CaseError(format!(
            "the timer exited with {}; stderr: `{}`",
            finished.exit(),
            tail(&finished.stderr, 5)
        )));
    }
    serde_json::from_slice::<Vec<f64>>(&finished.stdout).map_err(|_| {
        CaseError(format!(
            "a timed run failed: {}",
            String::from_utf8_lossy(&finished.stdout).trim()
        ))
    })
}

/// Times a command inside the container: `TIMER WARMUP RUNS STDIN-PATH-OR-EMPTY ARGV...`
/// prints the timed runs' milliseconds as a JSON list, or why a run failed.
const TIMER: &str = r#"
import json, subprocess, sys, time
warmup, runs, stdin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
samples = []
for run in range(warmup + runs):
    source = open(stdin, "rb") if stdin else subprocess.DEVNULL
    start = time.perf_counter()
    done = subprocess.run(sys.argv[4:], stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if stdin:
        source.close()
    if done.returncode:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        print("run %d exited with %d: %s" % (run + 1, done.returncode, " / ".join(tail)))
        sys.exit(0)
    if run >= warmup:
        samples.append(elapsed * 1000)
print(json.dumps(samples))
"#;

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
    latency: Option<&LatencySpec>,
) -> Result<Ran, CaseError> {
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
        .map_err(|e| CaseError(e.to_string()))?
        .ok_or_else(|| CaseError(format!("port {} was not published", http.port)))?;
    let body = read_input(input)?;
    let (method, path) = (http.method.clone(), http.path.clone());
    let stop = runner.stop.clone();
    let stopped = move || stop.requested().is_some();
    let latency = latency.cloned();
    tokio::task::spawn_blocking(move || {
        let output = call_when_ready(port, &method, &path, &body, deadline, &stopped)
            .map_err(CaseError::from)?;
        let samples = latency.map(|latency| {
            time_requests(port, &method, &path, &body, &latency, limit, &stopped)
                .map_err(CaseError::from)
        });
        Ok(Ran {
            output,
            samples,
            trace: Err(Untraced::NotTraced),
        })
    })
    .await
    .map_err(|e| CaseError(e.to_string()))?
}

/// The baseline's cases that run in the probe's container of the target image: the jobs,
/// and the case behind each. A command case qualifies when it runs as the image's `USER`
/// (no `--run-as`) and its input is at hand under a name no other such case uses; HTTP
/// cases and the rest get their own containers.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) jobs: Jobs,
    /// Per job: the case's name and command.
    cases: Vec<(String, Vec<String>, f64)>,
}

/// The jobs for the `baseline` cases that can run beside the probe (see [`Shared`]).
pub(crate) fn shared(baseline: &[GoldenCase], inputs: &super::Inputs) -> Shared {
    let mut shared = Shared::default();
    let mut names = BTreeSet::new();
    for case in baseline {
        let spec = &case.spec;
        if spec.http.is_some() {
            continue;
        }
        // An input that cannot be had is reported when the case runs.
        let Ok((_folder, path)) = super::input_path(case, inputs) else {
            continue;
        };
        let Ok(bytes) = read_input(&path) else {
            continue;
        };
        let name = super::file_name(&path);
        if !names.insert(name.clone()) {
            continue;
        }
        let index = shared.cases.len();
        if index == 0 {
            let tracer = trace::SITECUSTOMIZE.as_bytes().to_vec();
            shared
                .jobs
                .files
                .push(("trace/sitecustomize.py".to_string(), Some(tracer)));
        }
        shared
            .jobs
            .files
            .push((format!("input/{name}"), Some(bytes)));
        shared.jobs.files.push((format!("out/trace-{index}"), None));
        let inside = format!("{INPUT_FOLDER}/{name}");
        shared.jobs.jobs.push(Job {
            argv: substitute(&spec.command, &inside),
            env: BTreeMap::from([(
                trace::VARIABLE.to_string(),
                format!("{VOLUME}/out/trace-{index}"),
            )]),
            prepend: BTreeMap::from([("PYTHONPATH".to_string(), TRACE_FOLDER.to_string())]),
            cwd: spec.workdir.clone(),
            stdin: spec.stdin.then(|| inside.clone()),
            timeout: spec.timeout.max(0.001),
            path_first: true,
            background: false,
        });
        shared
            .cases
            .push((spec.name.clone(), spec.command.clone(), spec.timeout));
    }
    shared
}

/// What each shared case gave, from what its job did; a case whose job did not run (the
/// runner failed) is left out, to run in a container of its own.
pub(crate) fn outcomes(shared: &Shared, ran: Option<JobsRan>) -> Prerun {
    let Some(mut ran) = ran else {
        return Prerun::new();
    };
    let mut outcomes = Prerun::new();
    for (index, ((name, command, timeout), ended)) in shared.cases.iter().zip(ran.ended).enumerate()
    {
        let program = command.first().map_or("", String::as_str);
        let outcome = match ended {
            Ended::Exited(finished) if finished.success() => {
                let prefix = format!("trace-{index}/");
                let mut trace = Trace::default();
                if !ran.whole {
                    trace.cut_short();
                }
                let files: Vec<String> = ran
                    .files
                    .keys()
                    .filter(|path| path.starts_with(&prefix) && path.ends_with(".trace"))
                    .cloned()
                    .collect();
                for path in files {
                    if let Some(bytes) = ran.files.remove(&path) {
                        trace.add_file(&bytes);
                    }
                }
                let output = String::from_utf8_lossy(&finished.stdout).into_owned();
                Ok((output, trace.or_why(command)))
            }
            Ended::Exited(finished) => Err(CaseError(format!(
                "the command exited with {}; stderr: `{}`",
                finished.exit(),
                tail(&finished.stderr, 5)
            ))),
            Ended::NotStarted(true, _) => {
                Err(CaseError(format!("`{program}` was not found in the image")))
            }
            Ended::NotStarted(false, detail) => Err(CaseError(format!(
                "`{program}` could not be started: {detail}"
            ))),
            Ended::Timeout => Err(CaseError(format!("timed out after {timeout}s"))),
        };
        outcomes.insert(name.clone(), outcome);
    }
    outcomes
}
