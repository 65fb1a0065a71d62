//! What loading a pickle may call: exact (module, name) pairs; the globals each of them may be
//! handed as arguments; and the classes a pickle may instantiate without arguments.
//!
//! Three rules, each failing closed (anything not listed is unsafe):
//! - [`call`]: REDUCE, or NEWOBJ/OBJ/INST with arguments, only of a pair in [`CALLS`].
//! - [`argument`]: a global anywhere in an allowed call's arguments (nested in tuples, lists
//!   and dicts too) only when [`ARGUMENTS`] lists that exact pair for that callable. Many
//!   allowed callables call what they are handed (`defaultdict` its factory,
//!   `torch._tensor._rebuild_from_type_v2` its `func`, numpy's `__generator_ctor` its
//!   `bit_generator_ctor` and `__bit_generator_ctor` its class), so "any function of a
//!   trusted package" would be any call: `__generator_ctor("touch …",
//!   torch.utils.collect_env.run)` runs a shell.
//! - [`instantiate`]: NEWOBJ with an empty tuple (and what amounts to it) then BUILD, only
//!   of a class of [`CLASSES`], or of a module of [`CLASS_MODULES`] (the module or one below
//!   it). Those are modules that hold only models and data. Whole packages are not trusted:
//!   `numpy.lib._datasource.DataSource` with state `{'_istmpdest': True, '_destpath': …}`
//!   removes that folder when collected.
//!
//! Where the lists come from (checked against real files, not guessed from names):
//! - numpy, scikit-learn, scipy, pandas and joblib: the globals that `pickle.dumps` (protocols
//!   0, 2, 4 and 5) and `joblib.dump` (plain and compressed) write for the estimators, arrays,
//!   random generators, sparse matrices and frames of numpy 2.4, scikit-learn 1.9, scipy
//!   1.17, pandas 3.1 and joblib 1.6, and how each is used (called by REDUCE, instantiated by
//!   NEWOBJ, handed as an argument, or only named). `fixtures/models/pickles/make.py` writes
//!   some of them; the wider survey (about a hundred objects: the estimators of every
//!   scikit-learn subpackage of [`CLASS_MODULES`], pipelines, column transformers and grid
//!   searches, each numpy bit generator, `Generator`, `RandomState` and `SeedSequence`,
//!   masked, structured, datetime and object arrays, every scipy sparse format, pandas
//!   frames and series with each index and extension dtype) was written by a throwaway
//!   script and read with this scanner: none of its files is unsafe by these lists that was
//!   safe by the earlier whole-package rule. The numpy 1.x spellings (`numpy.core.*`) are
//!   the same functions before numpy 2 moved them to `numpy._core`; numpy 2 keeps
//!   `numpy.core` as a shim. numpy's random pickles, as numpy writes them: before 1.25
//!   `__generator_ctor("MT19937")` (a name), from 1.25 `__generator_ctor("MT19937",
//!   __bit_generator_ctor)`, and numpy 2 `__generator_ctor(bit_generator)` where the bit
//!   generator is `__bit_generator_ctor(numpy.random._mt19937.MT19937)`.
//! - torch: `_get_allowed_globals` and `_tensor_rebuild_functions` of torch's own
//!   `torch/_weights_only_unpickler.py` (what `torch.load(weights_only=True)` accepts),
//!   and for the class rule `torch.nn.modules` and `torch.nn.parameter` only. TorchScript
//!   archives (`torch.jit.save`, read with torch 2.15) add `torch.jit._pickle`'s list and
//!   tensor builders, which return what they are handed (their `debug_pkl` and
//!   `constants.pkl` call them).
//! - Python's standard library: what `pickle` itself writes for builtin and standard types at
//!   each protocol (`set`, `bytes` through `_codecs.encode` at protocol 2, `datetime`, ...).
//!
//! An allow-list fails closed where deny-lists were bypassed (modelscan#330 reached `eval`
//! through `numpy.__builtins__`; #339 used `ctypes`).

