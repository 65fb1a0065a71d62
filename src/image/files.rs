//! Static capture: an image's Python runtime read from its files through the engine's API,
//! with nothing from the image run. The interpreter the image would start is found on its
//! `PATH`; `sys.path` is rebuilt from the layout around it (a venv's `pyvenv.cfg`, the
//! official images' `/usr/local`, Debian's `dist-packages`, conda, `PYTHONPATH`); each site
//! folder's archive is streamed and only distribution metadata is kept.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use bollard::query_parameters::ContainerArchiveInfoOptions;

use super::archive::{read_archive, ArchiveError};
use super::engine::Engine;
use crate::lock::{Python, SystemPackage};
use crate::python::MemoryFiles;

/// The files envlock keeps from a distribution's metadata folder, as the probe sends them.
const METADATA_FILES: &[&str] = &[
    "METADATA",
    "PKG-INFO",
    "WHEEL",
    "INSTALLER",
    "REQUESTED",
    "direct_url.json",
    "RECORD",
];

/// The most envlock keeps of one metadata file or database (larger ones are cut).
const FILE_LIMIT: u64 = 16 << 20;

/// `PATH` inside a container whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a path is inside the container.
struct Stat {
    is_folder: bool,
    /// The path with symlinks resolved by the engine, inside the container.
    resolved: String,
}

async fn stat(engine: &Engine, id: &str, path: &str) -> Option<Stat> {
    let options = ContainerArchiveInfoOptions {
        path: path.to_string(),
    };
    let info = engine
        .docker()
        .get_container_archive_info(id, Some(options))
        .await
        .ok()?;
    // Go's os.FileMode: the top bit marks a folder.
    let is_folder = info.file_mode & (1 << 31) != 0;
    let resolved = match info.link_target {
        target if !target.is_empty() => target,
        _ => path.to_string(),
    };
    Some(Stat {
        is_folder,
        resolved,
    })
}

