//! Comparing two runtimes. Pure: two [`Lock`]s in, an ordered list of [`Finding`]s out, no
//! I/O. Where a runtime came from (a lock file, a live interpreter, an image) is not known
//! here.

mod causes;
mod cuda;
mod declared;
mod finding;
mod golden;
mod loaded;
mod numerics;
mod policy;
mod requirements;
mod version;

use std::collections::{BTreeMap, BTreeSet};

use crate::lock::{CondaPackage, Lock, Model, Package, SourceKind, WrittenBy};
pub(crate) use causes::{platforms_differ, suspects};
pub use causes::{Cause, Suspect};
pub(crate) use cuda::deploy_findings;
pub use cuda::{DriverVersion, GpuArch};
pub(crate) use finding::{Area, Build};
pub use finding::{Code, Finding, FindingLayer, Severity};
pub(crate) use golden::{golden_findings, golden_skipped};
pub(crate) use loaded::{loaded_distributions, mark_loaded, not_loaded};
pub(crate) use policy::{glob, name_glob};
pub(crate) use policy::{Policy, Scope};
use version::{Change, Direction};

struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        code: Code,
        subject: &str,
        baseline: Option<String>,
        target: Option<String>,
        message: String,
    ) {
        self.push_version(code, subject, baseline, target, None, message);
    }

    fn push_version(
        &mut self,
        code: Code,
        subject: &str,
        baseline: Option<String>,
        target: Option<String>,
        classified: Option<(Change, Direction)>,
        message: String,
    ) {
        self.0
            .push(Finding::new(code, subject, baseline, target, message).classified(classified));
    }
}

/// Every difference between `baseline` and `target`, ordered by area, code and subject,
/// with default severities.
pub(crate) fn diff(baseline: &Lock, target: &Lock) -> Vec<Finding> {
    let mut findings = Findings(Vec::new());
    if let Some(declared) = &baseline.declared {
        // The project's lock: only what a lock declares (see `declared`).
        declared::diff_declared(declared, baseline, target, &mut findings);
        model_needs(baseline, target, &mut findings);
    } else if [baseline, target]
        .iter()
        .any(|lock| lock.source.kind == SourceKind::Sbom)
    {
        diff_sbom(baseline, target, &mut findings);
    } else {
        diff_python(baseline, target, &mut findings);
        diff_platform(baseline, target, &mut findings);
        diff_packages(&baseline.packages, &target.packages, &mut findings);
        diff_models(&baseline.models, &target.models, &mut findings);
        model_needs(baseline, target, &mut findings);
        diff_env(baseline, target, &mut findings);
        diff_conda_packages(baseline, target, &mut findings);
        diff_system_packages(baseline, target, &mut findings);
        diff_image(baseline, target, &mut findings);
        numerics::diff_numerics(baseline, target, &mut findings);
    }
    let mut findings = findings.0;
    findings.extend(requirements::diff_requirements(baseline, target));
    attribute_layers(target, &mut findings);
    causes::explain(&mut findings);
    findings.sort_by(|a, b| {
        (a.code.area(), a.code, &a.subject).cmp(&(b.code.area(), b.code, &b.subject))
    });
    findings
}

