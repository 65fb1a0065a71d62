//! Which finding explains which. A consequence carries `cause` (the code and subject of the
//! finding that explains it); reports show it under its cause instead of as its own line.
//! Grouping changes reading, not verdicts: a consequence keeps its severity for the gate,
//! unless `cross-platform` declares the platform change intended.
//!
//! The relations, most specific first:
//! - a package's version or build change explains its RECORD digest (`package-files`) and
//!   the numeric libraries it ships (`numeric-library` of `PACKAGE:role`);
//! - a package missing from the target, or its version change, explains a requirement of
//!   another that the target does not meet (`requirement-unmet`);
//! - another OS or architecture explains other wheel tags (`package-build`), RECORD digests,
//!   the C library, system packages, conda builds, numeric libraries and the CPU;
//! - another Python minor (or major) version explains other wheel tags (`cpXY`) and RECORD
//!   digests of compiled packages.
//!
//! Suspects: for a failing golden case, the findings that could explain it, ranked: what the
//! model file records, a changed model file; the numeric libraries a traced golden run
//! mapped, then the other numeric libraries, CPU and kernels; the packages the golden cases
//! loaded and the packages that do the math; thread and hash-seed variables; the Python
//! version; everything else; last, the packages no golden case loaded.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Build, Code, Finding, Severity};

/// The finding that explains another (`"cause"` in the JSON report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Cause {
    /// The explaining finding's code.
    pub code: Code,
    /// Its subject.
    pub subject: String,
}

/// A finding that could explain a failing golden case (`golden[].suspects`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Suspect {
    /// The finding's code.
    pub code: Code,
    /// Its subject.
    pub subject: String,
    /// Why it ranks where it does.
    pub reason: String,
}

/// Whether a `package-build` finding is about wheel tags (what a platform or Python change
/// gives), rather than an installer, a local label or a source.
fn wheel_tags(finding: &Finding) -> bool {
    finding.code == Code::PackageBuild && finding.build == Some(Build::WheelTags)
}

/// The owner of a `numeric-library` subject (`numpy:blas` → `numpy`).
fn owner(subject: &str) -> &str {
    subject.split_once(':').map_or(subject, |(owner, _)| owner)
}

/// Sets `cause` on every finding another explains.
pub(crate) fn explain(findings: &mut [Finding]) {
    let find = |code: Code| {
        findings.iter().find(|f| f.code == code).map(|f| Cause {
            code: f.code,
            subject: f.subject.clone(),
        })
    };
    let platform = find(Code::PlatformArch).or_else(|| find(Code::PlatformOs));
    let python = findings
        .iter()
        .find(|f| {
            f.code == Code::PythonVersion
                && matches!(f.change, Some(super::Change::Major | super::Change::Minor))
        })
        .map(|f| Cause {
            code: f.code,
            subject: f.subject.clone(),
        });
    // A package's own change, by name: looked up once per finding, so indexed.
    let mut own_changes: std::collections::HashMap<&str, Cause> = std::collections::HashMap::new();
    for finding in findings.iter() {
        let own = finding.code == Code::PackageVersion
            || (finding.code == Code::PackageBuild && !wheel_tags(finding));
        let better = own_changes
            .get(finding.subject.as_str())
            .is_none_or(|known| known.code != Code::PackageVersion);
        if own && better {
            let cause = Cause {
                code: finding.code,
                subject: finding.subject.clone(),
            };
            own_changes.insert(finding.subject.as_str(), cause);
        }
    }
    // What the target lost or changed, for the requirements it no longer meets.
    let mut lost: std::collections::HashMap<&str, Cause> = std::collections::HashMap::new();
    for finding in findings.iter() {
        if matches!(finding.code, Code::PackageMissing | Code::PackageVersion) {
            let cause = Cause {
                code: finding.code,
                subject: finding.subject.clone(),
            };
            lost.insert(finding.subject.as_str(), cause);
        }
    }
    let causes: Vec<Option<Cause>> = findings
        .iter()
        .map(|finding| {
            let package = |subject: &str| own_changes.get(subject).cloned();
            let own = match finding.code {
                Code::PackageFiles => package(&finding.subject),
                Code::NumericLibrary => package(owner(&finding.subject)),
                // The target's side only: the baseline's own is no consequence of drift.
                Code::RequirementUnmet if finding.target.is_some() => finding
                    .required
                    .as_deref()
                    .and_then(|required| lost.get(required).cloned()),
                _ => None,
            };
            let by_platform = match finding.code {
                Code::PackageFiles
                | Code::Libc
                | Code::SystemPackage
                | Code::CondaPackage
                | Code::NumericLibrary
                | Code::CpuFeatures => platform.clone(),
                Code::PackageBuild if wheel_tags(finding) => platform.clone(),
                _ => None,
            };
            let by_python = match finding.code {
                Code::PackageFiles => python.clone(),
                Code::PackageBuild if wheel_tags(finding) => python.clone(),
                _ => None,
            };
            own.or(by_platform).or(by_python)
        })
        .collect();
    for (finding, cause) in findings.iter_mut().zip(causes) {
        // Nothing explains itself.
        finding.cause = cause.filter(|c| !(c.code == finding.code && c.subject == finding.subject));
    }
}

