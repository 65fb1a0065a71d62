//! The readers against small locks written as their tools write them, and selection.

use super::*;
use crate::lock::Lock;

fn target(version: &str, os: &str) -> Lock {
    let mut lock: Lock = toml::from_str(&format!(
        r#"
        [envlock]
        schema = 1
        created-by = "test"
        [source]
        kind = "image"
        [python]
        implementation = "cpython"
        version = "{version}"
        [platform]
        os = "{os}"
        arch = "x86_64"
        [env]
        "#
    ))
    .unwrap();
    lock.packages.clear();
    lock
}

fn write(name: &str, text: &str) -> (tempfile::TempDir, DeclaredSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let source = DeclaredSource::parse(path.to_str().unwrap()).unwrap();
    (dir, source)
}

fn selected(
    source: &DeclaredSource,
    target: &Lock,
    extras: &[&str],
    groups: &[&str],
) -> Vec<String> {
    let selection = Selection {
        extras: extras.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    };
    baseline(source, Some(target), &selection)
        .unwrap()
        .lock
        .packages
        .iter()
        .map(|package| format!("{} {}", package.name, package.version))
        .collect()
}

const UV_LOCK: &str = r#"
version = 1
revision = 2
requires-python = ">=3.10"

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files/colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:00" }]

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "numpy", version = "1.26.4", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version < '3.12'" },
    { name = "numpy", version = "2.1.0", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version >= '3.12'" },
    { name = "rich", extra = ["jupyter"] },
]

[package.optional-dependencies]
gpu = [{ name = "six" }]

[package.dev-dependencies]
dev = [{ name = "iniconfig" }]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "ipywidgets"
version = "8.1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "rich"
version = "13.9.4"
source = { registry = "https://pypi.org/simple" }

[package.optional-dependencies]
jupyter = [{ name = "ipywidgets" }]

[[package]]
name = "six"
version = "1.17.0"
source = { registry = "https://pypi.org/simple" }
"#;

#[test]
fn uv_lock_walks_from_the_root_with_markers_extras_and_groups() {
    let (_dir, source) = write("uv.lock", UV_LOCK);
    let linux = target("3.11.7", "linux");
    assert_eq!(
        selected(&source, &linux, &[], &[]),
        ["ipywidgets 8.1.0", "numpy 1.26.4", "rich 13.9.4"]
    );
    assert_eq!(
        selected(&source, &target("3.12.1", "windows"), &["gpu"], &["dev"]),
        [
            "colorama 0.4.6",
            "iniconfig 2.0.0",
            "ipywidgets 8.1.0",
            "numpy 2.1.0",
            "rich 13.9.4",
            "six 1.17.0"
        ]
    );
    let selected = baseline(&source, Some(&linux), &Selection::default()).unwrap();
    let declared = selected.lock.declared.unwrap();
    assert_eq!(declared.requires_python.as_deref(), Some(">=3.10"));
    assert_eq!(declared.projects, ["demo"]);
    let unknown = Selection {
        extras: vec!["cuda".into()],
        groups: vec![],
    };
    let error = baseline(&source, Some(&linux), &unknown).unwrap_err();
    assert!(error.to_string().contains("no extra `cuda`"), "{error}");
}

#[test]
fn unknown_lock_versions_are_refused() {
    let (_dir, source) = write("uv.lock", "version = 2\n");
    assert!(matches!(read(&source), Err(Error::DeclaredVersion { .. })));
    let (_dir, source) = write("pylock.toml", "lock-version = \"2.0\"\n");
    assert!(matches!(read(&source), Err(Error::DeclaredVersion { .. })));
    let (_dir, source) = write("poetry.lock", "[metadata]\nlock-version = \"3.0\"\n");
    assert!(matches!(read(&source), Err(Error::DeclaredVersion { .. })));
}

#[test]
fn malformed_locks_say_line_and_column() {
    let (_dir, source) = write("uv.lock", "version = 1\n[[package]\nname = 'x'\n");
    let error = read(&source).unwrap_err().to_string();
    assert!(error.contains("line 2, column"), "{error}");
    let (_dir, source) = write(
        "pylock.toml",
        "lock-version = '1.0'\n[[packages]]\nversion = 3\n",
    );
    let error = read(&source).unwrap_err().to_string();
    assert!(error.contains("line 3"), "{error}");
}

