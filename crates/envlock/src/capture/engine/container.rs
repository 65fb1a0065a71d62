//! A container of the engine, created and never started, as a view of the image's files
//! ([`fs::Files`]) through the archive endpoint.
//!
//! The endpoint has no folder listing: a folder is listed by streaming its tar once (the
//! engine tars it in its own process), keeping the entries and the files the readers declare
//! they read ([`read::kept`]); later reads under it are answered from that copy, and anything
//! reached through a symlink goes back to the engine, which resolves links inside the
//! container.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use super::archive::{self, ArchiveError, Endpoint, Rest, MODE_SYMLINK};
use super::connection::Engine;
use crate::capture::fs::{self, Entry, Found, Kind as FileKind, ReadError, Stat};
use crate::capture::read;

/// A container of the engine, created and never started, whose files are read.
pub(crate) struct Container<'a> {
    /// Its archive endpoint: every request for its files, one at a time, asked again as
    /// [`archive::ArchiveRetry`] says.
    endpoint: Endpoint<'a>,
    /// Folders streamed so far, by the path they were listed as.
    listed: Mutex<HashMap<String, Arc<Listed>>>,
    /// Folders resolved so far (every link on the way followed), by path.
    folders: Mutex<HashMap<String, String>>,
}

/// A folder's tar, as kept: every entry below it by relative path (`""` is the folder).
#[derive(Default)]
struct Listed {
    /// Where the folder really is (links followed).
    resolved: String,
    entries: BTreeMap<String, Cached>,
}

enum Cached {
    Folder,
    /// A regular file, with its bytes when the readers read it.
    File(Option<Vec<u8>>),
    Link,
    Other,
}

/// What a lookup in the streamed folders found.
enum Hit {
    /// Not in any streamed folder (or behind a link): ask the engine.
    Unknown,
    /// Under a streamed folder, and not there.
    Absent,
    Found(FileKind, Option<Vec<u8>>),
}