/// The packages that do the math, whose version or build is a suspect for other numbers.
const MATH: &[&str] = &[
    "numpy",
    "scipy",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "jax",
    "jaxlib",
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "onnxruntime",
    "onnxruntime-gpu",
    "pandas",
];

/// Variables that change thread counts, reduction order or hashing.
const THREADS: &[&str] = &[
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "PYTHONHASHSEED",
];

/// The rank of `finding` as a suspect (0 first), and why; `None` for what cannot explain
/// a prediction (golden findings themselves, the policy, consequences of another finding).
fn rank(finding: &Finding) -> Option<(u8, &'static str)> {
    if finding.cause.is_some() {
        return None;
    }
    let package = matches!(
        finding.code,
        Code::PackageVersion
            | Code::PackageBuild
            | Code::PackageFiles
            | Code::PackageMissing
            | Code::PackageAdded
            | Code::CondaPackage
    );
    Some(match finding.code {
        Code::ModelFramework | Code::ModelImport => {
            (0, "the model file was written for another library version")
        }
        Code::ModelHash | Code::ModelMissing => (1, "a changed model file"),
        Code::NumericLibrary if finding.loaded == Some(true) => {
            (2, "a native library the golden run mapped")
        }
        Code::NumericLibrary | Code::CpuFeatures | Code::NumericsKernel => {
            (3, "the native code or CPU behind the numbers")
        }
        _ if package && finding.loaded == Some(true) => (4, "a package the golden cases loaded"),
        _ if package && finding.loaded == Some(false) => (8, "a package no golden case loaded"),
        _ if package && MATH.contains(&finding.subject.as_str()) => {
            (4, "a package that does the math")
        }
        Code::EnvVar if THREADS.contains(&finding.subject.as_str()) => {
            (5, "a thread or hash-seed variable")
        }
        Code::PythonVersion | Code::PythonImplementation => (6, "the Python version"),
        // The baseline's own unmet requirements are no difference that reached the target.
        Code::RequirementUnmet if finding.target.is_none() => return None,
        Code::RequirementUnmet => (7, "a requirement the target does not meet"),
        Code::GoldenMismatch
        | Code::GoldenError
        | Code::GoldenLatency
        | Code::GoldenSkipped
        | Code::ModelUnsafe
        | Code::PolicyUnused => return None,
        _ => (7, "another difference"),
    })
}

