//! Comparing two runtimes. Pure: two [`Lock`]s in, an ordered list of [`Finding`]s out, no
//! I/O. Where a runtime came from (a lock file, a live interpreter, an image) is not known
//! here.

pub mod policy;
pub mod version;

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;

use crate::lock::{Lock, Model, Package};
pub use version::{Change, Direction};

/// A finding's stable code. Scripts match on these: add codes, never rename one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// `sys.implementation` differs (cpython, pypy).
    PythonImplementation,
    /// The Python version differs.
    PythonVersion,
    /// The operating system differs.
    PlatformOs,
    /// The CPU architecture differs.
    PlatformArch,
    /// The C library's family or version differs.
    Libc,
    /// A package of the baseline is not in the target.
    PackageMissing,
    /// The target has a package the baseline lacks.
    PackageAdded,
    /// A package's version differs.
    PackageVersion,
    /// Same version, another build: local label, wheel tag, installer, source, editable.
    PackageBuild,
    /// Same version, different installed files (RECORD digest).
    PackageFiles,
    /// A model of the baseline is not in the target.
    ModelMissing,
    /// A model's bytes differ.
    ModelHash,
    /// An allow-listed environment variable is set, unset or changed.
    EnvVar,
    /// A system package (dpkg, apk) differs.
    SystemPackage,
    /// The image configuration (entrypoint, cmd, workdir, user, ports, labels) differs.
    ImageConfig,
    /// A golden case's output is out of tolerance.
    GoldenMismatch,
    /// A golden case could not be run or its output not read.
    GoldenError,
    /// A policy ignore rule matched nothing (so policies do not rot).
    PolicyUnused,
}

/// How serious a finding is. Ordered: `info < warning < error`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Reported, never fails the gate unless `--fail-on info`.
    Info,
    /// Fails the gate with `--fail-on warning`.
    Warning,
    /// Fails the gate (the default `--fail-on error`).
    Error,
}

/// One difference between the two runtimes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// What kind of difference.
    pub code: Code,
    /// How serious, after the policy.
    pub severity: Severity,
    /// The thing that differs: a package name, model path, variable name, case name.
    pub subject: String,
    /// The baseline's value, absent when the baseline lacks the thing.
    pub baseline: Option<String>,
    /// The target's value, absent when the target lacks the thing.
    pub target: Option<String>,
    /// For versions: the first PEP 440 part that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// For versions: whether the target is newer or older.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// One line for people.
    pub message: String,
}

/// The part of a runtime a finding is about, for grouping in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Interpreter.
    Python,
    /// OS, architecture, libc.
    Platform,
    /// Python distributions.
    Packages,
    /// Model files.
    Models,
    /// Allow-listed environment.
    Environment,
    /// dpkg/apk packages.
    SystemPackages,
    /// Image configuration.
    Image,
    /// Golden predictions.
    Golden,
    /// The policy itself.
    Policy,
}

impl Code {
    /// The area the code belongs to.
    pub fn area(self) -> Area {
        match self {
            Code::PythonImplementation | Code::PythonVersion => Area::Python,
            Code::PlatformOs | Code::PlatformArch | Code::Libc => Area::Platform,
            Code::PackageMissing
            | Code::PackageAdded
            | Code::PackageVersion
            | Code::PackageBuild
            | Code::PackageFiles => Area::Packages,
            Code::ModelMissing | Code::ModelHash => Area::Models,
            Code::EnvVar => Area::Environment,
            Code::SystemPackage => Area::SystemPackages,
            Code::ImageConfig => Area::Image,
            Code::GoldenMismatch | Code::GoldenError => Area::Golden,
            Code::PolicyUnused => Area::Policy,
        }
    }

