//! `requirement-unmet` against its oracle, `pip check` run in the same runtime: a real venv
//! and a real image, each made inconsistent the way it happens (pip's own `--no-deps` and
//! `uninstall`), captured live, by exec and statically.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::docker::{image_with, need_engine};
use crate::support::*;

/// A problem as both tools name it: the requirer, the required distribution, and its
/// installed version (`None`: not installed). Names are PEP 503 normalized.
type Problem = (String, String, Option<String>);

/// pip check's lines: `A 1.0 requires B, which is not installed.` and
/// `A 1.0 has requirement B>=2, but you have B 1.0.`
fn pip_says(output: &str) -> BTreeSet<Problem> {
    let normalize = |name: &str| name.to_lowercase().replace(['_', '.'], "-");
    output
        .lines()
        .filter(|line| !line.starts_with("No broken requirements"))
        .map(|line| {
            let line = line.strip_suffix('.').unwrap_or(line);
            let requirer = normalize(line.split(' ').next().unwrap());
            if let Some(missing) = line.strip_suffix(", which is not installed") {
                let (_, name) = missing.rsplit_once(" requires ").unwrap();
                return (requirer, normalize(name), None);
            }
            let (_, have) = line
                .rsplit_once(", but you have ")
                .unwrap_or_else(|| panic!("a line pip check does not write: {line}"));
            let (name, version) = have.split_once(' ').unwrap();
            (requirer, normalize(name), Some(version.to_string()))
        })
        .collect()
}

/// `pip check` run with `python` (its exit code is 1 when it finds problems).
fn pip_check(python: &mut Command) -> BTreeSet<Problem> {
    let output = python
        .args(["-m", "pip", "check", "--disable-pip-version-check"])
        .output()
        .unwrap();
    pip_says(&String::from_utf8(output.stdout).unwrap())
}

/// The `requirement-unmet` findings of a JSON report, on the side whose value is `side`
/// (`baseline` or `target`), with their severities.
fn envlock_says(report: &serde_json::Value, side: &str) -> (BTreeSet<Problem>, BTreeSet<String>) {
    let mut problems = BTreeSet::new();
    let mut severities = BTreeSet::new();
    for finding in report["findings"].as_array().unwrap() {
        if finding["code"] != "requirement-unmet" {
            continue;
        }
        let Some(value) = finding[side].as_str() else {
            continue;
        };
        // `REQUIREMENT (has NAME VERSION)` or `REQUIREMENT (lacks NAME)`.
        let (_, has) = value.rsplit_once(" (").unwrap();
        let has = has.strip_suffix(')').unwrap();
        let problem = match has.split(' ').collect::<Vec<_>>().as_slice() {
            ["has", name, version] => (name.to_string(), Some(version.to_string())),
            ["lacks", name] => (name.to_string(), None),
            _ => panic!("an unexpected value: {value}"),
        };
        let requirer = finding["subject"].as_str().unwrap().to_string();
        problems.insert((requirer, problem.0, problem.1));
        severities.insert(finding["severity"].as_str().unwrap().to_string());
    }
    (problems, severities)
}

/// The exit code and JSON report of `envlock diff baseline target extra…`.
fn diff_report(
    dir: &Path,
    baseline: &Path,
    target: &str,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let report = dir.join("report.json");
    let run = run(envlock()
        .arg("diff")
        .arg(baseline)
        .arg(target)
        .args(extra)
        .arg("--report")
        .arg(format!("json:{}", report.display())));
    assert!(run.code <= 1, "{}", run.stderr);
    let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (run.code, report)
}

#[test]
fn a_venv_pip_left_inconsistent_gives_what_pip_check_gives() {
    // Real wheels whose metadata has extras and markers that do not hold on Linux or 3.11
    // (requests' `socks`, pytest's `colorama` and `exceptiongroup`; pytest-cov asks for
    // `coverage[toml]`, whose requirement holds only before 3.11), then downgrades and a
    // removal that pip allows.
    const PINS: &[&str] = &["requests==2.32.3", "pytest==8.3.3", "pytest-cov==5.0.0"];
    let python = venv("unmet", &format!("{PINS:?} broken v1"), &[], |folder| {
        pip_install(folder, PINS);
        pip_install(folder, &["--no-deps", "urllib3==1.21", "pluggy==1.0.0"]);
        must(Command::new(folder.join("bin/python")).args([
            "-m",
            "pip",
            "uninstall",
            "-q",
            "-y",
            "idna",
        ]));
    });
    let expected = pip_check(&mut Command::new(&python));
    assert_eq!(
        expected.len(),
        3,
        "the fixture is broken in three ways: {expected:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("venv.lock");
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&python)
            .arg("-o")
            .arg(&lock),
    );
    let lock_text = std::fs::read_to_string(&lock).unwrap();
    assert!(lock_text.contains("requires = ["), "{lock_text}");
    // The runtime against itself: its own problems are the gate's, and the baseline's
    // (the same) are information.
    let (code, report) = diff_report(
        dir.path(),
        &lock,
        &format!("python:{}", python.display()),
        &[],
    );
    let (target, severities) = envlock_says(&report, "target");
    assert_eq!(target, expected, "{report:#}");
    assert_eq!(severities, BTreeSet::from(["error".to_string()]));
    let (baseline, severities) = envlock_says(&report, "baseline");
    assert_eq!(baseline, expected);
    assert_eq!(severities, BTreeSet::from(["info".to_string()]));
    assert_eq!(code, 1, "the target's own problems fail the gate");
}

/// `pip check` in `image`, and envlock's target findings by exec and statically, of a
/// lock of it against itself.
fn both_in(image: &str) -> (BTreeSet<Problem>, [BTreeSet<Problem>; 2]) {
    let expected = pip_check(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python3",
        image,
    ]));
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("image.lock");
    must(
        envlock()
            .args(["snapshot", "--image", image, "-o"])
            .arg(&lock),
    );
    let found = [&[][..], &["--no-exec"][..]].map(|mode| {
        let (_, report) = diff_report(dir.path(), &lock, image, mode);
        envlock_says(&report, "target").0
    });
    (expected, found)
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn images_give_what_pip_check_gives_by_exec_and_statically() {
    need_engine();
    // scikit-learn beside a threadpoolctl it does not support and without joblib, both left
    // so by `--no-deps`; its metadata's `extra == ...` requirements and scipy's markers are
    // not in force, nor is the extra in Debian's egg-info requires.txt of `wheel`.
    let broken = image_with(
        "unmet",
        &[
            "scikit-learn==1.5.2",
            "numpy==1.26.4",
            "scipy==1.14.1",
            "threadpoolctl==2.0.0",
        ],
    );
    let (expected, [exec, stat]) = both_in(&broken);
    assert_eq!(
        expected,
        BTreeSet::from([
            ("scikit-learn".into(), "joblib".into(), None),
            (
                "scikit-learn".into(),
                "threadpoolctl".into(),
                Some("2.0.0".into())
            ),
        ]),
        "pip check"
    );
    assert_eq!(exec, expected, "by exec");
    assert_eq!(stat, expected, "statically");
    // A consistent image: nothing, as pip check says.
    let (expected, [exec, stat]) = both_in(&crate::docker::fixture("dist-packages"));
    assert!(expected.is_empty(), "{expected:?}");
    assert!(exec.is_empty() && stat.is_empty(), "{exec:?} {stat:?}");
}
