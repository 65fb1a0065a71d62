//! Golden cases as findings: a case that could not run, or whose output could not be read,
//! is `golden-error`; one out of tolerance is `golden-mismatch`.

use super::{Code, Finding};
use crate::golden::{CaseStatus, Judged};

/// A finding for every judged case that did not pass.
pub(crate) fn golden_findings(judged: &[Judged]) -> Vec<Finding> {
    judged
        .iter()
        .filter_map(|case| {
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
        })
        .collect()
}
