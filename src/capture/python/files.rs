//! How capture reads a runtime's files: the host's file system for a dev environment, or
//! metadata files held in memory (what the probe sends from inside an image, or what static
//! capture keeps from an image's archive streams). Both feed the same distribution reader.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::probe::ProbedFiles;

/// Read-only access to the files of a runtime.
pub(crate) trait SiteFiles: Sync {
    /// The names in `folder`, each with whether it is a folder (following symlinks).
    fn list(&self, folder: &Path) -> io::Result<Vec<(String, bool)>>;
    /// A file's bytes.
    fn read(&self, file: &Path) -> io::Result<Vec<u8>>;
    /// At least the header block of a METADATA-style file (up to its first blank line); the
    /// body, often a long README, is not needed.
    fn read_headers(&self, file: &Path) -> io::Result<Vec<u8>> {
        self.read(file)
    }
    /// Whether a file exists.
    fn exists(&self, file: &Path) -> bool;
}

/// The host's file system.
pub(crate) struct HostFiles;

impl SiteFiles for HostFiles {
    fn list(&self, folder: &Path) -> io::Result<Vec<(String, bool)>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(folder)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let is_folder = if kind.is_symlink() {
                entry.path().is_dir()
            } else {
                kind.is_dir()
            };
            names.push((entry.file_name().to_string_lossy().into_owned(), is_folder));
        }
        Ok(names)
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(file)
    }

    fn read_headers(&self, file: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let mut handle = std::fs::File::open(file)?;
        let mut bytes = Vec::with_capacity(8192);
        loop {
            let start = bytes.len().saturating_sub(3);
            let read = (&mut handle).take(8192).read_to_end(&mut bytes)?;
            let tail = &bytes[start..];
            let blank =
                tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n");
            if read == 0 || blank {
                return Ok(bytes);
            }
        }
    }

    fn exists(&self, file: &Path) -> bool {
        file.exists()
    }
}

/// Folder listings and file contents, by absolute path inside the runtime.
#[derive(Debug, Default)]
pub(crate) struct MemoryFiles {
    listings: HashMap<PathBuf, Vec<(String, bool)>>,
    contents: HashMap<PathBuf, Vec<u8>>,
}

impl MemoryFiles {
    /// From the probe's `--files` answer (Latin-1 code points back to bytes).
    pub(crate) fn from_probe(files: ProbedFiles) -> MemoryFiles {
        let latin1 = |text: String| text.chars().map(|c| c as u32 as u8).collect();
        MemoryFiles {
            listings: files
                .listings
                .into_iter()
                .map(|(folder, entries)| (PathBuf::from(folder), entries))
                .collect(),
            contents: files
                .contents
                .into_iter()
                .map(|(path, text)| (PathBuf::from(path), latin1(text)))
                .collect(),
        }
    }

    /// Records that `folder` holds an entry `name`.
    pub(crate) fn add_entry(&mut self, folder: &Path, name: String, is_folder: bool) {
        let entries = self.listings.entry(folder.to_path_buf()).or_default();
        if !entries.iter().any(|(known, _)| *known == name) {
            entries.push((name, is_folder));
        }
    }

    /// Takes in everything `other` holds.
    pub(crate) fn merge(&mut self, other: MemoryFiles) {
        for (folder, entries) in other.listings {
            for (name, is_folder) in entries {
                self.add_entry(&folder, name, is_folder);
            }
        }
        self.contents.extend(other.contents);
    }

    /// Records a file's bytes.
    pub(crate) fn add_file(&mut self, path: PathBuf, bytes: Vec<u8>) {
        self.contents.insert(path, bytes);
    }
}

impl SiteFiles for MemoryFiles {
    fn list(&self, folder: &Path) -> io::Result<Vec<(String, bool)>> {
        self.listings
            .get(folder)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        self.contents
            .get(file)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn exists(&self, file: &Path) -> bool {
        self.contents.contains_key(file) || self.listings.contains_key(file)
    }
}
