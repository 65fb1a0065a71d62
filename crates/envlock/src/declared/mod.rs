//! The project's own lock as a baseline: `uv.lock`, `pylock.toml` (PEP 751), `poetry.lock`
//! and `requirements*.txt` of exact pins. Each reader turns its format into a [`Declared`]:
//! the packages the lock names, with the markers, extras and dependency groups that say when
//! each is required, and, where the format has one (uv.lock; poetry.lock with the
//! pyproject.toml beside it), the dependency graph from the project's roots, each edge with
//! its marker. [`select`] then takes what the lock requires for one target runtime —
//! its markers evaluated against the target's marker environment — into a [`Lock`] that
//! holds packages and no interpreter facts, marked `[declared]` so the diff compares only
//! what a lock declares.
//!
//! Data flow: capture gives the target's `Lock`; this module gives the baseline's; the diff
//! knows neither file format.

mod markers;
mod poetry;
mod pylock;
mod pyproject;
mod requirements;
mod uv;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lock::{self, Lock, MetadataFormat, Package};
use crate::warning::{Warning, WarningCode};
pub(crate) use markers::{Applies, Marker, Target};
pub(crate) use requirements::parse_requirement;

/// A declared lock's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredFormat {
    /// `uv.lock`.
    UvLock,
    /// `pylock.toml` / `pylock.NAME.toml` (PEP 751).
    Pylock,
    /// `poetry.lock`, with `pyproject.toml` beside it.
    PoetryLock,
    /// `requirements*.txt` of exact pins (pip-tools, `uv export`, `pip freeze`).
    Requirements,
}

impl DeclaredFormat {
    /// The name people know the format by, for messages.
    pub fn name(self) -> &'static str {
        match self {
            DeclaredFormat::UvLock => "uv.lock",
            DeclaredFormat::Pylock => "pylock.toml",
            DeclaredFormat::PoetryLock => "poetry.lock",
            DeclaredFormat::Requirements => "requirements.txt",
        }
    }

    /// The command that writes the format again, for hints.
    pub(crate) fn regenerate(self) -> &'static str {
        match self {
            DeclaredFormat::UvLock => "`uv lock`",
            DeclaredFormat::Pylock => "`uv export --format pylock.toml -o pylock.toml` (or `pip lock`)",
            DeclaredFormat::PoetryLock => "`poetry lock`",
            DeclaredFormat::Requirements => {
                "`uv export -o requirements.txt`, `uv pip compile` or `pip-compile --generate-hashes`"
            }
        }
    }
}

/// An operand naming a declared lock: the format, and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSource {
    /// How to read it.
    pub format: DeclaredFormat,
    /// The file.
    pub path: PathBuf,
}

/// The operand prefixes that name a declared lock whatever the file is called.
const PREFIXES: &[(&str, DeclaredFormat)] = &[
    ("uv-lock:", DeclaredFormat::UvLock),
    ("pylock:", DeclaredFormat::Pylock),
    ("poetry-lock:", DeclaredFormat::PoetryLock),
    ("requirements:", DeclaredFormat::Requirements),
];

impl DeclaredSource {
    /// `Some` when `text` names a declared lock, by prefix or by file name (`uv.lock`,
    /// `pylock.toml`, `pylock.NAME.toml`, `poetry.lock`, `requirements*.txt`).
    pub(crate) fn parse(text: &str) -> Option<DeclaredSource> {
        for (prefix, format) in PREFIXES {
            if let Some(path) = text.strip_prefix(prefix) {
                return Some(DeclaredSource {
                    format: *format,
                    path: PathBuf::from(path),
                });
            }
        }
        let name = Path::new(text).file_name()?.to_str()?;
        let format = if name == "uv.lock" {
            DeclaredFormat::UvLock
        } else if name == "poetry.lock" {
            DeclaredFormat::PoetryLock
        } else if name == "pylock.toml"
            || (name.starts_with("pylock.")
                && name.ends_with(".toml")
                && name.len() > "pylock..toml".len()
                && !name["pylock.".len()..name.len() - ".toml".len()].contains('.'))
        {
            DeclaredFormat::Pylock
        } else if name.starts_with("requirements") && name.ends_with(".txt") {
            DeclaredFormat::Requirements
        } else {
            return None;
        };
        Some(DeclaredSource {
            format,
            path: PathBuf::from(text),
        })
    }
}

