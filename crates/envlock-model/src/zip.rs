//! Zip models: `torch.save`'s archives (and `torch.jit.save`'s TorchScript), Keras 3's
//! `.keras` files, NumPy's `.npz`, and any other zip that holds pickles.
//!
//! The zip is read from its local headers as the bytes stream past (a model may be 10 GB and
//! is read once, while it is hashed), and its central directory, at the end, is checked
//! against them. Loaders read a zip by its central directory (torch through miniz, Keras
//! through Python's `zipfile`), a streaming scan by its local headers: a zip whose two
//! disagree (a second `data.pkl` under the same name, a central entry no local header
//! matches, an encrypted entry, bytes after the end record) could show the scan one pickle
//! and the loader another, so a torch or Keras zip that does is unsafe (fail closed).
//!
//! Every entry that is a pickle is scanned, whatever its name: by its name (`*.pkl`,
//! `*.pickle`) it is read whole; any other entry by its first bytes (a pickle, or a NumPy
//! array of objects, whose payload is a pickle). Only torch's storages (`<folder>/data/N`),
//! raw tensor bytes no loader unpickles, are skipped unseen.
//!
//! Layouts, as the writers lay them out:
//! - torch (`PyTorchStreamWriter`, miniz in streaming mode): one top folder (`archive/`, or
//!   the file's stem), stored entries whose data starts on a 64-byte boundary (an extra
//!   field, `FB`, pads the local header). torch 2.x sets flag 0x0808 on every entry: the
//!   sizes and CRC in the local header are 0 and follow the data in a data descriptor
//!   (`PK\x07\x08`, CRC, sizes; 64-bit sizes with a zip64 extra field). A stored entry's end
//!   is found as a stream reader can: the first descriptor signature whose CRC and sizes
//!   are those of the bytes before it and that a zip header follows; the central directory
//!   checks it at the end (an entry cut short by a descriptor forged inside the data
//!   disagrees with it). Members: `archive/data.pkl` (the pickle `torch.load` runs),
//!   `archive/data/0`… (storages), `archive/version`, `archive/byteorder`,
//!   `archive/.data/serialization_id`, `archive/.format_version`,
//!   `archive/.storage_alignment`. `torch.jit.save` adds `archive/code/…` (TorchScript
//!   source) and `archive/constants.pkl`.
//! - Keras 3 (`saving_lib`, through `zipfile`): `metadata.json` (`keras_version`),
//!   `config.json` (the model's serialised config) and `model.weights.h5` at the root;
//!   sizes in the local headers when written to a file, a data descriptor after each
//!   entry when written to a stream that cannot seek.

use std::collections::HashSet;
use std::io::{BufRead, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};
use serde_json::Value;

use super::compress::inflation_limit;
use super::formats::plausible_version;
use super::formats::stream::{shown, Broken, Stream};
use super::{npy, pickle, Facts, Format, UNREADABLE};

const LOCAL: [u8; 4] = *b"PK\x03\x04";
const CENTRAL: [u8; 4] = *b"PK\x01\x02";
const END: [u8; 4] = *b"PK\x05\x06";
const END_ZIP64: [u8; 4] = *b"PK\x06\x06";
const LOCATOR_ZIP64: [u8; 4] = *b"PK\x06\x07";
const DESCRIPTOR: [u8; 4] = *b"PK\x07\x08";

/// General purpose flag: the entry is encrypted (its bytes cannot be read, and a loader
/// with the password would read others than the scan).
const FLAG_ENCRYPTED: u16 = 1;
/// General purpose flag: the sizes follow the data, in a data descriptor.
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// The extra field holding 64-bit sizes and offsets.
const ZIP64_EXTRA: u16 = 0x0001;
/// A 32-bit size or offset whose value is in the zip64 extra field.
const IN_ZIP64: u32 = u32::MAX;

/// Entries read: torch writes one storage per tensor (a few thousand for the largest
/// models), Keras a handful; beyond this a zip is not a model and is not read further.
const MAX_ENTRIES: usize = 200_000;
/// Bytes of entry names kept (each is at most 64 KiB, as its length field is 16 bits).
const MAX_NAME_BYTES: usize = 32 * 1024 * 1024;
/// Bytes kept of an entry that is read (a `data.pkl`, Keras's two JSON files): torch keeps
/// tensors out of its pickle, so even large models' pickles are a few MB.
const MAX_KEPT: usize = 64 * 1024 * 1024;
/// Pickles scanned (torch has one or two; each is at most `MAX_KEPT`).
const MAX_PICKLES: usize = 64;
/// Bytes of an entry looked at to tell whether it holds a pickle (or a NumPy array of
/// objects) when its name does not say.
const HEAD: usize = 4096;
/// Bytes of the zip64 end record's extensible data (no writer of models writes any).
const MAX_END_EXTRA: u64 = 64 * 1024;
/// Disagreements between the headers told, one sentence each, before "and N more".
const MAX_DOUBTS_TOLD: usize = 8;

/// Why a disagreement makes the zip's contents unknown, for the sentences.
const WHY_DOUBT: &str = "the loader reads a zip by its central directory and this scan by \
its local headers, so what it would load cannot be known";

/// Reads a zip model from its local headers as it streams, checked against its central
/// directory. The zip's own records bound what is read of it (not the file's size); the caller drains
/// the rest.
pub(crate) fn read(reader: &mut dyn BufRead) -> Facts {
    read_nested(reader, 0)
}

/// Reads a zip that starts `prefix` bytes into its file, after bytes of something else:
/// Python's `zipfile` reads it (from its end record), a loader that looks at the first bytes
/// reads the file as another format, so the scan cannot know which: unsafe.
pub(crate) fn read_after(reader: &mut dyn BufRead, prefix: u64) -> Facts {
    let mut stream = Stream::new(reader);
    let mut archive = Archive::default();
    archive.doubt(
        0,
        format!("{prefix} bytes of something else precede the zip's first header"),
    );
    let broken = archive.walk(&mut stream).err();
    archive.facts(broken)
}

/// Where a zip starts in a head that starts with something else: a local header with a
/// version, flags and method a writer sets, and a name of printable characters.
pub(crate) fn start(head: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(head, &LOCAL).find(|&at| {
        let Some(header) = head.get(at + 4..at + 30) else {
            return false;
        };
        let name_length = usize::from(u16_at(header, 22));
        let name = head.get(at + 30..at + 30 + name_length);
        u16_at(header, 0) <= 63
            && matches!(u16_at(header, 4), STORED | DEFLATED)
            && name.is_some_and(|name| {
                !name.is_empty() && name.iter().all(|byte| byte.is_ascii_graphic())
            })
    })
}

/// Reads a zip `depth` zips deep.
fn read_nested(reader: &mut dyn BufRead, depth: u8) -> Facts {
    let mut stream = Stream::new(reader);
    let mut archive = Archive {
        depth,
        inflation_left: (depth > 0).then_some(NESTED_INFLATION),
        ..Archive::default()
    };
    let broken = archive.walk(&mut stream).err();
    archive.facts(broken)
}

/// Zips read inside zips: a loader that opens a zip member as a zip (and scanners that
/// do) would find its pickles.
const MAX_NESTING: u8 = 2;
/// Zips read inside one zip.
const MAX_NESTED: usize = 4;
/// Bytes a zip inside a zip may inflate to in all: each level may inflate a thousandfold,
/// so without a budget of their own nested zips multiply the work a small file causes.
const NESTED_INFLATION: u64 = 4 * MAX_KEPT as u64;

/// One entry, as its local header (and data descriptor) says.
#[derive(Debug)]
struct Entry {
    name: Vec<u8>,
    /// Offset of its local header.
    offset: u64,
    flags: u16,
    method: u16,
    compressed: u64,
    uncompressed: u64,
    /// The CRC its local header (or data descriptor) declares.
    crc: u32,
    /// The CRC of its bytes, when they were all read.
    computed_crc: Option<u32>,
    /// Its sizes were in a zip64 extra field (so its data descriptor's are 64-bit).
    zip64: bool,
    /// A central directory entry has named it.
    listed: bool,
}

/// The entries whose bytes are read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kept {
    /// A pickle by its name (`*.pkl`, `*.pickle`: torch's `data.pkl` and `constants.pkl`),
    /// read whole whatever it holds.
    Pickle,
    /// Any other entry but a storage: read whole when its first bytes are a pickle's or a
    /// NumPy array's of objects.
    Sniffed,
    /// Keras's `metadata.json`.
    Metadata,
    /// Keras's `config.json`.
    Config,
}

