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

/// `package-build` when the lock lists wheels for the version and the installed wheel is
/// none of them, on evidence: no tag of its `WHEEL` file (every `Tag:` line, each expanded
/// from its compressed sets) is a tag of a listed file, nor the same Python and ABI on a
/// platform of the same family ([`same_build`]). A lock records each wheel's archive digest,
/// never the digests of the files the wheel installs, so the installed RECORD cannot be
/// held against a listed wheel: tags are the evidence there is.
fn wheel_build(locked: &Package, installed: &Package, findings: &mut Findings) {
    if locked.wheels.is_empty() || installed.wheel_tags.is_empty() {
        return;
    }
    let tags: Vec<Tag> = installed
        .wheel_tags
        .iter()
        .flat_map(|tag| expand(tag))
        .collect();
    let listed = locked.wheels.iter().any(|file| {
        wheel_file_tags(file)
            .iter()
            .filter_map(|tag| Tag::parse(tag))
            .any(|file_tag| tags.iter().any(|tag| same_build(tag, &file_tag)))
    });
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
            "{name} {}: the installed wheel ({installed_tags}) is none of the {} wheels the lock lists, not even for the same Python, ABI and platform family: built from source, or another index's build",
            installed.version,
            locked.wheels.len()
        ),
    );
}

/// The tags of a `WHEEL` file's `Tag:` lines, expanded and lower case, as a set.
pub(super) fn tag_set(lines: &[String]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .flat_map(|line| expand(line))
        .map(|tag| (tag.python, tag.abi, tag.platform))
        .collect()
}

/// A wheel tag, lower case: `cp311-cp311-manylinux_2_17_x86_64`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag {
    python: String,
    abi: String,
    platform: String,
}

impl Tag {
    fn parse(text: &str) -> Option<Tag> {
        let mut parts = text.trim().splitn(3, '-');
        let (python, abi, platform) = (parts.next()?, parts.next()?, parts.next()?);
        (!python.is_empty() && !abi.is_empty() && !platform.is_empty()).then(|| Tag {
            python: python.to_ascii_lowercase(),
            abi: abi.to_ascii_lowercase(),
            platform: platform.to_ascii_lowercase(),
        })
    }
}

/// A `Tag:` value expanded from its compressed tag sets: maturin writes
/// `cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64` as one line, and each of the
/// three parts may be a `.`-joined set (PEP 425).
fn expand(tag: &str) -> Vec<Tag> {
    let Some(compressed) = Tag::parse(tag) else {
        return Vec::new();
    };
    let mut tags = Vec::new();
    for python in compressed.python.split('.') {
        for abi in compressed.abi.split('.') {
            for platform in compressed.platform.split('.') {
                tags.push(Tag {
                    python: python.to_string(),
                    abi: abi.to_string(),
                    platform: platform.to_string(),
                });
            }
        }
    }
    tags
}

/// Whether an installed wheel's tag and a listed file's tag name the same build: the same
/// tag, or the same Python and ABI on platforms of one family. Builders do not always write
/// the file name's platform into `WHEEL`: scikit-build-core writes `py3-none-linux_x86_64`
/// into `lightgbm-4.5.0-py3-none-manylinux_2_28_x86_64.whl`, and a manylinux policy is a
/// promise about the glibc a build needs, not another build.
fn same_build(installed: &Tag, file: &Tag) -> bool {
    if installed.python != file.python || installed.abi != file.abi {
        return false;
    }
    if installed.platform == file.platform {
        return true;
    }
    match (family(&installed.platform), family(&file.platform)) {
        (Some((one, arch)), Some((other, other_arch))) => {
            arch == other_arch && (one == other || one == Family::Linux || other == Family::Linux)
        }
        _ => false,
    }
}

/// Platform families, for [`same_build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `linux_ARCH`: what a builder writes before auditwheel names the libc; of the same
    /// family as either of the next two.
    Linux,
    /// `manylinux1_ARCH`, `manylinux2014_ARCH`, `manylinux_2_28_ARCH`: glibc, any policy.
    Glibc,
    /// `musllinux_1_2_ARCH`: musl, any version; never a glibc build.
    Musl,
    /// `macosx_11_0_ARCH`: any macOS version.
    Macos,
}

