//! One layer's tar stream, read once as it arrives: gzip and zstd decompressed on the fly,
//! the blob's digest checked over the bytes as stored, and every entry listed with what
//! capture keeps of it ([`Keep`]): the small metadata files, the heads of scripts, and the
//! sha256 of model files. Nothing is written to disk and no whole file is held unless kept.
//!
//! Entry paths are the image's, never the host's: they are normalized here (`./` and `/`
//! dropped) and an entry that climbs out of the image (`..`) refuses the layer.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use crate::capture::models::{read_model_file, Silent, BLOCK};
use crate::capture::numerics;
use crate::capture::read;
use crate::error::untrusted;
use crate::lock::{GpuCode, Sha256};
use envlock_model::Facts;

/// The most bytes of one layer's kept files (metadata, package databases, script heads).
const KEPT_LIMIT: u64 = 512 << 20;
/// The most entries one layer may hold.
const ENTRY_LIMIT: usize = 1 << 20;
/// The most bytes one layer may unpack to (a gzip bomb ends here).
const UNPACKED_LIMIT: u64 = 64 << 30;

/// What is kept of a layer's files, by path inside the image (no leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Keep {
    /// Model paths: every regular file at or below one is hashed.
    pub(crate) models: Vec<String>,
    /// A second pass (`None` on the first): only the models are hashed and the first bytes of
    /// exactly these files kept (path, bytes), nothing else. What the readers declare
    /// ([`read::kept`]) names files by where they usually are; a file reached through a
    /// symlink from elsewhere (a model, a site folder that is a link, a METADATA that is
    /// one) is asked for by its real path when a read finds it missing.
    pub(crate) only: Option<BTreeMap<String, Asked>>,
}

/// What a second pass keeps of one file a read found missing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Asked {
    /// Its first bytes, this many.
    Head(u64),
    /// Its digest and version string, as a numeric library of this family (reached
    /// through a link whose name, not the file's, says what it is).
    Library(String),
}

impl Keep {
    /// What the readers read: the first pass over a layer.
    pub(crate) fn readers(models: Vec<String>) -> Keep {
        Keep { models, only: None }
    }

    /// What is kept of the file at `path`: on the first pass, what the readers declare they
    /// read ([`read::kept`]); on a second, what it was asked for.
    fn kept(&self, path: &str, executable: bool) -> read::Kept {
        match &self.only {
            Some(asked) => match asked.get(path) {
                Some(Asked::Head(limit)) => read::Kept::Head(*limit),
                _ => read::Kept::Nothing,
            },
            None => read::kept(&format!("/{path}"), executable),
        }
    }

    fn is_model(&self, path: &str) -> bool {
        self.models.iter().any(|model| {
            model.is_empty()
                || path == model
                || (path.starts_with(model.as_str()) && path.as_bytes()[model.len()] == b'/')
        })
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Folder,
    File,
    /// A symbolic link and its target, as written.
    Symlink(String),
    /// A hard link to an earlier entry of the same layer (its normalized path).
    Hardlink(String),
}

/// What a layer holds at one path: what an entry of a layer says, and what a node of the
/// merged tree keeps.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    /// The kept bytes (all of a small metadata file, the head of a script).
    pub(crate) content: Option<Arc<[u8]>>,
    /// A model file's digest, or a numeric library's.
    pub(crate) sha256: Option<String>,
    /// A numeric library's version string, found as it streamed past.
    pub(crate) version: Option<String>,
    /// A CUDA library's GPU code, read as it streamed past.
    pub(crate) gpu: Option<Box<GpuCode>>,
    /// What a model file's bytes say, read as they streamed past.
    pub(crate) model: Option<Box<Facts>>,
}

/// One entry of a layer.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path inside the image, normalized, without a leading `/`.
    pub(crate) path: String,
    pub(crate) stored: Stored,
}

impl std::ops::Deref for Entry {
    type Target = Stored;

    fn deref(&self) -> &Stored {
        &self.stored
    }
}

/// One layer, listed.
#[derive(Debug, Default)]
pub(crate) struct LayerIndex {
    pub(crate) entries: Vec<Entry>,
    /// Paths deleted from lower layers (`.wh.NAME`).
    pub(crate) whiteouts: Vec<String>,
    /// Folders emptied of lower layers' entries (`.wh..wh..opq`).
    pub(crate) opaque: Vec<String>,
    /// Bytes of its regular files.
    pub(crate) size: u64,
    /// `sha256:` of the uncompressed tar (the layer's diff-id).
    pub(crate) diff_id: String,
}

