//! The project's own lock as the baseline, with real tools: uv locks a small project (a
//! Windows-only dependency, a dependency for Python < 3.11, an extra, a dev group), `uv export`
//! writes its requirements.txt and pylock.toml, Poetry locks the same project; runtimes are
//! built from the same pins (a venv, an image) and drifted from them, and `importlib.metadata`
//! says what the findings must be. The locks of `fixtures/declared/projects` (a model
//! project with dev, test and docs groups, an extra, Windows and old-Python edges, a maturin
//! and a scikit-build-core wheel; written by uv, Poetry 2 and Poetry 1.8) are installed by
//! their own tools (`poetry install --only main`, `uv sync --no-dev`, `pip install -r`),
//! which are the oracle of what the lock requires.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    cache_root, envlock, importlib_packages, must, pip_install, run, system_python, venv,
};

/// The project: what each tool locks.
const PYPROJECT: &str = r#"[project]
name = "demo-model"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = [
  "packaging==24.2",
  "markupsafe==3.0.2",
  "colorama==0.4.6; sys_platform == 'win32'",
  "tomli==2.2.1; python_version < '3.11'",
]

[project.optional-dependencies]
extras-six = ["six==1.17.0"]

[dependency-groups]
dev = ["iniconfig==2.0.0"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"#;

/// What the lock requires on Linux with CPython 3.11, no extra and no group.
const REQUIRED: &[(&str, &str)] = &[("markupsafe", "3.0.2"), ("packaging", "24.2")];

/// uv and Poetry from PyPI, in a venv of their own.
fn tools() -> PathBuf {
    let python = venv("lock-tools", "uv==0.13.9 poetry==2.5.1", &[], |folder| {
        pip_install(folder, &["uv==0.13.9", "poetry==2.5.1"]);
    });
    python.parent().unwrap().to_path_buf()
}

/// A tool of [`tools`], with its caches under the test cache.
fn tool(name: &str) -> Command {
    let mut command = Command::new(tools().join(name));
    command
        .env("UV_CACHE_DIR", cache_root().join("uv-cache"))
        .env("POETRY_CACHE_DIR", cache_root().join("poetry-cache"))
        .env("UV_PYTHON", system_python())
        .env_remove("VIRTUAL_ENV");
    command
}

/// The project folder, locked once by uv (uv.lock, requirements.txt, pylock.toml) and, in
/// `poetry/`, by Poetry (poetry.lock beside its pyproject.toml).
fn project() -> PathBuf {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONCE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let folder = cache_root().join("declared-project-v1");
    if folder.join(".ready").exists() {
        return folder;
    }
    let _ = std::fs::remove_dir_all(&folder);
    for place in [folder.clone(), folder.join("poetry")] {
        std::fs::create_dir_all(place.join("src/demo_model")).unwrap();
        std::fs::write(place.join("src/demo_model/__init__.py"), "").unwrap();
        std::fs::write(place.join("pyproject.toml"), PYPROJECT).unwrap();
    }
    must(tool("uv").args(["lock", "-q"]).current_dir(&folder));
    must(
        tool("uv")
            .args(["export", "-q", "--no-dev", "-o", "requirements.txt"])
            .current_dir(&folder),
    );
    must(
        tool("uv")
            .args([
                "export",
                "-q",
                "--no-dev",
                "--format",
                "pylock.toml",
                "-o",
                "pylock.toml",
            ])
            .current_dir(&folder),
    );
    must(
        tool("poetry")
            .args(["lock", "-q"])
            .current_dir(folder.join("poetry")),
    );
    std::fs::write(folder.join(".ready"), "").unwrap();
    folder
}

/// Every lock of the project, as operands.
fn locks() -> Vec<PathBuf> {
    let folder = project();
    vec![
        folder.join("uv.lock"),
        folder.join("pylock.toml"),
        folder.join("requirements.txt"),
        folder.join("poetry/poetry.lock"),
    ]
}

/// A venv holding `requirements`.
fn runtime(name: &str, requirements: &[&str]) -> PathBuf {
    venv(name, &format!("{requirements:?}"), &[], |folder| {
        pip_install(folder, requirements);
    })
}

/// `(code, subject)` of the package findings of `envlock diff LOCK TARGET ARGS --format json`,
/// with its exit code and stderr.
fn package_findings(
    lock: &Path,
    target: &str,
    args: &[&str],
) -> (BTreeSet<(String, String)>, i32, String) {
    let done = run(envlock()
        .arg("diff")
        .arg(lock)
        .arg(target)
        .args(args)
        .args(["--format", "json", "--no-golden"]));
    assert!(
        done.code == 0 || done.code == 1,
        "{}\n{}",
        lock.display(),
        done.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["code"].as_str().unwrap().starts_with("package-"))
        .map(|finding| {
            (
                finding["code"].as_str().unwrap().to_string(),
                finding["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (findings, done.code, done.stderr)
}

/// The package findings a lock requiring `required` must give against a runtime where
/// `importlib.metadata` shows `installed`.
fn expected(
    required: &[(&str, &str)],
    installed: &BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    let required: BTreeMap<&str, &str> = required.iter().copied().collect();
    let installed: BTreeMap<&str, &str> = installed
        .iter()
        .map(|(name, version)| (name.as_str(), version.as_str()))
        .collect();
    let mut findings = BTreeSet::new();
    for (name, version) in &required {
        match installed.get(name) {
            None => findings.insert(("package-missing".to_string(), name.to_string())),
            Some(other) if other != version => {
                findings.insert(("package-version".to_string(), name.to_string()))
            }
            Some(_) => false,
        };
    }
    for name in installed.keys() {
        if !required.contains_key(name) {
            findings.insert(("package-added".to_string(), name.to_string()));
        }
    }
    findings
}

#[test]
fn a_runtime_built_from_the_pins_gives_no_package_finding_for_any_format() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let installed = importlib_packages(&pins, &[]);
    let target = format!("python:{}", pins.display());
    for lock in locks() {
        let (findings, code, stderr) = package_findings(&lock, &target, &[]);
        // Only the installer's own tooling is in the venv beyond the lock: warnings.
        assert_eq!(
            findings,
            expected(REQUIRED, &installed),
            "{}",
            lock.display()
        );
        assert!(findings.iter().all(|(code, _)| code == "package-added"));
        assert_eq!(code, 0, "{}: {stderr}", lock.display());
        assert!(stderr.contains("not compared"), "{stderr}");
    }
}

#[test]
fn a_drifted_runtime_gives_exactly_what_importlib_shows() {
    let drifted = runtime(
        "declared-drifted",
        &["packaging==24.1", "six==1.17.0", "iniconfig==2.0.0"],
    );
    let installed = importlib_packages(&drifted, &[]);
    let target = format!("python:{}", drifted.display());
    for lock in locks() {
        let (findings, code, _) = package_findings(&lock, &target, &[]);
        assert_eq!(
            findings,
            expected(REQUIRED, &installed),
            "{}",
            lock.display()
        );
        assert_eq!(code, 1);
        // Never the Windows-only package, nor the one for Python < 3.11.
        assert!(!findings
            .iter()
            .any(|(_, name)| name == "colorama" || name == "tomli"));
    }
}

#[test]
fn groups_and_extras_are_required_only_when_named() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let target = format!("python:{}", pins.display());
    let folder = project();
    for lock in [folder.join("uv.lock"), folder.join("poetry/poetry.lock")] {
        let (plain, _, _) = package_findings(&lock, &target, &[]);
        assert!(
            !plain.iter().any(|(code, _)| code == "package-missing"),
            "{plain:?}"
        );
        let (dev, code, _) = package_findings(&lock, &target, &["--group", "dev"]);
        assert!(
            dev.contains(&("package-missing".into(), "iniconfig".into())),
            "{dev:?}"
        );
        assert_eq!(code, 1);
        let (extra, _, _) = package_findings(&lock, &target, &["--extra", "extras-six"]);
        assert!(
            extra.contains(&("package-missing".into(), "six".into())),
            "{extra:?}"
        );
        assert!(!extra.contains(&("package-missing".into(), "iniconfig".into())));
        let wrong = run(envlock()
            .arg("diff")
            .arg(&lock)
            .arg(&target)
            .args(["--group", "docs"]));
        assert_eq!(wrong.code, 2, "{}", wrong.stderr);
        assert!(
            wrong.stderr.contains("no dependency group `docs`"),
            "{}",
            wrong.stderr
        );
    }
}

/// A build without the C extension (markupsafe's sdist falls back to a pure `py3-none-any`
/// wheel when no compiler works) is evidence of another build; a source build for the same
/// Python, ABI and platform family (`cp311-cp311-linux_x86_64` next to the lock's manylinux
/// wheels) cannot be told from the lock's wheel, and is not claimed to be another.
#[test]
fn a_wheel_built_from_source_is_another_build_only_on_evidence() {
    let pure = venv(
        "declared-pure-build",
        "markupsafe sdist, CC=false v1",
        &[],
        |folder| {
            must(
                Command::new(folder.join("bin/python"))
                    .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                    .args(["--no-cache-dir", "--no-binary", "markupsafe"])
                    .args(["markupsafe==3.0.2", "packaging==24.2"])
                    .env("CC", "false"),
            );
        },
    );
    let compiled = venv(
        "declared-from-source",
        "markupsafe sdist v1",
        &[],
        |folder| {
            pip_install(
                folder,
                &[
                    "--no-binary",
                    "markupsafe",
                    "markupsafe==3.0.2",
                    "packaging==24.2",
                ],
            );
        },
    );
    let folder = project();
    for lock in [
        folder.join("uv.lock"),
        folder.join("pylock.toml"),
        folder.join("poetry/poetry.lock"),
    ] {
        let target = format!("python:{}", pure.display());
        let (findings, _, _) = package_findings(&lock, &target, &[]);
        assert!(
            findings.contains(&("package-build".into(), "markupsafe".into())),
            "{}: {findings:?}",
            lock.display()
        );
        assert!(!findings.contains(&("package-build".into(), "packaging".into())));
        let target = format!("python:{}", compiled.display());
        let (findings, _, _) = package_findings(&lock, &target, &[]);
        assert!(
            !findings.iter().any(|(code, _)| code == "package-build"),
            "{}: {findings:?}",
            lock.display()
        );
    }
}

#[test]
fn the_target_python_outside_requires_python_is_a_python_version_error() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let work = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(project().join("pylock.toml")).unwrap();
    let lock = work.path().join("pylock.toml");
    std::fs::write(
        &lock,
        text.replace(
            "requires-python = \">=3.10\"",
            "requires-python = \">=3.12\"",
        ),
    )
    .unwrap();
    let done = run(envlock()
        .arg("diff")
        .arg(&lock)
        .arg(format!("python:{}", pins.display())));
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(done.stdout.contains("python-version"), "{}", done.stdout);
    assert!(done.stdout.contains(">=3.12"), "{}", done.stdout);
}

#[test]
fn bad_declared_locks_are_exit_2_with_where() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let target = format!("python:{}", pins.display());
    let work = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = work.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cases = [
        (
            write("uv.lock", "version = 1\n[[package]\nname = \"x\"\n"),
            "line 2, column",
        ),
        (
            write("pylock.toml", "lock-version = \"2.0\"\n"),
            "pylock.toml version 2.0",
        ),
        (
            write(
                "requirements.txt",
                "packaging==24.2\nmarkupsafe>=3.0 \\\n    --hash=sha256:00\n",
            ),
            "line 2: `markupsafe>=3.0` is a range, not a pin: a range is not a lock",
        ),
    ];
    for (lock, says) in cases {
        let done = run(envlock().arg("diff").arg(&lock).arg(&target));
        assert_eq!(done.code, 2, "{}", done.stderr);
        assert!(done.stderr.contains(says), "{}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    }
    // The project's lock is a baseline, never the runtime checked.
    let done = run(envlock()
        .arg("diff")
        .arg(&target)
        .arg(project().join("uv.lock")));
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("not a runtime"), "{}", done.stderr);
}

#[test]
fn a_marker_static_capture_cannot_evaluate_is_a_warning_naming_it() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let work = tempfile::tempdir().unwrap();
    let captured = crate::support::snapshot(envlock().args(["snapshot", "--python"]).arg(&pins));
    // As static capture has it: no marker environment from a probe.
    let mut captured = captured;
    captured["python"].as_table_mut().unwrap().remove("markers");
    let target = work.path().join("static.lock");
    std::fs::write(&target, toml::to_string(&captured).unwrap()).unwrap();
    let lock = work.path().join("requirements.txt");
    std::fs::write(
        &lock,
        "packaging==24.2\nmarkupsafe==3.0.2 ; platform_release >= '4'\ncolorama==0.4.6 ; sys_platform == 'win32'\n",
    )
    .unwrap();
    let done = run(envlock()
        .arg("diff")
        .arg(&lock)
        .arg(&target)
        .args(["--format", "json"]));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stderr.contains("`platform_release >= '4'`"),
        "{}",
        done.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["code"], "marker-not-evaluated");
}