/// `(module, name)`.
type Pair = (&'static str, &'static str);

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
    (
        "sklearn._loss._loss",
        "__pyx_unpickle_CyHalfMultinomialLoss",
    ),
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
    ("torch.jit._pickle", "build_boollist"),
    ("torch.jit._pickle", "build_doublelist"),
    ("torch.jit._pickle", "build_intlist"),
    ("torch.jit._pickle", "build_tensor_from_id"),
    ("torch.jit._pickle", "build_tensorlist"),
    ("torch.jit._pickle", "restore_type_tag"),
    ("torch.nn.parameter", "Parameter"),
    ("torch.serialization", "_get_layout"),
];

/// The modules whose classes a pickle may instantiate without arguments (NEWOBJ with an
/// empty tuple, `copyreg._reconstructor(cls, builtins.object, None)`, scikit-learn's
/// `newObj(cls)`) and then give state with BUILD: a module matches when its name is one of
/// these or starts with one followed by a dot. These are the modules of the fixtures' and the
/// survey's real files (`fixtures/models/pickles/make.py` and the estimators, arrays, sparse
/// matrices and frames listed in the module docs) that hold only models and data: their
/// `__new__`, `__setstate__` and `__del__` run no code the file picks. Whole packages are
/// not trusted: `numpy.lib._datasource.DataSource` removes the folder its state names when
/// collected, and `sklearn.utils`, `pandas.io`, `torch.utils` or `torch.jit` hold helpers.
/// (INST and OBJ without arguments call a function as it is: they need an exact pair.)
const CLASS_MODULES: &[&str] = &[
    "joblib.numpy_pickle",
    "joblib.numpy_pickle_compat",
    "lightgbm.sklearn",
    "pandas.core.arrays",
    "pandas.core.dtypes.dtypes",
    "pandas.core.frame",
    "pandas.core.indexes",
    "pandas.core.internals",
    "pandas.core.series",
    "scipy.sparse._arrays",
    "scipy.sparse._bsr",
    "scipy.sparse._coo",
    "scipy.sparse._csc",
    "scipy.sparse._csr",
    "scipy.sparse._dia",
    "scipy.sparse._dok",
    "scipy.sparse._lil",
    "scipy.sparse.bsr",
    "scipy.sparse.coo",
    "scipy.sparse.csc",
    "scipy.sparse.csr",
    "scipy.sparse.dia",
    "scipy.sparse.dok",
    "scipy.sparse.lil",
    "sklearn._loss",
    "sklearn.calibration",
    "sklearn.cluster",
    "sklearn.compose",
    "sklearn.covariance",
    "sklearn.cross_decomposition",
    "sklearn.decomposition",
    "sklearn.discriminant_analysis",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
    "sklearn.frozen",
    "sklearn.gaussian_process",
    "sklearn.impute",
    "sklearn.isotonic",
    "sklearn.kernel_approximation",
    "sklearn.kernel_ridge",
    "sklearn.linear_model",
    "sklearn.manifold",
    "sklearn.metrics._dist_metrics",
    "sklearn.metrics._scorer",
    "sklearn.mixture",
    "sklearn.model_selection",
    "sklearn.multiclass",
    "sklearn.multioutput",
    "sklearn.naive_bayes",
    "sklearn.neighbors",
    "sklearn.neural_network",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.random_projection",
    "sklearn.semi_supervised",
    "sklearn.svm",
    "sklearn.tree",
    "torch.nn.modules",
    "torch.nn.parameter",
    "xgboost.sklearn",
];

