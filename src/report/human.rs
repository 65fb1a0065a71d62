//! The terminal report: findings grouped by severity then area, codes aligned, multi-line
//! values as unified diffs, and a one-line verdict.

use std::fmt::Write as _;

use similar::TextDiff;

use super::Report;
use crate::diff::Severity;

pub fn render(report: &Report, gate: Severity, color: bool) -> String {
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "envlock diff: {} -> {}",
        report.baseline, report.target
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nno drift: the two runtimes match");
    }
    let width = report
        .findings
        .iter()
        .map(|finding| finding.code.as_str().len())
        .max()
        .unwrap_or(0);
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        let style = match severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        let _ = writeln!(
            out,
            "\n{} ({})",
            paint(severity.as_str(), style),
            group.len()
        );
        let mut area = None;
        for finding in group {
            if area != Some(finding.code.area()) {
                area = Some(finding.code.area());
                let _ = writeln!(out, "  {}", finding.code.area().as_str());
            }
            let _ = writeln!(
                out,
                "    {:<width$}  {}",
                finding.code.as_str(),
                finding.message
            );
            // Multi-line values on both sides are shown as a unified diff.
            if let (Some(before), Some(after)) = (&finding.baseline, &finding.target) {
                if !before.contains('\n') && !after.contains('\n') {
                    continue;
                }
                let ended = |text: &str| {
                    let mut text = text.to_string();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text
                };
                let (before, after) = (ended(before), ended(after));
                let diff = TextDiff::from_lines(&before, &after);
                let unified = diff.unified_diff().header("baseline", "target").to_string();
                for line in unified.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    if !report.golden.is_empty() {
        let _ = writeln!(out, "\ngolden cases");
        let name_width = report
            .golden
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        for case in &report.golden {
            let status = match case.status {
                crate::golden::CaseStatus::Pass => paint("pass    ", "1;32"),
                crate::golden::CaseStatus::Mismatch => paint("mismatch", "1;31"),
                crate::golden::CaseStatus::Error => paint("error   ", "1;31"),
            };
            let _ = writeln!(
                out,
                "  {:<name_width$}  {status}  {}",
                case.name,
                super::case_summary(case)
            );
        }
    }
    let verdict = report.verdict(gate);
    let verdict = if report.fails(gate) {
        paint(&verdict, "1;31")
    } else {
        paint(&verdict, "1;32")
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}
