//! Everything a run depends on, resolved once by the CLI (flags, `envlock.toml`, the
//! `ENVLOCK_*` variables) and passed down. The library reads no process environment of its
//! own: what it needs of it arrives here, in [`Environment`].

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::declared::Selection;
use crate::stop::Stop;

/// How long an interpreter may take to answer the probe, unless `ENVLOCK_PROBE_TIMEOUT` says.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a registry may take to answer one request, unless `ENVLOCK_REGISTRY_TIMEOUT` says.
pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the engine may take to answer one call, or stay silent in a stream, unless
/// `ENVLOCK_ENGINE_TIMEOUT` says.
pub const DEFAULT_ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

/// What one run of envlock works with.
#[derive(Debug)]
pub struct Settings {
    /// `envlock.toml` (or its defaults when there is none), already checked.
    pub config: Config,
    /// The folder the config's relative paths start from.
    pub config_folder: PathBuf,
    /// `--model` paths; `None` takes the config's `models`.
    pub models: Option<Vec<String>>,
    /// `--python` with `--image`: the interpreter to capture inside images.
    pub image_python: Option<String>,
    /// The process environment the runtime is captured in.
    pub environment: Environment,
    /// How long the probe may take, in a local interpreter or an image.
    pub probe_timeout: Duration,
    /// Where interpreter answers are cached; `None` turns the cache off.
    pub cache_folder: Option<PathBuf>,
    /// Run nothing from an image (static capture, no golden cases there).
    pub no_exec: bool,
    /// Pull images from their registry before capturing them.
    pub pull: bool,
    /// `docker:` images: also stream the image out of the engine to attribute every package
    /// and model to the layer that wrote it (registries and archives always are).
    pub layers: bool,
    /// The platform to pick from a multi-platform index; `None` is this machine's.
    pub platform: Option<ImagePlatform>,
    /// Allow plain HTTP to any registry (it is always allowed to loopback addresses).
    pub insecure_registry: bool,
    /// How long a registry may take to answer one request.
    pub registry_timeout: Duration,
    /// How long the engine may take to answer one call (a container's run aside, which the
    /// probe's or the golden case's limit bounds), or stay silent in a stream.
    pub engine_timeout: Duration,
    /// `--numerics-check`: run the built-in numeric kernels with the runtime's numpy.
    pub numerics_check: bool,
    /// Run golden cases (`diff`), or record them (`snapshot`).
    pub golden: bool,
    /// Asks the run to stop (a signal): see [`Stop`].
    pub stop: Arc<Stop>,
    /// The extras and dependency groups a declared-lock baseline includes.
    pub selection: Selection,
    /// Who golden cases run as in images (`--run-as`, else `[image] run-as`); `None`: the
    /// image's `USER`.
    pub run_as: Option<crate::config::RunAs>,
}

impl Settings {
    /// Settings with no config file, flags or `ENVLOCK_*` variables: envlock's defaults in
    /// `environment`.
    pub fn new(environment: Environment) -> Settings {
        Settings {
            config: Config::default(),
            config_folder: PathBuf::from("."),
            models: None,
            image_python: None,
            environment,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            cache_folder: None,
            no_exec: false,
            pull: false,
            layers: false,
            platform: None,
            insecure_registry: false,
            registry_timeout: DEFAULT_REGISTRY_TIMEOUT,
            engine_timeout: DEFAULT_ENGINE_TIMEOUT,
            numerics_check: false,
            golden: true,
            stop: Arc::new(Stop::new()),
            selection: Selection::default(),
            run_as: None,
        }
    }

    /// The interpreter asked for inside images, and how: `--python`, else `[image] python`.
    pub(crate) fn requested_image_python(&self) -> Option<(String, crate::lock::SelectedBy)> {
        use crate::lock::SelectedBy;
        match (&self.image_python, &self.config.image.python) {
            (Some(python), _) => Some((python.clone(), SelectedBy::Flag)),
            (None, Some(python)) => Some((python.clone(), SelectedBy::Config)),
            (None, None) => None,
        }
    }

    /// The Docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
    /// which holds registry credentials.
    pub(crate) fn docker_config(&self) -> Option<PathBuf> {
        let folder = match self.environment.get("DOCKER_CONFIG") {
            Some(folder) => PathBuf::from(folder),
            None => PathBuf::from(self.environment.get("HOME")?).join(".docker"),
        };
        Some(folder.join("config.json"))
    }