/// Why a layer could not be read.
#[derive(Debug)]
pub(crate) enum LayerError {
    /// Truncated, not a tar, a digest that does not match.
    Corrupt(String),
    /// `..` paths, or over a bound.
    Hostile(String),
}

/// Reads the layer blob `raw` (gzip, zstd or plain tar, told by its first bytes), checking
/// that its bytes hash to `digest` when one is given.
pub(crate) fn read_layer(
    raw: &mut dyn Read,
    digest: Option<&str>,
    keep: &Keep,
) -> Result<LayerIndex, LayerError> {
    let corrupt = |error: io::Error| LayerError::Corrupt(untrusted(error));
    let mut stored = HashingReader::new(raw, true);
    let mut magic = [0u8; 4];
    let filled = fill(&mut stored, &mut magic).map_err(corrupt)?;
    let head = io::Cursor::new(magic[..filled].to_vec());
    let compressed = head.chain(&mut stored);
    let (mut tar, packed): (Box<dyn Read + '_>, bool) = match magic {
        [0x1f, 0x8b, ..] => (
            Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            true,
        ),
        [0x28, 0xb5, 0x2f, 0xfd] => (
            Box::new(zstd::Decoder::new(compressed).map_err(corrupt)?),
            true,
        ),
        _ => (Box::new(compressed), false),
    };
    // A plain tar's diff-id is its stored digest: hashed once.
    let mut plain = HashingReader::new((&mut tar).take(UNPACKED_LIMIT), packed);
    // The tar may end before its stream does (padding, a gzip trailer): all of it is hashed.
    let listed = list_entries(&mut plain, keep).and_then(|index| {
        io::copy(&mut plain, &mut io::sink()).map_err(corrupt)?;
        Ok(index)
    });
    if plain.inner.limit() == 0 {
        return Err(LayerError::Hostile(format!(
            "it unpacks to more than {} GiB",
            UNPACKED_LIMIT >> 30
        )));
    }
    let mut index = listed?;
    let unpacked = plain.finish();
    drop(tar);
    io::copy(&mut stored, &mut io::sink()).map_err(corrupt)?;
    let actual = stored.finish();
    index.diff_id = if packed { unpacked } else { actual.clone() };
    if let Some(expected) = digest {
        if expected != actual {
            return Err(LayerError::Corrupt(format!(
                "its bytes do not match its digest `{expected}` (they hash to `{actual}`)"
            )));
        }
    }
    Ok(index)
}

fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            count => filled += count,
        }
    }
    Ok(filled)
}

fn list_entries(tar: &mut dyn Read, keep: &Keep) -> Result<LayerIndex, LayerError> {
    let corrupt = |error: io::Error| {
        LayerError::Corrupt(format!("not a readable tar ({})", untrusted(error)))
    };
    let mut index = LayerIndex::default();
    let mut kept = 0u64;
    let mut buffer = vec![0u8; BLOCK];
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let Some(path) = normalize(&String::from_utf8_lossy(&raw))? else {
            continue;
        };
        if index.entries.len() >= ENTRY_LIMIT {
            return Err(LayerError::Hostile(format!(
                "it has more than {ENTRY_LIMIT} entries"
            )));
        }
        let (folder, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            index.opaque.push(folder.to_string());
            continue;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            index.whiteouts.push(join(folder, deleted));
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        let link = || -> Result<String, LayerError> {
            let target = entry.link_name_bytes().unwrap_or_default();
            Ok(String::from_utf8_lossy(&target).into_owned())
        };
        let kind = if kind.is_dir() {
            Kind::Folder
        } else if kind.is_symlink() {
            Kind::Symlink(link()?)
        } else if kind.is_hard_link() {
            match normalize(&link()?)? {
                Some(target) => Kind::Hardlink(target),
                None => continue,
            }
        } else if kind.is_file() {
            Kind::File
        } else {
            continue;
        };
        let size = entry.size();
        let mut read = Kept::default();
        if kind == Kind::File {
            index.size += size;
            let executable = header.mode().unwrap_or(0) & 0o111 != 0;
            read = read_file(&mut entry, &path, size, executable, keep, &mut buffer)
                .map_err(corrupt)?;
            kept += read.content.as_ref().map_or(0, |bytes| bytes.len() as u64);
        }
        if kept > KEPT_LIMIT {
            return Err(LayerError::Hostile(format!(
                "its metadata files add up to more than {} MiB",
                KEPT_LIMIT >> 20
            )));
        }
        index.entries.push(Entry {
            path,
            stored: Stored {
                kind,
                size,
                content: read.content,
                sha256: read.sha256,
                version: read.version,
                gpu: read.gpu,
                model: read.model,
            },
        });
    }
    Ok(index)
}

