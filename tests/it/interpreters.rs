//! Which Python an image's lock describes: the one its ENTRYPOINT/CMD runs (through
//! wrappers, shells, `conda run`, `uv run`, shebangs), else `python3` on its PATH. Each case
//! is an image derived from `fixtures/images/interpreters` that differs only in what it runs;
//! exec and static capture must both list exactly what `importlib.metadata` sees with the
//! interpreter the image's command uses, and agree on how it was chosen.

use crate::docker::{containers_of, derived, fixture, importlib_with, need_engine};
use crate::support::*;

const VENV_PATH: &str =
    "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CONDA_PATH: &str =
    "ENV PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn snapshot_of(image: &str, extra: &[&str]) -> Run {
    run(envlock().args(["snapshot", "--image", image]).args(extra))
}

fn lock_of(image: &str, extra: &[&str]) -> (toml::Table, String) {
    let run = snapshot_of(image, extra);
    assert_eq!(
        run.code, 0,
        "snapshot --image {image} {extra:?}:\n{}",
        run.stderr
    );
    (run.stdout.parse().unwrap(), run.stderr)
}

/// Captures the image made by `lines` in both modes and checks them against importlib run
/// with `python` (the interpreter the command really uses). Returns the exec lock and the
/// messages of both runs.
fn assert_captures(lines: &str, python: &str, selected_by: &str) -> (toml::Table, String) {
    let image = derived(&fixture("interpreters"), lines);
    let expected = importlib_with(&image, python);
    let (exec, exec_messages) = lock_of(&image, &[]);
    let (stat, stat_messages) = lock_of(&image, &["--no-exec"]);
    for (lock, mode) in [(&exec, "exec"), (&stat, "static")] {
        assert_eq!(lock_packages(lock), expected, "{mode} capture of `{lines}`");
        assert_eq!(
            lock["python"]["selected-by"].as_str(),
            Some(selected_by),
            "{mode} capture of `{lines}`"
        );
    }
    assert_eq!(
        exec["python"]["executable"].as_str(),
        stat["python"]["executable"].as_str()
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
    (exec, format!("{exec_messages}{stat_messages}"))
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn cmd_naming_a_venv_interpreter_off_path() {
    need_engine();
    let (lock, messages) = assert_captures(
        r#"CMD ["/opt/venv/bin/python", "serve.py"]"#,
        "/opt/venv/bin/python",
        "cmd",
    );
    assert_eq!(
        lock_package(&lock, "typing-extensions")["version"].as_str(),
        Some("4.12.2")
    );
    let others = lock["image"]["other-pythons"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(
        others[0].as_str().unwrap().ends_with("/python3"),
        "{others:?}"
    );
    assert!(
        messages.contains("note: captured `/opt/venv/bin/python` (the image's CMD runs it)"),
        "{messages}"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn entrypoint_python_with_a_cmd_script() {
    need_engine();
    assert_captures(
        "ENTRYPOINT [\"/opt/venv/bin/python3\"]\nCMD [\"serve.py\"]",
        "/opt/venv/bin/python3",
        "entrypoint",
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn console_script_with_a_venv_shebang() {
    need_engine();
    assert_captures(
        r#"CMD ["tini", "--", "serve-model", "--port", "8000"]"#,
        "/opt/venv/bin/python",
        "shebang",
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_relative_command_path_starts_at_the_workdir() {
    need_engine();
    // `./env-serve.py` is `/app/env-serve.py` in a container whose WORKDIR is `/app`, as
    // execvp finds it; it was looked for at `/env-serve.py`.
    let (_, messages) = assert_captures(
        &format!("{VENV_PATH}\nENTRYPOINT [\"./env-serve.py\"]"),
        "/opt/venv/bin/python3",
        "shebang",
    );
    assert!(!messages.contains("not in the image"), "{messages}");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn env_shebang_with_a_venv_first_on_path() {
    need_engine();
    let (lock, _) = assert_captures(
        &format!("{VENV_PATH}\nCMD [\"/app/env-serve.py\"]"),
        "/opt/venv/bin/python3",
        "shebang",
    );
    assert!(
        lock["image"].get("other-pythons").is_none(),
        "python3 on PATH is the venv's"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn shell_form_cmd() {
    need_engine();
    assert_captures(
        "CMD cd /app && exec /opt/venv/bin/python serve.py",
        "/opt/venv/bin/python",
        "cmd",
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn uv_project_venv_in_workdir() {
    need_engine();
    let (lock, _) = assert_captures(
        r#"CMD ["uv", "run", "--frozen", "serve.py"]"#,
        "/app/.venv/bin/python",
        "cmd",
    );
    assert!(lock_packages(&lock).contains(&("packaging".to_string(), "24.1".to_string())));
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn non_root_user_with_user_installs() {
    need_engine();
    let (lock, _) = assert_captures(
        "USER model\nCMD [\"python3\", \"serve.py\"]",
        "python3",
        "cmd",
    );
    let yaml = lock_package(&lock, "pyyaml");
    assert_eq!(
        yaml["location"].as_str(),
        Some("/home/model/.local/lib/python3.11/site-packages")
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn conda_env_selected_by_conda_run() {
    need_engine();
    assert_captures(
        &format!(
            "{CONDA_PATH}\nCMD [\"conda\", \"run\", \"-n\", \"ml\", \"python\", \"serve.py\"]"
        ),
        "/opt/conda/envs/ml/bin/python",
        "cmd",
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn unreadable_entrypoint_script_falls_back_to_path_with_a_warning() {
    need_engine();
    let (_, messages) = assert_captures(
        "ENTRYPOINT [\"/entrypoint.sh\"]\nCMD [\"python\", \"serve.py\"]",
        "python3",
        "path",
    );
    assert!(
        messages.contains("warning: `/entrypoint.sh` is a shell script envlock cannot follow")
            && messages.contains("--python PATH"),
        "{messages}"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn odd_commands_fall_back_to_path_with_a_warning() {
    need_engine();
    for (cmd, says) in [
        (r#"CMD ["/app/loop-a"]"#, "shebangs (a loop?)"),
        (r#"CMD ["/app/huge"]"#, "is not in the image"),
        (
            r#"CMD ["/app/missing.py"]"#,
            "`/app/missing.py` is not in the image",
        ),
    ] {
        let (_, messages) = assert_captures(cmd, "python3", "path");
        assert!(messages.contains(says), "{cmd}: {messages}");
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn python_flag_with_image() {
    need_engine();
    // An image of its own: another test runs the same command, and this one counts leftovers.
    let image = derived(
        &fixture("interpreters"),
        "CMD [\"python3\", \"serve.py\"]\nLABEL org.envlock.test=python-flag",
    );
    let expected = importlib_with(&image, "/opt/venv/bin/python");
    for mode in [&[][..], &["--no-exec"][..]] {
        let args = [&["--python", "/opt/venv/bin/python"][..], mode].concat();
        let (lock, _) = lock_of(&image, &args);
        assert_eq!(lock_packages(&lock), expected, "{mode:?}");
        assert_eq!(lock["python"]["selected-by"].as_str(), Some("flag"));
        // A name is looked up on the image's PATH.
        let args = [&["--python", "python3"][..], mode].concat();
        let (lock, _) = lock_of(&image, &args);
        assert_eq!(lock_packages(&lock), importlib_with(&image, "python3"));
    }
    for mode in [&[][..], &["--no-exec"][..]] {
        let missing = snapshot_of(
            &image,
            &[&["--python", "/no/such/python"][..], mode].concat(),
        );
        assert_eq!(missing.code, 2, "{}", missing.stderr);
        assert!(
            missing.stderr.contains("`/no/such/python` in image"),
            "{}",
            missing.stderr
        );
        assert!(
            missing.stderr.contains("hint: `--python` with `--image`"),
            "{}",
            missing.stderr
        );
        let not_python = snapshot_of(&image, &[&["--python", "/etc/hostname"][..], mode].concat());
        assert_eq!(not_python.code, 2, "{mode:?}: {}", not_python.stderr);
        assert!(
            not_python.stderr.contains("/etc/hostname"),
            "{}",
            not_python.stderr
        );
    }
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn config_names_the_image_python_and_diff_uses_the_same_choice() {
    need_engine();
    // An image of its own (the label first, so it descends from no other test's image):
    // `cmd_naming_a_venv_interpreter_off_path` counts the containers of its image while
    // this test runs in parallel.
    let image = derived(
        &fixture("interpreters"),
        "LABEL org.envlock.test=config-names\nCMD [\"/opt/venv/bin/python\", \"serve.py\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[image]\npython = \"/app/.venv/bin/python\"\n",
    )
    .unwrap();
    let configured = run(envlock()
        .args(["snapshot", "--image", &image])
        .current_dir(dir.path()));
    assert_eq!(configured.code, 0, "{}", configured.stderr);
    let lock: toml::Table = configured.stdout.parse().unwrap();
    assert_eq!(lock["python"]["selected-by"].as_str(), Some("config"));
    assert_eq!(
        lock_packages(&lock),
        importlib_with(&image, "/app/.venv/bin/python")
    );

    // Without the config, diff captures the CMD's venv on both sides: no drift, where the
    // system interpreter (other typing_extensions) would have shown one.
    let report = run(envlock()
        .args(["diff", &image, &image, "--format", "json"])
        .current_dir(root()));
    assert_eq!(report.code, 0, "{}{}", report.stdout, report.stderr);
    let lock_file = dir.path().join("venv.lock");
    let snapshot = run(envlock()
        .args(["snapshot", "--image", &image, "-o"])
        .arg(&lock_file));
    assert_eq!(snapshot.code, 0, "{}", snapshot.stderr);
    let system = derived(&fixture("interpreters"), r#"CMD ["python3", "serve.py"]"#);
    let drift = run(envlock()
        .arg("diff")
        .arg(&lock_file)
        .args([&system, "--format", "json"]));
    assert_eq!(
        drift.code, 1,
        "the system interpreter differs: {}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("\"typing-extensions\""),
        "{}",
        drift.stdout
    );
}