/// A declared lock, read: what it names and when each package is required.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    /// The Python versions the lock is for (`requires-python`), PEP 440 specifiers.
    pub(crate) requires_python: Option<String>,
    /// The project's own packages (the root, editable members): installed from source, so
    /// never reported as added.
    pub(crate) projects: Vec<String>,
    /// Every package the lock lists.
    pub(crate) packages: Vec<Entry>,
    /// The project's root packages (indexes into `packages`), from which the graph is
    /// walked: uv.lock's local packages, or the entry poetry.lock's reader makes of the
    /// pyproject.toml's dependencies. Empty: each entry's `when` decides.
    pub(crate) roots: Vec<usize>,
    /// The extras the lock knows; `None` when the format does not list them.
    pub(crate) extras: Option<BTreeSet<String>>,
    /// The dependency groups the lock knows; `None` when the format does not list them.
    pub(crate) groups: Option<BTreeSet<String>>,
    /// What people should know about how the lock was read, one line each (without the
    /// file's name, which [`select`] puts first).
    pub(crate) notes: Vec<String>,
}

/// A package of a declared lock.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    /// PEP 503 normalized.
    pub(crate) name: String,
    /// The pinned version; `None` for a direct URL or a local folder without one.
    pub(crate) version: Option<String>,
    /// The wheel file names the lock lists for this version.
    pub(crate) wheels: Vec<String>,
    /// Flat formats: the package is required when any of these holds.
    pub(crate) when: Vec<When>,
    /// Graph formats: its dependencies, its extras' and (a root's) its dependency groups'.
    pub(crate) dependencies: Vec<Edge>,
    pub(crate) optional: BTreeMap<String, Vec<Edge>>,
    pub(crate) groups: BTreeMap<String, Vec<Edge>>,
}

/// One way a package of a flat lock is required.
#[derive(Debug, Clone)]
pub(crate) struct When {
    /// The dependency group it belongs to; `None`: the main dependencies.
    pub(crate) group: Option<String>,
    /// Its marker; `None`: always.
    pub(crate) marker: Option<Marker>,
}

impl When {
    /// Always required.
    pub(crate) fn always() -> When {
        When {
            group: None,
            marker: None,
        }
    }
}

/// A dependency of a package (or of the project) in a graph format.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    /// The package it resolves to, in [`Declared::packages`].
    pub(crate) package: usize,
    /// When it applies.
    pub(crate) marker: Option<Marker>,
    /// The extras of that package it turns on.
    pub(crate) extras: Vec<String>,
}

/// What the user asked to include besides the main dependencies.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--extra NAME`.
    pub extras: Vec<String>,
    /// `--group NAME`; dev groups are off unless named, as `uv sync --no-dev` installs.
    pub groups: Vec<String>,
}

/// Why `text` (a `what`: a marker, a requirement) is refused before pep508_rs reads it:
/// pep508_rs 0.9 panics on some non-ASCII text (its cursor and its error messages slice
/// inside a character; found by fuzzing). PEP 508's names, operators and variables are
/// ASCII, and a project's lock writes them so.
pub(crate) fn not_ascii(what: &'static str, text: &str) -> Option<Pep508Problem> {
    let character = text.chars().find(|character| !character.is_ascii())?;
    Some(Pep508Problem::NotAscii { what, character })
}

/// Why a PEP 508 requirement or marker of a project's file cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Pep508Problem {
    /// Text that is not ASCII, refused before `pep508_rs` reads it (see [`not_ascii`]).
    #[error("a {what} is ASCII, and this one holds `{}`", character.escape_default())]
    NotAscii {
        /// `requirement` or `marker`.
        what: &'static str,
        character: char,
    },
    /// A package or extra name that ends in a separator, refused before `pep508_rs` reads
    /// it (it panics there).
    #[error("{} name must end with a letter or digit, not `{last}`", if *extra { "an extra's" } else { "a package" })]
    NameEnd {
        /// Whether the name is an extra's.
        extra: bool,
        last: char,
    },
    /// What `pep508_rs` refused, with its column.
    #[error(transparent)]
    Syntax(#[from] pep508_rs::Pep508Error),
}

/// The largest declared lock (or included requirements file, or pyproject.toml) read.
const TEXT_LIMIT: u64 = 64 << 20;

/// A project file's text: a regular file (not `/dev/zero` or a FIFO, which a `-r` line may
/// name), of at most 64 MiB.
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(TEXT_LIMIT + 1).read_to_string(&mut text)?;
    if text.len() as u64 > TEXT_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", TEXT_LIMIT >> 20),
        ));
    }
    Ok(text)
}

