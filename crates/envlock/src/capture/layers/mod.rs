//! Images read from their layers, with no engine: a registry (`registry:`), a `docker save`
//! tarball (`docker-archive:`), an OCI layout (`oci-dir:`, `oci-archive:`); and, with
//! `--layers`, an engine's image streamed out through its export.
//!
//! The config blob gives the facts an engine would (`config.rs`); each layer is streamed
//! once, decompressed and checked against its digest on the way, keeping only what the
//! readers read (`read.rs`); the layers merge into one tree with whiteouts applied
//! (`tree.rs`), which is a view of the image's files like any other
//! ([`crate::capture::fs::Files`]). Every path of the tree remembers the layer that wrote
//! it, for attribution.

mod config;
mod export;
mod layout;
mod oci;
pub(crate) mod read;
mod registry;
mod store;
mod tree;

pub(crate) use config::ImageFacts;
pub(crate) use export::export;
pub(crate) use read::{Asked, Keep, Kind, LayerIndex};
pub(crate) use registry::{
    pause as registry_pause, tags as registry_tags, TRIES as REGISTRY_TRIES,
};
pub(crate) use store::{open, Opened};
pub(crate) use tree::{Node, Tree, DATABASES};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::error::{Error, ImageProblem, Result};
use crate::settings::Settings;
use store::Blob;

/// Layers read at once: each is decompressed on its own thread (two cores here), and a
/// registry answers the next while one is read.
const CONCURRENCY: usize = 3;

/// Layers read this run, by blob digest and what was kept: the two sides of a diff of two
/// tags share their base layers, read once.
#[derive(Default)]
pub(crate) struct Cache {
    layers: Mutex<HashMap<(String, Keep), Arc<LayerIndex>>>,
}

impl Cache {
    fn get(&self, key: &(String, Keep)) -> Option<Arc<LayerIndex>> {
        self.layers
            .lock()
            .expect("never poisoned")
            .get(key)
            .cloned()
    }

    fn put(&self, key: (String, Keep), layer: Arc<LayerIndex>) {
        self.layers
            .lock()
            .expect("never poisoned")
            .insert(key, layer);
    }
}

/// Checks `image` (the config of `opened`, the source `name`) against `--platform` and its
/// manifest, then reads and merges its layers, hashing the files at and below
/// `model_paths` (paths inside the image). Returns the tree and each layer's file bytes.
pub(crate) async fn read_image(
    opened: &Opened,
    image: &ImageFacts,
    name: &str,
    settings: &Settings,
    cache: &Cache,
    model_paths: &[String],
) -> Result<(Tree, Vec<u64>)> {
    check_platform(image, settings, name)?;
    if image.diff_ids.len() != opened.layers.len() {
        return Err(corrupt(
            name,
            format!(
                "its config names {} layers and its manifest {}",
                image.diff_ids.len(),
                opened.layers.len()
            ),
        ));
    }
    let keep = Keep::readers(
        model_paths
            .iter()
            .map(|path| path.trim_start_matches('/').to_string())
            .collect(),
    );
    let indexes = read_layers(opened, &keep, cache, name).await?;
    for (index, (layer, diff_id)) in indexes.iter().zip(&image.diff_ids).enumerate() {
        if layer.diff_id != *diff_id {
            return Err(corrupt(
                name,
                format!(
                    "layer {index} unpacks to `{}`, not to the diff-id `{diff_id}` its config names",
                    layer.diff_id
                ),
            ));
        }
    }
    let mut tree = Tree::merge(indexes.iter().map(Arc::as_ref));
    hash_linked_models(opened, &mut tree, model_paths, cache, name).await?;
    let sizes = indexes.iter().map(|layer| layer.size).collect();
    Ok((tree, sizes))
}

/// Refuses an image that is not for the platform `--platform` asked for.
fn check_platform(image: &ImageFacts, settings: &Settings, name: &str) -> Result<()> {
    let Some(wanted) = &settings.platform else {
        return Ok(());
    };
    let found = match &image.variant {
        Some(variant) => format!("{}/{}/{variant}", image.os, image.architecture),
        None => format!("{}/{}", image.os, image.architecture),
    };
    if wanted.matches(&image.os, &image.architecture, image.variant.as_deref()) {
        return Ok(());
    }
    Err(Error::ImageRead {
        image: name.to_string(),
        detail: format!("it is for {found}, not for {wanted} (`--platform`)"),
        problem: ImageProblem::Platform,
    })
}

fn corrupt(name: &str, detail: String) -> Error {
    Error::ImageRead {
        image: name.to_string(),
        detail,
        problem: ImageProblem::Corrupt,
    }
}