impl<'a> Container<'a> {
    /// The files of container `id`.
    pub(crate) fn new(engine: &'a Engine, id: &str) -> Container<'a> {
        Container {
            endpoint: Endpoint::new(engine, id),
            listed: Mutex::new(HashMap::new()),
            folders: Mutex::new(HashMap::new()),
        }
    }

    /// The innermost folder streamed so far that holds `path`, and `path` relative to it.
    fn streamed_root(&self, path: &str) -> Option<(Arc<Listed>, String)> {
        let listed = self.listed.lock().expect("never poisoned");
        let inside = |folder: &str| {
            path == folder
                || (path.starts_with(folder)
                    && (folder.ends_with('/') || path.as_bytes().get(folder.len()) == Some(&b'/')))
        };
        let (folder, tree) = listed
            .iter()
            .filter(|(folder, _)| inside(folder))
            .max_by_key(|(folder, _)| folder.len())?;
        let relative = path[folder.len()..].trim_start_matches('/').to_string();
        Some((tree.clone(), relative))
    }

    /// `path` in the folders streamed so far.
    fn lookup(&self, path: &str, want_bytes: bool) -> Hit {
        let Some((tree, relative)) = self.streamed_root(path) else {
            return Hit::Unknown;
        };
        // A link on the way (not the last part, which the caller follows): the engine knows.
        let mut prefix = String::new();
        for part in fs::parts(&relative) {
            if part == ".." {
                return Hit::Unknown;
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match tree.entries.get(&prefix) {
                None => return Hit::Absent,
                Some(Cached::Link) => return Hit::Unknown,
                Some(_) => {}
            }
        }
        match tree.entries.get(&prefix) {
            None => Hit::Absent,
            Some(Cached::Folder) => Hit::Found(FileKind::Folder, None),
            Some(Cached::File(Some(bytes))) if want_bytes => {
                Hit::Found(FileKind::File, Some(bytes.clone()))
            }
            Some(Cached::File(None)) if want_bytes => Hit::Unknown,
            Some(Cached::File(_)) => Hit::Found(FileKind::File, None),
            Some(Cached::Link) => Hit::Unknown,
            Some(Cached::Other) => Hit::Found(FileKind::Other, None),
        }
    }

    /// Asks the engine what `path` is, following a final symlink.
    async fn engine_stat(&self, path: &str) -> Found<Stat> {
        let failed = |fault: crate::error::EngineFault| ReadError::new(path, fault);
        if fs::cannot_exist(path) {
            return Ok(None);
        }
        let Some(raw) = self.endpoint.stat(path).await.map_err(failed)? else {
            return Ok(None);
        };
        if raw.mode & MODE_SYMLINK == 0 {
            // The engine followed the links of the folders on the way, and says only where a
            // last part that is a link leads: the folder is resolved on its own.
            let folder = Box::pin(self.resolve_folder(&fs::parent(path))).await?;
            return Ok(Some(Stat {
                resolved: fs::join(&folder, fs::base_name(path)),
                kind: archive::kind_of(raw.mode),
            }));
        }
        // The engine resolved the link inside the container; what it leads to decides.
        let resolved = raw.link_target;
        let target = self.endpoint.stat(&resolved).await.map_err(failed)?;
        Ok(target.map(|target| Stat {
            kind: match target.mode & MODE_SYMLINK {
                0 => archive::kind_of(target.mode),
                _ => FileKind::Other,
            },
            resolved,
        }))
    }

    /// Where the folder `folder` really is, every link on the way followed (remembered: the
    /// readers look in the same folders again and again).
    async fn resolve_folder(&self, folder: &str) -> Result<String, ReadError> {
        if folder == "/" {
            return Ok(folder.to_string());
        }
        if let Some(known) = self.folders.lock().expect("never poisoned").get(folder) {
            return Ok(known.clone());
        }
        let resolved = match self.engine_stat(folder).await? {
            Some(stat) => stat.resolved,
            // Gone while its file was there: the engine erred.
            None => return Err(ReadError::new(folder, "the engine lost it while reading")),
        };
        self.folders
            .lock()
            .expect("never poisoned")
            .insert(folder.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// Streams the folder `folder` (at `resolved`) once, keeping what the readers read.
    async fn stream_folder(&self, folder: &str, resolved: &str) -> Result<Arc<Listed>, ReadError> {
        let root = resolved.to_string();
        let read = self
            .endpoint
            .read(resolved, Rest::Drain, move |tar| keep_listed(tar, &root))
            .await;
        let mut listed = read.map_err(|error| archive_failure(folder, error))?;
        listed.resolved = resolved.to_string();
        let listed = Arc::new(listed);
        self.listed
            .lock()
            .expect("never poisoned")
            .insert(folder.to_string(), listed.clone());
        Ok(listed)
    }

    async fn engine_head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        let Some(found) = self.engine_stat(path).await? else {
            return Ok(None);
        };
        if found.kind != FileKind::File {
            return Ok(None);
        }
        let read = self.endpoint.read(&found.resolved, Rest::Drop, move |tar| {
            let mut archive = tar::Archive::new(tar);
            let mut bytes = Vec::new();
            let entry = archive
                .entries()?
                .next()
                .ok_or_else(|| io::Error::other("the engine sent an empty archive"))?;
            entry?.take(limit).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        match read.await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) => Err(archive_failure(path, error)),
        }
    }
}

fn archive_failure(path: &str, error: ArchiveError) -> ReadError {
    match error {
        // It was there a moment ago: the container's files do not change, so the engine erred.
        ArchiveError::NotFound => ReadError::new(path, "the engine lost it while reading"),
        ArchiveError::Other(detail) => ReadError::new(path, detail),
    }
}

/// Keeps a folder's tar: every entry, and the bytes of the files the readers read.
fn keep_listed(tar: &mut dyn Read, root: &str) -> std::io::Result<Listed> {
    let mut listed = Listed::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let relative = archive::relative_name(&entry.path()?.to_string_lossy());
        let kind = entry.header().entry_type();
        let cached = if kind.is_dir() {
            Cached::Folder
        } else if kind.is_symlink() || kind.is_hard_link() {
            Cached::Link
        } else if kind.is_file() {
            // What the readers read (the layers keep the same), but no script heads: those
            // are asked for, with what they are; anything else is asked for too.
            let kept = match read::kept(&fs::join(root, &relative), false) {
                read::Kept::Script => read::Kept::Nothing,
                kept => kept,
            };
            Cached::File(read::keep(&mut entry, kept)?)
        } else {
            Cached::Other
        };
        listed.entries.insert(relative, cached);
    }
    Ok(listed)
}

impl fs::Files for Container<'_> {
    async fn stat(&self, path: &str) -> Found<Stat> {
        match self.lookup(path, false) {
            Hit::Absent => Ok(None),
            Hit::Found(kind, _) => {
                let (root, relative) = self.streamed_root(path).expect("a lookup found it");
                Ok(Some(Stat {
                    resolved: fs::normalize(&fs::join(&root.resolved, &relative)),
                    kind,
                }))
            }
            Hit::Unknown => self.engine_stat(path).await,
        }
    }

    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        match self.lookup(path, true) {
            Hit::Absent | Hit::Found(FileKind::Folder | FileKind::Other, _) => Ok(None),
            Hit::Found(FileKind::File, Some(mut bytes)) => {
                bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(Some(bytes))
            }
            Hit::Found(FileKind::File, None) | Hit::Unknown => self.engine_head(path, limit).await,
        }
    }

