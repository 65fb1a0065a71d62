//! What a Poetry project's `pyproject.toml` declares, as Poetry reads it: the main
//! dependencies (`[project] dependencies`, else `[tool.poetry.dependencies]` without
//! `python` and the optional ones), the extras (`[project.optional-dependencies]`,
//! `[tool.poetry.extras]` naming optional main dependencies), and the dependency groups
//! (`[tool.poetry.group.NAME.dependencies]`, the legacy `[tool.poetry.dev-dependencies]` as
//! `dev`, PEP 735 `[dependency-groups]` with `{ include-group }`, Poetry's
//! `include-groups`). These are the roots `poetry install --only main` (and `--with`,
//! `--extras`) walks the lock's graph from.
//!
//! Poetry's constraint syntax (`^1.2`, `~1.2`, `1.2.*`, `>=1 <2`, `a || b`) and its
//! `python = "<3.11"` / `platform = "win32"` keys are turned into PEP 440 specifiers and
//! PEP 508 markers here, so the walk needs nothing of Poetry.

use std::collections::{BTreeMap, BTreeSet};

use super::{normalize, requirements::parse_requirement, Pep508Problem};

/// One declared dependency (of the project, or in the lock, of a package).
#[derive(Debug, Clone, Default)]
pub(super) struct Requirement {
    /// PEP 503 normalized.
    pub(super) name: String,
    /// Alternatives of PEP 440 specifiers (`>=1.2,<2.0`), any of which may hold; empty: any
    /// version.
    pub(super) versions: Vec<String>,
    /// The PEP 508 marker under which it applies (Poetry's `python` and `platform` keys
    /// folded in); `None`: always.
    pub(super) marker: Option<String>,
    /// The extras of the dependency it turns on.
    pub(super) extras: Vec<String>,
    /// Poetry's `optional = true`: only through an extra.
    pub(super) optional: bool,
}

/// What the project declares.
#[derive(Debug, Default)]
pub(super) struct Project {
    /// `[project] name`, else `[tool.poetry] name`.
    pub(super) name: Option<String>,
    /// The main dependencies (Poetry's `main` group).
    pub(super) main: Vec<Requirement>,
    /// The extras, by normalized name.
    pub(super) extras: BTreeMap<String, Vec<Requirement>>,
    /// The dependency groups other than `main`, by normalized name.
    pub(super) groups: BTreeMap<String, Vec<Requirement>>,
}

impl Project {
    /// Whether the file declares any dependency at all: a pyproject.toml that does not (a
    /// stub, one Poetry never read) gives no roots to walk from.
    pub(super) fn declares_any(&self) -> bool {
        !self.main.is_empty() || !self.extras.is_empty() || !self.groups.is_empty()
    }
}

