//! What loading a pickle may call: exact (module, name) pairs, and the classes of the trusted
//! ML libraries that a pickle may instantiate without arguments.
//!
//! Where the list comes from (checked against real files, not guessed from names):
//! - numpy, scikit-learn, scipy, pandas and joblib: the globals that `pickle.dumps` (protocols
//!   2, 4 and 5) and `joblib.dump` write for the estimators, arrays, random states, sparse
//!   matrices and frames of numpy 2.4, scikit-learn 1.9, scipy 1.17, pandas 3.1 and joblib 1.6
//!   (`fixtures/models/pickles/make.py` writes some of them), read with `pickletools`, and how
//!   each is used (called by REDUCE, instantiated by NEWOBJ, or only named): scikit-learn's
//!   Cython losses (`sklearn._loss._loss.Cy*`) and pandas' offsets, `Period`, `StringDtype`
//!   and block managers are called with arguments; the classes of the trusted packages that
//!   are only instantiated (estimators, scipy's sparse matrices, xgboost's and lightgbm's
//!   `Booster`, which pickle their state) need no entry. The numpy 1.x
//!   spellings (`numpy.core.*`) are the same functions before numpy 2 moved them to
//!   `numpy._core`; numpy 2 keeps `numpy.core` as a shim.
//! - torch: `_get_allowed_globals` and `_tensor_rebuild_functions` of torch's own
//!   `torch/_weights_only_unpickler.py` (what `torch.load(weights_only=True)` accepts).
//! - Python's standard library: what `pickle` itself writes for builtin and standard types at
//!   each protocol (`set`, `bytes` through `_codecs.encode` at protocol 2, `datetime`, ...).
//!
//! Anything not here is unsafe to call: an allow-list fails closed where deny-lists were
//! bypassed (modelscan#330 reached `eval` through `numpy.__builtins__`; #339 used `ctypes`).

