//! Running a local program in its own process group, with a time limit, capturing what it
//! prints. The whole group is stopped on the way out, so a program's own children (a server's
//! workers) never outlive it.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::error::Error;
use crate::stop::Stop;

/// What a finished program (local or in a container) printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub(crate) code: Option<i64>,
    /// Its standard output.
    pub(crate) stdout: Vec<u8>,
    /// Its standard error.
    pub(crate) stderr: Vec<u8>,
}

impl Finished {
    /// Whether it exited with 0.
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `3`, or `a signal`.
    pub(crate) fn exit(&self) -> String {
        self.code
            .map_or_else(|| "a signal".to_string(), |code| code.to_string())
    }
}

/// Why a program (local or in a container) gave no [`Finished`].
#[derive(Debug)]
pub(crate) enum Unfinished {
    /// It could not be started: not found, not executable.
    NotStarted(std::io::Error),
    /// It was still running at the limit, and was stopped.
    Timeout,
    /// The Docker engine failed around it.
    Engine(Error),
    /// The run was asked to stop (this signal); the program was stopped.
    Stopped(i32),
}

/// A local child leading its own process group; the group is stopped when this is dropped.
pub(crate) struct Group {
    child: Child,
    /// Set once the leader has been waited for: its pid may then be reused, so its group is
    /// no longer signalled.
    reaped: bool,
}

impl Group {
    /// Starts `command` as the leader of a new process group.
    pub(crate) fn spawn(command: &mut Command) -> std::io::Result<Group> {
        let child = command.process_group(0).spawn()?;
        Ok(Group {
            child,
            reaped: false,
        })
    }

    /// The child, for its pipes.
    pub(crate) fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The leader is alive or a zombie, so its pid still names this group.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: killpg sends a signal and touches no memory.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// How often a running program is checked for a stop request.
const POLL: Duration = Duration::from_millis(50);

/// Runs `command` with `input` on its standard input (none when `None`), stopping its whole
/// process group if it runs longer than `limit` or the run is asked to `stop`.
pub(crate) fn run(
    command: &mut Command,
    input: Option<&[u8]>,
    limit: Duration,
    stop: &Stop,
) -> Result<Finished, Unfinished> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = Group::spawn(command).map_err(Unfinished::NotStarted)?;
    let child = group.child();
    if let (Some(bytes), Some(mut pipe)) = (input, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // Written on its own thread: a program that prints before reading must not block us.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut pipe, &bytes);
        });
    }
    // Both pipes are drained on their own threads so a chatty program cannot fill one and block.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(POLL);
        match child.wait_timeout(slice) {
            Ok(Some(status)) => {
                group.reaped = true;
                return Ok(Finished {
                    code: status.code().map(i64::from),
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                });
            }
            // Dropping the group stops it; the readers then finish on their own.
            Ok(None) => {
                if let Some(signal) = stop.requested() {
                    return Err(Unfinished::Stopped(signal));
                }
                if Instant::now() >= deadline {
                    return Err(Unfinished::Timeout);
                }
            }
            Err(error) => return Err(Unfinished::NotStarted(error)),
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The last `lines` lines of a program's output, as text, for error messages.
pub(crate) fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-lived");
        // The shell forks a child that would write the marker after the limit.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let result = run(
            Command::new("sh").args(["-c", &script]),
            None,
            Duration::from_millis(200),
            &Stop::new(),
        );
        assert!(matches!(result, Err(Unfinished::Timeout)));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "a child of the timed-out program lived on"
        );
    }

    #[test]
    fn output_and_exit_code() {
        let finished = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
            Duration::from_secs(10),
            &Stop::new(),
        )
        .unwrap();
        assert_eq!(finished.code, Some(3));
        assert_eq!(finished.stdout, b"out\n");
        assert_eq!(tail(&finished.stderr, 1), "err");
    }
}
