//! The one read-only view of a runtime's files, at the bottom of capture: every source
//! implements [`Files`] (the host, an engine's container through the archive endpoint, the
//! tree an image's layers make, the exec probe's answer) and every reader above it (the
//! Python site, distributions, conda, system packages, interpreter selection, an image's
//! numerics and models) reads through it, so one question about a runtime's files has one
//! answer whatever the source. (A dev runtime's numeric libraries and model files, which
//! may be gigabytes, are read in place by random access and by the parallel hasher.)
//!
//! Two rules every implementation keeps:
//! - Symlinks resolve inside the runtime, with the kernel's semantics (an absolute target
//!   starts at the runtime's root, `..` at the root stays there, 40 hops make a loop), in
//!   the view itself: no reader handles links. Paths are the runtime's, never joined onto
//!   a host path (except by the host view, whose runtime is this machine).
//! - Absence and failure differ: `Ok(None)` means "not there"; every other failure (an
//!   engine that answers 500, a stream that breaks, a permission error) is a [`ReadError`]
//!   that names the path, and capture stops with it rather than write a lock of what it
//!   could not see.

pub(crate) mod host;
pub(crate) mod memory;

/// What a path is, after symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Folder,
    /// A device, a FIFO, a socket, a link that leads nowhere: nothing a reader opens.
    Other,
}

/// A path of the runtime, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The path with every symlink on the way resolved, absolute.
    pub(crate) resolved: String,
    pub(crate) kind: Kind,
}

/// One name in a folder, with what it is after symlinks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

/// A read that failed for another reason than absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadError {
    /// The path inside the runtime.
    pub(crate) path: String,
    /// What went wrong, lower case.
    pub(crate) detail: String,
    /// Whose fault it is: the runtime's source, or envlock's own layer reader.
    pub(crate) failure: Failure,
}

/// Why a read failed, for what the user is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The source failed: an engine error, a broken stream, a permission error.
    Source,
    /// A view over an image's layers kept too little of the file for the reader (the
    /// layers were read for the files the readers declare): envlock's bug.
    NotKept,
}

impl ReadError {
    /// A read the source failed.
    pub(crate) fn new(path: &str, detail: impl std::fmt::Display) -> ReadError {
        ReadError {
            path: path.to_string(),
            detail: detail.to_string(),
            failure: Failure::Source,
        }
    }

    /// A read of a file whose bytes the layer view did not keep.
    pub(crate) fn not_kept(path: &str, detail: impl std::fmt::Display) -> ReadError {
        ReadError {
            failure: Failure::NotKept,
            ..ReadError::new(path, detail)
        }
    }
}

/// `Ok(None)`: absent.
pub(crate) type Found<T> = Result<Option<T>, ReadError>;

/// Read-only access to a runtime's files, by absolute path inside the runtime.
#[allow(async_fn_in_trait)]
pub(crate) trait Files: Sync {
    /// What `path` is, symlinks resolved.
    async fn stat(&self, path: &str) -> Found<Stat>;

    /// At most `limit` bytes from the start of the file at `path`; `None` when it is absent
    /// or not a file.
    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>>;

    /// The names in the folder `folder`, sorted; `None` when it is absent or not a folder.
    async fn list(&self, folder: &str) -> Found<Vec<Entry>>;

    /// At least the header block of a METADATA-style file (up to its first blank line, or
    /// [`METADATA_LIMIT`] bytes); the body, often a long README, is not needed.
    async fn headers(&self, path: &str) -> Found<Vec<u8>> {
        self.head(path, METADATA_LIMIT).await
    }

    /// Whether a file or folder is at `path`.
    async fn exists(&self, path: &str) -> Result<bool, ReadError> {
        Ok(self.stat(path).await?.is_some())
    }

    /// Whether a folder is at `path`.
    async fn is_folder(&self, path: &str) -> Result<bool, ReadError> {
        Ok(self
            .stat(path)
            .await?
            .is_some_and(|stat| stat.kind == Kind::Folder))
    }

    /// A small file read whole (up to [`METADATA_LIMIT`]).
    async fn read(&self, path: &str) -> Found<Vec<u8>> {
        self.head(path, METADATA_LIMIT).await
    }
}

/// The most bytes kept of one metadata file (larger ones are cut).
pub(crate) const METADATA_LIMIT: u64 = 16 << 20;

/// `a/b` joined as the runtime's paths join: `join("/x", "y")` is `/x/y`; an absolute
/// `name` replaces the folder (as `os.path.join` does).
pub(crate) fn join(folder: &str, name: &str) -> String {
    if name.starts_with('/') {
        return name.to_string();
    }
    format!("{}/{name}", folder.trim_end_matches('/'))
}

/// Whether no file can be at `path` on Linux: a part longer than `NAME_MAX` (255 bytes) or
/// a path longer than `PATH_MAX` (`ENAMETOOLONG`), as a truncated shebang names. Such a path
/// is absent; asking an engine about it gives an error, not a "not found".
pub(crate) fn cannot_exist(path: &str) -> bool {
    path.len() >= 4096 || path.split('/').any(|part| part.len() > 255)
}

/// `path` with `.` and `..` collapsed by text, as `os.path.abspath` does (no symlink
/// resolved: that is the view's work when the path is read).
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The folder holding `path`: `/` for `/x`.
pub(crate) fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((parent, _)) => parent.to_string(),
    }
}

/// The last part of `path`.
pub(crate) fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Parts of a path, `.` and empty ones dropped.
pub(crate) fn parts(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_normalize_as_python_does() {
        assert_eq!(join("/site", "x.pth"), "/site/x.pth");
        assert_eq!(join("/site/", "/abs"), "/abs");
        assert_eq!(normalize("/site/../lib/./x/"), "/lib/x");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(parent("/opt/venv/bin"), "/opt/venv");
        assert_eq!(parent("/bin"), "/");
        assert_eq!(base_name("/usr/bin/python3"), "python3");
    }
}