/// A CycloneDX SBOM on either side records packages, not an environment or what only a
/// live interpreter reports: the packages, conda and system packages, the Python version
/// and platform where it records them, and the models and numerics libraries it lists are
/// compared. A package of another tool's SBOM has only its version (no RECORD, installer or
/// source, nor always a conda build): only versions are compared for it. Such an SBOM may
/// list two copies of a name without saying which Python imports: the copy whose version the
/// other side has is the one compared.
fn diff_sbom(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    let sboms = || {
        [baseline, target]
            .into_iter()
            .filter(|lock| lock.source.kind == SourceKind::Sbom)
    };
    let versions_only: BTreeSet<&str> = sboms()
        .flat_map(|lock| &lock.packages)
        .filter(|package| package.location.is_empty())
        .map(|package| package.name.as_str())
        .collect();
    let compared = |side: &Lock, other: &Lock| -> Vec<Package> {
        side.packages
            .iter()
            .map(|package| {
                if !versions_only.contains(package.name.as_str()) {
                    return package.clone();
                }
                let wanted = other
                    .packages
                    .iter()
                    .find(|theirs| theirs.name == package.name)
                    .map(|theirs| theirs.version.as_str());
                let copies = std::iter::once(package.version.as_str())
                    .chain(package.shadowed.iter().map(|copy| copy.version.as_str()));
                let version = copies
                    .clone()
                    .find(|version| Some(*version) == wanted)
                    .unwrap_or(&package.version);
                Package {
                    name: package.name.clone(),
                    version: version.to_string(),
                    ..Package::default()
                }
            })
            .collect()
    };
    let (old, new) = (compared(baseline, target), compared(target, baseline));
    diff_packages(&old, &new, findings);
    if baseline.python.is_some() && target.python.is_some() {
        diff_python(baseline, target, findings);
    }
    diff_platform(baseline, target, findings);
    let lists = |lock: &Lock| lock.source.kind != SourceKind::Sbom || !lock.models.is_empty();
    if lists(baseline) && lists(target) {
        diff_models(&baseline.models, &target.models, findings);
    }
    model_needs(baseline, target, findings);
    // A conda package without a build (another tool's) is compared by version.
    let unbuilt: BTreeSet<&str> = sboms()
        .flat_map(|lock| &lock.conda_packages)
        .filter(|package| package.build.is_empty())
        .map(|package| package.name.as_str())
        .collect();
    let conda = |lock: &Lock| -> Lock {
        let mut copy = lock.clone();
        for package in &mut copy.conda_packages {
            if unbuilt.contains(package.name.as_str()) {
                package.build.clear();
            }
        }
        copy
    };
    diff_conda_packages(&conda(baseline), &conda(target), findings);
    diff_system_packages(baseline, target, findings);
    numerics::diff_numerics(baseline, target, findings);
}

/// Findings about what a target's layer wrote name that layer (`[[image.layers]]`).
fn attribute_layers(target: &Lock, findings: &mut [Finding]) {
    let Some(image) = target
        .image
        .as_ref()
        .filter(|image| !image.layers.is_empty())
    else {
        return;
    };
    for finding in findings {
        let subject = finding.subject.as_str();
        let layer = match finding.code {
            Code::PackageAdded | Code::PackageVersion | Code::PackageBuild | Code::PackageFiles => {
                target
                    .packages
                    .iter()
                    .find(|package| package.name == subject)
                    .and_then(|package| package.layer)
            }
            Code::CondaPackage => target
                .conda_packages
                .iter()
                .find(|package| package.name == subject)
                .and_then(|package| package.layer),
            Code::SystemPackage => target
                .system_packages
                .iter()
                .find(|package| package.name == subject)
                .and_then(|package| package.layer),
            Code::ModelHash | Code::ModelFramework | Code::ModelImport | Code::ModelUnsafe => {
                target
                    .models
                    .iter()
                    .find(|model| model.path == subject)
                    .and_then(|model| model.layer)
            }
            _ => None,
        };
        finding.layer = layer
            .and_then(|index| image.layers.get(index))
            .map(|layer| FindingLayer {
                index: layer.index,
                digest: layer.diff_id.clone(),
                created_by: layer.created_by.clone(),
            });
    }
}

fn describe(classified: Option<(Change, Direction)>) -> String {
    match classified {
        Some((change, direction)) => format!(" ({} {})", change.as_ref(), direction.as_ref()),
        None => String::new(),
    }
}

fn diff_python(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    let (Some(old), Some(new)) = (&baseline.python, &target.python) else {
        if let (Some(old), None) = (&baseline.python, &target.python) {
            findings.push(
                Code::PythonVersion,
                "python",
                Some(old.version.clone()),
                None,
                format!("Python {} in the baseline, none in the target", old.version),
            );
        }
        return;
    };
    if old.implementation != new.implementation {
        findings.push(
            Code::PythonImplementation,
            "python",
            Some(old.implementation.clone()),
            Some(new.implementation.clone()),
            format!(
                "implementation {} -> {}",
                old.implementation, new.implementation
            ),
        );
    }
    if !version::same(&old.version, &new.version) {
        let classified = version::classify(&old.version, &new.version);
        findings.push_version(
            Code::PythonVersion,
            "python",
            Some(old.version.clone()),
            Some(new.version.clone()),
            classified,
            format!(
                "Python {} -> {}{}",
                old.version,
                new.version,
                describe(classified)
            ),
        );
    }
}

