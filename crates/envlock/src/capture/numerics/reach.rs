//! Where the fingerprint reads a runtime's binaries: this machine's files in place, or an
//! image's through its view; and the reading itself, which stops at the first failure.

use std::io::Read as _;
use std::os::unix::fs::FileExt as _;

use super::elf::{self, Dynamic};
use super::fatbin;
use super::scan::{self, version_in, Scanned};
use super::{Runtime, EXTENSION_LIMIT};
use crate::capture::fs::{host::HostFiles, Files, Found, Kind, ReadError};
use crate::lock::GpuCode;

/// What a library's bytes say.
#[derive(Default)]
pub(super) struct Inspected {
    pub(super) version: Option<String>,
    pub(super) sha256: Option<String>,
    pub(super) gpu: Option<GpuCode>,
}

/// Where the runtime's binaries are read.
#[derive(Clone, Copy)]
pub(crate) enum Reach<'a, F> {
    /// This machine (a dev snapshot): files read in place.
    Host,
    /// An image's files (a container, or its layers).
    Image(&'a F),
}

/// A view that gives a library's digest and version string (what an image's layers found
/// as they streamed past, or a container's file streamed out).
#[allow(async_fn_in_trait)]
pub(crate) trait ScanLibrary {
    async fn scan_library(&self, resolved: &str, family: &str) -> Found<Scanned>;
}

impl ScanLibrary for HostFiles {
    async fn scan_library(&self, resolved: &str, family: &str) -> Found<Scanned> {
        match std::fs::File::open(resolved) {
            Ok(mut file) => scan::scan_stream(&mut file, family)
                .map(Some)
                .map_err(|error| ReadError::new(resolved, error)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ReadError::new(resolved, error)),
        }
    }
}

/// A [`Reach`] being read: the first read that failed ends the fingerprint with an error
/// (a library that could not be read is never an absent one).
pub(super) struct Reading<'a, F> {
    pub(super) reach: Reach<'a, F>,
    pub(super) failed: std::sync::Mutex<Option<ReadError>>,
}

impl<F: Files + ScanLibrary> Reading<'_, F> {
    fn keep<T>(&self, read: Result<Option<T>, ReadError>) -> Option<T> {
        read.unwrap_or_else(|error| {
            self.failed
                .lock()
                .expect("never poisoned")
                .get_or_insert(error);
            None
        })
    }

    /// `len` bytes at `offset` of this machine's `file` (at `path`). A range past the end
    /// of the file (the header's offsets are the file's word) is no section; any failure
    /// of the read itself is kept, and ends the fingerprint.
    fn read_at(
        &self,
        file: &std::fs::File,
        path: &str,
        offset: u64,
        len: usize,
    ) -> Option<Vec<u8>> {
        let size = match file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => return self.keep(Err(ReadError::new(path, error))),
        };
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return None;
        }
        let mut bytes = vec![0; len];
        self.keep(match file.read_exact_at(&mut bytes, offset) {
            Ok(()) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(error) => Err(ReadError::new(path, error)),
        })
    }

    /// `path` with its symlinks resolved in the runtime, if it is a file there (what the
    /// probe found, when it looked).
    pub(super) async fn resolve(&self, runtime: &Runtime<'_>, path: &str) -> Option<String> {
        if let Some(answer) = runtime.probed.and_then(|probed| probed.resolved.get(path)) {
            return answer.clone();
        }
        match self.reach {
            Reach::Host => self
                .keep(HostFiles.stat(path).await)
                .filter(|stat| stat.kind == Kind::File)
                .map(|stat| stat.resolved),
            Reach::Image(files) => self
                .keep(files.stat(path).await)
                .filter(|stat| stat.kind == Kind::File)
                .map(|stat| stat.resolved),
        }
    }

    /// The version string inside the library at `resolved`, its GPU code, and its sha256
    /// when `hash`.
    pub(super) async fn inspect(&self, resolved: &str, family: &str, hash: bool) -> Inspected {
        match self.reach {
            Reach::Host => {
                let Some(file) = self.keep(open_host(resolved)) else {
                    return Inspected::default();
                };
                let read = |offset: u64, len: usize| self.read_at(&file, resolved, offset, len);
                let version = elf::strings(&read).and_then(|bytes| version_in(family, &bytes));
                let gpu = scan::is_cuda(family).then(|| fatbin::read(&read)).flatten();
                let sha256 = if hash {
                    let scanned = scan::scan_stream(&mut (&file).take(u64::MAX), family)
                        .map(Some)
                        .map_err(|error| ReadError::new(resolved, error));
                    self.keep(scanned).map(|scanned| scanned.sha256)
                } else {
                    None
                };
                Inspected {
                    version,
                    sha256,
                    gpu,
                }
            }
            Reach::Image(files) => match self.keep(files.scan_library(resolved, family).await) {
                Some(scanned) => Inspected {
                    version: scanned.version,
                    sha256: Some(scanned.sha256),
                    gpu: scanned.gpu,
                },
                None => Inspected::default(),
            },
        }
    }

    /// The dynamic section of the shared object at `path`.
    pub(super) async fn dynamic(&self, runtime: &Runtime<'_>, path: &str) -> Option<Dynamic> {
        if let Some(probed) = runtime.probed {
            if let Some(answer) = probed.dynamic.get(path) {
                let answer = answer.as_ref()?;
                return Some(Dynamic {
                    needed: answer.needed.clone(),
                    search: answer.search.clone(),
                });
            }
            if let Some(answer) = probed.resolved.get(path) {
                answer.as_ref()?;
            }
        }
        match self.reach {
            Reach::Host => {
                let file = self.keep(open_host(path))?;
                let read = |offset: u64, len: usize| self.read_at(&file, path, offset, len);
                elf::dynamic(&read)
            }
            Reach::Image(files) => {
                let bytes = self.keep(files.head(path, EXTENSION_LIMIT).await)?;
                let read = elf::in_memory(&bytes);
                elf::dynamic(&read)
            }
        }
    }
}

/// A file of this machine opened for reading; `None` when it is absent.
fn open_host(path: &str) -> Found<std::fs::File> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(ReadError::new(path, error)),
    }
}
