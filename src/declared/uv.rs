//! `uv.lock`: `version = 1`, `requires-python`, and `[[package]]` entries with `name`,
//! `version`, `source` (`{ registry }`, `{ editable = "." }`, `{ virtual = "." }`, …),
//! `dependencies` (`{ name, version?, source?, marker?, extra? }`; `version` and `source`
//! only when several packages share the name, in a forked resolution),
//! `[package.optional-dependencies]`, `[package.dev-dependencies]` (dependency groups) and
//! `wheels` (`{ url | path | filename, hash }`). The project's roots are the packages whose
//! source is the lock's own folder (`editable = "."` or `virtual = "."`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{file_name, normalize, Declared, Edge, Entry, Marker, Problem, When};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvLock {
    version: Option<toml::Value>,
    requires_python: Option<String>,
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvPackage {
    name: String,
    version: Option<String>,
    source: Option<toml::Table>,
    #[serde(default)]
    dependencies: Vec<UvDependency>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<UvDependency>>,
    #[serde(default)]
    dev_dependencies: BTreeMap<String, Vec<UvDependency>>,
    #[serde(default)]
    wheels: Vec<UvWheel>,
    metadata: Option<UvMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvMetadata {
    #[serde(default)]
    provides_extras: Vec<String>,
    #[serde(default)]
    requires_dev: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct UvDependency {
    name: String,
    version: Option<String>,
    source: Option<toml::Table>,
    marker: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(Deserialize)]
struct UvWheel {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
}

/// The uv.lock versions this build reads.
const SUPPORTED: &str = "1";

pub(super) fn read(text: &str) -> Result<Declared, Problem> {
    let lock: UvLock = toml::from_str(text)?;
    match &lock.version {
        Some(toml::Value::Integer(1)) => {}
        Some(other) => {
            return Err(Problem::Version {
                found: other.to_string(),
                supported: SUPPORTED,
            })
        }
        None => {
            return Err(Problem::Invalid(
                "no `version` at the top: not a uv.lock".into(),
            ))
        }
    }
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, package) in lock.package.iter().enumerate() {
        by_name
            .entry(normalize(&package.name))
            .or_default()
            .push(index);
    }
    let local = |package: &UvPackage, folder: Option<&str>| {
        package.source.as_ref().is_some_and(|source| {
            ["editable", "virtual"].iter().any(|key| {
                source
                    .get(*key)
                    .and_then(toml::Value::as_str)
                    .is_some_and(|path| folder.is_none_or(|folder| path == folder))
            })
        })
    };
    let mut roots: Vec<usize> = (0..lock.package.len())
        .filter(|&index| local(&lock.package[index], Some(".")))
        .collect();
    if roots.is_empty() {
        roots = (0..lock.package.len())
            .filter(|&index| local(&lock.package[index], None))
            .collect();
    }
    let resolve = |from: &UvPackage, dependency: &UvDependency| -> Result<Edge, Problem> {
        let name = normalize(&dependency.name);
        let candidates = by_name.get(&name).map(Vec::as_slice).unwrap_or_default();
        let fits = |index: &&usize| {
            let package = &lock.package[**index];
            dependency
                .version
                .as_ref()
                .is_none_or(|version| package.version.as_ref() == Some(version))
                && dependency
                    .source
                    .as_ref()
                    .is_none_or(|source| package.source.as_ref() == Some(source))
        };
        let package = *candidates.iter().find(fits).ok_or_else(|| {
            Problem::Invalid(format!(
                "`{}` depends on `{}`{}, which no `[[package]]` is",
                from.name,
                dependency.name,
                dependency
                    .version
                    .as_ref()
                    .map(|version| format!(" {version}"))
                    .unwrap_or_default()
            ))
        })?;
        let marker = dependency
            .marker
            .as_deref()
            .map(|text| {
                Marker::parse(text).map_err(|error| {
                    Problem::Invalid(format!(
                        "the marker `{text}` of `{}` in `{}`: {error}",
                        dependency.name, from.name
                    ))
                })
            })
            .transpose()?;
        Ok(Edge {
            package,
            marker,
            extras: dependency.extra.clone(),
        })
    };
    let edges = |from: &UvPackage, list: &[UvDependency]| -> Result<Vec<Edge>, Problem> {
        list.iter()
            .map(|dependency| resolve(from, dependency))
            .collect()
    };
    let groups_of = |map: &BTreeMap<String, Vec<UvDependency>>, from: &UvPackage| {
        map.iter()
            .map(|(name, list)| Ok((normalize(name), edges(from, list)?)))
            .collect::<Result<BTreeMap<_, _>, Problem>>()
    };
    let mut packages = Vec::with_capacity(lock.package.len());
    for package in &lock.package {
        packages.push(Entry {
            name: normalize(&package.name),
            version: package.version.clone(),
            wheels: package
                .wheels
                .iter()
                .filter_map(|wheel| {
                    let file = wheel
                        .filename
                        .as_deref()
                        .or(wheel.url.as_deref().map(file_name))
                        .or(wheel.path.as_deref().map(file_name))?;
                    Some(file.to_string())
                })
                .collect(),
            when: Vec::new(),
            dependencies: edges(package, &package.dependencies)?,
            optional: groups_of(&package.optional_dependencies, package)?,
            groups: groups_of(&package.dev_dependencies, package)?,
        });
    }
    if roots.is_empty() {
        // No project in the lock (a lock of scripts or tools): every package is required.
        for entry in &mut packages {
            entry.when.push(When::always());
        }
    }
    let mut extras = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for &root in &roots {
        let package = &lock.package[root];
        extras.extend(
            package
                .optional_dependencies
                .keys()
                .map(|name| normalize(name)),
        );
        groups.extend(package.dev_dependencies.keys().map(|name| normalize(name)));
        if let Some(metadata) = &package.metadata {
            extras.extend(metadata.provides_extras.iter().map(|name| normalize(name)));
            groups.extend(metadata.requires_dev.keys().map(|name| normalize(name)));
        }
    }
    let projects = roots
        .iter()
        .map(|&root| normalize(&lock.package[root].name))
        .chain(
            lock.package
                .iter()
                .filter(|package| local(package, None))
                .map(|package| normalize(&package.name)),
        )
        .collect();
    Ok(Declared {
        requires_python: lock.requires_python,
        projects,
        packages,
        roots,
        extras: Some(extras),
        groups: Some(groups),
    })
}
