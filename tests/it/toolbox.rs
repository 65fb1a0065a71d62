//! What fits envlock into a CI job and a shell: several reports from one run, completions
//! and the man page.

use std::path::Path;

use crate::support::*;

fn diff_in(folder: &Path, args: &[&str]) -> Run {
    let locks = root().join("fixtures/locks");
    run(envlock()
        .arg("diff")
        .arg(locks.join("baseline.lock"))
        .arg(locks.join("target.lock"))
        .arg("--config")
        .arg(locks.join("policy.toml"))
        .args(args)
        .current_dir(folder))
}

#[test]
fn one_run_writes_every_report_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let both = diff_in(
        dir.path(),
        &[
            "--format",
            "json",
            "--report",
            "junit:envlock.xml",
            "--report",
            "markdown:summary.md",
            "--report",
            "human:human.txt",
        ],
    );
    assert_eq!(both.code, 1, "{}", both.stderr);
    assert!(
        both.stdout.trim_start().starts_with('{'),
        "stdout keeps --format"
    );
    // Each file is what `--format` of the same kind prints.
    for (format, file) in [("junit", "envlock.xml"), ("markdown", "summary.md")] {
        let alone = diff_in(dir.path(), &["--format", format]);
        let written = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(written, alone.stdout, "{format}");
    }
    // A file gets no colour, even when stdout does.
    let coloured = diff_in(
        dir.path(),
        &["--color", "always", "--report", "human:coloured.txt"],
    );
    assert!(coloured.stdout.contains('\u{1b}'), "stdout is coloured");
    let file = std::fs::read_to_string(dir.path().join("coloured.txt")).unwrap();
    assert!(!file.contains('\u{1b}'), "{file}");
    assert!(file.contains("FAIL: "), "{file}");
}

