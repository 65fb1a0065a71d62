//! Resolving a run's [`Settings`] once: `envlock.toml` (or `--config`), then the `ENVLOCK_*`
//! variables, then the flags. A malformed variable is an error that names it, never ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use envlock::{
    Environment, Error, Result, Settings, DEFAULT_ENGINE_TIMEOUT, DEFAULT_PROBE_TIMEOUT,
    DEFAULT_REGISTRY_TIMEOUT,
};

/// Settings from the config file and the process environment; the caller sets its flags.
pub(super) fn resolve(config: Option<&Path>) -> Result<Settings> {
    let environment = Environment::of_process();
    let (config, config_folder) = envlock::load_config(config)?;
    let probe_timeout =
        seconds_variable(&environment, "ENVLOCK_PROBE_TIMEOUT", DEFAULT_PROBE_TIMEOUT)?;
    let registry_timeout = seconds_variable(
        &environment,
        "ENVLOCK_REGISTRY_TIMEOUT",
        DEFAULT_REGISTRY_TIMEOUT,
    )?;
    let engine_timeout = seconds_variable(
        &environment,
        "ENVLOCK_ENGINE_TIMEOUT",
        DEFAULT_ENGINE_TIMEOUT,
    )?;
    let cache_folder = if no_cache(&environment)? {
        None
    } else {
        cache_folder(&environment)
    };
    let mut settings = Settings::new(environment);
    settings.config = config;
    settings.config_folder = config_folder;
    settings.probe_timeout = probe_timeout;
    settings.registry_timeout = registry_timeout;
    settings.engine_timeout = engine_timeout;
    settings.cache_folder = cache_folder;
    Ok(settings)
}

/// `ENVLOCK_PROBE_TIMEOUT`, `ENVLOCK_REGISTRY_TIMEOUT`, `ENVLOCK_ENGINE_TIMEOUT`: seconds, a positive number (`0.5`
/// allowed); `default` when unset.
fn seconds_variable(
    environment: &Environment,
    name: &'static str,
    default: Duration,
) -> Result<Duration> {
    let Some(value) = environment.text(name) else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0 && *seconds < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or(Error::InvalidVariable {
            name,
            value,
            expected: "expected a number of seconds above 0, e.g. `30` or `0.5`",
        })
}

/// `ENVLOCK_NO_CACHE`: `1`/`true`/`yes` turns the interpreter cache off; `0`/`false`/`no`
/// or empty leaves it on.
fn no_cache(environment: &Environment) -> Result<bool> {
    const NAME: &str = "ENVLOCK_NO_CACHE";
    let Some(value) = environment.text(NAME) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "" | "0" | "false" | "no" => Ok(false),
        _ => Err(Error::InvalidVariable {
            name: NAME,
            value,
            expected: "expected `1` (cache off) or `0` (cache on)",
        }),
    }
}

/// `$ENVLOCK_CACHE_DIR`, else `$XDG_CACHE_HOME/envlock`, else `~/.cache/envlock`.
fn cache_folder(environment: &Environment) -> Option<PathBuf> {
    let from = |name: &str| environment.get(name).map(PathBuf::from);
    from("ENVLOCK_CACHE_DIR")
        .or_else(|| from("XDG_CACHE_HOME").map(|base| base.join("envlock")))
        .or_else(|| from("HOME").map(|home| home.join(".cache/envlock")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_checked() {
        let timeout = |value: &str| {
            let environment = Environment::from_pairs([("ENVLOCK_PROBE_TIMEOUT", value)]);
            seconds_variable(&environment, "ENVLOCK_PROBE_TIMEOUT", DEFAULT_PROBE_TIMEOUT)
        };
        assert_eq!(timeout("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["abc", "0", "-1", "inf", "NaN"] {
            let error = timeout(bad).unwrap_err().to_string();
            assert!(error.contains("ENVLOCK_PROBE_TIMEOUT"), "{error}");
        }
        let cache = |value: &str| no_cache(&Environment::from_pairs([("ENVLOCK_NO_CACHE", value)]));
        assert!(cache("1").unwrap());
        assert!(!cache("0").unwrap());
        assert!(cache("maybe").is_err());
    }
}
