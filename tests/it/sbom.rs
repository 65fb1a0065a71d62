//! CycloneDX out and in, against the reference tools: every export validates with
//! `cyclonedx-python-lib`'s `JsonStrictValidator` (the official 1.6 schema) and its purls
//! parse with `packageurl-python` to the same text; an export read back as an operand has no
//! package finding against its lock; and the SBOMs of `cyclonedx-py environment` (a venv)
//! and of syft (an image) have none against envlock's lock of the same runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::docker::{fixture, need_engine};
use crate::support::{conda_layout_venv, envlock, ml_venv, must, pip_install, run, venv, Run};

/// The reference CycloneDX tools from PyPI, in a venv kept under the fixtures' cache.
pub fn tools() -> PathBuf {
    const SPECS: &[&str] = &[
        "cyclonedx-bom==7.5.0",
        "cyclonedx-python-lib[json-validation]==11.12.0",
        "packageurl-python==0.17.6",
        "PyYAML==6.0.2",
    ];
    venv("cyclonedx", &format!("{SPECS:?}"), &[], |folder| {
        pip_install(folder, SPECS)
    })
}

/// Validates each SBOM with the reference library; panics with what it said.
fn validate(sboms: &[&Path]) {
    const SCRIPT: &str = r#"
import json, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
validator = JsonStrictValidator(SchemaVersion.V1_6)
problems = []
for path in sys.argv[1:]:
    text = open(path).read()
    error = validator.validate_str(text)
    if error is not None:
        problems.append(f"{path}: {error}")
        continue
    bom = json.loads(text)
    purls = [c["purl"] for c in bom["components"] if "purl" in c]
    if not purls:
        problems.append(f"{path}: no purl")
    for purl in purls:
        again = PackageURL.from_string(purl).to_string()
        if again != purl:
            problems.append(f"{path}: purl {purl} reads back as {again}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;
    let output = Command::new(tools())
        .arg("-c")
        .arg(SCRIPT)
        .args(sboms)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `envlock export LOCK --format cyclonedx -o SBOM`.
fn export(lock: &Path, sbom: &Path) {
    let made = run(envlock()
        .args(["export", "--format", "cyclonedx", "-o"])
        .arg(sbom)
        .arg(lock));
    assert_eq!(made.code, 0, "{}", made.stderr);
}

/// `envlock diff BASELINE TARGET --format json`, without golden cases: the run and its
/// findings as `(code, subject)`.
fn diff(baseline: &str, target: &str) -> (Run, Vec<(String, String)>) {
    let made = run(envlock()
        .args(["diff", "--no-golden", "--format", "json", baseline, target])
        .current_dir(std::env::temp_dir()));
    assert!(made.code <= 1, "{}", made.stderr);
    let report: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap_or_default().to_string();
            (text("code"), text("subject"))
        })
        .collect();
    (made, findings)
}

/// The findings about packages: Python distributions, conda and system packages.
fn package_findings(findings: &[(String, String)]) -> Vec<&(String, String)> {
    findings
        .iter()
        .filter(|(code, _)| {
            code.starts_with("package-") || code == "conda-package" || code == "system-package"
        })
        .collect()
}

/// Exports `lock`, validates it, and diffs it back both ways: no package finding.
fn round_trip(lock: &Path, folder: &Path) -> PathBuf {
    let name = lock.file_stem().unwrap().to_str().unwrap();
    let sbom = folder.join(format!("{name}.cdx.json"));
    export(lock, &sbom);
    validate(&[&sbom]);
    let again = folder.join(format!("{name}-again.cdx.json"));
    export(lock, &again);
    assert_eq!(
        std::fs::read(&sbom).unwrap(),
        std::fs::read(&again).unwrap(),
        "two exports of one lock differ"
    );
    let (lock_text, sbom_text) = (lock.to_str().unwrap(), sbom.to_str().unwrap());
    // Every package, model, numerics library, the Python version and the platform come
    // back: no finding at all.
    for (baseline, target) in [(lock_text, sbom_text), (sbom_text, lock_text)] {
        let (made, findings) = diff(baseline, target);
        assert_eq!(findings, [], "{baseline} -> {target}");
        assert!(
            made.stderr.contains("is a CycloneDX SBOM"),
            "{}",
            made.stderr
        );
    }
    // `cyclonedx:` names an SBOM whatever the file is called.
    let plain = folder.join(format!("{name}.json"));
    std::fs::copy(&sbom, &plain).unwrap();
    let (_, findings) = diff(lock_text, &format!("cyclonedx:{}", plain.display()));
    assert!(package_findings(&findings).is_empty(), "{findings:?}");
    sbom
}