    /// The kebab-case code, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::PythonImplementation => "python-implementation",
            Code::PythonVersion => "python-version",
            Code::PlatformOs => "platform-os",
            Code::PlatformArch => "platform-arch",
            Code::Libc => "libc",
            Code::PackageMissing => "package-missing",
            Code::PackageAdded => "package-added",
            Code::PackageVersion => "package-version",
            Code::PackageBuild => "package-build",
            Code::PackageFiles => "package-files",
            Code::ModelMissing => "model-missing",
            Code::ModelHash => "model-hash",
            Code::EnvVar => "env-var",
            Code::SystemPackage => "system-package",
            Code::ImageConfig => "image-config",
            Code::GoldenMismatch => "golden-mismatch",
            Code::GoldenError => "golden-error",
            Code::PolicyUnused => "policy-unused",
        }
    }

    /// Every code, in report order.
    pub const ALL: [Code; 18] = [
        Code::PythonImplementation,
        Code::PythonVersion,
        Code::PlatformOs,
        Code::PlatformArch,
        Code::Libc,
        Code::PackageMissing,
        Code::PackageAdded,
        Code::PackageVersion,
        Code::PackageBuild,
        Code::PackageFiles,
        Code::ModelMissing,
        Code::ModelHash,
        Code::EnvVar,
        Code::SystemPackage,
        Code::ImageConfig,
        Code::GoldenMismatch,
        Code::GoldenError,
        Code::PolicyUnused,
    ];
}

impl Area {
    /// The area's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Python => "python",
            Area::Platform => "platform",
            Area::Packages => "packages",
            Area::Models => "models",
            Area::Environment => "environment",
            Area::SystemPackages => "system-packages",
            Area::Image => "image",
            Area::Golden => "golden",
            Area::Policy => "policy",
        }
    }
}

impl Severity {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The default severity of a finding (the policy overrides it): what changes predictions
/// most often is an error, what may is a warning, the rest is information.
pub fn default_severity(code: Code, change: Option<Change>) -> Severity {
    use Severity::*;
    match code {
        Code::PackageVersion | Code::PythonVersion => match change {
            Some(Change::Patch | Change::Pre | Change::Post | Change::Dev | Change::Local) => {
                Warning
            }
            _ => Error,
        },
        Code::PythonImplementation
        | Code::PlatformOs
        | Code::PlatformArch
        | Code::PackageMissing
        | Code::ModelMissing
        | Code::ModelHash
        | Code::GoldenMismatch
        | Code::GoldenError => Error,
        Code::Libc
        | Code::PackageAdded
        | Code::PackageBuild
        | Code::PackageFiles
        | Code::EnvVar => Warning,
        Code::SystemPackage | Code::ImageConfig | Code::PolicyUnused => Info,
    }
}

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
        self.0.push(Finding {
            code,
            severity: default_severity(code, classified.map(|(change, _)| change)),
            subject: subject.to_string(),
            baseline,
            target,
            change: classified.map(|(change, _)| change),
            direction: classified.map(|(_, direction)| direction),
            message,
        });
    }
}

/// Every difference between `baseline` and `target`, ordered by area, code and subject,
/// with default severities.
pub fn diff(baseline: &Lock, target: &Lock) -> Vec<Finding> {
    let mut findings = Findings(Vec::new());
    diff_python(baseline, target, &mut findings);
    diff_platform(baseline, target, &mut findings);
    diff_packages(&baseline.packages, &target.packages, &mut findings);
    diff_models(&baseline.models, &target.models, &mut findings);
    diff_env(baseline, target, &mut findings);
    diff_system_packages(baseline, target, &mut findings);
    diff_image(baseline, target, &mut findings);
    let mut findings = findings.0;
    findings.sort_by(|a, b| {
        (a.code.area(), a.code, &a.subject).cmp(&(b.code.area(), b.code, &b.subject))
    });
    findings
}

