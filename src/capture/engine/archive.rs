//! Reading files out of an image through the engine's archive endpoint: a tar stream of one
//! path, parsed entry by entry on a blocking thread while it arrives, so neither a layer nor
//! a model is ever held whole in memory. Paths in the archive are never joined onto host
//! paths, and symlinks are resolved inside the archive, never on the host.

use std::io::{self, Read};

use bollard::query_parameters::{ContainerArchiveInfoOptions, DownloadFromContainerOptions};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::connection::Engine;

/// Why an archive could not be read.
pub(crate) enum ArchiveError {
    /// The path does not exist in the container.
    NotFound,
    /// Anything else, as text.
    Other(String),
}

/// Streams `path` out of container `id` and hands the tar to `consume` on a blocking thread.
pub(super) async fn read_archive<T: Send + 'static>(
    engine: &Engine,
    id: &str,
    path: &str,
    rest: Rest,
    consume: impl FnOnce(&mut dyn Read) -> io::Result<T> + Send + 'static,
) -> Result<T, ArchiveError> {
    let options = DownloadFromContainerOptions {
        path: path.to_string(),
    };
    let stream = engine.docker().download_from_container(id, Some(options));
    match pump(stream, engine.limit(), rest, consume).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ArchiveError::Other(crate::error::untrusted(error))),
        Err(Pumped::Stream(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        })) => Err(ArchiveError::NotFound),
        Err(Pumped::Stream(error)) => Err(ArchiveError::Other(engine.describe(error))),
        Err(Pumped::Silent(limit)) => Err(ArchiveError::Other(silent(limit))),
        Err(Pumped::Consumer(detail)) => Err(ArchiveError::Other(detail)),
    }
}

/// An entry's path in an archive of the endpoint, relative to the archived path: the
/// archive's root is that path's own name (`""` is the path itself).
pub(crate) fn relative_name(name: &str) -> String {
    name.trim_end_matches('/')
        .split_once('/')
        .map_or(String::new(), |(_, rest)| rest.to_string())
}

/// What [`pump`] does with what the consumer leaves unread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// Read it to the end: the stream's own end (or failure) is part of the answer.
    Drain,
    /// Drop the stream: the consumer read all it wanted (a file's head).
    Drop,
}

/// An engine's stream that went silent, for messages.
pub(crate) fn silent(limit: std::time::Duration) -> String {
    crate::settings::waited(limit, "ENVLOCK_ENGINE_TIMEOUT")
}

/// Why a [`pump`] broke off.
pub(crate) enum Pumped<E> {
    /// The stream failed (the consumer saw an error at that point).
    Stream(E),
    /// The stream sent nothing for this long.
    Silent(std::time::Duration),
    /// The consumer's thread died.
    Consumer(String),
}

/// Feeds `stream` to `consume`, which reads it as one byte stream on a blocking thread while
/// it arrives: a tar or a compressed blob is parsed as it comes, never held whole. A stream
/// silent for `idle` (no next piece, its first included) is broken off.
///
/// Why not `tokio-util`'s `StreamReader` + `SyncIoBridge` (in the tree): they turn the
/// stream's error into an `io::Error`, and envlock must keep the engine's own error (a 404
/// is an absent path, anything else a failed read) apart from the consumer's (a corrupt
/// tar), and drain the stream when the consumer stops early.
pub(crate) async fn pump<T: Send + 'static, E>(
    mut stream: impl futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    idle: std::time::Duration,
    rest: Rest,
    consume: impl FnOnce(&mut dyn Read) -> T + Send + 'static,
) -> Result<T, Pumped<E>> {
    let (sender, receiver) = mpsc::channel::<io::Result<bytes::Bytes>>(8);
    let consumer = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            receiver,
            chunk: bytes::Bytes::new(),
        };
        let result = consume(&mut reader);
        // Drain what is left so the producer never waits on a reader that stopped early;
        // or hang up, and the producer stops sending.
        if rest == Rest::Drain {
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        result
    });
    let mut failure = None;
    loop {
        let item = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => {
                failure = Some(Pumped::Silent(idle));
                let _ = sender
                    .send(Err(io::Error::other("the stream went silent")))
                    .await;
                break;
            }
        };
        match item {
            Ok(chunk) => {
                if sender.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                failure = Some(Pumped::Stream(error));
                let _ = sender.send(Err(io::Error::other("the stream broke"))).await;
                break;
            }
        }
    }
    drop(sender);
    let result = consumer
        .await
        .map_err(|error| Pumped::Consumer(error.to_string()))?;
    match failure {
        Some(failure) => Err(failure),
        None => Ok(result),
    }
}

struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.chunk.len());
        buffer[..count].copy_from_slice(&self.chunk.split_to(count));
        Ok(count)
    }
}

/// What the archive endpoint's `HEAD` says of a path: its mode as `lstat` sees it (Go's
/// `os.FileMode`), and, for a symlink, the path it resolves to inside the container.
pub(super) struct RawStat {
    pub(super) mode: u32,
    /// Where a symlink leads, resolved by the engine inside the container; empty otherwise.
    pub(super) link_target: String,
}

/// Go's `os.FileMode` type bits.
pub(super) const MODE_FOLDER: u32 = 1 << 31;
pub(super) const MODE_SYMLINK: u32 = 1 << 27;
/// Device, named pipe, socket, character device, irregular.
const MODE_SPECIAL: u32 = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/// The kind a mode names (a symlink's kind is its target's: stat that).
pub(super) fn kind_of(mode: u32) -> crate::capture::fs::Kind {
    use crate::capture::fs::Kind;
    if mode & MODE_FOLDER != 0 {
        Kind::Folder
    } else if mode & (MODE_SYMLINK | MODE_SPECIAL) != 0 {
        Kind::Other
    } else {
        Kind::File
    }
}

/// `lstat` of `path` in container `id` through the archive endpoint: `Ok(None)` when it is
/// absent (404), an error for any other failure.
pub(super) async fn stat(engine: &Engine, id: &str, path: &str) -> Result<Option<RawStat>, String> {
    let options = ContainerArchiveInfoOptions {
        path: path.to_string(),
    };
    match engine
        .timed(
            engine
                .docker()
                .get_container_archive_info(id, Some(options)),
        )
        .await
    {
        Ok(info) => Ok(Some(RawStat {
            mode: info.file_mode,
            link_target: info.link_target,
        })),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(error) => Err(engine.describe(error)),
    }
}

/// Tar streams for property tests: well-formed archives with hostile entries (paths with
/// `..`, absolute paths, links anywhere, sizes that lie), and raw garbage.
#[cfg(test)]
pub(crate) mod streams {
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = (String, u8, Vec<u8>, String)> {
        let path = prop_oneof![
            "[a-z.]{1,8}(/[a-zA-Z0-9._-]{1,12}){0,3}",
            Just("x/../../etc/passwd".to_string()),
            Just("/abs/olute".to_string()),
            Just("x/.wh..wh..opq".to_string()),
            "x/[a-z]{1,4}\\.(dist-info|egg-info|pth)(/(METADATA|RECORD|WHEEL|INSTALLER))?",
        ];
        let kind = prop_oneof![Just(b'0'), Just(b'1'), Just(b'2'), Just(b'5'), any::<u8>()];
        (
            path,
            kind,
            prop::collection::vec(any::<u8>(), 0..300),
            "[a-z/.]{0,20}",
        )
    }

    /// An archive of hostile entries, or random bytes.
    pub(crate) fn tar() -> impl Strategy<Value = Vec<u8>> {
        let built = prop::collection::vec(entry(), 0..12).prop_map(|entries| {
            let mut builder = tar::Builder::new(Vec::new());
            for (path, kind, data, link) in entries {
                let mut header = tar::Header::new_gnu();
                let _ = header.set_path(&path);
                header.set_entry_type(tar::EntryType::new(kind));
                let _ = header.set_link_name(&link);
                header.set_size(data.len() as u64);
                header.set_cksum();
                let _ = builder.append(&header, &data[..]);
            }
            builder.into_inner().unwrap_or_default()
        });
        prop_oneof![built, prop::collection::vec(any::<u8>(), 0..2048)]
    }
}
