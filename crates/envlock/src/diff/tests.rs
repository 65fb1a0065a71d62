//! The diff engine, one change at a time: each gives exactly one finding.

use super::*;
use crate::lock::*;

fn package(name: &str, version: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        location: "/site".into(),
        installer: Some("pip".into()),
        wheel_tags: vec!["py3-none-any".into()],
        record: Some("sha256:11".into()),
        ..Package::default()
    }
}

pub(super) fn runtime() -> Lock {
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
            selected_by: None,
        }),
        platform: Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            libc: Some("glibc".into()),
            libc_version: Some("2.36".into()),
            os_id: None,
            os_version: None,
        },
        env: crate::capture::env::capture(|name| (name == "OMP_NUM_THREADS").then(|| "4".into())),
        packages: vec![package("numpy", "1.26.4"), package("pip", "24.0")],
        pth_files: Vec::new(),
        conda_packages: Vec::new(),
        numerics: crate::lock::Numerics::default(),
        models: vec![Model {
            path: "model/".into(),
            kind: ModelKind::File,
            sha256: "sha256:aa".into(),
            size: 1,
            ..Model::default()
        }],
        golden: Vec::new(),
        system_packages: vec![SystemPackage {
            name: "libc6".into(),
            version: "2.36-9".into(),
            manager: "dpkg".into(),
            layer: None,
        }],
        image: Some(Image {
            workdir: Some("/app".into()),
            ..Image::default()
        }),
        declared: None,
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
fn conda_packages_only_between_two_conda_runtimes() {
    let record = |version: &str, build: &str| CondaPackage {
        name: "libopenblas".into(),
        version: version.into(),
        build: build.into(),
        channel: Some("conda-forge".into()),
        layer: None,
    };
    let with = |packages: Vec<CondaPackage>| {
        let mut lock = runtime();
        lock.conda_packages = packages;
        lock
    };
    let baseline = with(vec![record("0.3.27", "pthreads_h1_0")]);
    assert!(
        diff(&baseline, &runtime()).is_empty(),
        "a venv says nothing of conda"
    );
    let findings = diff(&baseline, &with(vec![record("0.3.27", "openmp_h2_0")]));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.code, f.change, f.severity),
        (Code::CondaPackage, Some(Change::Build), Severity::Warning)
    );
    assert_eq!(f.target.as_deref(), Some("0.3.27=openmp_h2_0"));
    let f = diff(&baseline, &with(vec![record("0.3.28", "pthreads_h1_0")])).remove(0);
    assert_eq!(
        (f.change, f.direction),
        (Some(Change::Patch), Some(Direction::Upgrade))
    );
    let mut other = record("0.3.27", "pthreads_h1_0");
    other.name = "mkl".into();
    let findings = diff(
        &baseline,
        &with(vec![record("0.3.27", "pthreads_h1_0"), other]),
    );
    assert_eq!(findings[0].subject, "mkl");
    assert_eq!(findings[0].baseline, None);
}

#[test]
fn findings_about_the_target_name_the_layer_that_wrote_it() {
    let baseline = runtime();
    let mut target = runtime();
    target.packages[0].version = "2.0.2".into();
    target.packages[0].layer = Some(1);
    target.models[0].sha256 = "sha256:bb".into();
    target.models[0].layer = Some(2);
    target.image.as_mut().unwrap().layers = (0..3)
        .map(|index| crate::lock::Layer {
            index,
            diff_id: format!("sha256:{index}"),
            created_by: Some(format!("/bin/sh -c step {index}")),
        })
        .collect();
    let findings = diff(&baseline, &target);
    let layer_of = |code: Code| {
        findings
            .iter()
            .find(|f| f.code == code)
            .and_then(|f| f.layer.clone())
            .map(|layer| (layer.index, layer.describe()))
    };
    assert_eq!(
        layer_of(Code::PackageVersion),
        Some((1, "layer 1: RUN step 1".to_string()))
    );
    assert_eq!(layer_of(Code::ModelHash).map(|(index, _)| index), Some(2));
    // A baseline lock's findings (no layers in the target) carry none.
    let plain = diff(&target, &baseline);
    assert!(plain.iter().all(|f| f.layer.is_none()));
}

