//! `poetry.lock`: `[[package]]` entries with `name`, `version`, `optional`, `groups`
//! (Poetry 2: the dependency groups that need the package, `main` for the project's own
//! dependencies), `markers` (one string, or one per group; Poetry 2 writes the extras that
//! pull an optional package in as `extra == "…"`), `files` (`{ file, hash }`),
//! `[package.dependencies]` (the edges: `NAME = "constraint"`, or a table with `version`,
//! `markers`, `extras`, `optional`, or a list of such tables), `[package.extras]`, and
//! `[metadata]` with `lock-version`, `python-versions` and `content-hash`.
//!
//! With the `pyproject.toml` beside it, the lock is read as `poetry install` reads it: the
//! graph is walked from the project's main dependencies (and the extras and groups named),
//! each edge's markers evaluated for the target, so a package reached only through a
//! Windows or an old-Python edge, or only from the dev group, is not required. Poetry 1.8
//! (lock-version 2.0) records neither groups nor markers per package, and Poetry 2's are a
//! summary of the same walk: the walk is the answer for both. Without a pyproject.toml
//! (or one that declares nothing), each package's own `groups` and `markers` decide; a lock
//! older than 2.1 then takes its non-optional packages as the main dependencies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::pyproject::{self, Requirement};
use super::{normalize, Declared, Edge, Entry, Marker, Problem, When};

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
    /// The edges, read by [`pyproject::poetry_table`]: their shapes vary, and one odd
    /// entry should not make the lock unreadable.
    #[serde(default)]
    dependencies: toml::Table,
    /// `[package.extras]`: each extra's requirements (`"tomli ; python_full_version <= …"`).
    #[serde(default)]
    extras: toml::Table,
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
    // The lock is what is checked; a pyproject.toml that is not TOML adds nothing, and one
    // with a requirement Poetry would refuse is said to be so.
    let table: toml::Table = pyproject
        .and_then(|text| toml::from_str(text).ok())
        .unwrap_or_default();
    let project = pyproject::read(&table).map_err(Problem::Project)?;
    let mut extras: BTreeSet<String> = lock.extras.keys().map(|name| normalize(name)).collect();
    extras.extend(project.extras.keys().cloned());
    let mut groups: BTreeSet<String> = project.groups.keys().cloned().collect();
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
                        member
                            .as_str()
                            .is_some_and(|member| extra_member(member) == name)
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
    declared.projects.extend(project.name.clone());
    if project.declares_any() {
        walk_from(&mut declared, &lock, &project)?;
    } else if lock.package.iter().any(|package| package.groups.is_none()) {
        // Poetry 1.8's locks say nothing of groups or edges' reach: without the project's
        // dependencies, a dev group's packages and a Windows-only one look required.
        declared.notes.push(
            "no `pyproject.toml` beside it declares the project's dependencies, and this lock (before lock-version 2.1) records no groups: every package that is not optional is taken as required, dev groups and other platforms' included".to_string(),
        );
    }
    // Poetry's own `python-versions` may be Poetry syntax (`^3.10`); only PEP 440 is kept.
    let specifiers = |text: &str| {
        text.parse::<pep508_rs::pep440_rs::VersionSpecifiers>()
            .ok()
            .map(|_| text.to_string())
    };
    declared.requires_python = table
        .get("project")
        .and_then(|project| project.get("requires-python"))
        .and_then(toml::Value::as_str)
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

/// The graph of the lock and the project's root, for [`super::select`]'s walk: each
/// package's edges (`[package.dependencies]` not optional) and its extras' edges (the
/// dependencies `[package.extras]` names, whose markers say `extra == "…"`), and a root
/// entry holding the project's main dependencies, extras and groups.
fn walk_from(
    declared: &mut Declared,
    lock: &PoetryLock,
    project: &pyproject::Project,
) -> Result<(), Problem> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, entry) in declared.packages.iter().enumerate() {
        by_name.entry(entry.name.clone()).or_default().push(index);
    }
    let versions: Vec<Option<pep508_rs::pep440_rs::Version>> = declared
        .packages
        .iter()
        .map(|entry| entry.version.as_deref().and_then(|v| v.parse().ok()))
        .collect();
    // The packages a requirement may resolve to: the lock's entries of that name, narrowed
    // by its version constraint when the lock holds several (a fork by Python version). A
    // name the lock lacks resolves to none: Poetry leaves out what no supported Python needs.
    let resolve = |requirement: &Requirement| -> Vec<usize> {
        let candidates = by_name.get(&requirement.name).cloned().unwrap_or_default();
        if candidates.len() < 2 || requirement.versions.is_empty() {
            return candidates;
        }
        let fits: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&index| {
                versions[index].as_ref().is_some_and(|version| {
                    requirement.versions.iter().any(|alternative| {
                        alternative
                            .parse::<pep508_rs::pep440_rs::VersionSpecifiers>()
                            .is_ok_and(|specifiers| specifiers.contains(version))
                    })
                })
            })
            .collect();
        if fits.is_empty() {
            candidates
        } else {
            fits
        }
    };
    let edges = |requirements: &[Requirement], from: &str| -> Result<Vec<Edge>, Problem> {
        let mut out = Vec::new();
        for requirement in requirements {
            let marker = requirement
                .marker
                .as_deref()
                .map(|text| {
                    Marker::parse(text).map_err(|error| {
                        Problem::Invalid(format!(
                            "the marker `{text}` of `{}` in `{from}`: {error}",
                            requirement.name
                        ))
                    })
                })
                .transpose()?;
            for package in resolve(requirement) {
                out.push(Edge {
                    package,
                    marker: marker.clone(),
                    extras: requirement.extras.clone(),
                });
            }
        }
        Ok(out)
    };
    for (index, package) in lock.package.iter().enumerate() {
        let requirements = pyproject::poetry_table(&package.dependencies);
        let plain: Vec<Requirement> = requirements
            .iter()
            .filter(|requirement| !requirement.optional)
            .cloned()
            .collect();
        declared.packages[index].dependencies = edges(&plain, &package.name)?;
        for (extra, members) in &package.extras {
            let names: BTreeSet<String> = members
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(toml::Value::as_str)
                .map(extra_member)
                .collect();
            let named: Vec<Requirement> = requirements
                .iter()
                .filter(|requirement| names.contains(&requirement.name))
                .cloned()
                .collect();
            declared.packages[index]
                .optional
                .insert(normalize(extra), edges(&named, &package.name)?);
        }
    }
    let mut root = Entry {
        name: project.name.clone().unwrap_or_default(),
        dependencies: edges(&project.main, "pyproject.toml")?,
        ..Entry::default()
    };
    for (extra, requirements) in &project.extras {
        root.optional
            .insert(extra.clone(), edges(requirements, "pyproject.toml")?);
    }
    for (group, requirements) in &project.groups {
        root.groups
            .insert(group.clone(), edges(requirements, "pyproject.toml")?);
    }
    declared.roots = vec![declared.packages.len()];
    declared.packages.push(root);
    Ok(())
}

/// The distribution an extra's member names (`"torch (>=2.0)"`, `"rich[jupyter]"`): its
/// name up to the first character a name cannot hold, normalized.
fn extra_member(member: &str) -> String {
    let end = member
        .find(|character: char| !(character.is_ascii_alphanumeric() || "-_.".contains(character)))
        .unwrap_or(member.len());
    normalize(&member[..end])
}
