//! What a model file says about the runtime it needs: its format, the library versions it
//! was written with, the modules its pickles import and whether loading it would call
//! anything outside the allow-list. Read from the bytes as they stream past to be hashed
//! (one pass, on the host, from an engine's tar and from a layer alike); nothing in the file
//! is ever run, imported or unpickled.
//!
//! [`read`] never fails: a file it cannot make sense of is `unknown`, and a pickle that
//! cannot be read to its end is unsafe (fail closed). Errors of the stream itself (an engine
//! that resets, a disk error) are the caller's: it hashes the same stream and sees them.
//!
//! ```
//! // A pickle that runs `os.system` when loaded (protocol 0, as an attacker writes it).
//! let bytes = b"cposix\nsystem\n(S'echo owned'\ntR.";
//! let facts = envlock_model::read(&mut &bytes[..], bytes.len() as u64, "model.pkl");
//! assert_eq!(facts.format, envlock_model::Format::Pickle);
//! assert!(facts.unsafe_calls.contains("posix.system"));
//! ```

/// A fixture of `fixtures/models/pickles/` (written by its `make.py`), for the tests.
#[cfg(test)]
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/models/pickles/",
            $name
        ))
        .as_slice()
    };
}

mod allow;
mod compress;
mod format;
mod formats;
#[doc(hidden)]
pub mod fuzzing;
mod npy;
pub(crate) mod pickle;
mod zip;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

/// Bytes looked at to tell the format, and the reading buffer.
const SNIFF: usize = 64 * 1024;

pub use format::{Format, UNREADABLE};

/// What one model file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The format, from the file's bytes (never its name).
    pub format: Format,
    /// The libraries that wrote it (PEP 503 name -> version), as the file records them.
    pub written_by: BTreeMap<String, String>,
    /// The modules its pickles name (they are imported on load).
    pub imports: BTreeSet<String>,
    /// What loading it would call outside the allow-list (`module.name`), or why it cannot
    /// be known (`unreadable`).
    pub unsafe_calls: BTreeSet<String>,
    /// Where, one sentence each: "byte 1234: REDUCE calls `posix.system`".
    pub unsafe_where: Vec<String>,
}

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
pub fn read(reader: &mut dyn Read, size: u64, name: &str) -> Facts {
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
                pickle::scan_all(&mut reader, size, pickle::Context::File)
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
                    let scan = pickle::scan_all(&mut inflated, u64::MAX, pickle::Context::File);
                    facts.add_pickle(scan, "");
                }
                Err(why) => facts.add_pickle(pickle::Scan::unreadable(0, why.to_string()), ""),
            }
            facts
        }
        Sniffed::Zip => zip::read(&mut reader),
        Sniffed::PrefixedZip(prefix) => {
            reader.consume(prefix);
            zip::read_after(&mut reader, prefix as u64)
        }
        Sniffed::Array => array(&mut reader, size),
        Sniffed::Tar => legacy_torch_tar(&mut reader),
        Sniffed::Other(format) => formats::read(format, &mut reader, size),
    }
}

/// How a legacy `torch.save` file (before 1.6) starts: its magic number
/// 0x1950a86a20f9469cfc6c, pickled with protocol 2 (PROTO 2, LONG1 of 10 bytes).
const LEGACY_TORCH: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// A NumPy `.npy` file: its header, and the pickle after it when the array holds objects.
fn array(reader: &mut dyn BufRead, size: u64) -> Facts {
    let mut facts = Facts::of(Format::Npy);
    let mut head = Vec::new();
    // The magic, the version and the header's length first; then the header, whole.
    let read = (&mut *reader)
        .take(npy::PREFIX as u64)
        .read_to_end(&mut head)
        .and_then(|_| {
            let whole = npy::length(&head).unwrap_or(head.len());
            let more = whole.saturating_sub(head.len()) as u64;
            (&mut *reader).take(more).read_to_end(&mut head)
        });
    if let Err(error) = read {
        let why = format!("the stream failed ({error})");
        facts.add_pickle(pickle::Scan::unreadable(head.len() as u64, why), "");
        return facts;
    }
    match npy::header(&head) {
        Some(Ok(header)) if header.objects => {
            let left = size.saturating_sub(header.length as u64);
            let mut scan = pickle::scan_all(reader, left, pickle::Context::File);
            scan.shift(header.length as u64);
            facts.add_pickle(scan, "");
        }
        Some(Ok(_)) => {}
        Some(Err(why)) => facts.add_pickle(pickle::Scan::unreadable(0, why.to_string()), ""),
        None => return Facts::default(),
    }
    facts
}

