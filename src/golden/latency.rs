//! Latency budgets: the satisficing side of a golden case. A case with `latency` is timed in
//! both runtimes; the target fails when its percentile is over the budget, or (with
//! `regression`) more than that many times the baseline's.

use schemars::JsonSchema;
use serde::Serialize;

use super::CaseError;
use crate::lock::{GoldenCase, Latency, LatencySpec};

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

/// The target's latency from its timed runs.
pub(super) fn measured(
    case: &GoldenCase,
    samples: Option<Result<Vec<f64>, CaseError>>,
) -> Option<Result<Latency, CaseError>> {
    let spec = case.spec.latency.as_ref()?;
    Some(samples?.and_then(|samples| {
        Latency::of(&samples, spec.percentile)
            .ok_or_else(|| CaseError("no run was timed".to_string()))
    }))
}

/// The latency a target lock recorded for the baseline's `case`.
pub(super) fn recorded(
    case: &GoldenCase,
    other: &GoldenCase,
) -> Option<Result<Latency, CaseError>> {
    let spec = case.spec.latency.as_ref()?;
    Some(match &other.measured_latency {
        Some(latency) if latency.percentile == spec.percentile => Ok(latency.clone()),
        Some(latency) => Err(CaseError(format!(
            "the target lock timed the case at p{}, the baseline asks for p{}",
            latency.percentile, spec.percentile
        ))),
        None => Err(CaseError(
            "the target lock has no latency for this case (it was captured without a budget)"
                .to_string(),
        )),
    })
}

/// Judges the target's latency (`None` when the case gave no output: its golden-error
/// says why, and no second finding is made).
pub(super) fn judge(
    case: &GoldenCase,
    spec: &LatencySpec,
    target: Option<Result<Latency, CaseError>>,
) -> (LatencyResult, Option<String>) {
    let name = &case.spec.name;
    let baseline = case.measured_latency.clone();
    let mut result = LatencyResult {
        status: LatencyStatus::Error,
        budget_ms: spec.budget_ms,
        regression: spec.regression,
        baseline: baseline.clone(),
        target: None,
    };
    let target = match target {
        None => return (result, None),
        Some(Err(CaseError(detail))) => {
            let problem = format!("golden case `{name}`: its latency was not measured: {detail}");
            return (result, Some(problem));
        }
        Some(Ok(target)) => target,
    };
    let p = format!("p{}", spec.percentile);
    let actual = target.at_percentile_ms;
    let base_text = baseline
        .as_ref()
        .map(|base| format!(" (baseline {p} {})", ms(base.at_percentile_ms)))
        .unwrap_or_default();
    result.target = Some(target);
    let problem = if let Some(budget) = spec.budget_ms.filter(|budget| actual > *budget) {
        result.status = LatencyStatus::OverBudget;
        Some(format!(
            "golden case `{name}`: {p} latency {} is over the budget of {}{base_text}",
            ms(actual),
            ms(budget)
        ))
    } else if let (Some(factor), Some(base)) = (spec.regression, &baseline) {
        let allowed = factor * base.at_percentile_ms;
        (actual > allowed).then(|| {
            result.status = LatencyStatus::Regression;
            format!(
                "golden case `{name}`: {p} latency {} is {:.1}× the baseline's {} (allowed: {factor}×)",
                ms(actual),
                actual / base.at_percentile_ms.max(f64::MIN_POSITIVE),
                ms(base.at_percentile_ms)
            )
        })
    } else {
        None
    };
    if problem.is_none() {
        result.status = LatencyStatus::Pass;
    }
    (result, problem)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=20).map(f64::from).collect();
        let latency = Latency::of(&samples, 95.0).unwrap();
        assert_eq!(
            (latency.p50_ms, latency.at_percentile_ms, latency.max_ms),
            (10.0, 19.0, 20.0)
        );
        // One slow run in twenty: p95 does not see it, p99 does.
        let mut noisy = vec![5.0; 19];
        noisy.push(900.0);
        assert_eq!(Latency::of(&noisy, 95.0).unwrap().at_percentile_ms, 5.0);
        assert_eq!(Latency::of(&noisy, 99.0).unwrap().at_percentile_ms, 900.0);
        assert_eq!(Latency::of(&[7.0], 50.0).unwrap().at_percentile_ms, 7.0);
        assert!(Latency::of(&[], 95.0).is_none());
    }
}
