//! What the golden cases loaded, against the findings: a finding about a distribution says
//! whether any case imported it on either side (`loaded`), which `[policy] scope =
//! "loaded"` turns into `info` for the ones no case loaded, and which suspects rank by.

use std::collections::BTreeSet;

use super::{Area, Finding};
use crate::lock::{GoldenCase, Loaded, Lock};
use crate::verdict::CaseResult;

/// Why what the golden cases loaded is not known, so `[policy] scope = "loaded"` cannot
/// apply (said in a note).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadedUnknown {
    /// The config has no golden case, or none ran.
    #[error("no golden case ran")]
    NoCase,
    /// A case has no loaded set on a side.
    #[error("golden case `{name}` has no loaded set in the {side}{}", if *side == Side::Baseline {
        " (a lock from before envlock traced golden runs: snapshot it again)"
    } else {
        ""
    })]
    Missing { name: String, side: Side },
    /// A case's loaded set on a side is unknown, and why.
    #[error("golden case `{name}`: the {side}'s loaded set is unknown: {why}")]
    Unknown {
        name: String,
        side: Side,
        why: String,
    },
}

/// A side of the comparison, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Baseline,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Side::Baseline => "baseline",
            Side::Target => "target",
        })
    }
}

/// The distributions the golden cases loaded on either side (`baseline`'s recorded cases,
/// `target`'s results), or why that is not known: no case ran, or one's loaded set is
/// unknown on a side (then nothing can be said to be unloaded).
pub(crate) fn loaded_distributions(
    baseline: &[GoldenCase],
    target: &[CaseResult],
) -> Result<BTreeSet<String>, LoadedUnknown> {
    if baseline.is_empty() {
        return Err(LoadedUnknown::NoCase);
    }
    let mut union = BTreeSet::new();
    let mut add = |name: &str, side: Side, loaded: Option<&Loaded>| match loaded {
        None => Err(LoadedUnknown::Missing {
            name: name.to_string(),
            side,
        }),
        Some(Loaded {
            unknown: Some(why), ..
        }) => Err(LoadedUnknown::Unknown {
            name: name.to_string(),
            side,
            why: why.clone(),
        }),
        Some(loaded) => {
            union.extend(loaded.distributions.iter().cloned());
            Ok(())
        }
    };
    for case in baseline {
        let name = &case.spec.name;
        add(name, Side::Baseline, case.loaded.as_ref())?;
        let result = target.iter().find(|result| &result.name == name);
        add(
            name,
            Side::Target,
            result.and_then(|result| result.loaded.as_ref()),
        )?;
    }
    Ok(union)
}

/// Marks each finding about a distribution with whether a golden case loaded it; a
/// dist-info that either side has without a RECORD has no file list to map its modules to,
/// so whether it was loaded stays unknown (an egg-info's modules come from its
/// `top_level.txt`).
pub(crate) fn mark_loaded(findings: &mut [Finding], loaded: &BTreeSet<String>, sides: [&Lock; 2]) {
    let unlisted = |name: &str| {
        sides.iter().any(|lock| {
            lock.packages.iter().any(|package| {
                package.name == name
                    && package.record.is_none()
                    && package.format == crate::lock::MetadataFormat::DistInfo
            })
        })
    };
    for finding in findings
        .iter_mut()
        .filter(|finding| finding.code.area() == Area::Packages)
    {
        let subject = finding.subject.as_str();
        finding.loaded = (!unlisted(subject)).then(|| loaded.contains(subject));
    }
}

