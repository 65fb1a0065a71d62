//! Several commands in one locked-down container: the probe, and after it (beside it) the
//! golden command cases, so a diff of an image starts one container where it would start one
//! per case. `jobs.py`, run with the image's Python, runs them and leaves each one's output
//! in envlock's volume, sent back on its stdout with whatever else they left there (the
//! golden tracer's files).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::connection::{Engine, Launch, Volume};
use crate::error::Result;
use crate::process::{Finished, Unfinished};

const RUNNER: &str = include_str!("jobs.py");

/// envlock's volume in the container; the jobs' outputs go into `out/`.
pub(crate) const VOLUME: &str = "/envlock";
/// At most this much is read back of what the jobs left.
const READ_LIMIT: u64 = 512 << 20;

/// A command to run in the container.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Job {
    /// The program and its arguments (the program looked up on `PATH`).
    pub(crate) argv: Vec<String>,
    /// Variables over the container's.
    pub(crate) env: BTreeMap<String, String>,
    /// Folders put in front of a variable's value in the container (`PYTHONPATH`), joined
    /// with `:`.
    pub(crate) prepend: BTreeMap<String, String>,
    /// The working folder; `None` keeps the image's WORKDIR.
    pub(crate) cwd: Option<String>,
    /// A file in the container to feed it on stdin.
    pub(crate) stdin: Option<String>,
    /// Seconds it may take.
    pub(crate) timeout: f64,
    /// The folder of the image's Python goes first on its `PATH`.
    pub(crate) path_first: bool,
    /// It runs beside the jobs after it (the probe).
    pub(crate) background: bool,
}

/// Jobs to run after the probe, and the files and folders they need in envlock's volume
/// (paths relative to it; a folder is writable by any user).
#[derive(Debug, Default, Clone)]
pub(crate) struct Jobs {
    pub(crate) jobs: Vec<Job>,
    pub(crate) files: Vec<(String, Option<Vec<u8>>)>,
}

/// How a job ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It ran to its exit.
    Exited(Finished),
    /// It could not be started; `true` when its program was not found.
    NotStarted(bool, String),
    /// It was still running at its limit, and was killed.
    Timeout,
}

/// What the jobs did: each one's end, in order, and the other files under `out/` (by path
/// relative to it).
#[derive(Debug, Default)]
pub(crate) struct Ran {
    pub(crate) ended: Vec<Ended>,
    pub(crate) files: BTreeMap<String, Vec<u8>>,
    /// Whether the runner's answer was read to its end (else `files` may lack some).
    pub(crate) whole: bool,
}

/// Runs `probe` then `extra` in one container of `image_id` with `program` (the image's
/// Python) running them; the container is removed after. The probe's end, and the extra
/// jobs' run (none when the runner itself failed: its exit is then the probe's); `Err` for
/// an engine failure.
pub(crate) async fn run_jobs(
    engine: &Engine,
    image_id: &str,
    program: &str,
    probe: Job,
    extra: &Jobs,
    limit: Duration,
) -> Result<Result<(Ended, Ran), Unfinished>> {
    let mut jobs = vec![probe];
    jobs.extend(extra.jobs.iter().cloned());
    let list = serde_json::to_vec(&jobs).expect("jobs serialise");
    let mut entries = vec![
        ("jobs/jobs.py".to_string(), Some(RUNNER.as_bytes().to_vec())),
        ("jobs/jobs.json".to_string(), Some(list)),
        ("out".to_string(), None),
    ];
    entries.extend(extra.files.iter().cloned());
    let launch = Launch {
        command: vec![
            program.to_string(),
            // Not `-I`: an image may need its `PYTHONHOME` or `PYTHONPATH` to find the
            // standard library; `-S` keeps the image's site code out of the runner.
            "-S".to_string(),
            "/envlock/jobs/jobs.py".to_string(),
            program.to_string(),
        ],
        volume: Some(Volume {
            folder: VOLUME.to_string(),
            entries,
        }),
        // A golden case may write (a cache, as where it is deployed); the probe alone needs
        // no writable root.
        writable: !extra.jobs.is_empty(),
        role: "probe",
        ..Launch::default()
    };
    let total: f64 = jobs.iter().map(|job| job.timeout).sum();
    let total = Duration::try_from_secs_f64(total).unwrap_or(Duration::MAX);
    let limit = limit.max(total);
    let container = engine.create(image_id, launch).await?;
    let ran = match engine.run(&container, limit, None).await {
        Ok(finished) if finished.success() => {
            let mut ran = read_back(&finished.stdout, jobs.len());
            let probe = ran.ended.remove(0);
            Ok((probe, ran))
        }
        // The runner itself failed (a Python too old for it, say): the probe's failure.
        Ok(finished) => Ok((Ended::Exited(finished), Ran::default())),
        Err(unfinished) => Err(unfinished),
    };
    engine.remove(&container).await;
    Ok(ran)
}