/// What is kept of one regular file of a layer.
#[derive(Default)]
struct Kept {
    content: Option<Arc<[u8]>>,
    sha256: Option<String>,
    version: Option<String>,
    gpu: Option<Box<GpuCode>>,
    model: Option<Box<Facts>>,
}

/// Reads the file `entry` at `path` for what capture keeps of it: a numeric library's digest
/// and version string, a model file's digest, or the bytes the readers read.
fn read_file(
    entry: &mut impl Read,
    path: &str,
    size: u64,
    executable: bool,
    keep: &Keep,
    buffer: &mut [u8],
) -> io::Result<Kept> {
    let mut read = Kept::default();
    // A model's file is read as a model even where a numeric library would be (a model
    // folder may carry one): its digest is the same either way.
    let family = match &keep.only {
        None if !keep.is_model(path) => numerics::scan::classify(path).map(|kind| kind.family),
        None => None,
        Some(asked) => match asked.get(path) {
            Some(Asked::Library(family)) => Some(family.as_str()),
            _ => None,
        },
    };
    if let Some(family) = family {
        let scanned = numerics::scan::scan_stream(entry, family)?;
        read.sha256 = Some(scanned.sha256);
        read.version = scanned.version;
        read.gpu = scanned.gpu.map(Box::new);
    } else if keep.is_model(path) {
        let name = path.rsplit('/').next().unwrap_or(path);
        let model = read_model_file(entry, buffer, &Silent, size, name)?;
        read.sha256 = Some(model.sha256);
        read.model = Some(Box::new(model.facts));
    } else {
        read.content = read::keep(entry, keep.kept(path, executable))?.map(Arc::from);
    }
    Ok(read)
}

/// An entry's path inside the image: `./`, `/` and `.` parts dropped; `None` for the root
/// itself; `..` refuses the layer (no real image has it, and it is how a tar climbs out).
fn normalize(path: &str) -> Result<Option<String>, LayerError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(LayerError::Hostile(format!(
                    "its entry `{path}` climbs out of the image with `..`"
                )))
            }
            other => parts.push(other),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// `folder/name`, or `name` at the root.
pub(crate) fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// Hashes what passes through it, on a thread of its own: a layer's digest costs as much
/// as reading its tar, and the two run side by side. Dropped on an error, its channel
/// closes and the thread ends.
struct HashingReader<R> {
    inner: R,
    chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<String>>,
    /// Bytes read and not yet sent: sent in chunks of [`CHUNK`].
    pending: Vec<u8>,
}

/// How much is handed to the hashing thread at once.
const CHUNK: usize = 1 << 20;

impl<R: Read> HashingReader<R> {
    /// A reader of `inner` that hashes what it reads when `enabled` (else it only reads).
    fn new(inner: R, enabled: bool) -> Self {
        if !enabled {
            return HashingReader {
                inner,
                chunks: None,
                hasher: None,
                pending: Vec::new(),
            };
        }
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let hasher = std::thread::spawn(move || {
            let mut digest = Sha256::default();
            for chunk in received {
                digest.update(chunk);
            }
            digest.finish()
        });
        HashingReader {
            inner,
            chunks: Some(chunks),
            hasher: Some(hasher),
            pending: Vec::with_capacity(CHUNK),
        }
    }