fn describe(classified: Option<(Change, Direction)>) -> String {
    match classified {
        Some((change, direction)) => format!(" ({} {})", change.as_str(), direction.as_str()),
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

fn diff_package(old: &Package, new: &Package, findings: &mut Findings) {
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
        return;
    }
    let mut builds = Vec::new();
    let (old_tags, new_tags) = (old.wheel_tags.join(" "), new.wheel_tags.join(" "));
    if !old_tags.is_empty() && !new_tags.is_empty() && old_tags != new_tags {
        builds.push(("wheel tags", old_tags, new_tags));
    }
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".to_string());
    if old.installer.is_some() && new.installer.is_some() && old.installer != new.installer {
        builds.push(("installer", show(&old.installer), show(&new.installer)));
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
        builds.push(("source", source(old), source(new)));
    }
    for (what, before, after) in builds {
        findings.push(
            Code::PackageBuild,
            name,
            Some(before.clone()),
            Some(after.clone()),
            format!(
                "{name} {}: same version, {what} {before} -> {after}",
                old.version
            ),
        );
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
mod tests {
    use super::*;
    use crate::lock::*;

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            location: "/site".into(),
            format: MetadataFormat::DistInfo,
            installer: Some("pip".into()),
            requested: false,
            source: None,
            editable: false,
            url: None,
            commit: None,
            wheel_tags: vec!["py3-none-any".into()],
            record: Some("sha256:11".into()),
            shadowed: Vec::new(),
        }
    }

    fn runtime() -> Lock {
        Lock {
            envlock: Header::current(),
            source: Source::default(),
            python: Some(Python {
                implementation: "cpython".into(),
                version: "3.11.7".into(),
                executable: None,
                prefix: None,
                base_prefix: None,
                soabi: None,
                cache_tag: None,
                sys_path: Vec::new(),
                markers: BTreeMap::new(),
            }),
            platform: Platform {
                os: "linux".into(),
                arch: "x86_64".into(),
                libc: Some("glibc".into()),
                libc_version: Some("2.36".into()),
                os_id: None,
                os_version: None,
            },
            env: crate::env::capture(|name| (name == "OMP_NUM_THREADS").then(|| "4".into())),
            packages: vec![package("numpy", "1.26.4"), package("pip", "24.0")],
            pth_files: Vec::new(),
            models: vec![Model {
                path: "model/".into(),
                kind: ModelKind::File,
                sha256: "sha256:aa".into(),
                size: 1,
                files: Vec::new(),
            }],
            golden: Vec::new(),
            system_packages: vec![SystemPackage {
                name: "libc6".into(),
                version: "2.36-9".into(),
                manager: "dpkg".into(),
            }],
            image: Some(Image {
                workdir: Some("/app".into()),
                ..Image::default()
            }),
        }
    }

    /// One change to the target gives exactly one finding, with that code and subject.
    fn single(change: impl FnOnce(&mut Lock)) -> Finding {
        let baseline = runtime();
        let mut target = runtime();
        change(&mut target);
        let mut findings = diff(&baseline, &target);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        findings.remove(0)
    }

    fn numpy(lock: &mut Lock) -> &mut Package {
        &mut lock.packages[0]
    }

    #[test]
    fn identical_runtimes_give_no_finding() {
        assert!(diff(&runtime(), &runtime()).is_empty());
    }

    #[test]
    fn python_implementation() {
        let f = single(|l| l.python.as_mut().unwrap().implementation = "pypy".into());
        assert_eq!(
            (f.code, f.severity),
            (Code::PythonImplementation, Severity::Error)
        );
    }

    #[test]
    fn python_version_patch_is_a_warning_minor_an_error() {
        let f = single(|l| l.python.as_mut().unwrap().version = "3.11.9".into());
        assert_eq!(
            (f.code, f.change, f.severity),
            (Code::PythonVersion, Some(Change::Patch), Severity::Warning)
        );
        let f = single(|l| l.python.as_mut().unwrap().version = "3.12.0".into());
        assert_eq!(
            (f.code, f.change, f.severity),
            (Code::PythonVersion, Some(Change::Minor), Severity::Error)
        );
    }

    #[test]
    fn platform_os_arch_and_libc() {
        assert_eq!(
            single(|l| l.platform.os = "darwin".into()).code,
            Code::PlatformOs
        );
        assert_eq!(
            single(|l| l.platform.arch = "aarch64".into()).code,
            Code::PlatformArch
        );
        let f = single(|l| l.platform.libc_version = Some("2.31".into()));
        assert_eq!((f.code, f.severity), (Code::Libc, Severity::Warning));
    }

    #[test]
    fn package_missing_and_added() {
        let f = single(|l| l.packages.retain(|p| p.name != "pip"));
        assert_eq!(
            (f.code, f.subject.as_str(), f.severity),
            (Code::PackageMissing, "pip", Severity::Error)
        );
        let f = single(|l| l.packages.push(package("requests", "2.32.3")));
        assert_eq!(
            (f.code, f.subject.as_str(), f.severity),
            (Code::PackageAdded, "requests", Severity::Warning)
        );
    }

    #[test]
    fn package_version_is_classified() {
        let f = single(|l| numpy(l).version = "2.0.2".into());
        assert_eq!(f.code, Code::PackageVersion);
        assert_eq!(
            (f.change, f.direction),
            (Some(Change::Major), Some(Direction::Upgrade))
        );
        assert_eq!(f.message, "numpy 1.26.4 -> 2.0.2 (major upgrade)");
        assert_eq!(
            (f.baseline.as_deref(), f.target.as_deref()),
            (Some("1.26.4"), Some("2.0.2"))
        );
        // Equal by PEP 440: no finding.
        let baseline = runtime();
        let mut target = runtime();
        numpy(&mut target).version = "1.26.4.0".into();
        assert!(diff(&baseline, &target).is_empty());
    }

    #[test]
    fn package_build_local_label_wheel_tag_installer_source() {
        let f = single(|l| {
            numpy(l).version = "1.26.4+cpu".into();
        });
        assert_eq!(
            (f.code, f.change),
            (Code::PackageBuild, Some(Change::Local))
        );
        let f = single(|l| numpy(l).wheel_tags = vec!["cp311-cp311-musllinux_1_1_x86_64".into()]);
        assert_eq!(f.code, Code::PackageBuild);
        let f = single(|l| numpy(l).installer = Some("uv".into()));
        assert_eq!(
            (f.code, f.target.as_deref()),
            (Code::PackageBuild, Some("uv"))
        );
        let f = single(|l| {
            numpy(l).source = Some(PackageSource::Directory);
            numpy(l).editable = true;
        });
        assert_eq!(
            (f.code, f.target.as_deref()),
            (Code::PackageBuild, Some("directory (editable)"))
        );
    }

    #[test]
    fn package_files() {
        let f = single(|l| numpy(l).record = Some("sha256:22".into()));
        assert_eq!(
            (f.code, f.severity),
            (Code::PackageFiles, Severity::Warning)
        );
    }

    #[test]
    fn model_missing_and_hash() {
        let f = single(|l| l.models.clear());
        assert_eq!((f.code, f.subject.as_str()), (Code::ModelMissing, "model/"));
        let f = single(|l| l.models[0].sha256 = "sha256:bb".into());
        assert_eq!((f.code, f.severity), (Code::ModelHash, Severity::Error));
    }

    #[test]
    fn env_var_set_unset_changed() {
        let f = single(|l| {
            l.env.set.insert("OMP_NUM_THREADS".into(), "8".into());
        });
        assert_eq!(
            (f.code, f.subject.as_str(), f.target.as_deref()),
            (Code::EnvVar, "OMP_NUM_THREADS", Some("8"))
        );
        let f = single(|l| {
            l.env.set.remove("OMP_NUM_THREADS");
            l.env.unset.push("OMP_NUM_THREADS".into());
        });
        assert_eq!(f.target, None);
    }

    #[test]
    fn system_package_only_when_both_sides_list_them() {
        let f = single(|l| l.system_packages[0].version = "2.36-10".into());
        assert_eq!((f.code, f.severity), (Code::SystemPackage, Severity::Info));
        let baseline = runtime();
        let mut target = runtime();
        target.system_packages.clear();
        assert!(
            diff(&baseline, &target).is_empty(),
            "a dev snapshot lists none"
        );
    }

    #[test]
    fn image_config() {
        let f = single(|l| l.image.as_mut().unwrap().workdir = Some("/srv".into()));
        assert_eq!(
            (f.code, f.subject.as_str(), f.severity),
            (Code::ImageConfig, "workdir", Severity::Info)
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in Code::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
    }
}
