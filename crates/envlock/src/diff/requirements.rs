//! `requirement-unmet`, a property of one runtime: each installed distribution's
//! requirements (`Requires-Dist`) whose markers hold there must be met by what is installed
//! — the answer `pip check` gives in that runtime. One step beyond it: an extra that a
//! requirement in force asks for (`pkg[extra]`) puts that extra's requirements in force too.
//!
//! The markers are evaluated as a declared lock's are ([`Target`]): against the probe's
//! marker environment, or what a static capture knows. A requirement whose marker needs a
//! value the capture lacks is not judged: a gate never fails on a guess.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::str::FromStr as _;

use pep440_rs::Version;
use pep508_rs::{Requirement, VerbatimUrl, VersionOrUrl};

use super::loaded::Side;
use super::{Code, Finding};
use crate::declared::{parse_requirement, Applies, Marker, Target};
use crate::lock::{Lock, Package};

/// A requirement a runtime does not meet.
#[derive(Debug)]
struct Unmet<'a> {
    /// The distribution that requires it.
    requirer: &'a Package,
    /// The requirement, without its marker (`threadpoolctl>=3.1.0`).
    requirement: String,
    /// Why it is in force: always, or through an extra of the requirer.
    why: InForce,
    /// The required distribution's name.
    required: String,
    /// The required distribution's installed version; `None`: not installed.
    installed: Option<&'a str>,
}

/// Why a requirement is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InForce {
    /// Its marker holds with no extra, as `pip check` judges it.
    Plainly,
    /// Its marker holds with an `extra` of the requirer that another distribution's
    /// requirement in force asks for (`asked_by`).
    Through { extra: String, asked_by: String },
}

/// The `requirement-unmet` findings of both runtimes: the target's gate (errors), the
/// baseline's are information (the policy keeps them so; see `Policy::apply`).
pub(super) fn diff_requirements(baseline: &Lock, target: &Lock) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (lock, side) in [(baseline, Side::Baseline), (target, Side::Target)] {
        for unmet in unmet(lock) {
            let has = match unmet.installed {
                Some(version) => format!("has {} {version}", unmet.required),
                None => format!("lacks {}", unmet.required),
            };
            let value = format!("{} ({has})", unmet.requirement);
            let through = match &unmet.why {
                InForce::Plainly => String::new(),
                InForce::Through { extra, asked_by } => {
                    format!(" (its extra `{extra}`, which {asked_by} asks for)")
                }
            };
            let message = format!(
                "{} {} requires {}{through}, and the {side} {has}",
                unmet.requirer.name, unmet.requirer.version, unmet.requirement,
            );
            let (on_baseline, on_target) = match side {
                Side::Baseline => (Some(value), None),
                Side::Target => (None, Some(value)),
            };
            findings.push(Finding {
                required: Some(unmet.required),
                ..Finding::new(
                    Code::RequirementUnmet,
                    &unmet.requirer.name,
                    on_baseline,
                    on_target,
                    message,
                )
            });
        }
    }
    findings
}

/// How many markers the extras may evaluate in one runtime: a real one needs thousands;
/// hostile metadata (extras asking for extras, chained) must not make the check quadratic.
/// Past it, no further extra is put in force; `pip check`'s own judgement is unbounded by it.
const EXTRA_BUDGET: usize = 1 << 20;

/// A requirement as its metadata writes it, parsed, and whether and why it is in force.
struct Stated<'a> {
    text: &'a str,
    requirement: Requirement<VerbatimUrl>,
    /// Its marker, parsed once; `None`: it has none.
    marker: Option<Marker>,
    /// `None`: not (yet) in force.
    why: Option<InForce>,
}

