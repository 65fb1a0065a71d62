//! Running golden cases in a local runtime (the dev interpreter, or `python:PATH`): the
//! command starts with the interpreter's folder first on `PATH`, so `python` in a case is
//! the interpreter being captured. Each command, and each HTTP server, runs in its own
//! process group, stopped whole on the way out.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{call_when_ready, time_requests};
use super::trace::{HostTrace, Traced, Untraced};
use super::{substitute, CaseError, Ran, Runner};
use crate::error::Result;
use crate::lock::{GoldenSpec, LatencySpec};
use crate::process::{self, Group, Unfinished};
use crate::settings::Settings;

/// A local interpreter; cases run from the config's folder.
pub(super) struct LocalRunner<'a> {
    /// The interpreter whose folder goes first on `PATH`.
    pub(super) interpreter: PathBuf,
    /// The config's folder and the environment to start from.
    pub(super) settings: &'a Settings,
}

impl LocalRunner<'_> {
    /// The case's command; with `trace`, traced.
    fn command(
        &self,
        spec: &GoldenSpec,
        input: &Path,
        trace: Option<&HostTrace>,
    ) -> Result<Command, CaseError> {
        let argv = substitute(&spec.command, &input.to_string_lossy());
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| CaseError("the case has no `command` to run".to_string()))?;
        let mut command = Command::new(program);
        command.args(args);
        let folder = &self.settings.config_folder;
        command.current_dir(folder.join(spec.workdir.as_deref().unwrap_or(".")));
        if let Some(bin) = self.interpreter.parent() {
            let mut paths = vec![bin.to_path_buf()];
            paths.extend(self.settings.environment.path_folders());
            if let Ok(joined) = std::env::join_paths(paths) {
                command.env("PATH", joined);
            }
        }
        if let Some(trace) = trace {
            command.envs(trace.env(self.settings.environment.get("PYTHONPATH")));
        }
        Ok(command)
    }

    fn serve(
        &self,
        spec: &GoldenSpec,
        input: &Path,
        latency: Option<&LatencySpec>,
    ) -> Result<Ran, CaseError> {
        let trace = tracer()?;
        let mut command = self.command(spec, input, Some(&trace))?;
        let http = spec.http.as_ref().expect("an HTTP case");
        let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
        let body = read_input(input)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Dropped at the end of this function: the server and its workers are stopped.
        let _server = Group::spawn(&mut command)
            .map_err(|e| CaseError(format!("cannot start `{}`: {e}", spec.command[0])))?;
        let stop = &self.settings.stop;
        let stopped = || stop.requested().is_some();
        let (port, method, path) = (http.port, &http.method, &http.path);
        let deadline = Instant::now() + limit;
        let output = call_when_ready(port, method, path, &body, deadline, &stopped)
            .map_err(CaseError::from)?;
        let samples = latency.map(|latency| {
            time_requests(port, method, path, &body, latency, limit, &stopped)
                .map_err(CaseError::from)
        });
        // The server's workers have written what they loaded as they loaded it.
        let trace = trace.read(&spec.command);
        Ok(Ran {
            output,
            samples,
            trace,
        })
    }
}

impl Runner for LocalRunner<'_> {
    fn run(&self, spec: &GoldenSpec, input: &Path, timed: bool) -> Result<Result<Ran, CaseError>> {
        let result = self.run_case(spec, input, timed);
        // A case cut short by a stop is no result: the run ends.
        self.settings.stop.check()?;
        Ok(result)
    }
}

impl LocalRunner<'_> {
    fn run_case(&self, spec: &GoldenSpec, input: &Path, timed: bool) -> Result<Ran, CaseError> {
        let latency = spec.latency.as_ref().filter(|_| timed);
        if spec.http.is_some() {
            return self.serve(spec, input, latency);
        }
        let (output, trace) = self.run_command(spec, input, true)?;
        // A command case is timed whole: from starting the process to its exit.
        let samples = latency.map(|latency| {
            let mut samples = Vec::with_capacity(latency.runs as usize);
            for run in 0..latency.warmup + latency.runs {
                let start = Instant::now();
                let _untraced = self.run_command(spec, input, false)?;
                if run >= latency.warmup {
                    samples.push(start.elapsed().as_secs_f64() * 1000.0);
                }
            }
            Ok(samples)
        });
        Ok(Ran {
            output,
            samples,
            trace,
        })
    }

    /// Runs the command once: its output and, when `traced`, what it loaded.
    fn run_command(
        &self,
        spec: &GoldenSpec,
        input: &Path,
        traced: bool,
    ) -> Result<(String, Traced), CaseError> {
        let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
        let trace = traced.then(tracer).transpose()?;
        let mut command = self.command(spec, input, trace.as_ref())?;
        let stdin = if spec.stdin {
            Some(read_input(input)?)
        } else {
            None
        };
        let stop = &self.settings.stop;
        let finished =
            process::run(&mut command, stdin.as_deref(), limit, stop).map_err(|unfinished| {
                CaseError(match unfinished {
                    Unfinished::NotStarted(error) => {
                        format!("cannot run `{}`: {error}", spec.command[0])
                    }
                    Unfinished::Timeout => format!("timed out after {}s", spec.timeout),
                    Unfinished::Engine(error) => error.to_string(),
                    Unfinished::Stopped(_) => "stopped".to_string(),
                })
            })?;
        if !finished.success() {
            return Err(CaseError(format!(
                "the command exited with {}; stderr: `{}`",
                finished.exit(),
                process::tail(&finished.stderr, 5)
            )));
        }
        let output = String::from_utf8_lossy(&finished.stdout).into_owned();
        let trace = match trace {
            Some(trace) => trace.read(&spec.command),
            None => Err(Untraced::NotTraced),
        };
        Ok((output, trace))
    }
}

/// A trace folder for a run.
fn tracer() -> Result<HostTrace, CaseError> {
    HostTrace::new().map_err(|error| CaseError(format!("cannot make a trace folder: {error}")))
}

/// A case's input, for stdin or an HTTP body.
pub(super) fn read_input(input: &Path) -> Result<Vec<u8>, CaseError> {
    std::fs::read(input).map_err(|e| CaseError(format!("cannot read the input: {e}")))
}
