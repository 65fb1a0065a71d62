//! Every rendered JSON report and every lock validates against the schemas envlock ships
//! (`schemas/`), checked with a real JSON Schema validator, including the golden errors
//! JSON cannot spell (NaN, infinities, an error relative to a zero).

use crate::docker::{fixture, need_engine};
use crate::support::*;

pub fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas").join(name)).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

pub fn assert_valid(validator: &jsonschema::Validator, instance: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

/// A lock (TOML) as the JSON the lock schema describes.
fn lock_json(text: &str) -> serde_json::Value {
    serde_json::to_value(text.parse::<toml::Table>().unwrap()).unwrap()
}

#[test]
fn reports_validate_with_non_finite_and_zero_expected_errors() {
    let reports = schema("envlock.report.schema.json");
    let fixtures = root().join("fixtures/locks");
    let dir = tempfile::tempdir().unwrap();
    let baseline = std::fs::read_to_string(fixtures.join("baseline.lock")).unwrap();
    let target = std::fs::read_to_string(fixtures.join("target.lock")).unwrap();
    // A zero against a non-zero (infinite relative error), infinities and NaN.
    let baseline = baseline.replace(
        "output = \"37952.67 52794.41 72583.41 97319.66 122055.90 221000.89\\n\"",
        "output = \"0.0 nan inf 2.5 -inf 1\\n\"",
    );
    let target = target.replace(
        "output = \"37241.36 52368.03 72536.92 97748.03 122959.15 223803.60\\n\"",
        "output = \"0.5 nan 1.0 2.5 -inf 1\\n\"",
    );
    std::fs::write(dir.path().join("baseline.lock"), baseline).unwrap();
    std::fs::write(dir.path().join("target.lock"), target).unwrap();
    for (folder, baseline, target) in [
        (fixtures.as_path(), "baseline.lock", "target.lock"),
        (dir.path(), "baseline.lock", "target.lock"),
        (fixtures.as_path(), "baseline.lock", "baseline.lock"),
    ] {
        let run = run(envlock()
            .args(["diff", baseline, target, "--format", "json"])
            .current_dir(folder));
        assert!(run.code <= 1, "{}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_valid(
            &reports,
            &report,
            &format!("{} {baseline} {target}", folder.display()),
        );
        if folder == dir.path() {
            let case = &report["golden"][0];
            assert_eq!(case["status"], "mismatch", "{case}");
            assert!(case["max-rel-error"].is_null(), "{case}");
            assert!(case["max-abs-error"].is_null(), "{case}");
        }
    }
}

#[test]
fn locks_validate() {
    let locks = schema("envlock.lock.schema.json");
    for name in ["baseline.lock", "target.lock"] {
        let text = std::fs::read_to_string(root().join("fixtures/locks").join(name)).unwrap();
        assert_valid(&locks, &lock_json(&text), name);
    }
    let dev = run(envlock().args(["snapshot", "--python"]).arg(ml_venv()));
    assert_eq!(dev.code, 0, "{}", dev.stderr);
    assert_valid(&locks, &lock_json(&dev.stdout), "a dev snapshot");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_locks_validate() {
    need_engine();
    let locks = schema("envlock.lock.schema.json");
    let image = fixture("dist-packages");
    for mode in [&[][..], &["--no-exec"][..], &["--layers"][..]] {
        let captured = run(envlock()
            .args(["snapshot", "--image", &image, "--model", "model"])
            .args(mode));
        assert_eq!(captured.code, 0, "{}", captured.stderr);
        assert_valid(
            &locks,
            &lock_json(&captured.stdout),
            &format!("an image {mode:?}"),
        );
    }
}
