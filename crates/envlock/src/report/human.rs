//! The terminal report: findings grouped by severity then area, codes aligned, multi-line
//! values as unified diffs, and a one-line verdict. Styled with `anstyle`; the CLI prints it
//! through `anstream`, which drops the styles where colour is off (not a terminal,
//! `NO_COLOR`, `--color never`).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use similar::TextDiff;

use super::Report;
use crate::diff::{Finding, Severity};
use crate::verdict::CaseStatus;

fn bold(color: AnsiColor) -> Style {
    Style::new().bold().fg_color(Some(color.into()))
}

fn paint(text: &str, style: Style) -> String {
    format!("{style}{text}{style:#}")
}

pub(super) fn render(report: &Report, gate: Severity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "envlock diff: {} -> {}",
        report.baseline, report.target
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nno drift: the two runtimes match");
    }
    render_findings(&mut out, report);
    render_layers(&mut out, report);
    render_golden(&mut out, report);
    for note in &report.notes {
        let _ = writeln!(out, "\nnote: {note}");
    }
    let verdict = report.verdict(gate);
    let style = if report.fails(gate) {
        bold(AnsiColor::Red)
    } else {
        bold(AnsiColor::Green)
    };
    let _ = writeln!(out, "\n{}", paint(&verdict, style));
    out
}

fn render_findings(out: &mut String, report: &Report) {
    // A consequence is shown under its cause, not as its own line.
    let findings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.cause.is_none())
        .collect();
    let width = findings
        .iter()
        .map(|finding| finding.code.as_str().len())
        .max()
        .unwrap_or(0);
    for (severity, color) in [
        (Severity::Error, AnsiColor::Red),
        (Severity::Warning, AnsiColor::Yellow),
        (Severity::Info, AnsiColor::Cyan),
    ] {
        let group: Vec<_> = findings.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} ({})",
            paint(severity.as_str(), bold(color)),
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
                "    {:<width$}  {}{}",
                finding.code.as_str(),
                finding.message,
                super::layer_note(finding)
            );
            if let Some(explained) = super::consequences(report, finding) {
                let _ = writeln!(out, "    {:<width$}    {explained}", "");
            }
            render_unified(out, finding);
        }
    }
}

/// Multi-line values on both sides, as a unified diff.
fn render_unified(out: &mut String, finding: &Finding) {
    let (Some(before), Some(after)) = (&finding.baseline, &finding.target) else {
        return;
    };
    if !before.contains('\n') && !after.contains('\n') {
        return;
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

/// The target's layers that introduced findings, each with what it introduced: which
/// Dockerfile step to look at first.
fn render_layers(out: &mut String, report: &Report) {
    let mut layers: std::collections::BTreeMap<usize, (String, Vec<String>)> =
        std::collections::BTreeMap::new();
    for finding in &report.findings {
        if let Some(layer) = &finding.layer {
            let entry = layers
                .entry(layer.index)
                .or_insert_with(|| (layer.describe(), Vec::new()));
            entry
                .1
                .push(format!("{} {}", finding.code.as_str(), finding.subject));
        }
    }
    if layers.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nby layer of the target");
    for (step, introduced) in layers.into_values() {
        let _ = writeln!(out, "  {step}");
        let _ = writeln!(out, "    {}", introduced.join(", "));
    }
}

fn render_golden(out: &mut String, report: &Report) {
    if report.golden.is_empty() {
        return;
    }
    let _ = writeln!(out, "\ngolden cases");
    let name_width = report
        .golden
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for case in &report.golden {
        let status = match case.status {
            CaseStatus::Pass => paint("pass    ", bold(AnsiColor::Green)),
            CaseStatus::Mismatch => paint("mismatch", bold(AnsiColor::Red)),
            CaseStatus::Error => paint("error   ", bold(AnsiColor::Red)),
        };
        let _ = writeln!(
            out,
            "  {:<name_width$}  {status}  {}",
            case.name,
            super::case_summary(case)
        );
        if let Some(latency) = super::latency_summary(case) {
            let _ = writeln!(out, "  {:<name_width$}            {latency}", "");
        }
        if let Some(loaded) = super::loaded_summary(case) {
            let _ = writeln!(out, "  {:<name_width$}            {loaded}", "");
        }
        if let Some(suspects) = super::suspects_summary(case) {
            let _ = writeln!(out, "  {:<name_width$}            {suspects}", "");
        }
    }
}