/// A small file's bytes (symlinks resolved inside the container), or `None` if absent.
pub async fn read_file(engine: &Engine, id: &str, path: &str) -> Option<Vec<u8>> {
    let resolved = stat(engine, id, path).await?.resolved;
    read_archive(engine, id, &resolved, |tar| {
        let mut archive = tar::Archive::new(tar);
        let mut bytes = Vec::new();
        if let Some(entry) = archive.entries()?.next() {
            entry?.take(FILE_LIMIT).read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    })
    .await
    .ok()
}

/// A Python runtime found in an image's files.
pub struct StaticPython {
    /// What could be known without running it.
    pub python: Python,
    /// The metadata files of its site folders.
    pub files: MemoryFiles,
    /// Site folders that could not be read, and why.
    pub warnings: Vec<String>,
}

/// Finds the Python the image would run and reads its site folders. `None` without one.
pub async fn read_python(
    engine: &Engine,
    id: &str,
    env: &BTreeMap<String, String>,
    debian_version: Option<&str>,
) -> Option<StaticPython> {
    let path = env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
    let mut found = None;
    'search: for folder in path.split(':').filter(|folder| folder.starts_with('/')) {
        for name in ["python3", "python"] {
            let candidate = format!("{}/{name}", folder.trim_end_matches('/'));
            if let Some(stat) = stat(engine, id, &candidate).await {
                if !stat.is_folder {
                    found = Some((candidate, stat.resolved));
                    break 'search;
                }
            }
        }
    }
    let (invoked, resolved) = found?;
    let bin = parent(&invoked);
    let venv_root = parent(&bin);
    let venv_config = read_file(engine, id, &format!("{venv_root}/pyvenv.cfg"))
        .await
        .map(|bytes| parse_pyvenv(&String::from_utf8_lossy(&bytes)));
    // The interpreter's real location decides its prefix and minor version.
    let real_name = resolved.rsplit('/').next().unwrap_or_default().to_string();
    let prefix = parent(&parent(&resolved));
    let mut version = venv_config
        .as_ref()
        .and_then(|cfg| cfg.get("version").cloned());
    let minor = version.as_deref().map(minor_of).or_else(|| {
        real_name
            .strip_prefix("python")
            .filter(|v| v.contains('.'))
            .map(str::to_string)
    });
    let minor = match minor {
        Some(minor) => minor,
        None => find_minor(engine, id, &prefix).await?,
    };
    if version.is_none() {
        version = read_file(
            engine,
            id,
            &format!("{prefix}/include/python{minor}/patchlevel.h"),
        )
        .await
        .and_then(|bytes| patchlevel_version(&String::from_utf8_lossy(&bytes)))
        .or_else(|| {
            debian_version
                .filter(|full| full.starts_with(&minor))
                .map(str::to_string)
        });
    }

    let mut sys_path: Vec<String> = env
        .get("PYTHONPATH")
        .map(|value| {
            value
                .split(':')
                .filter(|p| p.starts_with('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let base_sites = |prefix: &str| {
        let mut sites = vec![format!("{prefix}/lib/python{minor}/site-packages")];
        if prefix == "/usr" {
            // Debian's layout: pip's installs, then the distribution's own packages.
            sites = vec![
                format!("/usr/local/lib/python{minor}/dist-packages"),
                "/usr/lib/python3/dist-packages".to_string(),
                format!("/usr/lib/python{minor}/dist-packages"),
            ];
        }
        sites
    };
    let user_site = format!("/root/.local/lib/python{minor}/site-packages");
    match &venv_config {
        Some(config) => {
            sys_path.push(format!("{venv_root}/lib/python{minor}/site-packages"));
            if config
                .get("include-system-site-packages")
                .map(String::as_str)
                == Some("true")
            {
                sys_path.push(user_site);
                sys_path.extend(base_sites(&prefix));
            }
        }
        None => {
            sys_path.push(user_site);
            sys_path.extend(base_sites(&prefix));
        }
    }

    // Each site folder is streamed whole (the API lists no folders), so they are streamed
    // at once: the engine tars each in its own process.
    let mut folders = Vec::new();
    for site in sys_path {
        if let Some(stat) = stat(engine, id, &site).await.filter(|stat| stat.is_folder) {
            if !folders.contains(&stat.resolved) {
                folders.push(stat.resolved);
            }
        }
    }
    let reads = folders.iter().map(|folder| {
        let owned = folder.clone();
        read_archive(engine, id, folder, move |tar| read_site(tar, &owned))
    });
    let mut files = MemoryFiles::default();
    let mut present = Vec::new();
    let mut warnings = Vec::new();
    let results = futures_util::future::join_all(reads).await;
    for (folder, read) in folders.iter().zip(results) {
        match read {
            Ok(site_files) => {
                files.merge(site_files);
                present.push(folder.clone());
            }
            Err(ArchiveError::NotFound) => {}
            Err(ArchiveError::Other(detail)) => warnings.push(format!(
                "site folder `{folder}` could not be read from the image ({detail}): its packages are not in the lock"
            )),
        }
    }
    let implementation = if real_name.contains("pypy") {
        "pypy"
    } else {
        "cpython"
    };
    Some(StaticPython {
        python: Python {
            implementation: implementation.to_string(),
            version: version.unwrap_or(minor),
            // As `sys.executable` reports it: the path that was started, not its target.
            executable: Some(invoked),
            prefix: Some(if venv_config.is_some() {
                venv_root
            } else {
                prefix.clone()
            }),
            base_prefix: Some(prefix),
            soabi: None,
            cache_tag: None,
            sys_path: present,
            markers: BTreeMap::new(),
        },
        files,
        warnings,
    })
}

/// Keeps a site folder's listing and its distributions' metadata files from its tar.
fn read_site(tar: &mut dyn Read, folder: &str) -> io::Result<MemoryFiles> {
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
                let lower = name.to_ascii_lowercase();
                if !is_folder && (lower.ends_with(".pth") || lower.ends_with(".egg-info")) {
                    files.add_file(root.join(name), bounded(&mut entry)?);
                }
            }
            [_, distribution, file] => {
                let lower = distribution.to_ascii_lowercase();
                let metadata_folder = lower.ends_with(".dist-info") || lower.ends_with(".egg-info");
                if metadata_folder && METADATA_FILES.contains(file) && !is_folder {
                    files.add_file(root.join(distribution).join(file), bounded(&mut entry)?);
                }
            }
            _ => {}
        }
    }
    Ok(files)
}