/// Callables loading may call with arguments (REDUCE, or NEWOBJ/OBJ/INST with arguments),
/// sorted by (module, name) so that a lookup is a binary search (a test checks the order).
const CALLS: &[(&str, &str)] = &[
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("builtins", "frozenset"),
    ("builtins", "range"),
    ("builtins", "set"),
    ("builtins", "slice"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("copyreg", "__newobj__"),
    ("copyreg", "__newobj_ex__"),
    ("copyreg", "_reconstructor"),
    ("datetime", "date"),
    ("datetime", "datetime"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("joblib.numpy_pickle", "NDArrayWrapper"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.ma.core", "_mareconstruct"),
    ("numpy.random", "__RandomState_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("pandas", "Period"),
    ("pandas", "StringDtype"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.tslibs.nattype", "_nat_unpickle"),
    ("pandas._libs.tslibs.offsets", "BusinessDay"),
    ("pandas._libs.tslibs.offsets", "BusinessMonthBegin"),
    ("pandas._libs.tslibs.offsets", "BusinessMonthEnd"),
    ("pandas._libs.tslibs.offsets", "DateOffset"),
    ("pandas._libs.tslibs.offsets", "Day"),
    ("pandas._libs.tslibs.offsets", "Hour"),
    ("pandas._libs.tslibs.offsets", "Micro"),
    ("pandas._libs.tslibs.offsets", "Milli"),
    ("pandas._libs.tslibs.offsets", "Minute"),
    ("pandas._libs.tslibs.offsets", "MonthBegin"),
    ("pandas._libs.tslibs.offsets", "MonthEnd"),
    ("pandas._libs.tslibs.offsets", "Nano"),
    ("pandas._libs.tslibs.offsets", "QuarterBegin"),
    ("pandas._libs.tslibs.offsets", "QuarterEnd"),
    ("pandas._libs.tslibs.offsets", "Second"),
    ("pandas._libs.tslibs.offsets", "Week"),
    ("pandas._libs.tslibs.offsets", "YearBegin"),
    ("pandas._libs.tslibs.offsets", "YearEnd"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("sklearn._loss._loss", "CyAbsoluteError"),
    ("sklearn._loss._loss", "CyExponentialLoss"),
    ("sklearn._loss._loss", "CyHalfBinomialLoss"),
    ("sklearn._loss._loss", "CyHalfGammaLoss"),
    ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
    ("sklearn._loss._loss", "CyHalfPoissonLoss"),
    ("sklearn._loss._loss", "CyHalfSquaredError"),
    ("sklearn._loss._loss", "CyHalfTweedieLoss"),
    ("sklearn._loss._loss", "CyHalfTweedieLossIdentity"),
    ("sklearn._loss._loss", "CyHuberLoss"),
    ("sklearn._loss._loss", "CyPinballLoss"),
    ("sklearn.metrics._dist_metrics", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.tree._tree", "Tree"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_wrapper_subclass"),
    ("torch.nn.parameter", "Parameter"),
    ("torch.serialization", "_get_layout"),
];

/// The packages whose classes a pickle may instantiate without arguments (NEWOBJ with an
/// empty tuple, `copyreg._reconstructor(cls, builtins.object, None)`, scikit-learn's
/// `newObj(cls)`) and then give state with BUILD: their estimators, arrays and frames are
/// pickled that way, and neither `__new__` nor their `__setstate__` runs code a file picks.
/// (INST and OBJ without arguments call a function as it is: they need an exact pair.)
const TRUSTED_ROOTS: &[&str] = &[
    "joblib", "lightgbm", "numpy", "pandas", "scipy", "sklearn", "torch", "xgboost",
];

/// Builtin types that are safe to hand to an allowed callable (a `defaultdict`'s factory,
/// `copyreg._reconstructor`'s base): calling them runs no code a file picks.
const SAFE_TYPES: &[&str] = &[
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "object",
    "set",
    "str",
    "tuple",
];

/// Whether loading may call `module.name` with arguments.
pub(super) fn call(module: &str, name: &str) -> bool {
    CALLS.binary_search(&(module, name)).is_ok()
}

/// Whether `module.name` may be instantiated without arguments and given state: an allowed
/// callable, or a class of a trusted package (its module's first segment in
/// [`TRUSTED_ROOTS`]) whose name is a plain identifier (no dot, which would be a lookup
/// chain, and no dunder, which would reach Python's internals).
pub(super) fn instantiate(module: &str, name: &str) -> bool {
    if call(module, name) {
        return true;
    }
    let root = module.split('.').next().unwrap_or(module);
    TRUSTED_ROOTS.contains(&root) && plain_identifier(name)
}

/// Whether handing `module.name` (a class or function named in a call's arguments) to an
/// allowed callable is safe: an allowed callable, a class [`instantiate`] accepts, or a
/// builtin type of [`SAFE_TYPES`].
pub(super) fn argument(module: &str, name: &str) -> bool {
    instantiate(module, name) || (module == "builtins" && SAFE_TYPES.contains(&name))
}

/// Whether a global's name is a lookup chain or reaches a dunder (`__builtins__.eval`,
/// `__class__`), which loading resolves attribute by attribute: unsafe even when never
/// called, unless it is an allowed callable (`copyreg.__newobj__`).
pub(super) fn lookup_chain(module: &str, name: &str) -> bool {
    !call(module, name) && (name.contains('.') || name.split('.').any(dunder))
}

/// `__name__`.
fn dunder(segment: &str) -> bool {
    segment.len() > 4 && segment.starts_with("__") && segment.ends_with("__")
}

/// A Python identifier of ASCII letters, digits and underscores, not a dunder.
fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !dunder(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_sorted_for_binary_search() {
        assert!(CALLS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn exact_pairs_only() {
        assert!(call("numpy._core.multiarray", "_reconstruct"));
        assert!(!call("numpy", "_reconstruct"));
        assert!(!call("os", "system"));
        assert!(!call("builtins", "eval"));
    }

    #[test]
    fn trusted_classes_are_plain_names_under_trusted_roots() {
        assert!(instantiate(
            "sklearn.linear_model._logistic",
            "LogisticRegression"
        ));
        assert!(instantiate("numpy.random._mt19937", "MT19937"));
        assert!(!instantiate("sklearnx", "Model"));
        assert!(!instantiate("__main__", "Model"));
        assert!(!instantiate("numpy", "__builtins__"));
        assert!(!instantiate("numpy", "a.b"));
        assert!(!instantiate("builtins", "object"));
        assert!(argument("builtins", "object"));
        assert!(!argument("builtins", "eval"));
    }

    #[test]
    fn lookup_chains_and_dunders() {
        assert!(lookup_chain("numpy", "__builtins__.eval"));
        assert!(lookup_chain("numpy", "__class__"));
        assert!(!lookup_chain("copyreg", "__newobj__"));
        assert!(!lookup_chain("numpy.random._pickle", "__randomstate_ctor"));
    }
}
