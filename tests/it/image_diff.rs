//! `envlock diff` against the real engine: lock↔lock, lock↔image and image↔image on fixture
//! images that differ in exactly five known ways, and identical content that gives nothing.

use std::collections::BTreeSet;

use crate::docker::{fixture, need_engine, rebuilt};
use crate::support::*;

/// The (code, subject) pairs diff-a -> diff-b must give: exactly these.
fn expected() -> BTreeSet<(String, String)> {
    [
        ("package-version", "typing-extensions"),
        ("package-missing", "six"),
        ("package-added", "packaging"),
        ("model-hash", "model"),
        ("env-var", "OMP_NUM_THREADS"),
    ]
    .into_iter()
    .map(|(code, subject)| (code.to_string(), subject.to_string()))
    .collect()
}

/// Runs `envlock diff` (with `extra` flags) in a folder whose envlock.toml names the model.
fn diff_json(
    dir: &std::path::Path,
    baseline: &str,
    target: &str,
    extra: &[&str],
) -> (i32, BTreeSet<(String, String)>, serde_json::Value) {
    std::fs::write(dir.join("envlock.toml"), "models = [\"model\"]\n").unwrap();
    let run = run(envlock()
        .args(["diff", baseline, target, "--format", "json"])
        .args(extra)
        .current_dir(dir));
    assert!(
        run.code == 0 || run.code == 1,
        "diff could not run:\n{}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let pairs = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (run.code, pairs, report)
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_to_image_gives_exactly_the_known_differences() {
    need_engine();
    let (a, b) = (fixture("diff-a"), fixture("diff-b"));
    let dir = tempfile::tempdir().unwrap();
    let (code, pairs, report) = diff_json(dir.path(), &a, &b, &[]);
    assert_eq!(pairs, expected(), "{report:#}");
    assert_eq!(code, 1, "a removed package and a minor bump are errors");
    let bump = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "package-version")
        .unwrap();
    assert_eq!(
        (bump["change"].as_str(), bump["direction"].as_str()),
        (Some("minor"), Some("upgrade"))
    );
    let model = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "model-hash")
        .unwrap();
    assert!(
        model["message"]
            .as_str()
            .unwrap()
            .contains("weights.json changed"),
        "{model}"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn lock_to_image_and_lock_to_lock_agree() {
    need_engine();
    let (a, b) = (fixture("diff-a"), fixture("diff-b"));
    let dir = tempfile::tempdir().unwrap();
    for (image, name) in [(&a, "a.lock"), (&b, "b.lock")] {
        let made = run(envlock()
            .args(["snapshot", "--image", image, "--model", "model", "-o", name])
            .current_dir(dir.path()));
        assert_eq!(made.code, 0, "{}", made.stderr);
    }
    // lock -> image: the baseline's model is hashed in the image without being told.
    let (_, pairs, _) = diff_json(dir.path(), "a.lock", &b, &[]);
    assert_eq!(pairs, expected());
    let (_, pairs, _) = diff_json(dir.path(), "a.lock", "b.lock", &[]);
    assert_eq!(pairs, expected());
    // Static capture of the target finds the same drift.
    let (_, pairs, report) = diff_json(dir.path(), "a.lock", &b, &["--no-exec"]);
    // Static capture knows no interpreter markers, but the package set and the rest agree.
    assert_eq!(pairs, expected(), "{report:#}");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn identical_content_gives_no_finding() {
    need_engine();
    let (a, again) = (fixture("diff-a"), rebuilt("diff-a"));
    let dir = tempfile::tempdir().unwrap();
    let (code, pairs, report) = diff_json(dir.path(), &a, &again, &[]);
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert!(pairs.is_empty());
    assert_eq!(code, 0);
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn an_operand_that_is_neither_a_file_nor_an_image() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let run = run(envlock()
        .args([
            "diff",
            "envlock-test/never-built:v0",
            "envlock-test/never-built:v1",
        ])
        .current_dir(dir.path()));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("`envlock-test/never-built:v0` is not a lock file, and no image"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("as an image reference in the local engine"),
        "{}",
        run.stderr
    );
}
