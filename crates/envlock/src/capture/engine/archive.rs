//! Reading files out of an image through the engine's archive endpoint: a tar stream of one
//! path, parsed entry by entry on a blocking thread while it arrives, so neither a layer nor
//! a model is ever held whole in memory. Paths in the archive are never joined onto host
//! paths, and symlinks are resolved inside the archive, never on the host.

use std::io::{self, Read};
use std::time::Duration;

use bollard::query_parameters::{ContainerArchiveInfoOptions, DownloadFromContainerOptions};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::connection::Engine;
use crate::error::EngineFault;

/// Why an archive could not be read.
pub(crate) enum ArchiveError {
    /// The path does not exist in the container.
    NotFound,
    /// Anything else, as text.
    Other(String),
}

/// How an archive read that failed is asked again: the one decision for every request of
/// the archive endpoint (the `HEAD` of a stat and the `GET` of a tar), which only read.
///
/// Asked again: a connection the engine (or a proxy in front of it) cut before the answer
/// ended, and a `GET` answering 404 for a path a stat then finds. The second is the engine's
/// mount reference count racing around concurrent copies of one container (the moby#10992
/// discussion): a busy engine (an audit's workers, parallel CI jobs) briefly says a file it
/// just stat'ed is not there. Never asked again: a timeout (the stall already took
/// `ENVLOCK_ENGINE_TIMEOUT`), any other status (a 500 is the engine's answer), a tar that does
/// not parse. Told apart by bollard's error variants and hyper's and the socket's error
/// kinds, never by a message's text.
///
/// The pauses are shorter than a registry's (1, 2, 4 s): the engine is local (or one hop
/// away), and what is retried is a momentary race or a cut connection, not a server asking
/// for patience. The race lasts as long as a neighbour's copy out of the container (a
/// `docker cp` of a site folder or of the dpkg database: 0.1 to 0.2 s on the test machine,
/// the CLI's start included), which the pauses of 0.25, 0.5 and 1 s outlast; they add at
/// most 1.75 s to a read that fails for good.
pub(crate) struct ArchiveRetry;

impl ArchiveRetry {
    /// How many times an archive request is made in all.
    pub(crate) const TRIES: u32 = 4;

    /// The pause before the `n`-th retry (from 0): 250 ms, doubled each time.
    pub(crate) fn pause(n: u32) -> Duration {
        Duration::from_millis(250) * 2u32.pow(n)
    }

    /// What a try that failed with `error` leads to.
    fn verdict(error: &bollard::errors::Error) -> Verdict {
        use bollard::errors::Error as E;
        match error {
            E::DockerResponseServerError {
                status_code: 404, ..
            } => Verdict::AbsentOrLost,
            // (Matched by variant: these are `#[error(transparent)]`, whose `source()` skips
            // the error they hold.)
            E::HyperResponseError { err } if connection_broke(err) => Verdict::Again,
            E::HyperLegacyError { err } if connection_broke(err) => Verdict::Again,
            E::IOError { err } if connection_broke(err) => Verdict::Again,
            _ => Verdict::Final,
        }
    }
}

/// What [`ArchiveRetry::verdict`] says of a failed try.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The connection broke: ask again.
    Again,
    /// A 404: absence when a stat agrees, else the engine lost the path for a moment.
    AbsentOrLost,
    /// The answer stands.
    Final,
}

/// Whether `error` (or a cause of it) is a connection cut before the answer ended: hyper's
/// incomplete message, a closed or cancelled connection, or a socket reset, aborted, broken
/// or ended early. A timeout is not (hyper's or the socket's).
fn connection_broke(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return false;
            }
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                return true;
            }
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            use io::ErrorKind as K;
            match io.kind() {
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    return true
                }
                K::TimedOut => return false,
                _ => {}
            }
        }
        // An `io::Error` holding another error names it by `get_ref`, not `source`.
        cause = error.source().or_else(|| {
            error
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .map(|inner| inner as &(dyn std::error::Error + 'static))
        });
    }
    false
}

/// One container's archive endpoint: every stat and tar read of its files, one at a time
/// (the engine mounts the container's file system for each; envlock's own reads of one
/// container never overlap, so they never race each other), each asked again as
/// [`ArchiveRetry`] says.
pub(super) struct Endpoint<'a> {
    engine: &'a Engine,
    id: String,
    /// Held for one request (its whole body included).
    gate: tokio::sync::Mutex<()>,
}

