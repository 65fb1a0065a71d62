//! `envlock diff` through the CLI: every renderer pinned on a fixture pair that triggers
//! every finding code (with `models.lock` for the model files' own), the gate's exit codes, the policy, and bad operands.

use crate::support::*;

fn diff(args: &[&str]) -> Run {
    run(envlock()
        .arg("diff")
        .args(args)
        .current_dir(root().join("fixtures/locks")))
}

fn fixture_pair(format: &str) -> Run {
    diff(&[
        "baseline.lock",
        "target.lock",
        "--config",
        "policy.toml",
        "--format",
        format,
    ])
}

#[test]
fn every_renderer_on_every_code() {
    for format in ["human", "json", "markdown", "junit"] {
        let run = fixture_pair(format);
        assert_eq!(run.code, 1, "{}", run.stderr);
        insta::assert_snapshot!(format!("diff_{format}"), run.stdout);
    }
}

#[test]
fn json_report_follows_the_contract() {
    let run = fixture_pair("json");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["baseline"], "baseline.lock");
    assert_eq!(report["target"], "target.lock");
    let findings = report["findings"].as_array().unwrap();
    // What model files say has its own target (`models.lock`, the baseline with a model
    // file's facts), so the pair's transcripts in the docs stay about everything else.
    let models = diff(&["baseline.lock", "models.lock", "--format", "json"]);
    assert_eq!(models.code, 1, "{}", models.stderr);
    let models: serde_json::Value = serde_json::from_str(&models.stdout).unwrap();
    let codes: std::collections::BTreeSet<&str> = findings
        .iter()
        .chain(models["findings"].as_array().unwrap())
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // `golden-skipped` needs a target in no engine (tests/it/sources.rs); `cuda-driver` and
    // `gpu-arch` a deploy target, `gpu-library` CUDA libraries (tests/it/cuda.rs).
    let elsewhere = [
        envlock::Code::GoldenSkipped,
        envlock::Code::CudaDriver,
        envlock::Code::GpuArch,
        envlock::Code::GpuLibrary,
    ];
    for code in envlock::Code::all().filter(|code| !elsewhere.contains(code)) {
        assert!(codes.contains(code.as_str()), "{}", code.as_str());
    }
    let numpy = findings
        .iter()
        .find(|f| f["subject"] == "numpy" && f["code"] == "package-files")
        .unwrap();
    assert_eq!(numpy["layer"]["index"], 1);
    assert_eq!(
        numpy["layer"]["created-by"],
        "RUN /bin/sh -c uv pip install --system -r requirements.txt # buildkit"
    );
    let golden = report["golden"].as_array().unwrap();
    assert_eq!(golden[0]["name"], "salary-by-years");
    // Its suspects in the documented order: the models, the native code behind the numbers,
    // the packages that do the math, thread variables, the Python version, the rest.
    let suspects: Vec<String> = golden[0]["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["code"].as_str().unwrap(),
                s["subject"].as_str().unwrap()
            )
        })
        .collect();
    let at = |suspect: &str| {
        suspects
            .iter()
            .position(|s| s == suspect)
            .unwrap_or_else(|| panic!("{suspect} not in {suspects:?}"))
    };
    assert!(at("model-hash model/") < at("numerics-kernel matmul-f64"));
    assert!(at("numerics-kernel matmul-f64") < at("package-version scikit-learn"));
    assert!(at("package-version scikit-learn") < at("env-var OMP_NUM_THREADS"));
    assert!(at("env-var OMP_NUM_THREADS") < at("python-version python"));
    assert!(at("python-version python") < at("platform-os os"));
    // Consequences are not suspects: their cause is.
    assert!(!suspects.iter().any(|s| s.starts_with("package-files")));
    assert_eq!(golden[0]["status"], "mismatch");
    assert_eq!(golden[0]["out-of-tolerance"], 6);
    assert_eq!(golden[1]["status"], "error");
    let scikit = findings
        .iter()
        .find(|f| f["subject"] == "scikit-learn")
        .unwrap();
    assert_eq!(scikit["code"], "package-version");
    assert_eq!(scikit["severity"], "error");
    assert_eq!(scikit["baseline"], "1.5.2");
    assert_eq!(scikit["target"], "1.6.0");
    assert_eq!(scikit["change"], "minor");
    assert_eq!(scikit["direction"], "upgrade");
    let count = |severity: &str| {
        findings
            .iter()
            .filter(|f| f["severity"] == severity)
            .count()
    };
    assert_eq!(report["summary"]["error"], count("error"));
    assert_eq!(report["summary"]["warning"], count("warning"));
    assert_eq!(report["summary"]["info"], count("info"));
}

