//! This machine's files, for a dev runtime: the runtime is the host, so the kernel resolves
//! the links.

use std::io::{self, Read as _};

use super::{Entry, Files, Found, Kind, ReadError, Stat, METADATA_LIMIT};

/// The host's file system.
pub(crate) struct HostFiles;

/// `Ok(None)` for the errors that mean "not there".
fn absent_or<T>(path: &str, error: io::Error) -> Found<T> {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Ok(None),
        _ if error.raw_os_error() == Some(libc::ELOOP) => Ok(None),
        _ => Err(ReadError::new(path, error)),
    }
}

fn kind_of(metadata: &std::fs::Metadata) -> Kind {
    if metadata.is_dir() {
        Kind::Folder
    } else if metadata.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

impl Files for HostFiles {
    async fn stat(&self, path: &str) -> Found<Stat> {
        let resolved = match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            Err(error) => return absent_or(path, error),
        };
        match std::fs::metadata(&resolved) {
            Ok(metadata) => Ok(Some(Stat {
                resolved: resolved.to_string_lossy().into_owned(),
                kind: kind_of(&metadata),
            })),
            Err(error) => absent_or(path, error),
        }
    }

    async fn head(&self, path: &str, limit: u64) -> Found<Vec<u8>> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) => return absent_or(path, error),
        };
        match file.metadata() {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => return Ok(None),
            Err(error) => return Err(ReadError::new(path, error)),
        }
        let mut bytes = Vec::new();
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|error| ReadError::new(path, error))?;
        Ok(Some(bytes))
    }

    async fn list(&self, folder: &str) -> Found<Vec<Entry>> {
        let read = match std::fs::read_dir(folder) {
            Ok(read) => read,
            Err(error) => return absent_or(folder, error),
        };
        let mut entries = Vec::new();
        for entry in read {
            let entry = entry.map_err(|error| ReadError::new(folder, error))?;
            // Through a link: what it leads to (a link to nothing is `Other`).
            let path = entry.path();
            let kind = match std::fs::metadata(&path) {
                Ok(metadata) => kind_of(&metadata),
                Err(error) => {
                    absent_or::<()>(&path.to_string_lossy(), error)?;
                    Kind::Other
                }
            };
            entries.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        entries.sort();
        Ok(Some(entries))
    }

    async fn headers(&self, path: &str) -> Found<Vec<u8>> {
        let mut handle = match std::fs::File::open(path) {
            Ok(handle) => handle,
            Err(error) => return absent_or(path, error),
        };
        match handle.metadata() {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => return Ok(None),
            Err(error) => return Err(ReadError::new(path, error)),
        }
        let failed = |error| ReadError::new(path, error);
        let mut bytes = Vec::with_capacity(8192);
        loop {
            let start = bytes.len().saturating_sub(3);
            let read = (&mut handle)
                .take(8192)
                .read_to_end(&mut bytes)
                .map_err(failed)?;
            let tail = &bytes[start..];
            let blank =
                tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n");
            if read == 0 || blank || bytes.len() as u64 >= METADATA_LIMIT {
                return Ok(Some(bytes));
            }
        }
    }
}