#[test]
fn audit_takes_declared_locks_as_operands() {
    let pins = runtime("declared-pins", &["packaging==24.2", "markupsafe==3.0.2"]);
    let folder = project();
    let done = run(envlock()
        .arg("audit")
        .arg(format!("python:{}", pins.display()))
        .arg(folder.join("uv.lock"))
        .arg(format!(
            "poetry-lock:{}",
            folder.join("poetry/poetry.lock").display()
        ))
        .args([
            "--format",
            "csv",
            "--package",
            "packaging",
            "--package",
            "colorama",
            "--all",
        ]));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let rows: Vec<&str> = done.stdout.lines().skip(1).collect();
    assert_eq!(
        rows,
        ["packages,packaging,24.2,24.2,24.2"],
        "{}",
        done.stdout
    );
}

/// An image built from the offline base with `requirements` installed from their wheels.
fn image_with(requirements: &[&str]) -> String {
    let wheels: Vec<PathBuf> = requirements
        .iter()
        .map(|r| crate::docker::wheel_for_image(r))
        .collect();
    let names: Vec<String> = wheels
        .iter()
        .map(|wheel| wheel.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let mut dockerfile = String::from("FROM {base}\n");
    for name in &names {
        dockerfile.push_str(&format!("COPY {name} /tmp/\n"));
    }
    let paths: Vec<String> = names.iter().map(|name| format!("/tmp/{name}")).collect();
    dockerfile.push_str(&format!(
        "RUN python3 -m pip install -q --no-index --no-deps --break-system-packages {} && rm {}\nCMD [\"python3\"]\n",
        paths.join(" "),
        paths.join(" ")
    ));
    let files: Vec<(&str, &Path)> = names
        .iter()
        .map(String::as_str)
        .zip(wheels.iter().map(PathBuf::as_path))
        .collect();
    crate::docker::built("declared-pins", &dockerfile, &files)
}

/// An image built from the same pins passes every format in exec and static capture; a
/// drifted one gives exactly what `importlib.metadata` shows inside it; the same from the
/// image's layers (`docker-archive:`) and from a registry (`registry:`).
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn images_from_the_pins_and_drifted_ones_for_every_format() {
    crate::docker::need_engine();
    let cases = [
        (image_with(&["packaging==24.2", "markupsafe==3.0.2"]), false),
        (image_with(&["packaging==24.1", "six==1.17.0"]), true),
    ];
    for (image, drifted) in cases {
        let installed = crate::docker::importlib_in_image(&image);
        let want = expected(REQUIRED, &installed);
        assert_eq!(
            want.iter().any(|(code, _)| code != "package-added"),
            drifted,
            "{want:?}"
        );
        // The engine's image in exec and static capture, and read from its layers.
        let archive_dir = tempfile::tempdir().unwrap();
        let archive = crate::docker::saved(&image, archive_dir.path());
        let registry = crate::registry::Registry::start(None);
        let pushed = registry.push(&image, &format!("declared:{}", u8::from(drifted)));
        let targets = [
            (image.clone(), vec![]),
            (image.clone(), vec!["--no-exec"]),
            (format!("docker-archive:{}", archive.display()), vec![]),
            (format!("registry:{pushed}"), vec![]),
        ];
        for lock in locks() {
            for (target, args) in &targets {
                let (findings, code, stderr) = package_findings(&lock, target, args);
                assert_eq!(
                    findings,
                    want,
                    "{} {args:?} {target}: {stderr}",
                    lock.display()
                );
                assert_eq!(code, i32::from(drifted), "{stderr}");
            }
        }
    }
}

/// The drift made on top of what a tool installed: a minor downgrade, an error.
const DRIFT: &str = "tqdm==4.66.5";

/// Poetry 1.8 from PyPI, in a venv of its own (its locks are lock-version 2.0).
fn poetry1() -> PathBuf {
    let python = venv("lock-tools-poetry1", "poetry==1.8.5", &[], |folder| {
        pip_install(folder, &["poetry==1.8.5"]);
    });
    python.parent().unwrap().join("poetry")
}

/// The fixture projects of `fixtures/declared/projects` (locks written by the real tools,
/// see its `regenerate.sh`): the lock, and how its own tool installs what it requires.
#[derive(Debug, Clone, Copy)]
enum Installer {
    /// `poetry install --only main` with Poetry 2 (lock-version 2.1).
    Poetry2,
    /// `poetry install --only main` with Poetry 1.8 (lock-version 2.0).
    Poetry1,
    /// `uv sync --no-dev --frozen`.
    UvSync,
    /// `pip install -r requirements.txt`, as `uv export --no-dev` wrote it.
    PipRequirements,
}

impl Installer {
    const ALL: [Installer; 4] = [
        Installer::Poetry2,
        Installer::Poetry1,
        Installer::UvSync,
        Installer::PipRequirements,
    ];

    fn folder(self) -> PathBuf {
        let name = match self {
            Installer::Poetry2 => "poetry2",
            Installer::Poetry1 => "poetry1",
            Installer::UvSync | Installer::PipRequirements => "uv",
        };
        crate::support::root()
            .join("fixtures/declared/projects")
            .join(name)
    }

    /// The locks this runtime is installed from: uv's lock, its pylock.toml export (the same
    /// pins) and its requirements export for uv; the poetry.lock for Poetry.
    fn locks(self) -> Vec<PathBuf> {
        let folder = self.folder();
        match self {
            Installer::Poetry2 | Installer::Poetry1 => vec![folder.join("poetry.lock")],
            Installer::UvSync => vec![folder.join("uv.lock"), folder.join("pylock.toml")],
            Installer::PipRequirements => vec![folder.join("requirements.txt")],
        }
    }

    /// A venv where the lock's own tool installed its main dependencies (then, with `drift`,
    /// tqdm moved to another minor version by pip), built once per lock text.
    fn runtime(self, drift: bool) -> PathBuf {
        let folder = self.folder();
        let lock_text: String = self
            .locks()
            .iter()
            .map(|lock| std::fs::read_to_string(lock).unwrap())
            .collect();
        let spec = format!("{self:?} drift={drift} {DRIFT} {lock_text}");
        let name = format!("declared-{self:?}-{}", if drift { "drift" } else { "main" });
        // The tools' own venvs first: `venv` builds one venv at a time.
        let (poetry2, poetry1, mut uv) = (tools().join("poetry"), poetry1(), tool("uv"));
        venv(&name.to_ascii_lowercase(), &spec, &[], |venv_folder| {
            // The tools write beside the project (Poetry's and uv's caches, `.venv`): a copy.
            let work = tempfile::tempdir().unwrap();
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, work.path().join(path.file_name().unwrap())).unwrap();
            }
            let path = format!(
                "{}:{}",
                venv_folder.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let poetry = |program: PathBuf| {
                let mut command = Command::new(program);
                command
                    .args(["install", "--only", "main", "--no-root", "--no-interaction"])
                    .current_dir(work.path())
                    .env("VIRTUAL_ENV", venv_folder)
                    .env("PATH", &path)
                    .env("POETRY_CACHE_DIR", cache_root().join("poetry-cache"));
                command
            };
            match self {
                Installer::Poetry2 => must(&mut poetry(poetry2)),
                Installer::Poetry1 => must(&mut poetry(poetry1)),
                Installer::UvSync => must(
                    uv.args(["sync", "-q", "--no-dev", "--frozen"])
                        .current_dir(work.path())
                        .env("UV_PROJECT_ENVIRONMENT", venv_folder),
                ),
                Installer::PipRequirements => pip_install(
                    venv_folder,
                    &["-r", work.path().join("requirements.txt").to_str().unwrap()],
                ),
            }
            if drift {
                pip_install(venv_folder, &["--no-deps", DRIFT]);
            }
        })
    }
}

