//! Hashing a model inside an image from the archive endpoint's tar stream, into the same
//! digests the host gives for the same bytes ([`crate::capture::models`]). Symlinks resolve
//! inside the image, never on the host; a link that leaves the model is recorded, not read.

use std::collections::BTreeMap;
use std::io::{self, Read};

use super::files::Files;
use crate::capture::engine::ArchiveError;
use crate::capture::models::{
    described, file_entry, manifest_digest, read_model_file, Silent, BLOCK,
};
use crate::error::{Error, Result};
use crate::lock::{Model, ModelFile, ModelKind};
use envlock_model::{self as model, Facts};

/// One entry of a model's archive, keyed by its path relative to the model.
pub(super) enum ArchiveEntry {
    File {
        sha256: String,
        size: u64,
        /// What its bytes say.
        facts: Box<Facts>,
    },
    Link(String),
    Folder,
}

/// Hashes the model at `path` (absolute, inside the image) from the image's files, giving the
/// same digests as [`crate::capture::models`] gives for the same bytes on the host.
pub(super) async fn hash_model(
    files: Files<'_>,
    reference: &str,
    given: &str,
    path: &str,
) -> Result<Model> {
    let mut path = path.to_string();
    let mut entries = read_model_archive(files, reference, &path).await?;
    // A model path that is itself a symlink is followed inside the image, as the kernel
    // follows it (`..` at `/` stays at `/`), and as the dev side follows it on the host.
    let mut hops = 0;
    while let Some(ArchiveEntry::Link(target)) = entries.get("") {
        hops += 1;
        if hops > 40 {
            return Err(Error::ImageModel {
                path: path.clone(),
                reference: reference.to_string(),
                detail: "too many levels of symbolic links".to_string(),
            });
        }
        let base = if target.starts_with('/') {
            Vec::new()
        } else {
            let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            parts.pop();
            parts
        };
        path = format!("/{}", climb(base, target));
        entries = read_model_archive(files, reference, &path).await?;
    }
    let path = path.as_str();
    let model_error = |detail: String| Error::ImageModel {
        path: path.to_string(),
        reference: reference.to_string(),
        detail,
    };
    if let Some(ArchiveEntry::File {
        sha256,
        size,
        facts,
    }) = entries.get("")
    {
        return Ok(described(
            given.to_string(),
            ModelKind::File,
            sha256.clone(),
            *size,
            Vec::new(),
            (**facts).clone(),
        ));
    }
    let mut files = Vec::new();
    let mut said = Vec::new();
    for (relative, entry) in &entries {
        match entry {
            ArchiveEntry::File {
                sha256,
                size,
                facts,
            } => {
                said.push((relative.clone(), (**facts).clone()));
                files.push(file_entry(relative.clone(), sha256.clone(), *size, facts))
            }
            ArchiveEntry::Link(target) => files.extend(
                resolve_link(&entries, relative, target, path)
                    .map_err(|error| model_error(error.to_string()))?,
            ),
            ArchiveEntry::Folder => {}
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let size = files.iter().map(|file| file.size).sum();
    let sha256 = manifest_digest(&files);
    Ok(described(
        given.to_string(),
        ModelKind::Directory,
        sha256,
        size,
        files,
        model::merge(said),
    ))
}

async fn read_model_archive(
    files: Files<'_>,
    reference: &str,
    path: &str,
) -> Result<BTreeMap<String, ArchiveEntry>> {
    files
        .model_entries(path)
        .await
        .map_err(|error| match error {
            ArchiveError::NotFound => Error::ModelNotInImage {
                path: path.to_string(),
                reference: reference.to_string(),
            },
            ArchiveError::Other(detail) => Error::ImageModel {
                path: path.to_string(),
                reference: reference.to_string(),
                detail,
            },
        })
}

/// Reads a model's tar: every entry under its first path component (the model's own name),
/// hashing file contents as they stream past.
pub(super) fn read_model_entries(tar: &mut dyn Read) -> io::Result<BTreeMap<String, ArchiveEntry>> {
    let mut archive = tar::Archive::new(tar);
    let mut entries = BTreeMap::new();
    let mut buffer = vec![0u8; BLOCK];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let full = entry.path()?.to_string_lossy().into_owned();
        let relative = crate::capture::engine::archive::relative_name(&full);
        let kind = entry.header().entry_type();
        let value = if kind.is_file() {
            let declared = entry.header().size()?;
            let name = full
                .rsplit('/')
                .find(|part| !part.is_empty())
                .unwrap_or_default();
            let name = name.to_string();
            let read = read_model_file(&mut entry, &mut buffer, &Silent, declared, &name)?;
            ArchiveEntry::File {
                sha256: read.sha256,
                size: read.size,
                facts: Box::new(read.facts),
            }
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()?
                .map(|target| target.to_string_lossy().into_owned())
                .unwrap_or_default();
            if kind.is_hard_link() {
                // A hard link names an earlier entry of the archive (by its full archive
                // path): the same file, so the same digest, as the dev side reads it.
                let inner = target.split_once('/').map_or("", |(_, rest)| rest);
                match entries.get(inner) {
                    Some(ArchiveEntry::File {
                        sha256,
                        size,
                        facts,
                    }) => ArchiveEntry::File {
                        sha256: sha256.clone(),
                        size: *size,
                        facts: facts.clone(),
                    },
                    _ => continue,
                }
            } else {
                ArchiveEntry::Link(target)
            }
        } else if kind.is_dir() {
            ArchiveEntry::Folder
        } else {
            continue;
        };
        entries.insert(relative, value);
    }
    Ok(entries)
}

/// Resolves a symlink at `relative` inside the model as the dev side does: followed (to a
/// file, or a folder whose files then appear under the link) while it stays in the model,
/// recorded with its target when it leaves. `root` is the model's absolute path in the image.
fn resolve_link(
    entries: &BTreeMap<String, ArchiveEntry>,
    relative: &str,
    target: &str,
    root: &str,
) -> Result<Vec<ModelFile>, LinkLoop> {
    let leaving = || {
        vec![ModelFile {
            path: relative.to_string(),
            link: Some(target.to_string()),
            ..ModelFile::default()
        }]
    };
    let mut current = relative.to_string();
    let mut pointing = target.to_string();
    for _ in 0..40 {
        let Some(resolved) = resolve_inside(&current, &pointing, root) else {
            return Ok(leaving());
        };
        match entries.get(&resolved) {
            Some(ArchiveEntry::File {
                sha256,
                size,
                facts,
            }) => {
                return Ok(vec![file_entry(
                    relative.to_string(),
                    sha256.clone(),
                    *size,
                    facts,
                )])
            }
            Some(ArchiveEntry::Link(next)) => {
                current = resolved;
                pointing = next.clone();
            }
            Some(ArchiveEntry::Folder) => {
                if relative.starts_with(&format!("{resolved}/")) || resolved.is_empty() {
                    return Err(LinkLoop {
                        link: relative.to_string(),
                        ancestor: Some(resolved),
                    });
                }
                let prefix = format!("{resolved}/");
                return Ok(entries
                    .iter()
                    .filter_map(|(path, entry)| match entry {
                        ArchiveEntry::File {
                            sha256,
                            size,
                            facts,
                        } => path.strip_prefix(&prefix).map(|rest| {
                            file_entry(format!("{relative}/{rest}"), sha256.clone(), *size, facts)
                        }),
                        _ => None,
                    })
                    .collect());
            }
            None => return Ok(leaving()),
        }
    }
    Err(LinkLoop {
        link: relative.to_string(),
        ancestor: None,
    })
}

/// A symlink of a model folder in an image that leads back to one of its parents, or
/// through too many links.
#[derive(Debug, thiserror::Error)]
#[error("symlink loop{}", match ancestor {
    Some(ancestor) => format!(": `{link}` leads back to `{ancestor}`"),
    None => format!(" at `{link}`"),
})]
struct LinkLoop {
    /// The link, relative to the model.
    link: String,
    /// The folder it leads back to (`None`: it went through 40 links).
    ancestor: Option<String>,
}

