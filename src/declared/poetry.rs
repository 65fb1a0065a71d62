//! `poetry.lock`: `[[package]]` entries with `name`, `version`, `optional`, `groups`
//! (Poetry 2: the dependency groups that need the package, `main` for the project's own
//! dependencies), `markers` (one string, or one per group; Poetry 2 writes the extras that
//! pull an optional package in as `extra == "…"`), `files` (`{ file, hash }`), and
//! `[metadata]` with `lock-version`, `python-versions` and `content-hash`. The project's own
//! name, `requires-python` and groups come from the `pyproject.toml` beside it, when there
//! is one. A lock older than 2.1 records no groups: its non-optional packages are taken as
//! the main dependencies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{normalize, Declared, Entry, Marker, Problem, When};

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<PoetryPackage>,
    metadata: Option<PoetryMetadata>,
    #[serde(default)]
    extras: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PoetryPackage {
    name: String,
    version: Option<String>,
    #[serde(default)]
    optional: bool,
    groups: Option<Vec<String>>,
    markers: Option<PoetryMarkers>,
    #[serde(default)]
    files: Vec<PoetryFile>,
    source: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PoetryMarkers {
    One(String),
    PerGroup(BTreeMap<String, String>),
}

#[derive(Deserialize)]
struct PoetryFile {
    file: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PoetryMetadata {
    lock_version: Option<String>,
    python_versions: Option<String>,
}

/// What the project's `pyproject.toml` says.
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Pyproject {
    project: Option<Project>,
    #[serde(default)]
    dependency_groups: BTreeMap<String, toml::Value>,
    tool: Option<Tool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Project {
    name: Option<String>,
    requires_python: Option<String>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct Tool {
    poetry: Option<ToolPoetry>,
}

#[derive(Deserialize)]
struct ToolPoetry {
    name: Option<String>,
    #[serde(default)]
    group: BTreeMap<String, toml::Value>,
    #[serde(default)]
    extras: BTreeMap<String, toml::Value>,
}

/// The lock versions this build reads.
const SUPPORTED: &str = "1.x or 2.x";

/// The group of a project's own dependencies.
const MAIN: &str = "main";

pub(super) fn read(text: &str, pyproject: Option<&str>) -> Result<Declared, Problem> {
    let lock: PoetryLock = toml::from_str(text)?;
    let version = lock
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.lock_version.clone())
        .ok_or_else(|| {
            Problem::Invalid("no `[metadata] lock-version`: not a poetry.lock".into())
        })?;
    if !matches!(version.split('.').next(), Some("1" | "2")) {
        return Err(Problem::Version {
            found: version,
            supported: SUPPORTED,
        });
    }
    let pyproject: Pyproject = match pyproject {
        // The lock is what is checked; a pyproject.toml that cannot be read adds nothing.
        Some(text) => toml::from_str(text).unwrap_or_default(),
        None => Pyproject::default(),
    };
    let poetry = pyproject
        .tool
        .as_ref()
        .and_then(|tool| tool.poetry.as_ref());
    let mut extras: BTreeSet<String> = lock.extras.keys().map(|name| normalize(name)).collect();
    let mut groups: BTreeSet<String> = pyproject
        .dependency_groups
        .keys()
        .chain(poetry.into_iter().flat_map(|poetry| poetry.group.keys()))
        .map(|name| normalize(name))
        .collect();
    if let Some(project) = &pyproject.project {
        extras.extend(
            project
                .optional_dependencies
                .keys()
                .map(|name| normalize(name)),
        );
    }
    if let Some(poetry) = poetry {
        extras.extend(poetry.extras.keys().map(|name| normalize(name)));
    }
    let parse = |text: &str, name: &str| {
        Marker::parse(text)
            .map_err(|error| Problem::Invalid(format!("the marker `{text}` of `{name}`: {error}")))
    };
    let mut declared = Declared::default();
    for package in &lock.package {
        let name = normalize(&package.name);
        let group_names = match &package.groups {
            Some(names) => names.clone(),
            // Before lock-version 2.1: no groups; optional packages come with an extra.
            None if package.optional => Vec::new(),
            None => vec![MAIN.to_string()],
        };
        groups.extend(
            group_names
                .iter()
                .filter(|group| *group != MAIN)
                .map(|group| normalize(group)),
        );
        let mut when = Vec::new();
        for group in &group_names {
            let marker = match &package.markers {
                None => None,
                Some(PoetryMarkers::One(text)) => Some(parse(text, &package.name)?),
                Some(PoetryMarkers::PerGroup(per_group)) => match per_group.get(group) {
                    Some(text) => Some(parse(text, &package.name)?),
                    None => None,
                },
            };
            when.push(When {
                group: (group != MAIN).then(|| normalize(group)),
                marker,
            });
        }
        if package.groups.is_none() && package.optional {
            for (extra, members) in &lock.extras {
                let named = members.as_array().is_some_and(|members| {
                    members.iter().any(|member| {
                        member.as_str().is_some_and(|member| {
                            normalize(member.split([' ', '[', '(']).next().unwrap_or(member))
                                == name
                        })
                    })
                });
                if named {
                    when.push(When {
                        group: None,
                        marker: Some(parse(&format!("extra == '{extra}'"), &package.name)?),
                    });
                }
            }
        }
        let local = package.source.as_ref().is_some_and(|source| {
            source.get("type").and_then(toml::Value::as_str) == Some("directory")
                && source.get("develop").and_then(toml::Value::as_bool) == Some(true)
        });
        if local {
            declared.projects.push(name.clone());
        }
        declared.packages.push(Entry {
            name,
            version: package.version.clone(),
            wheels: package
                .files
                .iter()
                .filter(|file| file.file.ends_with(".whl"))
                .map(|file| file.file.clone())
                .collect(),
            when,
            ..Entry::default()
        });
    }
    let project_name = pyproject
        .project
        .as_ref()
        .and_then(|project| project.name.clone())
        .or_else(|| poetry.and_then(|poetry| poetry.name.clone()));
    declared
        .projects
        .extend(project_name.map(|name| normalize(&name)));
    // Poetry's own `python-versions` may be Poetry syntax (`^3.10`); only PEP 440 is kept.
    let specifiers = |text: &str| {
        text.parse::<pep508_rs::pep440_rs::VersionSpecifiers>()
            .ok()
            .map(|_| text.to_string())
    };
    declared.requires_python = pyproject
        .project
        .as_ref()
        .and_then(|project| project.requires_python.as_deref())
        .and_then(specifiers)
        .or_else(|| {
            lock.metadata
                .as_ref()
                .and_then(|metadata| metadata.python_versions.as_deref())
                .and_then(specifiers)
        });
    declared.extras = Some(extras);
    declared.groups = Some(groups);
    Ok(declared)
}
