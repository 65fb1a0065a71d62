//! An image's file system as its layers make it: each layer applied in order over the ones
//! below, its whiteouts first (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties a folder of
//! what lower layers put there), then its entries. Every path remembers the layer that last
//! wrote it, which is what attribution reports.
//!
//! Symlinks resolve inside the tree, as the kernel resolves them in a container: an absolute
//! target starts at the image's root, and `..` at the root stays there. No path of the tree
//! is ever joined onto a host path.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use super::read::{Asked, Entry, Kind, LayerIndex, Stored};

/// One path of the merged tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The layer (0 is the base) that last wrote it.
    pub(crate) layer: usize,
    pub(crate) stored: Stored,
}

impl std::ops::Deref for Node {
    type Target = Stored;

    fn deref(&self) -> &Stored {
        &self.stored
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Stored {
        &mut self.stored
    }
}

/// The merged file system, by path without a leading `/` (the root is `""`).
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    /// Each layer's versions of the package databases, for attributing system packages.
    pub(crate) history: BTreeMap<String, Vec<Version>>,
    /// Files a reader asked for whose bytes were not kept (or too few), by resolved path,
    /// with the bytes asked for: what a second pass over the layers keeps
    /// ([`super::keep_missed`]).
    missed: Mutex<BTreeMap<String, Asked>>,
}

/// A file as one layer wrote it: the layer, and the bytes.
pub(crate) type Version = (usize, Arc<[u8]>);

/// A folder that only the paths below it show.
static IMPLICIT_FOLDER: Node = Node {
    layer: 0,
    stored: Stored {
        kind: Kind::Folder,
        size: 0,
        content: None,
        sha256: None,
        version: None,
        gpu: None,
        model: None,
    },
};

/// Symlinks followed in one lookup before it counts as a loop (Linux's limit).
const HOPS: usize = 40;

/// Package databases whose every version is remembered.
pub(crate) const DATABASES: &[&str] = &["var/lib/dpkg/status", "lib/apk/db/installed"];