/// Reads `source` as its format says.
pub(crate) fn read(source: &DeclaredSource) -> Result<Declared> {
    let path = &source.path;
    let text = read_text(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Error::LockNotFound {
                operand: path.display().to_string(),
            }
        } else {
            Error::Read {
                path: path.clone(),
                source: error,
            }
        }
    })?;
    let invalid = |detail: String| Error::InvalidDeclared {
        path: path.clone(),
        format: source.format.name(),
        regenerate: source.format.regenerate(),
        detail,
    };
    match source.format {
        DeclaredFormat::UvLock => uv::read(&text).map_err(|problem| problem.into_error(source)),
        DeclaredFormat::Pylock => pylock::read(&text).map_err(|problem| problem.into_error(source)),
        DeclaredFormat::PoetryLock => {
            let pyproject = lock::containing_folder(path).join("pyproject.toml");
            let pyproject = match read_text(&pyproject) {
                Ok(text) => Some(text),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                Err(error) => {
                    return Err(Error::Read {
                        path: pyproject,
                        source: error,
                    })
                }
            };
            poetry::read(&text, pyproject.as_deref()).map_err(|problem| problem.into_error(source))
        }
        DeclaredFormat::Requirements => {
            requirements::read(path, &text).map_err(|problem| match problem {
                Problem::Invalid(detail) => invalid(detail),
                other => other.into_error(source),
            })
        }
    }
}

/// What a reader found wrong, before it knows the file's path.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Not valid TOML, or a key of the wrong type (the parser's message: line and column).
    Toml(toml::de::Error),
    /// A lock version this build does not read.
    Version {
        found: String,
        supported: &'static str,
    },
    /// Anything else, as a message (with its line where the format has lines).
    Invalid(String),
    /// A requirement that is not an exact pin.
    Range {
        path: PathBuf,
        line: usize,
        text: String,
    },
    /// The `pyproject.toml` beside the lock declares a requirement its tool would refuse.
    Project(pyproject::BadRequirement),
    /// A file (an included requirements file) that cannot be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Problem {
    fn into_error(self, source: &DeclaredSource) -> Error {
        let path = source.path.clone();
        match self {
            Problem::Toml(error) => Error::InvalidDeclared {
                path,
                format: source.format.name(),
                regenerate: source.format.regenerate(),
                detail: error.to_string().trim_end().to_string(),
            },
            Problem::Version { found, supported } => Error::DeclaredVersion {
                path,
                format: source.format.name(),
                regenerate: source.format.regenerate(),
                found,
                supported,
            },
            Problem::Invalid(detail) => Error::InvalidDeclared {
                path,
                format: source.format.name(),
                regenerate: source.format.regenerate(),
                detail,
            },
            Problem::Project(bad) => Error::InvalidProject {
                path: (source.path.parent())
                    .unwrap_or(std::path::Path::new(""))
                    .join("pyproject.toml"),
                detail: bad.to_string(),
            },
            Problem::Range { path, line, text } => Error::NotAPin {
                path,
                line,
                requirement: text,
            },
            Problem::Read { path, source } => Error::Read { path, source },
        }
    }
}

impl From<toml::de::Error> for Problem {
    fn from(error: toml::de::Error) -> Problem {
        Problem::Toml(error)
    }
}

/// PEP 503: `[-_.]+` to `-`, lower case.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The last path segment of a URL or path: a wheel's or sdist's file name.
pub(crate) fn file_name(url: &str) -> &str {
    let url = url.split(['#', '?']).next().unwrap_or(url);
    url.rsplit('/').next().unwrap_or(url)
}

/// The version in a wheel file name (`name-1.0-py3-none-any.whl` gives `1.0`).
pub(crate) fn wheel_version(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    (parts.len() >= 5).then(|| parts[1].to_string())
}

/// A selected baseline and what people should know about it.
#[derive(Debug)]
pub(crate) struct Selected {
    /// The baseline: packages and `[declared]`, no interpreter facts.
    pub(crate) lock: Lock,
    /// Markers that could not be evaluated for the target.
    pub(crate) warnings: Vec<Warning>,
    /// How the baseline was made, one line each.
    pub(crate) notes: Vec<String>,
}

/// Reads `source` and selects what it requires for `target` (the captured target runtime;
/// `None`: no runtime, so only extras and groups are evaluated).
pub(crate) fn baseline(
    source: &DeclaredSource,
    target: Option<&Lock>,
    selection: &Selection,
) -> Result<Selected> {
    let declared = read(source)?;
    check_selection(source, &declared, selection)?;
    Ok(select(source, &declared, target, selection))
}