#[test]
fn a_bad_requirement_in_the_pyproject_is_the_pyprojects_error() {
    let lock = "[[package]]\nname = 'click'\nversion = '8.1.7'\noptional = false\n\n\
                [metadata]\nlock-version = '2.1'\npython-versions = '>=3.10'\ncontent-hash = '00'\n";
    let (dir, source) = write("poetry.lock", lock);
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = 'demo'\ndependencies = ['click >=>= 8']\n",
    )
    .unwrap();
    match read(&source) {
        Err(Error::InvalidProject { path, detail }) => {
            assert_eq!(path, dir.path().join("pyproject.toml"));
            assert!(detail.contains("click >=>= 8"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pylock_markers_with_extras_and_groups() {
    let text = r#"
lock-version = "1.0"
requires-python = ">=3.9"
extras = ["gpu"]
dependency-groups = ["dev"]
default-groups = []

[[packages]]
name = "demo"
directory = { path = ".", editable = true }

[[packages]]
name = "Numpy"
version = "1.26.4"
wheels = [{ name = "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", url = "https://x/numpy.whl" }]

[[packages]]
name = "cupy"
version = "13.0.0"
marker = "'gpu' in extras"

[[packages]]
name = "pytest"
version = "8.0.0"
marker = "'dev' in dependency_groups and sys_platform == 'linux'"

[[packages]]
name = "pywin32"
version = "306"
marker = "sys_platform == 'win32'"
"#;
    let (_dir, source) = write("pylock.toml", text);
    let linux = target("3.11.7", "linux");
    assert_eq!(selected(&source, &linux, &[], &[]), ["numpy 1.26.4"]);
    assert_eq!(
        selected(&source, &linux, &["gpu"], &["dev"]),
        ["cupy 13.0.0", "numpy 1.26.4", "pytest 8.0.0"]
    );
    let lock = baseline(&source, Some(&linux), &Selection::default())
        .unwrap()
        .lock;
    assert_eq!(lock.packages[0].wheels.len(), 1);
    assert_eq!(lock.declared.unwrap().projects, ["demo"]);
}

#[test]
fn poetry_groups_and_extras() {
    let text = r#"
[[package]]
name = "colorama"
version = "0.4.6"
optional = false
python-versions = ">=3.7"
groups = ["main"]
markers = "sys_platform == \"win32\""
files = [{file = "colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:00"}]

[[package]]
name = "iniconfig"
version = "2.0.0"
optional = false
groups = ["dev"]

[[package]]
name = "six"
version = "1.17.0"
optional = true
groups = ["main"]
markers = "extra == \"plots\""

[[package]]
name = "tomli"
version = "2.2.1"
optional = false
groups = ["main", "dev"]
markers = {main = "python_version < \"3.11\"", dev = "python_version >= \"3.8\""}

[extras]
plots = ["six"]

[metadata]
lock-version = "2.1"
python-versions = "^3.10"
content-hash = "00"
"#;
    let (dir, source) = write("poetry.lock", text);
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = 'Demo_Model'\nrequires-python = '>=3.10'\n",
    )
    .unwrap();
    let linux = target("3.11.7", "linux");
    assert!(selected(&source, &linux, &[], &[]).is_empty());
    assert_eq!(
        selected(&source, &linux, &["plots"], &["dev"]),
        ["iniconfig 2.0.0", "six 1.17.0", "tomli 2.2.1"]
    );
    assert_eq!(
        selected(&source, &target("3.10.4", "windows"), &[], &[]),
        ["colorama 0.4.6", "tomli 2.2.1"]
    );
    let declared = baseline(&source, Some(&linux), &Selection::default())
        .unwrap()
        .lock
        .declared
        .unwrap();
    assert_eq!(declared.requires_python.as_deref(), Some(">=3.10"));
    assert_eq!(declared.projects, ["demo-model"]);
}

#[test]
fn requirements_pins_includes_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.txt"), "six==1.17.0 # via demo\n").unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = 'demo'\n",
    )
    .unwrap();
    let text = "\
# generated
-e .
--index-url https://pypi.org/simple
-r base.txt
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:00 \\
    --hash=sha256:11
numpy===1.26.4
Markupsafe==3.0.2 --hash=sha256:22
local @ https://example.com/local-1.0-py3-none-any.whl#sha256=00
";
    let path = dir.path().join("requirements.txt");
    std::fs::write(&path, text).unwrap();
    let source = DeclaredSource::parse(path.to_str().unwrap()).unwrap();
    let linux = target("3.11.7", "linux");
    assert_eq!(
        selected(&source, &linux, &[], &[]),
        [
            "local 1.0",
            "markupsafe 3.0.2",
            "numpy 1.26.4",
            "six 1.17.0"
        ]
    );
    let selected = baseline(&source, Some(&linux), &Selection::default()).unwrap();
    assert_eq!(selected.lock.declared.unwrap().projects, ["demo"]);

    std::fs::write(&path, "six==1.17.0\n\nnumpy>=1.0 \\\n  --hash=sha256:00\n").unwrap();
    let error = read(&source).unwrap_err();
    assert!(matches!(error, Error::NotAPin { line: 3, .. }), "{error:?}");
    assert!(error.to_string().contains("a range is not a lock"));
    std::fs::write(&path, "numpy\n").unwrap();
    assert!(matches!(read(&source), Err(Error::NotAPin { line: 1, .. })));
    std::fs::write(&path, "-r requirements.txt\n").unwrap();
    assert!(read(&source).is_err());
}

#[test]
fn an_unknown_marker_value_is_a_warning_and_required() {
    let (_dir, source) = write(
        "requirements.txt",
        "six==1.17.0 ; platform_release >= '5.0'\n",
    );
    let selected = baseline(
        &source,
        Some(&target("3.11.7", "linux")),
        &Selection::default(),
    )
    .unwrap();
    assert_eq!(selected.lock.packages.len(), 1);
    assert_eq!(selected.warnings.len(), 1);
    assert_eq!(selected.warnings[0].code, WarningCode::MarkerNotEvaluated);
    assert!(selected.warnings[0].message.contains("platform_release"));
}

mod never_panic {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_bytes_never_panic_a_reader(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = uv::read(&text);
            let _ = pylock::read(&text);
            let _ = poetry::read(&text, Some(&text));
            let _ = requirements::read(std::path::Path::new("/nonexistent/requirements.txt"), &text);
        }

        #[test]
        fn random_requirement_lines_never_panic(line in "[a-zA-Z0-9=<>!~;'\" .@:/#\\\\,_\\[\\]-]{0,60}") {
            let _ = requirements::read(std::path::Path::new("/nonexistent/requirements.txt"), &line);
            let _ = markers::Marker::parse(&line);
        }
    }
}

