//! JUnit XML for CI test views: one test case per checked area, failing when the area has
//! findings at or above the gate; findings below it are listed as the case's output.

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::diff::{Area, Severity};

const AREAS: [Area; 8] = [
    Area::Python,
    Area::Platform,
    Area::Packages,
    Area::Models,
    Area::Environment,
    Area::SystemPackages,
    Area::Image,
    Area::Policy,
];

pub(super) fn render(report: &Report, gate: Severity) -> String {
    let mut suite = TestSuite::new(format!(
        "envlock diff {} -> {}",
        report.baseline, report.target
    ));
    // Areas only some runtimes have (conda, numerics, golden cases) are cases only when
    // they have findings.
    let present = |area: Area| report.findings.iter().any(|f| f.code.area() == area);
    let areas = AREAS.iter().copied().chain(
        [Area::CondaPackages, Area::Numerics, Area::Golden]
            .into_iter()
            .filter(|area| present(*area)),
    );
    for area in areas {
        let findings: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.code.area() == area)
            .collect();
        let line = |f: &&crate::diff::Finding| {
            format!(
                "{}: {}: {}",
                f.severity.as_str(),
                f.code.as_str(),
                f.message
            )
        };
        let failing: Vec<String> = findings
            .iter()
            .filter(|f| f.severity >= gate)
            .map(line)
            .collect();
        let passing: Vec<String> = findings
            .iter()
            .filter(|f| f.severity < gate)
            .map(line)
            .collect();
        let status = if failing.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "{} finding(s) at or above `{}`",
                failing.len(),
                gate.as_str()
            ));
            status.set_type("drift");
            status.set_description(failing.join("\n"));
            status
        };
        let mut case = TestCase::new(area.as_str(), status);
        case.set_classname("envlock");
        if !passing.is_empty() {
            case.set_system_out(passing.join("\n"));
        }
        suite.add_test_case(case);
    }
    let mut junit = JunitReport::new("envlock");
    junit.add_test_suite(suite);
    junit.to_string().expect("a JUnit report serialises")
}