fn bounded(entry: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(FILE_LIMIT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Without a venv or a versioned interpreter name, the minor version is the
/// `lib/python3.X` folder under the prefix.
async fn find_minor(engine: &Engine, id: &str, prefix: &str) -> Option<String> {
    for minor in (6..=20).rev() {
        let candidate = format!("{prefix}/lib/python3.{minor}");
        if stat(engine, id, &candidate)
            .await
            .is_some_and(|s| s.is_folder)
        {
            return Some(format!("3.{minor}"));
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

/// Installed system packages from dpkg's or apk's database, sorted by name.
pub async fn system_packages(engine: &Engine, id: &str) -> Vec<SystemPackage> {
    if let Some(bytes) = read_file(engine, id, "/var/lib/dpkg/status").await {
        return parse_dpkg_status(&String::from_utf8_lossy(&bytes));
    }
    if let Some(bytes) = read_file(engine, id, "/lib/apk/db/installed").await {
        return parse_apk_installed(&String::from_utf8_lossy(&bytes));
    }
    Vec::new()
}

/// Stanzas of `/var/lib/dpkg/status` whose `Status` ends in `installed`.
pub fn parse_dpkg_status(text: &str) -> Vec<SystemPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(|value| value.trim().to_string())
        };
        let installed = field("Status").is_some_and(|status| status.ends_with(" installed"));
        if let (true, Some(name), Some(version)) = (installed, field("Package"), field("Version")) {
            packages.push(SystemPackage {
                name,
                version,
                manager: "dpkg".to_string(),
            });
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages.dedup_by(|a, b| a.name == b.name);
    packages
}

/// `P:` and `V:` lines of apk's database.
pub fn parse_apk_installed(text: &str) -> Vec<SystemPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|value| value.trim().to_string())
        };
        if let (Some(name), Some(version)) = (field("P:"), field("V:")) {
            packages.push(SystemPackage {
                name,
                version,
                manager: "apk".to_string(),
            });
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// The C library from the system packages: glibc from `libc6`, musl from `musl`.
pub fn libc_of(packages: &[SystemPackage]) -> (Option<String>, Option<String>) {
    let upstream = |version: &str| {
        let without_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
        without_epoch
            .split('-')
            .next()
            .unwrap_or(without_epoch)
            .to_string()
    };
    for package in packages {
        match package.name.as_str() {
            "libc6" => return (Some("glibc".into()), Some(upstream(&package.version))),
            "musl" => return (Some("musl".into()), Some(upstream(&package.version))),
            _ => {}
        }
    }
    (None, None)
}

/// The upstream version of Debian's `python3.X-minimal` package, e.g. `3.11.2`.
pub fn debian_python_version(packages: &[SystemPackage]) -> Option<String> {
    packages
        .iter()
        .filter(|p| p.name.starts_with("python3.") && p.name.ends_with("-minimal"))
        .map(|p| {
            p.version
                .split('-')
                .next()
                .unwrap_or(&p.version)
                .to_string()
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_keeps_installed_packages() {
        let text = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u6\n";
        let packages = parse_dpkg_status(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(
            libc_of(&packages),
            (Some("glibc".into()), Some("2.36".into()))
        );
        assert_eq!(debian_python_version(&packages).as_deref(), Some("3.11.2"));
    }

    #[test]
    fn apk_database_and_musl() {
        let packages = parse_apk_installed("C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:python3\nV:3.11.8-r0\n");
        assert_eq!(
            libc_of(&packages),
            (Some("musl".into()), Some("1.2.4".into()))
        );
    }

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
}
