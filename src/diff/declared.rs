//! A baseline selected from the project's own lock (`[declared]`) against a runtime: only
//! what a lock declares is compared — the packages it requires for the target (present,
//! same version, one of the wheels it lists), what the target has beyond them, and the
//! target's Python against `requires-python`. Installed files (RECORD), the environment, the
//! platform and the interpreter's other facts need a live runtime on both sides: a lock has
//! none of them, so they are not compared (the check says so in a note).

use std::collections::{BTreeMap, BTreeSet};

use pep440_rs::{Version, VersionSpecifiers};

use super::{diff_version, Code, Findings};
use crate::lock::{DeclaredLock, Lock, Package};

/// Distributions an installer brings along with the interpreter or venv, which a project's
/// lock does not list.
const INSTALLER_TOOLING: &[&str] = &["pip", "setuptools", "wheel"];

pub(super) fn diff_declared(
    declared: &DeclaredLock,
    baseline: &Lock,
    target: &Lock,
    findings: &mut Findings,
) {
    requires_python(declared, target, findings);
    let format = &declared.format;
    let new: BTreeMap<&str, &Package> = target
        .packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    for package in &baseline.packages {
        let name = &package.name;
        let Some(installed) = new.get(name.as_str()) else {
            let version = if package.version.is_empty() {
                String::new()
            } else {
                format!(" {}", package.version)
            };
            findings.push(
                Code::PackageMissing,
                name,
                Some(package.version.clone()).filter(|version| !version.is_empty()),
                None,
                format!("{name}{version} is required by the {format} but not in the target"),
            );
            continue;
        };
        // A direct URL or a folder without a version: being there is what the lock says.
        if package.version.is_empty() || diff_version(package, installed, findings) {
            continue;
        }
        wheel_build(package, installed, findings);
    }
    let old: BTreeSet<&str> = baseline.packages.iter().map(|p| p.name.as_str()).collect();
    for package in &target.packages {
        let name = package.name.as_str();
        if old.contains(name) || declared.projects.iter().any(|project| project == name) {
            continue;
        }
        let why = if INSTALLER_TOOLING.contains(&name) {
            " (installer tooling: pip, setuptools and wheel come with the interpreter or venv, not from the project's lock)"
        } else {
            ""
        };
        findings.push(
            Code::PackageAdded,
            name,
            None,
            Some(package.version.clone()),
            format!(
                "{name} {} is in the target but not required by the {format}{why}",
                package.version
            ),
        );
    }
}

/// `python-version` when the target's Python is outside the lock's `requires-python`.
fn requires_python(declared: &DeclaredLock, target: &Lock, findings: &mut Findings) {
    let Some(wanted) = &declared.requires_python else {
        return;
    };
    let Some(python) = &target.python else {
        findings.push(
            Code::PythonVersion,
            "python",
            Some(wanted.clone()),
            None,
            format!(
                "the {} requires Python {wanted}; the target has no Python",
                declared.format
            ),
        );
        return;
    };
    let (Ok(specifiers), Ok(version)) = (
        wanted.parse::<VersionSpecifiers>(),
        python.version.parse::<Version>(),
    ) else {
        return;
    };
    if !specifiers.contains(&version) {
        findings.push(
            Code::PythonVersion,
            "python",
            Some(wanted.clone()),
            Some(python.version.clone()),
            format!(
                "Python {} is outside the {}'s requires-python `{wanted}`",
                python.version, declared.format
            ),
        );
    }
}

/// `package-build` when the lock lists wheels for the version and the installed wheel's
/// tags match none of them: built from source, or another index's build.
fn wheel_build(locked: &Package, installed: &Package, findings: &mut Findings) {
    if locked.wheels.is_empty() || installed.wheel_tags.is_empty() {
        return;
    }
    let tags: BTreeSet<String> = installed
        .wheel_tags
        .iter()
        .map(|tag| tag.to_ascii_lowercase())
        .collect();
    let listed = locked
        .wheels
        .iter()
        .any(|file| wheel_file_tags(file).iter().any(|tag| tags.contains(tag)));
    if listed {
        return;
    }
    let name = &locked.name;
    let installed_tags = installed.wheel_tags.join(" ");
    findings.push(
        Code::PackageBuild,
        name,
        Some(format!("{} wheels in the lock", locked.wheels.len())),
        Some(installed_tags.clone()),
        format!(
            "{name} {}: the installed wheel ({installed_tags}) is none of the {} wheels the lock lists: built from source, or another index's build",
            installed.version,
            locked.wheels.len()
        ),
    );
}

