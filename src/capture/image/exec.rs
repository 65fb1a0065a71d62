//! exec capture: the embedded probe run with the image's own Python in a locked-down
//! throwaway container; it also sends back the metadata files on its `sys.path`.

use std::time::Duration;

use super::engine::{Engine, Launch};
use crate::capture::python::probe::{self, Answer};
use crate::error::{Error, Result};
use crate::process::Unfinished;
use crate::settings::seconds;

/// Runs the probe with `program` (an absolute path in the image) in a throwaway container.
pub(super) async fn run_probe(
    engine: &Engine,
    reference: &str,
    image_id: &str,
    program: &str,
    limit: Duration,
) -> Result<Answer> {
    let launch = Launch {
        command: probe::image_command(program),
        role: "probe",
        ..Launch::default()
    };
    let container = engine.create(image_id, launch).await?;
    let failed = |detail: String| Error::ImageProbeFailed {
        reference: reference.to_string(),
        detail,
    };
    let outcome = match engine.run(&container, limit, None).await {
        Ok(finished) if finished.success() => Answer::parse(&finished.stdout)
            .map_err(|error| failed(format!("its output is not the probe's answer ({error})"))),
        Ok(finished) => Err(failed(format!(
            "`{program}` exited with {}; its last words: `{}`",
            finished.exit(),
            crate::process::tail(&finished.stderr, 3)
        ))),
        Err(Unfinished::NotStarted(error)) => Err(failed(format!(
            "`{program}` could not be started ({error})"
        ))),
        Err(Unfinished::Timeout) => Err(Error::ImageProbeTimeout {
            reference: reference.to_string(),
            limit: seconds(limit),
        }),
        Err(Unfinished::Engine(error)) => Err(error),
        Err(Unfinished::Stopped(signal)) => Err(Error::Interrupted { signal }),
    };
    engine.remove(&container).await;
    outcome
}
