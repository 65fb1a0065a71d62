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
            if let Some(loaded) = super::loaded_summary(case) {
                result = format!("{result}; {loaded}");
            }
            if let Some(suspects) = super::suspects_summary(case) {
                result = format!("{result}; {suspects}");
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
    // A consequence is told in its cause's row, not in a row of its own.
    for finding in report.findings.iter().filter(|f| f.cause.is_none()) {
        let value = |value: &Option<String>| value.as_deref().map_or("—".to_string(), cell);
        let explained = super::consequences(report, finding)
            .map_or_else(String::new, |explained| format!("\n{explained}"));
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} |",
            finding.severity.as_str(),
            finding.code.as_str(),
            cell(&finding.subject),
            value(&finding.baseline),
            value(&finding.target),
            cell(&format!(
                "{}{}{explained}",
                finding.message,
                super::layer_note(finding)
            ))
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n**Note:** {}", cell(note));
    }
    out
}

/// A table cell: pipes escaped, line breaks as `<br>`.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}