impl Tree {
    /// Applies `layers` in order, base first.
    pub(crate) fn merge<'a>(layers: impl IntoIterator<Item = &'a LayerIndex>) -> Tree {
        let mut tree = Tree::default();
        // The root, a folder every layer writes into.
        tree.nodes.insert(String::new(), IMPLICIT_FOLDER.clone());
        for (index, layer) in layers.into_iter().enumerate() {
            tree.apply(index, layer);
        }
        tree
    }

    fn apply(&mut self, index: usize, layer: &LayerIndex) {
        for folder in &layer.opaque {
            self.remove_below(folder);
        }
        for path in &layer.whiteouts {
            self.nodes.remove(path);
            self.remove_below(path);
        }
        for entry in &layer.entries {
            self.add(index, entry);
        }
    }

    fn add(&mut self, index: usize, entry: &Entry) {
        let mut node = Node {
            layer: index,
            stored: entry.stored.clone(),
        };
        if let Kind::Hardlink(target) = &entry.kind {
            // The same file as an entry written before it: its bytes, this layer.
            let Some(target) = self.nodes.get(target).filter(|n| n.kind == Kind::File) else {
                return;
            };
            node = Node {
                layer: index,
                ..target.clone()
            };
        }
        if node.kind != Kind::Folder {
            // A file over a folder replaces the folder and all below it.
            self.remove_below(&entry.path);
        }
        if DATABASES.contains(&entry.path.as_str()) {
            if let Some(content) = &node.content {
                self.history
                    .entry(entry.path.clone())
                    .or_default()
                    .push((index, content.clone()));
            }
        }
        self.nodes.insert(entry.path.clone(), node);
    }

    fn remove_below(&mut self, folder: &str) {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let below: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter(|(path, _)| !path.is_empty())
            .map(|(path, _)| path.clone())
            .collect();
        for path in below {
            self.nodes.remove(&path);
        }
    }

    /// `path` (absolute or not) with every symlink on the way resolved, and its node.
    pub(crate) fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        self.walk(path, true)
    }

    /// `path` with the symlinks of its folders resolved but not its last part: what
    /// `lstat` sees.
    pub(crate) fn lookup(&self, path: &str) -> Option<(String, &Node)> {
        self.walk(path, false)
    }

    fn walk(&self, path: &str, follow_last: bool) -> Option<(String, &Node)> {
        let mut pending: Vec<String> = parts(path).rev().map(str::to_string).collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                current.pop();
                continue;
            }
            current.push(part);
            let here = current.join("/");
            let Some(node) = self.nodes.get(&here) else {
                // A folder a layer never listed, only the files in it.
                self.below(&here).next()?;
                continue;
            };
            if let Kind::Symlink(target) = &node.kind {
                if pending.is_empty() && !follow_last {
                    return Some((here, node));
                }
                hops += 1;
                if hops > HOPS {
                    return None;
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(parts(target).rev().map(str::to_string));
            }
        }
        let here = current.join("/");
        let node = self.nodes.get(&here).unwrap_or(&IMPLICIT_FOLDER);
        Some((here, node))
    }

    /// The entries directly in the folder `folder` (a resolved path), by name.
    pub(crate) fn children<'a>(
        &'a self,
        folder: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a Node)> + 'a {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let start = prefix.clone();
        self.nodes
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
            .take_while(move |(path, _)| path.starts_with(&prefix))
            .filter_map(move |(path, node)| {
                let name = &path[folder.len() + usize::from(!folder.is_empty())..];
                (!name.is_empty() && !name.contains('/')).then_some((path.as_str(), name, node))
            })
    }

    /// Every entry below the folder `folder` (a resolved path), with its path relative to it.
    pub(crate) fn below<'a>(
        &'a self,
        folder: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = format!("{folder}/");
        let start = prefix.clone();
        self.nodes
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
            .take_while(move |(path, _)| path.starts_with(&prefix))
            .map(move |(path, node)| (&path[folder.len() + 1..], node))
    }

    /// Records that a reader asked for the first `limit` bytes of the file at `path` (a
    /// resolved path), which were not kept.
    pub(crate) fn miss(&self, path: &str, limit: u64) {
        let mut missed = self.missed.lock().expect("never poisoned");
        match missed.get_mut(path) {
            Some(Asked::Head(asked)) => *asked = (*asked).max(limit),
            Some(Asked::Library(_)) => {}
            None => {
                missed.insert(path.to_string(), Asked::Head(limit));
            }
        }
    }

    /// Records that a reader asked for the digest and version of the numeric library of
    /// `family` at `path` (a resolved path), which was not scanned: its real name is not a
    /// library's, the link's that led there is.
    pub(crate) fn miss_library(&self, path: &str, family: &str) {
        self.missed
            .lock()
            .expect("never poisoned")
            .insert(path.to_string(), Asked::Library(family.to_string()));
    }

    /// The files asked for and not kept since the last call, with their layer and what was
    /// asked (bytes at most their size).
    pub(crate) fn take_missed(&self) -> Vec<(String, usize, Asked)> {
        let missed = std::mem::take(&mut *self.missed.lock().expect("never poisoned"));
        missed
            .into_iter()
            .filter_map(|(path, asked)| {
                let node = self.nodes.get(&path).filter(|n| n.kind == Kind::File)?;
                let asked = match asked {
                    Asked::Head(limit) => Asked::Head(limit.min(node.size)),
                    library => library,
                };
                Some((path, node.layer, asked))
            })
            .collect()
    }

    /// Sets a numeric library's digest, version string and GPU code, as a second pass scanned the
    /// file at `path` (a resolved path), when it is still the one layer `layer` wrote and
    /// was not scanned; whether they were set.
    pub(crate) fn set_library(&mut self, path: &str, layer: usize, read: &Stored) -> bool {
        match self.nodes.get_mut(path) {
            Some(node)
                if node.layer == layer && node.kind == Kind::File && node.sha256.is_none() =>
            {
                node.sha256.clone_from(&read.sha256);
                node.version.clone_from(&read.version);
                node.gpu.clone_from(&read.gpu);
                true
            }
            _ => false,
        }
    }

    /// Sets the kept bytes of the file at `path` (a resolved path), when it is still the one
    /// layer `layer` wrote and they are more than it had; whether they were set.
    pub(crate) fn set_content(&mut self, path: &str, layer: usize, read: &Stored) -> bool {
        let Some(node) = self.nodes.get_mut(path) else {
            return false;
        };
        let more = match (&read.content, &node.content) {
            (Some(new), Some(old)) => new.len() > old.len(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if node.layer != layer || node.kind != Kind::File || !more {
            return false;
        }
        node.content.clone_from(&read.content);
        true
    }

    /// Sets what was read of the model file at `path` (a resolved path): its digest and
    /// what its bytes say, when it is still the one layer `layer` wrote.
    pub(crate) fn set_model(&mut self, path: &str, layer: usize, read: &Stored) {
        if let Some(node) = self.nodes.get_mut(path) {
            if node.layer == layer && node.kind == Kind::File {
                node.sha256.clone_from(&read.sha256);
                node.model.clone_from(&read.model);
            }
        }
    }
}

fn parts(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.to_string(),
            stored: Stored {
                kind,
                size: 1,
                content: Some(Arc::from(&b"x"[..])),
                sha256: None,
                version: None,
                gpu: None,
                model: None,
            },
        }
    }

    fn layer(entries: Vec<Entry>, whiteouts: &[&str], opaque: &[&str]) -> LayerIndex {
        LayerIndex {
            entries,
            whiteouts: whiteouts.iter().map(|s| s.to_string()).collect(),
            opaque: opaque.iter().map(|s| s.to_string()).collect(),
            ..LayerIndex::default()
        }
    }

    #[test]
    fn a_file_read_through_a_link_and_not_kept_is_recorded_and_filled() {
        let mut unkept = entry("srv/meta/packaging.txt", Kind::File);
        unkept.stored.content = None;
        unkept.stored.size = 100;
        let base = layer(
            vec![
                entry("srv", Kind::Folder),
                unkept,
                entry(
                    "site/packaging-24.1.dist-info/METADATA",
                    Kind::Symlink("/srv/meta/packaging.txt".into()),
                ),
            ],
            &[],
            &[],
        );
        let mut tree = Tree::merge([&base]);
        let (resolved, node) = tree
            .resolve("/site/packaging-24.1.dist-info/METADATA")
            .unwrap();
        assert_eq!(resolved, "srv/meta/packaging.txt");
        assert!(node.content.is_none());
        tree.miss(&resolved, 1 << 20);
        tree.miss(&resolved, 10);
        // The most asked for, at most the file's size; then nothing until the next miss.
        assert_eq!(
            tree.take_missed(),
            vec![("srv/meta/packaging.txt".to_string(), 0, Asked::Head(100))]
        );
        assert!(tree.take_missed().is_empty());
        let read = Stored {
            content: Some(Arc::from(&b"Name: packaging"[..])),
            ..entry("x", Kind::File).stored
        };
        // Another layer's file of that path is not this one.
        assert!(!tree.set_content(&resolved, 1, &read));
        assert!(tree.set_content(&resolved, 0, &read));
        assert_eq!(
            tree.resolve("site/packaging-24.1.dist-info/METADATA")
                .unwrap()
                .1
                .content
                .as_deref(),
            Some(&b"Name: packaging"[..])
        );
    }

    #[test]
    fn whiteouts_and_opaque_folders_hide_lower_layers() {
        let base = layer(
            vec![
                entry("etc", Kind::Folder),
                entry("etc/a", Kind::File),
                entry("etc/b", Kind::File),
                entry("opt", Kind::Folder),
                entry("opt/x", Kind::File),
            ],
            &[],
            &[],
        );
        let top = layer(
            vec![entry("opt/y", Kind::File), entry("etc/c", Kind::File)],
            &["etc/a"],
            &["opt"],
        );
        let tree = Tree::merge([&base, &top]);
        let names = |folder: &str| -> Vec<String> {
            tree.children(folder)
                .map(|(_, n, _)| n.to_string())
                .collect()
        };
        assert_eq!(names("etc"), vec!["b", "c"]);
        assert_eq!(names("opt"), vec!["y"]);
        assert_eq!(tree.resolve("/etc/c").unwrap().1.layer, 1);
        assert_eq!(tree.resolve("/etc/b").unwrap().1.layer, 0);
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        let base = layer(
            vec![
                entry("usr/bin/python3.11", Kind::File),
                entry("usr/bin/python3", Kind::Symlink("python3.11".into())),
                entry("bin", Kind::Symlink("usr/bin".into())),
                entry("app/escape", Kind::Symlink("../../../../etc/shadow".into())),
                entry("etc/shadow", Kind::File),
                entry("app/abs", Kind::Symlink("/usr/bin/python3".into())),
                entry("loop", Kind::Symlink("loop".into())),
            ],
            &[],
            &[],
        );
        let tree = Tree::merge([&base]);
        assert_eq!(
            tree.resolve("/bin/python3").unwrap().0,
            "usr/bin/python3.11"
        );
        assert_eq!(tree.resolve("/app/abs").unwrap().0, "usr/bin/python3.11");
        // `..` above the root stays at the image's root: the image's file, not the host's.
        assert_eq!(tree.resolve("/app/escape").unwrap().0, "etc/shadow");
        assert!(tree.resolve("/loop").is_none());
        assert_eq!(tree.lookup("/bin/python3").unwrap().0, "usr/bin/python3");
    }
}