/// What the fixture project's own tools installed is what its locks require: nothing
/// missing, no other version, no other build (pydantic-core's wheel carries maturin's
/// compressed `Tag:`, lightgbm's scikit-build-core's `py3-none-linux_x86_64`), and nothing
/// added but the venv's installer tooling; then one package moved gives exactly one
/// `package-version`. `importlib.metadata` confirms what the tool installed.
#[test]
fn what_each_tool_installs_from_its_lock_is_what_the_lock_requires() {
    for installer in Installer::ALL {
        let python = installer.runtime(false);
        let installed = importlib_packages(&python, &[]);
        let names: BTreeSet<&str> = installed.iter().map(|(name, _)| name.as_str()).collect();
        // The Windows and old-Python edges and the dev group were left out by the tool too.
        for absent in ["colorama", "exceptiongroup", "tomli", "pytest", "iniconfig"] {
            assert!(!names.contains(absent), "{installer:?}: {installed:?}");
        }
        for present in ["pydantic-core", "lightgbm", "click", "tqdm"] {
            assert!(names.contains(present), "{installer:?}: {installed:?}");
        }
        let target = format!("python:{}", python.display());
        for lock in installer.locks() {
            let (findings, code, stderr) = package_findings(&lock, &target, &[]);
            let tooling: BTreeSet<(String, String)> = findings
                .iter()
                .filter(|(code, name)| {
                    code == "package-added"
                        && ["pip", "setuptools", "wheel"].contains(&name.as_str())
                })
                .cloned()
                .collect();
            assert_eq!(
                findings,
                tooling,
                "{installer:?} {}: {stderr}",
                lock.display()
            );
            assert_eq!(code, 0, "{installer:?} {}: {stderr}", lock.display());
        }
        let drifted = installer.runtime(true);
        let target = format!("python:{}", drifted.display());
        for lock in installer.locks() {
            let (findings, code, stderr) = package_findings(&lock, &target, &[]);
            let drift: Vec<&(String, String)> = findings
                .iter()
                .filter(|(code, _)| code != "package-added")
                .collect();
            assert_eq!(
                drift,
                [&("package-version".to_string(), "tqdm".to_string())],
                "{installer:?} {}: {stderr}",
                lock.display()
            );
            assert_eq!(code, 1, "{stderr}");
        }
    }
}