/// The findings that could explain a failing golden case, in the documented order (then
/// by severity, then code and subject).
pub(crate) fn suspects(findings: &[Finding]) -> Vec<Suspect> {
    // A requirement the baseline leaves unmet alike is no difference that reached the target.
    let alike = |f: &Finding| {
        f.code == Code::RequirementUnmet
            && findings.iter().any(|other| {
                other.code == Code::RequirementUnmet
                    && other.subject == f.subject
                    && other.target.is_none()
                    && other.baseline == f.target
            })
    };
    let mut ranked: Vec<(u8, std::cmp::Reverse<Severity>, &Finding, &'static str)> = findings
        .iter()
        .filter(|f| !alike(f))
        .filter_map(|f| rank(f).map(|(rank, why)| (rank, std::cmp::Reverse(f.severity), f, why)))
        .collect();
    ranked.sort_by(|a, b| {
        (a.0, a.1, a.2.code, &a.2.subject).cmp(&(b.0, b.1, b.2.code, &b.2.subject))
    });
    ranked
        .into_iter()
        .map(|(_, _, finding, why)| Suspect {
            code: finding.code,
            subject: finding.subject.clone(),
            reason: why.to_string(),
        })
        .collect()
}

/// Whether the two runtimes run on another OS or architecture.
pub(crate) fn platforms_differ(findings: &[Finding]) -> bool {
    findings
        .iter()
        .any(|f| matches!(f.code, Code::PlatformOs | Code::PlatformArch))
}

/// `cross-platform`: the baseline was captured on another OS or architecture on purpose, so
/// the platform findings and everything they explain are information.
pub(crate) fn as_cross_platform(findings: &mut [Finding]) {
    for finding in findings {
        let platform = |code: Code| matches!(code, Code::PlatformOs | Code::PlatformArch);
        if platform(finding.code) || finding.cause.as_ref().is_some_and(|c| platform(c.code)) {
            finding.severity = Severity::Info;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: Code, subject: &str, message: &str) -> Finding {
        Finding::new(code, subject, None, None, message.to_string())
    }

    /// The suspects of `findings` as `code subject`, in their order.
    fn order(findings: &[Finding]) -> Vec<String> {
        suspects(findings)
            .iter()
            .map(|s| format!("{} {}", s.code.as_str(), s.subject))
            .collect()
    }

    #[test]
    fn a_lost_or_changed_package_explains_the_requirements_the_target_no_longer_meets() {
        let unmet = |subject: &str, required: &str, on_target: bool| {
            let value = Some(format!("{required}>=1 (lacks {required})"));
            let (baseline, target) = if on_target {
                (None, value)
            } else {
                (value, None)
            };
            Finding {
                required: Some(required.to_string()),
                ..Finding::new(
                    Code::RequirementUnmet,
                    subject,
                    baseline,
                    target,
                    String::new(),
                )
            }
        };
        let mut findings = vec![
            finding(Code::PackageMissing, "threadpoolctl", "gone"),
            finding(Code::PackageVersion, "joblib", "1.4 -> 1.1"),
            unmet("scikit-learn", "threadpoolctl", true),
            unmet("scikit-learn", "joblib", true),
            unmet("scikit-learn", "scipy", true),
            unmet("scikit-learn", "threadpoolctl", false),
        ];
        explain(&mut findings);
        let cause = |index: usize| findings[index].cause.as_ref().map(|c| c.code);
        assert_eq!(cause(2), Some(Code::PackageMissing));
        assert_eq!(cause(3), Some(Code::PackageVersion));
        assert_eq!(cause(4), None, "nothing about scipy changed");
        assert_eq!(cause(5), None, "the baseline's own is no drift");
        // A requirement the baseline leaves unmet alike is no suspect; another one is.
        let alike = vec![unmet("a", "b", true), unmet("a", "b", false)];
        assert_eq!(order(&alike), Vec::<String>::new());
        assert_eq!(order(&alike[..1]), ["requirement-unmet a"]);
    }

    #[test]
    fn consequences_point_at_the_most_specific_cause() {
        let mut findings = vec![
            finding(Code::PlatformArch, "arch", "architecture aarch64 -> x86_64"),
            Finding {
                build: Some(Build::WheelTags),
                ..finding(
                    Code::PackageBuild,
                    "numpy",
                    "numpy: same version, wheel tags a -> b",
                )
            },
            finding(Code::PackageFiles, "numpy", "numpy: RECORD"),
            finding(Code::PackageVersion, "scipy", "scipy 1.13 -> 1.14"),
            finding(Code::PackageFiles, "scipy", "scipy: RECORD"),
            finding(Code::NumericLibrary, "scipy:blas", "openblas"),
            finding(Code::Libc, "libc", "none -> glibc"),
            finding(
                Code::PackageBuild,
                "torch",
                "torch: same version, installer pip -> uv",
            ),
            finding(Code::EnvVar, "OMP_NUM_THREADS", "4 -> 8"),
        ];
        explain(&mut findings);
        let cause = |index: usize| {
            findings[index]
                .cause
                .as_ref()
                .map(|c| (c.code, c.subject.as_str()))
        };
        assert_eq!(cause(0), None);
        assert_eq!(cause(1), Some((Code::PlatformArch, "arch")));
        assert_eq!(cause(2), Some((Code::PlatformArch, "arch")));
        assert_eq!(cause(4), Some((Code::PackageVersion, "scipy")));
        assert_eq!(cause(5), Some((Code::PackageVersion, "scipy")));
        assert_eq!(cause(6), Some((Code::PlatformArch, "arch")));
        assert_eq!(cause(7), None, "an installer change is no platform's doing");
        assert_eq!(cause(8), None);
        // Declared cross-platform: the platform and what it explains are information; the
        // rest keeps its severity.
        as_cross_platform(&mut findings);
        assert_eq!(findings[0].severity, Severity::Info);
        assert_eq!(findings[6].severity, Severity::Info);
        assert_eq!(findings[3].severity, Severity::Error);
    }

    #[test]
    fn suspects_in_the_documented_order() {
        let mut findings = vec![
            finding(Code::PythonVersion, "python", "3.11.7 -> 3.11.9"),
            finding(Code::EnvVar, "OMP_NUM_THREADS", "4 -> 8"),
            finding(Code::EnvVar, "TZ", "UTC -> Europe/Paris"),
            finding(Code::PackageVersion, "numpy", "numpy 1.26.4 -> 2.0.2"),
            finding(Code::PackageVersion, "requests", "2.31 -> 2.32"),
            finding(Code::ModelHash, "model/", "weights.bin changed"),
            finding(
                Code::ModelFramework,
                "model/",
                "written by scikit-learn 1.5.2",
            ),
            finding(Code::ModelUnsafe, "model/", "would call posix.system"),
            finding(Code::GoldenMismatch, "salary", "out of tolerance"),
            finding(
                Code::NumericLibrary,
                "numpy:blas",
                "openblas 0.3.23 -> 0.3.27",
            ),
        ];
        findings[9].cause = Some(Cause {
            code: Code::PackageVersion,
            subject: "numpy".into(),
        });
        let order = order(&findings);
        assert_eq!(
            order,
            [
                // What the model file records comes first; an unsafe pickle explains no
                // prediction.
                "model-framework model/",
                "model-hash model/",
                "package-version numpy",
                "env-var OMP_NUM_THREADS",
                "python-version python",
                // Everything else: errors before warnings.
                "package-version requests",
                "env-var TZ",
            ]
        );
    }

    #[test]
    fn what_the_golden_runs_loaded_ranks_first() {
        let mut findings = vec![
            finding(Code::PackageVersion, "numpy", "1.26.4 -> 2.0.2"),
            finding(Code::PackageVersion, "requests", "2.31 -> 2.32"),
            finding(Code::PackageVersion, "pyyaml", "6.0.1 -> 6.0.2"),
            finding(Code::NumericLibrary, "scipy:blas", "0.3.23 -> 0.3.27"),
            finding(Code::NumericLibrary, "numpy:blas", "0.3.23 -> 0.3.27"),
            finding(Code::PythonVersion, "python", "3.11.7 -> 3.11.9"),
        ];
        findings[0].loaded = Some(false);
        findings[1].loaded = Some(true);
        findings[2].loaded = Some(false);
        findings[4].loaded = Some(true);
        let order = order(&findings);
        assert_eq!(
            order,
            [
                "numeric-library numpy:blas",
                "numeric-library scipy:blas",
                "package-version requests",
                "python-version python",
                // Not loaded on either side, not even numpy: last.
                "package-version numpy",
                "package-version pyyaml",
            ]
        );
    }
}
