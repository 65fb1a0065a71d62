//! Latency budgets of golden cases: measured in the dev runtime and in the target, judged
//! at a percentile against a budget and against the baseline. The margins are wide (a
//! delay ten times the budget, budgets far above the fixtures' real latency): no test
//! asserts the machine's own speed.

use std::path::{Path, PathBuf};

use crate::docker::{containers_of, model_image, need_engine, private_copy};
use crate::support::*;

/// A copy of the model fixture `name` whose `envlock.toml` is `config`.
fn project(name: &str, config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = root().join("fixtures/models").join(name);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", source.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(dir.path().join("envlock.toml"), config).unwrap();
    dir
}

/// The iris classifier's one case, served on `port`, with `latency`.
fn iris_config(port: u16, latency: &str) -> String {
    format!(
        "[[golden]]\nname = \"setosa\"\ncommand = [\"python3\", \"serve.py\"]\n\
         http = {{ port = {port}, path = \"/predict\" }}\ninput = \"golden/setosa.json\"\n\
         timeout = 30\nlatency = {latency}\n"
    )
}

/// `envlock snapshot` of `folder` with the ML venv and `env`; the lock's path and the run.
fn dev_snapshot(folder: &Path, env: &[(&str, &str)]) -> (PathBuf, Run) {
    let lock = folder.join("dev.lock");
    let made = ml_snapshot(folder, &lock, env);
    (lock, made)
}

fn diff(
    lock: &Path,
    target: &str,
    folder: &Path,
    env: &[(&str, &str)],
) -> (Run, serde_json::Value) {
    let mut command = envlock();
    command
        .args(["diff", "--format", "json"])
        .arg(lock)
        .arg(target)
        .current_dir(folder);
    for (key, value) in env {
        command.env(key, value);
    }
    let run = run(&mut command);
    let json = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run, json)
}

fn latency_findings(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "golden-latency")
        .collect()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_slow_image_fails_the_budget_and_a_clean_one_passes() {
    need_engine();
    // Its own port: other tests serve the classifier on 5000 at the same time.
    let port = "5101";
    let latency = "{ budget-ms = 200, percentile = 95, runs = 5, warmup = 1 }";
    let dir = project("iris-server", &iris_config(5101, latency));
    let (lock, _) = dev_snapshot(dir.path(), &[("PORT", port)]);
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    let measured = recorded.golden[0].measured_latency.as_ref().unwrap();
    assert_eq!(measured.runs, 5);
    assert!(measured.p50_ms <= measured.at_percentile_ms);
    assert!(measured.at_percentile_ms <= measured.max_ms);

    let port_line = format!("\nENV PORT={port}\n");
    let clean = model_image("iris-server", "port-5101", |context| {
        append(&context.join("Dockerfile"), &port_line)
    });
    // The dev venv and the image differ in other ways (other packages, another Python
    // patch release): only the golden findings are this test's.
    let (_, json) = diff(&lock, &clean, dir.path(), &[]);
    assert!(latency_findings(&json).is_empty(), "{json:#}");
    let case = &json["golden"][0];
    assert_eq!(case["status"], "pass");
    assert_eq!(case["latency"]["status"], "pass", "{case:#}");
    assert_eq!(case["latency"]["target"]["runs"], 5);
    assert_eq!(case["latency"]["baseline"]["runs"], 5);
    assert_eq!(case["latency"]["budget-ms"], 200.0);

    // The drifted image answers every request 2 s late: ten times the budget.
    let slow = model_image("iris-server", "slow-5101", |context| {
        append(
            &context.join("Dockerfile"),
            &format!("{port_line}ENV DELAY_MS=2000\n"),
        )
    });
    let (run, json) = diff(&lock, &slow, dir.path(), &[]);
    assert_eq!(run.code, 1, "{json:#}");
    let case = &json["golden"][0];
    assert_eq!(case["status"], "pass", "the predictions are still right");
    assert_eq!(case["latency"]["status"], "over-budget");
    assert!(
        case["latency"]["target"]["at-percentile-ms"]
            .as_f64()
            .unwrap()
            >= 2000.0
    );
    let findings = latency_findings(&json);
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["severity"], "error");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("is over the budget of 200 ms"),
        "{}",
        findings[0]
    );

    // Without a budget, `regression` judges against the baseline's own latency.
    let dir = project(
        "iris-server",
        &iris_config(5101, "{ regression = 3, runs = 3, warmup = 1 }"),
    );
    let (lock, _) = dev_snapshot(dir.path(), &[("PORT", port)]);
    let (run, json) = diff(&lock, &slow, dir.path(), &[]);
    assert_eq!(run.code, 1, "{json:#}");
    assert_eq!(json["golden"][0]["latency"]["status"], "regression");
    assert!(latency_findings(&json)[0]["message"]
        .as_str()
        .unwrap()
        .contains("× the baseline's"));
    for image in [&clean, &slow] {
        assert!(containers_of(image).is_empty(), "containers left behind");
    }
}

