//! Asking an interpreter about itself: the embedded probe script and its JSON answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cache::Cache;
use crate::capture::fs::{memory::MemoryFiles, Kind};
use crate::capture::numerics::ProbedNumerics;
use crate::capture::read::distributions::WANTED;
use crate::error::{Error, Result};
use crate::process::{self, Unfinished};
use crate::settings::{seconds, Settings};
use crate::stop::Stop;

/// The probe, run as `python -c SCRIPT`. The same script runs inside images.
pub(crate) const SCRIPT: &str = include_str!("probe.py");

/// The answer format this build reads: the `probe` key of the answer.
const PROBE_FORMAT: u32 = 1;

/// What the probe prints: facts about the interpreter and the system it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// The answer format's version ([`PROBE_FORMAT`]).
    pub(crate) probe: u32,
    /// `sys.implementation.name`.
    pub(crate) implementation: String,
    /// `major.minor.micro`, with a pre-release suffix.
    pub(crate) version: String,
    /// `sys.executable`.
    pub(crate) executable: Option<String>,
    /// `sys.prefix`.
    pub(crate) prefix: Option<String>,
    /// `sys.base_prefix`.
    pub(crate) base_prefix: Option<String>,
    /// `sysconfig.get_config_var("SOABI")`.
    pub(crate) soabi: Option<String>,
    /// `sys.implementation.cache_tag`.
    pub(crate) cache_tag: Option<String>,
    /// `sys.path` without the probe's own entry, made absolute.
    pub(crate) sys_path: Vec<String>,
    /// The PEP 508 marker environment.
    pub(crate) markers: BTreeMap<String, String>,
    /// `glibc` or `musl`.
    pub(crate) libc: Option<String>,
    /// The C library's version.
    pub(crate) libc_version: Option<String>,
    /// The text of `/etc/os-release`.
    pub(crate) os_release: Option<String>,
    /// With `--files`: the metadata files on `sys.path` (see [`ProbedFiles::into_files`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) files: Option<ProbedFiles>,
    /// With `--numerics`: the numeric libraries it read inside the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) numerics: Option<ProbedNumerics>,
}

/// Folder listings and file contents sent by the probe's `--files` mode; bytes travel as
/// Latin-1 code points (one `char` per byte).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbedFiles {
    /// Each `sys.path` folder's entries: name and whether it is a folder.
    pub(crate) listings: BTreeMap<String, Vec<(String, bool)>>,
    /// Metadata files by absolute path.
    pub(crate) contents: BTreeMap<String, String>,
    /// Files that exist but could not be read, and why (a read that failed is never an
    /// absent file).
    #[serde(default)]
    pub(crate) errors: BTreeMap<String, String>,
}

impl ProbedFiles {
    /// The view of the runtime's files the answer gives (Latin-1 code points back to bytes).
    pub(crate) fn into_files(self) -> MemoryFiles {
        let latin1 = |text: String| text.chars().map(|c| c as u32 as u8).collect();
        let mut files = MemoryFiles::default();
        for (folder, entries) in self.listings {
            for (name, is_folder) in entries {
                let kind = if is_folder { Kind::Folder } else { Kind::File };
                files.add_entry(&folder, name, kind);
            }
        }
        for (path, text) in self.contents {
            files.add_file(path, latin1(text));
        }
        for (path, detail) in self.errors {
            files.add_error(path, detail);
        }
        files
    }
}

/// Why the probe's output is not its answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerError {
    /// Not the answer's JSON (another program answered, or the probe broke off).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A probe of another envlock answered.
    #[error("it answered in probe format {found}, and this envlock reads format {PROBE_FORMAT}")]
    Format { found: u32 },
}

impl Answer {
    /// Parses the probe's standard output, refusing an answer of another format.
    pub(crate) fn parse(stdout: &[u8]) -> Result<Answer, AnswerError> {
        let answer: Answer = serde_json::from_slice(stdout)?;
        if answer.probe != PROBE_FORMAT {
            return Err(AnswerError::Format {
                found: answer.probe,
            });
        }
        Ok(answer)
    }
}

/// The probe's command line inside an image: it also sends the metadata files (see
/// [`WANTED`]), since envlock cannot read the image's files directly, and reads the numeric
/// libraries `numerics` asks for where they are (streaming them out would cost more).
pub(crate) fn image_command(python: &str, numerics: &impl Serialize) -> Vec<String> {
    vec![
        python.to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "--files".to_string(),
        serde_json::to_string(&WANTED).expect("WANTED serialises"),
        "--numerics".to_string(),
        serde_json::to_string(numerics).expect("a request serialises"),
    ]
}

/// Runs the probe with `interpreter`, or takes its answer from the cache when nothing that
/// could change it has changed.
pub(crate) fn probe(interpreter: &Path, settings: &Settings) -> Result<Answer> {
    let cache = Cache::locate(interpreter, settings);
    if let Some(answer) = cache.as_ref().and_then(Cache::load) {
        return Ok(answer);
    }
    let answer = run(interpreter, settings.probe_timeout, &settings.stop)?;
    if let Some(cache) = cache {
        cache.store(&answer);
    }
    Ok(answer)
}

fn run(interpreter: &Path, limit: Duration, stop: &Stop) -> Result<Answer> {
    let not_python = |detail: String| Error::ProbeFailed {
        path: interpreter.to_path_buf(),
        detail,
    };
    let mut command = Command::new(interpreter);
    command.arg("-c").arg(SCRIPT);
    let finished =
        process::run(&mut command, None, limit, stop).map_err(|unfinished| match unfinished {
            Unfinished::Timeout => Error::ProbeTimeout {
                path: interpreter.to_path_buf(),
                limit: seconds(limit),
            },
            Unfinished::NotStarted(source) => Error::InterpreterNotRunnable {
                path: interpreter.to_path_buf(),
                source,
            },
            Unfinished::Engine(error) => error,
            Unfinished::Stopped(signal) => Error::Interrupted { signal },
        })?;
    if !finished.success() {
        return Err(not_python(format!(
            "it exited with {}; its last words: {}",
            finished.exit(),
            printed(&finished.stderr)
        )));
    }
    Answer::parse(&finished.stdout).map_err(|error| {
        not_python(format!(
            "its output is not the probe's answer ({error}); it printed: {}",
            printed(&finished.stdout)
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

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_output_is_an_answer_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Answer::parse(&bytes);
        }

        #[test]
        fn answers_with_odd_values_never_panic(version in ".{0,12}", path in proptest::collection::vec(".{0,12}", 0..4), probe in 0u32..3) {
            let answer = serde_json::json!({
                "probe": probe, "implementation": "cpython", "version": version,
                "sys_path": path, "markers": {}, "executable": null, "prefix": null,
                "base_prefix": null, "soabi": null, "cache_tag": null, "libc": null,
                "libc_version": null, "os_release": null,
                "files": {"listings": {"/x": [["a.dist-info", true]]}, "contents": {"/x/a.dist-info/METADATA": version}},
            });
            let parsed = Answer::parse(answer.to_string().as_bytes());
            proptest::prop_assert_eq!(parsed.is_ok(), probe == PROBE_FORMAT);
        }
    }
}
