//! A cache of probe answers, so a repeated snapshot does not start Python again.
//!
//! A cached answer lives in `<cache folder>/interpreters/<key>.json`. The key covers what
//! decides `sys.path` from outside (the interpreter's path, the variables that move it, the
//! probe itself); the stamps inside cover what can change under the same key (the
//! interpreter's binary, `pyvenv.cfg`, every `sys.path` folder, where an install or a new
//! `.pth` shows).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::probe::{Answer, SCRIPT};
use crate::lock::Sha256;
use crate::settings::Settings;

pub(super) struct Cache {
    file: PathBuf,
    interpreter: PathBuf,
}

/// What the cache file holds.
#[derive(Serialize, Deserialize)]
struct CachedAnswer {
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
    /// `None` when caching is off, or the interpreter is a script (a pyenv or conda shim
    /// picks its Python at each start, so no stamp could tell that the answer changed).
    pub(super) fn locate(interpreter: &Path, settings: &Settings) -> Option<Cache> {
        let folder = settings.cache_folder.as_ref()?;
        let mut head = [0u8; 2];
        let mut file = std::fs::File::open(interpreter).ok()?;
        std::io::Read::read_exact(&mut file, &mut head).ok()?;
        if &head == b"#!" {
            return None;
        }
        let mut key = Sha256::default();
        key.update(SCRIPT);
        key.update(env!("CARGO_PKG_VERSION"));
        key.update(interpreter.as_os_str().as_encoded_bytes());
        for name in KEY_VARIABLES {
            key.update([0]);
            if let Some(value) = settings.environment.get(name) {
                key.update(value.as_encoded_bytes());
            }
        }
        let key = key.finish();
        let name = Sha256::hex(&key);
        Some(Cache {
            file: folder.join("interpreters").join(format!("{name}.json")),
            interpreter: interpreter.to_path_buf(),
        })
    }

    pub(super) fn load(&self) -> Option<Answer> {
        let cached: CachedAnswer = serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()?;
        let fresh = cached
            .stamps
            .iter()
            .all(|stamp| stamp.state == state(&stamp.path));
        fresh.then_some(cached.answer)
    }

    /// Best effort: a cache that cannot be written only costs the next run some time.
    pub(super) fn store(&self, answer: &Answer) {
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
        let cached = CachedAnswer {
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
                serde_json::to_writer(&mut temp, &cached).ok()?;
                temp.persist(&self.file).ok()
            });
    }
}

fn state(path: &Path) -> Option<(u128, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((modified.as_nanos(), metadata.len()))
}