/// `2_28_x86_64` -> `x86_64`: the architecture after a platform tag's version numbers.
fn architecture(rest: &str) -> Option<&str> {
    let mut rest = rest;
    while let Some((head, tail)) = rest.split_once('_') {
        if head.is_empty() || !head.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        rest = tail;
    }
    (!rest.is_empty()).then_some(rest)
}

/// The family of a platform tag and its architecture; Windows and other tags have no
/// family beyond themselves.
fn family(platform: &str) -> Option<(Family, &str)> {
    if let Some(arch) = platform.strip_prefix("linux_") {
        return Some((Family::Linux, arch));
    }
    if let Some(rest) = platform.strip_prefix("manylinux") {
        // `manylinux2014_x86_64` and `manylinux_2_17_x86_64`.
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        return Some((Family::Glibc, architecture(rest.strip_prefix('_')?)?));
    }
    if let Some(rest) = platform.strip_prefix("musllinux_") {
        return Some((Family::Musl, architecture(rest)?));
    }
    if let Some(rest) = platform.strip_prefix("macosx_") {
        return Some((Family::Macos, architecture(rest)?));
    }
    None
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
    let tag = parts[parts.len() - 3..].join("-");
    expand(&tag)
        .into_iter()
        .map(|tag| format!("{}-{}-{}", tag.python, tag.abi, tag.platform))
        .collect()
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

    fn build_findings(file: &str, installed: &[&str]) -> usize {
        let mut locked = package("demo", "1.0");
        locked.wheels = vec![file.to_string()];
        let mut built = package("demo", "1.0");
        built.wheel_tags = installed.iter().map(|tag| tag.to_string()).collect();
        let mut findings = Findings(Vec::new());
        wheel_build(&locked, &built, &mut findings);
        findings.0.len()
    }

    /// The builders of issue 32: maturin's compressed `Tag:` and scikit-build-core's plain
    /// `linux_x86_64` in a manylinux wheel are the wheels the lock lists; a tag of another
    /// Python, ABI, libc or architecture is evidence of another build.
    #[test]
    fn wheel_tags_as_builders_write_them() {
        let pydantic =
            "pydantic_core-2.14.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
        assert_eq!(
            build_findings(
                pydantic,
                &["cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"]
            ),
            0
        );
        assert_eq!(
            build_findings(
                pydantic,
                &[
                    "cp311-cp311-manylinux2014_x86_64",
                    "cp311-cp311-manylinux_2_17_x86_64"
                ]
            ),
            0
        );
        let lightgbm = "lightgbm-4.5.0-py3-none-manylinux_2_28_x86_64.whl";
        assert_eq!(build_findings(lightgbm, &["py3-none-linux_x86_64"]), 0);
        assert_eq!(
            build_findings(lightgbm, &["py3-none-manylinux_2_17_x86_64"]),
            0
        );
        assert_eq!(build_findings(lightgbm, &["py3-none-linux_aarch64"]), 1);
        assert_eq!(
            build_findings(lightgbm, &["py3-none-musllinux_1_2_x86_64"]),
            1
        );
        assert_eq!(build_findings(pydantic, &["cp312-cp312-linux_x86_64"]), 1);
        assert_eq!(build_findings(pydantic, &["py3-none-any"]), 1);
        assert_eq!(
            build_findings(
                "x-1.0-cp311-cp311-macosx_10_9_x86_64.whl",
                &["cp311-cp311-macosx_14_0_x86_64"]
            ),
            0
        );
        assert_eq!(
            build_findings("x-1.0-cp311-cp311-win_amd64.whl", &["cp311-cp311-win32"]),
            1
        );
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
        // Built from the sdist where the C extension failed to compile: a pure wheel.
        let mut built = markupsafe;
        built.wheel_tags = vec!["py3-none-any".into()];
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
