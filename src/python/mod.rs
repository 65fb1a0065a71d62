//! Capturing a Python runtime: ask the interpreter once (the probe), then read its
//! distributions in Rust.

pub mod distribution;
mod memory;
pub mod probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::{Package, Platform, PthFile, Python};
use crate::platform::platform;

pub use distribution::{normalize_name, read_sys_path, HostFiles, SiteFiles};
pub use memory::MemoryFiles;

/// Everything a Python runtime contributes to a lock.
#[derive(Debug)]
pub struct Capture {
    /// The interpreter's facts.
    pub python: Python,
    /// The platform it runs on.
    pub platform: Platform,
    /// Its distributions.
    pub packages: Vec<Package>,
    /// `.pth` files on its `sys.path`.
    pub pth_files: Vec<PthFile>,
    /// Distributions that were skipped, and why.
    pub warnings: Vec<String>,
}

/// The interpreter to capture: `explicit`, else `$VIRTUAL_ENV/bin/python`, else `python3` on
/// `PATH`. The path is made absolute but not resolved: a venv's `bin/python` is a symlink whose
/// target is the base interpreter, and only the link's path starts the venv.
pub fn locate_interpreter(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) if path.components().count() == 1 && !path.exists() => {
            // A bare name such as `python3.11` is looked up on PATH, as a shell would.
            find_on_path(path.as_os_str()).ok_or_else(|| Error::InterpreterNotFound {
                path: path.to_path_buf(),
            })?
        }
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os("VIRTUAL_ENV").filter(|value| !value.is_empty()) {
            Some(venv) => PathBuf::from(venv).join("bin").join("python"),
            None => find_on_path("python3".as_ref()).ok_or(Error::NoInterpreter)?,
        },
    };
    if !path.exists() {
        return Err(Error::InterpreterNotFound { path });
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn find_on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|folder| folder.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Probes `interpreter` and reads its distributions from the host's file system.
pub fn capture(interpreter: &Path, probe_limit: Duration) -> Result<Capture> {
    let answer = probe::probe(interpreter, probe_limit)?;
    let found = read_sys_path(&HostFiles, &answer.sys_path);
    Ok(from_answer(answer, found))
}

/// Assembles a capture from a probe's answer and the distributions found on its `sys.path`.
pub fn from_answer(answer: probe::Answer, found: distribution::Found) -> Capture {
    let marker = |key: &str| answer.markers.get(key).cloned().unwrap_or_default();
    let platform = platform(
        &marker("platform_system"),
        &marker("platform_machine"),
        answer.libc.clone(),
        answer.libc_version.clone(),
        answer.os_release.as_deref(),
    );
    let python = Python {
        implementation: answer.implementation,
        version: answer.version,
        executable: answer.executable,
        prefix: answer.prefix,
        base_prefix: answer.base_prefix,
        soabi: answer.soabi,
        cache_tag: answer.cache_tag,
        sys_path: answer.sys_path,
        markers: answer.markers,
    };
    Capture {
        python,
        platform,
        packages: found.packages,
        pth_files: found.pth_files,
        warnings: found.warnings,
    }
}
