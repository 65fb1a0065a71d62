//! `--numerics-check`: a built-in set of small deterministic kernels run with the runtime's
//! own numpy (opt-in: it imports numpy, code of the runtime), recorded as bit-exact digests
//! plus a few values. In an image it runs in a locked-down container like the probe's. The
//! inputs are computed, not random, so every runtime sees the same bits.

use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::lock::Kernel;
use crate::process::{self, tail, Finished, Unfinished};
use crate::stop::Stop;

/// The kernels: float32 and float64 matmul, dot, sum, `exp`/`log`/`sin`/`tanh` and a
/// `linalg.solve`, over inputs made from the golden ratio (no RNG, no file).
pub(crate) const SCRIPT: &str = r#"
import hashlib, json, sys
try:
    import numpy as np
except ImportError:
    print(json.dumps({"kernels": None}))
    sys.exit(0)

def inputs(n, seed):
    return ((np.arange(n, dtype=np.float64) * 0.6180339887498949 + seed) % 1.0) - 0.5

out = []
def record(name, value):
    value = np.ascontiguousarray(np.asarray(value))
    flat = value.ravel()
    step = max(1, flat.size // 16)
    out.append({"name": name, "sha256": "sha256:" + hashlib.sha256(value.tobytes()).hexdigest(),
                "values": [float(v) for v in flat[::step][:16]]})

a = inputs(192 * 192, 0.1).reshape(192, 192)
b = inputs(192 * 192, 0.3).reshape(192, 192)
record("matmul-f64", a @ b)
record("matmul-f32", a.astype(np.float32) @ b.astype(np.float32))
record("dot-f64", np.dot(inputs(100003, 0.2), inputs(100003, 0.4)))
record("sum-f64", np.sum(inputs(1000003, 0.7)))
x = inputs(65536, 0.9) * 8.0
record("exp-f64", np.exp(x))
record("log-f64", np.log(np.abs(x) + 1e-3))
record("sin-f64", np.sin(x * 100.0))
record("tanh-f64", np.tanh(x))
record("exp-f32", np.exp(x.astype(np.float32)))
record("solve-f64", np.linalg.solve(a + 192.0 * np.eye(192), b[:, 0]))
print(json.dumps({"numpy": np.__version__, "kernels": out}))
"#;

#[derive(Deserialize)]
struct Answer {
    kernels: Option<Vec<Kernel>>,
}

/// Why `--numerics-check` recorded no kernels: a warning, the capture goes on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KernelsFailed {
    /// The script failed.
    #[error("the kernels exited with {exit}: {stderr}")]
    Exited {
        /// The exit code, or `a signal`.
        exit: String,
        /// The tail of its stderr.
        stderr: String,
    },
    /// The script's output is not its answer.
    #[error("the kernels printed no answer ({0})")]
    NoAnswer(#[source] serde_json::Error),
    /// The script ran past the probe's limit.
    #[error("the kernels took longer than {}", crate::settings::seconds(*limit))]
    Timeout { limit: Duration },
    /// The interpreter could not be started (`program`: how it is named).
    #[error("{program} did not start ({source})")]
    NotStarted {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The run was asked to stop.
    #[error("stopped")]
    Stopped,
    /// The image was read statically, so nothing ran in it.
    #[error("nothing runs from an image read statically")]
    Static,
    /// The engine failed around the run.
    #[error(transparent)]
    Engine(Box<crate::error::Error>),
}

/// The kernels from the script's output: `Ok(None)` when the runtime has no numpy.
pub(crate) fn parse(finished: &Finished) -> Result<Option<Vec<Kernel>>, KernelsFailed> {
    if !finished.success() {
        return Err(KernelsFailed::Exited {
            exit: finished.exit(),
            stderr: tail(&finished.stderr, 3),
        });
    }
    serde_json::from_slice::<Answer>(&finished.stdout)
        .map(|answer| answer.kernels)
        .map_err(KernelsFailed::NoAnswer)
}

/// Runs the kernels with the local `interpreter`.
pub(crate) fn run_local(
    interpreter: &std::path::Path,
    limit: Duration,
    stop: &Stop,
) -> Result<Option<Vec<Kernel>>, KernelsFailed> {
    let mut command = Command::new(interpreter);
    command.arg("-c").arg(SCRIPT);
    match process::run(&mut command, None, limit, stop) {
        Ok(finished) => parse(&finished),
        Err(Unfinished::Timeout) => Err(KernelsFailed::Timeout { limit }),
        Err(Unfinished::NotStarted(source)) => Err(KernelsFailed::NotStarted {
            program: "the interpreter".to_string(),
            source,
        }),
        Err(Unfinished::Stopped(_)) => Err(KernelsFailed::Stopped),
        Err(Unfinished::Engine(error)) => Err(KernelsFailed::Engine(Box::new(error))),
    }
}

/// The argv that runs the kernels with `python` inside an image.
pub(crate) fn image_command(python: &str) -> Vec<String> {
    vec![python.to_string(), "-c".to_string(), SCRIPT.to_string()]
}