#[test]
fn a_few_slow_requests_pass_at_p95_but_not_at_p99() {
    // Every 20th request waits 1.5 s: the 20th of the 22 requests (1 for the output, 1
    // warm-up, 20 timed) is the one slow timed request.
    let noisy = [("PORT", "5102"), ("SLOW_EVERY", "20"), ("SLOW_MS", "1500")];
    let at_p95 = "{ budget-ms = 500, percentile = 95, runs = 20, warmup = 1 }";
    let dir = project("iris-server", &iris_config(5102, at_p95));
    let (lock, made) = dev_snapshot(dir.path(), &noisy);
    assert!(!made.stderr.contains("over its budget"), "{}", made.stderr);
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    let measured = recorded.golden[0].measured_latency.as_ref().unwrap();
    assert_eq!(measured.runs, 20);
    assert!(measured.max_ms >= 1500.0, "{measured:?}");
    assert!(measured.at_percentile_ms < 500.0, "{measured:?}");
    let python = format!("python:{}", ml_venv().display());
    let (run, json) = diff(&lock, &python, dir.path(), &noisy);
    assert_eq!(run.code, 0, "{json:#}");
    assert_eq!(json["golden"][0]["latency"]["status"], "pass");

    // At p99 of twenty the slow request counts: the dev side warns, the gate fails.
    let at_p99 = at_p95.replace("percentile = 95", "percentile = 99");
    let dir = project("iris-server", &iris_config(5102, &at_p99));
    let (lock, made) = dev_snapshot(dir.path(), &noisy);
    assert!(
        made.stderr.contains("p99 latency") && made.stderr.contains("already over its budget"),
        "{}",
        made.stderr
    );
    let (run, json) = diff(&lock, &python, dir.path(), &noisy);
    assert_eq!(run.code, 1, "{json:#}");
    assert_eq!(json["golden"][0]["latency"]["status"], "over-budget");
}

#[test]
fn command_cases_are_timed_whole_locally() {
    // Locally: a command that sleeps 0.3 s against a 30 ms budget.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[[golden]]\nname = \"sleepy\"\n\
         command = [\"python3\", \"-c\", \"import time; time.sleep(0.3); print(1)\"]\n\
         input = \"in.txt\"\nformat = \"numbers\"\n\
         latency = { budget-ms = 30, runs = 2, warmup = 0 }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("in.txt"), "1").unwrap();
    let (lock, made) = dev_snapshot(dir.path(), &[]);
    assert!(
        made.stderr.contains("already over its budget"),
        "{}",
        made.stderr
    );
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    assert!(recorded.golden[0].measured_latency.as_ref().unwrap().p50_ms >= 300.0);
    let python = format!("python:{}", ml_venv().display());
    let (run, json) = diff(&lock, &python, dir.path(), &[]);
    assert_eq!(run.code, 1, "{json:#}");
    assert_eq!(latency_findings(&json).len(), 1);
}

/// In an image: the salary model's command, timed inside the container.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn command_cases_are_timed_whole_in_an_image() {
    need_engine();
    let config = std::fs::read_to_string(root().join("fixtures/models/salary/envlock.toml"))
        .unwrap()
        .replace(
            "runs = 2",
            "runs = 2\nlatency = { budget-ms = 60000, runs = 3, warmup = 1 }",
        );
    assert!(config.contains("latency"), "the salary config changed");
    let dir = project("salary", &config);
    let (lock, _) = dev_snapshot(dir.path(), &[]);
    // A copy of its own: other tests run the clean image while this one looks for leftovers.
    let image = private_copy(&model_image("salary", "clean", |_| {}), "latency");
    let (_, json) = diff(&lock, &image, dir.path(), &[]);
    assert!(latency_findings(&json).is_empty(), "{json:#}");
    let latency = &json["golden"][0]["latency"];
    assert_eq!(latency["status"], "pass", "{latency:#}");
    assert_eq!(latency["target"]["runs"], 3);
    assert!(latency["target"]["p50-ms"].as_f64().unwrap() > 0.0);
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[test]
fn a_latency_without_a_verdict_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[[golden]]\nname = \"x\"\ncommand = [\"true\"]\ninput = \"in.txt\"\n\
         latency = { runs = 0 }\n",
    )
    .unwrap();
    let run = run(envlock()
        .args(["snapshot", "-o", "dev.lock"])
        .current_dir(dir.path()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 1, column 1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("`latency` needs `budget-ms`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`latency.runs` = 0"), "{}", run.stderr);
    assert!(!dir.path().join("dev.lock").exists());
}

fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}
