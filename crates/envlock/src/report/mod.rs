//! A diff's report and its renderers: human (terminal), json (the documented envelope),
//! markdown (a pull-request comment) and junit (CI test views), all from the same findings.

mod human;
mod junit;
mod markdown;

use schemars::JsonSchema;
use serde::Serialize;

use std::collections::BTreeMap;

use crate::diff::{platforms_differ, suspects, Code, Finding, Severity, Suspect};
use crate::verdict::{ms, summary, CaseResult, CaseStatus};
use crate::warning::Warning;

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
    pub golden: Vec<ReportedCase>,
    /// What the reader should know about the comparison itself, one line each (another
    /// platform without `cross-platform`, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What capture of either side could not do as asked, each with a stable code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The codes of the findings each cause (code, subject) explains, in report order.
    #[serde(skip)]
    explained: BTreeMap<(Code, String), Vec<Code>>,
}

/// A golden case's result in the report: with, when it failed, the findings that could
/// explain it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReportedCase {
    /// The comparison.
    #[serde(flatten)]
    pub result: CaseResult,
    /// Ranked: a changed model, then numeric libraries and CPU, the packages that do the
    /// math, thread and hash-seed variables, the Python version, everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspects: Vec<Suspect>,
}

impl std::ops::Deref for ReportedCase {
    type Target = CaseResult;

    fn deref(&self) -> &CaseResult {
        &self.result
    }
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Information.
    pub info: usize,
    /// Findings that explain others (another platform, a package upgrade).
    #[serde(default)]
    pub causes: usize,
    /// Findings another explains (shown under their cause).
    #[serde(default)]
    pub explained: usize,
    /// Findings above `info` about distributions no golden case loaded on either side
    /// (what `[policy] scope = "loaded"` makes information).
    #[serde(default)]
    pub not_loaded: usize,
}

/// How to print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
        cross_platform: bool,
    ) -> Report {
        let mut summary = Summary::default();
        for finding in &findings {
            match finding.severity {
                Severity::Error => summary.error += 1,
                Severity::Warning => summary.warning += 1,
                Severity::Info => summary.info += 1,
            }
        }
        let explained = consequences_of(&findings);
        summary.explained = explained.values().map(Vec::len).sum();
        summary.causes = explained.len();
        summary.not_loaded = crate::diff::not_loaded(&findings);
        let suspects = suspects(&findings);
        let golden = golden
            .into_iter()
            .map(|result| ReportedCase {
                suspects: if failed(&result) {
                    suspects.clone()
                } else {
                    Vec::new()
                },
                result,
            })
            .collect();
        let mut notes = Vec::new();
        if !cross_platform && platforms_differ(&findings) {
            notes.push(
                "the two runtimes are on another OS or architecture; if the baseline was captured on another platform on purpose (a laptop's lock against a Linux image), pass `--cross-platform` (or set `[policy] cross-platform = true`) to read the platform and what it explains as information".to_string(),
            );
        }
        Report {
            schema: SCHEMA_VERSION,
            baseline: baseline.to_string(),
            target: target.to_string(),
            findings,
            summary,
            golden,
            notes,
            warnings: Vec::new(),
            explained,
        }
    }

    /// With the warnings of the captures.
    pub(crate) fn with_warnings(mut self, warnings: Vec<Warning>) -> Report {
        self.warnings = warnings;
        self
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
            causes,
            explained,
            not_loaded,
        } = self.summary;
        let mut counts = format!(
            "{error} error{}, {warning} warning{}, {info} info",
            plural(error),
            plural(warning)
        );
        if explained > 0 {
            counts.push_str(&format!(
                " ({explained} explained by {causes} cause{})",
                plural(causes)
            ));
        }
        let mut verdict = if self.fails(gate) {
            format!("FAIL: {counts}; drift at or above `{}`", gate.as_str())
        } else {
            format!("PASS: {counts}; nothing at or above `{}`", gate.as_str())
        };
        if not_loaded > 0 {
            verdict.push_str(&format!(
                "; {not_loaded} finding{} about packages no golden case loaded (`[policy] scope = \"loaded\"` makes them info)",
                plural(not_loaded)
            ));
        }
        verdict
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

