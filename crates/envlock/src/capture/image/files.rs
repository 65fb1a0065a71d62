//! An image's files as the one view ([`fs::Files`]): a container of the engine (created,
//! never started) through its archive endpoint ([`Container`]), or the tree its layers
//! make ([`Tree`], for registries, saved archives and OCI layouts). Static capture,
//! interpreter selection, system packages, numerics and model hashing all read through it,
//! so every source gives the same lock for the same image.

use std::collections::BTreeMap;

use super::models::{read_model_entries, ArchiveEntry};
use crate::capture::engine::{ArchiveError, Container};
use crate::capture::fs::{self, Entry, Found, Kind as FileKind, ReadError, Stat};
use crate::capture::layers::{Kind, Node, Tree};
use crate::capture::numerics::scan::{scan_stream, Scanned};
use crate::capture::numerics::ScanLibrary;

/// Where an image's files are read from.
#[derive(Clone, Copy)]
pub(crate) enum Files<'a> {
    /// A container of the engine, through the archive endpoint.
    Container(&'a Container<'a>),
    /// The merged layers.
    Tree(&'a Tree),
}

impl fs::Files for Tree {
    async fn stat(&self, path: &str) -> Found<Stat> {
        Ok(self.resolve(path).map(|(resolved, node)| Stat {
            resolved: format!("/{resolved}"),
            kind: tree_kind(node),
        }))
    }

    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        let Some((resolved, node)) = self.resolve(path) else {
            return Ok(None);
        };
        if node.kind != Kind::File {
            return Ok(None);
        }
        // Not kept (or too little of it): a symlink led where the first pass kept nothing.
        // Recorded, for a second pass over the layers that keeps it (`crate::capture::layers::keep_missed`);
        // the read fails meanwhile, and is asked again after that pass.
        let Some(content) = &node.content else {
            self.miss(&resolved, limit);
            return Err(ReadError::not_kept(
                &format!("/{resolved}"),
                "its bytes were not kept from the layers (envlock reads only the files its readers declare)",
            ));
        };
        if (content.len() as u64) < limit.min(node.size) {
            self.miss(&resolved, limit);
            return Err(ReadError::not_kept(
                &format!("/{resolved}"),
                format!(
                    "only its first {} bytes were kept from the layers",
                    content.len()
                ),
            ));
        }
        let end = content
            .len()
            .min(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(Some(content[..end].to_vec()))
    }

    async fn list(&self, folder: &str) -> Found<Vec<Entry>> {
        let Some((resolved, node)) = self.resolve(folder) else {
            return Ok(None);
        };
        if node.kind != Kind::Folder {
            return Ok(None);
        }
        let mut entries: Vec<Entry> = self
            .children(&resolved)
            .map(|(path, name, node)| Entry {
                name: name.to_string(),
                kind: match node.kind {
                    Kind::Symlink(_) => self
                        .resolve(path)
                        .map_or(FileKind::Other, |(_, n)| tree_kind(n)),
                    _ => tree_kind(node),
                },
            })
            .collect();
        entries.sort();
        Ok(Some(entries))
    }
}

fn tree_kind(node: &Node) -> FileKind {
    match node.kind {
        Kind::Folder => FileKind::Folder,
        Kind::File | Kind::Hardlink(_) => FileKind::File,
        Kind::Symlink(_) => FileKind::Other,
    }
}

impl fs::Files for Files<'_> {
    async fn stat(&self, path: &str) -> Found<Stat> {
        match self {
            Files::Container(container) => container.stat(path).await,
            Files::Tree(tree) => tree.stat(path).await,
        }
    }

    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        match self {
            Files::Container(container) => container.head(path, limit).await,
            Files::Tree(tree) => tree.head(path, limit).await,
        }
    }

    async fn list(&self, folder: &str) -> Found<Vec<Entry>> {
        match self {
            Files::Container(container) => container.list(folder).await,
            Files::Tree(tree) => tree.list(folder).await,
        }
    }
}

impl ScanLibrary for Files<'_> {
    /// The digest and version string of the numeric library at `resolved` (a family of
    /// [`crate::capture::numerics::scan`]).
    async fn scan_library(&self, resolved: &str, family: &str) -> Found<Scanned> {
        match self {
            Files::Container(container) => {
                let family = family.to_string();
                let read = container.read_archive(resolved, move |tar| {
                    let mut archive = tar::Archive::new(tar);
                    let mut entry = archive
                        .entries()?
                        .next()
                        .ok_or_else(|| std::io::Error::other("an empty archive"))??;
                    scan_stream(&mut entry, &family)
                });
                match read.await {
                    Ok(scanned) => Ok(Some(scanned)),
                    Err(ArchiveError::NotFound) => Ok(None),
                    Err(ArchiveError::Other(detail)) => Err(ReadError::new(resolved, detail)),
                }
            }
            Files::Tree(tree) => {
                let Some((real, node)) = tree.resolve(resolved) else {
                    return Ok(None);
                };
                match &node.sha256 {
                    Some(sha256) => Ok(Some(Scanned {
                        sha256: sha256.clone(),
                        version: node.version.clone(),
                        gpu: node.gpu.as_deref().cloned(),
                    })),
                    // A library reached through a link whose name says what it is, while
                    // its own does not: not scanned as it streamed past. Recorded for a
                    // second pass, as an unkept file is; the read fails meanwhile.
                    None if node.kind == Kind::File => {
                        tree.miss_library(&real, family);
                        Err(ReadError::new(
                            &format!("/{real}"),
                            "it was not scanned as a numeric library in the layers",
                        ))
                    }
                    None => Ok(None),
                }
            }
        }
    }
}

impl Files<'_> {
    /// The entries of the model at `path`, by path relative to it (`""` is the model
    /// itself, a link when `path` is one), with the digests of its files.
    pub(super) async fn model_entries(
        &self,
        path: &str,
    ) -> Result<BTreeMap<String, ArchiveEntry>, ArchiveError> {
        match self {
            Files::Container(container) => container.read_archive(path, read_model_entries).await,
            Files::Tree(tree) => {
                let (resolved, node) = tree.lookup(path).ok_or(ArchiveError::NotFound)?;
                let mut entries = BTreeMap::new();
                entries.insert(String::new(), model_entry(node)?);
                if node.kind == Kind::Folder {
                    for (relative, node) in tree.below(&resolved) {
                        entries.insert(relative.to_string(), model_entry(node)?);
                    }
                }
                Ok(entries)
            }
        }
    }
}

fn model_entry(node: &Node) -> Result<ArchiveEntry, ArchiveError> {
    Ok(match &node.kind {
        Kind::Folder => ArchiveEntry::Folder,
        Kind::Symlink(target) => ArchiveEntry::Link(target.clone()),
        Kind::File | Kind::Hardlink(_) => {
            let unread = || ArchiveError::Other("a file of the model was not hashed".to_string());
            ArchiveEntry::File {
                sha256: node.sha256.clone().ok_or_else(unread)?,
                size: node.size,
                facts: node.model.clone().ok_or_else(unread)?,
            }
        }
    })
}
