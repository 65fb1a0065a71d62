//! A lock's packages in the formats installers read: a `requirements.txt` of exact pins, or
//! a PEP 751 `pylock.toml`, so an image can be built from exactly what dev ran; or the
//! whole runtime as a CycloneDX SBOM (`crate::sbom`), for the tools platform teams run. Only what
//! the lock knows is written: installers record an archive's hash for direct URL installs
//! only, so an index install has a pin and no hash.

use serde::Serialize;
use toml::Table;

use crate::lock::{Lock, Package, PackageSource, Sha256};
pub use crate::sbom::Stamp;

/// What `envlock export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExportFormat {
    /// pip's `requirements.txt`: `name==version`, or `name @ URL` for direct installs.
    Requirements,
    /// PEP 751 `pylock.toml`.
    Pylock,
    /// A CycloneDX 1.6 JSON SBOM: packages, system and conda packages, numerics libraries,
    /// and the models as `machine-learning-model` components.
    Cyclonedx,
}

/// The lock's packages as `format`; `stamp` dates a CycloneDX document.
pub fn export(lock: &Lock, format: ExportFormat, stamp: Stamp) -> String {
    match format {
        ExportFormat::Requirements => requirements(lock),
        ExportFormat::Pylock => pylock(lock),
        ExportFormat::Cyclonedx => crate::sbom::cyclonedx(lock, stamp),
    }
}

