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

#[cfg(test)]
mod tests {
    use super::*;

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