#[test]
fn names_and_extras_ending_in_a_separator_are_refused_not_panicked_on() {
    // pep508_rs 0.9 panics on these (fuzzing found the extras).
    let path = std::path::Path::new("requirements.txt");
    for (line, says) in [
        ("a-'", "package name"),
        ("numpy[p6.,4", "extra's name"),
        ("numpy [ fast_ ]==1.0", "extra's name"),
        ("numpy[ok,bad-]==1.0", "extra's name"),
    ] {
        let problem = format!("{:?}", requirements::read(path, line).unwrap_err());
        assert!(problem.contains(says), "{line}: {problem}");
    }
    assert!(requirements::read(path, "numpy[fast,x.y]==1.0").is_ok());
}

#[test]
fn an_include_that_is_no_regular_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requirements.txt");
    // A device that never ends, and a folder: neither is read.
    for include in ["/dev/zero", "/"] {
        let text = format!("-r {include}\nnumpy==1.26.4\n");
        let problem = requirements::read(&path, &text).unwrap_err();
        let text = format!("{problem:?}");
        assert!(text.contains("not a regular file"), "{include}: {text}");
    }
}

/// A lock the real tools wrote for `fixtures/declared/projects` (see its `regenerate.sh`).
fn project_lock(relative: &str) -> DeclaredSource {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/declared/projects")
        .join(relative);
    DeclaredSource::parse(path.to_str().unwrap()).unwrap()
}

