//! What a model file says about the runtime it needs: its format, the library versions it
//! was written with, the modules its pickles import and whether loading it would call
//! anything outside the allow-list. Read from the bytes as they stream past to be hashed
//! (one pass, on the host, from an engine's tar and from a layer alike); nothing in the file
//! is ever run, imported or unpickled.
//!
//! [`read`] never fails: a file it cannot make sense of is `unknown`, and a pickle that
//! cannot be read to its end is unsafe (fail closed). Errors of the stream itself (an engine
//! that resets, a disk error) are the caller's: it hashes the same stream and sees them.

/// A fixture of `fixtures/models/pickles/` (written by its `make.py`), for the tests.
#[cfg(test)]
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/models/pickles/",
            $name
        ))
        .as_slice()
    };
}

mod compress;
mod formats;
pub(crate) mod pickle;
mod zip;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

/// Bytes looked at to tell the format, and the reading buffer.
const SNIFF: usize = 64 * 1024;

pub(crate) use crate::lock::ModelFormat as Format;

/// What one model file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Facts {
    pub(crate) format: Format,
    /// The libraries that wrote it (PEP 503 name -> version), as the file records them.
    pub(crate) written_by: BTreeMap<String, String>,
    /// The modules its pickles name (they are imported on load).
    pub(crate) imports: BTreeSet<String>,
    /// What loading it would call outside the allow-list (`module.name`), or why it cannot
    /// be known (`unreadable`).
    pub(crate) unsafe_calls: BTreeSet<String>,
    /// Where, one sentence each: "byte 1234: REDUCE calls `posix.system`".
    pub(crate) unsafe_where: Vec<String>,
}

/// The entry of `unsafe_calls` for a stream that could not be read to its end.
pub(crate) use crate::lock::UNREADABLE;

impl Facts {
    fn of(format: Format) -> Facts {
        Facts {
            format,
            ..Facts::default()
        }
    }

    /// Adds what a pickle scan found (`inside`: where the pickle is, for the sentences:
    /// "" for the file itself, "data.pkl" for a zip entry).
    fn add_pickle(&mut self, scan: pickle::Scan, inside: &str) {
        let place = |offset: u64| match inside {
            "" => format!("byte {offset}"),
            entry => format!("`{entry}` byte {offset}"),
        };
        for (module, _) in &scan.globals {
            self.imports.insert(module.clone());
        }
        self.written_by.extend(scan.written_by);
        for call in scan.unsafe_calls {
            self.unsafe_where
                .push(format!("{}: {}", place(call.offset), call.why));
            self.unsafe_calls.insert(call.call);
        }
        if let Some((offset, why)) = scan.unreadable {
            self.unsafe_where.push(format!(
                "{}: {why}; a pickle that cannot be read to its end is treated as unsafe",
                place(offset)
            ));
            self.unsafe_calls.insert(UNREADABLE.to_string());
        }
    }
}

/// Reads the model file that `reader` yields (`size` bytes, as its header or stat says;
/// `name` its file name, which tells a Hugging Face `config.json` apart from other JSON).
/// Reads as much of the stream as the format needs; the caller drains the rest.
pub(crate) fn read(reader: &mut dyn Read, size: u64, name: &str) -> Facts {
    let mut reader = BufReader::with_capacity(SNIFF, reader);
    let head = match reader.fill_buf() {
        Ok(head) => head.to_vec(),
        Err(_) => return Facts::default(),
    };
    let Some(kind) = sniff(&head, name) else {
        return Facts::default();
    };
    match kind {
        Sniffed::Pickle => {
            let scan = if head.starts_with(LEGACY_TORCH) {
                pickle::scan_legacy_torch(&mut reader, size)
            } else {
                pickle::scan(&mut reader, size, pickle::Context::File)
            };
            let mut facts = Facts::of(if scan.joblib {
                Format::Joblib
            } else {
                Format::Pickle
            });
            if scan.legacy_torch {
                // A legacy `torch.save` file (before 1.6) starts with a pickled magic number.
                facts.format = Format::Torch;
            }
            facts.add_pickle(scan, "");
            facts
        }
        Sniffed::Compressed(compression) => {
            let mut facts = Facts::of(Format::Joblib);
            match compress::open(compression, &mut reader, size) {
                Ok(mut inflated) => {
                    let scan = pickle::scan(&mut inflated, u64::MAX, pickle::Context::File);
                    facts.add_pickle(scan, "");
                }
                Err(why) => facts.add_pickle(pickle::Scan::unreadable(0, why), ""),
            }
            facts
        }
        Sniffed::Zip => zip::read(&mut reader),
        Sniffed::Other(format) => formats::read(format, &mut reader, size),
    }
}

