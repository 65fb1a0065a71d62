//! The formats the reader tells apart, and the names the lock gives them.

/// The entry of `unsafe_calls` for a pickle that cannot be read to its end.
pub const UNREADABLE: &str = "unreadable";

/// A model file's format, found from its bytes (never its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schemars", schemars(rename = "ModelFormat"))]
pub enum Format {
    /// A pickle (protocols 0-5).
    Pickle,
    /// joblib: a pickle with inline numpy arrays, maybe compressed.
    Joblib,
    /// `torch.save`: a zip holding `data.pkl`, or a legacy file of pickles.
    Torch,
    /// `torch.jit.save`: a torch zip with TorchScript code (`code/`, `constants.pkl`).
    Torchscript,
    /// Keras 3 `.keras`: a zip with `metadata.json`.
    Keras,
    /// ONNX protobuf.
    Onnx,
    /// safetensors: a JSON header and raw tensors.
    Safetensors,
    /// XGBoost JSON or UBJ.
    Xgboost,
    /// LightGBM's text model.
    Lightgbm,
    /// A Hugging Face `config.json`.
    HfConfig,
    /// NumPy's `.npy` (an array of objects holds a pickle).
    Npy,
    /// NumPy's `.npz`: a zip of `.npy` arrays.
    Npz,
    /// A zip holding pickles that no framework above names.
    Zip,
    /// None of these.
    #[default]
    Unknown,
}

impl Format {
    /// The lock's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::Torch => "torch",
            Format::Keras => "keras",
            Format::Onnx => "onnx",
            Format::Safetensors => "safetensors",
            Format::Xgboost => "xgboost",
            Format::Lightgbm => "lightgbm",
            Format::HfConfig => "hf-config",
            Format::Torchscript => "torchscript",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Zip => "zip",
            Format::Unknown => "unknown",
        }
    }
}