/// torch's oldest format (before 0.4), which `torch.load` still reads (it tries `tarfile`
/// on any file that is no zip): a tar whose member `pickle` is the object's pickle and
/// `sys_info` a pickle of the writer's system; `storages` and `tensors` interleave pickles
/// with raw bytes whose lengths only the storage types tell, which envlock does not read: a
/// file that has them is unsafe (fail closed). A tar with none of these is no torch file.
fn legacy_torch_tar(reader: &mut dyn BufRead) -> Facts {
    /// Members looked at: torch writes four.
    const MAX_MEMBERS: usize = 64;
    let mut facts = Facts::of(Format::Torch);
    let mut torch = false;
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(_) => return Facts::default(),
    };
    for (index, entry) in entries.enumerate() {
        let mut entry = match entry {
            Ok(entry) if index < MAX_MEMBERS => entry,
            Ok(_) => {
                let why = format!("the tar has more than {MAX_MEMBERS} members");
                facts.add_pickle(pickle::Scan::unreadable(0, why), "");
                break;
            }
            Err(error) => {
                let why = format!("the tar cannot be read ({error})");
                facts.add_pickle(pickle::Scan::unreadable(0, why), "");
                break;
            }
        };
        let name = entry.path_bytes().into_owned();
        let size = entry.size();
        let member = formats::stream::shown(&name);
        torch |= matches!(
            &name[..],
            b"pickle" | b"sys_info" | b"storages" | b"tensors"
        );
        match &name[..] {
            b"pickle" | b"sys_info" => {
                let mut member_reader = BufReader::new(&mut entry);
                let scan = pickle::scan_all(&mut member_reader, size, pickle::Context::Torch);
                facts.add_pickle(scan, &member);
            }
            b"storages" | b"tensors" => facts.add_pickle(
                pickle::Scan::unreadable(
                    0,
                    "torch's tar format interleaves pickles with raw bytes here, which \
                     envlock does not read"
                        .to_string(),
                ),
                &member,
            ),
            _ => {}
        }
    }
    if torch || !facts.unsafe_calls.is_empty() {
        facts
    } else {
        Facts::default()
    }
}