/// How many findings concern distributions no golden case loaded (what `scope = "loaded"`
/// would make information).
pub(crate) fn not_loaded(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|finding| {
            finding.loaded == Some(false) && finding.severity != super::Severity::Info
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Code, Policy, Severity};
    use crate::lock::GoldenSpec;

    fn case(name: &str, loaded: Option<Loaded>) -> GoldenCase {
        let spec: GoldenSpec = toml::from_str(&format!(
            "name = \"{name}\"\ncommand = [\"python3\", \"p.py\"]\ninput = \"x\""
        ))
        .unwrap();
        GoldenCase {
            spec,
            input_sha256: String::new(),
            input_text: None,
            input_file: None,
            output: String::new(),
            deterministic: None,
            measured_latency: None,
            loaded,
            run_as: None,
        }
    }

    fn result(name: &str, loaded: Option<Loaded>) -> CaseResult {
        CaseResult {
            name: name.into(),
            status: crate::verdict::CaseStatus::Pass,
            values: 1,
            out_of_tolerance: 0,
            max_abs_error: 0.0,
            max_rel_error: 0.0,
            worst: None,
            latency: None,
            loaded,
            run_as: None,
        }
    }

    fn of(names: &[&str]) -> Option<Loaded> {
        Some(Loaded {
            distributions: names.iter().map(|n| n.to_string()).collect(),
            ..Loaded::default()
        })
    }

    #[test]
    fn the_union_over_both_sides_or_why_not() {
        let baseline = [case("a", of(&["numpy"])), case("b", of(&[]))];
        let target = [result("a", of(&["scipy"])), result("b", of(&["six"]))];
        let union = loaded_distributions(&baseline, &target).unwrap();
        assert_eq!(
            union.into_iter().collect::<Vec<_>>(),
            ["numpy", "scipy", "six"]
        );
        let unknown = [
            result("a", Some(Loaded::unknown("`-I`"))),
            result("b", of(&[])),
        ];
        let why = loaded_distributions(&baseline, &unknown)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("target's loaded set is unknown: `-I`"),
            "{why}"
        );
        let old = [case("a", None)];
        let why = loaded_distributions(&old, &target).unwrap_err().to_string();
        assert!(why.contains("snapshot it again"), "{why}");
        assert!(loaded_distributions(&[], &target).is_err());
        let missing = loaded_distributions(&baseline, &target[..1])
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("`b` has no loaded set in the target"),
            "{missing}"
        );
    }

    #[test]
    fn scope_loaded_makes_unloaded_distributions_information_only() {
        let finding = |code, subject: &str| {
            Finding::new(
                code,
                subject,
                Some("1".into()),
                Some("2".into()),
                format!("{subject} 1 -> 2"),
            )
        };
        let mut findings = vec![
            finding(Code::PackageVersion, "numpy"),
            finding(Code::PackageVersion, "pyyaml"),
            finding(Code::PythonVersion, "python"),
        ];
        findings[0].severity = Severity::Error;
        findings[1].severity = Severity::Error;
        findings[2].severity = Severity::Warning;
        let listed = |name: &str, record: Option<&str>| crate::lock::Package {
            name: name.into(),
            record: record.map(str::to_string),
            ..Default::default()
        };
        let mut lock = crate::diff::tests::runtime();
        lock.packages = vec![
            listed("numpy", Some("sha256:x")),
            listed("pyyaml", Some("sha256:y")),
        ];
        let mut egg = lock.clone();
        egg.packages[1].record = None;
        let mut unknown = findings.clone();
        mark_loaded(&mut unknown, &BTreeSet::new(), [&lock, &egg]);
        assert_eq!(
            unknown[1].loaded, None,
            "an egg-info pyyaml: no file list to map"
        );
        mark_loaded(
            &mut findings,
            &BTreeSet::from(["numpy".to_string()]),
            [&lock, &lock],
        );
        assert_eq!(findings[0].loaded, Some(true));
        assert_eq!(findings[1].loaded, Some(false));
        assert_eq!(findings[2].loaded, None);
        assert_eq!(not_loaded(&findings), 1);
        let all = Policy::default().apply(findings.clone());
        assert_eq!(all[1].severity, Severity::Error);
        let policy: Policy = toml::from_str("scope = \"loaded\"").unwrap();
        let scoped = policy.apply(findings);
        assert_eq!(scoped[0].severity, Severity::Error);
        assert_eq!(scoped[1].severity, Severity::Info);
        assert!(
            scoped[1].message.contains("no golden case loaded it"),
            "{}",
            scoped[1].message
        );
        assert_eq!(scoped[2].severity, Severity::Warning);
        assert!(toml::from_str::<Policy>("scope = \"imported\"").is_err());
    }
}
