//! The lock's `(name, version)` set equals what `importlib.metadata` reports, first copy per
//! normalized name, on real venvs with real wheels.

use std::path::Path;

use crate::support::*;

fn assert_matches_importlib(python: &Path) -> toml::Table {
    let lock = snapshot(envlock().arg("snapshot").arg("--python").arg(python));
    let expected = importlib_packages(python, &[]);
    assert!(!expected.is_empty());
    assert_eq!(lock_packages(&lock), expected, "for {}", python.display());
    lock
}

#[test]
fn venv_with_real_wheels_editable_and_local_wheel() {
    let python = ml_venv();
    let lock = assert_matches_importlib(&python);

    let numpy = lock_package(&lock, "numpy");
    assert_eq!(numpy["version"].as_str(), Some("1.26.4"));
    assert_eq!(numpy["installer"].as_str(), Some("pip"));
    assert_eq!(numpy["requested"].as_bool(), Some(true));
    let tags = numpy["wheel-tags"].as_array().unwrap();
    assert!(tags
        .iter()
        .any(|tag| tag.as_str().unwrap().starts_with("cp311-cp311-")));
    assert!(numpy["record"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        numpy.get("source").is_none(),
        "index installs have no direct_url.json"
    );

    // Name from METADATA, normalized; not the folder name (zope.interface-7.1.1.dist-info).
    lock_package(&lock, "zope-interface");
    let editable = lock_package(&lock, "envlock-editable-fixture");
    assert_eq!(editable["version"].as_str(), Some("0.3.0.dev1"));
    assert_eq!(editable["editable"].as_bool(), Some(true));
    assert_eq!(editable["source"].as_str(), Some("directory"));
    let local = lock_package(&lock, "envlock-local-wheel");
    assert_eq!(local["version"].as_str(), Some("1.2.3+local.build7"));
    assert_eq!(local["source"].as_str(), Some("archive"));
    assert!(local["url"].as_str().unwrap().starts_with("file://"));

    // The editable install's .pth file is recorded with its hash.
    let pth = lock["pth-files"].as_array().expect("pth files recorded");
    assert!(pth.iter().any(|file| {
        let file = file.as_table().unwrap();
        file["path"].as_str().unwrap().ends_with(".pth")
            && file["sha256"].as_str().unwrap().starts_with("sha256:")
    }));

    let python_table = lock["python"].as_table().unwrap();
    assert_eq!(python_table["implementation"].as_str(), Some("cpython"));
    assert_eq!(lock["source"]["kind"].as_str(), Some("python"));
}

#[test]
fn system_interpreter() {
    assert_matches_importlib(system_python());
}

#[test]
fn debian_system_python_with_dist_packages() {
    let debian = Path::new("/usr/bin/python3");
    if !debian.exists() {
        eprintln!("skipped: no Debian /usr/bin/python3 on this machine");
        return;
    }
    assert_matches_importlib(debian);
}

#[test]
fn venv_with_system_site_packages() {
    let python = venv(
        "system-site",
        "typing_extensions==4.9.0 v1",
        &["--system-site-packages"],
        |folder| {
            pip_install(folder, &["typing_extensions==4.9.0"]);
        },
    );
    let lock = assert_matches_importlib(&python);
    // The venv's own copy wins over any in the system site.
    let package = lock_package(&lock, "typing-extensions");
    assert_eq!(package["version"].as_str(), Some("4.9.0"));
}

#[test]
fn first_copy_on_sys_path_wins_and_later_ones_are_shadowed() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    fake_dist_info(
        first.path(),
        "Shadow_Pkg-2.0.dist-info",
        Some(b"Name: Shadow_Pkg\nVersion: 2.0\n"),
    );
    fake_dist_info(
        second.path(),
        "shadow.pkg-1.0.dist-info",
        Some(b"Name: shadow.pkg\nVersion: 1.0\n"),
    );
    // Both egg-info forms: a folder with PKG-INFO, and a single file.
    std::fs::create_dir(second.path().join("eggy-0.5.egg-info")).unwrap();
    std::fs::write(
        second.path().join("eggy-0.5.egg-info/PKG-INFO"),
        "Name: eggy\nVersion: 0.5\n",
    )
    .unwrap();
    std::fs::write(
        second.path().join("flat-1.1-py3.11.egg-info"),
        "Metadata-Version: 1.1\nName: flat\nVersion: 1.1\n",
    )
    .unwrap();
    let pythonpath = std::env::join_paths([first.path(), second.path()]).unwrap();
    let pythonpath = pythonpath.to_str().unwrap();

    let lock = snapshot(
        envlock()
            .arg("snapshot")
            .arg("--python")
            .arg(system_python())
            .env("PYTHONPATH", pythonpath),
    );
    let expected = importlib_packages(system_python(), &[("PYTHONPATH", pythonpath)]);
    assert_eq!(lock_packages(&lock), expected);

    let winner = lock_package(&lock, "shadow-pkg");
    assert_eq!(winner["version"].as_str(), Some("2.0"));
    let shadowed = winner["shadowed"].as_array().unwrap();
    assert_eq!(shadowed.len(), 1);
    assert_eq!(shadowed[0]["version"].as_str(), Some("1.0"));
    assert_eq!(shadowed[0]["location"].as_str(), second.path().to_str());
    assert_eq!(
        lock_package(&lock, "eggy")["format"].as_str(),
        Some("egg-info")
    );
    assert_eq!(lock_package(&lock, "flat")["version"].as_str(), Some("1.1"));
    assert_eq!(lock["env"]["set"]["PYTHONPATH"].as_str(), Some(pythonpath));
}

