//! `envlock.toml`: project defaults that flags override.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lock::GoldenSpec;

/// The file read from the current folder when `--config` is not given.
pub(crate) const DEFAULT_FILE: &str = "envlock.toml";

/// The contents of `envlock.toml`. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The interpreter to snapshot: a path (relative to the config's folder) or a command name
    /// looked up on `PATH`.
    pub python: Option<PathBuf>,
    /// Model files and folders to hash, relative to the config's folder: a list
    /// (`models = ["model/"]`), or `[models]` with `paths` and `trust`.
    #[serde(default)]
    pub models: Models,
    /// `[image]`: how images are captured.
    #[serde(default)]
    pub image: ImageSection,
    /// Where a model of the dev side is inside the image, when not at the same path under
    /// the image's WORKDIR: `"model/" = "/opt/models/current"`.
    #[serde(default)]
    pub image_models: BTreeMap<String, String>,
    /// Golden cases: run in the dev runtime by `snapshot`, in the target by `diff`.
    #[serde(default)]
    pub golden: Vec<GoldenSpec>,
    /// The gate's policy for `envlock diff`.
    #[serde(default)]
    pub policy: crate::diff::Policy,
    /// `[deploy]`: what the nodes the runtime is deployed to have.
    #[serde(default)]
    pub deploy: Deploy,
}

/// `[deploy]`:
/// ```toml
/// [deploy]
/// driver = "550.54.15"     # the nodes' NVIDIA driver, as `nvidia-smi` prints it
/// gpu = ["sm_80", "8.9"]   # their GPUs' architectures (or compute capabilities)
/// gpus = "all"             # the golden cases' containers ask the engine for its GPUs
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Deploy {
    /// The NVIDIA driver of the deploy nodes: the target's CUDA must run on it
    /// (`cuda-driver`).
    pub driver: Option<crate::diff::DriverVersion>,
    /// The GPU architectures of the deploy nodes: each CUDA library of the target must
    /// have code that runs on each (`gpu-arch`).
    #[serde(default, deserialize_with = "one_or_many")]
    pub gpu: Vec<crate::diff::GpuArch>,
    /// The GPUs the golden cases' containers ask the engine for (`docker run --gpus`).
    pub gpus: Option<Gpus>,
}

/// `gpus = "all"`, or a count: the GPUs a golden case's container asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpus(i64);

