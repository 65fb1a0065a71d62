//! Bad input: a clear message, exit code 2, and no lock file written. Skipped distributions
//! are warnings, not failures. The messages are pinned by insta snapshots, with the temp
//! folder and the interpreter's path filtered.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::*;

/// Runs `envlock snapshot ARGS -o <dir>/out.lock` and checks the failure contract.
fn fails(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = dir.join("out.lock");
    let mut command = envlock();
    command
        .arg("snapshot")
        .args(args)
        .arg("-o")
        .arg(&out)
        .current_dir(dir);
    for (key, value) in envs {
        command.env(key, value);
    }
    let run = run(&mut command);
    assert_eq!(run.code, 2, "expected exit 2; stderr:\n{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: "),
        "every failure says what to do:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!out.exists(), "no lock may be written on failure");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".envlock-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    filtered(dir, &run.stderr)
}

/// `stderr` with the machine's own paths replaced, for a snapshot.
fn filtered(dir: &Path, stderr: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    stderr
        .replace(dir.to_str().unwrap(), "[TMP]")
        .replace(python(), "[PYTHON]")
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

fn python() -> &'static str {
    system_python().to_str().unwrap()
}

#[test]
fn python_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails(dir.path(), &["--python", "/nonexistent/bin/python"], &[]);
    insta::assert_snapshot!(stderr);
}

#[test]
fn python_that_is_not_a_python() {
    let dir = tempfile::tempdir().unwrap();
    let fake = script(
        dir.path(),
        "fake-python",
        "#!/bin/sh\necho 'I am not Python'\n",
    );
    let stderr = fails(dir.path(), &["--python", &fake], &[]);
    insta::assert_snapshot!("not_a_python_prints", stderr);

    let stderr = fails(dir.path(), &["--python", "/etc/hostname"], &[]);
    insta::assert_snapshot!("not_a_python_cannot_run", stderr);
}

#[test]
fn python_that_hangs_hits_the_probe_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hang = script(dir.path(), "hang-python", "#!/bin/sh\nsleep 60\n");
    let stderr = fails(
        dir.path(),
        &["--python", &hang],
        &[("ENVLOCK_PROBE_TIMEOUT", "0.5")],
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn model_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails(
        dir.path(),
        &["--python", python(), "--model", "missing/model.pkl"],
        &[],
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn model_that_cannot_be_read() {
    // Tests run as root, where permissions do not stop a read; a socket cannot be opened by anyone.
    let dir = tempfile::tempdir().unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("model.sock")).unwrap();
    let stderr = fails(
        dir.path(),
        &["--python", python(), "--model", "model.sock"],
        &[],
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn symlink_loop_in_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("model/sub")).unwrap();
    std::fs::write(dir.path().join("model/weights.bin"), b"w").unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("model/sub/up")).unwrap();
    let stderr = fails(dir.path(), &["--python", python(), "--model", "model"], &[]);
    insta::assert_snapshot!(stderr);
}

#[test]
fn output_into_a_folder_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(envlock()
        .args(["snapshot", "--python", python(), "-o"])
        .arg(dir.path().join("no/such/dir/dev.lock")));
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(filtered(dir.path(), &run.stderr));
    assert!(!dir.path().join("no").exists());
}

#[test]
fn malformed_config_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "python = \"python3\"\nmodels = [\"a\",\n",
    )
    .unwrap();
    let stderr = fails(dir.path(), &[], &[]);
    insta::assert_snapshot!("config_syntax", stderr);

    std::fs::write(
        dir.path().join("envlock.toml"),
        "python = \"python3\"\nmodel = [\"a\"]\n",
    )
    .unwrap();
    let stderr = fails(dir.path(), &[], &[]);
    insta::assert_snapshot!("config_unknown_key", stderr);
}

#[test]
fn missing_config_file_named_with_flag() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails(dir.path(), &["--config", "nope.toml"], &[]);
    insta::assert_snapshot!(stderr);
}

#[test]
fn golden_case_mistakes_are_all_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        r#"models = []

[[golden]]
name = "a"
command = ["python3", "predict.py", "{input}"]
input = "in.txt"
fields = { "probabilities" = { rtol = 1e-3, atol = 0.0 } }

[[golden]]
name = "a"
command = []
input = "in.txt"
timeout = 0
"#,
    )
    .unwrap();
    let stderr = fails(dir.path(), &["--python", python()], &[]);
    insta::assert_snapshot!(stderr);
}

#[test]
fn malformed_envlock_variables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails(
        dir.path(),
        &["--python", python()],
        &[("ENVLOCK_PROBE_TIMEOUT", "soon")],
    );
    insta::assert_snapshot!("probe_timeout_variable", stderr);
    let stderr = fails(
        dir.path(),
        &["--python", python()],
        &[("ENVLOCK_NO_CACHE", "perhaps")],
    );
    insta::assert_snapshot!("no_cache_variable", stderr);
}

#[test]
fn broken_distributions_are_skipped_with_a_warning() {
    let site = tempfile::tempdir().unwrap();
    fake_dist_info(site.path(), "nometa-1.0.dist-info", None);
    fake_dist_info(
        site.path(),
        "noversion-1.0.dist-info",
        Some(b"Metadata-Version: 2.1\nName: noversion\n"),
    );
    fake_dist_info(
        site.path(),
        "badname-1.0.dist-info",
        Some(b"Name: bad\xffname\nVersion: 1.0\n"),
    );
    // Invalid UTF-8 outside Name and Version (a Latin-1 author) must not lose the package.
    fake_dist_info(
        site.path(),
        "latin-2.0.dist-info",
        Some(b"Name: latin\nAuthor: Fran\xe7ois\nVersion: 2.0\n\nBody \xff\n"),
    );
    fake_dist_info(
        site.path(),
        "good-1.0.dist-info",
        Some(b"Name: good\nVersion: 1.0\n"),
    );
    let run = run(envlock()
        .args(["snapshot", "--python", python()])
        .env("PYTHONPATH", site.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lock: toml::Table = run.stdout.parse().unwrap();
    let names: Vec<String> = lock_packages(&lock)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(names.contains(&"good".to_string()));
    assert!(names.contains(&"latin".to_string()));
    for skipped in ["nometa", "noversion", "bad"] {
        assert!(
            !names.iter().any(|name| name.starts_with(skipped)),
            "{skipped} in {names:?}"
        );
    }
    assert!(
        run.stderr.contains("warning: skipped `") && run.stderr.contains("nometa-1.0.dist-info"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("has no `Version:` header"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`Name:` header") && run.stderr.contains("not valid UTF-8"),
        "{}",
        run.stderr
    );
}
