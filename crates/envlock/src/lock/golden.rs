//! Golden cases in the lock: what a case runs and how it is judged (from `envlock.toml`),
//! and what the baseline recorded (its output, determinism, latency).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How to run a golden case: the `[[golden]]` entries of `envlock.toml`, kept in the lock
/// so that `envlock diff LOCK TARGET` can run them in the target with the lock alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GoldenSpec {
    /// The case's name (unique).
    pub name: String,
    /// The command (argv); `{input}` is replaced by the input file's path. For an HTTP
    /// case, the command that starts the server (in an image, its own entrypoint and cmd
    /// when absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Send the input on standard input instead of naming it with `{input}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    /// Post the input to a server instead of running a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCase>,
    /// The input file, relative to the config's folder.
    pub input: String,
    /// How to read the output: `json` or `numbers` (whitespace-separated).
    #[serde(default)]
    pub format: OutputFormat,
    /// Relative tolerance of numbers.
    #[serde(default = "default_rtol")]
    pub rtol: f64,
    /// Absolute tolerance of numbers.
    #[serde(default = "default_atol")]
    pub atol: f64,
    /// Tolerances below a JSON pointer (`"/probabilities"`), overriding `rtol` and `atol`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldTolerance>,
    /// Seconds one run may take (for HTTP: until the server answers, and the answer).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// How many times to run it in the baseline (more than one records determinism).
    #[serde(default = "default_runs")]
    pub runs: u32,
    /// The working folder: on the dev side relative to the config's folder; in an image,
    /// absolute or relative to its WORKDIR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// A latency budget: the case is also timed, and a slow target fails the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
}

/// `latency = { budget-ms = 200, percentile = 95, runs = 20, warmup = 3 }`: how a case is
/// timed and what is too slow. An HTTP case times its requests once the server answers; a
/// command case times the whole process run (in an image: measured inside the container,
/// so the container's start is not counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LatencySpec {
    /// The slowest the percentile may be, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ms: Option<f64>,
    /// The percentile judged (nearest rank), 95 unless set.
    #[serde(default = "default_percentile")]
    pub percentile: f64,
    /// Timed runs (or requests).
    #[serde(default = "default_latency_runs")]
    pub runs: u32,
    /// Untimed runs before them.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// The most times slower than the baseline's percentile the target's may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<f64>,
}

fn default_percentile() -> f64 {
    95.0
}
fn default_latency_runs() -> u32 {
    20
}
fn default_warmup() -> u32 {
    3
}

/// A measured latency distribution, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Latency {
    /// Timed runs.
    pub runs: u32,
    /// The median.
    pub p50_ms: f64,
    /// The percentile judged (`percentile` of the case).
    pub percentile: f64,
    /// Its value.
    pub at_percentile_ms: f64,
    /// The slowest run.
    pub max_ms: f64,
}

impl Latency {
    /// The distribution of `samples` (milliseconds), judged at `percentile`; `None` for no
    /// samples.
    pub(crate) fn of(samples: &[f64], percentile: f64) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least `p` percent of the runs at or below.
        let rank = |p: f64| {
            let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        let round = |ms: f64| (ms * 1000.0).round() / 1000.0;
        Some(Latency {
            runs: sorted.len() as u32,
            p50_ms: round(rank(50.0)),
            percentile,
            at_percentile_ms: round(rank(percentile)),
            max_ms: round(sorted[sorted.len() - 1]),
        })
    }
}

fn default_rtol() -> f64 {
    1e-6
}
fn default_atol() -> f64 {
    1e-9
}
fn default_timeout() -> f64 {
    60.0
}
fn default_runs() -> u32 {
    1
}

/// An HTTP golden case: where the server listens and what to call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpCase {
    /// The server's port (inside the container; published on 127.0.0.1 only).
    pub port: u16,
    /// The method, `POST` unless set.
    #[serde(default = "default_method")]
    pub method: String,
    /// The path, e.g. `/predict`.
    pub path: String,
}

fn default_method() -> String {
    "POST".to_string()
}

/// A tolerance for the numbers below a JSON pointer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FieldTolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

/// How a golden case's output is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// A JSON document.
    #[default]
    Json,
    /// Whitespace-separated numbers.
    Numbers,
}

/// `[[golden]]`: a golden case and what this runtime output for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct GoldenCase {
    /// How to run it.
    #[serde(flatten)]
    pub spec: GoldenSpec,
    /// `sha256:` of the input.
    pub input_sha256: String,
    /// The input itself when it is UTF-8 text of at most 1 MiB, so the lock alone reruns
    /// the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_text: Option<String>,
    /// Otherwise, when the lock was written to a file: a copy of the input beside it
    /// (relative to the lock's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_file: Option<String>,
    /// The output (standard output, or the HTTP response body) of the first run.
    pub output: String,
    /// With more than one run: whether every run printed the same output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deterministic: Option<bool>,
    /// With a `latency` budget: the latency measured in this runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_latency: Option<Latency>,
    /// What the case's runs loaded (traced), or why that is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<Loaded>,
    /// The identity the case ran as in an image (`--run-as`, `[image] run-as`), as
    /// `UID:GID`; absent: the image's own `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

/// `[golden.loaded]`: what a golden case's runs really loaded, over all their Python
/// processes (forked workers and child processes included), from envlock's tracer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Loaded {
    /// The distributions (PEP 503 names) whose modules were imported after start-up.
    #[serde(default)]
    pub distributions: Vec<String>,
    /// The shared objects mapped (paths in the runtime, as the kernel names them).
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Why the loaded set is unknown (a command that is not Python, or that skips site
    /// customisation with `-I`, `-E` or `-S`); the lists are then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl Loaded {
    /// A loaded set that could not be known, and why.
    pub fn unknown(why: impl Into<String>) -> Loaded {
        Loaded {
            unknown: Some(why.into()),
            ..Loaded::default()
        }
    }
}