/// A tar, as Python's `tarfile` tells one (old v7 tars have no magic): the first header's
/// checksum, octal at bytes 148 to 156, is the sum of its 512 bytes with that field as
/// spaces.
fn is_tar(head: &[u8]) -> bool {
    let Some(header) = head.get(..512) else {
        return false;
    };
    let field = &header[148..156];
    let digits: String = (field.iter())
        .map(|&byte| byte as char)
        .filter(|character| !matches!(character, ' ' | '\0'))
        .collect();
    let Ok(declared) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = (header.iter().enumerate())
        .map(|(at, &byte)| {
            if (148..156).contains(&at) {
                32
            } else {
                u32::from(byte)
            }
        })
        .sum();
    header[0] != 0 && sum == declared
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sniffed {
    Pickle,
    Array,
    Tar,
    /// A zip after this many bytes of something else (Python's `zipfile` finds it from the
    /// end; `torch.load` and `numpy.load` look at the first bytes).
    PrefixedZip(usize),
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
    if npy::header(head).is_some() {
        return Some(Sniffed::Array);
    }
    if is_tar(head) {
        return Some(Sniffed::Tar);
    }
    if pickle::sniff(head) {
        return Some(Sniffed::Pickle);
    }
    formats::sniff(head, name)
        .map(Sniffed::Other)
        .or_else(|| zip::start(head).map(Sniffed::PrefixedZip))
}

/// Joins the facts of a folder's files into the folder's: the format of its most telling
/// file by [`precedence`], whatever the order of the files, and everything else together.
pub fn merge(files: impl IntoIterator<Item = (String, Facts)>) -> Facts {
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
        Format::Torchscript => 2,
        Format::Keras => 3,
        Format::Onnx => 4,
        Format::Safetensors => 5,
        Format::Xgboost => 6,
        Format::Lightgbm => 7,
        Format::Joblib => 8,
        Format::Pickle => 9,
        Format::Npz => 10,
        Format::Npy => 11,
        Format::Zip => 12,
        Format::Unknown => 13,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `fixtures/models/torch/`, written by the real torch (`make.py` there).
    macro_rules! torch_file {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../fixtures/models/torch/",
                    $name
                ))
                .as_slice(),
            )
        };
    }

    fn facts_of((name, bytes): (&str, &[u8])) -> Facts {
        read(&mut &bytes[..], bytes.len() as u64, name)
    }

    #[test]
    fn real_torch_files_are_torch_with_imports_and_nothing_unsafe() {
        let files = [
            torch_file!("state-dict.pt"),
            torch_file!("checkpoint.pth"),
            torch_file!("whole-module.pt"),
            torch_file!("legacy.pt"),
        ];
        for file in files {
            let facts = facts_of(file);
            assert_eq!(facts.format, Format::Torch, "{}", file.0);
            assert!(
                facts.unsafe_calls.is_empty(),
                "{}: {:?}",
                file.0,
                facts.unsafe_where
            );
            assert!(
                facts.imports.contains("torch._utils"),
                "{}: {:?}",
                file.0,
                facts.imports
            );
        }
        let module = facts_of(torch_file!("whole-module.pt"));
        assert!(
            module.imports.contains("torch.nn.modules.linear"),
            "{module:?}"
        );
        let script = facts_of(torch_file!("torchscript.pt"));
        assert_eq!(script.format, Format::Torchscript);
        assert!(script.unsafe_calls.is_empty(), "{:?}", script.unsafe_where);
        // TorchScript's classes come from the archive's code, not from Python modules.
        assert!(
            script
                .imports
                .iter()
                .all(|module| !module.starts_with("__torch__")),
            "{:?}",
            script.imports
        );
    }

    #[test]
    fn real_hostile_torch_files_name_the_call() {
        for file in [
            torch_file!("hostile-zip.pt"),
            torch_file!("hostile-legacy.pt"),
        ] {
            let facts = facts_of(file);
            assert_eq!(facts.format, Format::Torch, "{}", file.0);
            let calls: Vec<&str> = facts.unsafe_calls.iter().map(String::as_str).collect();
            assert_eq!(
                calls,
                ["posix.system"],
                "{}: {:?}",
                file.0,
                facts.unsafe_where
            );
        }
    }

    #[test]
    fn torchs_tar_format_reads_its_pickle_and_fails_closed_on_its_storages() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes).unwrap();
        };
        add("sys_info", b"\x80\x02}q\x00.");
        add("pickle", fixture!("hostile-os-system-p2.pkl"));
        let bytes = tar.into_inner().unwrap();
        let facts = read(&mut &bytes[..], bytes.len() as u64, "model.pt");
        assert_eq!(facts.format, Format::Torch);
        let calls: Vec<&str> = facts.unsafe_calls.iter().map(String::as_str).collect();
        assert_eq!(calls, ["os.system"], "{facts:?}");
        // A v7 tar (no magic) holding only `storages`: torch reads those first.
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_old();
        header.set_size(4);
        header.set_cksum();
        tar.append_data(&mut header, "storages", &b"\x80\x02K\x01"[..])
            .unwrap();
        let storages = tar.into_inner().unwrap();
        let facts = read(&mut &storages[..], storages.len() as u64, "model.pt");
        assert_eq!(facts.format, Format::Torch);
        assert!(facts.unsafe_calls.contains(UNREADABLE), "{facts:?}");
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_cksum();
        tar.append_data(&mut header, "notes.txt", &b"hello"[..])
            .unwrap();
        let other = tar.into_inner().unwrap();
        assert_eq!(
            read(&mut &other[..], other.len() as u64, "x.tar"),
            Facts::default()
        );
    }

    /// The peer scanners' test suites and advisories, rebuilt (`fixtures/models/attacks`,
    /// written by its `make.py`): every unsafe case is caught, no benign one is flagged.
    #[test]
    fn the_peer_scanners_attacks_are_caught_and_their_controls_pass() {
        #[derive(serde::Deserialize)]
        struct Cases {
            case: Vec<Case>,
        }
        #[derive(serde::Deserialize)]
        struct Case {
            file: String,
            expect: String,
        }
        let folder =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/attacks");
        let text = std::fs::read_to_string(folder.join("cases.toml")).unwrap();
        let cases: Cases = toml::from_str(&text).unwrap();
        assert!(cases.case.len() > 200);
        let mut wrong = Vec::new();
        for case in &cases.case {
            let bytes = std::fs::read(folder.join(&case.file)).unwrap();
            let facts = read(&mut &bytes[..], bytes.len() as u64, &case.file);
            let verdict = if facts.unsafe_calls.is_empty() {
                "safe"
            } else {
                "unsafe"
            };
            if verdict != case.expect {
                wrong.push(format!(
                    "{}: {verdict} ({:?})",
                    case.file, facts.unsafe_where
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn an_array_header_longer_than_the_first_read_is_read_whole() {
        let mut text = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }".to_string();
        text.push_str(&" ".repeat(100_000));
        text.push('\n');
        let mut array = b"\x93NUMPY\x02\x00".to_vec();
        array.extend((text.len() as u32).to_le_bytes());
        array.extend(text.as_bytes());
        array.extend(1.5f64.to_le_bytes());
        let facts = read(&mut &array[..], array.len() as u64, "big.npy");
        assert_eq!(facts, Facts::of(Format::Npy));
    }

    #[test]
    fn every_pickle_stream_of_a_file_is_read() {
        let benign = b"\x80\x04K\x01.";
        let system = fixture!("hostile-posix-system-p4.pkl");
        let two = [&benign[..], system].concat();
        let alone = read(&mut &system[..], system.len() as u64, "model.pkl");
        let facts = read(&mut &two[..], two.len() as u64, "model.pkl");
        assert_eq!(facts.unsafe_calls, alone.unsafe_calls);
        // The same sentences, 5 bytes on.
        let shifted: Vec<String> = (alone.unsafe_where.iter())
            .map(|at| {
                let (offset, rest) = at["byte ".len()..].split_once(':').unwrap();
                format!("byte {}:{rest}", offset.parse::<u64>().unwrap() + 5)
            })
            .collect();
        assert_eq!(facts.unsafe_where, shifted);
        let trailing = [&benign[..], b"not a pickle"].concat();
        let facts = read(&mut &trailing[..], trailing.len() as u64, "model.pkl");
        assert!(facts.unsafe_calls.contains(UNREADABLE), "{facts:?}");
    }

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
