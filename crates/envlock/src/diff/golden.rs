//! Golden cases as findings: a case that could not run, or whose output could not be read,
//! is `golden-error`; one out of tolerance is `golden-mismatch`; one too slow (or not
//! timed) is `golden-latency`; one the target had no container for is `golden-skipped`.

use super::{Code, Finding};
use crate::lock::GoldenCase;
use crate::verdict::{ms, CaseStatus, Judged};

/// A finding for every judged case that did not pass, and for every latency that did not.
pub(crate) fn golden_findings(judged: &[Judged]) -> Vec<Finding> {
    let latency = judged.iter().filter_map(|case| {
        let problem = case.latency_problem.clone()?;
        let result = case.result.latency.as_ref()?;
        let at = |latency: &crate::lock::Latency| {
            format!("p{} {}", latency.percentile, ms(latency.at_percentile_ms))
        };
        Some(Finding::new(
            Code::GoldenLatency,
            &case.result.name,
            result.baseline.as_ref().map(at),
            result.target.as_ref().map(at),
            problem,
        ))
    });
    let outputs = judged.iter().filter_map(|case| {
        let code = match case.result.status {
            CaseStatus::Pass => return None,
            CaseStatus::Mismatch => Code::GoldenMismatch,
            CaseStatus::Error => Code::GoldenError,
        };
        let message = case.problem.clone().unwrap_or_default();
        Some(Finding::new(
            code,
            &case.result.name,
            Some(case.expected.clone()),
            case.actual.clone(),
            message,
        ))
    });
    outputs.chain(latency).collect()
}
/// One `golden-skipped` finding per case when the target cannot run them: `why` says why
/// and what to do.
pub(crate) fn golden_skipped(cases: &[GoldenCase], why: &str) -> Vec<Finding> {
    cases
        .iter()
        .map(|case| {
            Finding::new(
                Code::GoldenSkipped,
                &case.spec.name,
                Some("recorded".to_string()),
                None,
                format!("golden case {} did not run: {why}", case.spec.name),
            )
        })
        .collect()
}
