//! `[[models]]`: a model file or folder, its digest, and what the file says about the
//! runtime it needs (read from its bytes, never by loading it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use envlock_model::{Format as ModelFormat, UNREADABLE};

/// `[[models]]`: a model file or folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Model {
    /// The path as given; a relative path maps to the image's WORKDIR.
    pub path: String,
    /// `file` or `directory`.
    pub kind: ModelKind,
    /// A file: `sha256:` of its bytes. A folder: `sha256:` of its manifest, the lines
    /// `<hex>  <relative path>\n` of every file sorted by path bytes (as `sha256sum` prints
    /// them), with `link:<target>` in place of the hex for a symlink that leaves the folder.
    pub sha256: String,
    /// Total size in bytes.
    pub size: u64,
    /// The format its bytes say (a folder: its most telling file's); absent in locks of
    /// envlock before the model reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// The libraries that wrote it and their versions, as the file records them
    /// (scikit-learn's `_sklearn_version`, XGBoost's `version`, Keras's `keras_version`,
    /// Hugging Face's `transformers_version`), by PEP 503 name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written_by: Vec<WrittenBy>,
    /// The modules its pickles name, which loading imports, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// What loading it would call outside the allow-list (`module.name`), or `unreadable`
    /// for a pickle that cannot be read to its end; sorted.
    #[serde(default, rename = "unsafe", skip_serializing_if = "Vec::is_empty")]
    pub unsafe_calls: Vec<String>,
    /// Where in the file each unsafe call is, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsafe_where: Vec<String>,
    /// Of `imports`, the modules this lock's runtime cannot import: no file for them on its
    /// `sys.path` and not in its Python's standard library.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_importable: Vec<String>,
    /// A folder's files, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ModelFile>,
    /// Layered image sources: the layer that last wrote the model (a folder: any of its files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

impl Model {
    /// What loading it would do that the allow-list does not allow, as a phrase after
    /// "loading model X" ("would call `posix.system`, outside the allow-list (byte 103: …)"),
    /// or `None` when nothing.
    pub(crate) fn unsafe_summary(&self) -> Option<String> {
        if self.unsafe_calls.is_empty() {
            return None;
        }
        let calls: Vec<&str> = self
            .unsafe_calls
            .iter()
            .map(String::as_str)
            .filter(|call| *call != UNREADABLE)
            .collect();
        let unreadable = calls.len() < self.unsafe_calls.len();
        let mut what = Vec::new();
        if !calls.is_empty() {
            what.push(format!(
                "would call `{}`, outside the allow-list",
                calls.join("`, `")
            ));
        }
        if unreadable {
            what.push("cannot be checked: a pickle in it cannot be read to its end".to_string());
        }
        let places = if self.unsafe_where.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.unsafe_where.join("; "))
        };
        Some(format!("{}{places}", what.join(", and ")))
    }
}

/// What a model path names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A single file.
    #[default]
    File,
    /// A folder, hashed file by file.
    Directory,
}

/// A library version a model file records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WrittenBy {
    /// The distribution, PEP 503 normalized (`scikit-learn`).
    pub name: String,
    /// Its version as the file records it.
    pub version: String,
}

/// One file inside a model folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ModelFile {
    /// Path relative to the model folder, `/`-separated.
    pub path: String,
    /// `sha256:<hex>` of its bytes; absent for a symlink that leaves the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size in bytes (0 for a symlink that leaves the folder).
    pub size: u64,
    /// The target of a symlink that leaves the folder; it is recorded, not followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The format its bytes say (absent for a link, and in locks of envlock before 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// The libraries that wrote this file, as it records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written_by: Vec<WrittenBy>,
    /// The modules this file's pickles name, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// What loading this file would call outside the allow-list, or `unreadable`; sorted.
    /// The folder's `unsafe-where` says where.
    #[serde(default, rename = "unsafe", skip_serializing_if = "Vec::is_empty")]
    pub unsafe_calls: Vec<String>,
}

impl Model {
    /// The paths of the folder's files for which `holds` is true, in the lock's order.
    pub(crate) fn files_where(&self, holds: impl Fn(&ModelFile) -> bool) -> Vec<&str> {
        (self.files.iter())
            .filter(|file| holds(file))
            .map(|file| file.path.as_str())
            .collect()
    }
}