/// The requirements `lock`'s distributions state and its installed set does not meet.
fn unmet(lock: &Lock) -> Vec<Unmet<'_>> {
    if lock
        .packages
        .iter()
        .all(|package| package.requires.is_empty())
    {
        return Vec::new();
    }
    let environment = Target::of(Some(lock));
    let holds = |marker: &Marker, extras: &[String]| {
        environment.applies(marker, extras, &[]) == Applies::Yes
    };
    // In force with no extra, as `pip check` judges. A requirement or marker that cannot be
    // read is passed over (`pip check` instead takes the whole distribution's metadata for
    // broken, and the distribution for absent); so is a marker that needs a value the
    // capture lacks.
    let mut stated: Vec<(&Package, Vec<Stated<'_>>)> = lock
        .packages
        .iter()
        .map(|package| {
            let requirements = package
                .requires
                .iter()
                .filter_map(|text| {
                    let requirement = parse_requirement(text).ok()?;
                    let marker = match requirement.marker.contents() {
                        Some(marker) => Some(Marker::parse(&marker.to_string()).ok()?),
                        None => None,
                    };
                    let plainly = marker.as_ref().is_none_or(|marker| holds(marker, &[]));
                    Some(Stated {
                        text,
                        requirement,
                        marker,
                        why: plainly.then_some(InForce::Plainly),
                    })
                })
                .collect();
            (package, requirements)
        })
        .collect();
    put_extras_in_force(&mut stated, &holds);
    let installed: BTreeMap<&str, &str> = lock
        .packages
        .iter()
        .map(|package| (package.name.as_str(), package.version.as_str()))
        .collect();
    let mut unmet = Vec::new();
    for (package, requirements) in stated {
        for stated in requirements {
            let Some(why) = stated.why else { continue };
            let requirement = &stated.requirement;
            let name = requirement.name.to_string();
            let installed = installed.get(name.as_str()).copied();
            let met = match (installed, &requirement.version_or_url) {
                (None, _) => false,
                (Some(version), Some(VersionOrUrl::VersionSpecifier(specifiers))) => {
                    // A version PEP 440 cannot read is not judged.
                    Version::from_str(version).map_or(true, |version| specifiers.contains(&version))
                }
                // A URL requirement asks for the name; no version.
                (Some(_), _) => true,
            };
            if !met {
                unmet.push(Unmet {
                    requirer: package,
                    requirement: without_marker(stated.text, requirement),
                    why,
                    required: name,
                    installed,
                });
            }
        }
    }
    unmet
}