/// `loaded 2 distributions (numpy, scipy), 41 shared objects; as 1000650000:0` for a case
/// whose run in the target was traced, or why what it loaded is unknown.
fn loaded_summary(case: &CaseResult) -> Option<String> {
    let loaded = case.loaded.as_ref()?;
    let mut text = match &loaded.unknown {
        Some(why) => format!("loaded set unknown: {why}"),
        None => {
            let count = loaded.distributions.len();
            let mut names = loaded.distributions[..count.min(5)].join(", ");
            if count > 5 {
                names.push_str(&format!(", +{} more", count - 5));
            }
            let names = if count > 0 {
                format!(" ({names})")
            } else {
                String::new()
            };
            format!(
                "loaded {count} distribution{}{names}, {} shared object{}",
                plural(count),
                loaded.libraries.len(),
                plural(loaded.libraries.len())
            )
        }
    };
    if let Some(run_as) = &case.run_as {
        text.push_str(&format!("; ran as {run_as}"));
    }
    Some(text)
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

/// `suspects: model-hash model, package-version numpy, …` for a failing case (five at most).
fn suspects_summary(case: &ReportedCase) -> Option<String> {
    if case.suspects.is_empty() {
        return None;
    }
    let shown: Vec<String> = case
        .suspects
        .iter()
        .take(5)
        .map(|s| format!("{} {}", s.code.as_str(), s.subject))
        .collect();
    let more = case.suspects.len().saturating_sub(5);
    let more = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    Some(format!("suspects: {}{more}", shown.join(", ")))
}

/// The codes of the findings each cause explains.
fn consequences_of(findings: &[Finding]) -> BTreeMap<(Code, String), Vec<Code>> {
    let mut explained: BTreeMap<(Code, String), Vec<Code>> = BTreeMap::new();
    for finding in findings {
        if let Some(cause) = &finding.cause {
            explained
                .entry((cause.code, cause.subject.clone()))
                .or_default()
                .push(finding.code);
        }
    }
    explained
}

/// Whether a golden case failed: out of tolerance, not run, or too slow.
fn failed(case: &CaseResult) -> bool {
    use crate::verdict::LatencyStatus;
    case.status != CaseStatus::Pass
        || case
            .latency
            .as_ref()
            .is_some_and(|latency| latency.status != LatencyStatus::Pass)
}

/// `… and 12 packages with other wheel tags, the C library` under a cause.
fn consequences(report: &Report, cause: &Finding) -> Option<String> {
    let codes = report.explained.get(&(cause.code, cause.subject.clone()))?;
    let mut counts: Vec<(Code, usize)> = Vec::new();
    for code in codes {
        match counts.iter_mut().find(|(known, _)| known == code) {
            Some((_, count)) => *count += 1,
            None => counts.push((*code, 1)),
        }
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(code, count)| {
            let many = |one: &str, several: &str| {
                if count == 1 {
                    one.to_string()
                } else {
                    format!("{count} {several}")
                }
            };
            match code {
                Code::PackageBuild => many(
                    "a package with other wheel tags",
                    "packages with other wheel tags",
                ),
                Code::PackageFiles => many(
                    "a package with other installed files (RECORD)",
                    "packages with other installed files (RECORD)",
                ),
                Code::Libc => "the C library".to_string(),
                Code::SystemPackage => many("a system package", "system packages"),
                Code::CondaPackage => many("a conda package", "conda packages"),
                Code::NumericLibrary => many("a numeric library", "numeric libraries"),
                Code::CpuFeatures => "the CPU".to_string(),
                other => format!("{count} {}", other.as_str()),
            }
        })
        .collect();
    Some(format!("… and {}", parts.join(", ")))
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