/// The model-relative path a link target points to, or `None` when it leaves the model.
fn resolve_inside(link: &str, target: &str, root: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    let mut parts: Vec<&str> = if let Some(absolute) = target.strip_prefix('/') {
        let inside = absolute.strip_prefix(root.trim_start_matches('/'))?;
        if !(inside.is_empty() || inside.starts_with('/')) {
            return None;
        }
        return normalize(Vec::new(), inside);
    } else {
        link.split('/').collect()
    };
    parts.pop();
    normalize(parts, target)
}

/// `path` resolved from the folder `parts` as the kernel does: `..` at the root stays there.
pub(crate) fn climb<'a>(mut parts: Vec<&'a str>, path: &'a str) -> String {
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// `path` resolved from the folder `parts`; `None` when it climbs above where `parts`
/// starts (out of the model).
fn normalize<'a>(mut parts: Vec<&'a str>, path: &'a str) -> Option<String> {
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// For the fuzz targets (`src/fuzzing.rs`): a model folder's tar, and its links resolved inside it.
pub(super) fn fuzz(tar: &[u8]) {
    if let Ok(entries) = read_model_entries(&mut &tar[..]) {
        for (relative, entry) in &entries {
            if let ArchiveEntry::Link(target) = entry {
                let _ = resolve_link(&entries, relative, target, "/app/model");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_above_the_root_stays_at_the_root() {
        assert_eq!(climb(vec!["app"], "../../../opt/model"), "opt/model");
        assert_eq!(climb(vec![], "/.."), "");
        assert_eq!(climb(vec!["a", "b"], "../c"), "a/c");
    }

    #[test]
    fn links_resolve_inside_the_model_only() {
        assert_eq!(
            resolve_inside("a/link", "../b", "/app/model"),
            Some("b".into())
        );
        assert_eq!(
            resolve_inside("link", "weights", "/app/model"),
            Some("weights".into())
        );
        assert_eq!(
            resolve_inside("link", "../../etc/passwd", "/app/model"),
            None
        );
        assert_eq!(
            resolve_inside("link", "/app/model/w", "/app/model"),
            Some("w".into())
        );
        assert_eq!(resolve_inside("link", "/app/model2/w", "/app/model"), None);
        assert_eq!(resolve_inside("link", "/etc/passwd", "/app/model"), None);
    }

    proptest::proptest! {
        #[test]
        fn model_streams_never_panic(tar in crate::capture::engine::archive::streams::tar()) {
            if let Ok(entries) = read_model_entries(&mut &tar[..]) {
                for (relative, entry) in &entries {
                    if let ArchiveEntry::Link(target) = entry {
                        let _ = resolve_link(&entries, relative, target, "/app/model");
                    }
                }
            }
        }

        #[test]
        fn link_targets_never_panic(link in "[a-z./]{0,30}", target in "[a-z./]{0,30}") {
            let _ = resolve_inside(&link, &target, "/app/model");
            let _ = climb(vec!["app"], &target);
        }
    }
}