/// Every layer of `opened`, in order, each read once per run (two tags of one repository
/// share their base layers; the second capture of a diff finds them in the session).
async fn read_layers(
    opened: &Opened,
    keep: &Keep,
    cache: &Cache,
    name: &str,
) -> Result<Vec<Arc<LayerIndex>>> {
    futures_util::stream::iter(opened.layers.iter().enumerate())
        .map(|(index, blob)| read_cached(opened, blob, index, keep, cache, name))
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

async fn read_cached(
    opened: &Opened,
    blob: &Blob,
    index: usize,
    keep: &Keep,
    cache: &Cache,
    name: &str,
) -> Result<Arc<LayerIndex>> {
    let key = (blob.digest.clone(), keep.clone());
    if let Some(layer) = cache.get(&key) {
        return Ok(layer);
    }
    let layer = Arc::new(opened.read_layer(blob, index, keep, name).await?);
    cache.put(key, layer.clone());
    Ok(layer)
}

/// A model reached through a symlink lives where the first pass did not hash: its files are
/// hashed in a second pass over the layers that wrote them.
async fn hash_linked_models(
    opened: &Opened,
    tree: &mut Tree,
    model_paths: &[String],
    cache: &Cache,
    name: &str,
) -> Result<()> {
    let mut missing: Vec<(String, usize)> = Vec::new();
    for path in model_paths {
        let Some((resolved, node)) = tree.resolve(path) else {
            continue;
        };
        if node.kind == Kind::File && node.sha256.is_none() {
            missing.push((resolved.clone(), node.layer));
        }
        if node.kind == Kind::Folder {
            for (relative, inner) in tree.below(&resolved) {
                if inner.kind == Kind::File && inner.sha256.is_none() {
                    missing.push((format!("{resolved}/{relative}"), inner.layer));
                }
            }
        }
    }
    second_pass(opened, tree, &missing, &[], cache, name).await?;
    Ok(())
}

/// The most files one second pass keeps for the readers: a reader asks for the files of
/// the folders it reads, and a site folder holds some hundreds.
const MISSED_LIMIT: usize = 4096;

/// Keeps the files the readers asked for and the first pass did not keep
/// ([`Tree::take_missed`]): a symlink led outside the folders and names
/// [`crate::capture::read::kept`] keeps (a site folder that is a link to `/srv/site`, a
/// METADATA that is a link to `/srv/meta/…`). One more pass over the layers that wrote them,
/// as for a model behind a link, keeping exactly those files; cached as every layer read
/// is. Returns whether it kept anything (nothing: asking again would not help).
pub(crate) async fn keep_missed(
    opened: &Opened,
    tree: &mut Tree,
    cache: &Cache,
    name: &str,
) -> Result<bool> {
    let mut missed = tree.take_missed();
    missed.truncate(MISSED_LIMIT);
    Ok(second_pass(opened, tree, &[], &missed, cache, name).await? > 0)
}

/// One more pass over the layers that wrote `models` (hashed) and `heads` (the bytes
/// asked for kept): each such layer read once, keeping exactly those files. Returns how
/// many files it filled in.
async fn second_pass(
    opened: &Opened,
    tree: &mut Tree,
    models: &[(String, usize)],
    heads: &[(String, usize, Asked)],
    cache: &Cache,
    name: &str,
) -> Result<usize> {
    if models.is_empty() && heads.is_empty() {
        return Ok(0);
    }
    let keep = Keep {
        models: models.iter().map(|(path, _)| path.clone()).collect(),
        only: Some(
            heads
                .iter()
                .map(|(path, _, asked)| (path.clone(), asked.clone()))
                .collect(),
        ),
    };
    let mut layers: Vec<usize> = models
        .iter()
        .map(|(_, layer)| *layer)
        .chain(heads.iter().map(|(_, layer, _)| *layer))
        .collect();
    layers.sort_unstable();
    layers.dedup();
    let mut filled = 0;
    for layer in layers {
        let index = read_cached(opened, &opened.layers[layer], layer, &keep, cache, name).await?;
        let asked = keep.only.as_ref().expect("a second pass");
        for entry in &index.entries {
            let library = matches!(asked.get(&entry.path), Some(Asked::Library(_)));
            if entry.sha256.is_some() && library {
                filled += usize::from(tree.set_library(&entry.path, layer, &entry.stored));
            } else if entry.sha256.is_some() {
                tree.set_model(&entry.path, layer, &entry.stored);
                filled += 1;
            } else if entry.content.is_some() && tree.set_content(&entry.path, layer, &entry.stored)
            {
                filled += 1;
            }
        }
    }
    Ok(filled)
}

/// For the fuzz targets (`src/fuzzing.rs`): an OCI manifest or index, and the pick of a platform's.
pub(crate) fn fuzz_manifest(bytes: &[u8]) {
    if let Ok(manifest) = layout::parse_json::<oci::Manifest>(bytes, "manifest", "fuzz") {
        if let Some(entries) = &manifest.manifests {
            let _ = oci::pick(entries, None, "fuzz");
        }
    }
}