    /// `sha256:` of everything read.
    fn finish(&mut self) -> String {
        if let Some(chunks) = self.chunks.take() {
            let _ = chunks.send(std::mem::take(&mut self.pending));
        }
        self.hasher
            .take()
            .and_then(|hasher| hasher.join().ok())
            .unwrap_or_default()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        if self.chunks.is_none() {
            return Ok(count);
        }
        self.pending.extend_from_slice(&buffer[..count]);
        if self.pending.len() >= CHUNK {
            let full = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
            if let Some(chunks) = &self.chunks {
                let _ = chunks.send(full);
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn metadata_is_kept_models_hashed_whiteouts_listed() {
        let bytes = layer(&[
            (
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                b"Name: six\n",
            ),
            ("app/model/weights.bin", b"abc"),
            ("usr/bin/tool", b"#!/usr/bin/python3\nprint()\n"),
            ("usr/bin/elf", b"\x7fELF...."),
            ("etc/.wh.gone", b""),
            ("opt/.wh..wh..opq", b""),
        ]);
        let keep = Keep::readers(vec!["app/model".into()]);
        let index = read_layer(&mut &bytes[..], None, &keep).unwrap();
        let find = |path: &str| index.entries.iter().find(|e| e.path == path).unwrap();
        assert_eq!(
            find("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA")
                .content
                .as_deref(),
            Some(&b"Name: six\n"[..])
        );
        assert_eq!(
            find("app/model/weights.bin").sha256.as_deref(),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(find("usr/bin/tool").content.is_some());
        // Of a binary, only the two bytes that say it is no script.
        assert_eq!(find("usr/bin/elf").content.as_deref(), Some(&b"\x7fE"[..]));
        assert_eq!(index.whiteouts, vec!["etc/gone".to_string()]);
        assert_eq!(index.opaque, vec!["opt".to_string()]);
    }

    #[test]
    fn a_second_pass_keeps_exactly_the_files_asked_for() {
        let bytes = layer(&[
            ("srv/site/extra.pth", b"/srv/extra\n"),
            ("srv/meta/packaging.txt", b"Name: packaging\n"),
            ("srv/site/six-1.16.0.dist-info/METADATA", b"Name: six\n"),
        ]);
        let first = read_layer(&mut &bytes[..], None, &Keep::readers(Vec::new())).unwrap();
        let content = |index: &LayerIndex, path: &str| {
            index
                .entries
                .iter()
                .find(|e| e.path == path)
                .unwrap()
                .content
                .clone()
        };
        // Where they are, no pattern names the first two (of these executables, only the
        // two bytes that say they are no scripts).
        for path in ["srv/site/extra.pth", "srv/meta/packaging.txt"] {
            assert!(
                content(&first, path).is_none_or(|kept| kept.len() <= 2),
                "{path}"
            );
        }
        let second = Keep {
            models: Vec::new(),
            only: Some(BTreeMap::from([
                ("srv/site/extra.pth".to_string(), Asked::Head(4)),
                ("srv/meta/packaging.txt".to_string(), Asked::Head(1 << 20)),
            ])),
        };
        let again = read_layer(&mut &bytes[..], None, &second).unwrap();
        assert_eq!(
            content(&again, "srv/site/extra.pth").as_deref(),
            Some(&b"/srv"[..])
        );
        assert_eq!(
            content(&again, "srv/meta/packaging.txt").as_deref(),
            Some(&b"Name: packaging\n"[..])
        );
        // Only those: not even what the readers keep.
        assert_eq!(
            content(&again, "srv/site/six-1.16.0.dist-info/METADATA"),
            None
        );
    }

    #[test]
    fn compressed_layers_and_their_digests() {
        use std::io::Write as _;
        let bytes = layer(&[("etc/os-release", b"ID=debian\n")]);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&bytes).unwrap();
        let gzip = gzip.finish().unwrap();
        let zstd = zstd::encode_all(&bytes[..], 1).unwrap();
        let plain = read_layer(&mut &bytes[..], None, &Keep::default()).unwrap();
        for blob in [&gzip, &zstd] {
            let digest = Sha256::of(blob);
            let index = read_layer(&mut &blob[..], Some(&digest), &Keep::default()).unwrap();
            assert_eq!(index.diff_id, plain.diff_id);
            assert!(index.entries[0].content.is_some());
            let wrong = Sha256::of(b"other");
            assert!(matches!(
                read_layer(&mut &blob[..], Some(&wrong), &Keep::default()),
                Err(LayerError::Corrupt(_))
            ));
            // Truncated: refused, never half read.
            let cut = &blob[..blob.len() / 2];
            assert!(read_layer(&mut &cut[..], Some(&digest), &Keep::default()).is_err());
        }
    }

    #[test]
    fn climbing_paths_refuse_the_layer() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        // `append_data` refuses `..`; a hostile tar is written by hand.
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../etc/passwd");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        assert!(matches!(
            read_layer(&mut &bytes[..], None, &Keep::default()),
            Err(LayerError::Hostile(_))
        ));
        assert_eq!(
            normalize("./usr//bin/").unwrap().as_deref(),
            Some("usr/bin")
        );
        assert_eq!(normalize("./").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn hostile_layers_never_panic(tar in crate::capture::engine::archive::streams::tar()) {
            let keep = Keep::readers(vec!["x".into()]);
            let _ = read_layer(&mut &tar[..], None, &keep);
        }
    }
}