/// A kept entry's bytes, or why they could not be read.
type Bytes = Result<Vec<u8>, Lost>;

/// Why a kept entry's bytes could not be kept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Lost {
    /// The stream broke inside the entry (it says why).
    #[error("{}", .0.why)]
    Broken(Broken),
    /// The entry is larger than [`MAX_KEPT`].
    #[error("it is larger than {max} bytes, more than envlock reads of it", max = MAX_KEPT)]
    TooLarge,
}

/// What the walk has seen.
#[derive(Debug, Default)]
struct Archive {
    /// In the order (and so by the offset) of their local headers.
    entries: Vec<Entry>,
    /// Names seen, lower-cased: miniz finds torch's records ignoring case.
    names: HashSet<Vec<u8>>,
    name_bytes: usize,
    /// Each pickle (its entry's name) and what its scan found.
    pickles: Vec<(Vec<u8>, pickle::Scan)>,
    /// Each zip inside it (its entry's name) and what it holds.
    nested: Vec<(Vec<u8>, Facts)>,
    /// How many zips this one is inside.
    depth: u8,
    /// Bytes its deflated entries may still inflate to: a nested zip's budget (the
    /// outermost zip has none beyond each entry's ratio).
    inflation_left: Option<u64>,
    /// Entries named as NumPy arrays (`.npy`): an `.npz` has no other.
    arrays: usize,
    /// The bytes of each pickle as it was handed to the scan.
    #[cfg(test)]
    handed_over: Vec<Vec<u8>>,
    metadata: Option<Bytes>,
    config: Option<Bytes>,
    /// Keras's `model.weights.h5` (or `.npz`) is there.
    weights: bool,
    /// The name of the central directory's first entry: torch's top folder is its.
    first_listed: Option<Vec<u8>>,
    /// Disagreements and unreadable entries (the first `MAX_DOUBTS_TOLD`), and how many.
    doubts: Vec<String>,
    doubt_count: usize,
}

impl Archive {
    fn doubt(&mut self, offset: u64, what: String) {
        self.doubt_count += 1;
        if self.doubts.len() < MAX_DOUBTS_TOLD {
            self.doubts.push(format!("byte {offset}: {what}"));
        }
    }

    /// Walks the local headers, then the central directory and its end records.
    fn walk(&mut self, stream: &mut Stream) -> Result<(), Broken> {
        loop {
            let at = stream.offset();
            let signature = stream.array::<4>()?;
            match signature {
                LOCAL => self.local(stream, at)?,
                CENTRAL | END | END_ZIP64 => {
                    return self.central_directory(stream, at, signature);
                }
                _ => {
                    return Err(Broken {
                        offset: at,
                        why: "no zip header is where the previous entry ends".to_string(),
                    })
                }
            }
        }
    }

    /// One entry: its local header (the signature read) and its data.
    fn local(&mut self, stream: &mut Stream, at: u64) -> Result<(), Broken> {
        if self.entries.len() == MAX_ENTRIES {
            return Err(Broken {
                offset: at,
                why: format!("the zip has more than {MAX_ENTRIES} entries"),
            });
        }
        let header = stream.array::<26>()?;
        let flags = u16_at(&header, 2);
        let method = u16_at(&header, 4);
        let crc = u32_at(&header, 10);
        let compressed = u32_at(&header, 14);
        let uncompressed = u32_at(&header, 18);
        let name = stream.bytes(usize::from(u16_at(&header, 22)))?;
        let extra = stream.bytes(usize::from(u16_at(&header, 24)))?;
        self.name_bytes += name.len();
        if self.name_bytes > MAX_NAME_BYTES {
            return Err(Broken {
                offset: at,
                why: format!("the zip's entry names are longer than {MAX_NAME_BYTES} bytes"),
            });
        }
        let zip64 = zip64_values(&extra, [uncompressed, compressed, 0]);
        let mut entry = Entry {
            offset: at,
            flags,
            method,
            uncompressed: zip64.values[0],
            compressed: zip64.values[1],
            crc,
            computed_crc: None,
            zip64: zip64.present,
            listed: false,
            name,
        };
        if !self.names.insert(entry.name.to_ascii_lowercase()) {
            let what = format!("a second entry is named `{}`", shown(&entry.name));
            self.doubt(at, what);
        }
        let mut kept = kept(&entry.name);
        if flags & FLAG_ENCRYPTED != 0 {
            let what = format!("`{}` is encrypted", shown(&entry.name));
            self.doubt(at, what);
            kept = None;
        }
        if !matches!(method, STORED | DEFLATED) {
            let what = format!(
                "`{}` is compressed with method {method}, which envlock does not read",
                shown(&entry.name)
            );
            self.doubt(at, what);
            kept = None;
        }
        if matches!(&entry.name[..], b"model.weights.h5" | b"model.weights.npz") {
            self.weights = true;
        }
        if entry.name.to_ascii_lowercase().ends_with(b".npy") {
            self.arrays += 1;
        }
        let mut keeper = Keeper::new(kept);
        let outcome = self.data(stream, &mut entry, &mut keeper);
        if let Some(computed) = entry.computed_crc.filter(|&computed| computed != entry.crc) {
            let what = format!(
                "the bytes of `{}` do not match the CRC its headers give ({:08x}, not {:08x})",
                shown(&entry.name),
                computed,
                entry.crc
            );
            self.doubt(at, what);
        }
        let name = entry.name.clone();
        self.entries.push(entry);
        if let Err(broken) = outcome {
            if kept == Some(Kept::Pickle) {
                self.scan(name, at, Err(Lost::Broken(broken.clone())));
            }
            return Err(broken);
        }
        match (kept, keeper.finish()) {
            (Some(Kept::Pickle | Kept::Sniffed), Some(_)) if self.pickles.len() == MAX_PICKLES => {
                let what = format!(
                    "`{}` may hold a pickle, past the first {MAX_PICKLES}, which are all \
                     envlock reads",
                    shown(&name)
                );
                self.doubt(at, what);
            }
            (Some(Kept::Pickle | Kept::Sniffed), Some(bytes)) => self.scan(name, at, bytes),
            (Some(Kept::Metadata), Some(bytes)) => self.metadata = Some(bytes),
            (Some(Kept::Config), Some(bytes)) => self.config = Some(bytes),
            _ => {}
        }
        Ok(())
    }