/// What `poetry install --only main` / `uv sync --no-dev` put in a Linux CPython 3.11 venv
/// for the fixture project (checked against the tools by `tests/it/declared_locks.rs`).
const PROJECT_MAIN: &[&str] = &[
    "annotated-types",
    "click",
    "lightgbm",
    "numpy",
    "pydantic",
    "pydantic-core",
    "scipy",
    "tqdm",
    "typing-extensions",
];

fn names(source: &DeclaredSource, target: &Lock, extras: &[&str], groups: &[&str]) -> Vec<String> {
    selected(source, target, extras, groups)
        .into_iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect()
}

/// The bug of issue 32: a real project's dev group and its Windows and old-Python edges
/// were required from a Linux 3.11 runtime.
#[test]
fn real_poetry_and_uv_locks_require_only_main_for_linux_311() {
    let linux = target("3.11.7", "linux");
    for lock in ["poetry2/poetry.lock", "poetry1/poetry.lock", "uv/uv.lock"] {
        let source = project_lock(lock);
        assert_eq!(names(&source, &linux, &[], &[]), PROJECT_MAIN, "{lock}");
    }
}

#[test]
fn real_locks_add_a_group_or_an_extra_when_named() {
    let linux = target("3.11.7", "linux");
    for lock in ["poetry2/poetry.lock", "poetry1/poetry.lock", "uv/uv.lock"] {
        let source = project_lock(lock);
        let dev = names(&source, &linux, &[], &["dev"]);
        let added: Vec<&str> = dev
            .iter()
            .map(String::as_str)
            .filter(|name| !PROJECT_MAIN.contains(name))
            .collect();
        // pytest's exceptiongroup and tomli are for Python < 3.11, its colorama for Windows.
        assert_eq!(
            added,
            ["iniconfig", "packaging", "pluggy", "pytest"],
            "{lock}"
        );
        let test = names(&source, &linux, &[], &["test"]);
        // coverage[toml] needs tomli only up to 3.11.0a6.
        assert!(test.contains(&"coverage".to_string()), "{lock}: {test:?}");
        assert!(!test.contains(&"tomli".to_string()), "{lock}: {test:?}");
        let watch = names(&source, &linux, &["watch"], &[]);
        let added: Vec<&str> = watch
            .iter()
            .map(String::as_str)
            .filter(|name| !PROJECT_MAIN.contains(name))
            .collect();
        // anyio's exceptiongroup is for Python < 3.11, its typing-extensions already main.
        assert_eq!(added, ["anyio", "idna", "watchfiles"], "{lock}");
        assert!(!added.contains(&"exceptiongroup"), "{lock}: {added:?}");
    }
}

#[test]
fn real_locks_follow_windows_and_old_python_edges_for_such_targets() {
    let windows = target("3.11.7", "windows");
    let old = target("3.9.18", "linux");
    for lock in ["poetry2/poetry.lock", "poetry1/poetry.lock", "uv/uv.lock"] {
        let source = project_lock(lock);
        assert!(
            names(&source, &windows, &[], &[]).contains(&"colorama".to_string()),
            "{lock}"
        );
        let dev = names(&source, &old, &[], &["dev", "docs"]);
        for name in ["exceptiongroup", "tomli", "importlib-metadata", "zipp"] {
            assert!(dev.contains(&name.to_string()), "{lock}: {name} in {dev:?}");
        }
        assert!(!dev.contains(&"colorama".to_string()), "{lock}: {dev:?}");
    }
}

#[test]
fn a_poetry_lock_without_its_pyproject_falls_back_to_its_own_groups() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(project_lock("poetry2/poetry.lock").path).unwrap();
    let path = dir.path().join("poetry.lock");
    std::fs::write(&path, text).unwrap();
    let source = DeclaredSource::parse(path.to_str().unwrap()).unwrap();
    // Poetry 2's per-package groups and markers say the same as the walk.
    assert_eq!(
        names(&source, &target("3.11.7", "linux"), &[], &[]),
        PROJECT_MAIN
    );
}