fn diff_platform(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    let (old, new) = (&baseline.platform, &target.platform);
    if !old.os.is_empty() && !new.os.is_empty() && old.os != new.os {
        findings.push(
            Code::PlatformOs,
            "os",
            Some(old.os.clone()),
            Some(new.os.clone()),
            format!("OS {} -> {}", old.os, new.os),
        );
    }
    if !old.arch.is_empty() && !new.arch.is_empty() && old.arch != new.arch {
        findings.push(
            Code::PlatformArch,
            "arch",
            Some(old.arch.clone()),
            Some(new.arch.clone()),
            format!("architecture {} -> {}", old.arch, new.arch),
        );
    }
    let libc = |platform: &crate::lock::Platform| {
        platform
            .libc
            .as_ref()
            .map(|family| match &platform.libc_version {
                Some(version) => format!("{family} {version}"),
                None => family.clone(),
            })
    };
    let (old_libc, new_libc) = (libc(old), libc(new));
    if old_libc.is_some() && new_libc.is_some() && old_libc != new_libc {
        let show = |value: &Option<String>| value.clone().unwrap_or_default();
        findings.push(
            Code::Libc,
            "libc",
            old_libc.clone(),
            new_libc.clone(),
            format!("C library {} -> {}", show(&old_libc), show(&new_libc)),
        );
    }
}

fn diff_packages(baseline: &[Package], target: &[Package], findings: &mut Findings) {
    let index = |packages: &[Package]| -> BTreeMap<String, Package> {
        packages
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect()
    };
    let (old, new) = (index(baseline), index(target));
    for (name, package) in &old {
        let Some(other) = new.get(name) else {
            findings.push(
                Code::PackageMissing,
                name,
                Some(package.version.clone()),
                None,
                format!("{name} {} is not in the target", package.version),
            );
            continue;
        };
        diff_package(package, other, findings);
    }
    for (name, package) in &new {
        if !old.contains_key(name) {
            findings.push(
                Code::PackageAdded,
                name,
                None,
                Some(package.version.clone()),
                format!("{name} {} is only in the target", package.version),
            );
        }
    }
}

/// A `package-version` finding (or `package-build` when only the local label differs) when
/// the versions differ; whether there was one.
fn diff_version(old: &Package, new: &Package, findings: &mut Findings) -> bool {
    let name = &old.name;
    if !version::same(&old.version, &new.version) {
        let classified = version::classify(&old.version, &new.version);
        // Only the local label differs: the same version, another build.
        let code = match classified {
            Some((Change::Local, _)) => Code::PackageBuild,
            _ => Code::PackageVersion,
        };
        let message = match classified {
            Some((Change::Local, _)) => format!(
                "{name} {} -> {}: same version, another build (local label)",
                old.version, new.version
            ),
            _ => format!(
                "{name} {} -> {}{}",
                old.version,
                new.version,
                describe(classified)
            ),
        };
        findings.push_version(
            code,
            name,
            Some(old.version.clone()),
            Some(new.version.clone()),
            classified,
            message,
        );
        return true;
    }
    false
}

fn diff_package(old: &Package, new: &Package, findings: &mut Findings) {
    let name = &old.name;
    if diff_version(old, new, findings) {
        return;
    }
    for (build, before, after) in build_changes(old, new) {
        let mut finding = Finding::new(
            Code::PackageBuild,
            name,
            Some(before.clone()),
            Some(after.clone()),
            format!(
                "{name} {}: same version, {} {before} -> {after}",
                old.version,
                build.as_str()
            ),
        );
        finding.build = Some(build);
        findings.0.push(finding);
    }
    if let (Some(before), Some(after)) = (&old.record, &new.record) {
        if before != after {
            findings.push(
                Code::PackageFiles,
                name,
                Some(before.clone()),
                Some(after.clone()),
                format!(
                    "{name} {}: same version, different installed files (RECORD)",
                    old.version
                ),
            );
        }
    }
}

