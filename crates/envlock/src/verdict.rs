//! A golden case's verdict, apart from how it was run: what the diff turns into findings
//! and the reports show. Pure: it knows the lock's types and nothing of runtimes.

use schemars::JsonSchema;
use serde::Serialize;

use crate::lock::{Latency, LatencySpec};

/// How one case fared in the target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// `pass`, `mismatch` or `error`.
    pub status: CaseStatus,
    /// Values compared.
    pub values: usize,
    /// Values out of tolerance.
    pub out_of_tolerance: usize,
    /// Largest absolute error (also on a pass); `null` when infinite (an infinity or NaN
    /// against a number).
    #[serde(serialize_with = "finite_or_null")]
    #[schemars(with = "Option<f64>")]
    pub max_abs_error: f64,
    /// Largest relative error (also on a pass); `null` when infinite (a non-zero value
    /// where the baseline has 0, or an infinity or NaN against a number).
    #[serde(serialize_with = "finite_or_null")]
    #[schemars(with = "Option<f64>")]
    pub max_rel_error: f64,
    /// JSON pointer of the value that moved most against its tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
    /// For a case with a latency budget: both runtimes' latency and the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyResult>,
    /// What the case loaded in the target (traced), or why that is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<crate::lock::Loaded>,
    /// The identity it ran as in the target image (`--run-as`), `UID:GID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

/// JSON has no infinity: an infinite error is written as `null`.
fn finite_or_null<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
}

/// A golden case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CaseStatus {
    /// Within tolerance.
    Pass,
    /// Out of tolerance, or another structure.
    Mismatch,
    /// No output to compare.
    Error,
}

/// A case judged: its result, and for a failing case what the diff reports about it.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    /// For the report.
    pub(crate) result: CaseResult,
    /// The baseline's output.
    pub(crate) expected: String,
    /// The target's output, when there was one.
    pub(crate) actual: Option<String>,
    /// One line for people, when the case did not pass.
    pub(crate) problem: Option<String>,
    /// One line for people, when its latency did not pass (and the case ran).
    pub(crate) latency_problem: Option<String>,
}

/// A case's latency in both runtimes, and the verdict: `golden[].latency` of the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct LatencyResult {
    /// `pass`, `over-budget`, `regression` or `error`.
    pub status: LatencyStatus,
    /// The budget of the percentile, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_ms: Option<f64>,
    /// The most times slower than the baseline the target may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regression: Option<f64>,
    /// The baseline's latency, when it recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Latency>,
    /// The target's latency, when it could be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Latency>,
}

/// How a case's latency fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyStatus {
    /// Within the budget and the regression bound.
    Pass,
    /// The percentile is over the budget.
    OverBudget,
    /// The percentile is more than `regression` times the baseline's.
    Regression,
    /// Not measured in the target.
    Error,
}

/// `12.3 ms`.
pub(crate) fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// `p50 3.1 ms, p95 4.0 ms, max 9.8 ms (20 runs)`.
pub(crate) fn summary(latency: &Latency) -> String {
    format!(
        "p50 {}, p{} {}, max {} ({} runs)",
        ms(latency.p50_ms),
        latency.percentile,
        ms(latency.at_percentile_ms),
        ms(latency.max_ms),
        latency.runs
    )
}

/// Problems of a `latency` spec, for `envlock.toml`'s checks.
pub(crate) fn spec_problems(spec: &LatencySpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.budget_ms.is_none() && spec.regression.is_none() {
        problems.push(
            "`latency` needs `budget-ms`, `regression`, or both: nothing would be judged"
                .to_string(),
        );
    }
    if let Some(budget) = spec.budget_ms.filter(|b| !b.is_finite() || *b <= 0.0) {
        problems.push(format!(
            "`latency.budget-ms` = {budget} is not a number of milliseconds above 0"
        ));
    }
    if !(spec.percentile > 0.0 && spec.percentile <= 100.0) {
        problems.push(format!(
            "`latency.percentile` = {} is not above 0 and at most 100",
            spec.percentile
        ));
    }
    if spec.runs == 0 {
        problems.push("`latency.runs` = 0: at least one run is timed".to_string());
    }
    if let Some(factor) = spec.regression.filter(|f| !f.is_finite() || *f < 1.0) {
        problems.push(format!(
            "`latency.regression` = {factor} is not a factor of 1 or more"
        ));
    }
    problems
}
