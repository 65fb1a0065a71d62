//! Fleet audits against a real registry: a repository's tags listed and narrowed by
//! `--tags`, one audit split into shards and merged back byte for byte, and the GitHub
//! Actions matrix and Kubernetes Indexed Job of `examples/fleet`, parsed and run shard by
//! shard here, as CI and Kubernetes would run them.

use std::path::Path;
use std::process::Command;

use crate::docker::{fixture, need_engine};
use crate::registry::Registry;
use crate::support::{envlock, root, run, Run};

/// A registry with one repository, `ml-model`, holding five version tags and two others, made of
/// fixture images that share their base.
fn fleet() -> Registry {
    let registry = Registry::start(None);
    let (dist, venv) = (fixture("dist-packages"), fixture("venv"));
    let (a, b) = (fixture("diff-a"), fixture("diff-b"));
    // Each image leaves the engine once; a second tag of it is a copy inside the registry.
    let mut first_tag: std::collections::HashMap<&String, String> = Default::default();
    for (image, tag) in [
        (&dist, "v1.0.0"),
        (&venv, "v1.1.0"),
        (&a, "v1.10.0"),
        (&dist, "v1.2.0"),
        (&b, "v2.0.0"),
        (&venv, "latest"),
        (&a, "main-3f2a"),
    ] {
        let name = format!("ml-model:{tag}");
        match first_tag.get(image) {
            Some(first) => registry.tag(first, &name),
            None => registry.push(image, &name),
        };
        first_tag.entry(image).or_insert(name);
    }
    registry
}