/// What else than the version tells two builds apart: wheel tags, installer, source.
fn build_changes(old: &Package, new: &Package) -> Vec<(Build, String, String)> {
    let mut builds = Vec::new();
    let (old_tags, new_tags) = (old.wheel_tags.join(" "), new.wheel_tags.join(" "));
    // One build written two ways (a compressed `Tag:` line, or its tags line by line) is
    // the same build.
    let old_set = declared::tag_set(&old.wheel_tags);
    let same_tags = old_tags == new_tags
        || (!old_set.is_empty() && old_set == declared::tag_set(&new.wheel_tags));
    if !old_tags.is_empty() && !new_tags.is_empty() && !same_tags {
        builds.push((Build::WheelTags, old_tags, new_tags));
    }
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".to_string());
    if old.installer.is_some() && new.installer.is_some() && old.installer != new.installer {
        builds.push((Build::Installer, show(&old.installer), show(&new.installer)));
    }
    let source = |package: &Package| {
        let kind = package.source.map_or("index", |source| match source {
            crate::lock::PackageSource::Archive => "archive",
            crate::lock::PackageSource::Directory => "directory",
            crate::lock::PackageSource::Vcs => "vcs",
        });
        if package.editable {
            format!("{kind} (editable)")
        } else {
            kind.to_string()
        }
    };
    if source(old) != source(new) {
        builds.push((Build::Source, source(old), source(new)));
    }
    builds
}

fn diff_models(baseline: &[Model], target: &[Model], findings: &mut Findings) {
    for model in baseline {
        let Some(other) = target.iter().find(|other| other.path == model.path) else {
            findings.push(
                Code::ModelMissing,
                &model.path,
                Some(model.sha256.clone()),
                None,
                format!("model {} is not in the target", model.path),
            );
            continue;
        };
        if model.sha256 == other.sha256 {
            continue;
        }
        let files = |model: &Model| -> BTreeMap<String, String> {
            model
                .files
                .iter()
                .map(|f| {
                    (
                        f.path.clone(),
                        f.sha256.clone().or(f.link.clone()).unwrap_or_default(),
                    )
                })
                .collect()
        };
        let (before, after) = (files(model), files(other));
        let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut changes = Vec::new();
        for name in names {
            match (before.get(name), after.get(name)) {
                (Some(a), Some(b)) if a != b => changes.push(format!("{name} changed")),
                (Some(_), None) => changes.push(format!("{name} removed")),
                (None, Some(_)) => changes.push(format!("{name} added")),
                _ => {}
            }
        }
        let detail = if changes.is_empty() {
            String::new()
        } else {
            format!(": {}", changes.join(", "))
        };
        findings.push(
            Code::ModelHash,
            &model.path,
            Some(model.sha256.clone()),
            Some(other.sha256.clone()),
            format!("model {} differs{detail}", model.path),
        );
    }
}

/// ` (in `a.joblib`, `b.joblib`)` for a folder's files, or nothing.
fn in_files(files: &[&str]) -> String {
    if files.is_empty() {
        String::new()
    } else {
        format!(" (in `{}`)", files.join("`, `"))
    }
}

