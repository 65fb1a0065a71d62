//! A Markdown table fit to paste as a pull-request comment.

use std::fmt::Write as _;

use super::Report;
use crate::diff::Severity;

pub(super) fn render(report: &Report, gate: Severity) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### envlock: {}\n", report.verdict(gate));
    let _ = writeln!(
        out,
        "Baseline `{}`, target `{}`.\n",
        cell(&report.baseline),
        cell(&report.target)
    );
    if !report.golden.is_empty() {
        let _ = writeln!(out, "| golden case | status | result |");
        let _ = writeln!(out, "| --- | --- | --- |");
        for case in &report.golden {
            let status = serde_json::to_value(case.status).unwrap_or_default();
            let mut result = super::case_summary(case);
            if let Some(latency) = super::latency_summary(case) {
                result = format!("{result}; {latency}");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&case.name),
                status.as_str().unwrap_or(""),
                cell(&result)
            );
        }
        let _ = writeln!(out);
    }
    if report.findings.is_empty() {
        let _ = writeln!(out, "No drift: the two runtimes match.");
        return out;
    }
    let _ = writeln!(
        out,
        "| severity | code | subject | baseline | target | message |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for finding in &report.findings {
        let value = |value: &Option<String>| value.as_deref().map_or("—".to_string(), cell);
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} |",
            finding.severity.as_str(),
            finding.code.as_str(),
            cell(&finding.subject),
            value(&finding.baseline),
            value(&finding.target),
            cell(&format!(
                "{}{}",
                finding.message,
                super::layer_note(finding)
            ))
        );
    }
    out
}

/// A table cell: pipes escaped, line breaks as `<br>`.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}