    /// The model paths to capture: `--model`, else the config's.
    pub(crate) fn model_paths(&self) -> &[String] {
        self.models.as_deref().unwrap_or(&self.config.models.paths)
    }
}

/// The variables of the process that runs envlock, taken once.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    variables: BTreeMap<OsString, OsString>,
}

impl Environment {
    /// This process's variables.
    pub fn of_process() -> Environment {
        Environment {
            variables: std::env::vars_os().collect(),
        }
    }

    /// Variables given one by one (for tests and embedding).
    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            variables: pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }

    /// A variable's value; an empty one counts as unset.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.variables
            .get(OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|value| !value.is_empty())
    }

    /// A variable's value as text (lossy), set or not.
    pub fn text(&self, name: &str) -> Option<String> {
        self.variables
            .get(OsStr::new(name))
            .map(|value| value.to_string_lossy().into_owned())
    }

    /// The folders of `PATH`.
    pub(crate) fn path_folders(&self) -> Vec<PathBuf> {
        self.get("PATH")
            .map(|path| std::env::split_paths(path).collect())
            .unwrap_or_default()
    }
}

/// `nothing came within 30s (ENVLOCK_REGISTRY_TIMEOUT)`: a limit that ran out, named
/// with the variable that sets it (every timeout's message says it so).
pub(crate) fn waited(limit: Duration, variable: &str) -> String {
    format!("nothing came within {} ({variable})", seconds(limit))
}

/// `1.5s`, `30s`: a duration as a person writes it.
pub fn seconds(duration: Duration) -> String {
    let value = duration.as_secs_f64();
    if value.fract() == 0.0 {
        format!("{value:.0}s")
    } else {
        format!("{}s", (value * 1000.0).round() / 1000.0)
    }
}

/// An image platform as OCI names it, `os/arch[/variant]` (`linux/arm64/v8`): what
/// `--platform` takes, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlatform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub arch: String,
    /// `v8`, when given.
    pub variant: Option<String>,
}

impl ImagePlatform {
    /// This machine's platform.
    pub fn host() -> ImagePlatform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        ImagePlatform {
            os: "linux".to_string(),
            arch: arch.to_string(),
            variant: None,
        }
    }

    /// Whether an image for `os`/`arch`/`variant` is one for this platform (a platform
    /// named without a variant takes any variant).
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.arch == arch
            && self
                .variant
                .as_deref()
                .is_none_or(|wanted| variant == Some(wanted))
    }
}

/// A `--platform` that is not `OS/ARCH[/VARIANT]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not OS/ARCH[/VARIANT], e.g. `linux/amd64` or `linux/arm64/v8`")]
pub struct InvalidPlatform {
    /// The value as given.
    pub text: String,
}

impl std::str::FromStr for ImagePlatform {
    type Err = InvalidPlatform;

    fn from_str(text: &str) -> Result<ImagePlatform, InvalidPlatform> {
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| part.is_empty()) {
            return Err(InvalidPlatform {
                text: text.to_string(),
            });
        }
        // As OCI spells them: lower case, `amd64` and `arm64` for the kernel's names.
        let arch = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            other => other.to_string(),
        };
        Ok(ImagePlatform {
            os: parts[0].to_ascii_lowercase(),
            arch,
            variant: parts.get(2).map(|variant| variant.to_ascii_lowercase()),
        })
    }
}

impl std::fmt::Display for ImagePlatform {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_spelled_as_oci_spells_them() {
        let platform: ImagePlatform = "Linux/x86_64".parse().unwrap();
        assert_eq!(platform.to_string(), "linux/amd64");
        assert!(platform.matches("linux", "amd64", Some("v2")));
        let arm: ImagePlatform = "linux/aarch64/v8".parse().unwrap();
        assert!(arm.matches("linux", "arm64", Some("v8")));
        assert!(!arm.matches("linux", "arm64", Some("v7")));
        assert!("linux".parse::<ImagePlatform>().is_err());
        assert!("linux//v8".parse::<ImagePlatform>().is_err());
    }

    #[test]
    fn durations_keep_their_fraction() {
        assert_eq!(seconds(Duration::from_secs(30)), "30s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5s");
    }

    #[test]
    fn empty_variables_are_unset() {
        let environment = Environment::from_pairs([("A", ""), ("B", "x")]);
        assert_eq!(environment.get("A"), None);
        assert_eq!(environment.get("B"), Some(OsStr::new("x")));
        assert_eq!(environment.text("A").as_deref(), Some(""));
    }
}