fn audit(args: &[&str]) -> Run {
    run(envlock().arg("audit").args(args))
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_repository_s_tags_are_listed_narrowed_sharded_and_merged_byte_for_byte() {
    need_engine();
    let registry = fleet();
    let repository = format!("registry:{}/ml-model", registry.host);
    let whole = audit(&[&repository, "--tags", "v*", "--format", "json"]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert!(
        whole.stderr.contains("5 of 7 tags match `--tags`"),
        "{}",
        whole.stderr
    );
    let matrix: serde_json::Value = serde_json::from_str(&whole.stdout).unwrap();
    let operands: Vec<&str> = matrix["operands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|operand| operand.as_str().unwrap())
        .collect();
    let tags: Vec<&str> = operands
        .iter()
        .map(|operand| operand.rsplit(':').next().unwrap())
        .collect();
    // Version order, not the registry's lexical order (v1.10.0 after v1.2.0).
    assert_eq!(tags, ["v1.0.0", "v1.1.0", "v1.2.0", "v1.10.0", "v2.0.0"]);
    let six = matrix["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == "six")
        .expect("six differs across the tags");
    assert_eq!(six["values"][3], "1.16.0");
    assert!(six["values"][4].is_null());

    // Two globs, and every tag.
    let two = audit(&[
        &repository,
        "--tags",
        "v2.*",
        "--tags",
        "latest",
        "--format",
        "csv",
    ]);
    assert_eq!(two.code, 0, "{}", two.stderr);
    let header = two.stdout.lines().next().unwrap().to_string();
    assert!(
        header.ends_with(&format!("{repository}:v2.0.0,{repository}:latest")),
        "{header}"
    );

    // Three shards, merged, are the unsharded audit, byte for byte; in any file order.
    let dir = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for index in 1..=3 {
        let part = dir.path().join(format!("part-{index}.json"));
        let spec = format!("{index}/3");
        let made = audit(&[
            &repository,
            "--tags",
            "v*",
            "--shard",
            &spec,
            "--format",
            "json",
            "-o",
            part.to_str().unwrap(),
        ]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        assert!(
            made.stderr.contains(&format!("shard {index}/3")),
            "{}",
            made.stderr
        );
        parts.push(part.to_str().unwrap().to_string());
    }
    let mut merge_args = vec!["--merge"];
    merge_args.extend(parts.iter().rev().map(String::as_str));
    merge_args.extend(["--format", "json"]);
    let merged = audit(&merge_args);
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    assert_eq!(merged.stdout, whole.stdout);
    // JOB_COMPLETION_INDEX gives K, from 0.
    let indexed = run(envlock()
        .args([
            "audit",
            &repository,
            "--tags",
            "v*",
            "--shard",
            "/3",
            "--format",
            "json",
        ])
        .env("JOB_COMPLETION_INDEX", "1"));
    assert_eq!(indexed.code, 0, "{}", indexed.stderr);
    assert_eq!(indexed.stdout, std::fs::read_to_string(&parts[1]).unwrap());

    // Bad input: exit 2, naming what is wrong.
    let refused = |args: &[&str], says: &str| {
        let made = audit(args);
        assert_eq!(made.code, 2, "{args:?}: {}", made.stderr);
        assert!(made.stderr.contains(says), "{args:?}: {}", made.stderr);
        assert!(made.stdout.is_empty(), "{args:?}: {}", made.stdout);
    };
    for spec in ["3/2", "0/2", "a/b"] {
        refused(&[&repository, "--shard", spec], &format!("--shard {spec}"));
    }
    let absent = format!("registry:{}/no-such-repo", registry.host);
    refused(&[&absent], "no-such-repo");
    refused(
        &[&repository, "--tags", "v9*"],
        "none of its 7 tags matches",
    );
    refused(
        &[&format!("{repository}:v1.0.0"), "--tags", "v*"],
        "`--tags` narrows",
    );
    // Shards of another audit (other options), a shard twice, one missing, a plain audit.
    let other = dir.path().join("other.json");
    let made = audit(&[
        &repository,
        "--tags",
        "v*",
        "--all",
        "--shard",
        "3/3",
        "--format",
        "json",
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    refused(
        &["--merge", &parts[0], &parts[1], other.to_str().unwrap()],
        "other options",
    );
    refused(
        &["--merge", &parts[0], &parts[1], &parts[0]],
        "both shard 1/3",
    );
    refused(
        &["--merge", &parts[0], &parts[1]],
        "shard 3/3 of this audit is missing",
    );
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, &whole.stdout).unwrap();
    refused(&["--merge", plain.to_str().unwrap()], "run whole");
    refused(&["--merge", &parts[0], "--all"], "cannot be used with");
}

/// The manifests of `examples/fleet`, read by PyYAML: the GitHub Actions matrix's shard
/// numbers and its two `run` commands, and the Indexed Job's completions, argv and mounts.
fn manifests() -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys, yaml
workflow = yaml.safe_load(open(sys.argv[1]))
job = yaml.safe_load(open(sys.argv[2]))
shard = workflow["jobs"]["shard"]
runs = [step["run"] for step in shard["steps"] if "run" in step and "envlock audit" in step["run"]]
merges = [step["run"] for step in workflow["jobs"]["merge"]["steps"] if "run" in step and "--merge" in step["run"]]
spec = job["spec"]
container = spec["template"]["spec"]["containers"][0]
print(json.dumps({
    "matrix": shard["strategy"]["matrix"]["shard"],
    "shard_run": runs[0],
    "merge_run": merges[0],
    "kind": job["kind"],
    "mode": spec["completionMode"],
    "completions": spec["completions"],
    "argv": container["command"] + container["args"],
    "env": {e["name"]: e["value"] for e in container.get("env", [])},
    "mounts": {m["name"]: m["mountPath"] for m in container["volumeMounts"]},
}))
"#;
    let folder = root().join("examples/fleet");
    let output = Command::new(crate::sbom::tools())
        .arg("-c")
        .arg(SCRIPT)
        .arg(folder.join("github-actions.yml"))
        .arg(folder.join("audit-job.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `sh -c COMMAND` in `folder`, with the envlock under test first on PATH.
fn shell(command: &str, folder: &Path, env: &[(&str, &str)]) {
    let binary = Path::new(env!("CARGO_BIN_EXE_envlock"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let made = run(Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(folder)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied()));
    assert_eq!(made.code, 0, "{command}: {}", made.stderr);
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_github_actions_matrix_and_the_indexed_job_run_as_written() {
    need_engine();
    let manifests = manifests();
    let registry = fleet();
    let host = |text: &str| text.replace("registry.example.com", &registry.host);
    let whole = |format: &str| {
        let made = audit(&[
            &format!("registry:{}/ml-model", registry.host),
            "--tags",
            "v*",
            "--format",
            format,
        ]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        made.stdout
    };

    // GitHub Actions: each matrix job's `run`, then the merge job's, into the summary.
    let shards: Vec<u64> = manifests["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shard| shard.as_u64().unwrap())
        .collect();
    let workflow = tempfile::tempdir().unwrap();
    let shard_run = host(manifests["shard_run"].as_str().unwrap());
    assert!(
        shard_run.contains(&format!("/{}", shards.len())),
        "{shard_run}"
    );
    for shard in &shards {
        let command = shard_run.replace("${{ matrix.shard }}", &shard.to_string());
        shell(&command, workflow.path(), &[]);
    }
    let summary = workflow.path().join("summary.md");
    let summary_text = summary.to_str().unwrap();
    shell(
        manifests["merge_run"].as_str().unwrap(),
        workflow.path(),
        &[("GITHUB_STEP_SUMMARY", summary_text)],
    );
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        whole("markdown")
    );

    // The Indexed Job: its argv in each pod, JOB_COMPLETION_INDEX from 0, as Kubernetes
    // expands `$(JOB_COMPLETION_INDEX)`; the results volume is a folder here.
    assert_eq!(manifests["kind"], "Job");
    assert_eq!(manifests["mode"], "Indexed");
    let completions = manifests["completions"].as_u64().unwrap();
    let results = tempfile::tempdir().unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let mount = manifests["mounts"]["results"].as_str().unwrap().to_string();
    let argv: Vec<String> = manifests["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|word| host(word.as_str().unwrap()).replace(&mount, results.path().to_str().unwrap()))
        .collect();
    assert_eq!(argv[0], "envlock");
    assert!(argv.contains(&format!("/{completions}")), "{argv:?}");
    for index in 0..completions {
        let index = index.to_string();
        let words: Vec<String> = argv[1..]
            .iter()
            .map(|word| word.replace("$(JOB_COMPLETION_INDEX)", &index))
            .collect();
        let made = run(envlock()
            .args(&words)
            .env("JOB_COMPLETION_INDEX", &index)
            .env("DOCKER_CONFIG", docker_config.path()));
        assert_eq!(made.code, 0, "{words:?}: {}", made.stderr);
    }
    let mut parts: Vec<String> = std::fs::read_dir(results.path())
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .collect();
    parts.sort();
    assert_eq!(parts.len() as u64, completions);
    let mut merge = vec!["--merge".to_string()];
    merge.extend(parts);
    merge.extend(["--format".into(), "json".into()]);
    let merged = run(envlock().arg("audit").args(&merge));
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    assert_eq!(merged.stdout, whole("json"));
}