fn snapshot_of(python: &Path, lock: &Path) {
    let made = run(envlock()
        .args(["snapshot", "--python"])
        .arg(python)
        .arg("-o")
        .arg(lock)
        .current_dir(lock.parent().unwrap()));
    assert_eq!(made.code, 0, "{}", made.stderr);
}

#[test]
fn a_dev_lock_and_a_conda_lock_export_valid_sboms_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev.lock");
    snapshot_of(&ml_venv(), &dev);
    let sbom = round_trip(&dev, dir.path());
    let bom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    assert!(bom["metadata"].get("timestamp").is_none());
    let numpy = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| component["name"] == "numpy")
        .unwrap();
    assert_eq!(numpy["purl"], "pkg:pypi/numpy@1.26.4");
    let record = numpy["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|property| property["name"] == "envlock:record")
        .unwrap();
    assert!(record["value"].as_str().unwrap().starts_with("sha256:"));
    // What each distribution requires travels too: an SBOM without setuptools, which
    // zope.interface requires, is a baseline that does not meet it.
    let mut without = bom.clone();
    without["components"]
        .as_array_mut()
        .unwrap()
        .retain(|component| component["name"] != "setuptools");
    let broken = dir.path().join("without-setuptools.cdx.json");
    std::fs::write(&broken, without.to_string()).unwrap();
    let (_, findings) = diff(broken.to_str().unwrap(), dev.to_str().unwrap());
    assert!(
        findings.contains(&("requirement-unmet".into(), "zope-interface".into())),
        "{findings:?}"
    );
    // numpy's vendored OpenBLAS, with its SHA-256.
    let openblas = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| {
            component["description"]
                .as_str()
                .is_some_and(|text| text.starts_with("openblas"))
        })
        .expect("numpy's OpenBLAS is a component");
    assert_eq!(openblas["hashes"][0]["alg"], "SHA-256");

    let conda = dir.path().join("conda.lock");
    snapshot_of(&conda_layout_venv(), &conda);
    let sbom = round_trip(&conda, dir.path());
    let text = std::fs::read_to_string(&sbom).unwrap();
    assert!(
        text.contains("pkg:conda/mkl@2024.0.0?build=ha957f24_49657&channel=conda-forge"),
        "{text}"
    );

    // `--timestamp` dates it; `SOURCE_DATE_EPOCH` says when.
    let dated = run(envlock()
        .args(["export", "--format", "cyclonedx", "--timestamp"])
        .arg(&dev)
        .env("SOURCE_DATE_EPOCH", "1796173323"));
    assert_eq!(dated.code, 0, "{}", dated.stderr);
    assert!(dated
        .stdout
        .contains("\"timestamp\": \"2026-12-02T01:02:03Z\""));
    let wrong = run(envlock()
        .args(["export", "--format", "requirements", "--timestamp"])
        .arg(&dev));
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("--format cyclonedx"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn a_cyclonedx_py_sbom_of_a_venv_is_the_venv_envlock_captures() {
    let dir = tempfile::tempdir().unwrap();
    let python = ml_venv();
    let lock = dir.path().join("dev.lock");
    snapshot_of(&python, &lock);
    let sbom = dir.path().join("venv.cdx.json");
    let cyclonedx_py = tools().parent().unwrap().join("cyclonedx-py");
    must(
        Command::new(cyclonedx_py)
            .args(["environment", "--output-reproducible", "--of", "JSON", "-o"])
            .arg(&sbom)
            .arg(&python),
    );
    let (made, findings) = diff(lock.to_str().unwrap(), sbom.to_str().unwrap());
    assert_eq!(
        package_findings(&findings),
        Vec::<&(String, String)>::new(),
        "{}",
        made.stdout
    );
    assert!(made.stderr.contains("written by"), "{}", made.stderr);
    // The SBOM is a baseline too, and an audit's column.
    let (_, findings) = diff(sbom.to_str().unwrap(), lock.to_str().unwrap());
    assert!(package_findings(&findings).is_empty(), "{findings:?}");
    let audit = run(envlock()
        .args(["audit", "--format", "csv", "--package", "numpy", "--all"])
        .arg(&lock)
        .arg(&sbom));
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    assert!(
        audit.stdout.contains("packages,numpy,1.26.4,1.26.4"),
        "{}",
        audit.stdout
    );
}

#[test]
fn what_is_not_a_cyclonedx_json_sbom_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lock = crate::support::root().join("fixtures/locks/baseline.lock");
    let cases = [
        (
            "spdx.cdx.json",
            r#"{"spdxVersion": "SPDX-2.3", "packages": []}"#,
            "bomFormat",
        ),
        ("xml.cdx.json", "<?xml version=\"1.0\"?><bom/>", "XML"),
        (
            "cut.cdx.json",
            r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "compo"#,
            "not CycloneDX JSON",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let made = run(envlock()
            .args(["diff", "--no-golden"])
            .arg(&path)
            .arg(&lock));
        assert_eq!(made.code, 2, "{name}: {}", made.stderr);
        assert!(
            made.stderr.contains(name) && made.stderr.contains(says),
            "{name}: {}",
            made.stderr
        );
    }
    let missing = run(envlock()
        .args([
            "diff",
            "--no-golden",
            "cyclonedx:/nonexistent/release-41.json",
        ])
        .arg(&lock));
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("release-41.json"),
        "{}",
        missing.stderr
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_and_rpm_locks_export_valid_sboms_and_syft_agrees() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let image = fixture("dist-packages");
    let exec = dir.path().join("exec.lock");
    let stat = dir.path().join("static.lock");
    for (lock, flags) in [(&exec, &[][..]), (&stat, &["--no-exec"][..])] {
        let made = run(envlock()
            .args(["snapshot", "--image", &image])
            .args(flags)
            .arg("-o")
            .arg(lock)
            .current_dir(dir.path()));
        assert_eq!(made.code, 0, "{}", made.stderr);
    }
    for lock in [&exec, &stat] {
        let sbom = round_trip(lock, dir.path());
        let bom: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sbom).unwrap()).unwrap();
        assert_eq!(bom["metadata"]["component"]["type"], "container");
        let text = bom.to_string();
        assert!(text.contains("pkg:deb/debian/libc6@"), "no dpkg purl");
        assert!(text.contains("distro=debian-12"), "no distro qualifier");
    }

    // syft's SBOM of the same image: no package finding against envlock's lock.
    let Some(syft) = crate::matrix::syft() else {
        return;
    };
    let archive = crate::docker::saved(&image, dir.path());
    let peer = dir.path().join("syft.cdx.json");
    must(
        Command::new(&syft)
            .args(["-q", "-o"])
            .arg(format!("cyclonedx-json={}", peer.display()))
            .arg(format!("docker-archive:{}", archive.display()))
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false"),
    );
    let (made, findings) = diff(peer.to_str().unwrap(), exec.to_str().unwrap());
    assert_eq!(
        package_findings(&findings),
        Vec::<&(String, String)>::new(),
        "{}",
        made.stdout
    );
    let sbom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&peer).unwrap()).unwrap();
    assert!(sbom["components"].as_array().unwrap().len() > 50);

    // An RPM image's packages, with their epochs.
    let work = tempfile::tempdir().unwrap();
    let rpm_image = crate::rpm::rpm_image(&crate::rpm::rpm_root(work.path()));
    let rpm = dir.path().join("rpm.lock");
    let made = run(envlock()
        .args(["snapshot", "--image", &rpm_image, "-o"])
        .arg(&rpm)
        .current_dir(dir.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let sbom = round_trip(&rpm, dir.path());
    let text = std::fs::read_to_string(sbom).unwrap();
    assert!(text.contains("pkg:rpm/"), "no rpm purl");
    assert!(
        text.contains("epoch=1"),
        "openssl-libs's epoch is a qualifier"
    );
}
