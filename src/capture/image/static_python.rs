//! Static capture: an image's Python runtime read from its files (through the engine's API,
//! or from its layers: [`Files`]), with nothing from the image run. The interpreter the image would start is found on its
//! `PATH`; `sys.path` is rebuilt from the layout around it (a venv's `pyvenv.cfg`, the
//! official images' `/usr/local`, Debian's `dist-packages`, conda, `PYTHONPATH`); each site
//! folder's archive is streamed and only distribution metadata ([`WANTED`]) is kept.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::archive::ArchiveError;
use super::files::Files;
use super::select::{base_name, is_python};
use crate::capture::python::files::MemoryFiles;
use crate::capture::python::metadata::WANTED;
use crate::lock::Python;

/// A Python runtime found in an image's files.
pub(super) struct StaticPython {
    /// What could be known without running it.
    pub(super) python: Python,
    /// The metadata files of its site folders.
    pub(super) files: MemoryFiles,
    /// Site folders that could not be read, and why.
    pub(super) warnings: Vec<String>,
}

/// Where an interpreter lives and what its layout says.
struct Layout {
    /// The path on `PATH` that would be started (what `sys.executable` reports).
    invoked: String,
    /// `prefix/bin/pythonX` after symlinks: it decides the prefix.
    prefix: String,
    /// The venv around `invoked`, with its `pyvenv.cfg`.
    venv: Option<(String, BTreeMap<String, String>)>,
    /// `3.11`.
    minor: String,
    /// `3.11.7` when the files tell.
    version: Option<String>,
    /// `cpython` or `pypy`.
    implementation: &'static str,
    /// Debian's own layout (`dist-packages`), for its `/usr` Python.
    debian: bool,
    /// The standard library is under `lib64` (Fedora and RHEL: `sys.platlibdir`), so
    /// `lib64` site folders come before `lib` ones.
    lib64: bool,
}

/// Where the image runs: its variables and the home of its user.
pub(super) struct Runs<'a> {
    /// The config's `Env`.
    pub(super) env: &'a BTreeMap<String, String>,
    /// The user's home (from `/etc/passwd`): its user site is on `sys.path`.
    pub(super) home: &'a str,
    /// The system's package manager (`dpkg`, `apk`, `rpm`): Debian's `/usr` Python reads
    /// `dist-packages`; Fedora's and RHEL's also `/usr/local`.
    pub(super) manager: Option<&'a str>,
}

/// Reads the interpreter `invoked` (an absolute path in the image) and its site folders.
/// `None` when the files do not say which Python it is.
pub(super) async fn read_python(
    files: Files<'_>,
    invoked: &str,
    runs: &Runs<'_>,
    system_version: Option<&str>,
) -> Option<StaticPython> {
    let layout = find_layout(files, invoked, runs, system_version).await?;
    let sys_path = sys_path(&layout, runs);
    let (mut kept, present, warnings) = read_sites(files, sys_path).await;
    let venv_root = layout.venv.as_ref().map(|(root, _)| root.as_str());
    for prefix in std::iter::once(layout.prefix.as_str()).chain(venv_root) {
        kept.merge(read_conda_meta(files, prefix).await);
    }
    let (prefix, base_prefix) = match &layout.venv {
        Some((root, _)) => (root.clone(), layout.prefix.clone()),
        None => (layout.prefix.clone(), layout.prefix.clone()),
    };
    Some(StaticPython {
        python: Python {
            implementation: layout.implementation.to_string(),
            version: layout.version.unwrap_or(layout.minor),
            // As `sys.executable` reports it: the path that was started, not its target.
            executable: Some(layout.invoked),
            prefix: Some(prefix),
            base_prefix: Some(base_prefix),
            soabi: None,
            cache_tag: None,
            sys_path: present,
            markers: BTreeMap::new(),
            selected_by: None,
        },
        files: kept,
        warnings,
    })
}

