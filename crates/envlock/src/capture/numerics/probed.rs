//! What the probe sends back of the numeric libraries inside an image (its `--numerics`
//! answer): part of the probe's wire format, read by the fingerprint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the probe read of the numeric libraries inside an image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbedNumerics {
    /// Each library it read, by real path.
    pub(crate) libraries: BTreeMap<String, ProbedLibrary>,
    /// Each path it looked at (RECORD rows, system candidates, extensions): its real path,
    /// `None` when it is no file.
    pub(crate) resolved: BTreeMap<String, Option<String>>,
    /// numpy's and scipy's extensions: what each links (`None`: not an ELF it reads).
    #[serde(default)]
    pub(crate) dynamic: BTreeMap<String, Option<ProbedDynamic>>,
}

/// An extension's `DT_NEEDED` and `RUNPATH`/`RPATH`, as the probe read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbedDynamic {
    pub(crate) needed: Vec<String>,
    pub(crate) search: Vec<String>,
}

/// A numeric library as the probe read it: the text after each version needle (Latin-1),
/// for a system library its sha256 (hex), and for a CUDA library its fatbins' entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbedLibrary {
    pub(crate) snippets: Vec<String>,
    pub(crate) sha256: Option<String>,
    /// A CUDA library's fatbins: each distinct list of its entries' `(kind, architecture)`
    /// (`None`: it has no `.nv_fatbin`, or is not asked for one).
    #[serde(default)]
    pub(crate) fatbins: Option<Vec<Vec<(u16, u32)>>>,
}
