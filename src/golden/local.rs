//! Running golden cases in a local runtime (the dev interpreter, or `python:PATH`): the
//! command starts with the interpreter's folder first on `PATH`, so `python` in a case is
//! the interpreter being captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{call_when_ready, substitute, Failure, Runtime};
use crate::lock::GoldenSpec;
use crate::process;

/// A local interpreter and the folder cases run from.
pub struct Local {
    /// The interpreter whose folder goes first on `PATH`.
    pub interpreter: PathBuf,
    /// The config's folder: relative inputs and working folders start here.
    pub folder: PathBuf,
}

impl Local {
    fn command(&self, spec: &GoldenSpec, input: &Path) -> Result<Command, Failure> {
        let argv = substitute(&spec.command, &input.to_string_lossy());
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Failure("the case has no `command` to run".to_string()))?;
        let mut command = Command::new(program);
        command.args(args);
        command.current_dir(self.folder.join(spec.workdir.as_deref().unwrap_or(".")));
        if let Some(bin) = self.interpreter.parent() {
            let mut paths = vec![bin.to_path_buf()];
            paths.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            if let Ok(joined) = std::env::join_paths(paths) {
                command.env("PATH", joined);
            }
        }
        Ok(command)
    }
}

impl Runtime for Local {
    fn run(&self, spec: &GoldenSpec, input: &Path) -> Result<String, Failure> {
        let limit = Duration::from_secs_f64(spec.timeout.max(0.001));
        let mut command = self.command(spec, input)?;
        if let Some(http) = &spec.http {
            let body =
                std::fs::read(input).map_err(|e| Failure(format!("cannot read the input: {e}")))?;
            let mut server = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| Failure(format!("cannot start `{}`: {e}", spec.command[0])))?;
            let answer = call_when_ready(
                http.port,
                &http.method,
                &http.path,
                &body,
                Instant::now() + limit,
            );
            let _ = server.kill();
            let _ = server.wait();
            return answer.map_err(Failure);
        }
        let stdin = if spec.stdin {
            Some(std::fs::read(input).map_err(|e| Failure(format!("cannot read the input: {e}")))?)
        } else {
            None
        };
        let output =
            process::run(&mut command, stdin.as_deref(), limit).map_err(
                |failure| match failure {
                    process::Failure::Spawn(error) => {
                        Failure(format!("cannot run `{}`: {error}", spec.command[0]))
                    }
                    process::Failure::Timeout => {
                        Failure(format!("timed out after {}s", spec.timeout))
                    }
                },
            )?;
        if !output.status.success() {
            return Err(Failure(format!(
                "the command exited with {}; stderr: `{}`",
                output
                    .status
                    .code()
                    .map_or("a signal".to_string(), |code| code.to_string()),
                process::tail(&output.stderr, 5)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
