//! The readers: each answers one question about a runtime from its files, through the one
//! view ([`crate::capture::fs::Files`]), whatever the source. What they read of a layer
//! stream or a folder's tar is declared here too ([`distributions::WANTED`],
//! [`select::HEAD_LIMIT`]), so the sources keep exactly that.

pub(crate) mod conda;
pub(crate) mod distributions;
pub(crate) mod facts;
pub(crate) mod history;
pub(crate) mod imports;
mod rpm;
pub(crate) mod select;
pub(crate) mod site;
pub(crate) mod system;

use distributions::WANTED;

/// Files the readers read whole, by absolute path: os-release, users, package databases.
pub(crate) const WHOLE_FILES: &[&str] = &[
    system::OS_RELEASE[0],
    system::OS_RELEASE[1],
    system::PASSWD,
    system::DPKG_STATUS,
    system::APK_INSTALLED,
];

/// What some reader reads of a file: what a source that streams a whole image keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Nothing (it is still listed).
    Nothing,
    /// At most this many bytes from its start.
    Head(u64),
    /// An executable: its first [`select::HEAD_LIMIT`] bytes when it is a script (for the
    /// shebang interpreter selection follows), else its first two (that say it is none).
    Script,
}

/// What some reader reads of the file at `path` (absolute, in the runtime); `executable`
/// as its mode says.
pub(crate) fn kept(path: &str, executable: bool) -> Kept {
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = folder.rsplit('/').next().unwrap_or(folder);
    // By name wherever it is: a `.dist-info` reached through a symlink may live in a folder
    // of any name, and what a folder is becomes known only once all layers merge.
    let metadata = WANTED.files.contains(&name)
        || WANTED.is_single(name)
        || WANTED.is_pth(parent, name)
        || (parent == WANTED.conda_meta && name.ends_with(".json"))
        || site::is_layout_file(parent, name)
        || WHOLE_FILES.contains(&path);
    if metadata {
        Kept::Head(WANTED.limit)
    } else if crate::capture::numerics::is_extension(path) {
        Kept::Head(crate::capture::numerics::EXTENSION_LIMIT)
    } else if rpm::is_database(path) {
        Kept::Head(system::RPM_LIMIT)
    } else if executable {
        Kept::Script
    } else {
        Kept::Nothing
    }
}

/// The bytes of `reader` that `kept` says to keep; `None` for none.
pub(crate) fn keep(
    reader: &mut impl std::io::Read,
    kept: Kept,
) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let limit = match kept {
        Kept::Nothing => return Ok(None),
        Kept::Head(limit) => limit,
        Kept::Script => select::HEAD_LIMIT,
    };
    let mut bytes = Vec::new();
    reader.take(limit).read_to_end(&mut bytes)?;
    if kept == Kept::Script && !bytes.starts_with(b"#!") {
        bytes.truncate(2);
    }
    Ok(Some(bytes))
}

/// For the fuzz targets (`src/fuzzing.rs`): an RPM header blob.
pub(crate) fn fuzz_rpm_header(blob: &[u8]) {
    rpm::fuzz_header(blob);
}
