//! PEP 508 markers of a declared lock, evaluated for the target runtime with `pep508_rs`.
//!
//! The target's marker environment is the probe's (`[python] markers` of its lock) when the
//! target's interpreter ran; static capture knows less (the Python version and
//! implementation, the OS and architecture): a marker that needs a value it lacks is taken
//! to apply, with a warning naming the marker. PEP 751 adds two set-valued variables that
//! `pep508_rs` does not know, `extras` and `dependency_groups`: `'x' in extras` is read as
//! `extra == 'x'`, and `'dev' in dependency_groups` as an extra of a reserved name.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep508_rs::{ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree};

use crate::lock::{Lock, Platform, Python};

/// The prefix under which a selected dependency group is passed to `pep508_rs` as an extra.
const GROUP_PREFIX: &str = "envlock-group-";

/// A marker as the lock wrote it, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    /// The text, for messages.
    pub(crate) text: String,
    tree: MarkerTree,
}

impl Marker {
    /// Parses `text`; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Marker, super::Pep508Problem> {
        if let Some(problem) = super::not_ascii("marker", text) {
            return Err(problem);
        }
        let rewritten = rewrite_sets(text);
        let tree = MarkerTree::from_str(&rewritten)?;
        Ok(Marker {
            text: text.to_string(),
            tree,
        })
    }
}

/// The PEP 508 variables a static capture cannot know.
const LIVE_ONLY: &[&str] = &["platform_release", "platform_version"];

/// The variables that need the target's Python.
const PYTHON_KEYS: &[&str] = &[
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
    "platform_python_implementation",
];

/// What a marker is evaluated against: the target's marker environment, and the variables
/// it lacks.
#[derive(Debug)]
pub(crate) struct Target {
    environment: Option<MarkerEnvironment>,
    unknown: Vec<&'static str>,
}

/// What a marker says for the target.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applies {
    /// It evaluates to true.
    Yes,
    /// It evaluates to false.
    No,
    /// It needs a variable the target's capture lacks (named): taken to apply.
    Unknown(&'static str),
}

impl Target {
    /// The marker environment of `lock`: the probe's when it ran, else what static capture
    /// knows. `None` (no runtime at all) evaluates only extras and groups.
    pub(crate) fn of(lock: Option<&Lock>) -> Target {
        let Some(lock) = lock else {
            return Target {
                environment: None,
                unknown: Vec::new(),
            };
        };
        Target::of_runtime(lock.python.as_ref(), &lock.platform)
    }

    /// The marker environment of a runtime being captured: its interpreter (the probe's
    /// markers, when it ran) and its platform.
    pub(crate) fn of_runtime(python: Option<&Python>, platform: &Platform) -> Target {
        if let Some(environment) = python
            .filter(|python| !python.markers.is_empty())
            .and_then(|python| probed(&python.markers))
        {
            return Target {
                environment: Some(environment),
                unknown: Vec::new(),
            };
        }
        let mut unknown: Vec<&'static str> = LIVE_ONLY.to_vec();
        let os = platform.os.as_str();
        let (sys_platform, platform_system, os_name) = match os {
            "linux" => ("linux", "Linux", "posix"),
            "darwin" => ("darwin", "Darwin", "posix"),
            "windows" => ("win32", "Windows", "nt"),
            _ => {
                unknown.extend(["sys_platform", "platform_system", "os_name"]);
                ("", "", "")
            }
        };
        if platform.arch.is_empty() {
            unknown.push("platform_machine");
        }
        let full = python.map_or("0", |python| python.version.as_str());
        let short: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
        let implementation = python.map_or("", |python| python.implementation.as_str());
        if python.is_none() {
            unknown.extend(PYTHON_KEYS);
        }
        let pretty = match implementation {
            "cpython" => "CPython",
            "pypy" => "PyPy",
            other => other,
        };
        let environment = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: implementation,
            implementation_version: full,
            os_name,
            platform_machine: &platform.arch,
            platform_python_implementation: pretty,
            platform_release: "",
            platform_system,
            platform_version: "",
            python_full_version: full,
            python_version: &short,
            sys_platform,
        })
        .ok();
        Target {
            environment,
            unknown,
        }
    }

    /// Whether `marker` applies with the `extras` and dependency `groups` selected.
    pub(crate) fn applies(&self, marker: &Marker, extras: &[String], groups: &[String]) -> Applies {
        if let Some(name) = self
            .unknown
            .iter()
            .find(|name| mentions(&marker.text, name))
        {
            return Applies::Unknown(name);
        }
        let names: Vec<ExtraName> = extras
            .iter()
            .cloned()
            .chain(groups.iter().map(|group| format!("{GROUP_PREFIX}{group}")))
            .filter_map(|name| ExtraName::from_str(&name).ok())
            .collect();
        let yes = match &self.environment {
            Some(environment) => marker.tree.evaluate(environment, &names),
            None => marker.tree.evaluate_optional_environment(None, &names),
        };
        if yes {
            Applies::Yes
        } else {
            Applies::No
        }
    }
}