/// What the target's model files say they need, against the target's runtime (and the
/// baseline's, for the message): the library versions they were written with, the modules
/// their pickles import, and whether loading them would run code outside the allow-list.
fn model_needs(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    // A library may come from a build-specific distribution: `xgboost` from `xgboost-cpu`.
    let version_in = |lock: &Lock, name: &str| {
        [
            name.to_string(),
            format!("{name}-cpu"),
            format!("{name}-gpu"),
        ]
        .iter()
        .find_map(|wanted| lock.packages.iter().find(|package| &package.name == wanted))
        .map(|package| package.version.clone())
    };
    for model in &target.models {
        let path = &model.path;
        // A folder says which of its files each version is recorded by: the file to
        // re-export. Locks before per-file facts have only the folder's.
        let mut written: Vec<(&WrittenBy, String)> = Vec::new();
        for file in &model.files {
            for by in &file.written_by {
                if !written.iter().any(|(seen, _)| *seen == by) {
                    let files = model.files_where(|file| file.written_by.contains(by));
                    written.push((by, in_files(&files)));
                }
            }
        }
        if written.is_empty() {
            written = (model.written_by.iter())
                .map(|by| (by, String::new()))
                .collect();
        }
        for (written, files) in written {
            let had = version_in(baseline, &written.name)
                .map(|version| format!("; the baseline has {version}"))
                .unwrap_or_default();
            let Some(version) = version_in(target, &written.name) else {
                findings.push(
                    Code::ModelFramework,
                    path,
                    Some(written.version.clone()),
                    None,
                    format!(
                        "model {path} was written by {} {}{files}, which the target lacks{had}",
                        written.name, written.version
                    ),
                );
                if let Some(finding) = findings.0.last_mut() {
                    finding.severity = Severity::Error;
                }
                continue;
            };
            if !same_version(&version, &written.version) {
                findings.push(
                    Code::ModelFramework,
                    path,
                    Some(written.version.clone()),
                    Some(version.clone()),
                    format!(
                        "model {path} was written by {} {}{files}; the target has {version}{had}",
                        written.name, written.version
                    ),
                );
            }
        }
        if !model.not_importable.is_empty() {
            let modules = model.not_importable.join("`, `");
            let naming = model.files_where(|file| {
                (file.imports.iter()).any(|module| model.not_importable.contains(module))
            });
            let named_by = if naming.is_empty() {
                String::new()
            } else {
                format!(" (named by `{}`)", naming.join("`, `"))
            };
            findings.push(
                Code::ModelImport,
                path,
                None,
                Some(model.not_importable.join(", ")),
                format!(
                    "model {path} imports `{modules}`{named_by}, which the target cannot import: \
                     no file for it on its sys.path and not in its standard library, so loading \
                     fails with ModuleNotFoundError{}",
                    installed_hint(target, &model.not_importable)
                ),
            );
        }
        if let Some(summary) = model.unsafe_summary() {
            findings.push(
                Code::ModelUnsafe,
                path,
                None,
                Some(model.unsafe_calls.join(", ")),
                format!(
                    "loading model {path} {summary}; re-export it to a format that runs no \
                     code (safetensors, ONNX, XGBoost or LightGBM files, skops), or, for a \
                     model you trust, list it in `[models] trust` or add a \
                     `[[policy.ignore]]` with a reason"
                ),
            );
        }
    }
}

/// The installed distribution each module's top package belongs to, when one by that name is
/// there (`numpy 1.24.4 is installed`), for the message.
fn installed_hint(lock: &Lock, modules: &[String]) -> String {
    let installed: BTreeSet<String> = modules
        .iter()
        .filter_map(|module| {
            let top = module
                .split('.')
                .next()?
                .replace('_', "-")
                .to_ascii_lowercase();
            lock.packages
                .iter()
                .find(|package| package.name == top)
                .map(|package| format!("{} {}", package.name, package.version))
        })
        .collect();
    if installed.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = installed.into_iter().collect();
        format!(" ({} is installed)", list.join(", "))
    }
}

