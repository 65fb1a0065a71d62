//! The Docker engine: the connection (`connection.rs`), the archive endpoint's streams
//! (`archive.rs`), a created-never-started container as a view of an image's files
//! (`container.rs`) and the probe run in a locked-down one (`exec.rs`). Every container
//! envlock creates is removed on every way out.

pub(crate) mod archive;
mod connection;
mod container;
pub(crate) mod exec;
pub(crate) mod jobs;

pub(crate) use archive::{pump, ArchiveError, ArchiveRetry, Pumped, Rest};
pub(crate) use connection::{Engine, Launch, Volume};
pub(crate) use container::Container;

/// For the fuzz targets (`src/fuzzing.rs`): a folder's tar from the archive endpoint.
pub(crate) fn fuzz_folder_tar(tar: &[u8]) {
    container::fuzz_keep_listed(tar);
}