fn requirements(lock: &Lock) -> String {
    let packages = &lock.packages;
    let hashed = packages
        .iter()
        .filter(|p| p.archive_sha256.is_some())
        .count();
    // pip checks hashes for every line or for none: with one missing, none are written.
    let with_hashes = hashed == packages.len() && hashed > 0;
    let mut out = header(lock);
    if !with_hashes {
        out.push_str(&format!(
            "# No --hash lines: pip checks hashes on every line or on none, and the lock knows the\n\
             # archive's hash for {hashed} of {} packages (installers record it for direct URL\n\
             # installs only).\n",
            packages.len()
        ));
    }
    for package in packages {
        let line = requirement(package);
        match (&package.archive_sha256, with_hashes) {
            (Some(hash), true) => {
                let hex = Sha256::hex(hash);
                out.push_str(&format!("{line} --hash=sha256:{hex}\n"));
            }
            _ => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

/// One line of `requirements.txt` for `package`.
fn requirement(package: &Package) -> String {
    let Package { name, version, .. } = package;
    match (package.source, package.url.as_deref()) {
        (Some(PackageSource::Directory), Some(url)) if package.editable => {
            format!("-e {}", url.strip_prefix("file://").unwrap_or(url))
        }
        (Some(PackageSource::Directory | PackageSource::Archive), Some(url)) => {
            format!("{name} @ {url}")
        }
        (Some(PackageSource::Vcs), Some(url)) => {
            let vcs = package.vcs.as_deref().unwrap_or("git");
            let url = if url.starts_with(&format!("{vcs}+")) {
                url.to_string()
            } else {
                format!("{vcs}+{url}")
            };
            match &package.commit {
                Some(commit) => format!("{name} @ {url}@{commit}"),
                None => format!("{name} @ {url}"),
            }
        }
        _ => format!("{name}=={version}"),
    }
}

fn header(lock: &Lock) -> String {
    let python = lock
        .python
        .as_ref()
        .map(|p| format!("Python {}", p.version))
        .unwrap_or_else(|| "no Python".to_string());
    let platform = &lock.platform;
    format!(
        "# Exported by envlock {} from a lock of {python} ({} {}): every installed\n\
         # distribution, pinned exactly.\n",
        env!("CARGO_PKG_VERSION"),
        platform.os,
        platform.arch
    )
}

/// `pylock.toml`, its keys in the specification's order.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Pylock {
    lock_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    created_by: &'static str,
    packages: Vec<Table>,
}

fn pylock(lock: &Lock) -> String {
    let document = Pylock {
        lock_version: "1.0",
        requires_python: lock.python.as_ref().map(|p| format!("=={}", p.version)),
        created_by: "envlock",
        packages: lock.packages.iter().map(pylock_package).collect(),
    };
    let body = toml::to_string(&document).unwrap_or_default();
    format!("{}{body}", header(lock))
}

/// A `[[packages]]` entry: name, version, and the source the lock knows. An archive whose
/// hash the installer did not record (PEP 751 requires one) keeps its URL under
/// `[packages.tool.envlock]`.
fn pylock_package(package: &Package) -> Table {
    let mut entry = Table::new();
    entry.insert("name".into(), package.name.clone().into());
    entry.insert("version".into(), package.version.clone().into());
    let url = package.url.clone();
    match (package.source, url) {
        (Some(PackageSource::Directory), Some(url)) => {
            let mut directory = Table::new();
            let path = url.strip_prefix("file://").unwrap_or(&url).to_string();
            directory.insert("path".into(), path.into());
            directory.insert("editable".into(), package.editable.into());
            entry.insert("directory".into(), directory.into());
        }
        (Some(PackageSource::Vcs), Some(url)) => {
            let mut vcs = Table::new();
            vcs.insert(
                "type".into(),
                package.vcs.clone().unwrap_or_else(|| "git".into()).into(),
            );
            vcs.insert("url".into(), url.into());
            if let Some(commit) = &package.commit {
                vcs.insert("commit-id".into(), commit.clone().into());
            }
            entry.insert("vcs".into(), vcs.into());
        }
        (Some(PackageSource::Archive), Some(url)) => match &package.archive_sha256 {
            Some(hash) => {
                let mut archive = Table::new();
                archive.insert("url".into(), url.into());
                let mut hashes = Table::new();
                hashes.insert("sha256".into(), Sha256::hex(hash).to_string().into());
                archive.insert("hashes".into(), hashes.into());
                entry.insert("archive".into(), archive.into());
            }
            None => {
                let mut envlock = Table::new();
                envlock.insert("archive-url".into(), url.into());
                let mut tool = Table::new();
                tool.insert("envlock".into(), envlock.into());
                entry.insert("tool".into(), tool.into());
            }
        },
        _ => {}
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Lock {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/locks/baseline.lock");
        crate::lock::read_lock(&path).unwrap()
    }

    #[test]
    fn hashes_only_when_every_package_has_one() {
        let mut lock = fixture();
        let count = lock.packages.len();
        for package in &mut lock.packages {
            package.archive_sha256 = Some(format!("sha256:{}", "ab".repeat(32)));
        }
        let text = requirements(&lock);
        let hashed = text
            .lines()
            .filter(|l| l.ends_with(&format!("--hash=sha256:{}", "ab".repeat(32))));
        assert_eq!(hashed.count(), count, "{text}");
        lock.packages[0].archive_sha256 = None;
        assert!(requirements(&lock)
            .lines()
            .all(|l| l.starts_with('#') || !l.contains("--hash")));
    }

    #[test]
    fn direct_sources_keep_their_form() {
        let mut package = fixture().packages.remove(0);
        package.source = Some(PackageSource::Vcs);
        package.url = Some("https://example.com/repo.git".into());
        package.commit = Some("0123abc".into());
        package.vcs = Some("git".into());
        let name = package.name.clone();
        assert_eq!(
            requirement(&package),
            format!("{name} @ git+https://example.com/repo.git@0123abc")
        );
        let entry = pylock_package(&package);
        assert_eq!(entry["vcs"]["commit-id"].as_str(), Some("0123abc"));
        package.source = Some(PackageSource::Directory);
        package.url = Some("file:///src/pkg".into());
        package.editable = true;
        assert_eq!(requirement(&package), "-e /src/pkg");
        package.editable = false;
        assert_eq!(requirement(&package), format!("{name} @ file:///src/pkg"));
    }
}