    /// Hands an entry's bytes to the pickle machine, whole: a pickle (every stream in it),
    /// or a NumPy array's header and, for an array of objects, the pickle after it.
    fn scan(&mut self, name: Vec<u8>, at: u64, bytes: Bytes) {
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(why) => {
                self.pickles
                    .push((name, pickle::Scan::unreadable(0, why.to_string())));
                return;
            }
        };
        if bytes.starts_with(&LOCAL) {
            if self.depth == MAX_NESTING || self.nested.len() == MAX_NESTED {
                let what = format!(
                    "`{}` is a zip past the {MAX_NESTED} envlock reads in a zip, or inside \
                     {MAX_NESTING} zips, deeper than it reads",
                    shown(&name)
                );
                self.doubt(at, what);
            } else {
                let facts = read_nested(&mut &bytes[..], self.depth + 1);
                if facts.format != Format::Unknown {
                    self.nested.push((name, facts));
                }
            }
            return;
        }
        if let Some(array) = npy::header(&bytes) {
            match array {
                Ok(header) if header.objects => {
                    let payload = &bytes[header.length..];
                    let mut scan = pickle::scan_all(
                        &mut &payload[..],
                        payload.len() as u64,
                        pickle::Context::File,
                    );
                    scan.shift(header.length as u64);
                    #[cfg(test)]
                    self.handed_over.push(payload.to_vec());
                    self.pickles.push((name, scan));
                }
                Ok(_) => {}
                Err(why) => self
                    .pickles
                    .push((name, pickle::Scan::unreadable(0, why.to_string()))),
            }
            return;
        }
        let context = if kept(&name) == Some(Kept::Pickle) && is_torch_pickle(&name) {
            pickle::Context::Torch
        } else {
            pickle::Context::File
        };
        let scan = pickle::scan_all(&mut &bytes[..], bytes.len() as u64, context);
        #[cfg(test)]
        self.handed_over.push(bytes);
        self.pickles.push((name, scan));
    }

    /// Reads or skips an entry's data (and data descriptor), after its local header,
    /// handing what it reads to `keeper`. An entry whose end cannot be found stops the walk.
    fn data(
        &mut self,
        stream: &mut Stream,
        entry: &mut Entry,
        keeper: &mut Keeper,
    ) -> Result<(), Broken> {
        let start = stream.offset();
        if entry.flags & FLAG_DESCRIPTOR != 0 {
            let (size, crc, wide) = match entry.method {
                DEFLATED => {
                    let inflated = inflate(stream, None, keeper, &mut self.inflation_left)?;
                    (inflated.size, inflated.crc, entry.zip64)
                }
                STORED => {
                    let found = stored_until_descriptor(stream, keeper)?;
                    (found.size, Some(found.crc), found.wide)
                }
                method => {
                    return Err(stream.broken(format!(
                        "`{}` is compressed with method {method} and has its size after its \
                         data: where it ends cannot be found",
                        shown(&entry.name)
                    )))
                }
            };
            entry.compressed = stream.offset() - start;
            entry.uncompressed = size;
            entry.computed_crc = crc;
            return self.descriptor(stream, entry, wide);
        }
        let end = start.saturating_add(entry.compressed);
        if entry.method == STORED && entry.compressed != entry.uncompressed {
            let what = format!(
                "`{}` is stored, but its local header gives it two sizes",
                shown(&entry.name)
            );
            self.doubt(start, what);
        }
        match entry.method {
            STORED if keeper.wants() => {
                let head_length =
                    usize::try_from(entry.compressed).map_or(HEAD, |size| size.min(HEAD));
                let head = stream.look_ahead(head_length)?;
                keeper.decide_on(&head);
                if keeper.wants() {
                    match usize::try_from(entry.compressed) {
                        Ok(length) if length <= MAX_KEPT => {
                            let bytes = stream.bytes(length)?;
                            let mut crc = Crc::new();
                            crc.update(&bytes);
                            entry.computed_crc = Some(crc.sum());
                            keeper.push(&bytes);
                        }
                        _ => keeper.too_large(),
                    }
                }
            }
            DEFLATED if keeper.wants() => match inflate(
                stream,
                Some(entry.compressed),
                keeper,
                &mut self.inflation_left,
            ) {
                Ok(inflated) => entry.computed_crc = inflated.crc,
                // A stream that failed or ended fails the skip below as well.
                Err(broken) => keeper.failed(Lost::Broken(broken)),
            },
            _ => {}
        }
        stream.skip(end.saturating_sub(stream.offset()))
    }

    /// The data descriptor after an entry (`wide`: with 64-bit sizes), checked against
    /// what reading the entry found.
    fn descriptor(
        &mut self,
        stream: &mut Stream,
        entry: &mut Entry,
        wide: bool,
    ) -> Result<(), Broken> {
        let at = stream.offset();
        let mut first = stream.array::<4>()?;
        if first == DESCRIPTOR {
            first = stream.array::<4>()?;
        }
        entry.crc = u32::from_le_bytes(first);
        let (compressed, uncompressed) = if wide {
            let sizes = stream.array::<16>()?;
            (u64_at(&sizes, 0), u64_at(&sizes, 8))
        } else {
            let sizes = stream.array::<8>()?;
            (u64::from(u32_at(&sizes, 0)), u64::from(u32_at(&sizes, 4)))
        };
        if (compressed, uncompressed) != (entry.compressed, entry.uncompressed) {
            let what = format!(
                "the data descriptor of `{}` gives other sizes than its data has",
                shown(&entry.name)
            );
            self.doubt(at, what);
        }
        Ok(())
    }

    /// The central directory, from its first record (`signature`, at `start`), to the end
    /// of the file.
    fn central_directory(
        &mut self,
        stream: &mut Stream,
        start: u64,
        mut signature: [u8; 4],
    ) -> Result<(), Broken> {
        let mut at = start;
        let mut listed = 0u64;
        while signature == CENTRAL {
            listed += 1;
            if listed > MAX_ENTRIES as u64 {
                return Err(Broken {
                    offset: at,
                    why: format!("the central directory lists more than {MAX_ENTRIES} entries"),
                });
            }
            self.central(stream, at)?;
            at = stream.offset();
            signature = stream.array::<4>()?;
        }
        let directory_size = at - start;
        // (entries, directory size, directory offset), from the zip64 end record.
        let mut zip64 = None;
        if signature == END_ZIP64 {
            zip64 = Some(self.zip64_end(stream, at)?);
            at = stream.offset();
            signature = stream.array::<4>()?;
        }
        if signature != END {
            return Err(Broken {
                offset: at,
                why: "the central directory is not followed by its end record".to_string(),
            });
        }
        let end = stream.array::<18>()?;
        stream.skip(u64::from(u16_at(&end, 16)))?;
        if u16_at(&end, 0) != 0 || u16_at(&end, 2) != 0 {
            self.doubt(at, "the zip spans several disks".to_string());
        }
        let (entries, size, offset) = zip64.unwrap_or((
            u64::from(u16_at(&end, 6)),
            u64::from(u32_at(&end, 8)),
            u64::from(u32_at(&end, 12)),
        ));
        if entries != listed {
            let what = format!(
                "the end record counts {entries} entries; the central directory lists {listed}"
            );
            self.doubt(at, what);
        }
        if (offset, size) != (start, directory_size) {
            let what = format!(
                "the end record puts the central directory at bytes {offset} to {}; it is \
                 at bytes {start} to {at}",
                offset.saturating_add(size)
            );
            self.doubt(at, what);
        }
        if stream.peek()?.is_some() {
            let what = "bytes follow the end record: a loader that looks for the end record \
                        from the end of the file could find another zip there"
                .to_string();
            self.doubt(stream.offset(), what);
        }
        let unlisted: Vec<(u64, String)> = (self.entries.iter())
            .filter(|entry| !entry.listed)
            .map(|entry| (entry.offset, shown(&entry.name)))
            .collect();
        for (offset, name) in unlisted {
            let what = format!("the central directory does not list `{name}`");
            self.doubt(offset, what);
        }
        Ok(())
    }

    /// The zip64 end record (its signature read, at `at`) and its locator: the counts it
    /// gives (entries, directory size, directory offset).
    fn zip64_end(&mut self, stream: &mut Stream, mut at: u64) -> Result<(u64, u64, u64), Broken> {
        let record_size = u64::from_le_bytes(stream.array::<8>()?);
        let record = stream.array::<44>()?;
        let extensible = record_size
            .checked_sub(44)
            .filter(|&extra| extra <= MAX_END_EXTRA);
        let Some(extensible) = extensible else {
            return Err(Broken {
                offset: at,
                why: format!("the zip64 end record gives itself {record_size} bytes"),
            });
        };
        stream.skip(extensible)?;
        if u32_at(&record, 4) != 0 || u32_at(&record, 8) != 0 {
            self.doubt(at, "the zip spans several disks".to_string());
        }
        let counts = (
            u64_at(&record, 20),
            u64_at(&record, 28),
            u64_at(&record, 36),
        );
        let record_at = at;
        at = stream.offset();
        if stream.array::<4>()? != LOCATOR_ZIP64 {
            return Err(Broken {
                offset: at,
                why: "the zip64 end record is not followed by its locator".to_string(),
            });
        }
        let locator = stream.array::<16>()?;
        if u64_at(&locator, 4) != record_at {
            let what = "the zip64 locator points elsewhere than its end record".to_string();
            self.doubt(at, what);
        }
        Ok(counts)
    }

    /// One central directory entry (its signature read), checked against the local header
    /// it points at.
    fn central(&mut self, stream: &mut Stream, at: u64) -> Result<(), Broken> {
        let header = stream.array::<42>()?;
        let flags = u16_at(&header, 4);
        let method = u16_at(&header, 6);
        let crc = u32_at(&header, 12);
        let name = stream.bytes(usize::from(u16_at(&header, 24)))?;
        let extra = stream.bytes(usize::from(u16_at(&header, 26)))?;
        stream.skip(u64::from(u16_at(&header, 28)))?;
        let values = zip64_values(
            &extra,
            [
                u32_at(&header, 20),
                u32_at(&header, 16),
                u32_at(&header, 38),
            ],
        )
        .values;
        let [uncompressed, compressed, offset] = values;
        if self.first_listed.is_none() {
            self.first_listed = Some(name.clone());
        }
        let Ok(index) = self
            .entries
            .binary_search_by_key(&offset, |entry| entry.offset)
        else {
            let what = format!(
                "the central directory lists `{}` at byte {offset}, where no local header is",
                shown(&name)
            );
            self.doubt(at, what);
            return Ok(());
        };
        let entry = &mut self.entries[index];
        let twice = entry.listed;
        entry.listed = true;
        let local_name = shown(&entry.name);
        let same_name = entry.name == name;
        let same_data = (entry.method, entry.compressed, entry.uncompressed)
            == (method, compressed, uncompressed);
        let newly_encrypted = flags & FLAG_ENCRYPTED != 0 && entry.flags & FLAG_ENCRYPTED == 0;
        let same_crc = entry.crc == crc;
        if twice {
            let what = format!("the central directory lists the entry at byte {offset} twice");
            self.doubt(at, what);
        }
        if !same_name {
            let what = format!(
                "the central directory names the entry at byte {offset} `{}`; its local \
                 header names it `{local_name}`",
                shown(&name)
            );
            self.doubt(at, what);
        } else if !same_data {
            let what = format!(
                "the central directory gives `{local_name}` another method or size than its \
                 local header"
            );
            self.doubt(at, what);
        }
        if same_name && same_data && !same_crc {
            let what = format!(
                "the central directory gives `{local_name}` another CRC than its local header"
            );
            self.doubt(at, what);
        }
        if newly_encrypted {
            let what = format!("the central directory says `{local_name}` is encrypted");
            self.doubt(at, what);
        }
        Ok(())
    }

    /// What the zip is, from what the walk saw (`broken`: where it stopped early).
    fn facts(self, broken: Option<Broken>) -> Facts {
        let first = (self.first_listed.as_ref()).or(self.entries.first().map(|entry| &entry.name));
        let top = first.and_then(|name| {
            let slash = name.iter().position(|&byte| byte == b'/')?;
            Some(name[..=slash].to_ascii_lowercase())
        });
        let in_top = |name: &[u8], rest: &[u8]| {
            let name = name.to_ascii_lowercase();
            top.as_ref().and_then(|top| name.strip_prefix(&top[..])) == Some(rest)
        };
        let torch = (self.pickles.iter()).any(|(name, _)| in_top(name, b"data.pkl"));
        let torchscript = torch
            && self.entries.iter().any(|entry| {
                in_top(&entry.name, b"constants.pkl")
                    || (top.as_ref()).is_some_and(|top| {
                        entry
                            .name
                            .to_ascii_lowercase()
                            .starts_with(&[&top[..], b"code/"].concat())
                    })
            });
        let keras_version = match &self.metadata {
            Some(Ok(metadata)) if self.config.is_some() || self.weights => keras_version(metadata),
            _ => None,
        };
        let all_arrays = self.arrays > 0 && self.arrays == self.entries.len();
        let mut facts = Facts::default();
        if torchscript {
            facts.format = Format::Torchscript;
        } else if torch {
            facts.format = Format::Torch;
        } else if let Some(version) = keras_version {
            facts.format = Format::Keras;
            facts.written_by.insert("keras".to_string(), version);
            match &self.config {
                Some(Ok(config)) => keras_config(config, &mut facts),
                Some(Err(why)) => unreadable(&mut facts, format!("`config.json`: {why}")),
                None => {}
            }
        } else if all_arrays {
            facts.format = Format::Npz;
        } else if !self.pickles.is_empty()
            || !self.nested.is_empty()
            || self.doubt_count > 0
            || (broken.is_some() && !self.entries.is_empty())
        {
            // A zip of pickles that no framework names (whatever loads it unpickles them),
            // or one that cannot be trusted to hold none: its headers disagree, or an entry's
            // end cannot be found (a loader reading by the central directory reads on).
            facts.format = Format::Zip;
        } else {
            return facts;
        }
        for (name, scan) in self.pickles {
            facts.add_pickle(scan, &shown(&name));
        }
        for (name, inner) in self.nested {
            let name = shown(&name);
            facts.imports.extend(inner.imports);
            facts.written_by.extend(inner.written_by);
            facts.unsafe_calls.extend(inner.unsafe_calls);
            (facts.unsafe_where).extend(
                inner
                    .unsafe_where
                    .iter()
                    .map(|at| format!("`{name}`: {at}")),
            );
        }
        for doubt in &self.doubts {
            unreadable(&mut facts, format!("{doubt}; {WHY_DOUBT}"));
        }
        if self.doubt_count > self.doubts.len() {
            let more = self.doubt_count - self.doubts.len();
            unreadable(
                &mut facts,
                format!("and {more} more disagreements in the zip"),
            );
        }
        if let Some(broken) = broken {
            unreadable(
                &mut facts,
                format!(
                    "{}; the rest of the zip cannot be read, so what loading it would run \
                     cannot be known",
                    broken.sentence()
                ),
            );
        }
        facts
    }
}

