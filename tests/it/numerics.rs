//! The numerics fingerprint against real wheels and real Debian packages: numpy 1.26's and
//! 2.x's vendored OpenBLAS (checked against what threadpoolctl finds in the running
//! process), scikit-learn's libgomp, Debian's `libblas.so.3` switched between reference BLAS
//! and OpenBLAS by `update-alternatives`, and `--numerics-check` kernels that tell BLAS
//! builds and `OPENBLAS_CORETYPE` apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::docker::{base_image, derived, need_engine};
use crate::support::*;

/// A venv with `numpy` (and what else `extra` names) and threadpoolctl, from PyPI.
fn numpy_venv(name: &str, packages: &[&str]) -> PathBuf {
    let mut all = packages.to_vec();
    all.push("threadpoolctl==3.5.0");
    venv(name, &format!("{all:?}"), &[], |folder| {
        pip_install(folder, &all)
    })
}

/// What threadpoolctl finds loaded after importing `modules`: (internal API, version,
/// real path) per library.
fn threadpoolctl(python: &Path, modules: &str) -> Vec<(String, Option<String>, String)> {
    let script = format!(
        "import json, os, threadpoolctl\nimport {modules}\n\
         print(json.dumps([(i['internal_api'], i['version'], os.path.realpath(i['filepath'])) \
         for i in threadpoolctl.threadpool_info()]))"
    );
    let output = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn libraries(lock: &toml::Table) -> Vec<toml::Table> {
    lock.get("numerics")
        .and_then(|n| n.get("libraries"))
        .and_then(toml::Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| i.as_table().unwrap().clone())
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(table: &'a toml::Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(toml::Value::as_str)
}

fn dev_lock(python: &Path, extra: &[&str]) -> toml::Table {
    snapshot(
        envlock()
            .args(["snapshot", "--python"])
            .arg(python)
            .args(extra),
    )
}

#[test]
fn vendored_openblas_is_named_with_the_version_the_library_reports() {
    let old = numpy_venv("numerics-numpy1", &["numpy==1.26.4"]);
    let new = numpy_venv(
        "numerics-numpy2",
        &["numpy==2.1.3", "scipy==1.14.1", "scikit-learn==1.5.2"],
    );
    for (python, modules) in [(&old, "numpy"), (&new, "numpy, scipy.linalg, sklearn")] {
        let lock = dev_lock(python, &[]);
        let found = libraries(&lock);
        let loaded = threadpoolctl(python, modules);
        let openblas: Vec<_> = loaded
            .iter()
            .filter(|(api, _, _)| api == "openblas")
            .collect();
        assert!(!openblas.is_empty(), "{loaded:?}");
        for (_, version, path) in openblas {
            let library = found
                .iter()
                .find(|l| text(l, "path") == Some(path))
                .unwrap_or_else(|| panic!("{path} not in {found:#?}"));
            assert_eq!(text(library, "family"), Some("openblas"));
            assert_eq!(text(library, "version"), version.as_deref(), "{path}");
            assert!(text(library, "sha256").unwrap().starts_with("sha256:"));
        }
        let numpy = found
            .iter()
            .find(|l| text(l, "shipped-by") == Some("numpy"))
            .unwrap();
        assert_eq!(
            numpy["loaded-by"].as_array().unwrap()[0].as_str(),
            Some("numpy")
        );
        // The CPU of this machine.
        let cpu = lock["numerics"]["cpu"].as_table().unwrap();
        let logical = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        assert_eq!(cpu["logical-cpus"].as_integer(), Some(logical as i64));
    }
    let lock = dev_lock(&new, &[]);
    let found = libraries(&lock);
    // scikit-learn's vendored OpenMP runtime, and scipy's own OpenBLAS that it loads.
    let gomp = found
        .iter()
        .find(|l| text(l, "shipped-by") == Some("scikit-learn"))
        .expect("scikit-learn vendors libgomp");
    assert_eq!(text(gomp, "family"), Some("libgomp"));
    assert_eq!(text(gomp, "threading"), Some("openmp"));
    assert!(
        text(gomp, "version").is_some_and(|v| v.contains('.')),
        "{gomp:?}"
    );
    let scipy = found
        .iter()
        .find(|l| text(l, "shipped-by") == Some("scipy") && text(l, "family") == Some("openblas"))
        .unwrap();
    assert!(scipy["loaded-by"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u.as_str() == Some("scipy")));
    // Two numpy majors: another OpenBLAS.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
    for (python, lock) in [(&old, &a), (&new, &b)] {
        let made = run(envlock()
            .args(["snapshot", "--python"])
            .arg(python)
            .arg("-o")
            .arg(lock));
        assert_eq!(made.code, 0, "{}", made.stderr);
    }
    let diff = run(envlock()
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .args(["--format", "json"]));
    let report: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "numeric-library" && f["subject"] == "numpy:blas")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(finding["severity"], "warning");
    assert!(finding["baseline"]
        .as_str()
        .unwrap()
        .contains("openblas 0.3.23.dev"));
    assert!(finding["target"]
        .as_str()
        .unwrap()
        .contains("openblas 0.3.27"));
}

/// Debian's python3-numpy with `libblas.so.3` pointing at OpenBLAS (the default once
/// `libopenblas0-pthread` is installed) and at reference BLAS.
fn blas_images() -> (String, String) {
    let openblas = derived(
        base_image(),
        "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends python3-numpy libblas3 liblapack3 libopenblas0-pthread \
         >/dev/null && rm -rf /var/lib/apt/lists/*",
    );
    let reference = derived(
        &openblas,
        "RUN multiarch=$(uname -m)-linux-gnu \
         && update-alternatives --set libblas.so.3-$multiarch /usr/lib/$multiarch/blas/libblas.so.3 \
         && update-alternatives --set liblapack.so.3-$multiarch /usr/lib/$multiarch/lapack/liblapack.so.3",
    );
    (reference, openblas)
}

/// The system BLAS numpy loads in an image's lock: (family, version).
fn numpy_blas(lock: &toml::Table) -> (String, String) {
    let library = libraries(lock)
        .into_iter()
        .find(|l| {
            l.get("loaded-by")
                .and_then(toml::Value::as_array)
                .is_some_and(|users| users.iter().any(|u| u.as_str() == Some("numpy")))
                && text(l, "path").is_some_and(|p| p.contains("libblas"))
        })
        .unwrap_or_else(|| panic!("{:#?}", libraries(lock)));
    (
        text(&library, "family").unwrap().to_string(),
        text(&library, "version").unwrap().to_string(),
    )
}

fn kernels(lock: &toml::Table) -> BTreeMap<String, String> {
    lock["numerics"]["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_string(),
                k["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn debian_blas_alternatives_are_told_apart_and_kernels_see_them() {
    need_engine();
    let (reference, openblas) = blas_images();
    let capture = |image: &str, extra: &[&str]| {
        snapshot(envlock().args(["snapshot", "--image", image]).args(extra))
    };
    let (reference_lock, openblas_lock) = (capture(&reference, &[]), capture(&openblas, &[]));
    assert_eq!(numpy_blas(&reference_lock).0, "reference-blas");
    assert_eq!(numpy_blas(&openblas_lock).0, "openblas");
    // Static capture reads the same alternatives inside the image.
    let static_lock = capture(&reference, &["--no-exec"]);
    assert_eq!(numpy_blas(&static_lock), numpy_blas(&reference_lock));
    // An image has no CPU of its own.
    assert!(reference_lock["numerics"].get("cpu").is_none());
    let diff = run(envlock().args([
        "diff",
        &reference,
        &openblas,
        "--format",
        "json",
        "--no-golden",
    ]));
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    let report: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "numeric-library" && f["subject"] == "system:blas")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(finding["severity"], "error");
    assert!(finding["baseline"]
        .as_str()
        .unwrap()
        .contains("reference-blas"));
    assert!(finding["target"].as_str().unwrap().contains("openblas"));
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("another family"));
    // The kernels: other BLAS, other bits; the same image, the same bits.
    let checked = |image: &str| kernels(&capture(image, &["--numerics-check"]));
    let (first, again, other) = (checked(&openblas), checked(&openblas), checked(&reference));
    assert_eq!(first.len(), 10);
    assert_eq!(first, again);
    assert_ne!(first["matmul-f64"], other["matmul-f64"]);
    assert_eq!(first["exp-f64"], other["exp-f64"], "exp does not use BLAS");
    // Another OpenBLAS kernel for the same image: visible without a golden case.
    let prescott = derived(&openblas, "ENV OPENBLAS_CORETYPE=Prescott");
    let haswell = derived(&openblas, "ENV OPENBLAS_CORETYPE=Haswell");
    assert_ne!(
        checked(&prescott)["matmul-f64"],
        checked(&haswell)["matmul-f64"]
    );
    let diff = run(envlock().args([
        "diff",
        &prescott,
        &haswell,
        "--numerics-check",
        "--no-golden",
        "--format",
        "json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let kernel = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "numerics-kernel" && f["subject"] == "matmul-f64")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(kernel["message"].as_str().unwrap().contains("ulp"));
}

#[test]
fn numerics_check_on_a_runtime_without_numpy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(envlock()
        .args(["snapshot", "--python"])
        .arg(system_python_without_numpy(dir.path()))
        .arg("--numerics-check"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("has no numpy"), "{}", run.stderr);
    assert!(!run.stdout.contains("[[numerics.kernels]]"));
}

/// A venv without numpy.
fn system_python_without_numpy(dir: &Path) -> PathBuf {
    must(
        Command::new(system_python())
            .args(["-m", "venv"])
            .arg(dir.join("venv")),
    );
    dir.join("venv/bin/python")
}
