//! Shared by the integration tests: running envlock, building real venvs (cached between runs
//! under `target/tmp`), and asking `importlib.metadata` what an interpreter sees.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A folder kept between test runs, for expensive fixtures.
pub fn cache_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("envlock-fixtures")
}

/// envlock with an isolated interpreter cache and no colours.
pub fn envlock() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_envlock"));
    command
        .env("ENVLOCK_CACHE_DIR", cache_root().join("interpreter-cache"))
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .env("NO_COLOR", "1");
    command
}

/// A finished envlock run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("envlock starts");
    Run {
        code: status.code().expect("envlock exits, not killed"),
        stdout: String::from_utf8(stdout).expect("output is UTF-8"),
        stderr: String::from_utf8(stderr).expect("messages are UTF-8"),
    }
}

/// Runs envlock and insists on success; returns the lock printed on stdout.
pub fn snapshot(command: &mut Command) -> toml::Table {
    let run = run(command);
    assert_eq!(run.code, 0, "envlock failed:\n{}", run.stderr);
    run.stdout.parse().expect("the lock is TOML")
}

/// The `(name, version)` pairs of a lock's packages.
pub fn lock_packages(lock: &toml::Table) -> BTreeSet<(String, String)> {
    lock["packages"]
        .as_array()
        .expect("packages is an array")
        .iter()
        .map(|package| {
            (
                package["name"].as_str().unwrap().to_string(),
                package["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One package of a lock by name.
pub fn lock_package<'a>(lock: &'a toml::Table, name: &str) -> &'a toml::Table {
    lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package.as_table().unwrap())
        .find(|package| package["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no package `{name}` in the lock"))
}

/// Prints what `importlib.metadata` reports: first copy per PEP 503 name, as JSON pairs.
pub const IMPORTLIB_SCRIPT: &str = r#"
import importlib.metadata, json, re
seen = {}
for dist in importlib.metadata.distributions():
    name = dist.metadata["Name"]
    if not name or not dist.version:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    seen.setdefault(key, dist.version)
print(json.dumps(sorted(seen.items())))
"#;

/// What `importlib.metadata.distributions()` reports in `python`: first copy per PEP 503 name.
/// Run from an empty folder so the current folder adds nothing.
pub fn importlib_packages(python: &Path, envs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    let empty = tempfile::tempdir().unwrap();
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(IMPORTLIB_SCRIPT)
        .current_dir(empty.path());
    command.env_remove("PYTHONPATH");
    for (key, value) in envs {
        command.env(key, value);
    }
    importlib_answer(&mut command)
}

/// Runs a command that runs [`IMPORTLIB_SCRIPT`] and reads its `(name, version)` pairs.
pub fn importlib_answer(command: &mut Command) -> BTreeSet<(String, String)> {
    let output = command.output().expect("the importlib script runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pairs: Vec<(String, String)> = serde_json::from_slice(&output.stdout).unwrap();
    pairs.into_iter().collect()
}

/// The real interpreter behind `python3` on PATH (not a shim), so tests are fast.
pub fn system_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is on PATH");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// Runs a setup command, failing the test with its output when it fails.
pub fn must(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A venv built once and kept under `target/tmp` (rebuilt when `spec` changes, or the
/// checkout moves: an editable install points into it, and CI shares the target folder
/// between checkouts). `install` runs inside it after creation. Returns `bin/python`.
pub fn venv(name: &str, spec: &str, extra: &[&str], install: impl FnOnce(&Path)) -> PathBuf {
    // One build of each venv at a time; different venvs build side by side (pip waits on
    // the network more than on a core).
    let guard = one_at_a_time(&format!("venv {name}"));
    let _guard = guard.lock();
    let keyed = format!("{spec}\n{}", env!("CARGO_MANIFEST_DIR"));
    let key = format!("{:016x}", fnv(keyed.as_bytes()));
    let folder = cache_root().join("venvs").join(format!("{name}-{key}"));
    let python = folder.join("bin/python");
    let ready = folder.join(".envlock-ready");
    if ready.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&folder);
    must(
        Command::new(system_python())
            .args(["-m", "venv"])
            .args(extra)
            .arg(&folder),
    );
    install(&folder);
    std::fs::write(&ready, spec).unwrap();
    python
}

/// Copies the folder `from` (its files and folders) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The site folder of the venv whose `bin/python` is `python`.
pub fn site_packages(python: &Path) -> PathBuf {
    let venv = python
        .parent()
        .and_then(Path::parent)
        .expect("VENV/bin/python");
    venv.join("lib/python3.11/site-packages")
}

/// `pip install` into a venv, quietly, using pip's download cache.
pub fn pip_install(venv: &Path, args: &[&str]) {
    must(
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(args),
    );
}

/// A folder for what the tests of this run share (image archives, made once for several
/// tests), removed when the test binary exits.
pub fn run_folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(folder) = FOLDER.get() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
    FOLDER.get_or_init(|| {
        // Under the target folder's own scratch space, beside the fixtures it holds copies of.
        let folder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        // SAFETY: `remove` is a plain function that stays valid for the whole process.
        unsafe { libc::atexit(remove) };
        folder
    })
}

/// A lock of its own for each `key`: work on one fixture (a venv, an image tag) happens
/// once at a time, while other fixtures are built alongside it.
pub fn one_at_a_time(key: &str) -> KeyLock {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    KeyLock(locks.entry(key.to_string()).or_default().clone())
}

/// The lock of one key ([`one_at_a_time`]).
pub struct KeyLock(Arc<Mutex<()>>);

impl KeyLock {
    /// Waits for the key; a test that panicked holding it does not stop the others.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}

/// `envlock snapshot --python ML-VENV -o LOCK` run from `folder` (its envlock.toml) with
/// `env` added, insisting on success; the run, for its messages.
pub fn ml_snapshot(folder: &Path, lock: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = envlock();
    command
        .args(["snapshot", "--python"])
        .arg(ml_venv())
        .arg("-o")
        .arg(lock)
        .current_dir(folder)
        .envs(env.iter().copied());
    let made = run(&mut command);
    assert_eq!(made.code, 0, "{}", made.stderr);
    made
}

/// The main fixture venv: real wheels from PyPI (a C-extension wheel, a pure one, a namespace
/// package), an editable install and one from a local wheel file.
pub fn ml_venv() -> PathBuf {
    const REQUIREMENTS: &[&str] = &[
        "numpy==1.26.4",
        "PyYAML==6.0.2",
        "typing_extensions==4.12.2",
        "zope.interface==7.1.1",
    ];
    let spec = format!("{REQUIREMENTS:?} editable local-wheel v2");
    venv("ml", &spec, &[], |folder| {
        pip_install(folder, REQUIREMENTS);
        // Builds below use the venv's setuptools, which needs `wheel` for bdist/editable.
        pip_install(folder, &["wheel==0.45.1"]);
        let fixtures = root().join("fixtures/python");
        pip_install(
            folder,
            &[
                "--no-build-isolation",
                "-e",
                fixtures.join("editable-pkg").to_str().unwrap(),
            ],
        );
        // Built from a copy: a setuptools build writes build/ and *.egg-info into its source.
        let source = folder.join("local-pkg");
        must(
            Command::new("cp")
                .arg("-r")
                .arg(fixtures.join("local-pkg"))
                .arg(&source),
        );
        let wheels = folder.join("wheels");
        must(
            Command::new(folder.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "wheel",
                    "-q",
                    "--no-deps",
                    "--no-build-isolation",
                ])
                .arg("-w")
                .arg(&wheels)
                .arg(&source),
        );
        let wheel = std::fs::read_dir(&wheels)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .expect("pip built a wheel");
        pip_install(folder, &[wheel.to_str().unwrap()]);
    })
}

/// A conda prefix by conda's documented layout (`conda-meta/<name>-<version>-<build>.json`)
/// around a real interpreter with real wheels (conda's channels cannot be reached).
pub fn conda_layout_venv() -> PathBuf {
    venv("conda-layout", "conda-layout v1", &[], |folder| {
        pip_install(folder, &["six==1.16.0"]);
        let meta = folder.join("conda-meta");
        std::fs::create_dir_all(&meta).unwrap();
        for (name, version, build, channel) in [
            (
                "mkl",
                "2024.0.0",
                "ha957f24_49657",
                "https://conda.anaconda.org/conda-forge/linux-64",
            ),
            (
                "six",
                "1.16.0",
                "pyh6c4a22f_0",
                "https://conda.anaconda.org/conda-forge/noarch",
            ),
        ] {
            let record = serde_json::json!({
                "name": name, "version": version, "build": build, "build_number": 0,
                "channel": channel, "files": ["lib/libmkl_rt.so.2"], "depends": [],
            });
            std::fs::write(
                meta.join(format!("{name}-{version}-{build}.json")),
                record.to_string(),
            )
            .unwrap();
        }
        std::fs::write(meta.join("history"), "==> 2024-01-01 <==\n").unwrap();
    })
}

/// Writes a fake `.dist-info` with the given METADATA bytes into `site`.
pub fn fake_dist_info(site: &Path, folder: &str, metadata: Option<&[u8]>) {
    let path = site.join(folder);
    std::fs::create_dir_all(&path).unwrap();
    if let Some(metadata) = metadata {
        std::fs::write(path.join("METADATA"), metadata).unwrap();
    }
}

/// Fails when the committed JSON Schema `schemas/NAME` differs from `generated` (the Rust
/// types); `ENVLOCK_BLESS=1` writes it instead.
pub fn assert_schema_current(name: &str, generated: &str) {
    let path = root().join("schemas").join(name);
    if std::env::var_os("ENVLOCK_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/{name} is stale: run `ENVLOCK_BLESS=1 cargo test --test it schema` and commit it"
    );
}

/// `sha256:<hex>` of `bytes`, computed here with `sha2` (not through envlock).
pub fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The Debian package that provides each program the tests run.
const TOOL_PACKAGES: &[(&str, &str)] = &[
    ("socat", "socat"),
    ("skopeo", "skopeo"),
    ("docker-registry", "docker-registry"),
    ("debootstrap", "debootstrap"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("unshare", "util-linux"),
];

/// `program`, installed from Debian's packages first when this machine lacks it, so that
/// `cargo test` passes on a fresh machine as `.ci/run` does (the tests run as root there;
/// elsewhere a missing program is named with the package to install). One install at a
/// time: apt holds a lock.
pub fn tool(program: &'static str) -> &'static str {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let on_path = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if on_path(program) {
        return program;
    }
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if on_path(program) {
        return program;
    }
    let package = TOOL_PACKAGES
        .iter()
        .find(|(name, _)| *name == program)
        .map(|(_, package)| *package)
        .unwrap_or_else(|| panic!("no Debian package is known for `{program}`"));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    assert!(
        root && on_path("apt-get"),
        "this test needs `{program}`: install it with `apt-get install {package}`"
    );
    static UPDATED: OnceLock<()> = OnceLock::new();
    UPDATED.get_or_init(|| must(Command::new("apt-get").args(["update", "-qq"])));
    must(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
    assert!(
        on_path(program),
        "`apt-get install {package}` gave no `{program}`"
    );
    program
}

/// Runs `work` on every item, one thread per worker (each with its own resource, an image
/// say, so what a run leaves is its own), and gives the results in the items' order.
pub fn share_out<W: Sync, I: Sync, R: Send>(
    workers: &[W],
    items: &[I],
    work: impl Fn(&W, usize, &I) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in workers {
            let (next, results, work) = (&next, &results, &work);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(item) = items.get(index) else { break };
                let result = work(worker, index, item);
                results.lock().unwrap().push((index, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Prints a matrix's rows (`Ok`) under `header` and fails with every failed case (`Err`).
pub fn assert_matrix(header: &str, results: Vec<Result<String, String>>) {
    println!("{header}");
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(row) => println!("{row}"),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
