//! The environment variables that change what a model computes. Only these values are ever
//! stored: anything else in an environment may be a secret.

use crate::lock::Env;

/// Variables whose values are recorded, sorted. Thread counts and BLAS/accelerator switches
/// change floating-point results; locale, time zone and hash seed change parsing and ordering;
/// the Python variables change what is imported.
pub(crate) const ALLOW_LIST: &[&str] = &[
    "BLIS_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "KMP_AFFINITY",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "MKL_CBWR",
    "MKL_NUM_THREADS",
    "MKL_THREADING_LAYER",
    "NUMEXPR_MAX_THREADS",
    "NUMEXPR_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OMP_PROC_BIND",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONOPTIMIZE",
    "PYTHONPATH",
    "PYTHONUTF8",
    "TF_CUDNN_DETERMINISTIC",
    "TF_DETERMINISTIC_OPS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TZ",
    "VECLIB_MAXIMUM_THREADS",
];

/// The allow-listed variables, looked up with `lookup`.
pub(crate) fn capture(lookup: impl Fn(&str) -> Option<String>) -> Env {
    let mut env = Env::default();
    for &name in ALLOW_LIST {
        match lookup(name) {
            Some(value) => {
                env.set.insert(name.to_string(), value);
            }
            None => env.unset.push(name.to_string()),
        }
    }
    env
}

/// What stands in for a value that is not stored.
pub(crate) const REDACTED: &str = "<redacted>";

/// An image history step with the values of non-allow-listed variables redacted: `ENV`
/// steps spell out values, and `RUN` steps start with the build arguments in force
/// (`|2 TOKEN=… MODE=… /bin/sh -c …`). Both often hold secrets.
pub(crate) fn redact_history_step(step: &str) -> String {
    if let Some(start) = step.find("ENV ") {
        let (head, tail) = step.split_at(start + 4);
        return format!("{head}{}", redact_assignments(tail));
    }
    if let Some(rest) = step.strip_prefix('|') {
        let mut words = rest.splitn(2, ' ');
        let count: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut remainder = words.next().unwrap_or("");
        let mut redacted = Vec::with_capacity(count);
        for _ in 0..count {
            let (pair, rest) = remainder.split_once(' ').unwrap_or((remainder, ""));
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            redacted.push(format!("{name}={REDACTED}"));
            remainder = rest;
        }
        return format!("|{count} {} {remainder}", redacted.join(" "));
    }
    step.to_string()
}

/// `A=1 B="x y"` (or the legacy `NAME value`) with values outside the allow-list redacted.
fn redact_assignments(text: &str) -> String {
    let is_name = |word: &str| {
        word.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = Vec::new();
    let mut keep_value = true;
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(first) = words.first().filter(|w| !w.contains('=')) {
        // Legacy `ENV NAME value with spaces`.
        let value = if ALLOW_LIST.contains(first) {
            words[1..].join(" ")
        } else {
            REDACTED.to_string()
        };
        return format!("{first} {value}");
    }
    for word in words {
        match word.split_once('=') {
            Some((name, value)) if is_name(name) => {
                keep_value = ALLOW_LIST.contains(&name);
                out.push(if keep_value {
                    format!("{name}={value}")
                } else {
                    format!("{name}={REDACTED}")
                });
            }
            _ if keep_value => out.push(word.to_string()),
            _ => {}
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_env_and_build_args_are_redacted() {
        assert_eq!(
            redact_history_step("/bin/sh -c #(nop)  ENV OMP_NUM_THREADS=2 API_TOKEN=secret"),
            "/bin/sh -c #(nop)  ENV OMP_NUM_THREADS=2 API_TOKEN=<redacted>"
        );
        assert_eq!(
            redact_history_step("ENV PASSWORD=\"two words\" TZ=UTC"),
            "ENV PASSWORD=<redacted> TZ=UTC"
        );
        assert_eq!(
            redact_history_step("/bin/sh -c #(nop)  ENV KEY hunter2 x"),
            "/bin/sh -c #(nop)  ENV KEY <redacted>"
        );
        assert_eq!(
            redact_history_step("|2 TOKEN=abc BASE=img /bin/sh -c make"),
            "|2 TOKEN=<redacted> BASE=<redacted> /bin/sh -c make"
        );
        assert_eq!(
            redact_history_step("/bin/sh -c pip install x"),
            "/bin/sh -c pip install x"
        );
    }

    #[test]
    fn allow_list_is_sorted_and_unique() {
        assert!(ALLOW_LIST.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn only_allow_listed_values_are_kept() {
        let env = capture(|name| match name {
            "OMP_NUM_THREADS" => Some("4".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("hunter2".into()),
            _ => None,
        });
        assert_eq!(env.set.len(), 1);
        assert_eq!(env.set["OMP_NUM_THREADS"], "4");
        assert_eq!(env.unset.len(), ALLOW_LIST.len() - 1);
        assert!(!env.unset.iter().any(|name| name == "AWS_SECRET_ACCESS_KEY"));
    }
}