/// Marks `facts` unsafe because part of the zip cannot be read or trusted.
fn unreadable(facts: &mut Facts, sentence: String) {
    facts.unsafe_calls.insert(UNREADABLE.to_string());
    facts.unsafe_where.push(sentence);
}

/// Which entries are read, by name: Keras's JSON files at the root; pickles by their
/// extension (`data.pkl`, `constants.pkl`, any `*.pkl` or `*.pickle`, in any case: miniz
/// finds torch's records so); every other entry by its first bytes, but torch's storages
/// (`<folder>/data/…`) and folders.
fn kept(name: &[u8]) -> Option<Kept> {
    match name {
        b"metadata.json" => return Some(Kept::Metadata),
        b"config.json" => return Some(Kept::Config),
        _ => {}
    }
    let name = name.to_ascii_lowercase();
    if name.ends_with(b".pkl") || name.ends_with(b".pickle") {
        return Some(Kept::Pickle);
    }
    if name.ends_with(b"/") || is_storage(&name) {
        return None;
    }
    Some(Kept::Sniffed)
}

/// torch's storages: `<folder>/data/<key>`, raw tensor bytes `torch.load` maps, never
/// unpickles.
fn is_storage(name: &[u8]) -> bool {
    let mut parts = name.split(|&byte| byte == b'/');
    let (Some(top), Some(b"data"), Some(key), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !top.is_empty() && !key.is_empty()
}

/// A pickle torch's own unpickler reads (`<folder>/data.pkl`, `<folder>/constants.pkl`),
/// in which persistent ids name storages.
fn is_torch_pickle(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    let Some(slash) = name.iter().position(|&byte| byte == b'/') else {
        return false;
    };
    slash > 0 && matches!(&name[slash + 1..], b"data.pkl" | b"constants.pkl")
}

/// Sizes and offset of an entry: `values` as its header gives them, each replaced by the
/// zip64 extra field's when it is `IN_ZIP64` and the field holds it (in the field's order:
/// uncompressed size, compressed size, local header offset).
struct Zip64 {
    values: [u64; 3],
    present: bool,
}

fn zip64_values(extra: &[u8], header: [u32; 3]) -> Zip64 {
    let mut values = header.map(u64::from);
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = u16_at(rest, 0);
        let length = usize::from(u16_at(rest, 2));
        let Some(field) = rest.get(4..4 + length) else {
            break;
        };
        if id == ZIP64_EXTRA {
            let mut field = field;
            for (value, &marked) in values.iter_mut().zip(&header) {
                if marked != IN_ZIP64 {
                    continue;
                }
                let Some((bytes, tail)) = field.split_first_chunk::<8>() else {
                    break;
                };
                *value = u64::from_le_bytes(*bytes);
                field = tail;
            }
            return Zip64 {
                values,
                present: true,
            };
        }
        rest = &rest[4 + length..];
    }
    Zip64 {
        values,
        present: false,
    }
}

/// Keras's version, from `metadata.json`.
fn keras_version(metadata: &[u8]) -> Option<String> {
    let metadata: Value = serde_json::from_slice(metadata).ok()?;
    plausible_version(metadata.get("keras_version")?.as_str()?)
}

/// What Keras's `config.json` makes it import and run: every `"module"` it names (Keras
/// imports them to find the classes), each `Lambda` layer, and any function kept as Python
/// bytecode (`"class_name": "__lambda__"`, which Keras 3 refuses unless loaded with
/// `safe_mode=False`).
fn keras_config(config: &[u8], facts: &mut Facts) {
    // serde_json stops at 128 levels of nesting, so the walk below is bounded too.
    match serde_json::from_slice::<Value>(config) {
        Ok(config) => keras_object(&config, false, facts),
        Err(error) => unreadable(
            facts,
            format!(
                "`config.json` is not JSON ({error}), so what Keras would build cannot be known"
            ),
        ),
    }
}