/// Puts in force the requirements of the extras that requirements in force ask for (of an
/// installed distribution), each extra judged alone as an install with it would judge it,
/// and each (distribution, extra) once: a work list, bounded by [`EXTRA_BUDGET`].
fn put_extras_in_force(
    stated: &mut [(&Package, Vec<Stated<'_>>)],
    holds: &dyn Fn(&Marker, &[String]) -> bool,
) {
    let index: BTreeMap<String, usize> = stated
        .iter()
        .enumerate()
        .map(|(at, (package, _))| (package.name.clone(), at))
        .collect();
    let mut asked: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut work: VecDeque<(usize, String, String)> = VecDeque::new();
    let ask = |requirement: &Requirement<VerbatimUrl>,
               asker: &str,
               asked: &mut BTreeSet<(usize, String)>,
               work: &mut VecDeque<(usize, String, String)>| {
        let Some(&at) = index.get(requirement.name.as_ref()) else {
            return;
        };
        for extra in &requirement.extras {
            if asked.insert((at, extra.to_string())) {
                work.push_back((at, extra.to_string(), asker.to_string()));
            }
        }
    };
    for (package, requirements) in stated.iter() {
        for stated in requirements.iter().filter(|stated| stated.why.is_some()) {
            ask(&stated.requirement, &package.name, &mut asked, &mut work);
        }
    }
    let mut budget = EXTRA_BUDGET;
    while let Some((at, extra, asked_by)) = work.pop_front() {
        let (package, requirements) = &mut stated[at];
        let requirer = package.name.clone();
        let extras = [extra.clone()];
        for stated in requirements
            .iter_mut()
            .filter(|stated| stated.why.is_none())
        {
            let Some(marker) = &stated.marker else {
                continue;
            };
            if budget == 0 {
                return;
            }
            budget -= 1;
            if holds(marker, &extras) {
                stated.why = Some(InForce::Through {
                    extra: extra.clone(),
                    asked_by: asked_by.clone(),
                });
                ask(&stated.requirement, &requirer, &mut asked, &mut work);
            }
        }
    }
}

/// `text`, the requirement as its metadata writes it, without its marker.
fn without_marker(text: &str, requirement: &Requirement<VerbatimUrl>) -> String {
    if requirement.marker.contents().is_none() {
        return text.trim().to_string();
    }
    // Names and specifiers hold no `;`; a URL may, and its marker comes after it.
    let cut = match requirement.version_or_url {
        Some(VersionOrUrl::Url(_)) => text.rfind(';'),
        _ => text.find(';'),
    };
    text[..cut.unwrap_or(text.len())].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(packages: &[(&str, &str, &[&str])]) -> Lock {
        let mut lock: Lock = toml::from_str(
            r#"
            [envlock]
            schema = 1
            created-by = "test"
            [source]
            kind = "python"
            [python]
            implementation = "cpython"
            version = "3.11.9"
            [platform]
            os = "linux"
            arch = "x86_64"
            [env]
            "#,
        )
        .unwrap();
        lock.packages = packages
            .iter()
            .map(|(name, version, requires)| Package {
                name: name.to_string(),
                version: version.to_string(),
                requires: requires.iter().map(ToString::to_string).collect(),
                ..Package::default()
            })
            .collect();
        lock
    }

    fn found(lock: &Lock) -> Vec<(String, String, Option<String>)> {
        unmet(lock)
            .into_iter()
            .map(|u| {
                (
                    u.requirer.name.clone(),
                    u.requirement,
                    u.installed.map(str::to_string),
                )
            })
            .collect()
    }

    #[test]
    fn versions_markers_and_missing_distributions() {
        let lock = lock(&[
            (
                "scikit-learn",
                "1.5.2",
                &[
                    "numpy>=1.19.5",
                    "threadpoolctl>=3.1.0",
                    "joblib>=1.2.0",
                    "pytest>=7.1.2; extra == \"tests\"",
                    "tomli; python_version < \"3.11\"",
                    "pywin32; sys_platform == \"win32\"",
                ],
            ),
            ("numpy", "2.1.0", &[]),
            ("threadpoolctl", "2.0.0", &[]),
        ]);
        assert_eq!(
            found(&lock),
            [
                (
                    "scikit-learn".into(),
                    "threadpoolctl>=3.1.0".into(),
                    Some("2.0.0".into())
                ),
                ("scikit-learn".into(), "joblib>=1.2.0".into(), None),
            ]
        );
    }

    #[test]
    fn local_labels_prereleases_and_urls_meet_as_pip_says() {
        let lock = lock(&[
            (
                "torchvision",
                "0.20.1+cu121",
                &["torch==2.5.1", "numpy", "pillow!=8.3.*,>=5.3.0"],
            ),
            (
                "torch",
                "2.5.1+cu121",
                &["triton==3.1.0rc1", "local @ file:///x"],
            ),
            ("triton", "3.1.0rc1", &[]),
            ("local", "0.1", &[]),
            ("numpy", "2.0.0", &[]),
            ("pillow", "8.3.2", &[]),
        ]);
        assert_eq!(
            found(&lock),
            [(
                "torchvision".into(),
                "pillow!=8.3.*,>=5.3.0".into(),
                Some("8.3.2".into())
            )]
        );
    }

    #[test]
    fn an_extra_asked_for_puts_its_requirements_in_force() {
        let lock = lock(&[
            ("app", "1.0", &["uvicorn[standard]>=0.30"]),
            (
                "uvicorn",
                "0.32.0",
                &[
                    "click>=7.0",
                    "httptools>=0.5.0; extra == \"standard\"",
                    "websockets>=10.4; extra == \"standard\"",
                    "watchfiles>=0.13; extra == \"reload\"",
                ],
            ),
            ("click", "8.1.7", &[]),
            ("httptools", "0.6.4", &[]),
        ]);
        assert_eq!(
            found(&lock),
            [("uvicorn".into(), "websockets>=10.4".into(), None)]
        );
        let findings = diff_requirements(&lock, &lock);
        assert_eq!(
            findings[1].message,
            "uvicorn 0.32.0 requires websockets>=10.4 (its extra `standard`, which app asks \
             for), and the target lacks websockets"
        );
    }

    #[test]
    fn an_extra_is_judged_alone_as_an_install_with_it_would() {
        let lock = lock(&[
            ("app", "1.0", &["lib[a]", "lib[b]"]),
            (
                "lib",
                "1.0",
                &[
                    // pip's `extra == ""` takes this in; extra `a` alone does not.
                    "plain-only; extra != \"a\"",
                    // No single extra makes both hold.
                    "both; extra == \"a\" and extra == \"b\"",
                    "by-b; extra == \"b\"",
                ],
            ),
        ]);
        assert_eq!(
            found(&lock),
            [
                ("lib".into(), "plain-only".into(), None),
                ("lib".into(), "by-b".into(), None),
            ]
        );
    }

    #[test]
    fn a_chain_of_extras_is_followed_within_its_bound() {
        // `p[e1]` asks for extra e1, whose requirement asks for e2, and so on: real metadata
        // chains a few; hostile metadata could chain until the check is quadratic.
        let chain = |links: usize| {
            let mut requires = vec!["p[e1]".to_string()];
            requires.extend((1..links).map(|i| format!("p[e{}]; extra == \"e{i}\"", i + 1)));
            requires.push(format!("end; extra == \"e{links}\""));
            let requires: Vec<&str> = requires.iter().map(String::as_str).collect();
            let lock = lock(&[("p", "1.0", &requires)]);
            found(&lock)
                .into_iter()
                .map(|(_, requirement, _)| requirement)
                .collect::<Vec<_>>()
        };
        assert_eq!(chain(3), ["end"]);
        assert_eq!(chain(1_000), ["end"]);
        // About n²/2 markers to evaluate: past the budget, the chain is cut.
        assert!(chain(2_000).is_empty());
    }

    #[test]
    fn unreadable_requirements_and_unknown_markers_are_not_judged() {
        let lock = lock(&[(
            "odd",
            "1.0",
            &["not a requirement ((", "gone; platform_release == \"6.1\""],
        )]);
        // No probe's markers, as in a static capture: no `platform_release`.
        assert!(lock.python.as_ref().unwrap().markers.is_empty());
        assert_eq!(found(&lock), []);
    }

    proptest::proptest! {
        /// Requirements are a distribution's own words: any of them is read or passed over.
        #[test]
        fn any_requirement_text_is_judged_or_passed_over(
            lines in proptest::collection::vec("[a-zA-Z0-9=<>!~;'\" .@:/,_()\\[\\]*+-]{0,50}", 0..6),
        ) {
            let requires: Vec<&str> = lines.iter().map(String::as_str).collect();
            let lock = lock(&[("a", "1.0", &requires), ("b", "2.0rc1+local", &requires)]);
            let _ = unmet(&lock);
        }
    }

    #[test]
    fn the_baseline_is_named_as_such() {
        let broken = lock(&[("a", "1.0", &["b>=2"]), ("b", "1.0", &[])]);
        let fine = lock(&[("a", "1.0", &["b>=2"]), ("b", "2.0", &[])]);
        let findings = diff_requirements(&broken, &fine);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].target, None);
        assert_eq!(findings[0].baseline.as_deref(), Some("b>=2 (has b 1.0)"));
        assert_eq!(
            findings[0].message,
            "a 1.0 requires b>=2, and the baseline has b 1.0"
        );
        let findings = diff_requirements(&fine, &broken);
        assert_eq!(findings[0].target.as_deref(), Some("b>=2 (has b 1.0)"));
    }
}
