//! The symbolic pickle machine (helper A fills this in).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

/// Where a pickle is read: a file of its own (joblib's inline arrays may follow a
/// `NumpyArrayWrapper`), or torch's `data.pkl` (persistent ids name its storages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    File,
    Torch,
}

/// A call loading would make outside the allow-list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnsafeCall {
    /// `module.name`.
    pub(crate) call: String,
    /// Offset of the opcode in the pickle stream.
    pub(crate) offset: u64,
    /// One phrase: "REDUCE calls `posix.system`".
    pub(crate) why: String,
}

/// What a pickle says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scan {
    /// Every global it names, (module, name).
    pub(crate) globals: BTreeSet<(String, String)>,
    /// Library versions recorded in its objects' state (PEP 503 name -> version).
    pub(crate) written_by: BTreeMap<String, String>,
    pub(crate) unsafe_calls: Vec<UnsafeCall>,
    /// Where and why the stream could not be read to STOP.
    pub(crate) unreadable: Option<(u64, String)>,
    /// It held joblib's `NumpyArrayWrapper` arrays.
    pub(crate) joblib: bool,
    /// It starts as a legacy torch file does (the pickled magic number).
    pub(crate) legacy_torch: bool,
}

impl Scan {
    /// A pickle that could not be read at all.
    pub(crate) fn unreadable(offset: u64, why: String) -> Scan {
        Scan {
            unreadable: Some((offset, why)),
            ..Scan::default()
        }
    }
}

/// Whether `head` starts as a pickle does.
pub(crate) fn sniff(head: &[u8]) -> bool {
    head.first() == Some(&0x80)
        && head
            .get(1)
            .is_some_and(|protocol| (2..=5).contains(protocol))
}

/// Reads one pickle (a file's, or the next of several back to back) from `reader` to its
/// STOP; `size` bounds what it may declare.
pub(crate) fn scan(reader: &mut dyn BufRead, size: u64, context: Context) -> Scan {
    let _ = (reader, size, context);
    Scan::default()
}