/// Classes outside [`CLASS_MODULES`] that a pickle may instantiate without arguments and give
/// state: numpy's arrays and random generators, the boosters of xgboost and lightgbm, pandas'
/// frames, arrays and dtypes by the public names pandas 2 and 3 pickle them under, and
/// scikit-learn's `Bunch` (a dict whose `__setstate__` does nothing) and the metadata
/// requests a scorer keeps (scikit-learn 1.5's grid searches pickle them: plain data).
const CLASSES: &[(&str, &str)] = &[
    ("lightgbm.basic", "Booster"),
    ("numpy", "ndarray"),
    ("numpy.ma", "MaskedArray"),
    ("numpy.ma.core", "MaskedArray"),
    ("numpy.random._generator", "Generator"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.mtrand", "RandomState"),
    ("pandas", "BooleanDtype"),
    ("pandas", "Categorical"),
    ("pandas", "CategoricalDtype"),
    ("pandas", "DataFrame"),
    ("pandas", "DatetimeTZDtype"),
    ("pandas", "Float32Dtype"),
    ("pandas", "Float64Dtype"),
    ("pandas", "Int16Dtype"),
    ("pandas", "Int32Dtype"),
    ("pandas", "Int64Dtype"),
    ("pandas", "Int8Dtype"),
    ("pandas", "IntervalDtype"),
    ("pandas", "Series"),
    ("pandas", "UInt16Dtype"),
    ("pandas", "UInt32Dtype"),
    ("pandas", "UInt64Dtype"),
    ("pandas", "UInt8Dtype"),
    ("pandas.arrays", "BooleanArray"),
    ("pandas.arrays", "DatetimeArray"),
    ("pandas.arrays", "FloatingArray"),
    ("pandas.arrays", "IntegerArray"),
    ("pandas.arrays", "IntervalArray"),
    ("pandas.arrays", "NumpyExtensionArray"),
    ("pandas.arrays", "PeriodArray"),
    ("pandas.arrays", "StringArray"),
    ("pandas.arrays", "TimedeltaArray"),
    ("sklearn.utils._bunch", "Bunch"),
    ("sklearn.utils._metadata_requests", "MetadataRequest"),
    ("sklearn.utils._metadata_requests", "MethodMetadataRequest"),
    ("xgboost.core", "Booster"),
];

/// numpy's bit generators, which `numpy.random._pickle.__bit_generator_ctor` calls without
/// arguments when handed one (numpy 2 pickles `type(bit_generator)`).
const BIT_GENERATORS: &[(&str, &str)] = &[
    ("numpy.random", "MT19937"),
    ("numpy.random", "PCG64"),
    ("numpy.random", "PCG64DXSM"),
    ("numpy.random", "Philox"),
    ("numpy.random", "SFC64"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
];

/// What numpy's generator constructors may be handed besides bit-generator names: numpy
/// 1.25 and later pass `__bit_generator_ctor` itself, which only builds a bit generator.
const GENERATOR_CTORS: &[(&str, &str)] = &[("numpy.random._pickle", "__bit_generator_ctor")];

/// The array types numpy's `_reconstruct` and joblib's wrappers are handed (`ndarray.__new__`
/// of a subtype runs only its `__array_finalize__`).
const ARRAY_TYPES: &[(&str, &str)] = &[
    ("numpy", "matrix"),
    ("numpy", "ndarray"),
    ("numpy._core.records", "recarray"),
    ("numpy.core.records", "recarray"),
    ("numpy.ma", "MaskedArray"),
    ("numpy.ma.core", "MaskedArray"),
    ("numpy.matrixlib.defmatrix", "matrix"),
    ("numpy.rec", "recarray"),
];

/// Types that are safe to hand to `defaultdict` as its factory and to
/// `copyreg._reconstructor` as its base: calling them runs no code a file picks. Builtins,
/// and `collections.OrderedDict` (LightGBM 4's scikit-learn wrapper keeps a
/// `defaultdict(OrderedDict)`).
const SAFE_TYPES: &[(&str, &str)] = &[
    ("builtins", "dict"),
    ("builtins", "float"),
    ("builtins", "frozenset"),
    ("builtins", "int"),
    ("builtins", "list"),
    ("builtins", "set"),
    ("builtins", "str"),
    ("builtins", "tuple"),
    ("collections", "OrderedDict"),
];

/// What torch's tensor rebuild functions are handed: the rebuild functions themselves
/// (`_rebuild_from_type_v2(func, type, args, state)` calls `func(*args)`), the tensor types a
/// result becomes (`as_subclass`), and torch's dtype, layout and quantization scheme values,
/// which are not callable. From torch's `torch/_weights_only_unpickler.py`
/// (`_get_allowed_globals`, `_tensor_rebuild_functions`).
const TENSOR_ARGUMENTS: &[(&str, &str)] = &[
    ("torch", "Tensor"),
    ("torch", "bfloat16"),
    ("torch", "bool"),
    ("torch", "complex128"),
    ("torch", "complex32"),
    ("torch", "complex64"),
    ("torch", "float16"),
    ("torch", "float32"),
    ("torch", "float64"),
    ("torch", "float8_e4m3fn"),
    ("torch", "float8_e4m3fnuz"),
    ("torch", "float8_e5m2"),
    ("torch", "float8_e5m2fnuz"),
    ("torch", "int16"),
    ("torch", "int32"),
    ("torch", "int64"),
    ("torch", "int8"),
    ("torch", "per_channel_affine"),
    ("torch", "per_channel_affine_float_qparams"),
    ("torch", "per_channel_symmetric"),
    ("torch", "per_tensor_affine"),
    ("torch", "per_tensor_symmetric"),
    ("torch", "qint32"),
    ("torch", "qint8"),
    ("torch", "quint2x4"),
    ("torch", "quint4x2"),
    ("torch", "quint8"),
    ("torch", "sparse_bsc"),
    ("torch", "sparse_bsr"),
    ("torch", "sparse_coo"),
    ("torch", "sparse_csc"),
    ("torch", "sparse_csr"),
    ("torch", "strided"),
    ("torch", "uint16"),
    ("torch", "uint32"),
    ("torch", "uint64"),
    ("torch", "uint8"),
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
];

/// pandas' index classes, which `_new_Index(cls, d)` instantiates (`cls.__new__(cls, **d)`).
const INDEX_TYPES: &[(&str, &str)] = &[
    ("pandas", "CategoricalIndex"),
    ("pandas", "DatetimeIndex"),
    ("pandas", "Index"),
    ("pandas", "IntervalIndex"),
    ("pandas", "MultiIndex"),
    ("pandas", "PeriodIndex"),
    ("pandas", "RangeIndex"),
    ("pandas", "TimedeltaIndex"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.category", "CategoricalIndex"),
    ("pandas.core.indexes.datetimes", "DatetimeIndex"),
    ("pandas.core.indexes.interval", "IntervalIndex"),
    ("pandas.core.indexes.multi", "MultiIndex"),
    ("pandas.core.indexes.numeric", "Float64Index"),
    ("pandas.core.indexes.numeric", "Int64Index"),
    ("pandas.core.indexes.numeric", "NumericIndex"),
    ("pandas.core.indexes.numeric", "UInt64Index"),
    ("pandas.core.indexes.period", "PeriodIndex"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.indexes.timedeltas", "TimedeltaIndex"),
];

/// pandas' arrays backed by an ndarray, which Cython's `__pyx_unpickle_NDArrayBacked(cls,
/// checksum, state)` creates with `NDArrayBacked.__new__(cls)`.
const BACKED_ARRAYS: &[(&str, &str)] = &[
    ("pandas", "Categorical"),
    ("pandas.arrays", "DatetimeArray"),
    ("pandas.arrays", "NumpyExtensionArray"),
    ("pandas.arrays", "PeriodArray"),
    ("pandas.arrays", "StringArray"),
    ("pandas.arrays", "TimedeltaArray"),
    ("pandas.core.arrays.categorical", "Categorical"),
    ("pandas.core.arrays.datetimes", "DatetimeArray"),
    ("pandas.core.arrays.numpy_", "NumpyExtensionArray"),
    ("pandas.core.arrays.numpy_", "PandasArray"),
    ("pandas.core.arrays.period", "PeriodArray"),
    ("pandas.core.arrays.string_", "StringArray"),
    ("pandas.core.arrays.timedeltas", "TimedeltaArray"),
];

/// The globals an allowed callable may be handed as arguments (anywhere in them, nested in
/// tuples, lists and dicts too), by callable: what the libraries write, read from the same
/// files as [`CALLS`]. A callable not listed is handed no global: many callables call what
/// they are given (`defaultdict` its factory, `_rebuild_from_type_v2` its `func`,
/// `__bit_generator_ctor` its class), so a global of a trusted package would be a call the
/// allow-list never approved.
const ARGUMENTS: &[(Pair, &[Pair])] = &[
    (("collections", "defaultdict"), SAFE_TYPES),
    (("joblib.numpy_pickle", "NDArrayWrapper"), ARRAY_TYPES),
    (("joblib.numpy_pickle", "NumpyArrayWrapper"), ARRAY_TYPES),
    (
        ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
        ARRAY_TYPES,
    ),
    (("numpy._core.multiarray", "_reconstruct"), ARRAY_TYPES),
    (("numpy.core.multiarray", "_reconstruct"), ARRAY_TYPES),
    (("numpy.ma.core", "_mareconstruct"), ARRAY_TYPES),
    (
        ("numpy.random._pickle", "__bit_generator_ctor"),
        BIT_GENERATORS,
    ),
    (
        ("numpy.random._pickle", "__generator_ctor"),
        GENERATOR_CTORS,
    ),
    (
        ("numpy.random._pickle", "__randomstate_ctor"),
        GENERATOR_CTORS,
    ),
    (
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        &[("numpy.random.bit_generator", "SeedSequence")],
    ),
    (
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        BACKED_ARRAYS,
    ),
    (("pandas", "StringDtype"), &[("pandas", "NA")]),
    (
        (
            "sklearn._loss._loss",
            "__pyx_unpickle_CyHalfMultinomialLoss",
        ),
        &[("sklearn._loss._loss", "CyHalfMultinomialLoss")],
    ),
    (("pandas.core.indexes.base", "_new_Index"), INDEX_TYPES),
    (("torch._tensor", "_rebuild_from_type_v2"), TENSOR_ARGUMENTS),
    (
        ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
        TENSOR_ARGUMENTS,
    ),
    (
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),
        TENSOR_ARGUMENTS,
    ),
    (
        ("torch._utils", "_rebuild_meta_tensor_no_storage"),
        TENSOR_ARGUMENTS,
    ),
    (("torch._utils", "_rebuild_parameter"), TENSOR_ARGUMENTS),
    (
        ("torch._utils", "_rebuild_parameter_with_state"),
        TENSOR_ARGUMENTS,
    ),
    (("torch._utils", "_rebuild_qtensor"), TENSOR_ARGUMENTS),
    (("torch._utils", "_rebuild_sparse_tensor"), TENSOR_ARGUMENTS),
    (("torch._utils", "_rebuild_tensor"), TENSOR_ARGUMENTS),
    (("torch._utils", "_rebuild_tensor_v2"), TENSOR_ARGUMENTS),
    (("torch._utils", "_rebuild_tensor_v3"), TENSOR_ARGUMENTS),
    (
        ("torch._utils", "_rebuild_wrapper_subclass"),
        TENSOR_ARGUMENTS,
    ),
    (("torch.nn.parameter", "Parameter"), TENSOR_ARGUMENTS),
];

/// Whether loading may call `module.name` with arguments.
pub(crate) fn call(module: &str, name: &str) -> bool {
    CALLS.binary_search(&(module, name)).is_ok()
}

/// Whether `module.name` may be instantiated without arguments and given state: an allowed
/// callable, a class of [`CLASSES`], or a class of a module of [`CLASS_MODULES`] whose name
/// is a plain identifier (no dot, which would be a lookup chain, and no dunder, which would
/// reach Python's internals).
pub(crate) fn instantiate(module: &str, name: &str) -> bool {
    if call(module, name) || CLASSES.contains(&(module, name)) {
        return true;
    }
    let listed = CLASS_MODULES.iter().any(|prefix| {
        module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    });
    listed && plain_identifier(name)
}

/// Whether handing `module.name` (a class or function named anywhere in a call's arguments)
/// to the allowed callable `callable` is safe: an exact pair [`ARGUMENTS`] lists for it.
pub(crate) fn argument(callable: (&str, &str), module: &str, name: &str) -> bool {
    ARGUMENTS
        .iter()
        .find(|(listed, _)| *listed == callable)
        .is_some_and(|(_, allowed)| allowed.contains(&(module, name)))
}

/// Globals a pickle may name without calling them: `builtins.object`, the base
/// `copyreg._reconstructor(cls, builtins.object, None)` is handed (protocols 0 and 1);
/// numpy's scalar types, which estimators keep as attributes (`OneHotEncoder(dtype=
/// numpy.float64)`; numpy 2.4's `numpy.sctypeDict` values by their public names); and
/// torch's storage types, which the persistent ids of `data.pkl` name (`('storage',
/// torch.FloatStorage, '0', 'cpu', 4)`), as `torch._storage_classes` lists them (torch 2.15)
/// and `_get_allowed_globals` allows them.
const NAMED: &[(&str, &str)] = &[
    ("builtins", "object"),
    ("numpy", "bool_"),
    ("numpy", "bytes_"),
    ("numpy", "clongdouble"),
    ("numpy", "complex128"),
    ("numpy", "complex64"),
    ("numpy", "datetime64"),
    ("numpy", "float16"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "int16"),
    ("numpy", "int32"),
    ("numpy", "int64"),
    ("numpy", "int8"),
    ("numpy", "intc"),
    ("numpy", "longdouble"),
    ("numpy", "longlong"),
    ("numpy", "object_"),
    ("numpy", "str_"),
    ("numpy", "timedelta64"),
    ("numpy", "uint16"),
    ("numpy", "uint32"),
    ("numpy", "uint64"),
    ("numpy", "uint8"),
    ("numpy", "uintc"),
    ("numpy", "ulonglong"),
    ("numpy", "void"),
    ("torch", "BFloat16Storage"),
    ("torch", "BoolStorage"),
    ("torch", "ByteStorage"),
    ("torch", "CharStorage"),
    ("torch", "ComplexDoubleStorage"),
    ("torch", "ComplexFloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "IntStorage"),
    ("torch", "LongStorage"),
    ("torch", "QInt32Storage"),
    ("torch", "QInt8Storage"),
    ("torch", "QUInt2x4Storage"),
    ("torch", "QUInt4x2Storage"),
    ("torch", "QUInt8Storage"),
    ("torch", "ShortStorage"),
    ("torch.cuda", "BFloat16Storage"),
    ("torch.cuda", "BoolStorage"),
    ("torch.cuda", "ByteStorage"),
    ("torch.cuda", "CharStorage"),
    ("torch.cuda", "ComplexDoubleStorage"),
    ("torch.cuda", "ComplexFloatStorage"),
    ("torch.cuda", "DoubleStorage"),
    ("torch.cuda", "FloatStorage"),
    ("torch.cuda", "HalfStorage"),
    ("torch.cuda", "IntStorage"),
    ("torch.cuda", "LongStorage"),
    ("torch.cuda", "ShortStorage"),
    ("torch.storage", "TypedStorage"),
    ("torch.storage", "UntypedStorage"),
];

/// Whether a global is on any list here: a callable, a class a pickle may instantiate,
/// what some allowed callable may be handed, or one of [`NAMED`]. Any other global is
/// unsafe even when only named (fail closed).
pub(crate) fn known(module: &str, name: &str) -> bool {
    call(module, name)
        || instantiate(module, name)
        || NAMED.contains(&(module, name))
        || (ARGUMENTS.iter()).any(|(_, allowed)| allowed.contains(&(module, name)))
}

/// Whether a global's name is a lookup chain or reaches a dunder (`__builtins__.eval`,
/// `__class__`), which loading resolves attribute by attribute: unsafe even when never
/// called, unless it is an allowed callable (`copyreg.__newobj__`).
pub(crate) fn lookup_chain(module: &str, name: &str) -> bool {
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
    fn trusted_classes_are_plain_names_under_listed_modules() {
        assert!(instantiate(
            "sklearn.linear_model._logistic",
            "LogisticRegression"
        ));
        assert!(instantiate("sklearn.pipeline", "Pipeline"));
        assert!(instantiate("numpy.random._mt19937", "MT19937"));
        assert!(instantiate("scipy.sparse._csr", "csr_matrix"));
        assert!(instantiate("torch.nn.modules.linear", "Linear"));
        assert!(!instantiate("sklearnx", "Model"));
        assert!(!instantiate("sklearn.linear_modelx", "Model"));
        assert!(!instantiate("__main__", "Model"));
        assert!(!instantiate("numpy", "__builtins__"));
        assert!(!instantiate("numpy", "a.b"));
        assert!(!instantiate("builtins", "object"));
        // Whole packages are not trusted: their helpers have `__del__` and `__setstate__`.
        assert!(!instantiate("numpy.lib._datasource", "DataSource"));
        assert!(!instantiate("sklearn.utils._testing", "TempMemmap"));
        assert!(!instantiate("torch.utils.data", "DataLoader"));
        assert!(!instantiate("pandas.io.pytables", "HDFStore"));
        assert!(!instantiate("scipy.io", "FortranFile"));
    }

    #[test]
    fn arguments_are_exact_pairs_for_their_callable() {
        let defaultdict = ("collections", "defaultdict");
        assert!(argument(defaultdict, "builtins", "list"));
        assert!(!argument(defaultdict, "builtins", "eval"));
        assert!(!argument(defaultdict, "numpy", "ndarray"));
        let generator = ("numpy.random._pickle", "__generator_ctor");
        assert!(argument(
            generator,
            "numpy.random._pickle",
            "__bit_generator_ctor"
        ));
        assert!(!argument(generator, "torch.utils.collect_env", "run"));
        let bit_generator = ("numpy.random._pickle", "__bit_generator_ctor");
        assert!(argument(bit_generator, "numpy.random._pcg64", "PCG64"));
        assert!(!argument(
            bit_generator,
            "numpy.lib._datasource",
            "DataSource"
        ));
        let from_type = ("torch._tensor", "_rebuild_from_type_v2");
        assert!(argument(from_type, "torch._utils", "_rebuild_tensor_v2"));
        assert!(argument(from_type, "torch", "Tensor"));
        assert!(!argument(
            from_type,
            "numpy.distutils.exec_command",
            "exec_command"
        ));
        // A callable not listed is handed no global.
        assert!(!argument(("builtins", "set"), "builtins", "list"));
    }

    #[test]
    fn argument_lists_name_allowed_callables() {
        for ((module, name), _) in ARGUMENTS {
            assert!(call(module, name), "{module}.{name}");
        }
    }

    #[test]
    fn lookup_chains_and_dunders() {
        assert!(lookup_chain("numpy", "__builtins__.eval"));
        assert!(lookup_chain("numpy", "__class__"));
        assert!(!lookup_chain("copyreg", "__newobj__"));
        assert!(!lookup_chain("numpy.random._pickle", "__randomstate_ctor"));
    }
}