/// The project `pyproject` (a parsed pyproject.toml) declares. A requirement Poetry would
/// refuse is an error naming it.
pub(super) fn read(pyproject: &toml::Table) -> Result<Project, BadRequirement> {
    let project = pyproject.get("project").and_then(toml::Value::as_table);
    let poetry = pyproject
        .get("tool")
        .and_then(|tool| tool.get("poetry"))
        .and_then(toml::Value::as_table);
    let mut out = Project {
        name: project
            .and_then(|project| project.get("name"))
            .or_else(|| poetry.and_then(|poetry| poetry.get("name")))
            .and_then(toml::Value::as_str)
            .map(normalize),
        ..Project::default()
    };
    let poetry_dependencies: Vec<Requirement> = poetry
        .and_then(|poetry| poetry.get("dependencies"))
        .and_then(toml::Value::as_table)
        .map(poetry_table)
        .unwrap_or_default()
        .into_iter()
        .filter(|requirement| requirement.name != "python")
        .collect();
    // PEP 621 first: with `[project] dependencies`, Poetry 2 reads `[tool.poetry.dependencies]`
    // only for extra information about the same names.
    match project.and_then(|project| project.get("dependencies")) {
        Some(list) => out.main = pep508_list(list, "[project] dependencies")?,
        None => {
            out.main = poetry_dependencies
                .iter()
                .filter(|requirement| !requirement.optional)
                .cloned()
                .collect();
        }
    }
    if let Some(extras) = project
        .and_then(|project| project.get("optional-dependencies"))
        .and_then(toml::Value::as_table)
    {
        for (extra, list) in extras {
            let what = format!("[project.optional-dependencies] {extra}");
            out.extras
                .entry(normalize(extra))
                .or_default()
                .extend(pep508_list(list, &what)?);
        }
    }
    if let Some(extras) = poetry
        .and_then(|poetry| poetry.get("extras"))
        .and_then(toml::Value::as_table)
    {
        for (extra, names) in extras {
            let names: BTreeSet<String> = names
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(toml::Value::as_str)
                .map(|text| normalize(text.split([' ', '[', '(']).next().unwrap_or(text)))
                .collect();
            out.extras.entry(normalize(extra)).or_default().extend(
                poetry_dependencies
                    .iter()
                    .filter(|requirement| names.contains(&requirement.name))
                    .cloned()
                    .map(|requirement| Requirement {
                        optional: false,
                        ..requirement
                    }),
            );
        }
    }
    // Groups: Poetry's own, the legacy dev table, and PEP 735's, with their includes.
    let mut includes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(groups) = poetry
        .and_then(|poetry| poetry.get("group"))
        .and_then(toml::Value::as_table)
    {
        for (group, table) in groups {
            let name = normalize(group);
            let entry = out.groups.entry(name.clone()).or_default();
            if let Some(dependencies) = table.get("dependencies").and_then(toml::Value::as_table) {
                entry.extend(poetry_table(dependencies));
            }
            includes.entry(name).or_default().extend(
                table
                    .get("include-groups")
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(toml::Value::as_str)
                    .map(normalize),
            );
        }
    }
    if let Some(dev) = poetry
        .and_then(|poetry| poetry.get("dev-dependencies"))
        .and_then(toml::Value::as_table)
    {
        out.groups
            .entry("dev".to_string())
            .or_default()
            .extend(poetry_table(dev));
    }
    if let Some(groups) = pyproject
        .get("dependency-groups")
        .and_then(toml::Value::as_table)
    {
        for (group, list) in groups {
            let name = normalize(group);
            let mut strings = Vec::new();
            for item in list.as_array().into_iter().flatten() {
                match item {
                    toml::Value::String(text) => strings.push(toml::Value::String(text.clone())),
                    toml::Value::Table(table) => includes.entry(name.clone()).or_default().extend(
                        table
                            .get("include-group")
                            .and_then(toml::Value::as_str)
                            .map(normalize),
                    ),
                    _ => {}
                }
            }
            let what = format!("[dependency-groups] {group}");
            let parsed = pep508_list(&toml::Value::Array(strings), &what)?;
            out.groups.entry(name).or_default().extend(parsed);
        }
    }
    // `[tool.poetry.group.main]` is the main group itself, to Poetry.
    if let Some(main) = out.groups.remove("main") {
        out.main.extend(main);
    }
    // Includes, transitively; a cycle stops where it closes.
    let own = out.groups.clone();
    for name in own.keys() {
        let mut seen = BTreeSet::from([name.clone()]);
        let mut queue = includes.get(name).cloned().unwrap_or_default();
        while let Some(included) = queue.pop() {
            if !seen.insert(included.clone()) {
                continue;
            }
            let more = own.get(&included).cloned().unwrap_or_default();
            out.groups.entry(name.clone()).or_default().extend(more);
            queue.extend(includes.get(&included).cloned().unwrap_or_default());
        }
    }
    Ok(out)
}

/// A requirement of a pyproject.toml that cannot be read, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{list}: `{text}`: {source}")]
pub(crate) struct BadRequirement {
    /// The list that holds it: `[project] dependencies`, a group's.
    list: String,
    /// The requirement as written.
    text: String,
    source: Pep508Problem,
}

/// A list of PEP 508 strings.
fn pep508_list(list: &toml::Value, what: &str) -> Result<Vec<Requirement>, BadRequirement> {
    let mut out = Vec::new();
    for item in list.as_array().into_iter().flatten() {
        let Some(text) = item.as_str() else { continue };
        let parsed = parse_requirement(text).map_err(|source| BadRequirement {
            list: what.to_string(),
            text: text.to_string(),
            source,
        })?;
        let versions = match &parsed.version_or_url {
            Some(pep508_rs::VersionOrUrl::VersionSpecifier(specifiers)) => {
                vec![specifiers.to_string()]
            }
            _ => Vec::new(),
        };
        out.push(Requirement {
            name: normalize(parsed.name.as_ref()),
            versions,
            marker: parsed.marker.contents().map(|marker| marker.to_string()),
            extras: parsed
                .extras
                .iter()
                .map(|extra| extra.to_string())
                .collect(),
            optional: false,
        });
    }
    Ok(out)
}