#[test]
fn numeric_libraries_by_role_and_the_cpu_features_that_matter() {
    use crate::lock::{Cpu, NumericLibrary};
    let library = |family: &str, version: &str, path: &str| NumericLibrary {
        family: family.into(),
        version: Some(version.into()),
        threading: None,
        path: path.into(),
        sha256: None,
        shipped_by: None,
        loaded_by: Vec::new(),
        loaded: false,
        gpu: None,
    };
    let cpu = |features: &[&str]| Cpu {
        model: None,
        vendor: None,
        features: features.iter().map(|f| f.to_string()).collect(),
        logical_cpus: 4,
        cpu_quota: None,
    };
    let with = |libraries: Vec<NumericLibrary>, features: &[&str]| {
        let mut lock = runtime();
        lock.numerics.libraries = libraries;
        lock.numerics.cpu = Some(cpu(features));
        lock
    };
    let reference = with(
        vec![library(
            "reference-blas",
            "3.11.0-2",
            "/usr/lib/blas/libblas.so.3",
        )],
        &["avx2", "fma"],
    );
    let openblas = with(
        vec![library(
            "openblas",
            "0.3.21",
            "/usr/lib/openblas-pthread/libblas.so.3",
        )],
        &["avx2"],
    );
    let findings = diff(&reference, &openblas);
    let find = |code: Code| findings.iter().find(|f| f.code == code).unwrap();
    assert_eq!(find(Code::NumericLibrary).severity, Severity::Error);
    assert_eq!(find(Code::NumericLibrary).subject, "system:blas");
    // Without FMA the rounding of every fused kernel changes: a warning, not information.
    assert_eq!(find(Code::CpuFeatures).severity, Severity::Warning);
    let newer = with(
        vec![library(
            "openblas",
            "0.3.27",
            "/usr/lib/openblas-pthread/libblas.so.3",
        )],
        &["avx2", "sse4_2"],
    );
    let findings = diff(&openblas, &newer);
    let find = |code: Code| findings.iter().find(|f| f.code == code).unwrap();
    assert_eq!(find(Code::NumericLibrary).severity, Severity::Warning);
    assert_eq!(find(Code::CpuFeatures).severity, Severity::Info);
    // A lock from before the fingerprint says nothing.
    assert!(diff(&runtime(), &newer)
        .iter()
        .all(|f| f.code.area() != crate::diff::Area::Numerics));
}

#[test]
fn what_the_model_file_records_is_checked_against_the_target() {
    // Written by scikit-learn 1.3.2; the target has 1.5.2: a warning naming both.
    let mut baseline = runtime();
    baseline.packages.push(package("scikit-learn", "1.3.2"));
    let mut target = baseline.clone();
    target.packages[2].version = "1.5.2".into();
    target.models[0].written_by = vec![WrittenBy {
        name: "scikit-learn".into(),
        version: "1.3.2".into(),
    }];
    let findings = diff(&baseline, &target);
    let framework = findings
        .iter()
        .find(|f| f.code == Code::ModelFramework)
        .expect("a model-framework finding");
    assert_eq!(framework.severity, Severity::Warning);
    assert_eq!(framework.subject, "model/");
    assert_eq!(framework.baseline.as_deref(), Some("1.3.2"));
    assert_eq!(framework.target.as_deref(), Some("1.5.2"));
    assert!(
        framework.message.contains("the baseline has 1.3.2"),
        "{}",
        framework.message
    );
    // The same version in another spelling is no finding; a target without it, an error.
    target.packages[2].version = "1.3.2.0".into();
    assert!(!diff(&baseline, &target)
        .iter()
        .any(|f| f.code == Code::ModelFramework));
    target.packages.remove(2);
    let lacking = diff(&baseline, &target);
    let framework = lacking
        .iter()
        .find(|f| f.code == Code::ModelFramework)
        .unwrap();
    assert_eq!(framework.severity, Severity::Error);
    // xgboost from the `xgboost-cpu` distribution is xgboost.
    target.packages.push(package("xgboost-cpu", "2.1.3"));
    target.models[0].written_by = vec![WrittenBy {
        name: "xgboost".into(),
        version: "2.1.3".into(),
    }];
    assert!(!diff(&baseline, &target)
        .iter()
        .any(|f| f.code == Code::ModelFramework));
}