impl<'a> Endpoint<'a> {
    /// The archive endpoint of container `id`.
    pub(super) fn new(engine: &'a Engine, id: &str) -> Endpoint<'a> {
        Endpoint {
            engine,
            id: id.to_string(),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// Streams `path` out of the container and hands the tar to `consume` on a blocking
    /// thread; asked again from the start (a fresh `consume`) as [`ArchiveRetry`] says. A 404
    /// is [`ArchiveError::NotFound`] only when a stat agrees the path is absent.
    pub(super) async fn read<T: Send + 'static, C>(
        &self,
        path: &str,
        rest: Rest,
        consume: C,
    ) -> Result<T, ArchiveError>
    where
        C: Fn(&mut dyn Read) -> io::Result<T> + Clone + Send + 'static,
    {
        let mut tries = 1;
        loop {
            let failed = match self.read_once(path, rest, consume.clone()).await {
                Ok(value) => return Ok(value),
                Err(Failed::Final(error)) => return Err(error),
                Err(Failed::Engine(error)) => error,
            };
            let verdict = ArchiveRetry::verdict(&failed);
            if verdict == Verdict::AbsentOrLost
                && self
                    .stat(path)
                    .await
                    .map_err(|fault| ArchiveError::Other(fault.to_string()))?
                    .is_none()
            {
                return Err(ArchiveError::NotFound);
            }
            if verdict == Verdict::Final || tries == ArchiveRetry::TRIES {
                return Err(ArchiveError::Other(match verdict {
                    Verdict::AbsentOrLost => format!(
                        "the engine answered 404 for it {tries} times while a stat found it \
                         (a busy engine racing over the container's mount; try again)"
                    ),
                    Verdict::Again => format!(
                        "{} (the connection broke on each of {tries} tries)",
                        self.engine.describe(failed)
                    ),
                    Verdict::Final => self.engine.describe(failed),
                }));
            }
            tokio::time::sleep(ArchiveRetry::pause(tries - 1)).await;
            tries += 1;
        }
    }

    /// One try of [`Endpoint::read`].
    async fn read_once<T: Send + 'static>(
        &self,
        path: &str,
        rest: Rest,
        consume: impl FnOnce(&mut dyn Read) -> io::Result<T> + Send + 'static,
    ) -> Result<T, Failed> {
        let _turn = self.gate.lock().await;
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let stream = self
            .engine
            .docker()
            .download_from_container(&self.id, Some(options));
        match pump(stream, self.engine.limit(), rest, consume).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failed::Final(ArchiveError::Other(crate::error::untrusted(
                error,
            )))),
            Err(Pumped::Stream(error)) => Err(Failed::Engine(error)),
            Err(Pumped::Silent(limit)) => Err(Failed::Final(ArchiveError::Other(silent(limit)))),
            Err(Pumped::Consumer(detail)) => Err(Failed::Final(ArchiveError::Other(detail))),
        }
    }

    /// `lstat` of `path` in the container: `Ok(None)` when it is absent (404), an error for
    /// any other failure; a cut connection is asked again as [`ArchiveRetry`] says.
    pub(super) async fn stat(&self, path: &str) -> Result<Option<RawStat>, EngineFault> {
        let mut tries = 1;
        loop {
            let options = ContainerArchiveInfoOptions {
                path: path.to_string(),
            };
            let answer = {
                let _turn = self.gate.lock().await;
                self.engine
                    .timed(
                        self.engine
                            .docker()
                            .get_container_archive_info(&self.id, Some(options)),
                    )
                    .await
            };
            let error = match answer {
                Ok(info) => {
                    return Ok(Some(RawStat {
                        mode: info.file_mode,
                        link_target: info.link_target,
                    }))
                }
                Err(error) => error,
            };
            match ArchiveRetry::verdict(&error) {
                Verdict::AbsentOrLost => return Ok(None),
                Verdict::Again if tries < ArchiveRetry::TRIES => {
                    tokio::time::sleep(ArchiveRetry::pause(tries - 1)).await;
                    tries += 1;
                }
                _ => return Err(self.engine.fault(error)),
            }
        }
    }
}

/// How one try of a read failed.
enum Failed {
    /// The engine's stream or answer failed: [`ArchiveRetry`] decides.
    Engine(bollard::errors::Error),
    /// Nothing to ask again: a stall, a tar that does not parse.
    Final(ArchiveError),
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

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::errors::Error as E;

    fn status(status_code: u16) -> E {
        E::DockerResponseServerError {
            status_code,
            message: "injected".to_string(),
        }
    }

    fn io(kind: io::ErrorKind) -> E {
        E::IOError {
            err: io::Error::new(kind, "injected"),
        }
    }

    #[test]
    fn only_a_cut_connection_and_a_404_are_asked_again() {
        assert_eq!(ArchiveRetry::verdict(&status(404)), Verdict::AbsentOrLost);
        for error in [
            io(io::ErrorKind::ConnectionReset),
            io(io::ErrorKind::BrokenPipe),
            io(io::ErrorKind::UnexpectedEof),
            io(io::ErrorKind::ConnectionAborted),
        ] {
            assert_eq!(ArchiveRetry::verdict(&error), Verdict::Again, "{error:?}");
        }
        for error in [
            status(500),
            status(409),
            E::RequestTimeoutError,
            io(io::ErrorKind::TimedOut),
            io(io::ErrorKind::PermissionDenied),
            // The message says "connection reset", the kind does not: the kind decides.
            E::IOError {
                err: io::Error::other("connection reset by peer"),
            },
        ] {
            assert_eq!(ArchiveRetry::verdict(&error), Verdict::Final, "{error:?}");
        }
        // A cause below the error counts.
        let wrapped = E::IOError {
            err: io::Error::other(io::Error::from(io::ErrorKind::ConnectionReset)),
        };
        assert_eq!(ArchiveRetry::verdict(&wrapped), Verdict::Again);
    }

    #[test]
    fn the_pauses_double_from_a_quarter_second() {
        let pauses: Vec<Duration> = (0..ArchiveRetry::TRIES - 1)
            .map(ArchiveRetry::pause)
            .collect();
        assert_eq!(pauses, [250, 500, 1000].map(Duration::from_millis).to_vec());
    }
}