/// A table of Poetry dependencies: `NAME = "constraint"`, `NAME = { version, markers,
/// python, platform, extras, optional, … }`, or `NAME = [ { … }, … ]` (multiple-constraint
/// dependencies, one per marker), as the pyproject.toml and the lock's
/// `[package.dependencies]` write them.
pub(super) fn poetry_table(table: &toml::Table) -> Vec<Requirement> {
    let mut out = Vec::new();
    for (name, value) in table {
        let name = normalize(name);
        match value {
            toml::Value::String(constraint) => out.push(Requirement {
                name,
                versions: poetry_versions(constraint).unwrap_or_default(),
                ..Requirement::default()
            }),
            toml::Value::Table(spec) => out.push(poetry_spec(name, spec)),
            toml::Value::Array(specs) => out.extend(
                specs
                    .iter()
                    .filter_map(toml::Value::as_table)
                    .map(|spec| poetry_spec(name.clone(), spec)),
            ),
            _ => {}
        }
    }
    out
}

fn poetry_spec(name: String, spec: &toml::Table) -> Requirement {
    let text = |key: &str| spec.get(key).and_then(toml::Value::as_str);
    let mut markers: Vec<String> = Vec::new();
    if let Some(marker) = text("markers").filter(|marker| !marker.trim().is_empty()) {
        markers.push(marker.to_string());
    }
    if let Some(python) = text("python") {
        // A constraint that cannot be read is left out: the dependency is then taken to apply.
        markers.extend(python_marker(python));
    }
    if let Some(platform) = text("platform") {
        let platforms: Vec<String> = platform
            .split('|')
            .map(str::trim)
            .filter(|platform| !platform.is_empty())
            .map(|platform| format!("sys_platform == '{platform}'"))
            .collect();
        if !platforms.is_empty() {
            markers.push(platforms.join(" or "));
        }
    }
    Requirement {
        name,
        versions: text("version")
            .and_then(poetry_versions)
            .unwrap_or_default(),
        marker: join_and(&markers),
        extras: spec
            .get("extras")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
            .map(str::to_string)
            .collect(),
        optional: spec
            .get("optional")
            .and_then(toml::Value::as_bool)
            .unwrap_or(false),
    }
}

/// Markers joined by `and`, each in parentheses when there are several.
pub(super) fn join_and(markers: &[String]) -> Option<String> {
    match markers {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(
            many.iter()
                .map(|marker| format!("({marker})"))
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    }
}

/// A Poetry version constraint as alternatives of PEP 440 specifiers; `Some(vec![])` for
/// any version; `None` when it cannot be read.
pub(super) fn poetry_versions(constraint: &str) -> Option<Vec<String>> {
    let mut alternatives = Vec::new();
    for alternative in constraint.split("||") {
        let mut parts = Vec::new();
        for part in alternative
            .split([',', ' '])
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            parts.extend(poetry_part(part)?);
        }
        if parts.is_empty() {
            // `*`: any version, whatever the other alternatives say.
            return Some(Vec::new());
        }
        alternatives.push(parts.join(","));
    }
    Some(alternatives)
}

/// One part of a constraint (`^1.2`, `>=1.0`, `1.2.*`, `1.2.3`, `*`) as PEP 440 specifiers.
fn poetry_part(part: &str) -> Option<Vec<String>> {
    if part == "*" {
        return Some(Vec::new());
    }
    let release = |text: &str| -> Option<Vec<u64>> {
        text.split('.').map(|number| number.parse().ok()).collect()
    };
    if let Some(rest) = part.strip_prefix('^') {
        let numbers = release(rest.trim())?;
        // The first non-zero segment is the one that may not change.
        let keep = numbers
            .iter()
            .position(|number| *number != 0)
            .unwrap_or(numbers.len().saturating_sub(1));
        let mut upper: Vec<u64> = numbers[..=keep].to_vec();
        *upper.last_mut()? += 1;
        return Some(vec![
            format!(">={}", rest.trim()),
            format!("<{}", dotted(&upper)),
        ]);
    }
    if let Some(rest) = part.strip_prefix('~').filter(|rest| !rest.starts_with('=')) {
        let numbers = release(rest.trim())?;
        let mut upper: Vec<u64> = if numbers.len() == 1 {
            numbers.clone()
        } else {
            numbers[..2].to_vec()
        };
        *upper.last_mut()? += 1;
        return Some(vec![
            format!(">={}", rest.trim()),
            format!("<{}", dotted(&upper)),
        ]);
    }
    let operators = ["~=", "===", "==", "!=", ">=", "<=", ">", "<"];
    if let Some(operator) = operators
        .iter()
        .find(|operator| part.starts_with(**operator))
    {
        let version = part[operator.len()..].trim();
        return (!version.is_empty()).then(|| vec![format!("{operator}{version}")]);
    }
    if part.chars().next()?.is_ascii_digit() {
        return Some(vec![format!("=={part}")]);
    }
    None
}

