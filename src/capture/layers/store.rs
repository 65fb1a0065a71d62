//! Where a layered image's blobs are: an OCI layout folder, a tar (`docker save` in either
//! layout, or an OCI layout), a registry, or an engine's export stream. Each gives the config
//! blob and the layers in order, and reads a layer as a stream.
//!
//! Names from the image (manifest paths, digests) only ever look up entries of the image's
//! own archive, or a blob by a digest checked to be `sha256:<64 hex>`: never a host path.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::read::{read_layer, Keep, LayerError, LayerIndex};
use super::registry::Remote;
use crate::capture::engine::{pump, Engine, Pumped};
use crate::capture::fs;
use crate::capture::source::ImageSource;
use crate::error::{Error, ImageProblem, Result};
use crate::lock::Sha256;
use crate::settings::{ImagePlatform, Settings};

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
    verify: bool,
    /// Where it is.
    place: Place,
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
enum Place {
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
    archive: Option<PathBuf>,
    remote: Option<Remote>,
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
                match pump(stream, move |raw| read_layer(raw, digest.as_deref(), &keep)).await {
                    Ok(read) => read,
                    // oci-client checks the digest too, at the stream's end: that is a
                    // corrupt blob, not a registry gone away.
                    Err(Pumped::Stream(error))
                        if error.to_string().starts_with("Invalid digest") =>
                    {
                        Err(LayerError::Corrupt(format!(
                            "its bytes do not match its digest ({error})"
                        )))
                    }
                    Err(Pumped::Stream(error)) => {
                        return Err(remote.broken(format!("layer {index} broke off: {error}")))
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

fn open_place(place: &Place, archive: Option<&Path>) -> io::Result<Box<dyn Read + Send>> {
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
async fn blocking<T: Send + 'static>(
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

fn not_an_image(name: &str, detail: impl Into<String>) -> Error {
    Error::ImageRead {
        image: name.to_string(),
        detail: detail.into(),
        problem: ImageProblem::NotAnImage,
    }
}

// Why not `oci-spec`'s types (in the tree through the registry client): they are strict
// where envlock reads hostile and legacy layouts leniently (Docker's manifest lists, missing
// optional fields, annotations of any shape), and every field kept here is checked where it
// is used (digests by `valid_digest`, paths by `archive_name`).

/// An OCI content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    pub(super) digest: String,
    #[serde(default)]
    pub(super) platform: Option<Platform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// A descriptor's platform.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Platform {
    #[serde(default)]
    pub(super) os: String,
    #[serde(default)]
    pub(super) architecture: String,
    #[serde(default)]
    pub(super) variant: Option<String>,
}

/// An image index (OCI) or manifest list (Docker), or an image manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    #[serde(default)]
    pub(super) manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub(super) config: Option<Descriptor>,
    #[serde(default)]
    pub(super) layers: Vec<Descriptor>,
}

/// The manifest of an index to read: the one for `platform` (default: this machine's).
pub(super) fn pick(
    entries: &[Descriptor],
    platform: Option<&ImagePlatform>,
    name: &str,
) -> Result<Descriptor> {
    // Attestations and signatures ride along as `unknown/unknown` entries.
    let images: Vec<&Descriptor> = entries
        .iter()
        .filter(|entry| {
            entry
                .platform
                .as_ref()
                .is_none_or(|platform| platform.os != "unknown")
        })
        .collect();
    if platform.is_none() && images.len() == 1 {
        return Ok(images[0].clone());
    }
    let wanted = platform.cloned().unwrap_or_else(ImagePlatform::host);
    let found = images.iter().find(|entry| {
        entry.platform.as_ref().is_some_and(|platform| {
            wanted.matches(
                &platform.os,
                &platform.architecture,
                platform.variant.as_deref(),
            )
        })
    });
    if let Some(found) = found {
        return Ok((*found).clone());
    }
    let offered: Vec<String> = images
        .iter()
        .filter_map(|entry| entry.platform.as_ref())
        .map(|p| match &p.variant {
            Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    Err(Error::ImageRead {
        image: name.to_string(),
        detail: format!(
            "its index has no image for {wanted}{}; it has {}",
            if platform.is_none() {
                " (this machine's platform)"
            } else {
                ""
            },
            if offered.is_empty() {
                "none with a platform".to_string()
            } else {
                offered.join(", ")
            }
        ),
        problem: ImageProblem::Platform,
    })
}

/// Whether `digest` is `sha256:<64 lower-case hex>`: the only form used to name a file.
pub(super) fn valid_digest(digest: &str) -> bool {
    Sha256::is_valid(digest)
}

/// An OCI layout: a folder, or the entries of a tar.
enum Layout {
    Folder(PathBuf),
    Archive(PathBuf, ArchiveIndex),
}

impl Layout {
    /// A small file of the layout (`index.json`, a manifest or config blob), or `None`.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Layout::Folder(folder) => {
                let path = folder.join(name);
                match File::open(&path) {
                    Ok(file) => read_bounded(file)
                        .map(Some)
                        .map_err(|source| Error::Read { path, source }),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(Error::Read { path, source }),
                }
            }
            Layout::Archive(path, index) => index.read(path, name),
        }
    }

    /// Where the blob `digest` is.
    fn place(&self, digest: &str) -> Option<Place> {
        let name = blob_name(digest);
        match self {
            Layout::Folder(folder) => Some(Place::File(folder.join(name))),
            Layout::Archive(_, index) => index.span(&name),
        }
    }

    /// A blob's bytes, checked against its digest.
    fn blob(&self, digest: &str, what: &str, name: &str) -> Result<Vec<u8>> {
        if !valid_digest(digest) {
            return Err(Error::ImageRead {
                image: name.to_string(),
                detail: format!("its {what} is named by `{digest}`, not a sha256 digest"),
                problem: ImageProblem::Hostile,
            });
        }
        let bytes = self
            .read(&blob_name(digest))?
            .ok_or_else(|| not_an_image(name, format!("its {what} blob `{digest}` is missing")))?;
        if Sha256::of(&bytes) != digest {
            return Err(Error::ImageRead {
                image: name.to_string(),
                detail: format!("its {what} blob does not match its digest `{digest}`"),
                problem: ImageProblem::Corrupt,
            });
        }
        Ok(bytes)
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn read_bounded(file: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(JSON_LIMIT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What an opened layout or archive gives, before it knows its archive file.
struct Found {
    config: Vec<u8>,
    layers: Vec<Blob>,
    repo_tags: Vec<String>,
}

impl Found {
    fn at(self, archive: Option<PathBuf>) -> Opened {
        Opened {
            config: self.config,
            layers: self.layers,
            repo_tags: self.repo_tags,
            repo_digests: Vec::new(),
            archive,
            remote: None,
        }
    }
}

/// The image of an OCI layout's `index.json`, for `platform`.
fn open_layout(layout: &Layout, name: &str, platform: Option<&ImagePlatform>) -> Result<Found> {
    let index = layout.read("index.json")?.ok_or_else(|| {
        not_an_image(
            name,
            "it has no `index.json`: it is not an OCI image layout",
        )
    })?;
    let mut manifest: Manifest = parse_json(&index, "index.json", name)?;
    let mut repo_tags = Vec::new();
    // An index may name an index (a multi-platform image saved whole): at most a few deep.
    for _ in 0..4 {
        let Some(entries) = manifest.manifests.take() else {
            break;
        };
        let chosen = pick(&entries, platform, name)?;
        if let Some(tag) = chosen.annotations.get("org.opencontainers.image.ref.name") {
            repo_tags.push(tag.clone());
        }
        let bytes = layout.blob(&chosen.digest, "manifest", name)?;
        manifest = parse_json(&bytes, "manifest", name)?;
    }
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| not_an_image(name, "its manifest names no config"))?;
    let config = layout.blob(&config.digest, "config", name)?;
    let layers = manifest
        .layers
        .iter()
        .map(|layer| {
            let place = valid_digest(&layer.digest)
                .then(|| layout.place(&layer.digest))
                .flatten()
                .ok_or_else(|| {
                    not_an_image(
                        name,
                        format!("its layer blob `{}` is missing", layer.digest),
                    )
                })?;
            Ok(Blob {
                digest: layer.digest.clone(),
                verify: true,
                place,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Found {
        config,
        layers,
        repo_tags,
    })
}

pub(super) fn parse_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
    name: &str,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|error| {
        not_an_image(
            name,
            format!("its {what} is not what an image has ({error})"),
        )
    })
}

/// One image of a `docker save` tarball's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn open_archive(
    path: &Path,
    name: &str,
    docker: bool,
    platform: Option<&ImagePlatform>,
) -> Result<Opened> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let index = ArchiveIndex::of(file)
        .map_err(|error| not_an_image(name, format!("it is not a tar archive ({error})")))?;
    let saved = match docker {
        true => index.read(path, "manifest.json")?,
        false => None,
    };
    let Some(saved) = saved else {
        if docker && index.span("index.json").is_none() {
            return Err(not_an_image(
                name,
                "it has no `manifest.json` (nor `index.json`): it is not a `docker save` archive",
            ));
        }
        // An OCI layout in a tar (also what `docker-archive:` of an OCI-only save is).
        let layout = Layout::Archive(path.to_path_buf(), index);
        return open_layout(&layout, name, platform)
            .map(|found| found.at(Some(path.to_path_buf())));
    };
    let images: Vec<SavedImage> = parse_json(&saved, "manifest.json", name)?;
    let image = images
        .into_iter()
        .next()
        .ok_or_else(|| not_an_image(name, "its manifest.json lists no image"))?;
    let config = index
        .read(path, &image.config)?
        .ok_or_else(|| not_an_image(name, format!("its config `{}` is missing", image.config)))?;
    let diff_ids = super::config::ImageFacts::parse(&config, name)?.diff_ids;
    let layers = image
        .layers
        .iter()
        .enumerate()
        .map(|(position, layer)| {
            let place = index
                .span(layer)
                .ok_or_else(|| not_an_image(name, format!("its layer `{layer}` is missing")))?;
            // Docker 25+ names layers by blob digest; older engines by `<id>/layer.tar`,
            // whose diff-id is then the key (and is checked after reading).
            let by_digest = layer
                .strip_prefix("blobs/sha256/")
                .and_then(Sha256::from_hex)
                .filter(|digest| valid_digest(digest));
            Ok(Blob {
                verify: by_digest.is_some(),
                digest: by_digest
                    .or_else(|| diff_ids.get(position).cloned())
                    .unwrap_or_else(|| layer.clone()),
                place,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Opened {
        config,
        layers,
        repo_tags: image.repo_tags.unwrap_or_default(),
        repo_digests: Vec::new(),
        archive: Some(path.to_path_buf()),
        remote: None,
    })
}

/// A tar archive's entries, by normalized name: where each file's bytes are, and symlinks
/// (a legacy `docker save` links repeated layers), resolved inside the archive.
struct ArchiveIndex {
    files: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl ArchiveIndex {
    fn of(file: File) -> io::Result<ArchiveIndex> {
        let mut archive = tar::Archive::new(file);
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let name = archive_name(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default())
                    .into_owned();
                let target = if kind.is_symlink() {
                    let folder = name.rsplit_once('/').map_or("", |(folder, _)| folder);
                    archive_name(&format!("{folder}/{target}"))
                } else {
                    archive_name(&target)
                };
                links.insert(name, target);
            }
        }
        if files.is_empty() {
            return Err(io::Error::other("it holds no files"));
        }
        Ok(ArchiveIndex { files, links })
    }

    fn span(&self, name: &str) -> Option<Place> {
        let mut name = archive_name(name);
        for _ in 0..8 {
            if let Some((offset, size)) = self.files.get(&name) {
                return Some(Place::Span {
                    offset: *offset,
                    size: *size,
                });
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn read(&self, path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(place) = self.span(name) else {
            return Ok(None);
        };
        let read = open_place(&place, Some(path)).and_then(read_bounded);
        read.map(Some).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A name inside an archive, with `./`, `.` and `..` resolved within the archive.
fn archive_name(name: &str) -> String {
    fs::normalize(name).trim_start_matches('/').to_string()
}

/// An engine's image streamed out through its export (`docker save`), read as it arrives.
pub(crate) struct Exported {
    pub(crate) config: Vec<u8>,
    pub(crate) layers: Vec<LayerIndex>,
}

/// Streams image `id` out of the engine and reads its layers.
pub(crate) async fn export(engine: &Engine, id: &str) -> Result<Exported> {
    let stream = engine.docker().export_image(id);
    let read = pump(stream, read_export).await;
    let failed = |detail: String| Error::ImageRead {
        image: id.to_string(),
        detail: format!("the engine's export of it broke off ({detail})"),
        problem: ImageProblem::Corrupt,
    };
    let (mut jsons, mut layers) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(error)) => return Err(layer_error(id, 0, id, error)),
        Err(Pumped::Stream(error)) => return Err(failed(error.to_string())),
        Err(Pumped::Consumer(detail)) => return Err(failed(detail)),
    };
    let saved = jsons
        .remove("manifest.json")
        .ok_or_else(|| not_an_image(id, "the engine's export has no manifest.json"))?;
    let images: Vec<SavedImage> = parse_json(&saved, "manifest.json", id)?;
    let image = images
        .into_iter()
        .next()
        .ok_or_else(|| not_an_image(id, "the engine's export lists no image"))?;
    let config = jsons
        .remove(&archive_name(&image.config))
        .ok_or_else(|| not_an_image(id, "the engine's export has no config"))?;
    let ordered = image
        .layers
        .iter()
        .map(|layer| {
            let name = archive_name(layer);
            let name = layers.links.get(&name).cloned().unwrap_or(name);
            layers
                .read
                .remove(&name)
                .ok_or_else(|| not_an_image(id, format!("the engine's export lacks `{layer}`")))
        })
        .collect::<Result<_>>()?;
    Ok(Exported {
        config,
        layers: ordered,
    })
}

/// Layers of an export, by entry name, with links between entries.
#[derive(Default)]
struct ReadLayers {
    read: HashMap<String, LayerIndex>,
    links: HashMap<String, String>,
}

/// Reads an export's entries in the order they come: JSON files kept (configs, manifests),
/// every other file read as a layer.
fn read_export(tar: &mut dyn Read) -> Result<(HashMap<String, Vec<u8>>, ReadLayers), LayerError> {
    let corrupt = |error: io::Error| LayerError::Corrupt(error.to_string());
    let mut jsons = HashMap::new();
    let mut layers = ReadLayers::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = archive_name(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target =
                String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()).into_owned();
            let folder = name.rsplit_once('/').map_or("", |(folder, _)| folder);
            let target = archive_name(&format!("{folder}/{target}"));
            layers.links.insert(name, target);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let mut first = [0u8; 1];
        let count = entry.read(&mut first).map_err(corrupt)?;
        let mut whole = io::Cursor::new(first[..count].to_vec()).chain(&mut entry);
        let json = count > 0 && (first[0] == b'{' || first[0] == b'[');
        if json {
            jsons.insert(name, read_bounded(&mut whole).map_err(corrupt)?);
        } else if name.ends_with("/layer.tar") || name.starts_with("blobs/") {
            let index = read_layer(&mut whole, None, &Keep::default())?;
            layers.read.insert(name, index);
        }
    }
    Ok((jsons, layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_picked_and_missing_ones_listed() {
        let entry = |os: &str, arch: &str| Descriptor {
            digest: format!("sha256:{os}{arch}"),
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            annotations: HashMap::new(),
        };
        let entries = [
            entry("linux", "amd64"),
            entry("linux", "arm64"),
            entry("unknown", "unknown"),
        ];
        assert_eq!(
            pick(&entries, Some(&"linux/arm64".parse().unwrap()), "x")
                .unwrap()
                .digest,
            "sha256:linuxarm64"
        );
        let error = pick(&entries, Some(&"linux/s390x".parse().unwrap()), "x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("linux/amd64, linux/arm64"), "{error}");
        assert!(!error.contains("unknown"), "{error}");
        assert!(valid_digest(&Sha256::of(b"")));
        assert!(!valid_digest("sha256:../../etc/passwd"));
        assert_eq!(archive_name("./a/../../b//c"), "b/c");
    }
}
