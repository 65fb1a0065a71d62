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
    source: Option<UvSource>,
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
    requires_dev: BTreeMap<String, serde::de::IgnoredAny>,
}

/// Where a package comes from: `{ registry = URL }`, `{ editable = "." }`, `{ virtual = "." }`,
/// `{ git = URL }`, `{ path = … }`, `{ directory = … }`, `{ url = … }`. Typed rather than a
/// table: forks tell same-named packages apart by it, and it is read for every package.
#[derive(Deserialize, PartialEq, Eq)]
struct UvSource {
    registry: Option<String>,
    editable: Option<String>,
    #[serde(rename = "virtual")]
    virtual_path: Option<String>,
    git: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct UvDependency {
    name: String,
    version: Option<String>,
    source: Option<UvSource>,
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

/// The packages of a uv.lock after the first half of the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UvPackages {
    package: Vec<UvPackage>,
}

/// Locks larger than this are parsed in two halves on two threads.
const SPLIT_AT: usize = 64 * 1024;

/// `text` as a uv.lock. A large one is parsed as two halves at a `[[package]]` header, on two
/// threads (the TOML parse is most of reading a lock of hundreds of packages); when either half
/// fails, or the second holds anything but packages, the whole is parsed again, so errors name
/// the file's own lines and columns and nothing parses in halves that would not whole.
fn parse(text: &str) -> Result<UvLock, Problem> {
    let middle = text.len() / 2;
    let split = (text.len() > SPLIT_AT && text.is_char_boundary(middle))
        .then(|| text[middle..].find("\n[[package]]\n"))
        .flatten()
        .map(|at| middle + at + 1);
    if let Some(at) = split {
        let (head, tail) = text.split_at(at);
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| toml::from_str::<UvPackages>(tail));
            (toml::from_str::<UvLock>(head), second.join())
        });
        if let (Ok(mut first), Ok(Ok(second))) = (first, second) {
            first.package.extend(second.package);
            return Ok(first);
        }
    }
    Ok(toml::from_str(text)?)
}

/// The wheel lines of `text` taken out before the TOML parser sees them, with the file name
/// each names, one list per `[[package]]` header (`None`: a header whose wheels, if any, are
/// left to the parser).
///
/// Why: wheel and sdist lines are nine tenths of a uv.lock's bytes (a binary package lists a
/// wheel per platform and Python), and envlock needs only the file names of the wheels. uv
/// writes each wheel as one inline table per line between `wheels = [` and `]`, and the sdist
/// as one line; lines of exactly that shape, without escapes, are blanked (so the parser's
/// line numbers stay right), and any other shape is left to the parser whole.
fn take_wheel_files(text: &str) -> (String, Vec<Option<Vec<String>>>) {
    let mut out = String::with_capacity(text.len() / 4);
    let mut files: Vec<Option<Vec<String>>> = Vec::new();
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let bare = line.trim_end();
        if bare == "[[package]]" {
            files.push(None);
        } else if bare.starts_with("sdist = {") && bare.ends_with('}') && !bare.contains('\\') {
            out.push('\n');
            continue;
        } else if bare == "wheels = [" {
            let mut block: Vec<&str> = Vec::new();
            let mut names = Vec::new();
            let mut closed = false;
            for inner in lines.by_ref() {
                block.push(inner);
                let inner_bare = inner.trim();
                if inner_bare == "]" {
                    closed = true;
                    break;
                }
                let shaped = inner_bare.starts_with('{')
                    && (inner_bare.ends_with("},") || inner_bare.ends_with('}'))
                    && !inner_bare.contains('\\');
                match wheel_file(inner_bare).filter(|_| shaped) {
                    Some(name) => names.push(name),
                    None => break,
                }
            }
            let taken = closed && block.len() == names.len() + 1;
            if let (true, Some(last)) = (taken, files.last_mut()) {
                out.push_str(line);
                out.extend(std::iter::repeat_n('\n', names.len()));
                out.push_str(block[block.len() - 1]);
                *last = Some(names);
            } else {
                out.push_str(line);
                block.iter().for_each(|inner| out.push_str(inner));
            }
            continue;
        }
        out.push_str(line);
    }
    (out, files)
}

/// The file name a wheel line names by `filename`, `url` or `path`.
fn wheel_file(line: &str) -> Option<String> {
    let value = |key: &str| {
        let start = line.find(key)? + key.len();
        let end = line[start..].find('"')?;
        Some(&line[start..start + end])
    };
    let name = value("filename = \"")
        .or_else(|| value("url = \"").map(file_name))
        .or_else(|| value("path = \"").map(file_name))?;
    name.ends_with(".whl").then(|| name.to_string())
}

/// The uv.lock versions this build reads.
const SUPPORTED: &str = "1";

pub(super) fn read(text: &str) -> Result<Declared, Problem> {
    let (text, files) = take_wheel_files(text);
    let lock = parse(&text)?;
    // One list per `[[package]]` header, in order: anything else and the TOML's own wheels count.
    let files = (files.len() == lock.package.len()).then_some(files);
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
            [&source.editable, &source.virtual_path]
                .into_iter()
                .flatten()
                .any(|path| folder.is_none_or(|folder| path == folder))
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
    for (index, package) in lock.package.iter().enumerate() {
        let mut wheels: Vec<String> = package
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
            .collect();
        if let Some(taken) = files.as_ref().and_then(|files| files[index].as_ref()) {
            wheels.extend(taken.iter().cloned());
        }
        packages.push(Entry {
            name: normalize(&package.name),
            version: package.version.clone(),
            wheels,
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
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wheels taken before parsing are the ones the parser would have read, and every
    /// line keeps its number.
    #[test]
    fn taking_wheel_lines_out_keeps_the_wheels_and_the_line_numbers() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/declared/uv.lock");
        let text = std::fs::read_to_string(path).unwrap();
        let (taken, files) = take_wheel_files(&text);
        assert_eq!(taken.lines().count(), text.lines().count());
        assert!(
            taken.len() < text.len() / 3,
            "{} of {}",
            taken.len(),
            text.len()
        );
        let whole: UvLock = toml::from_str(&text).unwrap();
        assert_eq!(files.len(), whole.package.len());
        for (package, files) in whole.package.iter().zip(&files) {
            let parsed: Vec<String> = package
                .wheels
                .iter()
                .map(|wheel| file_name(wheel.url.as_deref().unwrap()).to_string())
                .collect();
            assert_eq!(
                files.clone().unwrap_or_default(),
                parsed,
                "{}",
                package.name
            );
        }
        let markupsafe = read(&text).unwrap();
        let entry = markupsafe
            .packages
            .iter()
            .find(|entry| entry.name == "markupsafe")
            .unwrap();
        assert!(entry.wheels.len() > 10);
        // A line of another shape leaves its block to the parser, which reads it the same.
        let odd = text.replacen(
            "    { url = \"https://files.pythonhosted.org/packages/d1/d6",
            "    {url=\"https://files.pythonhosted.org/packages/d1/d6",
            1,
        );
        let colorama = read(&odd).unwrap();
        assert_eq!(
            colorama.packages[0].wheels,
            ["colorama-0.4.6-py2.py3-none-any.whl"]
        );
    }
}
