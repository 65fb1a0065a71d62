//! OCI layouts (a folder, or the entries of a tar) and `docker save` tarballs, legacy and
//! Docker 25+: the config and the layers of the image they hold, by entries of the image's
//! own archive, never a host path.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::oci::{pick, valid_digest, Manifest};
use super::store::{not_an_image, open_place, Blob, Opened, Place, JSON_LIMIT};
use crate::capture::fs;
use crate::error::untrusted;
use crate::error::{Error, ImageProblem, Result};
use crate::lock::Sha256;
use crate::settings::ImagePlatform;

/// An OCI layout: a folder, or the entries of a tar.
pub(super) enum Layout {
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

pub(super) fn read_bounded(file: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(JSON_LIMIT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What an opened layout or archive gives, before it knows its archive file.
pub(super) struct Found {
    config: Vec<u8>,
    layers: Vec<Blob>,
    repo_tags: Vec<String>,
}

impl Found {
    pub(super) fn at(self, archive: Option<PathBuf>) -> Opened {
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
pub(super) fn open_layout(
    layout: &Layout,
    name: &str,
    platform: Option<&ImagePlatform>,
) -> Result<Found> {
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
pub(super) struct SavedImage {
    pub(super) config: String,
    #[serde(default)]
    pub(super) repo_tags: Option<Vec<String>>,
    pub(super) layers: Vec<String>,
}

pub(super) fn open_archive(
    path: &Path,
    name: &str,
    docker: bool,
    platform: Option<&ImagePlatform>,
) -> Result<Opened> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let index = ArchiveIndex::of(file).map_err(|error| {
        not_an_image(
            name,
            format!("it is not a tar archive ({})", untrusted(error)),
        )
    })?;
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
pub(super) struct ArchiveIndex {
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
pub(super) fn archive_name(name: &str) -> String {
    fs::normalize(name).trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_stay_in_the_archive() {
        assert_eq!(archive_name("./a/../../b//c"), "b/c");
    }
}
