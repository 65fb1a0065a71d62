//! A runtime's metadata files held in memory: what the probe sends from inside an image, or
//! what static capture keeps from the image's archive streams. Feeds the same distribution
//! reader as the host's file system.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::probe::ProbedFiles;
use super::SiteFiles;

/// Folder listings and file contents, by absolute path inside the runtime.
#[derive(Debug, Default)]
pub struct MemoryFiles {
    listings: HashMap<PathBuf, Vec<(String, bool)>>,
    contents: HashMap<PathBuf, Vec<u8>>,
}

impl MemoryFiles {
    /// From the probe's `--files` answer (Latin-1 code points back to bytes).
    pub fn from_probe(files: ProbedFiles) -> MemoryFiles {
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
    pub fn add_entry(&mut self, folder: &Path, name: String, is_folder: bool) {
        let entries = self.listings.entry(folder.to_path_buf()).or_default();
        if !entries.iter().any(|(known, _)| *known == name) {
            entries.push((name, is_folder));
        }
    }

    /// Takes in everything `other` holds.
    pub fn merge(&mut self, other: MemoryFiles) {
        for (folder, entries) in other.listings {
            for (name, is_folder) in entries {
                self.add_entry(&folder, name, is_folder);
            }
        }
        self.contents.extend(other.contents);
    }

    /// Records a file's bytes.
    pub fn add_file(&mut self, path: PathBuf, bytes: Vec<u8>) {
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