/// `--extra` and `--group` name what the lock has, when it lists them.
fn check_selection(
    source: &DeclaredSource,
    declared: &Declared,
    selection: &Selection,
) -> Result<()> {
    let checks = [
        ("extra", "extra", &selection.extras, &declared.extras),
        (
            "group",
            "dependency group",
            &selection.groups,
            &declared.groups,
        ),
    ];
    for (flag, what, asked, known) in checks {
        // A format that lists none (requirements.txt, a pylock.toml without the key) holds
        // what was exported: naming one is a mistake to say, not to ignore.
        let empty = BTreeSet::new();
        let listed = known.as_ref().unwrap_or(&empty);
        if let Some(name) = asked.iter().find(|name| !listed.contains(&normalize(name))) {
            return Err(Error::UnknownSelection {
                path: source.path.clone(),
                flag,
                what,
                name: name.clone(),
                known: if known.is_none() {
                    "none; it holds what was exported".to_string()
                } else if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.iter().cloned().collect::<Vec<_>>().join(", ")
                },
            });
        }
    }
    Ok(())
}

/// What `declared` requires for `target` with `selection`, as a baseline lock.
pub(crate) fn select(
    source: &DeclaredSource,
    declared: &Declared,
    target: Option<&Lock>,
    selection: &Selection,
) -> Selected {
    let environment = Target::of(target);
    let extras: Vec<String> = selection
        .extras
        .iter()
        .map(|name| normalize(name))
        .collect();
    let groups: Vec<String> = selection
        .groups
        .iter()
        .map(|name| normalize(name))
        .collect();
    let file = source.path.display().to_string();
    let mut warnings = Vec::new();
    let mut unknown = |marker: &Marker, name: &str, variable: &str| {
        warnings.push(Warning::new(
            WarningCode::MarkerNotEvaluated,
            format!(
                "`{file}`: the marker `{}` of {name} needs `{variable}`, which the target's capture does not know (static capture runs no Python); {name} is taken as required",
                marker.text
            ),
        ));
    };
    let mut applies =
        |marker: Option<&Marker>, name: &str, extras: &[String], groups: &[String]| {
            let Some(marker) = marker else { return true };
            match environment.applies(marker, extras, groups) {
                Applies::Yes => true,
                Applies::No => false,
                Applies::Unknown(variable) => {
                    unknown(marker, name, variable);
                    true
                }
            }
        };
    let mut required: Vec<usize> = Vec::new();
    if declared.roots.is_empty() {
        for (index, entry) in declared.packages.iter().enumerate() {
            let wanted = entry.when.iter().any(|when| {
                let in_group = when
                    .group
                    .as_ref()
                    .is_none_or(|group| groups.contains(group));
                in_group && applies(when.marker.as_ref(), &entry.name, &extras, &groups)
            });
            if wanted {
                required.push(index);
            }
        }
    } else {
        // A walk over (package, extra) pairs from the roots, as an installer resolves them:
        // an edge is followed when its marker holds for the target, with the extra the edge
        // comes from as the marker's `extra` (Poetry writes `extra == "toml"` on the edges an
        // extra turns on).
        //
        // A lock that forks by Python version holds one name at several versions, and an edge
        // whose constraint fits more than one reaches each: an entry whose own markers
        // (Poetry 2's per-package `markers`) are false for the target is not followed, so
        // neither are its dependencies.
        let forked: BTreeSet<&str> = {
            let mut names = BTreeSet::new();
            let mut forked = BTreeSet::new();
            for entry in &declared.packages {
                if !names.insert(entry.name.as_str()) {
                    forked.insert(entry.name.as_str());
                }
            }
            forked
        };
        let fits = |entry: &Entry| {
            entry.when.is_empty()
                || entry.when.iter().any(|when| {
                    when.marker.as_ref().is_none_or(|marker| {
                        environment.applies(marker, &extras, &groups) != Applies::No
                    })
                })
        };
        // uv writes the extras and groups of a lock with `conflicts` into edge markers as
        // `extra == 'extra-{len}-{project}-{name}'` and `extra == 'group-{len}-{project}-{name}'`
        // (the length of the project's name first): every edge is evaluated with those of the
        // selected extras and groups set.
        let conflict_names: Vec<String> = declared
            .roots
            .iter()
            .map(|&root| declared.packages[root].name.as_str())
            .filter(|project| !project.is_empty())
            .flat_map(|project| {
                let extras = extras
                    .iter()
                    .map(move |extra| format!("extra-{}-{project}-{extra}", project.len()));
                let groups = groups
                    .iter()
                    .map(move |group| format!("group-{}-{project}-{group}", project.len()));
                extras.chain(groups)
            })
            .collect();
        let mut seen: BTreeSet<(usize, Option<String>)> = BTreeSet::new();
        let mut queue: Vec<(usize, Option<String>)> = Vec::new();
        let mut reached: BTreeSet<usize> = BTreeSet::new();
        let mut follow = |edges: &[Edge],
                          extras: &[String],
                          queue: &mut Vec<(usize, Option<String>)>,
                          reached: &mut BTreeSet<usize>| {
            let set: Vec<String> = extras.iter().chain(&conflict_names).cloned().collect();
            for edge in edges {
                let to = &declared.packages[edge.package];
                if forked.contains(to.name.as_str()) && !fits(to) {
                    continue;
                }
                if !applies(edge.marker.as_ref(), &to.name, &set, &[]) {
                    continue;
                }
                reached.insert(edge.package);
                queue.push((edge.package, None));
                queue.extend(
                    edge.extras
                        .iter()
                        .map(|extra| (edge.package, Some(normalize(extra)))),
                );
            }
        };
        for &root in &declared.roots {
            let entry = &declared.packages[root];
            follow(&entry.dependencies, &[], &mut queue, &mut reached);
            for extra in &extras {
                if let Some(edges) = entry.optional.get(extra) {
                    follow(edges, std::slice::from_ref(extra), &mut queue, &mut reached);
                }
            }
            for group in &groups {
                if let Some(edges) = entry.groups.get(group) {
                    follow(edges, &[], &mut queue, &mut reached);
                }
            }
            seen.insert((root, None));
        }
        while let Some(node) = queue.pop() {
            if !seen.insert(node.clone()) {
                continue;
            }
            let entry = &declared.packages[node.0];
            match &node.1 {
                None => follow(&entry.dependencies, &[], &mut queue, &mut reached),
                Some(extra) => {
                    if let Some(edges) = entry.optional.get(extra) {
                        follow(edges, std::slice::from_ref(extra), &mut queue, &mut reached);
                    }
                }
            }
        }
        reached.retain(|index| !declared.roots.contains(index));
        required.extend(reached);
    }
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    for index in required {
        let entry = &declared.packages[index];
        packages
            .entry(entry.name.clone())
            .or_insert_with(|| Package {
                name: entry.name.clone(),
                version: entry.version.clone().unwrap_or_default(),
                location: file.clone(),
                format: MetadataFormat::DistInfo,
                wheels: entry.wheels.clone(),
                ..Package::default()
            });
    }
    let mut projects = declared.projects.clone();
    projects.sort();
    projects.dedup();
    let lock = Lock {
        envlock: lock::Header::current(),
        source: lock::Source {
            kind: lock::SourceKind::Declared,
            reference: Some(file.clone()),
            ..lock::Source::default()
        },
        python: None,
        platform: lock::Platform::default(),
        env: lock::Env::default(),
        packages: packages.into_values().collect(),
        pth_files: Vec::new(),
        conda_packages: Vec::new(),
        numerics: lock::Numerics::default(),
        models: Vec::new(),
        golden: Vec::new(),
        system_packages: Vec::new(),
        image: None,
        declared: Some(lock::DeclaredLock {
            format: source.format.name().to_string(),
            requires_python: declared.requires_python.clone(),
            projects,
            extras,
            groups,
        }),
    };
    let mut warnings_out = std::mem::take(&mut warnings);
    warnings_out.dedup();
    let mut notes = vec![format!(
        "`{file}` is the project's lock ({}): installed files (RECORD), environment variables, the platform and interpreter facts other than `requires-python` are not compared, as a lock declares none of them",
        source.format.name()
    )];
    notes.extend(
        declared
            .notes
            .iter()
            .map(|note| format!("`{file}`: {note}")),
    );
    if target.is_none() {
        notes.push(format!(
            "`{file}`: no runtime to select for, so its environment markers were not evaluated"
        ));
    }
    Selected {
        lock,
        warnings: warnings_out,
        notes,
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): a declared lock's text, read in `format`.
pub(crate) fn fuzz(format: DeclaredFormat, text: &str) {
    let _ = match format {
        DeclaredFormat::UvLock => uv::read(text),
        DeclaredFormat::Pylock => pylock::read(text),
        DeclaredFormat::PoetryLock => poetry::read(text, Some(text)),
        DeclaredFormat::Requirements => {
            requirements::read(Path::new("/nonexistent/requirements.txt"), text)
        }
    };
}

#[cfg(test)]
mod tests;
