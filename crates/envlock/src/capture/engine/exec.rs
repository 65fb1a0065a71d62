//! exec capture: the embedded probe run with the image's own Python in a locked-down
//! throwaway container; it also sends back the metadata files on its `sys.path`.

use std::time::Duration;

use super::connection::{Engine, Launch};
use super::jobs::{run_jobs, Ended, Job, Jobs, Ran};
use crate::capture::numerics::{check, ProbeRequest};
use crate::capture::python::probe::{self, Answer};
use crate::error::{Error, Result};
use crate::lock::Kernel;
use crate::process::{Finished, Unfinished};
use crate::settings::seconds;

/// Runs the probe with `program` (an absolute path in the image) in a throwaway container,
/// and `extra` jobs (golden command cases) in the same container beside it: the probe's
/// answer, and what the jobs did.
pub(crate) async fn run_probe(
    engine: &Engine,
    reference: &str,
    image_id: &str,
    program: &str,
    numerics: &ProbeRequest,
    limit: Duration,
    extra: &Jobs,
) -> Result<(Answer, Ran)> {
    let probe = Job {
        argv: probe::image_command(program, numerics),
        timeout: limit.as_secs_f64(),
        background: true,
        ..Job::default()
    };
    let ran = if extra.jobs.is_empty() {
        // Nothing beside it: the probe is the container's command and its answer is its
        // stdout, with no volume to fill and read back (a fifth of an exec capture).
        let ran = run_in_image(engine, image_id, probe.argv, limit).await?;
        ran.map(|finished| (Ended::Exited(finished), Ran::default()))
    } else {
        match run_jobs(engine, image_id, program, probe.clone(), extra, limit).await? {
            // The runner did not get through (a Python it cannot run on): the probe alone,
            // and the cases in containers of their own.
            Ok((_, ran)) if ran.ended.len() != extra.jobs.len() => {
                let ran = run_in_image(engine, image_id, probe.argv, limit).await?;
                ran.map(|finished| (Ended::Exited(finished), Ran::default()))
            }
            ran => ran,
        }
    };
    let failed = |detail: String| Error::ImageProbeFailed {
        reference: reference.to_string(),
        detail,
    };
    let timeout = || Error::ImageProbeTimeout {
        reference: reference.to_string(),
        limit: seconds(limit),
    };
    let (ended, ran) = match ran {
        Ok(done) => done,
        Err(Unfinished::Timeout) => return Err(timeout()),
        Err(Unfinished::NotStarted(error)) => {
            return Err(failed(format!(
                "`{program}` could not be started ({error})"
            )))
        }
        Err(Unfinished::Engine(error)) => return Err(error),
        Err(Unfinished::Stopped(signal)) => return Err(Error::Interrupted { signal }),
    };
    match ended {
        Ended::Exited(finished) if finished.success() => Answer::parse(&finished.stdout)
            .map(|answer| (answer, ran))
            .map_err(|error| failed(format!("its output is not the probe's answer ({error})"))),
        Ended::Exited(finished) => Err(failed(format!(
            "`{program}` exited with {}; its last words: `{}`",
            finished.exit(),
            crate::process::tail(&finished.stderr, 3)
        ))),
        Ended::NotStarted(_, detail) => Err(failed(format!(
            "`{program}` could not be started ({detail})"
        ))),
        Ended::Timeout => Err(timeout()),
    }
}

/// Runs `command` in a locked-down throwaway container of `image_id` (removed after).
async fn run_in_image(
    engine: &Engine,
    image_id: &str,
    command: Vec<String>,
    limit: Duration,
) -> Result<Result<Finished, Unfinished>> {
    let launch = Launch {
        command,
        role: "probe",
        ..Launch::default()
    };
    let container = engine.create(image_id, launch).await?;
    let ran = engine.run(&container, limit, None).await;
    engine.remove(&container).await;
    Ok(ran)
}

/// `--numerics-check` in an image: the kernels run with `program` in a locked-down
/// container; `Ok(None)` when the image's Python has no numpy.
pub(crate) async fn run_kernels(
    engine: &Engine,
    image_id: &str,
    program: &str,
    limit: Duration,
) -> Result<Result<Option<Vec<Kernel>>, check::KernelsFailed>> {
    let ran = run_in_image(engine, image_id, check::image_command(program), limit).await?;
    Ok(match ran {
        Ok(finished) => check::parse(&finished),
        Err(Unfinished::Timeout) => Err(check::KernelsFailed::Timeout { limit }),
        Err(Unfinished::NotStarted(source)) => Err(check::KernelsFailed::NotStarted {
            program: format!("`{program}`"),
            source,
        }),
        Err(Unfinished::Engine(error)) => return Err(error),
        Err(Unfinished::Stopped(signal)) => return Err(Error::Interrupted { signal }),
    })
}