/// The tags of a wheel file name (`name-1.0-py2.py3-none-any.whl`: `py2-none-any`,
/// `py3-none-any`), expanded from its compressed tag sets, lower case.
pub(crate) fn wheel_file_tags(file: &str) -> Vec<String> {
    let Some(stem) = file.strip_suffix(".whl") else {
        return Vec::new();
    };
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return Vec::new();
    }
    let [python, abi, platform] = [
        parts[parts.len() - 3],
        parts[parts.len() - 2],
        parts[parts.len() - 1],
    ];
    let mut tags = Vec::new();
    for python in python.split('.') {
        for abi in abi.split('.') {
            for platform in platform.split('.') {
                tags.push(format!("{python}-{abi}-{platform}").to_ascii_lowercase());
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_tag_sets_expand() {
        assert_eq!(
            wheel_file_tags("colorama-0.4.6-py2.py3-none-any.whl"),
            ["py2-none-any", "py3-none-any"]
        );
        assert_eq!(
            wheel_file_tags(
                "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
            ),
            [
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-cp311-manylinux2014_x86_64"
            ]
        );
        assert_eq!(
            wheel_file_tags("torch-2.1.0+cpu-1-cp311-cp311-linux_x86_64.whl").len(),
            1
        );
        assert!(wheel_file_tags("pkg-1.0.tar.gz").is_empty());
    }

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            ..Package::default()
        }
    }

    fn lock(packages: Vec<Package>) -> Lock {
        let mut lock: Lock = toml::from_str(
            "[envlock]\nschema = 1\ncreated-by = 't'\n[source]\nkind = 'python'\n\
             [python]\nimplementation = 'cpython'\nversion = '3.11.7'\n\
             [platform]\nos = 'linux'\narch = 'x86_64'\n[env]\nset = { TZ = 'UTC' }\n",
        )
        .unwrap();
        lock.packages = packages;
        lock
    }

    #[test]
    fn a_declared_baseline_compares_what_a_lock_declares() {
        let mut markupsafe = package("markupsafe", "3.0.2");
        markupsafe.wheels = vec![
            "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl".into(),
        ];
        let mut baseline = lock(vec![
            markupsafe.clone(),
            package("numpy", "1.26.4"),
            package("six", "1.17.0"),
            package("torch", "2.1.0"),
        ]);
        baseline.python = None;
        baseline.env = Default::default();
        baseline.platform = Default::default();
        baseline.declared = Some(DeclaredLock {
            format: "uv.lock".into(),
            requires_python: Some(">=3.12".into()),
            projects: vec!["demo".into()],
            ..DeclaredLock::default()
        });
        let mut built = markupsafe;
        built.wheel_tags = vec!["cp311-cp311-linux_x86_64".into()];
        built.record = Some("sha256:00".into());
        let target = lock(vec![
            built,
            package("demo", "0.1.0"),
            package("numpy", "2.0.0"),
            package("pip", "24.0"),
            package("torch", "2.1.0+cpu"),
        ]);
        let findings = crate::diff::diff(&baseline, &target);
        let codes: Vec<(Code, &str)> = findings
            .iter()
            .map(|finding| (finding.code, finding.subject.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (Code::PythonVersion, "python"),
                (Code::PackageMissing, "six"),
                (Code::PackageAdded, "pip"),
                (Code::PackageVersion, "numpy"),
                (Code::PackageBuild, "markupsafe"),
                (Code::PackageBuild, "torch"),
            ],
            "{findings:#?}"
        );
        let pip = &findings[2];
        assert!(pip.message.contains("installer tooling"), "{}", pip.message);
    }
}