/// The probe's marker environment, when it names every variable.
fn probed(markers: &BTreeMap<String, String>) -> Option<MarkerEnvironment> {
    let get = |key: &str| markers.get(key).map(String::as_str);
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: get("implementation_name")?,
        implementation_version: get("implementation_version")?,
        os_name: get("os_name")?,
        platform_machine: get("platform_machine")?,
        platform_python_implementation: get("platform_python_implementation")?,
        platform_release: get("platform_release")?,
        platform_system: get("platform_system")?,
        platform_version: get("platform_version")?,
        python_full_version: get("python_full_version")?,
        python_version: get("python_version")?,
        sys_platform: get("sys_platform")?,
    })
    .ok()
}

/// Whether `text` names the variable `name` (as a whole word).
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// PEP 751's `'x' in extras` / `'x' not in extras` and the same with `dependency_groups`,
/// as `extra == 'x'` / `extra != 'x'` (a group under [`GROUP_PREFIX`]). Quoted text is
/// copied as it is; anything else is left for `pep508_rs` to judge.
fn rewrite_sets(text: &str) -> String {
    if !mentions(text, "extras") && !mentions(text, "dependency_groups") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['\'', '"']) {
        let quote = rest[start..].chars().next().unwrap_or('\'');
        let Some(length) = rest[start + 1..].find(quote) else {
            break;
        };
        let literal = &rest[start + 1..start + 1 + length];
        let after = &rest[start + 2 + length..];
        let words: Vec<&str> = after.split_whitespace().take(3).collect();
        let (negated, set) = match words.as_slice() {
            ["in", set, ..] => (false, *set),
            ["not", "in", set] => (true, *set),
            _ => (false, ""),
        };
        let set_name = set.trim_end_matches([')', ',']);
        let name = match set_name {
            "extras" => Some(literal.to_string()),
            "dependency_groups" => Some(format!("{GROUP_PREFIX}{literal}")),
            _ => None,
        };
        out.push_str(&rest[..start]);
        match name {
            Some(name) => {
                let operator = if negated { "!=" } else { "==" };
                out.push_str(&format!("extra {operator} '{name}'"));
                let consumed = after
                    .find(set_name)
                    .map_or(after.len(), |at| at + set_name.len());
                rest = &after[consumed..];
            }
            None => {
                out.push_str(&rest[start..start + 2 + length]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(version: &str) -> Lock {
        let mut lock: Lock = toml::from_str(&format!(
            r#"
            [envlock]
            schema = 1
            created-by = "test"
            [source]
            kind = "image"
            [python]
            implementation = "cpython"
            version = "{version}"
            [platform]
            os = "linux"
            arch = "x86_64"
            [env]
            "#
        ))
        .unwrap();
        lock.python.as_mut().unwrap().markers.clear();
        lock
    }

    #[test]
    fn static_capture_evaluates_what_it_knows() {
        let target = Target::of(Some(&linux("3.11.7")));
        let marker = |text: &str| Marker::parse(text).unwrap();
        let applies = |text: &str| target.applies(&marker(text), &[], &[]);
        assert_eq!(applies("sys_platform == 'win32'"), Applies::No);
        assert_eq!(applies("python_version < '3.11'"), Applies::No);
        assert_eq!(applies("python_full_version >= '3.11.7'"), Applies::Yes);
        assert_eq!(applies("platform_machine == 'x86_64'"), Applies::Yes);
        assert_eq!(
            applies("platform_release >= '5'"),
            Applies::Unknown("platform_release")
        );
        let extra = marker("extra == 'gpu'");
        assert_eq!(target.applies(&extra, &[], &[]), Applies::No);
        assert_eq!(target.applies(&extra, &["gpu".into()], &[]), Applies::Yes);
    }

    #[test]
    fn pep751_sets_are_extras_and_groups() {
        let target = Target::of(Some(&linux("3.12.1")));
        let dev = Marker::parse("'dev' in dependency_groups and sys_platform == 'linux'").unwrap();
        assert_eq!(target.applies(&dev, &[], &[]), Applies::No);
        assert_eq!(target.applies(&dev, &[], &["dev".into()]), Applies::Yes);
        let not_cpu = Marker::parse("\"cpu\" not in extras").unwrap();
        assert_eq!(target.applies(&not_cpu, &[], &[]), Applies::Yes);
        assert_eq!(target.applies(&not_cpu, &["cpu".into()], &[]), Applies::No);
        assert_eq!(
            rewrite_sets("('a' in extras) or python_version > '3'"),
            "(extra == 'a') or python_version > '3'"
        );
    }

    #[test]
    fn a_bad_marker_is_an_error() {
        assert!(Marker::parse("sys_platform ==").is_err());
        assert!(Marker::parse("flavour == 'x'").is_err());
    }
}