fn dotted(numbers: &[u64]) -> String {
    numbers
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Poetry's `python = "…"` key as a PEP 508 marker; `None` when it is any version or
/// cannot be read.
pub(super) fn python_marker(constraint: &str) -> Option<String> {
    let alternatives = poetry_versions(constraint)?;
    if alternatives.is_empty() {
        return None;
    }
    let clause = |specifier: &str| {
        let at = specifier
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(specifier.len());
        let (operator, version) = specifier.split_at(at);
        // `==3.8` means any 3.8.x to Poetry: `python_version` holds two segments.
        let two = version.split('.').count() <= 2 && !version.contains('*');
        let variable = if two && matches!(operator, "==" | "!=") {
            "python_version"
        } else {
            "python_full_version"
        };
        format!("{variable} {operator} '{version}'")
    };
    let ors: Vec<String> = alternatives
        .iter()
        .map(|alternative| {
            let ands: Vec<String> = alternative.split(',').map(clause).collect();
            join_and(&ands).unwrap_or_default()
        })
        .collect();
    let marker = if ors.len() == 1 {
        ors[0].clone()
    } else {
        ors.iter()
            .map(|or| format!("({or})"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    // A constraint of a shape PEP 508 cannot say (`3.9.x`) is left out, not refused.
    super::Marker::parse(&marker).ok().map(|_| marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poetry_constraints_as_pep440() {
        assert_eq!(poetry_versions("^1.2.3").unwrap(), [">=1.2.3,<2"]);
        assert_eq!(poetry_versions("^0.2.3").unwrap(), [">=0.2.3,<0.3"]);
        assert_eq!(poetry_versions("~1.2.3").unwrap(), [">=1.2.3,<1.3"]);
        assert_eq!(poetry_versions("1.2.*").unwrap(), ["==1.2.*"]);
        assert_eq!(poetry_versions(">=1.0 <2").unwrap(), [">=1.0,<2"]);
        assert_eq!(
            poetry_versions("<1.0 || >=2.0,!=2.1").unwrap(),
            ["<1.0", ">=2.0,!=2.1"]
        );
        assert!(poetry_versions("*").unwrap().is_empty());
        assert!(poetry_versions("latest").is_none());
        assert_eq!(
            python_marker("<3.11").as_deref(),
            Some("python_full_version < '3.11'")
        );
        assert_eq!(
            python_marker("^3.9").as_deref(),
            Some("(python_full_version >= '3.9') and (python_full_version < '4')")
        );
        assert_eq!(
            python_marker("3.8").as_deref(),
            Some("python_version == '3.8'")
        );
        assert_eq!(python_marker(">=3.9 <'4").as_deref(), None);
    }

    #[test]
    fn groups_extras_and_includes() {
        let text = r#"
[tool.poetry]
name = "Demo"
[tool.poetry.dependencies]
python = "^3.9"
numpy = "^1.26"
tomli = { version = "*", python = "<3.11" }
colorama = { version = "*", platform = "win32", optional = true }
[tool.poetry.extras]
color = ["colorama"]
[tool.poetry.group.test.dependencies]
pytest = "8.3.4"
[tool.poetry.group.main.dependencies]
requests = "^2.32"
[tool.poetry.group.ci]
include-groups = ["test"]
[tool.poetry.group.ci.dependencies]
coverage = { version = "7", extras = ["toml"] }
[dependency-groups]
lint = ["ruff==0.8.0", { include-group = "ci" }]
"#;
        let project = read(&toml::from_str(text).unwrap()).unwrap();
        assert_eq!(project.name.as_deref(), Some("demo"));
        let names = |list: &[Requirement]| {
            let mut names: Vec<String> = list.iter().map(|r| r.name.clone()).collect();
            names.sort();
            names
        };
        assert_eq!(names(&project.main), ["numpy", "requests", "tomli"]);
        let tomli = project.main.iter().find(|r| r.name == "tomli").unwrap();
        assert_eq!(
            tomli.marker.as_deref(),
            Some("python_full_version < '3.11'")
        );
        assert_eq!(names(&project.extras["color"]), ["colorama"]);
        assert_eq!(names(&project.groups["ci"]), ["coverage", "pytest"]);
        assert_eq!(
            names(&project.groups["lint"]),
            ["coverage", "pytest", "ruff"]
        );
    }
}
