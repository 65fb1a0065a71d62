//! The policy of `envlock.toml`'s `[policy]`: severities per finding code, rules per package
//! (name globs), and ignores, each with a reason. An ignore that matches nothing is itself
//! reported (`policy-unused`), so policies do not rot.
//!
//! ```toml
//! [policy.severity]
//! package-added = "info"
//! env-var = "error"
//!
//! [[policy.packages]]
//! names = ["numpy", "torch*"]
//! severity = "error"          # any finding about these packages
//!
//! [[policy.ignore]]
//! codes = ["package-version", "package-added", "package-missing"]
//! subjects = ["pip", "setuptools", "wheel"]
//! reason = "installer tooling, never imported at inference"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Area, Code, Finding, Severity};

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Severity per finding code, replacing the default.
    #[serde(default)]
    pub severity: BTreeMap<Code, Severity>,
    /// Severities for findings about named packages; a later rule wins over an earlier one.
    #[serde(default)]
    pub packages: Vec<PackageRule>,
    /// Findings to drop.
    #[serde(default)]
    pub ignore: Vec<IgnoreRule>,
    /// The baseline was captured on another OS or architecture on purpose (a laptop's lock
    /// against a Linux image): platform findings and everything they explain are `info`.
    #[serde(default)]
    pub cross_platform: bool,
    /// Which packages gate: `all` (the default), or `loaded`: a finding about a
    /// distribution that no golden case loaded on either side is `info`.
    #[serde(default)]
    pub scope: Scope,
    /// Models trusted by `[models] trust`: `model-unsafe` about them is `info`.
    #[serde(skip)]
    pub trusted_models: Vec<String>,
}

/// `[policy] scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every package finding gates by its severity.
    #[default]
    All,
    /// Findings about distributions no golden case loaded are information.
    Loaded,
}

/// `[[policy.packages]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageRule {
    /// Package names; `*` and `?` are globs; names are PEP 503 normalized before matching.
    pub names: Vec<String>,
    /// The severity of any finding about them.
    pub severity: Severity,
}

/// `[[policy.ignore]]`: drops the findings that match both lists (an empty list matches all).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IgnoreRule {
    /// Finding codes.
    #[serde(default)]
    pub codes: Vec<Code>,
    /// Subjects (package names, model paths, variable names); `*` and `?` are globs.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Why: required, and shown in reports.
    pub reason: String,
}

impl Policy {
    /// What is wrong with the policy, if anything the parser cannot see.
    pub(crate) fn problem(&self) -> Option<String> {
        self.ignore.iter().enumerate().find_map(|(index, rule)| {
            if rule.codes.is_empty() && rule.subjects.is_empty() {
                Some(format!("`[[policy.ignore]]` number {} has neither `codes` nor `subjects`: it would ignore everything", index + 1))
            } else if rule.reason.trim().is_empty() {
                Some(format!("`[[policy.ignore]]` number {} has an empty `reason`", index + 1))
            } else {
                None
            }
        })
    }

    /// Whether `[models] trust` covers the model at `path`: the same path (`./` and a
    /// trailing `/` aside), or a folder holding it.
    fn trusts(&self, path: &str) -> bool {
        let plain = |path: &str| {
            path.trim_start_matches("./")
                .trim_end_matches('/')
                .to_string()
        };
        let path = plain(path);
        self.trusted_models.iter().any(|trusted| {
            let trusted = plain(trusted);
            path == trusted || path.starts_with(&format!("{trusted}/"))
        })
    }

    /// Applies severities and ignores to `findings`, adding a `policy-unused` finding for
    /// every ignore rule that matched nothing.
    pub(crate) fn apply(&self, mut findings: Vec<Finding>) -> Vec<Finding> {
        if self.cross_platform {
            super::causes::as_cross_platform(&mut findings);
        }
        let mut used = vec![false; self.ignore.len()];
        let mut kept = Vec::with_capacity(findings.len());
        for mut finding in findings {
            if let Some(index) = self.ignore.iter().position(|rule| rule.matches(&finding)) {
                used[index] = true;
                continue;
            }
            if let Some(&severity) = self.severity.get(&finding.code) {
                finding.severity = severity;
            }
            if finding.code == Code::ModelUnsafe && self.trusts(&finding.subject) {
                finding.severity = Severity::Info;
                finding.message.push_str(" (trusted by `[models] trust`)");
            }
            if finding.code.area() == Area::Packages {
                let rule = self.packages.iter().rev().find(|rule| {
                    rule.names
                        .iter()
                        .any(|pattern| name_glob(pattern, &finding.subject))
                });
                // A rule that names the package wins over `scope`.
                if let Some(rule) = rule {
                    finding.severity = rule.severity;
                } else if self.scope == Scope::Loaded && finding.loaded == Some(false) {
                    finding.severity = Severity::Info;
                    finding.message.push_str(
                        " (no golden case loaded it on either side; `scope = \"loaded\"`)",
                    );
                }
            }
            // What the baseline does not meet is information about it: the gate is on the
            // target.
            if finding.code == Code::RequirementUnmet && finding.target.is_none() {
                finding.severity = Severity::Info;
            }
            kept.push(finding);
        }
        for (rule, used) in self.ignore.iter().zip(used) {
            if used {
                continue;
            }
            let code = Code::PolicyUnused;
            let describe = |items: Vec<String>| {
                if items.is_empty() {
                    "any".to_string()
                } else {
                    items.join(", ")
                }
            };
            let message = format!(
                "ignore rule ({}) matched nothing: codes {}; subjects {}",
                rule.reason,
                describe(rule.codes.iter().map(|c| c.as_str().to_string()).collect()),
                describe(rule.subjects.clone()),
            );
            let mut finding = Finding::new(code, &rule.reason, None, None, message);
            if let Some(&severity) = self.severity.get(&code) {
                finding.severity = severity;
            }
            kept.push(finding);
        }
        // A cause the policy dropped explains nothing in the report.
        let present: Vec<(Code, String)> =
            kept.iter().map(|f| (f.code, f.subject.clone())).collect();
        for finding in &mut kept {
            let dropped = finding.cause.as_ref().is_some_and(|c| {
                !present
                    .iter()
                    .any(|(code, subject)| *code == c.code && *subject == c.subject)
            });
            if dropped {
                finding.cause = None;
            }
        }
        kept
    }
}