/// What the runner sent back (every file under `out/`, framed), split into each job's end
/// and the rest. Bounded: the runner's output comes from the image.
fn read_back(stdout: &[u8], count: usize) -> Ran {
    let mut files = BTreeMap::new();
    let mut rest = stdout;
    let mut left = READ_LIMIT;
    while let Some(end) = rest.iter().position(|byte| *byte == b'\n') {
        let header = String::from_utf8_lossy(&rest[..end]).into_owned();
        let Some((path, size)) = header.rsplit_once(' ') else {
            break;
        };
        let Ok(size) = size.parse::<usize>() else {
            break;
        };
        let body = &rest[end + 1..];
        let (Some(bytes), Some(after)) = (body.get(..size), body.get(size..)) else {
            break;
        };
        rest = after;
        left = left.saturating_sub(size as u64);
        if left == 0 {
            break;
        }
        files.insert(path.to_string(), bytes.to_vec());
    }
    // What does not parse to its end mark was cut or forged: what the jobs left may lack
    // some files.
    let whole = rest.is_empty() && files.remove(".whole").is_some();
    let mut ended = Vec::with_capacity(count);
    for index in 0..count {
        let mut take = |suffix: &str| files.remove(&format!("{index}.{suffix}"));
        let (stdout, stderr) = (
            take("out").unwrap_or_default(),
            take("err").unwrap_or_default(),
        );
        let status: serde_json::Value = take("status")
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        ended.push(if status["timeout"] == true {
            Ended::Timeout
        } else if let Some(kind) = status["error"].as_str() {
            let detail = status["detail"].as_str().unwrap_or_default().to_string();
            Ended::NotStarted(kind == "not-found", detail)
        } else {
            // A negative code is a signal, as `subprocess` says.
            let code = status["code"].as_i64().filter(|code| *code >= 0);
            Ended::Exited(Finished {
                code,
                stdout,
                stderr,
            })
        });
    }
    Ran {
        ended,
        files,
        whole,
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): what the job runner sends back.
pub(crate) fn fuzz_read_back(stdout: &[u8]) {
    let _ = read_back(stdout, 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runners_frames_become_each_jobs_end_and_the_rest() {
        let mut sent = Vec::new();
        for (path, bytes) in [
            ("0.out", &b"{}"[..]),
            ("0.status", b"{\"code\": 0}"),
            ("1.err", b"boom\n"),
            ("1.status", b"{\"code\": -9}"),
            ("2.status", b"{\"timeout\": true}"),
            ("3.status", b"{\"error\": \"not-found\", \"detail\": \"x\"}"),
            ("trace-0/7 1.trace", b"p 7\nm numpy\n"),
            (".whole", b""),
        ] {
            sent.extend_from_slice(format!("{path} {}\n", bytes.len()).as_bytes());
            sent.extend_from_slice(bytes);
        }
        let ran = read_back(&sent, 5);
        assert!(ran.whole);
        assert!(matches!(&ran.ended[0], Ended::Exited(f) if f.success() && f.stdout == b"{}"));
        assert!(
            matches!(&ran.ended[1], Ended::Exited(f) if f.code.is_none() && f.stderr == b"boom\n")
        );
        assert!(matches!(ran.ended[2], Ended::Timeout));
        assert!(matches!(ran.ended[3], Ended::NotStarted(true, _)));
        // A job the runner never got to: no status, no exit code.
        assert!(matches!(&ran.ended[4], Ended::Exited(f) if !f.success()));
        assert_eq!(ran.files.keys().collect::<Vec<_>>(), ["trace-0/7 1.trace"]);
        // Cut, or a size past the end (up to usize::MAX): not whole, and no panic.
        for tail in [
            &b"cut 99\nshort"[..],
            b"x 18446744073709551615\n",
            b"y -1\n",
        ] {
            let mut cut = sent.clone();
            cut.extend_from_slice(tail);
            assert!(!read_back(&cut, 5).whole);
        }
    }
}