#[test]
fn cached_interpreter_facts_notice_a_new_pth_path() {
    // A new .pth adds a sys.path entry: a cached probe answer must not hide the packages there.
    let python = venv("empty", "empty v1", &["--without-pip"], |_| {});
    let site = site_packages(&python);
    let extra = tempfile::tempdir().unwrap();
    fake_dist_info(
        extra.path(),
        "late-1.0.dist-info",
        Some(b"Name: late\nVersion: 1.0\n"),
    );
    let pth = site.join("envlock-test-extra.pth");
    let _ = std::fs::remove_file(&pth);

    let before = snapshot(envlock().arg("snapshot").arg("--python").arg(&python));
    assert!(!lock_packages(&before)
        .iter()
        .any(|(name, _)| name == "late"));
    let again = run(envlock().arg("snapshot").arg("--python").arg(&python));
    assert_eq!(
        toml::to_string(&before).unwrap(),
        toml::to_string(&again.stdout.parse::<toml::Table>().unwrap()).unwrap()
    );

    std::fs::write(&pth, format!("{}\n", extra.path().display())).unwrap();
    let after = snapshot(envlock().arg("snapshot").arg("--python").arg(&python));
    std::fs::remove_file(&pth).unwrap();
    assert!(lock_packages(&after).contains(&("late".to_string(), "1.0".to_string())));
}

#[test]
fn a_repeated_snapshot_answers_from_the_interpreter_cache() {
    // No Python answers the probe within a millisecond: with that limit, only a cached
    // answer can succeed.
    let python = venv("empty", "empty v1", &["--without-pip"], |_| {});
    let cache = tempfile::tempdir().unwrap();
    let snapshot_with = |variables: &[(&str, &str)]| {
        let mut command = envlock();
        command
            .env("ENVLOCK_CACHE_DIR", cache.path())
            .args(["snapshot", "--python"])
            .arg(&python);
        for (name, value) in variables {
            command.env(name, value);
        }
        run(&mut command)
    };
    let first = snapshot_with(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let cached = std::fs::read_dir(cache.path().join("interpreters"))
        .unwrap()
        .count();
    assert_eq!(cached, 1, "one answer is cached");

    let hit = snapshot_with(&[("ENVLOCK_PROBE_TIMEOUT", "0.001")]);
    assert_eq!(hit.code, 0, "the cache was not used:\n{}", hit.stderr);
    assert_eq!(hit.stdout, first.stdout);

    let miss = snapshot_with(&[
        ("ENVLOCK_PROBE_TIMEOUT", "0.001"),
        ("ENVLOCK_NO_CACHE", "1"),
    ]);
    assert_eq!(
        miss.code, 2,
        "without the cache the probe must run:\n{}",
        miss.stderr
    );
    assert!(
        miss.stderr
            .contains("did not answer the probe within 0.001s"),
        "{}",
        miss.stderr
    );
}

#[test]
fn allow_listed_environment_is_recorded_and_nothing_else() {
    let run = run(envlock()
        .arg("snapshot")
        .arg("--python")
        .arg(system_python())
        .env("OMP_NUM_THREADS", "3")
        .env("ENVLOCK_TEST_SECRET", "hunter2-do-not-store")
        .env_remove("TZ"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lock: toml::Table = run.stdout.parse().unwrap();
    assert_eq!(lock["env"]["set"]["OMP_NUM_THREADS"].as_str(), Some("3"));
    let unset: Vec<&str> = lock["env"]["unset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(unset.contains(&"TZ"));
    assert!(!run.stdout.contains("hunter2"));
    assert!(!run.stdout.contains("ENVLOCK_TEST_SECRET"));
}

#[test]
fn interpreter_defaults_to_virtual_env() {
    let python = ml_venv();
    let venv = python.parent().unwrap().parent().unwrap();
    let lock = snapshot(envlock().arg("snapshot").env("VIRTUAL_ENV", venv));
    assert_eq!(lock["source"]["interpreter"].as_str(), python.to_str());
    lock_package(&lock, "numpy");
}

#[test]
fn conda_prefix_records_are_listed() {
    // Conda's channels cannot be reached: a prefix is built by conda's documented layout
    // (`conda-meta/<name>-<version>-<build>.json`) around a real interpreter with real wheels.
    let python = crate::support::conda_layout_venv();
    let lock = snapshot(envlock().arg("snapshot").arg("--python").arg(&python));
    let records: Vec<(&str, &str, &str)> = lock["conda-packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            assert_eq!(record["channel"].as_str(), Some("conda-forge"));
            (
                record["name"].as_str().unwrap(),
                record["version"].as_str().unwrap(),
                record["build"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            ("mkl", "2024.0.0", "ha957f24_49657"),
            ("six", "1.16.0", "pyh6c4a22f_0")
        ]
    );
    assert!(lock_packages(&lock).contains(&("six".to_string(), "1.16.0".to_string())));
}