/// Whether two version strings are the same PEP 440 version (`1.5` is `1.5.0`).
fn same_version(a: &str, b: &str) -> bool {
    match (
        a.parse::<pep440_rs::Version>(),
        b.parse::<pep440_rs::Version>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn diff_env(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    // Only variables both sides looked at: a lock from another envlock may know other names.
    let known = |lock: &Lock| -> BTreeSet<String> {
        lock.env
            .set
            .keys()
            .chain(lock.env.unset.iter())
            .cloned()
            .collect()
    };
    let (old_known, new_known) = (known(baseline), known(target));
    for name in old_known.intersection(&new_known) {
        let (before, after) = (baseline.env.set.get(name), target.env.set.get(name));
        if before == after {
            continue;
        }
        let show = |value: Option<&String>| value.map_or("unset".to_string(), |v| format!("`{v}`"));
        findings.push(
            Code::EnvVar,
            name,
            before.cloned(),
            after.cloned(),
            format!("{name} {} -> {}", show(before), show(after)),
        );
    }
}

fn diff_conda_packages(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    // Only two conda runtimes are compared: a venv against a conda image says nothing here.
    if baseline.conda_packages.is_empty() || target.conda_packages.is_empty() {
        return;
    }
    let index = |lock: &Lock| -> BTreeMap<String, CondaPackage> {
        let packages = lock.conda_packages.iter();
        packages.map(|p| (p.name.clone(), p.clone())).collect()
    };
    let (old, new) = (index(baseline), index(target));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let spec = |package: &CondaPackage| format!("{}={}", package.version, package.build);
    for name in names {
        let (before, after) = match (old.get(name), new.get(name)) {
            (Some(before), Some(after)) => (before, after),
            (before, after) => {
                let (before, after) = (before.map(spec), after.map(spec));
                let show = |value: &Option<String>| value.clone().unwrap_or("absent".into());
                let message = format!("conda package {name} {} -> {}", show(&before), show(&after));
                findings.push(Code::CondaPackage, name, before, after, message);
                continue;
            }
        };
        let (old_spec, new_spec) = (Some(spec(before)), Some(spec(after)));
        let finding = if !version::same(&before.version, &after.version) {
            let classified = version::classify(&before.version, &after.version);
            let message = format!(
                "conda package {name} {} -> {}{}",
                spec(before),
                spec(after),
                describe(classified)
            );
            Finding::new(Code::CondaPackage, name, old_spec, new_spec, message)
                .classified(classified)
        } else if before.build != after.build {
            let message = format!(
                "conda package {name} {}: same version, build {} -> {}",
                before.version, before.build, after.build
            );
            let mut finding = Finding::new(Code::CondaPackage, name, old_spec, new_spec, message);
            finding.change = Some(Change::Build);
            finding
        } else if before.channel != after.channel {
            let channel =
                |package: &CondaPackage| package.channel.clone().unwrap_or("unknown".into());
            let message = format!(
                "conda package {name} {}: channel {} -> {}",
                before.version,
                channel(before),
                channel(after)
            );
            Finding::new(Code::CondaPackage, name, old_spec, new_spec, message)
        } else {
            continue;
        };
        findings.0.push(finding);
    }
}

fn diff_system_packages(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    // A dev snapshot records none: only two sides that both list them are compared.
    if baseline.system_packages.is_empty() || target.system_packages.is_empty() {
        return;
    }
    let index = |lock: &Lock| -> BTreeMap<String, String> {
        lock.system_packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    };
    let (old, new) = (index(baseline), index(target));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        if before == after {
            continue;
        }
        let show = |value: Option<&String>| value.map_or("absent", String::as_str).to_string();
        findings.push(
            Code::SystemPackage,
            name,
            before.cloned(),
            after.cloned(),
            format!("system package {name} {} -> {}", show(before), show(after)),
        );
    }
}

fn diff_image(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    let (Some(old), Some(new)) = (&baseline.image, &target.image) else {
        return;
    };
    let lines = |items: &[String]| items.join("\n");
    let labels = |labels: &BTreeMap<String, String>| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let pairs = [
        ("entrypoint", lines(&old.entrypoint), lines(&new.entrypoint)),
        ("cmd", lines(&old.cmd), lines(&new.cmd)),
        (
            "workdir",
            old.workdir.clone().unwrap_or_default(),
            new.workdir.clone().unwrap_or_default(),
        ),
        (
            "user",
            old.user.clone().unwrap_or_default(),
            new.user.clone().unwrap_or_default(),
        ),
        (
            "exposed-ports",
            lines(&old.exposed_ports),
            lines(&new.exposed_ports),
        ),
        ("labels", labels(&old.labels), labels(&new.labels)),
    ];
    for (field, before, after) in pairs {
        if before != after {
            let one_line = |text: &str| text.replace('\n', " ");
            findings.push(
                Code::ImageConfig,
                field,
                Some(before.clone()),
                Some(after.clone()),
                format!(
                    "image {field}: `{}` -> `{}`",
                    one_line(&before),
                    one_line(&after)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
