//! A diff's report and its renderers: human (terminal), json (the documented envelope),
//! markdown (a pull-request comment) and junit (CI test views), all from the same findings.

mod human;
mod junit;
mod markdown;

use schemars::JsonSchema;
use serde::Serialize;

use crate::diff::{Finding, Severity};
use crate::golden::latency::{ms, summary};
use crate::golden::{CaseResult, CaseStatus};

/// The JSON report's schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of `envlock diff`: the JSON report's envelope (its keys are a contract).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(title = "envlock diff report")]
pub struct Report {
    /// Report schema version.
    pub schema: u32,
    /// The baseline operand, as given.
    pub baseline: String,
    /// The target operand, as given.
    pub target: String,
    /// Every finding after the policy, ordered by area, code and subject.
    pub findings: Vec<Finding>,
    /// Findings per severity.
    pub summary: Summary,
    /// How each golden case fared, with its errors also on a pass (absent when none ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub golden: Vec<CaseResult>,
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Information.
    pub info: usize,
}

/// How to print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: grouped by severity then area, with a verdict.
    Human,
    /// The documented JSON envelope.
    Json,
    /// A table to paste as a pull-request comment.
    Markdown,
    /// JUnit XML: one test case per checked area.
    Junit,
}

impl Report {
    /// A report of `findings` between the two operands, with the golden cases' results.
    pub(crate) fn new(
        baseline: &str,
        target: &str,
        findings: Vec<Finding>,
        golden: Vec<CaseResult>,
    ) -> Report {
        let mut summary = Summary::default();
        for finding in &findings {
            match finding.severity {
                Severity::Error => summary.error += 1,
                Severity::Warning => summary.warning += 1,
                Severity::Info => summary.info += 1,
            }
        }
        Report {
            schema: SCHEMA_VERSION,
            baseline: baseline.to_string(),
            target: target.to_string(),
            findings,
            summary,
            golden,
        }
    }

    /// Whether any finding is at or above `gate`.
    pub fn fails(&self, gate: Severity) -> bool {
        self.findings.iter().any(|finding| finding.severity >= gate)
    }

    /// The one-line verdict shared by the renderers.
    pub fn verdict(&self, gate: Severity) -> String {
        let Summary {
            error,
            warning,
            info,
        } = self.summary;
        let counts = format!(
            "{error} error{}, {warning} warning{}, {info} info",
            plural(error),
            plural(warning)
        );
        if self.fails(gate) {
            format!("FAIL: {counts}; drift at or above `{}`", gate.as_str())
        } else {
            format!("PASS: {counts}; nothing at or above `{}`", gate.as_str())
        }
    }

    /// The report in `format`. `human` carries ANSI styles, for the caller to keep or strip.
    pub fn render(&self, format: Format, gate: Severity) -> String {
        match format {
            Format::Human => human::render(self, gate),
            Format::Json => {
                let mut text = serde_json::to_string_pretty(self).expect("a report serialises");
                text.push('\n');
                text
            }
            Format::Markdown => markdown::render(self, gate),
            Format::Junit => junit::render(self, gate),
        }
    }
}

/// `3 values, max abs error 1.2e-9, max rel error 3.4e-12, worst at /0` for a golden case.
fn case_summary(case: &CaseResult) -> String {
    if case.status == CaseStatus::Error {
        return "no output to compare (see the golden-error finding)".to_string();
    }
    let mut text = format!(
        "{} values, {} out of tolerance, max abs error {:.3e}, max rel error {:.3e}",
        case.values, case.out_of_tolerance, case.max_abs_error, case.max_rel_error
    );
    if let Some(worst) = &case.worst {
        text.push_str(&format!(", worst at {worst}"));
    }
    text
}

/// `latency pass: target p50 3.1 ms, p95 4.0 ms, max 9.8 ms (20 runs); baseline …; budget
/// 200 ms` for a case with a latency budget.
fn latency_summary(case: &CaseResult) -> Option<String> {
    let latency = case.latency.as_ref()?;
    let status = serde_json::to_value(latency.status).unwrap_or_default();
    let mut text = format!("latency {}", status.as_str().unwrap_or(""));
    let parts = [("target", &latency.target), ("baseline", &latency.baseline)];
    for (side, measured) in parts {
        match measured {
            Some(measured) => text.push_str(&format!("; {side} {}", summary(measured))),
            None => text.push_str(&format!("; {side} not measured")),
        }
    }
    if let Some(budget) = latency.budget_ms {
        text.push_str(&format!("; budget {}", ms(budget)));
    }
    if let Some(factor) = latency.regression {
        text.push_str(&format!("; at most {factor}× the baseline"));
    }
    Some(text)
}

/// ` (layer 3: RUN pip install -r requirements.txt)` after a finding's message, when the
/// target's layer that wrote its subject is known.
fn layer_note(finding: &Finding) -> String {
    finding
        .layer
        .as_ref()
        .map_or_else(String::new, |layer| format!(" ({})", layer.describe()))
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// The JSON Schema of the report, as committed in `schemas/envlock.report.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}
