//! Files held in memory: what the exec probe sends from inside an image (the folders on
//! `sys.path` listed, the metadata files the readers ask for), by absolute path inside the
//! runtime. The probe lists with `os.listdir` and reads through links in the image, so
//! paths here are as the interpreter sees them and need no resolving.

use std::collections::HashMap;

use super::{base_name, parent, Entry, Files, Found, Kind, ReadError, Stat};

/// Folder listings and file contents, by absolute path inside the runtime.
#[derive(Debug, Default)]
pub(crate) struct MemoryFiles {
    listings: HashMap<String, Vec<Entry>>,
    contents: HashMap<String, Vec<u8>>,
    /// Reads that failed inside the runtime, and why.
    errors: HashMap<String, String>,
}

impl MemoryFiles {
    /// Records that `folder` holds an entry `name`.
    pub(crate) fn add_entry(&mut self, folder: &str, name: String, kind: Kind) {
        let entries = self.listings.entry(folder.to_string()).or_default();
        if !entries.iter().any(|known| known.name == name) {
            entries.push(Entry { name, kind });
            entries.sort();
        }
    }

    /// Records a file's bytes.
    pub(crate) fn add_file(&mut self, path: String, bytes: Vec<u8>) {
        self.contents.insert(path, bytes);
    }

    /// Records that reading `path` failed.
    pub(crate) fn add_error(&mut self, path: String, detail: String) {
        self.errors.insert(path, detail);
    }

    fn failed(&self, path: &str) -> Result<(), ReadError> {
        match self.errors.get(path) {
            Some(detail) => Err(ReadError::new(path, detail)),
            None => Ok(()),
        }
    }
}

impl Files for MemoryFiles {
    async fn stat(&self, path: &str) -> Found<Stat> {
        self.failed(path)?;
        let kind = if self.contents.contains_key(path) {
            Some(Kind::File)
        } else if self.listings.contains_key(path) {
            Some(Kind::Folder)
        } else {
            let name = base_name(path);
            self.listings
                .get(&parent(path))
                .and_then(|entries| entries.iter().find(|entry| entry.name == name))
                .map(|entry| entry.kind)
        };
        Ok(kind.map(|kind| Stat {
            resolved: path.to_string(),
            kind,
        }))
    }

    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        self.failed(path)?;
        let end = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .contents
            .get(path)
            .map(|bytes| bytes[..bytes.len().min(end)].to_vec()))
    }

    async fn list(&self, folder: &str) -> Found<Vec<Entry>> {
        self.failed(folder)?;
        Ok(self.listings.get(folder).cloned())
    }
}