#[test]
fn bad_reports_are_usage_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["--report", "xml:out.xml"],
            "`xml` is not a report format",
        ),
        (vec!["--report", "envlock.xml"], "is not FORMAT:PATH"),
        (vec!["--report", "junit:"], "names no file"),
        (
            vec!["--report", "junit:a.xml", "--report", "markdown:a.xml"],
            "names `a.xml` twice",
        ),
    ] {
        let run = diff_in(dir.path(), &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    // A run that cannot capture its target writes no report at all.
    let run = run(envlock()
        .args(["diff", "--report", "junit:out.xml"])
        .arg(root().join("fixtures/locks/baseline.lock"))
        .arg("no-such-file.lock")
        .current_dir(dir.path()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn completions_and_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F _envlock"),
        ("zsh", "#compdef envlock"),
        ("fish", "complete -c envlock"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = run(envlock().args(["completions", shell]));
        assert_eq!(script.code, 0, "{}", script.stderr);
        assert!(script.stdout.contains(marker), "{shell}: {}", script.stdout);
        assert!(script.stdout.contains("snapshot"), "{shell}");
        assert!(script.stdout.contains("fail-on"), "{shell}");
    }
    let unknown = run(envlock().args(["completions", "tcsh"]));
    assert_eq!(unknown.code, 2);

    let man = run(envlock().arg("man"));
    assert_eq!(man.code, 0, "{}", man.stderr);
    for title in ["envlock", "envlock-snapshot", "envlock-diff"] {
        assert!(
            man.stdout.contains(&format!(".TH {title} 1")),
            "{title}: {}",
            man.stdout
        );
    }
    assert!(
        man.stdout.contains("\\-\\-report"),
        "diff's flags are in it"
    );
}

#[test]
fn export_pins_what_dev_ran_and_pip_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("dev.lock");
    ml_snapshot(dir.path(), &lock, &[]);
    let locked = envlock::lock::read_lock(&lock).unwrap();
    let local = locked
        .packages
        .iter()
        .find(|p| p.name == "envlock-local-wheel")
        .unwrap();
    let hash = local
        .archive_sha256
        .clone()
        .expect("pip records a local wheel's hash");

    let requirements = dir.path().join("requirements.txt");
    let exported = run(envlock()
        .args(["export", "--format", "requirements", "-o"])
        .arg(&requirements)
        .arg(&lock));
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let text = std::fs::read_to_string(&requirements).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), locked.packages.len(), "{text}");
    for package in &locked.packages {
        let pinned = format!("{}=={}", package.name, package.version);
        let direct = format!("{} @ ", package.name);
        assert!(
            lines
                .iter()
                .any(|l| *l == pinned || l.starts_with(&direct) || l.starts_with("-e ")),
            "{} is not in\n{text}",
            package.name
        );
    }
    let editable = format!(
        "-e {}",
        root().join("fixtures/python/editable-pkg").display()
    );
    assert!(lines.contains(&editable.as_str()), "{text}");
    assert!(
        lines.iter().all(|l| !l.contains("--hash")),
        "not every package has a hash: {text}"
    );
    // pip resolves the pins (from PyPI, the local wheel and the editable checkout).
    let pip = ml_venv().parent().unwrap().join("pip");
    let resolved = std::process::Command::new(&pip)
        .args([
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .unwrap();
    assert!(
        resolved.status.success(),
        "{}",
        String::from_utf8_lossy(&resolved.stderr)
    );

    let pylock = run(envlock().args(["export", "--format", "pylock"]).arg(&lock));
    assert_eq!(pylock.code, 0, "{}", pylock.stderr);
    let document: toml::Table = pylock.stdout.parse().expect("pylock.toml is TOML");
    assert_eq!(document["lock-version"].as_str(), Some("1.0"));
    assert_eq!(document["created-by"].as_str(), Some("envlock"));
    let packages = document["packages"].as_array().unwrap();
    assert_eq!(packages.len(), locked.packages.len());
    let entry = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not in {document:#?}"))
    };
    assert_eq!(
        entry("envlock-local-wheel")["archive"]["hashes"]["sha256"].as_str(),
        Some(hash.trim_start_matches("sha256:"))
    );
    assert_eq!(
        entry("envlock-editable-fixture")["directory"]["editable"].as_bool(),
        Some(true)
    );
    let numpy = entry("numpy");
    let locked_numpy = locked.packages.iter().find(|p| p.name == "numpy").unwrap();
    assert_eq!(
        numpy["version"].as_str(),
        Some(locked_numpy.version.as_str())
    );
}

fn yaml(path: &str) -> serde_norway::Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The CI page of the docs, where the README's CI recipes moved.
fn ci_docs() -> String {
    std::fs::read_to_string(root().join("docs/ci.md")).unwrap()
}

#[test]
fn github_action_has_what_actions_require_and_runs_the_documented_gate() {
    let action = yaml("action.yml");
    assert!(action["name"].is_string() && action["description"].is_string());
    for input in [
        "baseline", "target", "config", "fail-on", "junit", "install",
    ] {
        let spec = &action["inputs"][input];
        assert!(spec["description"].is_string(), "input {input}");
    }
    assert_eq!(action["inputs"]["baseline"]["required"], true);
    assert_eq!(action["inputs"]["fail-on"]["default"], "error");
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    for step in steps {
        // A composite step that runs a script must name its shell.
        assert!(
            step["run"].is_string() && step["shell"].is_string(),
            "{step:?}"
        );
        // No input is spliced into a script (script injection): inputs go through `env`.
        assert!(!step["run"].as_str().unwrap().contains("${{"), "{step:?}");
    }
    let scripts: String = steps
        .iter()
        .map(|step| step["run"].as_str().unwrap())
        .collect();
    assert!(scripts.contains("pip install"), "{scripts}");
    assert!(
        scripts.contains("envlock diff \"$BASELINE\" \"$TARGET\""),
        "{scripts}"
    );
    assert!(scripts.contains("--report \"junit:$JUNIT\""), "{scripts}");
    assert!(scripts.contains("$GITHUB_STEP_SUMMARY"), "{scripts}");
    assert!(scripts.contains("exit \"$code\""), "{scripts}");
    let docs = ci_docs();
    assert!(
        docs.contains("uses: OWNER/envlock@v0"),
        "docs/ci.md shows the action"
    );
    assert!(docs.contains("baseline: dev.lock"));
}

#[test]
fn gitlab_template_has_a_junit_report_and_the_documented_command() {
    let template = yaml("ci/gitlab/envlock.yml");
    let job = &template[".envlock"];
    assert_eq!(job["artifacts"]["reports"]["junit"], "envlock.xml");
    assert_eq!(job["artifacts"]["when"], "always");
    let script = job["script"].as_sequence().unwrap();
    assert_eq!(script.len(), 1);
    let command = script[0].as_str().unwrap();
    assert!(command.starts_with("envlock diff "), "{command}");
    assert!(command.contains("--report junit:envlock.xml"), "{command}");
    assert!(
        ci_docs().contains(command),
        "docs/ci.md documents `{command}`"
    );
    let install = job["before_script"][0].as_str().unwrap();
    assert!(install.contains("pip install"), "{install}");
}

#[test]
fn pre_commit_hook_has_the_required_keys() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_sequence().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    for key in ["id", "name", "entry", "language"] {
        assert!(hook[key].is_string(), "pre-commit requires `{key}`");
    }
    assert_eq!(hook["id"], "envlock");
    assert_eq!(hook["pass_filenames"], false);
    let entry = hook["entry"].as_str().unwrap();
    assert_eq!(entry, "envlock diff --no-golden envlock.lock");
    let args = hook["args"][0].as_str().unwrap();
    assert!(args.starts_with("python:"), "{args}");
    assert!(ci_docs().contains("id: envlock"));
    // The hook's command line is one envlock accepts.
    let help = run(envlock().args(["diff", "--no-golden", "--help"]));
    assert_eq!(help.code, 0, "{}", help.stderr);
}

/// `(name, version)` of a lock table's `[[packages]]`.
fn package_versions(lock: &toml::Table) -> std::collections::BTreeMap<String, String> {
    lock.get("packages")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |key: &str| p[key].as_str().unwrap().to_string();
            (text("name"), text("version"))
        })
        .collect()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn audit_matrix_is_what_the_locks_imply() {
    crate::docker::need_engine();
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev.lock");
    ml_snapshot(dir.path(), &dev, &[]);
    let locks = root().join("fixtures/locks");
    // Images of its own: it checks for leftover containers, and tests run in parallel.
    let images = [
        crate::docker::private("dist-packages", "audit-matrix"),
        crate::docker::private("venv", "audit-matrix"),
    ];
    let mut operands: Vec<String> = vec![
        locks.join("baseline.lock").display().to_string(),
        locks.join("target.lock").display().to_string(),
        dev.display().to_string(),
    ];
    operands.extend(images.iter().cloned());

    // What each operand holds, read on its own: the locks, and a snapshot of each image.
    let mut tables: Vec<toml::Table> = operands[..3]
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap().parse().unwrap())
        .collect();
    for image in &images {
        tables.push(snapshot(envlock().args(["snapshot", "--image", image])));
    }
    let versions: Vec<_> = tables.iter().map(package_versions).collect();
    let mut names: Vec<&String> = versions.iter().flat_map(|v| v.keys()).collect();
    names.sort();
    names.dedup();
    let expected: Vec<(String, Vec<Option<String>>)> = names
        .into_iter()
        .map(|name| {
            let values: Vec<Option<String>> =
                versions.iter().map(|v| v.get(name).cloned()).collect();
            (name.clone(), values)
        })
        .filter(|(_, values)| values.windows(2).any(|pair| pair[0] != pair[1]))
        .collect();

    let audit = run(envlock()
        .args(["audit", "--format", "json", "--jobs", "3"])
        .args(&operands));
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    let report: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["operands"].as_array().unwrap().len(), 5);
    let rows = report["rows"].as_array().unwrap();
    let packages: Vec<(String, Vec<Option<String>>)> = rows
        .iter()
        .filter(|row| row["area"] == "packages")
        .map(|row| {
            let values = row["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            (row["name"].as_str().unwrap().to_string(), values)
        })
        .collect();
    assert_eq!(packages, expected);
    let python = rows.iter().find(|row| row["area"] == "python").unwrap();
    for (value, table) in python["values"].as_array().unwrap().iter().zip(&tables) {
        let version = table["python"]["version"].as_str().unwrap();
        assert!(
            value.as_str().unwrap().ends_with(version),
            "{value} {version}"
        );
    }

    // --package focuses rows; CSV has a header and a line per row.
    let focused = run(envlock()
        .args(["audit", "--format", "csv", "--all", "--package", "numpy"])
        .args(&operands));
    assert_eq!(focused.code, 0, "{}", focused.stderr);
    let lines: Vec<&str> = focused.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", focused.stdout);
    assert!(
        lines[1].starts_with("packages,numpy,"),
        "{}",
        focused.stdout
    );
    for image in &images {
        assert!(
            crate::docker::containers_of(image).is_empty(),
            "containers left behind"
        );
    }
}

#[test]
fn audit_of_an_operand_that_cannot_be_captured_is_exit_2() {
    let locks = root().join("fixtures/locks");
    let run_audit = |extra: &[&str]| {
        run(envlock()
            .arg("audit")
            .arg(locks.join("baseline.lock"))
            .args(extra))
    };
    let missing = run_audit(&["no-such.lock"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no-such.lock"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty(), "no matrix: {}", missing.stdout);
    let zero = run_audit(&["--jobs", "0"]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(zero.stderr.contains("--jobs 0"), "{}", zero.stderr);
}