    async fn list(&self, folder: &str) -> Found<Vec<Entry>> {
        let Some(found) = fs::Files::stat(self, folder).await? else {
            return Ok(None);
        };
        if found.kind != FileKind::Folder {
            return Ok(None);
        }
        let known = self
            .listed
            .lock()
            .expect("never poisoned")
            .get(folder)
            .cloned();
        let listed = match known {
            Some(listed) => listed,
            None => match self.lookup(folder, false) {
                // Inside a folder streamed before: its entries are there already.
                Hit::Found(..) => return Ok(Some(self.children_of(folder).await?)),
                _ => self.stream_folder(folder, &found.resolved).await?,
            },
        };
        Ok(Some(self.children(folder, &listed, "").await?))
    }
}

impl Container<'_> {
    async fn children_of(&self, folder: &str) -> Result<Vec<Entry>, ReadError> {
        let (listed, relative) = self.streamed_root(folder).expect("a lookup found it");
        self.children(folder, &listed, &relative).await
    }

    /// The entries directly in `relative` of `listed`, links followed through the engine.
    async fn children(
        &self,
        folder: &str,
        listed: &Listed,
        relative: &str,
    ) -> Result<Vec<Entry>, ReadError> {
        let prefix = if relative.is_empty() {
            String::new()
        } else {
            format!("{relative}/")
        };
        let mut entries = Vec::new();
        for (path, cached) in listed.entries.range(prefix.clone()..) {
            let Some(name) = path.strip_prefix(&prefix) else {
                break;
            };
            if name.is_empty() || name.contains('/') {
                continue;
            }
            let kind = match cached {
                Cached::Folder => FileKind::Folder,
                Cached::File(_) => FileKind::File,
                Cached::Other => FileKind::Other,
                Cached::Link => self
                    .engine_stat(&fs::join(folder, name))
                    .await?
                    .map_or(FileKind::Other, |stat| stat.kind),
            };
            entries.push(Entry {
                name: name.to_string(),
                kind,
            });
        }
        entries.sort();
        Ok(entries)
    }
}

impl Container<'_> {
    /// Streams `path` out of the container and hands the tar to `consume`.
    /// `consume` may be called again from the start: a read the engine cut is asked again.
    pub(crate) async fn read_archive<T: Send + 'static>(
        &self,
        path: &str,
        consume: impl Fn(&mut dyn Read) -> io::Result<T> + Clone + Send + 'static,
    ) -> Result<T, ArchiveError> {
        self.endpoint.read(path, Rest::Drain, consume).await
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): a folder's tar from the archive endpoint.
pub(super) fn fuzz_keep_listed(tar: &[u8]) {
    let _ = keep_listed(&mut &tar[..], "/site");
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn folder_streams_never_panic(tar in super::super::archive::streams::tar()) {
            let _ = keep_listed(&mut &tar[..], "/site");
        }
    }
}
