//! The readers: each answers one question about a runtime from its files, through the one
//! view ([`crate::capture::fs::Files`]), whatever the source. What they read of a layer
//! stream or a folder's tar is declared here too ([`distributions::WANTED`],
//! [`select::HEAD_LIMIT`]), so the sources keep exactly that.

pub(crate) mod conda;
pub(crate) mod distributions;
pub(crate) mod facts;
pub(crate) mod history;
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

/// How many bytes of the file at `path` (absolute, in the runtime) some reader reads: what
/// a source that streams a whole image (its layers) keeps. `executable` files keep their
/// head, for the shebangs interpreter selection follows. 0: none (it is still listed).
pub(crate) fn kept_bytes(path: &str, executable: bool) -> u64 {
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = folder.rsplit('/').next().unwrap_or(folder);
    // By name wherever it is: a `.dist-info` reached through a symlink may live in a folder
    // of any name, and what a folder is becomes known only once all layers merge.
    let metadata = WANTED.files.contains(&name)
        || WANTED.is_single(name)
        || (parent == WANTED.conda_meta && name.ends_with(".json"))
        || site::is_layout_file(parent, name)
        || WHOLE_FILES.contains(&path);
    if metadata {
        WANTED.limit
    } else if crate::capture::numerics::is_extension(path) {
        crate::capture::numerics::EXTENSION_LIMIT
    } else if rpm::is_database(path) {
        system::RPM_LIMIT
    } else if executable {
        select::HEAD_LIMIT
    } else {
        0
    }
}