impl IgnoreRule {
    fn matches(&self, finding: &Finding) -> bool {
        let code = self.codes.is_empty() || self.codes.contains(&finding.code);
        let subject = self.subjects.is_empty()
            || self.subjects.iter().any(|pattern| {
                glob(pattern, &finding.subject)
                    || (finding.code.area() == Area::Packages
                        && name_glob(pattern, &finding.subject))
            });
        code && subject
    }
}

/// A glob over package names, which are compared as PEP 503 does: case-insensitively, with
/// `-`, `_` and `.` alike (the subject is already normalized; the pattern is as typed).
pub(crate) fn name_glob(pattern: &str, name: &str) -> bool {
    let fold = |text: &str| -> Vec<char> {
        let mut folded: Vec<char> = Vec::with_capacity(text.len());
        for character in text.trim().chars() {
            let character = match character {
                '_' | '.' => '-',
                other => other.to_ascii_lowercase(),
            };
            if !(character == '-' && folded.last() == Some(&'-')) {
                folded.push(character);
            }
        }
        folded
    };
    glob_chars(&fold(pattern), &fold(name))
}

/// `*` (any run) and `?` (any one character) glob matching.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    glob_chars(
        &pattern.chars().collect::<Vec<_>>(),
        &text.chars().collect::<Vec<_>>(),
    )
}

fn glob_chars(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: Code, subject: &str) -> Finding {
        Finding::new(code, subject, None, None, String::new())
    }

    #[test]
    fn globs() {
        assert!(glob("torch*", "torchvision"));
        assert!(glob("*", ""));
        assert!(glob("n?mpy", "numpy"));
        assert!(!glob("numpy", "numpyx"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(name_glob("Zope.Interface", "zope-interface"));
        assert!(name_glob("torch*", "torchvision"));
        assert!(!name_glob("torch", "torchvision"));
    }

    #[test]
    fn severities_packages_and_ignores() {
        let policy: Policy = toml::from_str(
            r#"
            [severity]
            package-added = "error"
            [[packages]]
            names = ["NumPy"]
            severity = "error"
            [[ignore]]
            subjects = ["pip", "SetupTools"]
            reason = "tooling"
            [[ignore]]
            codes = ["libc"]
            reason = "never matches here"
            "#,
        )
        .unwrap();
        assert_eq!(policy.problem(), None);
        let findings = policy.apply(vec![
            finding(Code::PackageAdded, "x"),
            finding(Code::PackageFiles, "numpy"),
            finding(Code::PackageVersion, "pip"),
            finding(Code::PackageVersion, "setuptools"),
        ]);
        let summary: Vec<(Code, &str, Severity)> = findings
            .iter()
            .map(|f| (f.code, f.subject.as_str(), f.severity))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Code::PackageAdded, "x", Severity::Error),
                (Code::PackageFiles, "numpy", Severity::Error),
                (Code::PolicyUnused, "never matches here", Severity::Info),
            ]
        );
    }

    #[test]
    fn an_ignore_needs_a_reason_and_a_scope() {
        let missing: Result<Policy, _> = toml::from_str("[[ignore]]\ncodes = [\"libc\"]\n");
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("missing field `reason`"));
        let unknown: Result<Policy, _> = toml::from_str("[severity]\nno-such-code = \"info\"\n");
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown variant `no-such-code`"));
        let everything: Policy = toml::from_str("[[ignore]]\nreason = \"x\"\n").unwrap();
        assert!(everything
            .problem()
            .unwrap()
            .contains("would ignore everything"));
    }
}
