//! Asking an interpreter about itself: the embedded probe script, its JSON answer, and a cache
//! of answers so a repeated snapshot does not start Python again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::process;

/// The probe, run as `python -c SCRIPT`. The same script runs inside images.
pub const SCRIPT: &str = include_str!("probe.py");

/// What the probe prints: facts about the interpreter and the system it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer format's version.
    pub probe: u32,
    /// `sys.implementation.name`.
    pub implementation: String,
    /// `major.minor.micro`, with a pre-release suffix.
    pub version: String,
    /// `sys.executable`.
    pub executable: Option<String>,
    /// `sys.prefix`.
    pub prefix: Option<String>,
    /// `sys.base_prefix`.
    pub base_prefix: Option<String>,
    /// `sysconfig.get_config_var("SOABI")`.
    pub soabi: Option<String>,
    /// `sys.implementation.cache_tag`.
    pub cache_tag: Option<String>,
    /// `sys.path` without the probe's own entry, made absolute.
    pub sys_path: Vec<String>,
    /// The PEP 508 marker environment.
    pub markers: BTreeMap<String, String>,
    /// `glibc` or `musl`.
    pub libc: Option<String>,
    /// The C library's version.
    pub libc_version: Option<String>,
    /// The text of `/etc/os-release`.
    pub os_release: Option<String>,
    /// With `--files`: the metadata files on `sys.path` (see [`crate::python::MemoryFiles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<ProbedFiles>,
}

/// Folder listings and file contents sent by the probe's `--files` mode; bytes travel as
/// Latin-1 code points (one `char` per byte).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbedFiles {
    /// Each `sys.path` folder's entries: name and whether it is a folder.
    pub listings: BTreeMap<String, Vec<(String, bool)>>,
    /// Metadata files by absolute path.
    pub contents: BTreeMap<String, String>,
}

impl Answer {
    /// Parses the probe's standard output.
    pub fn parse(stdout: &[u8]) -> Result<Answer, String> {
        serde_json::from_slice(stdout).map_err(|error| error.to_string())
    }
}

/// Runs the probe with `interpreter`, or takes its answer from the cache when nothing that
/// could change it has changed.
pub fn probe(interpreter: &Path, limit: Duration) -> Result<Answer> {
    let cache = Cache::locate(interpreter);
    if let Some(answer) = cache.as_ref().and_then(Cache::load) {
        return Ok(answer);
    }
    let answer = run(interpreter, limit)?;
    if let Some(cache) = cache {
        cache.store(&answer);
    }
    Ok(answer)
}

fn run(interpreter: &Path, limit: Duration) -> Result<Answer> {
    let not_python = |detail: String| Error::ProbeFailed {
        path: interpreter.to_path_buf(),
        detail,
    };
    let output = process::run(Command::new(interpreter).arg("-c").arg(SCRIPT), None, limit)
        .map_err(|failure| match failure {
            process::Failure::Spawn(source) => Error::InterpreterNotRunnable {
                path: interpreter.to_path_buf(),
                source,
            },
            process::Failure::Timeout => Error::ProbeTimeout {
                path: interpreter.to_path_buf(),
                seconds: limit.as_secs(),
            },
        })?;
    if !output.status.success() {
        return Err(not_python(format!(
            "it exited with {}; its last words: {}",
            output.status,
            printed(&output.stderr)
        )));
    }
    Answer::parse(&output.stdout).map_err(|error| {
        not_python(format!(
            "its output is not the probe's JSON ({error}); it printed: {}",
            printed(&output.stdout)
        ))
    })
}

fn printed(bytes: &[u8]) -> String {
    let tail = process::tail(bytes, 3);
    if tail.is_empty() {
        "nothing".to_string()
    } else {
        format!("`{tail}`")
    }
}

/// A cached answer lives in `<cache dir>/interpreters/<key>.json`. The key covers what decides
/// `sys.path` from outside (the interpreter's path, the variables that move it, the probe
/// itself); the stamps inside cover what can change under the same key (the interpreter's
/// binary, `pyvenv.cfg`, every `sys.path` folder, where an install or a new `.pth` shows).
struct Cache {
    file: PathBuf,
    interpreter: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    stamps: Vec<Stamp>,
    answer: Answer,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct Stamp {
    path: PathBuf,
    /// Modification time in nanoseconds and size; `None` when the path did not exist.
    state: Option<(u128, u64)>,
}

/// Variables that change what the interpreter reports.
const KEY_VARIABLES: &[&str] = &[
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONSAFEPATH",
    "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR",
    "PYTHONEXECUTABLE",
    "HOME",
];

impl Cache {
    /// `None` when caching is off (`ENVLOCK_NO_CACHE`), there is no cache folder, or the
    /// interpreter is a script (a pyenv or conda shim picks its Python at each start, so no
    /// stamp could tell that the answer changed).
    fn locate(interpreter: &Path) -> Option<Cache> {
        if std::env::var_os("ENVLOCK_NO_CACHE").is_some_and(|value| !value.is_empty()) {
            return None;
        }
        let folder = cache_folder()?;
        let mut head = [0u8; 2];
        let mut file = std::fs::File::open(interpreter).ok()?;
        std::io::Read::read_exact(&mut file, &mut head).ok()?;
        if &head == b"#!" {
            return None;
        }
        let mut key = Sha256::new();
        key.update(SCRIPT.as_bytes());
        key.update(env!("CARGO_PKG_VERSION").as_bytes());
        key.update(interpreter.as_os_str().as_encoded_bytes());
        for name in KEY_VARIABLES {
            key.update([0]);
            if let Some(value) = std::env::var_os(name) {
                key.update(value.as_encoded_bytes());
            }
        }
        Some(Cache {
            file: folder
                .join("interpreters")
                .join(format!("{:x}.json", key.finalize())),
            interpreter: interpreter.to_path_buf(),
        })
    }

    fn load(&self) -> Option<Answer> {
        let entry: Entry = serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()?;
        let fresh = entry
            .stamps
            .iter()
            .all(|stamp| stamp.state == state(&stamp.path));
        fresh.then_some(entry.answer)
    }

    /// Best effort: a cache that cannot be written only costs the next run some time.
    fn store(&self, answer: &Answer) {
        let mut watched = vec![self.interpreter.clone(), PathBuf::from("/etc/os-release")];
        if let Some(home) = self.interpreter.parent().and_then(Path::parent) {
            watched.push(home.join("pyvenv.cfg"));
        }
        watched.extend(answer.sys_path.iter().map(PathBuf::from));
        let stamps = watched
            .into_iter()
            .map(|path| Stamp {
                state: state(&path),
                path,
            })
            .collect();
        let entry = Entry {
            stamps,
            answer: answer.clone(),
        };
        let Some(folder) = self.file.parent() else {
            return;
        };
        let _ = std::fs::create_dir_all(folder)
            .ok()
            .and_then(|()| tempfile::NamedTempFile::new_in(folder).ok())
            .and_then(|mut temp| {
                serde_json::to_writer(&mut temp, &entry).ok()?;
                temp.persist(&self.file).ok()
            });
    }
}

fn state(path: &Path) -> Option<(u128, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((modified.as_nanos(), metadata.len()))
}

/// `$ENVLOCK_CACHE_DIR`, else `$XDG_CACHE_HOME/envlock`, else `~/.cache/envlock`.
fn cache_folder() -> Option<PathBuf> {
    let from = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    from("ENVLOCK_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| from("XDG_CACHE_HOME").map(|base| PathBuf::from(base).join("envlock")))
        .or_else(|| from("HOME").map(|home| PathBuf::from(home).join(".cache/envlock")))
}