#[test]
fn policy_overrides_ignores_and_reports_unused_ignores() {
    let run = fixture_pair("json");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let find = |code: &str, subject: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code && f["subject"] == subject)
    };
    // torch* is "any change is an error"; its default (a local-label build) is a warning.
    assert_eq!(find("package-build", "torch").unwrap()["severity"], "error");
    assert_eq!(
        find("image-config", "entrypoint").unwrap()["severity"],
        "warning"
    );
    assert!(
        find("package-files", "pandas").is_none(),
        "ignored with a reason"
    );
    assert!(find("package-files", "numpy").is_some());
    let unused = findings
        .iter()
        .find(|f| f["code"] == "policy-unused")
        .unwrap();
    assert!(unused["message"]
        .as_str()
        .unwrap()
        .contains("build tooling"));
}

#[test]
fn gate_exit_codes() {
    let same = diff(&["baseline.lock", "baseline.lock"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("no drift"));
    assert!(same.stdout.contains("PASS: 0 errors, 0 warnings, 0 info"));

    // Without the policy's ignores: errors fail the default gate; --fail-on raises and lowers it.
    let errors = diff(&["baseline.lock", "target.lock"]);
    assert_eq!(errors.code, 1);
    assert!(errors.stdout.contains("FAIL: "), "{}", errors.stdout);

    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(root().join("fixtures/locks/baseline.lock")).unwrap();
    let only_env = base.replace("OMP_NUM_THREADS = \"4\"", "OMP_NUM_THREADS = \"8\"");
    std::fs::write(dir.path().join("env.lock"), only_env).unwrap();
    let env_lock = dir.path().join("env.lock");
    let env_lock = env_lock.to_str().unwrap();
    assert_eq!(
        diff(&["baseline.lock", env_lock]).code,
        0,
        "a warning passes the default gate"
    );
    assert_eq!(
        diff(&["baseline.lock", env_lock, "--fail-on", "warning"]).code,
        1
    );
    assert_eq!(
        diff(&["baseline.lock", env_lock, "--fail-on", "info"]).code,
        1
    );
}

#[test]
fn bad_operands_and_locks_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let newer = write(
        "newer.lock",
        "[envlock]\nschema = 2\ncreated-by = \"envlock 9\"\n",
    );
    let run = diff(&[&newer, "baseline.lock"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("has schema 2; this envlock reads schema 1 at most"),
        "{}",
        run.stderr
    );

    let corrupt = write(
        "corrupt.lock",
        "[envlock]\nschema = 1\n[[packages]\nname = \"x\"\n",
    );
    let run = diff(&["baseline.lock", &corrupt]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid lock") && run.stderr.contains("line 3"),
        "{}",
        run.stderr
    );

    let run = diff(&["baseline.lock", "no-such-file.lock"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("lock file `no-such-file.lock` not found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("read as a lock when the file exists"),
        "{}",
        run.stderr
    );

    let run = diff(&["baseline.lock", "python:/no/such/python"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("interpreter `/no/such/python` not found"),
        "{}",
        run.stderr
    );

    let run = diff(&["baseline.lock", "baseline.lock", "--fail-on", "fatal"]);
    assert_eq!(run.code, 2, "clap rejects an unknown gate");
}

#[test]
fn invalid_policy_is_refused_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("envlock.toml");
    let cases = [
        (
            "[policy]\nseverity = { package-added = \"info\" }\n[[policy.ignore]]\ncodes = [\"libc\"]\n",
            ["missing field `reason`", "line 3"],
        ),
        (
            "[policy.severity]\npackage-addded = \"info\"\n",
            ["unknown variant `package-addded`", "line 2"],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, text).unwrap();
        let config = config.to_str().unwrap();
        let run = diff(&["baseline.lock", "target.lock", "--config", config]);
        assert_eq!(run.code, 2);
        for part in expected {
            assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
        }
    }
}

#[test]
fn live_python_against_its_own_lock_has_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("dev.lock");
    let python = system_python().to_str().unwrap();
    let made = run(envlock()
        .args(["snapshot", "--python", python, "-o"])
        .arg(&lock));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = run(envlock()
        .arg("diff")
        .arg(&lock)
        .arg(format!("python:{python}"))
        .current_dir(dir.path()));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no drift"), "{}", run.stdout);
}

#[test]
fn report_schema_file_is_up_to_date() {
    assert_schema_current(
        "envlock.report.schema.json",
        &envlock::report::json_schema(),
    );
}

#[test]
fn colour_follows_the_color_flag() {
    let styled = |args: &[&str]| {
        let mut command = envlock();
        command.env_remove("NO_COLOR").args(args);
        run(command.current_dir(root().join("fixtures/locks")))
    };
    let pair = ["diff", "baseline.lock", "target.lock"];
    let always = styled(&[&["--color", "always"][..], &pair].concat());
    assert!(always.stdout.contains("\x1b["), "{}", always.stdout);
    let never = styled(&[&["--color", "never"][..], &pair].concat());
    assert!(!never.stdout.contains('\x1b'), "{}", never.stdout);
    // Not a terminal: no colour unless asked for.
    let piped = styled(&pair);
    assert!(!piped.stdout.contains('\x1b'), "{}", piped.stdout);
    assert_eq!(piped.stdout, never.stdout);
}