/// What the files around `invoked` say about it.
async fn find_layout(
    files: Files<'_>,
    invoked: &str,
    runs: &Runs<'_>,
    system_version: Option<&str>,
) -> Option<Layout> {
    let invoked = invoked.to_string();
    let resolved = files.stat(&invoked).await?.resolved;
    let venv_root = parent(&parent(&invoked));
    let venv = files
        .read_file(&format!("{venv_root}/pyvenv.cfg"))
        .await
        .map(|bytes| (venv_root, parse_pyvenv(&String::from_utf8_lossy(&bytes))));
    // The interpreter's real location decides its prefix and minor version.
    let real_name = base_name(&resolved).to_string();
    if !is_python(base_name(&invoked)) && !is_python(&real_name) {
        return None;
    }
    let prefix = parent(&parent(&resolved));
    let mut version = venv
        .as_ref()
        .and_then(|(_, config)| config.get("version").cloned());
    let minor = version.as_deref().map(minor_of).or_else(|| {
        real_name
            .strip_prefix("python")
            .filter(|v| v.contains('.'))
            .map(str::to_string)
    });
    let minor = match minor {
        Some(minor) => minor,
        None => find_minor(files, &prefix).await?,
    };
    let lib64 = files
        .is_folder(&format!("{prefix}/lib64/python{minor}"))
        .await;
    let debian = prefix == "/usr"
        && (runs.manager == Some("dpkg")
            || files.is_folder("/usr/lib/python3/dist-packages").await);
    if version.is_none() {
        let header = format!("{prefix}/include/python{minor}/patchlevel.h");
        version = files
            .read_file(&header)
            .await
            .and_then(|bytes| patchlevel_version(&String::from_utf8_lossy(&bytes)))
            .or_else(|| {
                system_version
                    .filter(|full| full.starts_with(&minor))
                    .map(str::to_string)
            });
    }
    Some(Layout {
        invoked,
        prefix,
        venv,
        minor,
        version,
        implementation: if real_name.contains("pypy") {
            "pypy"
        } else {
            "cpython"
        },
        debian,
        lib64,
    })
}