/// Found on a public Poetry 2 lock (fastembed): a root edge whose constraint fits two
/// versions of a forked package reached both, and the one for Python 3.10 brought its own
/// dependency in; the entry whose own markers are false for the target is not followed.
#[test]
fn a_poetry_fork_is_followed_only_where_its_markers_hold() {
    let lock = r#"
[[package]]
name = "coloredlogs"
version = "15.0.1"
optional = false
groups = ["main"]
markers = "python_version == \"3.10\""

[[package]]
name = "onnxruntime"
version = "1.23.2"
optional = false
groups = ["main"]
markers = "python_version == \"3.10\""

[package.dependencies]
coloredlogs = "*"

[[package]]
name = "onnxruntime"
version = "1.24.2"
optional = false
groups = ["main"]
markers = "python_version >= \"3.11\""

[metadata]
lock-version = "2.1"
python-versions = ">=3.10.0"
content-hash = "00"
"#;
    let (dir, source) = write("poetry.lock", lock);
    std::fs::write(
        dir.path().join("pyproject.toml"),
        r#"
[tool.poetry.dependencies]
python = ">=3.10.0"
onnxruntime = [
    { version = ">=1.17.0,<1.24", python = "3.10" },
    { version = ">=1.17.0,!=1.24.0", python = ">=3.11,<3.13" },
]
"#,
    )
    .unwrap();
    assert_eq!(
        selected(&source, &target("3.11.7", "linux"), &[], &[]),
        ["onnxruntime 1.24.2"]
    );
    assert_eq!(
        selected(&source, &target("3.10.14", "linux"), &[], &[]),
        ["coloredlogs 15.0.1", "onnxruntime 1.23.2"]
    );
}

/// uv writes conflicting extras into edge markers (`extra == 'extra-9-conf-demo-old'`):
/// `uv sync --extra old` installs pytest 7 and what it needs, which the markers gate; what
/// `uv sync --no-dev [--extra old]` installs on Linux CPython 3.11 is what is required.
#[test]
fn uv_conflict_markers_follow_the_selected_extra() {
    let source = project_lock("uv-conflicts/uv.lock");
    let linux = target("3.11.7", "linux");
    assert_eq!(
        selected(&source, &linux, &[], &[]),
        [
            "idna 3.10",
            "iniconfig 2.0.0",
            "packaging 26.4",
            "pluggy 1.7.0",
            "pytest 8.3.4",
            "pytest-timeout 2.3.1"
        ]
    );
    assert_eq!(
        selected(&source, &linux, &["old"], &[]),
        [
            "attrs 26.1.0",
            "idna 3.10",
            "iniconfig 2.0.0",
            "packaging 26.4",
            "pluggy 1.7.0",
            "py 1.11.0",
            "pytest 7.0.0",
            "pytest-timeout 2.3.1",
            "tomli 2.5.0"
        ]
    );
}

/// Poetry 1.8's lock without the pyproject.toml: nothing tells the dev group or a Windows
/// edge apart, so all is required, and a note says why.
#[test]
fn a_poetry_1_8_lock_alone_says_it_takes_everything_as_required() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(project_lock("poetry1/poetry.lock").path).unwrap();
    let path = dir.path().join("poetry.lock");
    std::fs::write(&path, text).unwrap();
    let source = DeclaredSource::parse(path.to_str().unwrap()).unwrap();
    let linux = target("3.11.7", "linux");
    let chosen = baseline(&source, Some(&linux), &Selection::default()).unwrap();
    let names: Vec<&str> = chosen
        .lock
        .packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    assert!(
        names.contains(&"pytest") && names.contains(&"colorama"),
        "{names:?}"
    );
    assert!(
        chosen
            .notes
            .iter()
            .any(|note| note.contains("before lock-version 2.1")),
        "{:?}",
        chosen.notes
    );
    // With its pyproject.toml, no note.
    let chosen = baseline(
        &project_lock("poetry1/poetry.lock"),
        Some(&linux),
        &Selection::default(),
    )
    .unwrap();
    assert_eq!(chosen.notes.len(), 1, "{:?}", chosen.notes);
}