#[test]
fn a_module_the_target_cannot_import_and_an_unsafe_pickle_are_errors() {
    let f = single(|l| l.models[0].not_importable = vec!["numpy._core.multiarray".into()]);
    assert_eq!((f.code, f.severity), (Code::ModelImport, Severity::Error));
    assert!(
        f.message.contains("`numpy._core.multiarray`"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("numpy 1.26.4 is installed"),
        "{}",
        f.message
    );
    let f = single(|l| {
        l.models[0].unsafe_calls = vec!["posix.system".into()];
        l.models[0].unsafe_where = vec!["byte 40: REDUCE calls `posix.system`".into()];
    });
    assert_eq!((f.code, f.severity), (Code::ModelUnsafe, Severity::Error));
    assert!(f.message.contains("byte 40"), "{}", f.message);
    assert!(f.message.contains("[models] trust"), "{}", f.message);
    // A trusted model's finding is information.
    let policy = Policy {
        trusted_models: vec!["model/".into()],
        ..Policy::default()
    };
    let kept = policy.apply(vec![f.clone()]);
    assert_eq!(kept[0].severity, Severity::Info);
    // `./model` and a folder holding the model name it too; another path does not.
    for (trusted, severity) in [
        ("./model", Severity::Info),
        ("model/", Severity::Info),
        ("other.pkl", Severity::Error),
    ] {
        let mut inside = f.clone();
        inside.subject = "model/legacy.pkl".into();
        let policy = Policy {
            trusted_models: vec![trusted.into()],
            ..Policy::default()
        };
        assert_eq!(
            policy.apply(vec![inside])[0].severity,
            severity,
            "{trusted}"
        );
    }
}

#[test]
fn another_tool_s_sbom_is_compared_by_versions_and_its_copies() {
    let lock = runtime();
    // What syft or cyclonedx-py record: name and version, no install facts; two copies of
    // one name (two site folders), no interpreter, no platform.
    let mut sbom = runtime();
    sbom.source.kind = SourceKind::Sbom;
    sbom.python = None;
    sbom.platform = Platform::default();
    sbom.env = Env::default();
    for package in &mut sbom.packages {
        *package = Package {
            name: package.name.clone(),
            version: package.version.clone(),
            ..Package::default()
        };
    }
    let theirs = sbom.packages[0].version.clone();
    sbom.packages[0].version = "0.1".into();
    sbom.packages[0].shadowed.push(Shadowed {
        version: theirs,
        location: String::new(),
    });
    assert_eq!(diff(&lock, &sbom), []);
    assert_eq!(diff(&sbom, &lock), []);
    // A version no copy has is drift; so is a package one side lacks.
    sbom.packages[0].shadowed.clear();
    let findings = diff(&lock, &sbom);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, Code::PackageVersion);
    sbom.packages.remove(0);
    assert_eq!(diff(&lock, &sbom)[0].code, Code::PackageMissing);

    // envlock's own SBOM keeps install facts, the Python version and the platform.
    let mut own = runtime();
    own.source.kind = SourceKind::Sbom;
    own.python.as_mut().unwrap().version = "3.12.1".into();
    own.packages[0].record = Some("sha256:22".into());
    own.platform.arch = "aarch64".into();
    let codes: Vec<Code> = diff(&lock, &own).iter().map(|f| f.code).collect();
    assert_eq!(
        codes,
        [Code::PythonVersion, Code::PlatformArch, Code::PackageFiles],
        "{codes:?}"
    );
}