/// How a legacy `torch.save` file (before 1.6) starts: its magic number
/// 0x1950a86a20f9469cfc6c, pickled with protocol 2 (PROTO 2, LONG1 of 10 bytes).
const LEGACY_TORCH: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sniffed {
    Pickle,
    Compressed(compress::Compression),
    Zip,
    Other(Format),
}

/// The format the first bytes say, or `None` when they say none envlock reads.
fn sniff(head: &[u8], name: &str) -> Option<Sniffed> {
    if head.starts_with(b"PK\x03\x04") {
        return Some(Sniffed::Zip);
    }
    if let Some(compression) = compress::sniff(head) {
        return Some(Sniffed::Compressed(compression));
    }
    if pickle::sniff(head) {
        return Some(Sniffed::Pickle);
    }
    formats::sniff(head, name).map(Sniffed::Other)
}

/// Joins the facts of a folder's files into the folder's: the format of its most telling
/// file by [`precedence`], whatever the order of the files, and everything else together.
pub(crate) fn merge(files: impl IntoIterator<Item = (String, Facts)>) -> Facts {
    let mut all = Facts::default();
    for (path, facts) in files {
        if precedence(facts.format) < precedence(all.format) {
            all.format = facts.format;
        }
        all.written_by.extend(facts.written_by);
        all.imports.extend(facts.imports);
        all.unsafe_calls.extend(facts.unsafe_calls);
        all.unsafe_where.extend(
            facts
                .unsafe_where
                .into_iter()
                .map(|at| format!("`{path}` {at}")),
        );
    }
    all
}

/// How telling a file's format is of its folder's, most first: a Hugging Face config names
/// the folder's model, a framework's own files come before the weights they hold
/// (safetensors), and a pickle (a joblib file before a plain one) is the fallback.
fn precedence(format: Format) -> u8 {
    match format {
        Format::HfConfig => 0,
        Format::Torch => 1,
        Format::Keras => 2,
        Format::Onnx => 3,
        Format::Safetensors => 4,
        Format::Xgboost => 5,
        Format::Lightgbm => 6,
        Format::Joblib => 7,
        Format::Pickle => 8,
        Format::Unknown => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_format_does_not_depend_on_file_order() {
        let files = |formats: &[Format]| {
            formats
                .iter()
                .enumerate()
                .map(|(index, format)| (format!("{index}"), Facts::of(*format)))
                .collect::<Vec<_>>()
        };
        for formats in [
            [Format::Pickle, Format::Torch, Format::Unknown],
            [Format::Unknown, Format::Pickle, Format::Torch],
            [Format::Torch, Format::Unknown, Format::Pickle],
        ] {
            assert_eq!(merge(files(&formats)).format, Format::Torch);
        }
        let config = [Format::Safetensors, Format::HfConfig, Format::Joblib];
        assert_eq!(merge(files(&config)).format, Format::HfConfig);
        let pickles = [Format::Pickle, Format::Joblib];
        assert_eq!(merge(files(&pickles)).format, Format::Joblib);
        assert_eq!(merge(files(&[Format::Unknown])).format, Format::Unknown);
    }
}
