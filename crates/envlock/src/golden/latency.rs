//! Latency budgets: the satisficing side of a golden case. A case with `latency` is timed in
//! both runtimes; the target fails when its percentile is over the budget, or (with
//! `regression`) more than that many times the baseline's.

use super::CaseError;
use crate::lock::{GoldenCase, Latency, LatencySpec};
use crate::verdict::{ms, LatencyResult, LatencyStatus};

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
