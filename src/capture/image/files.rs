//! An image's files, wherever they are read from: a container of the engine (created, never
//! started) through its archive endpoint, or the tree its layers make ([`Tree`], for
//! registries, saved archives and OCI layouts). Static capture, interpreter selection,
//! system packages and model hashing all read through this one view, so every source gives
//! the same lock for the same image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::archive::{self, ArchiveError, Stat};
use super::engine::Engine;
use super::models::{read_model_entries, ArchiveEntry};
use super::static_python::{read_conda_tar, read_site_tar};
use crate::capture::layers::{Kind, Node, Tree};
use crate::capture::numerics::scan::{scan_stream, Scanned};
use crate::capture::python::files::MemoryFiles;
use crate::capture::python::metadata::WANTED;

/// Where an image's files are read from.
#[derive(Clone, Copy)]
pub(crate) enum Files<'a> {
    /// A container of the engine, through the archive endpoint.
    Container { engine: &'a Engine, id: &'a str },
    /// The merged layers.
    Tree(&'a Tree),
}

impl Files<'_> {
    /// What `path` is (symlinks resolved inside the image), or `None` if it is absent.
    pub(crate) async fn stat(&self, path: &str) -> Option<Stat> {
        match self {
            Files::Container { engine, id } => archive::stat(engine, id, path).await,
            Files::Tree(tree) => {
                let (resolved, node) = tree.resolve(path)?;
                Some(Stat {
                    is_folder: node.kind == Kind::Folder,
                    resolved: format!("/{resolved}"),
                })
            }
        }
    }

    /// Whether `path` is a folder inside the image.
    pub(super) async fn is_folder(&self, path: &str) -> bool {
        self.stat(path).await.is_some_and(|stat| stat.is_folder)
    }

    /// A small file's bytes, or `None` if it is absent.
    pub(super) async fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        self.read_head(path, WANTED.limit).await
    }

    /// At most `limit` bytes from the start of a file, or `None` if it is absent or a
    /// folder (or, from layers, a file capture does not keep).
    pub(crate) async fn read_head(&self, path: &str, limit: u64) -> Option<Vec<u8>> {
        match self {
            Files::Container { engine, id } => archive::read_head(engine, id, path, limit).await,
            Files::Tree(tree) => {
                let (_, node) = tree.resolve(path)?;
                let content = node.content.as_ref().filter(|_| node.kind == Kind::File)?;
                let end = content
                    .len()
                    .min(usize::try_from(limit).unwrap_or(usize::MAX));
                Some(content[..end].to_vec())
            }
        }
    }

    /// A site folder's listing and its distributions' metadata files. `folder` is resolved.
    pub(super) async fn read_site(&self, folder: &str) -> Result<MemoryFiles, ArchiveError> {
        match self {
            Files::Container { engine, id } => {
                let owned = folder.to_string();
                archive::read_archive(engine, id, folder, move |tar| read_site_tar(tar, &owned))
                    .await
            }
            Files::Tree(tree) => {
                let (resolved, _) = tree.resolve(folder).ok_or(ArchiveError::NotFound)?;
                Ok(site_from_tree(tree, &resolved, Path::new(folder)))
            }
        }
    }

    /// The `*.json` records of the conda-meta folder `folder`.
    pub(super) async fn read_conda_meta(&self, folder: &str) -> MemoryFiles {
        match self {
            Files::Container { engine, id } => {
                let root = PathBuf::from(folder);
                archive::read_archive(engine, id, folder, move |tar| read_conda_tar(tar, &root))
                    .await
                    .unwrap_or_default()
            }
            Files::Tree(tree) => {
                let mut files = MemoryFiles::default();
                let root = PathBuf::from(folder);
                let Some((resolved, _)) = tree.resolve(folder) else {
                    return files;
                };
                for (_, name, node) in tree.children(&resolved) {
                    if let (true, Some(content)) = (name.ends_with(".json"), kept(node)) {
                        files.add_entry(&root, name.to_string(), false);
                        files.add_file(root.join(name), content.to_vec());
                    }
                }
                files
            }
        }
    }

    /// The digest and version string of the numeric library at `resolved` (a family of
    /// [`crate::capture::numerics::scan`]).
    pub(crate) async fn scan_library(&self, resolved: &str, family: &str) -> Option<Scanned> {
        match self {
            Files::Container { engine, id } => {
                let family = family.to_string();
                let read = archive::read_archive(engine, id, resolved, move |tar| {
                    let mut archive = tar::Archive::new(tar);
                    let mut entry = archive
                        .entries()?
                        .next()
                        .ok_or_else(|| std::io::Error::other("an empty archive"))??;
                    scan_stream(&mut entry, &family)
                });
                read.await.ok()
            }
            Files::Tree(tree) => {
                let (_, node) = tree.resolve(resolved)?;
                Some(Scanned {
                    sha256: node.sha256.clone()?,
                    version: node.version.clone(),
                })
            }
        }
    }

    /// The entries of the model at `path`, by path relative to it (`""` is the model
    /// itself, a link when `path` is one), with the digests of its files.
    pub(super) async fn model_entries(
        &self,
        path: &str,
    ) -> Result<BTreeMap<String, ArchiveEntry>, ArchiveError> {
        match self {
            Files::Container { engine, id } => {
                archive::read_archive(engine, id, path, read_model_entries).await
            }
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

/// A regular file's kept bytes.
fn kept(node: &Node) -> Option<&[u8]> {
    node.content.as_deref().filter(|_| node.kind == Kind::File)
}

fn model_entry(node: &Node) -> Result<ArchiveEntry, ArchiveError> {
    Ok(match &node.kind {
        Kind::Folder => ArchiveEntry::Folder,
        Kind::Symlink(target) => ArchiveEntry::Link(target.clone()),
        Kind::File | Kind::Hardlink(_) => ArchiveEntry::File {
            sha256: node.sha256.clone().ok_or_else(|| {
                ArchiveError::Other("a file of the model was not hashed".to_string())
            })?,
            size: node.size,
        },
    })
}

/// A site folder of the tree, as [`read_site_tar`] reads one from a container: every entry
/// listed, the single-file metadata and the metadata folders' files kept.
fn site_from_tree(tree: &Tree, resolved: &str, root: &Path) -> MemoryFiles {
    let mut files = MemoryFiles::default();
    for (path, name, node) in tree.children(resolved) {
        let is_folder = match node.kind {
            Kind::Folder => true,
            Kind::Symlink(_) => tree
                .resolve(path)
                .is_some_and(|(_, target)| target.kind == Kind::Folder),
            _ => false,
        };
        files.add_entry(root, name.to_string(), is_folder);
        if !is_folder && WANTED.is_single(name) {
            if let Some(content) = tree.resolve(path).and_then(|(_, node)| kept(node)) {
                files.add_file(root.join(name), content.to_vec());
            }
        }
        if node.kind == Kind::Folder && WANTED.is_folder(name) {
            for (_, file, inner) in tree.children(path) {
                if let (true, Some(content)) = (WANTED.is_inner(name, file), kept(inner)) {
                    files.add_file(root.join(name).join(file), content.to_vec());
                }
            }
        }
    }
    files
}
