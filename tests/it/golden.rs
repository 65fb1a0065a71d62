//! Golden predictions: recorded in the dev runtime, run in the target (a live interpreter or
//! an image), compared with tolerance.

use std::path::Path;

use crate::docker::{containers_of, model_image, need_engine};
use crate::support::*;

fn salary_folder() -> std::path::PathBuf {
    root().join("fixtures/models/salary")
}

/// A dev snapshot of the salary model with the ML venv (which has its numpy).
fn salary_dev_lock(dir: &Path) -> std::path::PathBuf {
    let lock = dir.join("dev.lock");
    ml_snapshot(&salary_folder(), &lock, &[]);
    lock
}

fn report(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

fn diff_json(lock: &Path, target: &str, folder: &Path) -> (Run, serde_json::Value) {
    let run = run(envlock()
        .args(["diff", "--format", "json"])
        .arg(lock)
        .arg(target)
        .current_dir(folder));
    let json = report(&run);
    (run, json)
}

fn golden_findings(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"].as_str().unwrap().starts_with("golden-"))
        .collect()
}

/// Rewrites the salary model with its coefficients scaled by `factor` (a re-export).
fn scale_model(context: &Path, factor: f64) {
    let path = context.join("model/model.json");
    let mut model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let coef = model["coef"][0].as_f64().unwrap() * factor;
    model["coef"][0] = serde_json::json!(coef);
    std::fs::write(&path, serde_json::to_string_pretty(&model).unwrap()).unwrap();
}

#[test]
fn dev_snapshot_records_outputs_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let lock = envlock::lock::read_lock(&salary_dev_lock(dir.path())).unwrap();
    let case = &lock.golden[0];
    assert_eq!(case.spec.name, "salary-by-years");
    assert_eq!(case.deterministic, Some(true), "runs = 2 in envlock.toml");
    assert_eq!(case.output.split_whitespace().count(), 6);
    assert!(case.input_text.as_deref().unwrap().starts_with("1.5 3 5"));
    assert!(case.input_sha256.starts_with("sha256:"));
    // The live interpreter against its own lock: the case passes with zero error.
    let (run, json) = diff_json(
        &dir.path().join("dev.lock"),
        &format!("python:{}", ml_venv().display()),
        &salary_folder(),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(json["golden"][0]["status"], "pass");
    assert_eq!(json["golden"][0]["values"], 6);
    assert_eq!(json["golden"][0]["max-abs-error"], 0.0);
}

#[test]
fn a_failing_baseline_case_is_an_error_with_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[[golden]]\nname = \"broken\"\ncommand = [\"python3\", \"-c\", \"import sys; sys.exit(4)\"]\ninput = \"in.txt\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("in.txt"), "1").unwrap();
    let run = run(envlock()
        .args(["snapshot", "-o", "dev.lock", "--python"])
        .arg(system_python())
        .current_dir(dir.path()));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("golden case `broken` failed in the baseline runtime"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exited with 4"), "{}", run.stderr);
    assert!(!dir.path().join("dev.lock").exists());
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn clean_image_passes_and_a_drifted_one_fails_with_statistics() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let lock = salary_dev_lock(dir.path());

    let clean = model_image("salary", "clean", |_| {});
    let (_, json) = diff_json(&lock, &clean, &salary_folder());
    assert!(golden_findings(&json).is_empty(), "{json:#}");
    assert_eq!(json["golden"][0]["status"], "pass");
    assert!(!json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "model-hash"));

    // Re-exported with coefficients 0.1% off: far beyond rtol 1e-6.
    let drifted = model_image("salary", "drifted", |context| scale_model(context, 1.001));
    let (run, json) = diff_json(&lock, &drifted, &salary_folder());
    assert_eq!(run.code, 1);
    let findings = golden_findings(&json);
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["code"], "golden-mismatch");
    assert_eq!(findings[0]["subject"], "salary-by-years");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(
        message.contains("6 of 6 values out of tolerance"),
        "{message}"
    );
    assert!(
        message.contains("worst at /5"),
        "the 20-year input moves most: {message}"
    );
    let result = &json["golden"][0];
    assert_eq!(result["status"], "mismatch");
    let max_rel = result["max-rel-error"].as_f64().unwrap();
    assert!(max_rel > 5e-4 && max_rel < 1e-3, "{max_rel}");
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "model-hash"));

    // Re-exported with a rounding-level change: within tolerance, still measured.
    let nudged = model_image("salary", "nudged", |context| {
        scale_model(context, 1.0 + 1e-9)
    });
    let (_, json) = diff_json(&lock, &nudged, &salary_folder());
    assert!(golden_findings(&json).is_empty(), "{json:#}");
    assert_eq!(json["golden"][0]["status"], "pass");
    assert!(json["golden"][0]["max-abs-error"].as_f64().unwrap() > 0.0);
    for image in [clean, drifted, nudged] {
        assert!(containers_of(&image).is_empty(), "containers left behind");
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn failing_commands_are_golden_errors_and_leave_no_container() {
    need_engine();
    let image = model_image("salary", "errors", |_| {});
    let dir = tempfile::tempdir().unwrap();
    let lock = salary_dev_lock(dir.path());
    let case = |name: &str, command: &str, timeout: f64| {
        format!(
            "\n[[golden]]\nname = \"{name}\"\ncommand = {command}\ninput = \"in.txt\"\nformat = \"numbers\"\n\
             timeout = {timeout:?}\ninput-sha256 = \"sha256:00\"\ninput-text = \"1\"\noutput = \"1.0\"\n"
        )
    };
    let mut text = std::fs::read_to_string(&lock).unwrap();
    text.push_str(&case(
        "exits",
        r#"["python3", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]"#,
        30.0,
    ));
    text.push_str(&case("hangs", r#"["sleep", "600"]"#, 2.0));
    text.push_str(&case(
        "garbage",
        r#"["python3", "-c", "print('not a number')"]"#,
        30.0,
    ));
    text.push_str(&case("missing", r#"["no-such-program"]"#, 30.0));
    std::fs::write(&lock, text).unwrap();

    let (run, json) = diff_json(&lock, &image, &salary_folder());
    assert_eq!(run.code, 1);
    let errors: Vec<(&str, &str)> = golden_findings(&json)
        .iter()
        .map(|f| {
            (
                f["subject"].as_str().unwrap(),
                f["message"].as_str().unwrap(),
            )
        })
        .collect();
    let message = |name: &str| {
        errors
            .iter()
            .find(|(subject, _)| *subject == name)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("no finding for {name}: {errors:?}"))
    };
    assert!(
        message("exits").contains("exited with 3") && message("exits").contains("boom"),
        "{errors:?}"
    );
    assert!(message("hangs").contains("timed out after 2"), "{errors:?}");
    assert!(
        message("garbage").contains("not whitespace-separated numbers")
            && message("garbage").contains("not a number"),
        "{errors:?}"
    );
    assert!(
        message("missing").contains("not found in the image"),
        "{errors:?}"
    );
    for (name, _) in &errors {
        let finding = golden_findings(&json)
            .into_iter()
            .find(|f| f["subject"] == *name)
            .unwrap();
        assert_eq!(finding["code"], "golden-error");
    }
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn http_model_in_an_image() {
    need_engine();
    let folder = root().join("fixtures/models/iris-server");
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("dev.lock");
    // The dev side starts serve.py locally on port 5000, as envlock.toml says.
    ml_snapshot(&folder, &lock, &[]);
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    assert_eq!(recorded.golden.len(), 2);
    assert!(
        recorded.golden[0].output.contains("\"label\": \"setosa\""),
        "{}",
        recorded.golden[0].output
    );

    let image = model_image("iris-server", "clean", |_| {});
    let (_, json) = diff_json(&lock, &image, &folder);
    assert!(golden_findings(&json).is_empty(), "{json:#}");
    assert_eq!(json["golden"].as_array().unwrap().len(), 2);
    assert!(json["golden"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "pass"));

    // A server that never opens the port the case names: a golden-error after the timeout.
    let mut text = std::fs::read_to_string(&lock).unwrap();
    text = text
        .replace("port = 5000", "port = 5999")
        .replace("timeout = 30.0", "timeout = 3.0");
    std::fs::write(&lock, text).unwrap();
    let (run, json) = diff_json(&lock, &image, &folder);
    assert_eq!(run.code, 1);
    let findings = golden_findings(&json);
    assert_eq!(findings.len(), 2, "{json:#}");
    for finding in findings {
        assert_eq!(finding["code"], "golden-error");
        assert!(
            finding["message"]
                .as_str()
                .unwrap()
                .contains("did not answer before the timeout"),
            "{finding}"
        );
    }
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[test]
fn a_binary_input_is_saved_beside_the_lock() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("envlock.toml"),
        "[[golden]]\nname = \"size\"\ncommand = [\"python3\", \"-c\", \
         \"import sys; print(len(open(sys.argv[1], 'rb').read()))\", \"{input}\"]\n\
         input = \"blob.bin\"\nformat = \"numbers\"\n",
    )
    .unwrap();
    std::fs::write(project.path().join("blob.bin"), [0xffu8, 0x00, 0xfe, 0x10]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let lock = out.path().join("dev.lock");
    let python = system_python().to_str().unwrap();
    let made = run(envlock()
        .args(["snapshot", "--python", python, "-o"])
        .arg(&lock)
        .current_dir(project.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    let case = &recorded.golden[0];
    assert_eq!(case.input_text, None, "not text: not inside the lock");
    assert_eq!(
        case.input_file.as_deref(),
        Some("dev.lock.inputs/size-blob.bin")
    );
    assert_eq!(case.output.trim(), "4");
    assert_eq!(
        std::fs::read(out.path().join("dev.lock.inputs/size-blob.bin")).unwrap(),
        [0xff, 0x00, 0xfe, 0x10]
    );

    // Only the copy beside the lock is left; diff runs from elsewhere, without the config.
    std::fs::remove_file(project.path().join("blob.bin")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let run = run(envlock()
        .args(["diff", "--format", "json"])
        .arg(&lock)
        .arg(format!("python:{python}"))
        .current_dir(elsewhere.path()));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = report(&run);
    assert_eq!(json["golden"][0]["status"], "pass", "{json:#}");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn golden_cases_asking_for_gpus_run_on_cpu_where_the_engine_has_none() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let lock = salary_dev_lock(dir.path());
    let image = model_image("salary", "clean", |_| {});
    // The salary project, asking for the engine's GPUs; this engine has none.
    let project = dir.path().join("project");
    copy_tree(&salary_folder(), &project);
    let config = project.join("envlock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[deploy]\ngpus = \"all\"\n");
    std::fs::write(&config, text).unwrap();
    let (ran, json) = diff_json(&lock, &image, &project);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(json["golden"][0]["status"], "pass", "{json:#}");
    // The engine took the request as a GPU request (its refusal names the capability
    // asked for) and the report says where the cases ran.
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("the engine has no GPUs to give")
            && notes.contains("[[gpu]]")
            && notes.contains("ran on CPU"),
        "{notes}"
    );
    assert!(containers_of(&image).is_empty());
    // A request that is none is exit 2, named.
    std::fs::write(&config, "[deploy]\ngpus = \"some\"\n").unwrap();
    let refused = run(envlock()
        .args(["diff", "--no-golden"])
        .arg(&lock)
        .arg(&image)
        .current_dir(&project));
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("`some` is not a GPU request"),
        "{}",
        refused.stderr
    );
}
