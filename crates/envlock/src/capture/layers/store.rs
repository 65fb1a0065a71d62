//! Where a layered image's blobs are: an OCI layout folder, a tar (`docker save` in either
//! layout, or an OCI layout), a registry, or an engine's export stream. Each gives the config
//! blob and the layers in order, and reads a layer as a stream.
//!
//! The layouts and archives are read in `layout.rs`, an engine's export in `export.rs`, the
//! OCI types in `oci.rs`.
//!
//! Names from the image (manifest paths, digests) only ever look up entries of the image's
//! own archive, or a blob by a digest checked to be `sha256:<64 hex>`: never a host path.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::layout::{open_archive, open_layout, Layout};
use super::read::{read_layer, Keep, LayerError, LayerIndex};
use super::registry::Remote;
use crate::capture::engine::{pump, Pumped, Rest};
use crate::capture::source::ImageSource;
use crate::error::{Error, ImageProblem, Result};
use crate::settings::Settings;

/// The largest manifest, index or config read.
pub(super) const JSON_LIMIT: u64 = 16 << 20;

/// One layer blob.
#[derive(Debug, Clone)]
pub(super) struct Blob {
    /// The blob's digest when the store names one, else its diff-id: the key the session
    /// shares it by.
    pub(super) digest: String,
    /// Whether the stored bytes must hash to `digest` (a legacy `docker save` names its
    /// layers by path; their diff-id is checked instead).
    pub(super) verify: bool,
    /// Where it is.
    pub(super) place: Place,
}

impl Blob {
    /// A registry's blob.
    pub(super) fn remote(digest: String) -> Blob {
        Blob {
            digest,
            verify: true,
            place: Place::Remote,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Place {
    /// Bytes of an archive file.
    Span { offset: u64, size: u64 },
    /// A file of a layout folder.
    File(PathBuf),
    /// A blob of the registry.
    Remote,
}

/// An image opened where it lives.
pub(crate) struct Opened {
    /// The config blob.
    pub(crate) config: Vec<u8>,
    /// The layers, base first.
    pub(super) layers: Vec<Blob>,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) repo_digests: Vec<String>,
    /// The archive file the spans are in.
    pub(super) archive: Option<PathBuf>,
    pub(super) remote: Option<Remote>,
}

impl Opened {
    /// An image of a registry.
    pub(super) fn remote(
        config: Vec<u8>,
        layers: Vec<Blob>,
        repo_tags: Vec<String>,
        repo_digests: Vec<String>,
        remote: Remote,
    ) -> Opened {
        Opened {
            config,
            layers,
            repo_tags,
            repo_digests,
            archive: None,
            remote: Some(remote),
        }
    }
}

/// Opens `source` (anything but an engine's image).
pub(crate) async fn open(source: &ImageSource, settings: &Settings) -> Result<Opened> {
    let name = source.to_string();
    match source {
        ImageSource::Engine(_) => unreachable!("an engine's image is not read from its layers"),
        ImageSource::Registry(reference) => super::registry::open(reference, settings).await,
        ImageSource::OciDir(folder) => {
            if let Err(source) = std::fs::read_dir(folder) {
                return Err(Error::Read {
                    path: folder.clone(),
                    source,
                });
            }
            let layout = Layout::Folder(folder.clone());
            let (name, platform) = (name.clone(), settings.platform.clone());
            blocking(move || open_layout(&layout, &name, platform.as_ref()).map(|o| o.at(None)))
                .await
        }
        ImageSource::DockerArchive(path) | ImageSource::OciArchive(path) => {
            let (path, name, platform) = (path.clone(), name.clone(), settings.platform.clone());
            let docker = matches!(source, ImageSource::DockerArchive(_));
            blocking(move || open_archive(&path, &name, docker, platform.as_ref())).await
        }
    }
}

impl Opened {
    /// Reads layer `blob` (the `index`th) with `keep`, checking its digest.
    pub(super) async fn read_layer(
        &self,
        blob: &Blob,
        index: usize,
        keep: &Keep,
        name: &str,
    ) -> Result<LayerIndex> {
        let digest = blob.verify.then(|| blob.digest.clone());
        let keep = keep.clone();
        let read = match (&blob.place, &self.remote) {
            (Place::Remote, Some(remote)) => {
                let stream = remote.blob_stream(&blob.digest).await?;
                match pump(stream, remote.limit(), Rest::Drain, move |raw| {
                    read_layer(raw, digest.as_deref(), &keep)
                })
                .await
                {
                    Ok(read) => read,
                    // oci-client checks the digest too, at the stream's end: that is a
                    // corrupt blob, not a registry gone away.
                    Err(Pumped::Stream(error)) if super::registry::digest_mismatch(&error) => Err(
                        LayerError::Corrupt(format!("its bytes do not match its digest ({error})")),
                    ),
                    Err(Pumped::Stream(error)) => return Err(remote.broken(index, &error)),
                    Err(Pumped::Silent(limit)) => {
                        return Err(remote.broken(
                            index,
                            &std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                crate::settings::waited(
                                    limit,
                                    "ENVLOCK_REGISTRY_TIMEOUT, with retries",
                                ),
                            ),
                        ))
                    }
                    Err(Pumped::Consumer(detail)) => Err(LayerError::Corrupt(detail)),
                }
            }
            (place, _) => {
                let place = place.clone();
                let archive = self.archive.clone();
                tokio::task::spawn_blocking(move || {
                    let mut raw = open_place(&place, archive.as_deref())
                        .map_err(|error| LayerError::Corrupt(error.to_string()))?;
                    read_layer(&mut raw, digest.as_deref(), &keep)
                })
                .await
                .unwrap_or_else(|error| Err(LayerError::Corrupt(error.to_string())))
            }
        };
        read.map_err(|error| layer_error(name, index, &blob.digest, error))
    }
}

pub(super) fn layer_error(name: &str, index: usize, digest: &str, error: LayerError) -> Error {
    let (detail, problem) = match error {
        LayerError::Corrupt(detail) => (detail, ImageProblem::Corrupt),
        LayerError::Hostile(detail) => (detail, ImageProblem::Hostile),
    };
    Error::ImageRead {
        image: name.to_string(),
        detail: format!("layer {index} (`{digest}`) is refused: {detail}"),
        problem,
    }
}

pub(super) fn open_place(
    place: &Place,
    archive: Option<&Path>,
) -> io::Result<Box<dyn Read + Send>> {
    match place {
        Place::Span { offset, size } => {
            let mut file = File::open(archive.ok_or_else(|| io::Error::other("no archive"))?)?;
            file.seek(SeekFrom::Start(*offset))?;
            Ok(Box::new(io::BufReader::with_capacity(
                1 << 20,
                file.take(*size),
            )))
        }
        Place::File(path) => Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            File::open(path)?,
        ))),
        Place::Remote => Err(io::Error::other("a registry blob has no file")),
    }
}

/// Runs file work on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(Error::Read {
                path: PathBuf::new(),
                source: io::Error::other(error.to_string()),
            })
        })
}

pub(super) fn not_an_image(name: &str, detail: impl Into<String>) -> Error {
    Error::ImageRead {
        image: name.to_string(),
        detail: detail.into(),
        problem: ImageProblem::NotAnImage,
    }
}
