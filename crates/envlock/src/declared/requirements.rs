//! `requirements*.txt` of exact pins, as pip reads them: one requirement per logical line
//! (a trailing `\` continues it), `#` comments at a line's start or after whitespace,
//! `NAME==VERSION` (or `===`) or `NAME @ URL` with an optional `; marker` and per-line
//! options (`--hash=…`) after it, `-e`/`--editable` (the project, installed from source),
//! `-r`/`--requirement FILE` included relative to the including file, and other options
//! (`--index-url`, `-c`, `--find-links`, …) skipped. A range (`>=1.0`) is refused: a range is
//! not a lock.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::pep440_rs::Operator;
use pep508_rs::{Requirement, VerbatimUrl, VersionOrUrl};

use super::{
    file_name, normalize, wheel_version, Declared, Entry, Marker, Pep508Problem, Problem, When,
};

/// How deep `-r` includes may nest before envlock calls it a loop.
const MAX_DEPTH: usize = 16;

pub(super) fn read(path: &Path, text: &str) -> Result<Declared, Problem> {
    let mut declared = Declared::default();
    let mut seen = BTreeSet::new();
    read_into(path, text, &mut declared, &mut seen, 0)?;
    Ok(declared)
}

fn read_into(
    path: &Path,
    text: &str,
    declared: &mut Declared,
    seen: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> Result<(), Problem> {
    seen.insert(path.to_path_buf());
    let folder = crate::lock::containing_folder(path);
    let at = |line: usize, detail: String| {
        Problem::Invalid(format!("{} line {line}: {detail}", path.display()))
    };
    for (line, logical) in logical_lines(text) {
        let logical = logical.trim();
        if logical.is_empty() {
            continue;
        }
        if let Some(option) = logical.strip_prefix('-') {
            let (flag, value) = split_option(option);
            match flag {
                "r" | "-requirement" => {
                    let included = folder.join(value);
                    if depth >= MAX_DEPTH || seen.contains(&included) {
                        return Err(at(line, format!("`-r {value}` includes itself")));
                    }
                    let text = super::read_text(&included).map_err(|source| Problem::Read {
                        path: included.clone(),
                        source,
                    })?;
                    read_into(&included, &text, declared, seen, depth + 1)?;
                }
                "e" | "-editable" => {
                    let name = value
                        .split_once("#egg=")
                        .map(|(_, egg)| normalize(egg.split('&').next().unwrap_or(egg)))
                        .or_else(|| project_name(&folder.join(value)));
                    declared.projects.extend(name);
                }
                _ => {}
            }
            continue;
        }
        // Per-requirement options (`--hash=…`, `--config-settings`) follow the requirement.
        let requirement = match logical.find(" --").or_else(|| logical.find("\t--")) {
            Some(end) => logical[..end].trim(),
            None => logical,
        };
        let parsed = parse_requirement(requirement)
            .map_err(|error| at(line, format!("`{requirement}`: {error}")))?;
        let name = normalize(parsed.name.as_ref());
        let version = match &parsed.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
                let pin = match specifiers.iter().collect::<Vec<_>>().as_slice() {
                    [only] if matches!(only.operator(), Operator::Equal | Operator::ExactEqual) => {
                        Some(only.version().to_string())
                    }
                    _ => None,
                };
                // `===` compares text: keep the version as written.
                let exact = requirement
                    .split_once("===")
                    .map(|(_, rest)| rest.split(';').next().unwrap_or(rest).trim().to_string());
                match pin {
                    Some(version) => Some(exact.unwrap_or(version)),
                    None => return Err(range(path, line, requirement)),
                }
            }
            Some(VersionOrUrl::Url(url)) => wheel_version(file_name(&url.to_string())),
            None => return Err(range(path, line, requirement)),
        };
        let marker = parsed
            .marker
            .contents()
            .map(|contents| contents.to_string());
        let marker = marker
            .as_deref()
            .map(Marker::parse)
            .transpose()
            .map_err(|error| at(line, error.to_string()))?;
        declared.packages.push(Entry {
            name,
            version,
            when: vec![When {
                marker,
                ..When::always()
            }],
            ..Entry::default()
        });
    }
    Ok(())
}

/// A PEP 508 requirement read by `pep508_rs`, after the checks that keep it from panicking
/// on text it means to refuse.
pub(crate) fn parse_requirement(
    requirement: &str,
) -> Result<Requirement<VerbatimUrl>, Pep508Problem> {
    if let Some(problem) =
        bad_name_end(requirement).or_else(|| super::not_ascii("requirement", requirement))
    {
        return Err(problem);
    }
    Ok(Requirement::<VerbatimUrl>::from_str(requirement)?)
}

/// pep508_rs 0.9 panics on a name that ends in `-`, `.` or `_` before another character
/// (`a-'`), and on an extra that ends so (`a[b.]`, `a[b.,c]`; both found by fuzzing), where
/// it means to report them: that error is given here first.
fn bad_name_end(requirement: &str) -> Option<Pep508Problem> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let separator_last = |text: &str| {
        let end = text.find(|c: char| !name_char(c)).unwrap_or(text.len());
        text[..end]
            .chars()
            .next_back()
            .filter(|last| matches!(last, '.' | '-' | '_'))
    };
    let start = requirement.trim_start();
    if let Some(last) = separator_last(start) {
        return Some(Pep508Problem::NameEnd { extra: false, last });
    }
    let end = start.find(|c: char| !name_char(c)).unwrap_or(start.len());
    let extras = start[end..].trim_start().strip_prefix('[')?;
    let extras = extras.split(']').next().unwrap_or_default();
    let last = extras
        .split(',')
        .find_map(|extra| separator_last(extra.trim()))?;
    Some(Pep508Problem::NameEnd { extra: true, last })
}

fn range(path: &Path, line: usize, requirement: &str) -> Problem {
    Problem::Range {
        path: path.to_path_buf(),
        line,
        text: requirement.to_string(),
    }
}

/// `r file.txt`, `r=file.txt`, `-requirement file.txt`: the flag and its value.
fn split_option(option: &str) -> (&str, &str) {
    let end = option
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(option.len());
    let (flag, rest) = option.split_at(end);
    let value = rest.trim_start_matches('=').trim();
    // A short flag written against its value: `-rother.txt`.
    if flag.len() > 1 && !flag.starts_with('-') && rest.is_empty() {
        let first = option.chars().next().map_or(0, char::len_utf8);
        return option.split_at(first);
    }
    (flag, value)
}

/// The `[project] name` of the pyproject.toml in `folder`, for `-e .`.
fn project_name(folder: &Path) -> Option<String> {
    let text = super::read_text(&folder.join("pyproject.toml")).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let name = table.get("project")?.get("name")?.as_str()?;
    Some(normalize(name))
}

/// The logical lines of `text` with the 1-based number of their first physical line:
/// comments dropped, `\` continuations joined.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        let without_comment = strip_comment(raw);
        match without_comment.strip_suffix('\\') {
            Some(continued) => {
                current.push_str(continued);
                current.push(' ');
            }
            None => {
                current.push_str(without_comment);
                lines.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.is_empty() {
        lines.push((start, current));
    }
    lines
}

/// `raw` without a comment: `#` at the start or after whitespace (a URL's `#egg=` stays).
fn strip_comment(raw: &str) -> &str {
    let bytes = raw.as_bytes();
    for (at, &byte) in bytes.iter().enumerate() {
        if byte == b'#' && (at == 0 || bytes[at - 1].is_ascii_whitespace()) {
            return raw[..at].trim_end();
        }
    }
    raw.trim_end()
}
