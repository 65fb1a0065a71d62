//! `pylock.toml` (PEP 751): `lock-version = "1.0"`, `requires-python`, the lock's `extras`,
//! `dependency-groups` and `default-groups`, and `[[packages]]` with `name`, `version`,
//! `marker` (which may use the set-valued `extras` and `dependency_groups` variables) and one
//! of `wheels`/`sdist`, `vcs`, `directory` or `archive`. There is no graph: a package is
//! required when its marker holds.

use serde::Deserialize;

use super::{file_name, normalize, wheel_version, Declared, Entry, Marker, Problem, When};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Pylock {
    lock_version: Option<toml::Value>,
    requires_python: Option<String>,
    extras: Option<Vec<String>>,
    dependency_groups: Option<Vec<String>>,
    #[serde(default)]
    packages: Vec<PylockPackage>,
}

#[derive(Deserialize)]
struct PylockPackage {
    name: String,
    version: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    wheels: Vec<PylockFile>,
    directory: Option<PylockDirectory>,
    archive: Option<PylockFile>,
}

#[derive(Deserialize)]
struct PylockFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
}

impl PylockFile {
    fn file_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| self.url.as_deref().map(|url| file_name(url).to_string()))
            .or_else(|| self.path.as_deref().map(|path| file_name(path).to_string()))
    }
}

#[derive(Deserialize)]
struct PylockDirectory {
    #[serde(default)]
    editable: bool,
}

/// The lock versions this build reads: PEP 751 says a major version it does not know is
/// refused, a newer minor version read.
const SUPPORTED: &str = "1.x";

pub(super) fn read(text: &str) -> Result<Declared, Problem> {
    let lock: Pylock = toml::from_str(text)?;
    let version = match &lock.lock_version {
        Some(toml::Value::String(version)) => version.clone(),
        Some(other) => other.to_string(),
        None => {
            return Err(Problem::Invalid(
                "no `lock-version` at the top: not a pylock.toml".into(),
            ))
        }
    };
    if version.split('.').next() != Some("1") {
        return Err(Problem::Version {
            found: version,
            supported: SUPPORTED,
        });
    }
    let mut declared = Declared {
        requires_python: lock.requires_python,
        extras: lock
            .extras
            .map(|names| names.iter().map(|name| normalize(name)).collect()),
        groups: lock
            .dependency_groups
            .map(|names| names.iter().map(|name| normalize(name)).collect()),
        ..Declared::default()
    };
    for package in lock.packages {
        let name = normalize(&package.name);
        if package
            .directory
            .as_ref()
            .is_some_and(|directory| directory.editable)
        {
            declared.projects.push(name);
            continue;
        }
        let marker = package
            .marker
            .as_deref()
            .map(|text| {
                Marker::parse(text).map_err(|error| {
                    Problem::Invalid(format!(
                        "the marker `{text}` of `{}`: {error}",
                        package.name
                    ))
                })
            })
            .transpose()?;
        let version = package.version.or_else(|| {
            let archive = package.archive.as_ref()?.file_name()?;
            wheel_version(&archive)
        });
        declared.packages.push(Entry {
            name,
            version,
            wheels: package
                .wheels
                .iter()
                .filter_map(PylockFile::file_name)
                .collect(),
            when: vec![When {
                marker,
                ..When::always()
            }],
            ..Entry::default()
        });
    }
    Ok(declared)
}