/// `sys.path` as the interpreter would build it: `PYTHONPATH`, the venv's site folder, then
/// (outside a venv, or with system site packages) the user site and the base's folders.
fn sys_path(layout: &Layout, runs: &Runs<'_>) -> Vec<String> {
    let minor = &layout.minor;
    let mut sys_path: Vec<String> = runs
        .env
        .get("PYTHONPATH")
        .map(|value| {
            value
                .split(':')
                .filter(|p| p.starts_with('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let base_sites = if layout.debian {
        // Debian's layout: pip's installs, then the distribution's own packages.
        vec![
            format!("/usr/local/lib/python{minor}/dist-packages"),
            "/usr/lib/python3/dist-packages".to_string(),
            format!("/usr/lib/python{minor}/dist-packages"),
        ]
    } else {
        // Upstream's layout: `platlibdir` first, then `lib`; Fedora and RHEL put
        // `/usr/local` before their `/usr` Python's own folders.
        let prefixes: &[&str] = match layout.prefix.as_str() {
            "/usr" if runs.manager == Some("rpm") => &["/usr/local", "/usr"],
            prefix => &[prefix],
        };
        let libdirs: &[&str] = if layout.lib64 {
            &["lib64", "lib"]
        } else {
            &["lib"]
        };
        prefixes
            .iter()
            .flat_map(|prefix| {
                libdirs
                    .iter()
                    .map(move |libdir| format!("{prefix}/{libdir}/python{minor}/site-packages"))
            })
            .collect()
    };
    let user_site = format!(
        "{}/.local/lib/python{minor}/site-packages",
        runs.home.trim_end_matches('/')
    );
    let with_base = match &layout.venv {
        Some((root, config)) => {
            sys_path.push(format!("{root}/lib/python{minor}/site-packages"));
            config
                .get("include-system-site-packages")
                .map(String::as_str)
                == Some("true")
        }
        None => true,
    };
    if with_base {
        sys_path.push(user_site);
        sys_path.extend(base_sites);
    }
    sys_path
}

/// Streams each site folder that exists and keeps its metadata files. Returns them, the
/// folders read, and a warning for each folder that could not be streamed.
async fn read_sites(
    files: Files<'_>,
    sys_path: Vec<String>,
) -> (MemoryFiles, Vec<String>, Vec<String>) {
    let mut folders = Vec::new();
    for site in sys_path {
        if let Some(stat) = files.stat(&site).await.filter(|stat| stat.is_folder) {
            if !folders.contains(&stat.resolved) {
                folders.push(stat.resolved);
            }
        }
    }
    // Each site folder is streamed whole (the API lists no folders), so they are streamed
    // at once: the engine tars each in its own process.
    let reads = folders.iter().map(|folder| files.read_site(folder));
    let results = futures_util::future::join_all(reads).await;
    let mut kept = MemoryFiles::default();
    let mut present = Vec::new();
    let mut warnings = Vec::new();
    for (folder, read) in folders.iter().zip(results) {
        match read {
            Ok(site_files) => {
                kept.merge(site_files);
                present.push(folder.clone());
            }
            Err(ArchiveError::NotFound) => {}
            Err(ArchiveError::Other(detail)) => warnings.push(format!(
                "site folder `{folder}` could not be read from the image ({detail}): its packages are not in the lock"
            )),
        }
    }
    (kept, present, warnings)
}

/// The package records of the conda prefix `prefix`, if it is one.
async fn read_conda_meta(files: Files<'_>, prefix: &str) -> MemoryFiles {
    let folder = format!("{}/{}", prefix.trim_end_matches('/'), WANTED.conda_meta);
    files.read_conda_meta(&folder).await
}

/// Keeps the `*.json` records of a conda-meta folder's tar.
pub(super) fn read_conda_tar(tar: &mut dyn Read, root: &Path) -> io::Result<MemoryFiles> {
    let mut files = MemoryFiles::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if let [_, name] = name.split('/').collect::<Vec<_>>().as_slice() {
            if name.ends_with(".json") && entry.header().entry_type().is_file() {
                files.add_entry(root, name.to_string(), false);
                files.add_file(root.join(name), bounded(&mut entry)?);
            }
        }
    }
    Ok(files)
}

/// Keeps a site folder's listing and its distributions' metadata files from its tar.
pub(super) fn read_site_tar(tar: &mut dyn Read, folder: &str) -> io::Result<MemoryFiles> {
    let mut files = MemoryFiles::default();
    let root = PathBuf::from(folder);
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        let is_folder = entry.header().entry_type().is_dir();
        match parts.as_slice() {
            [_, name] => {
                files.add_entry(&root, name.to_string(), is_folder);
                if !is_folder && WANTED.is_single(name) {
                    files.add_file(root.join(name), bounded(&mut entry)?);
                }
            }
            [_, distribution, file] if !is_folder && WANTED.is_inner(distribution, file) => {
                files.add_file(root.join(distribution).join(file), bounded(&mut entry)?);
            }
            _ => {}
        }
    }
    Ok(files)
}

fn bounded(entry: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(WANTED.limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Without a venv or a versioned interpreter name, the minor version is the
/// `lib/python3.X` folder under the prefix.
async fn find_minor(files: Files<'_>, prefix: &str) -> Option<String> {
    for minor in (6..=20).rev() {
        for libdir in ["lib", "lib64"] {
            let candidate = format!("{prefix}/{libdir}/python3.{minor}");
            if files.is_folder(&candidate).await {
                return Some(format!("3.{minor}"));
            }
        }
    }
    None
}

fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((parent, _)) => parent.to_string(),
    }
}

fn minor_of(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// `key = value` lines of `pyvenv.cfg`.
fn parse_pyvenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// `#define PY_VERSION "3.11.7"` in `patchlevel.h`.
fn patchlevel_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("#define PY_VERSION"))
        .map(|rest| rest.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_sources() {
        assert_eq!(
            patchlevel_version("/* x */\n#define PY_VERSION      \"3.11.7\"\n").as_deref(),
            Some("3.11.7")
        );
        let cfg = parse_pyvenv(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
        );
        assert_eq!(cfg["version"], "3.11.2");
        assert_eq!(parent("/opt/venv/bin"), "/opt/venv");
        assert_eq!(parent("/bin"), "/");
    }

    proptest::proptest! {
        #[test]
        fn site_streams_never_panic(tar in super::super::archive::streams::tar()) {
            let _ = read_site_tar(&mut &tar[..], "/usr/lib/python3/dist-packages");
        }

        #[test]
        fn layout_files_never_panic(text in ".{0,400}") {
            let _ = parse_pyvenv(&text);
            let _ = patchlevel_version(&text);
        }
    }
}