/// Walks one value of Keras's config (`in_lambda`: inside a `Lambda` layer's config).
fn keras_object(value: &Value, in_lambda: bool, facts: &mut Facts) {
    match value {
        Value::Array(items) => {
            for item in items {
                keras_object(item, in_lambda, facts);
            }
        }
        Value::Object(object) => {
            if let Some(module) = object.get("module").and_then(Value::as_str) {
                if is_module_name(module) {
                    facts.imports.insert(module.to_string());
                }
            }
            let class_name = object.get("class_name").and_then(Value::as_str);
            let lambda_layer = class_name == Some("Lambda");
            if lambda_layer {
                let name = (object.get("config"))
                    .and_then(|config| config.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let function = (object.get("config")).and_then(|config| config.get("function"));
                let bytecode = function.and_then(|function| function.get("class_name"))
                    == Some(&Value::from("__lambda__"));
                let what = if bytecode {
                    "holds a Python function as bytecode; Keras runs it only when loaded with \
                     `safe_mode=False`"
                } else {
                    "calls a Python function when the model runs"
                };
                facts.unsafe_where.push(format!(
                    "`config.json`: the `Lambda` layer `{}` {what}",
                    shown(name.as_bytes())
                ));
                facts.unsafe_calls.insert("keras.layers.Lambda".to_string());
            } else if class_name == Some("__lambda__") && !in_lambda {
                facts.unsafe_where.push(
                    "`config.json`: a Python function kept as bytecode, which Keras loads \
                     (`marshal.loads`) only with `safe_mode=False`"
                        .to_string(),
                );
                facts.unsafe_calls.insert("marshal.loads".to_string());
            }
            for item in object.values() {
                keras_object(item, in_lambda || lambda_layer, facts);
            }
        }
        _ => {}
    }
}

/// A dotted Python module name (what `importlib.import_module` could import).
fn is_module_name(text: &str) -> bool {
    /// Longer names are not modules a model names.
    const MAX_MODULE: usize = 200;
    text.len() <= MAX_MODULE
        && text.split('.').all(|part| {
            let mut characters = part.chars();
            characters
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
        })
}

/// What is kept of an entry's bytes as they stream past, for its [`Kept`] role.
#[derive(Debug)]
struct Keeper {
    mode: Keeping,
    bytes: Vec<u8>,
    /// Why the bytes are not all there (too large, the stream broke).
    lost: Option<Lost>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Keeping {
    /// Nothing is kept.
    Nothing,
    /// The first [`HEAD`] bytes, until they tell whether the rest is worth keeping.
    Head,
    /// Every byte, up to [`MAX_KEPT`].
    All,
}

impl Keeper {
    fn new(kept: Option<Kept>) -> Keeper {
        let mode = match kept {
            None => Keeping::Nothing,
            Some(Kept::Sniffed) => Keeping::Head,
            Some(_) => Keeping::All,
        };
        Keeper {
            mode,
            bytes: Vec::new(),
            lost: None,
        }
    }

    /// Whether bytes handed over now may be kept.
    fn wants(&self) -> bool {
        self.mode != Keeping::Nothing && self.lost.is_none()
    }

    /// Decides from the entry's first bytes whether to keep it.
    fn decide_on(&mut self, head: &[u8]) {
        if self.mode == Keeping::Head {
            self.mode = if holds_pickle(head) {
                Keeping::All
            } else {
                Keeping::Nothing
            };
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.mode == Keeping::Nothing || self.lost.is_some() {
            return;
        }
        if self.bytes.len() + bytes.len() > MAX_KEPT {
            self.too_large();
            return;
        }
        self.bytes.extend_from_slice(bytes);
        if self.mode == Keeping::Head && self.bytes.len() >= HEAD {
            let head = std::mem::take(&mut self.bytes);
            self.decide_on(&head);
            if self.mode == Keeping::All {
                self.bytes = head;
            }
        }
    }

    fn too_large(&mut self) {
        self.failed(Lost::TooLarge);
    }

    fn failed(&mut self, why: Lost) {
        self.bytes = Vec::new();
        self.lost.get_or_insert(why);
    }

    /// The entry's bytes when it was kept, or why they could not be.
    fn finish(mut self) -> Option<Bytes> {
        if self.mode == Keeping::Head && self.lost.is_none() {
            let head = std::mem::take(&mut self.bytes);
            self.decide_on(&head);
            self.bytes = head;
        }
        match (self.mode, self.lost) {
            (Keeping::Nothing, _) => None,
            (_, Some(why)) => Some(Err(why)),
            (_, None) => Some(Ok(self.bytes)),
        }
    }
}

/// Whether an entry whose name does not say starts as a pickle, as a NumPy array of objects
/// (its payload is a pickle), or as a zip (which may hold either).
fn holds_pickle(head: &[u8]) -> bool {
    if head.starts_with(&LOCAL) {
        return true;
    }
    match npy::header(head) {
        Some(Ok(header)) => header.objects,
        // A header cut by the head is longer than any array's: look at it whole.
        Some(Err(_)) => true,
        None => pickle::sniff(head),
    }
}

/// Where a stored entry with a data descriptor ends.
struct Descriptor {
    /// Bytes of data before it.
    size: u64,
    crc: u32,
    /// Its sizes are 64-bit.
    wide: bool,
}

/// Reads a stored entry whose sizes follow its data to its data descriptor, handing the
/// data to `keeper`, and leaves the stream at the descriptor: its end is the first
/// `PK\x07\x08` followed by the CRC and sizes of the bytes before it (32- or 64-bit) and
/// then by a zip header. The central directory, read at the end, checks the sizes found.
fn stored_until_descriptor(stream: &mut Stream, keeper: &mut Keeper) -> Result<Descriptor, Broken> {
    /// Bytes read per block.
    const BLOCK: usize = 1024 * 1024;
    /// Signature, CRC, two 64-bit sizes and the next header's signature.
    const LONGEST: usize = 4 + 4 + 16 + 4;
    let mut crc = Crc::new();
    // Data before `window` (checked, handed over).
    let mut size = 0u64;
    // Bytes read and not yet known to be data; `checked` of them are in `crc` already.
    let mut window: Vec<u8> = Vec::new();
    let mut checked = 0usize;
    let mut ended = false;
    loop {
        let mut from = 0;
        while let Some(found) = memchr::memmem::find(&window[from..], &DESCRIPTOR) {
            let at = from + found;
            if window.len() - at < LONGEST && !ended {
                break;
            }
            crc.update(&window[checked..at]);
            checked = at;
            let data = size + at as u64;
            if let Some(wide) = descriptor_fits(&window[at..], crc.sum(), data) {
                keeper.push(&window[..at]);
                stream.unread(&window[at..]);
                return Ok(Descriptor {
                    size: data,
                    crc: crc.sum(),
                    wide,
                });
            }
            from = at + 1;
        }
        if ended {
            return Err(stream.broken(
                "the file ends before the data descriptor of a stored entry whose size \
                 follows its data",
            ));
        }
        // All but the last bytes, where a descriptor may start, are data.
        let data = window.len().saturating_sub(LONGEST - 1);
        crc.update(&window[checked.min(data)..data]);
        checked = checked.saturating_sub(data);
        keeper.push(&window[..data]);
        size += data as u64;
        window.drain(..data);
        let kept = window.len();
        window.resize(kept + BLOCK, 0);
        let read = loop {
            match stream.read(&mut window[kept..]) {
                Ok(read) => break read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(stream.broken(format!("the stream failed ({error})"))),
            }
        };
        window.truncate(kept + read);
        ended = read == 0;
    }
}

/// Whether `bytes`, starting with a descriptor's signature, are the descriptor of `size`
/// bytes of data with `crc`, followed by a zip header; `Some(true)` for 64-bit sizes.
fn descriptor_fits(bytes: &[u8], crc: u32, size: u64) -> Option<bool> {
    let header = |at: usize| {
        bytes.get(at..at + 4).is_some_and(|signature| {
            [LOCAL, CENTRAL, END, END_ZIP64]
                .iter()
                .any(|known| known == signature)
        })
    };
    if bytes.len() < 16 || u32_at(bytes, 4) != crc {
        return None;
    }
    if let Ok(narrow) = u32::try_from(size) {
        if u32_at(bytes, 8) == narrow && u32_at(bytes, 12) == narrow && header(16) {
            return Some(false);
        }
    }
    let wide = bytes.len() >= 24 && u64_at(bytes, 8) == size && u64_at(bytes, 16) == size;
    (wide && header(24)).then_some(true)
}

/// The output of inflating an entry.
struct Inflated {
    /// Bytes it inflated to (so far, when it was left early).
    size: u64,
    /// The CRC of what it inflated to, when inflated to its end.
    crc: Option<u32>,
}

/// Inflates the raw deflate stream at the stream's position, reading at most `limit`
/// bytes of it (its compressed size, when known) and no byte after its end, and hands what
/// it inflates to to `keeper`. When the size is known and the keeper wants no more, it
/// stops early (the caller skips to the entry's end).
fn inflate(
    stream: &mut Stream,
    limit: Option<u64>,
    keeper: &mut Keeper,
    budget: &mut Option<u64>,
) -> Result<Inflated, Broken> {
    /// Bytes inflated per call.
    const BLOCK: usize = 64 * 1024;
    let start = stream.offset();
    let mut decompress = Decompress::new(false);
    let mut output = vec![0; BLOCK];
    let mut crc = Crc::new();
    loop {
        let used = stream.offset() - start;
        let before = (decompress.total_in(), decompress.total_out());
        let status = {
            let input = match stream.fill_buf() {
                Ok(input) => input,
                Err(error) => return Err(stream.broken(format!("the stream failed ({error})"))),
            };
            let allowed = limit.map_or(input.len(), |limit| {
                usize::try_from(limit - used).map_or(input.len(), |left| left.min(input.len()))
            });
            if allowed == 0 {
                let why = match limit {
                    Some(_) => "its deflate stream does not end within its compressed size",
                    None => "the file ends inside a deflated entry",
                };
                return Err(stream.broken(why));
            }
            decompress.decompress(&input[..allowed], &mut output, FlushDecompress::None)
        };
        let consumed = (decompress.total_in() - before.0) as usize;
        let made = (decompress.total_out() - before.1) as usize;
        stream.consume(consumed);
        let status = match status {
            Ok(status) => status,
            Err(error) => {
                return Err(stream.broken(format!("its deflate stream is corrupt ({error})")))
            }
        };
        crc.update(&output[..made]);
        keeper.push(&output[..made]);
        if let Some(left) = budget {
            *left = left.checked_sub(made as u64).ok_or_else(|| {
                stream.broken(format!(
                    "the zip inside a zip inflates to more than {NESTED_INFLATION} bytes in \
                     all (a decompression bomb)"
                ))
            })?;
        }
        if limit.is_some() && !keeper.wants() {
            // Its end is known: the caller skips to it.
            return Ok(Inflated {
                size: decompress.total_out(),
                crc: None,
            });
        }
        // Deflate shrinks at most about 1,000 times: bounding what an entry inflates to by
        // the compressed bytes read so far (as joblib's compressed files are) bounds the
        // work a small entry of unknown size can cause.
        let allowed = inflation_limit(decompress.total_in());
        if decompress.total_out() > allowed {
            return Err(stream.broken(format!(
                "a deflated entry inflates to more than {allowed} bytes from {} (a \
                 decompression bomb)",
                decompress.total_in()
            )));
        }
        if status == Status::StreamEnd {
            return Ok(Inflated {
                size: decompress.total_out(),
                crc: Some(crc.sum()),
            });
        }
        if consumed == 0 && made == 0 {
            return Err(stream.broken("its deflate stream does not go on"));
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut value = [0; 8];
    value.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(value)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::DeflateEncoder;
    use flate2::{Compression, Crc};

    use super::*;

    const TINY_PT: &[u8] = include_bytes!("../../../fixtures/models/formats/tiny.pt");
    const TINY_KERAS: &[u8] = include_bytes!("../../../fixtures/models/formats/tiny.keras");
    const LAMBDA_KERAS: &[u8] = include_bytes!("../../../fixtures/models/formats/lambda.keras");
    const STREAMED_KERAS: &[u8] = include_bytes!("../../../fixtures/models/formats/streamed.keras");
    const STORED_DESCRIPTOR: &[u8] =
        include_bytes!("../../../fixtures/models/formats/stored-descriptor.zip");
    /// Where `archive/data.pkl`'s 174 bytes are in `tiny.pt` (aligned to 64 as torch does).
    const TINY_PT_PICKLE: std::ops::Range<usize> = 64..64 + 174;

    fn walk(bytes: &[u8]) -> (Archive, Option<Broken>) {
        let mut reader = bytes;
        let mut stream = Stream::new(&mut reader);
        let mut archive = Archive::default();
        let broken = archive.walk(&mut stream).err();
        (archive, broken)
    }

    fn facts(bytes: &[u8]) -> Facts {
        let mut reader = bytes;
        read(&mut reader)
    }

    fn is_unreadable(facts: &Facts) -> bool {
        facts.unsafe_calls.contains(UNREADABLE)
    }

    /// A zip written entry by entry, sizes in the local headers.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        central: Vec<u8>,
        listed: u16,
    }

    impl Writer {
        fn stored(mut self, name: &str, data: &[u8], flags: u16) -> Self {
            self.add(name, data, data, STORED, flags, true);
            self
        }

        fn deflated(mut self, name: &str, data: &[u8]) -> Self {
            let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(data).unwrap();
            let compressed = encoder.finish().unwrap();
            self.add(name, data, &compressed, DEFLATED, 0, true);
            self
        }

        /// An entry that has a local header but that the central directory does not list.
        fn hidden(mut self, name: &str, data: &[u8]) -> Self {
            self.add(name, data, data, STORED, 0, false);
            self
        }

        /// A stored entry as torch 2.x writes it: flag 0x0808, CRC and sizes 0 in its local
        /// header and in a data descriptor after its data; the central directory has them.
        fn streamed(mut self, name: &str, data: &[u8]) -> Self {
            let mut crc = Crc::new();
            crc.update(data);
            let offset = self.bytes.len() as u32;
            let flags = FLAG_DESCRIPTOR | 0x0800;
            let local = |crc: u32, size: u32| {
                let mut common = Vec::new();
                common.extend(flags.to_le_bytes());
                common.extend(STORED.to_le_bytes());
                common.extend([0; 4]);
                common.extend(crc.to_le_bytes());
                common.extend(size.to_le_bytes());
                common.extend(size.to_le_bytes());
                common.extend((name.len() as u16).to_le_bytes());
                common.extend(0u16.to_le_bytes());
                common
            };
            self.bytes.extend(LOCAL);
            self.bytes.extend(20u16.to_le_bytes());
            self.bytes.extend(local(0, 0));
            self.bytes.extend(name.as_bytes());
            self.bytes.extend(data);
            self.bytes.extend(DESCRIPTOR);
            self.bytes.extend(crc.sum().to_le_bytes());
            self.bytes.extend((data.len() as u32).to_le_bytes());
            self.bytes.extend((data.len() as u32).to_le_bytes());
            self.listed += 1;
            self.central.extend(CENTRAL);
            self.central.extend([20, 0, 20, 0]);
            self.central.extend(local(crc.sum(), data.len() as u32));
            self.central.extend([0; 10]);
            self.central.extend(offset.to_le_bytes());
            self.central.extend(name.as_bytes());
            self
        }

        fn add(
            &mut self,
            name: &str,
            data: &[u8],
            stored: &[u8],
            method: u16,
            flags: u16,
            listed: bool,
        ) {
            let mut crc = Crc::new();
            crc.update(data);
            let offset = self.bytes.len() as u32;
            let mut common = Vec::new();
            common.extend(flags.to_le_bytes());
            common.extend(method.to_le_bytes());
            common.extend([0; 4]);
            common.extend(crc.sum().to_le_bytes());
            common.extend((stored.len() as u32).to_le_bytes());
            common.extend((data.len() as u32).to_le_bytes());
            common.extend((name.len() as u16).to_le_bytes());
            common.extend(0u16.to_le_bytes());
            self.bytes.extend(LOCAL);
            self.bytes.extend(20u16.to_le_bytes());
            self.bytes.extend(&common);
            self.bytes.extend(name.as_bytes());
            self.bytes.extend(stored);
            if listed {
                self.listed += 1;
                self.central.extend(CENTRAL);
                self.central.extend([20, 0, 20, 0]);
                self.central.extend(&common);
                self.central.extend([0; 10]);
                self.central.extend(offset.to_le_bytes());
                self.central.extend(name.as_bytes());
            }
        }

        fn finish(&self) -> Vec<u8> {
            let mut bytes = self.bytes.clone();
            bytes.extend(&self.central);
            bytes.extend(END);
            bytes.extend([0; 4]);
            bytes.extend(self.listed.to_le_bytes());
            bytes.extend(self.listed.to_le_bytes());
            bytes.extend((self.central.len() as u32).to_le_bytes());
            bytes.extend((self.bytes.len() as u32).to_le_bytes());
            bytes.extend([0; 2]);
            bytes
        }
    }

    /// A torch zip as torch lays it out (without the alignment), and its pickle.
    fn torch() -> (Writer, Vec<u8>) {
        let pickle = TINY_PT[TINY_PT_PICKLE].to_vec();
        let writer = Writer::default()
            .stored("archive/data.pkl", &pickle, 0)
            .stored("archive/data/0", &[0; 16], 0)
            .stored("archive/version", b"3\n", 0);
        (writer, pickle)
    }

    fn replace(bytes: &mut [u8], from: &[u8], to: &[u8], nth: usize) {
        let at = memchr::memmem::find_iter(bytes, from).nth(nth).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
    }

    #[test]
    fn torch_hands_its_data_pkl_over_whole() {
        let (archive, broken) = walk(TINY_PT);
        assert_eq!(broken, None);
        assert_eq!(archive.handed_over, vec![TINY_PT[TINY_PT_PICKLE].to_vec()]);
        assert_eq!(archive.doubts, Vec::<String>::new());
        assert_eq!(archive.entries.len(), 8);
        assert!(archive.entries.iter().all(|entry| entry.listed));
        let facts = facts(TINY_PT);
        assert_eq!(facts.format, Format::Torch);
        assert!(!is_unreadable(&facts), "{:?}", facts.unsafe_where);
    }

    #[test]
    fn a_deflated_data_pkl_is_inflated_whole() {
        let pickle = TINY_PT[TINY_PT_PICKLE].to_vec();
        let zip = Writer::default()
            .deflated("model/data.pkl", &pickle)
            .stored("model/version", b"3\n", 0)
            .finish();
        let (archive, broken) = walk(&zip);
        assert_eq!((broken, archive.doubts.len()), (None, 0));
        assert_eq!(archive.handed_over, vec![pickle]);
        assert_eq!(facts(&zip).format, Format::Torch);
    }

    #[test]
    fn keras_gives_its_version_and_the_modules_its_config_imports() {
        for zip in [TINY_KERAS, STREAMED_KERAS] {
            let facts = facts(zip);
            assert_eq!(facts.format, Format::Keras);
            assert_eq!(
                facts.written_by.get("keras").map(String::as_str),
                Some("3.6.0")
            );
            let imports: Vec<&str> = facts.imports.iter().map(String::as_str).collect();
            assert_eq!(
                imports,
                [
                    "keras",
                    "keras.initializers",
                    "keras.layers",
                    "keras.optimizers"
                ]
            );
            assert!(facts.unsafe_calls.is_empty(), "{:?}", facts.unsafe_where);
        }
    }

    #[test]
    fn a_keras_lambda_layer_is_unsafe() {
        let facts = facts(LAMBDA_KERAS);
        assert_eq!(facts.format, Format::Keras);
        let calls: Vec<&str> = facts.unsafe_calls.iter().map(String::as_str).collect();
        assert_eq!(calls, ["keras.layers.Lambda"]);
        assert_eq!(
            facts.unsafe_where,
            [
                "`config.json`: the `Lambda` layer `lambda` holds a Python function as bytecode; \
              Keras runs it only when loaded with `safe_mode=False`"
            ]
        );
    }

    #[test]
    fn a_deflated_entry_of_unknown_size_is_bounded_by_its_compressed_size() {
        // 1 MiB of zeros as one deflate block ending on a byte (a sync flush), repeated to
        // inflate past the minimum from about a megabyte, then a final empty block.
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0; 1024 * 1024]).unwrap();
        encoder.flush().unwrap();
        let block = encoder.get_ref().clone();
        let mut bomb = Vec::new();
        bomb.extend(LOCAL);
        bomb.extend(20u16.to_le_bytes());
        bomb.extend(FLAG_DESCRIPTOR.to_le_bytes());
        bomb.extend(DEFLATED.to_le_bytes());
        bomb.extend([0; 16]);
        bomb.extend(14u16.to_le_bytes());
        bomb.extend(0u16.to_le_bytes());
        bomb.extend(b"archive/data/0");
        for _ in 0..1100 {
            bomb.extend(&block);
        }
        bomb.extend([0x03, 0x00]);
        assert!(bomb.len() < 8 * 1024 * 1024);
        let (_, broken) = walk(&bomb);
        let why = broken.expect("a bomb").why;
        assert!(why.contains("decompression bomb"), "{why}");
    }

    #[test]
    fn a_stored_entry_with_a_data_descriptor_ends_at_its_descriptor() {
        // Python's zipfile writing a `.keras` to a stream that cannot seek.
        let (_, broken) = walk(STORED_DESCRIPTOR);
        assert_eq!(broken, None);
        let keras = facts(STORED_DESCRIPTOR);
        assert_eq!(keras.format, Format::Keras);
        assert!(keras.unsafe_calls.is_empty(), "{:?}", keras.unsafe_where);
        // torch 2.x's layout, with a storage whose bytes hold a signature, a CRC and sizes
        // that are not the descriptor's.
        let pickle = TINY_PT[TINY_PT_PICKLE].to_vec();
        let mut storage = vec![7u8; 40];
        storage[8..12].copy_from_slice(&DESCRIPTOR);
        storage[16..20].copy_from_slice(&8u32.to_le_bytes());
        let zip = Writer::default()
            .streamed("archive/data.pkl", &pickle)
            .streamed("archive/data/0", &storage)
            .streamed("archive/version", b"3\n")
            .finish();
        let (archive, broken) = walk(&zip);
        assert_eq!((broken, archive.doubts.clone()), (None, vec![]));
        assert_eq!(archive.handed_over, vec![pickle]);
        let sizes: Vec<u64> = archive
            .entries
            .iter()
            .map(|entry| entry.uncompressed)
            .collect();
        assert_eq!(sizes, [174, 40, 2]);
        let torch = facts(&zip);
        assert_eq!(torch.format, Format::Torch);
        assert!(torch.unsafe_calls.is_empty(), "{:?}", torch.unsafe_where);
    }

    #[test]
    fn a_descriptor_forged_inside_the_data_disagrees_with_the_central_directory() {
        // The storage's bytes end early, as far as a stream can tell: a descriptor of its
        // first 8 bytes, then a local header of a pickle the central directory never lists.
        let hidden = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";
        let inner = Writer::default().stored("archive/evil.pkl", hidden, 0);
        let mut storage = vec![1u8; 8];
        let mut crc = Crc::new();
        crc.update(&storage);
        storage.extend(DESCRIPTOR);
        storage.extend(crc.sum().to_le_bytes());
        storage.extend(8u32.to_le_bytes());
        storage.extend(8u32.to_le_bytes());
        storage.extend(&inner.bytes);
        let zip = Writer::default()
            .streamed("archive/data.pkl", &TINY_PT[TINY_PT_PICKLE])
            .streamed("archive/data/0", &storage)
            .finish();
        let facts = facts(&zip);
        assert_eq!(facts.format, Format::Torch);
        assert!(is_unreadable(&facts));
        assert!(facts.unsafe_calls.contains("posix.system"), "{facts:?}");
        // The walk stops where the real storage's descriptor follows the forged entry.
        let told = facts.unsafe_where.join("\n");
        assert!(told.contains("no zip header is where"), "{told}");
    }

    #[test]
    fn descriptors_of_either_width_fit_their_data() {
        let crc = 0x1234_5678u32;
        let mut narrow = DESCRIPTOR.to_vec();
        narrow.extend(crc.to_le_bytes());
        narrow.extend(7u32.to_le_bytes());
        narrow.extend(7u32.to_le_bytes());
        narrow.extend(CENTRAL);
        assert_eq!(descriptor_fits(&narrow, crc, 7), Some(false));
        assert_eq!(descriptor_fits(&narrow, crc, 8), None);
        assert_eq!(descriptor_fits(&narrow, crc + 1, 7), None);
        let size = 5u64 << 32;
        let mut wide = DESCRIPTOR.to_vec();
        wide.extend(crc.to_le_bytes());
        wide.extend(size.to_le_bytes());
        wide.extend(size.to_le_bytes());
        wide.extend(LOCAL);
        assert_eq!(descriptor_fits(&wide, crc, size), Some(true));
        // No zip header after it: data that looks like a descriptor.
        wide.truncate(24);
        wide.extend(b"data");
        assert_eq!(descriptor_fits(&wide, crc, size), None);
    }

    #[test]
    fn a_stored_entry_without_its_descriptor_is_unreadable() {
        let mut zip = Writer::default()
            .streamed("archive/data.pkl", &TINY_PT[TINY_PT_PICKLE])
            .finish();
        let at = memchr::memmem::find(&zip, &DESCRIPTOR).unwrap();
        zip[at] = b'X';
        let facts = facts(&zip);
        assert_eq!(facts.format, Format::Torch);
        assert!(is_unreadable(&facts));
    }

    #[test]
    fn zip_tricks_make_a_torch_zip_unsafe() {
        let (writer, pickle) = torch();
        let duplicate = writer.stored("archive/DATA.PKL", &pickle, 0).finish();
        let mut renamed = torch().0.finish();
        let at_central = renamed.len() - 22;
        replace(
            &mut renamed[..at_central],
            b"archive/version",
            b"archive/versiox",
            1,
        );
        let encrypted = torch()
            .0
            .stored("archive/data/1", &[0; 4], FLAG_ENCRYPTED)
            .finish();
        let hidden = torch().0.hidden("archive/data.pkl", &pickle).finish();
        let mut appended = torch().0.finish();
        appended.extend(b"PK\x05\x06 another zip");
        let mut elsewhere = torch().0.finish();
        let central = elsewhere.len() - 22 - 3 * 46 - 16 - 14 - 15;
        // The second central entry's offset: to the first local header's data.
        let offset_at = central + 46 + 16 + 42;
        elsewhere[offset_at..offset_at + 4].copy_from_slice(&30u32.to_le_bytes());
        let mut resized = torch().0.finish();
        let size_at = central + 46 + 16 + 20;
        resized[size_at] ^= 1;
        let cases = [
            (duplicate, "a second entry is named `archive/DATA.PKL`"),
            (renamed, "its local header names it `archive/version`"),
            (encrypted, "`archive/data/1` is encrypted"),
            (
                hidden,
                "the central directory does not list `archive/data.pkl`",
            ),
            (appended, "bytes follow the end record"),
            (elsewhere, "where no local header is"),
            (resized, "another method or size"),
        ];
        for (zip, expected) in cases {
            let facts = facts(&zip);
            assert_eq!(facts.format, Format::Torch, "{expected}");
            assert!(is_unreadable(&facts), "{expected}");
            assert!(
                facts
                    .unsafe_where
                    .iter()
                    .any(|sentence| sentence.contains(expected)),
                "{expected}: {:?}",
                facts.unsafe_where
            );
        }
    }

    #[test]
    fn a_second_keras_config_makes_it_unsafe() {
        let zip = Writer::default()
            .stored("metadata.json", br#"{"keras_version": "3.6.0"}"#, 0)
            .stored(
                "config.json",
                br#"{"module": "keras", "class_name": "Sequential"}"#,
                0,
            )
            .stored(
                "config.json",
                br#"{"module": "evil", "class_name": "Lambda"}"#,
                0,
            )
            .finish();
        let facts = facts(&zip);
        assert_eq!(facts.format, Format::Keras);
        assert!(is_unreadable(&facts));
        // Python's zipfile takes the last of two entries named alike: its config is read.
        assert!(facts.imports.contains("evil"));
        assert!(facts.unsafe_calls.contains("keras.layers.Lambda"));
    }

    #[test]
    fn every_truncation_of_a_torch_zip_is_unknown_or_unsafe() {
        for end in 0..TINY_PT.len() {
            let facts = facts(&TINY_PT[..end]);
            match facts.format {
                Format::Torch => assert!(is_unreadable(&facts), "{end}"),
                Format::Unknown => assert!(end < TINY_PT_PICKLE.start, "{end}"),
                other => panic!("{end}: {other:?}"),
            }
        }
        for zip in [TINY_KERAS, STREAMED_KERAS] {
            for end in 0..zip.len() {
                let facts = facts(&zip[..end]);
                assert!(
                    facts.format == Format::Unknown || is_unreadable(&facts),
                    "{end}"
                );
            }
        }
    }

    #[test]
    fn a_zip64_local_header_gives_its_sizes() {
        let mut zip = LOCAL.to_vec();
        zip.extend([45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend([0xff; 8]);
        zip.extend(16u16.to_le_bytes());
        zip.extend(20u16.to_le_bytes());
        zip.extend(b"archive/data.pkl");
        zip.extend(ZIP64_EXTRA.to_le_bytes());
        zip.extend(16u16.to_le_bytes());
        zip.extend(3u64.to_le_bytes());
        zip.extend(3u64.to_le_bytes());
        zip.extend(b"\x80\x02.");
        let (archive, broken) = walk(&zip);
        assert_eq!(archive.handed_over, vec![b"\x80\x02.".to_vec()]);
        assert_eq!(broken.unwrap().why, "the file ends");
    }

    #[test]
    fn pickles_are_found_in_any_zip_whatever_their_names() {
        let system = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";
        for name in [
            "data.pkl",
            "a/b/data.pkl",
            "model.bin",
            "weights/x.npy.tmp",
            "README",
        ] {
            let zip = Writer::default()
                .stored("notes.txt", b"hello", 0)
                .deflated(name, system)
                .finish();
            let facts = facts(&zip);
            assert_eq!(facts.format, Format::Zip, "{name}");
            assert!(
                facts.unsafe_calls.contains("posix.system"),
                "{name}: {facts:?}"
            );
        }
        // torch's storages are raw bytes torch never unpickles.
        let storage = Writer::default()
            .stored("archive/data.pkl", &TINY_PT[TINY_PT_PICKLE], 0)
            .stored("archive/data/0", system, 0)
            .finish();
        assert!(facts(&storage).unsafe_calls.is_empty());
    }

    #[test]
    fn pickles_past_the_ones_read_are_unsafe() {
        let mut writer = Writer::default();
        for index in 0..MAX_PICKLES {
            writer = writer.stored(&format!("{index}.bin"), b"\x80\x04K\x01.", 0);
        }
        let zip = writer.stored("last.bin", b"\x80\x04K\x02.", 0).finish();
        let facts = facts(&zip);
        assert_eq!(facts.format, Format::Zip);
        assert!(is_unreadable(&facts), "{facts:?}");
        assert!(
            facts
                .unsafe_where
                .iter()
                .any(|at| at.contains("`last.bin` may hold a pickle")),
            "{:?}",
            facts.unsafe_where
        );
    }

    #[test]
    fn a_zip_inside_a_zip_is_read() {
        let system = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";
        let mut zip = Writer::default().stored("data.pkl", system, 0).finish();
        for _ in 0..MAX_NESTING {
            zip = Writer::default().deflated("inner.zip", &zip).finish();
            let facts = facts(&zip);
            assert_eq!(facts.format, Format::Zip);
            assert!(facts.unsafe_calls.contains("posix.system"), "{facts:?}");
        }
        let deeper = Writer::default().stored("inner.zip", &zip, 0).finish();
        assert!(is_unreadable(&facts(&deeper)));
    }

    #[test]
    fn a_zip_after_other_bytes_is_read_and_unsafe() {
        let (writer, _) = torch();
        let mut file = b"#!/bin/sh\nexit 0\n".to_vec();
        file.extend(writer.finish());
        let facts = crate::read(&mut &file[..], file.len() as u64, "x.pt");
        assert_eq!(facts.format, Format::Torch);
        assert!(is_unreadable(&facts));
        assert!(
            facts.unsafe_where[0].contains("17 bytes of something else precede"),
            "{facts:?}"
        );
        // Text that happens to hold the signature is no zip.
        assert_eq!(start(b"see PK\x03\x04 in the docs"), None);
    }

    #[test]
    fn npz_files_are_npz_and_their_object_arrays_are_read() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
        let mut array = b"\x93NUMPY\x01\x00".to_vec();
        array.extend((header.len() as u16).to_le_bytes());
        array.extend(header.as_bytes());
        array.extend(1.5f64.to_le_bytes());
        let plain = Writer::default()
            .stored("a.npy", &array, 0)
            .deflated("b.npy", &array)
            .finish();
        let read = facts(&plain);
        assert_eq!(read.format, Format::Npz);
        assert!(read.unsafe_calls.is_empty(), "{read:?}");
        let header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
        let mut objects = b"\x93NUMPY\x01\x00".to_vec();
        objects.extend((header.len() as u16).to_le_bytes());
        objects.extend(header.as_bytes());
        objects.extend(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00true\x85R.");
        let hostile = Writer::default()
            .stored("a.npy", &array, 0)
            .deflated("b.npy", &objects)
            .finish();
        let read = facts(&hostile);
        assert_eq!(read.format, Format::Npz);
        assert!(read.unsafe_calls.contains("posix.system"), "{read:?}");
    }

    #[test]
    fn zips_without_pickles_are_unknown() {
        let zip = Writer::default()
            .stored("notes.txt", b"Copyright 2024 someone", 0)
            .deflated("a/b/data.bin", &[0u8; 300])
            .finish();
        assert_eq!(facts(&zip), Facts::default());
        assert_eq!(facts(b"PK\x03\x04"), Facts::default());
    }
}