impl Gpus {
    /// The engine's device request count: `-1` for all.
    pub(crate) fn count(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Gpus;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("\"all\" or a count of GPUs (`gpus = 1`)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Gpus, E> {
                match text {
                    "all" => Ok(Gpus(-1)),
                    _ => Err(E::custom(format!(
                        "`{text}` is not a GPU request: give `\"all\"` or a count (`gpus = 1`)"
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, count: i64) -> Result<Gpus, E> {
                match count {
                    1.. => Ok(Gpus(count)),
                    _ => Err(E::custom(format!(
                        "`{count}` GPUs cannot be asked for: give `\"all\"` or a count of 1 \
                         or more"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `gpu = "sm_80"` as `gpu = ["sm_80"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<crate::diff::GpuArch>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        One(String),
        Many(Vec<String>),
    }
    let given = Given::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom("give the GPUs' architectures as a list: `gpu = [\"sm_80\"]`")
    })?;
    let texts = match given {
        Given::One(text) => vec![text],
        Given::Many(texts) => texts,
    };
    texts
        .iter()
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// `models = [...]`, or `[models]`:
/// ```toml
/// [models]
/// paths = ["model/model.pkl", "model/legacy.pkl"]
/// trust = ["model/legacy.pkl"]   # its pickle may call what the allow-list lacks
/// ```
#[derive(Debug, Default, Clone)]
pub struct Models {
    /// Model files and folders to hash.
    pub paths: Vec<String>,
    /// Models whose pickles are trusted: `model-unsafe` about them is `info`.
    pub trust: Vec<String>,
}

impl<'de> Deserialize<'de> for Models {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let strings = |value: toml::Value, key: &str| -> Result<Vec<String>, D::Error> {
            let wrong = || D::Error::custom(format!("`{key}` must be a list of paths (strings)"));
            value
                .as_array()
                .ok_or_else(wrong)?
                .iter()
                .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
                .collect()
        };
        match toml::Value::deserialize(deserializer)? {
            value @ toml::Value::Array(_) => Ok(Models {
                paths: strings(value, "models")?,
                trust: Vec::new(),
            }),
            toml::Value::Table(table) => {
                let mut models = Models::default();
                for (key, value) in table {
                    match key.as_str() {
                        "paths" => models.paths = strings(value, "models.paths")?,
                        "trust" => models.trust = strings(value, "models.trust")?,
                        other => {
                            return Err(D::Error::custom(format!(
                                "unknown key `{other}` in `[models]`: expected `paths` or `trust`"
                            )))
                        }
                    }
                }
                Ok(models)
            }
            _ => Err(D::Error::custom(
                "`models` must be a list of paths, or a `[models]` table with `paths` and `trust`",
            )),
        }
    }
}

/// `[image]` of `envlock.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSection {
    /// The interpreter to capture in images: a path inside the image, or a name looked up on
    /// the image's `PATH`. Without it, the one the image's ENTRYPOINT/CMD runs.
    pub python: Option<String>,
    /// Who golden cases run as in images: `UID[:GID]`, or `openshift` (as `--run-as`).
    pub run_as: Option<RunAs>,
}

/// Who golden runs in an image run as, instead of the image's `USER` (`--run-as`, `[image]
/// run-as`): `UID[:GID]`, or `openshift`, which starts containers as an arbitrary high
/// UID with GID 0 and no `/etc/passwd` entry (a UID picked at random once per run, from
/// 1000000000 to 1999999999).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RunAs {
    /// `UID` or `UID:GID`, as the engine takes it.
    pub user: String,
    /// Whether it stands for OpenShift's arbitrary UID.
    pub openshift: bool,
}

/// A `--run-as` or `[image] run-as` that is neither `UID[:GID]` nor `openshift`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not UID[:GID] (numbers, as OpenShift and Kubernetes' runAsUser give them) nor `openshift`")]
pub struct InvalidRunAs {
    /// The value as given.
    pub text: String,
}

impl std::str::FromStr for RunAs {
    type Err = InvalidRunAs;

    fn from_str(text: &str) -> Result<RunAs, InvalidRunAs> {
        if text == "openshift" {
            // Random enough to catch a UID baked into the image; no crate needed.
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            let uid = 1_000_000_000 + hasher.finish() % 1_000_000_000;
            return Ok(RunAs {
                user: format!("{uid}:0"),
                openshift: true,
            });
        }
        let (uid, gid) = match text.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (text, None),
        };
        let number = |part: &str| part.parse::<u32>().is_ok();
        if !number(uid) || !gid.is_none_or(number) {
            return Err(InvalidRunAs {
                text: text.to_string(),
            });
        }
        Ok(RunAs {
            user: text.to_string(),
            openshift: false,
        })
    }
}

impl TryFrom<String> for RunAs {
    type Error = InvalidRunAs;

    fn try_from(text: String) -> Result<RunAs, InvalidRunAs> {
        text.parse()
    }
}

impl Config {
    /// Models to hash inside an image: each as named, with its path in the image.
    pub(crate) fn image_models(&self, models: &[String]) -> Vec<(String, String)> {
        models
            .iter()
            .map(|model| {
                let inside = self.image_models.get(model).unwrap_or(model);
                (model.clone(), inside.clone())
            })
            .collect()
    }
}

/// Loads `explicit`, else `envlock.toml` in the current folder if there is one; returns the
/// config and the folder its relative paths start from.
pub fn load(explicit: Option<&Path>) -> Result<(Config, PathBuf)> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok((Config::default(), PathBuf::from("."))),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let config: Config = toml::from_str(&text).map_err(|source| Error::InvalidConfig {
        path: path.clone(),
        source,
    })?;
    let mut config = config;
    config
        .policy
        .trusted_models
        .clone_from(&config.models.trust);
    if let Some(message) = config.policy.problem() {
        return Err(Error::InvalidPolicy { path, message });
    }
    let problems = golden_problems(&config.golden, &text);
    if !problems.is_empty() {
        return Err(Error::InvalidGolden { path, problems });
    }
    let folder = crate::lock::containing_folder(&path).to_path_buf();
    Ok((config, folder))
}

/// Where each `[[golden]]` table starts in the file, for messages.
#[derive(Deserialize)]
struct GoldenSpans {
    #[serde(default)]
    golden: Vec<toml::Spanned<toml::Table>>,
}

/// Everything wrong with the golden cases that the parser cannot see, each problem with
/// the line and column of its case: names must be unique, a command case needs a command,
/// `fields` keys must be JSON pointers, tolerances and timeouts must make sense.
fn golden_problems(cases: &[GoldenSpec], text: &str) -> Vec<String> {
    let spans = toml::from_str::<GoldenSpans>(text)
        .map(|spans| spans.golden)
        .unwrap_or_default();
    let place = |index: usize| match spans.get(index) {
        Some(span) => {
            let before = &text[..span.span().start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
            format!("line {line}, column {column}")
        }
        None => format!("case {}", index + 1),
    };
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        let mut problem = |what: String| {
            problems.push(format!(
                "{}: golden case `{}`: {what}",
                place(index),
                case.name
            ))
        };
        if case.name.trim().is_empty() {
            problem("`name` is empty".to_string());
        }
        if let Some(first) = seen.insert(&case.name, index) {
            problem(format!(
                "the name is used twice (first at {})",
                place(first)
            ));
        }
        if case.http.is_none() && case.command.iter().all(|arg| arg.trim().is_empty()) {
            problem("`command` is empty: a case runs a command, or sets `http`".to_string());
        }
        for pointer in case.fields.keys() {
            if !is_json_pointer(pointer) {
                problem(format!(
                    "`fields` key `{pointer}` is not a JSON pointer (write `/{}`)",
                    pointer.trim_start_matches('/')
                ));
            }
        }
        let tolerances = [("rtol", case.rtol), ("atol", case.atol)];
        let fields = case
            .fields
            .values()
            .flat_map(|t| [("rtol", t.rtol), ("atol", t.atol)]);
        if let Some((name, value)) = tolerances
            .into_iter()
            .chain(fields)
            .find(|(_, value)| !value.is_finite() || *value < 0.0)
        {
            problem(format!("`{name}` = {value} is not a number of 0 or more"));
        }
        for latency_problem in case
            .latency
            .as_ref()
            .map(crate::verdict::spec_problems)
            .unwrap_or_default()
        {
            problem(latency_problem);
        }
        if !case.timeout.is_finite() || case.timeout <= 0.0 {
            problem(format!(
                "`timeout` = {} is not a number of seconds above 0",
                case.timeout
            ));
        }
    }
    problems
}

/// RFC 6901: empty (the whole document), or `/`-separated tokens where `~` only starts
/// `~0` or `~1`.
fn is_json_pointer(text: &str) -> bool {
    (text.is_empty() || text.starts_with('/'))
        && text
            .split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_gpus_read_one_or_many_and_say_what_is_wrong() {
        let deploy = |text: &str| toml::from_str::<Deploy>(text).map_err(|e| e.to_string());
        let one = deploy("gpu = \"sm_80\"\ngpus = 2").unwrap();
        assert_eq!(one.gpu, ["sm_80".parse::<crate::diff::GpuArch>().unwrap()]);
        assert_eq!(one.gpus.map(Gpus::count), Some(2));
        assert_eq!(
            deploy("gpus = \"all\"").unwrap().gpus.map(Gpus::count),
            Some(-1)
        );
        for (text, said) in [
            (
                "gpu = [\"sm_80\", \"sm_7\"]",
                "`sm_7` is not a GPU architecture",
            ),
            ("gpu = 80", "as a list"),
            ("gpus = 1.5", "expected \"all\" or a count"),
            ("gpus = 0", "`0` GPUs cannot be asked for"),
            ("gpus = \"al\"", "`al` is not a GPU request"),
        ] {
            let error = deploy(text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }

    #[test]
    fn json_pointers() {
        for good in ["", "/", "/a", "/a/0", "/a~1b", "/m~0n"] {
            assert!(is_json_pointer(good), "{good}");
        }
        for bad in ["a", "a/b", "/a~2", "/a~"] {
            assert!(!is_json_pointer(bad), "{bad}");
        }
    }
}