/// `--group dev` adds pytest and what it needs on Linux CPython 3.11, and nothing for
/// Windows or older Pythons.
#[test]
fn the_dev_group_of_a_real_lock_is_required_only_when_named() {
    let python = Installer::Poetry2.runtime(false);
    let target = format!("python:{}", python.display());
    for installer in [Installer::Poetry2, Installer::Poetry1, Installer::UvSync] {
        let lock = installer.locks().remove(0);
        let (findings, _, _) = package_findings(&lock, &target, &["--group", "dev"]);
        let missing: BTreeSet<&str> = findings
            .iter()
            .filter(|(code, _)| code == "package-missing")
            .map(|(_, name)| name.as_str())
            .collect();
        assert_eq!(
            missing,
            BTreeSet::from(["iniconfig", "packaging", "pluggy", "pytest"]),
            "{}",
            lock.display()
        );
    }
}

/// A uv.lock with conflicting extras (`fixtures/declared/projects/uv-conflicts`): uv gates
/// the edges of an extra by markers it encodes (`extra == 'extra-9-conf-demo-old'`). What
/// `uv sync --no-dev --extra old` installs is what the lock requires with `--extra old`.
#[test]
fn uv_conflicting_extras_as_uv_sync_installs_them() {
    let folder = crate::support::root().join("fixtures/declared/projects/uv-conflicts");
    let lock = folder.join("uv.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let mut uv = tool("uv");
    let python = venv("declared-uv-conflicts", &text, &[], |venv_folder| {
        let work = tempfile::tempdir().unwrap();
        for name in ["pyproject.toml", "uv.lock"] {
            std::fs::copy(folder.join(name), work.path().join(name)).unwrap();
        }
        must(
            uv.args(["sync", "-q", "--no-dev", "--frozen", "--extra", "old"])
                .current_dir(work.path())
                .env("UV_PROJECT_ENVIRONMENT", venv_folder),
        );
    });
    let installed = importlib_packages(&python, &[]);
    assert!(
        installed.contains(&("pytest".to_string(), "7.0.0".to_string())),
        "{installed:?}"
    );
    let target = format!("python:{}", python.display());
    let (findings, code, stderr) = package_findings(&lock, &target, &["--extra", "old"]);
    assert!(
        findings.iter().all(|(code, name)| code == "package-added"
            && ["pip", "setuptools", "wheel"].contains(&name.as_str())),
        "{findings:?}\n{stderr}"
    );
    assert_eq!(code, 0, "{stderr}");
    // Without the extra, the lock wants pytest 8 and not what pytest 7 alone needs.
    let (findings, _, _) = package_findings(&lock, &target, &[]);
    assert!(
        findings.contains(&("package-version".into(), "pytest".into())),
        "{findings:?}"
    );
    for only_old in ["attrs", "py", "tomli"] {
        assert!(
            findings.contains(&("package-added".into(), only_old.into())),
            "{findings:?}"
        );
    }
}
