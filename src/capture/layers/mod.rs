//! Images read from their layers, with no engine: a registry (`registry:`), a `docker save`
//! tarball (`docker-archive:`), an OCI layout (`oci-dir:`, `oci-archive:`); and, with
//! `--layers`, an engine's image streamed out through its export, for attribution.
//!
//! The config blob gives the facts an engine would (`config.rs`); each layer is streamed
//! once, decompressed and checked against its digest on the way, keeping only what capture
//! reads (`read.rs`); the layers merge into one tree with whiteouts applied (`tree.rs`); and
//! the same static capture as for an engine's container reads that tree. Every package,
//! conda package, system package and model then records the layer that last wrote it
//! (`attribute.rs`).

mod attribute;
mod config;
mod read;
mod registry;
mod store;
mod tree;

pub(crate) use attribute::attribute;
pub(crate) use read::{Keep, Kind, LayerIndex};
pub(crate) use tree::{Node, Tree};

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::image::{self, Engine, Facts, Files, Inside};
use super::Snapshot;
use crate::capture::source::ImageSource;
use crate::error::{Error, ImageProblem, Result};
use crate::lock::Layer;
use crate::settings::Settings;
use config::ImageFacts;
use store::{Blob, Opened};

/// Layers read at once: each is decompressed on its own thread (two cores here), and a
/// registry answers the next while one is read.
const CONCURRENCY: usize = 3;

/// Captures a layered image source (anything but an engine's image) with its models.
pub(crate) fn snapshot(
    source: &ImageSource,
    models: &[(String, String)],
    settings: &Settings,
    session: &image::Session,
) -> Result<Snapshot> {
    session.block(capture(source, models, settings, session))
}

async fn capture(
    source: &ImageSource,
    models: &[(String, String)],
    settings: &Settings,
    session: &image::Session,
) -> Result<Snapshot> {
    let name = source.to_string();
    let opened = store::open(source, settings).await?;
    let image = ImageFacts::parse(&opened.config, &name)?;
    check_platform(&image, settings, &name)?;
    if image.diff_ids.len() != opened.layers.len() {
        return Err(corrupt(
            &name,
            format!(
                "its config names {} layers and its manifest {}",
                image.diff_ids.len(),
                opened.layers.len()
            ),
        ));
    }
    let facts = image.facts(&opened);
    let model_paths: Vec<String> = models
        .iter()
        .map(|(_, inside)| facts.model_path(inside))
        .collect();
    let keep = Keep {
        models: model_paths
            .iter()
            .map(|path| path.trim_start_matches('/').to_string())
            .collect(),
        models_only: false,
    };
    let indexes = read_layers(&opened, &keep, session, &name).await?;
    for (index, (layer, diff_id)) in indexes.iter().zip(&image.diff_ids).enumerate() {
        if layer.diff_id != *diff_id {
            return Err(corrupt(
                &name,
                format!(
                    "layer {index} unpacks to `{}`, not to the diff-id `{diff_id}` its config names",
                    layer.diff_id
                ),
            ));
        }
    }
    let mut tree = Tree::merge(indexes.iter().map(Arc::as_ref));
    hash_linked_models(&opened, &mut tree, &model_paths, session, &name).await?;
    let mut inside =
        image::read_inside(Files::Tree(&tree), None, &name, models, settings, &facts).await?;
    inside.notes.push(format!(
        "`{name}` read from its {} layers: static capture, nothing from the image ran",
        indexes.len()
    ));
    attribute(&tree, &mut inside, &model_paths);
    let sizes: Vec<u64> = indexes.iter().map(|layer| layer.size).collect();
    let (history, layers) = image.history(&sizes);
    Ok(image::assemble(&name, facts, inside, history, layers))
}

/// Refuses an image that is not for the platform `--platform` asked for.
fn check_platform(image: &ImageFacts, settings: &Settings, name: &str) -> Result<()> {
    let Some(wanted) = &settings.platform else {
        return Ok(());
    };
    let (os, arch, _) = store::split_platform(wanted);
    let found = format!("{}/{}", image.os, image.architecture);
    if image.os == os && image.architecture == arch {
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
    session: &image::Session,
    name: &str,
) -> Result<Vec<Arc<LayerIndex>>> {
    futures_util::stream::iter(opened.layers.iter().enumerate())
        .map(|(index, blob)| read_cached(opened, blob, index, keep, session, name))
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

async fn read_cached(
    opened: &Opened,
    blob: &Blob,
    index: usize,
    keep: &Keep,
    session: &image::Session,
    name: &str,
) -> Result<Arc<LayerIndex>> {
    let key = (blob.digest.clone(), keep.clone());
    if let Some(layer) = session.cached_layer(&key) {
        return Ok(layer);
    }
    let layer = Arc::new(opened.read_layer(blob, index, keep, name).await?);
    session.cache_layer(key, layer.clone());
    Ok(layer)
}

/// A model reached through a symlink lives where the first pass did not hash: its files are
/// hashed in a second pass over the layers that wrote them.
async fn hash_linked_models(
    opened: &Opened,
    tree: &mut Tree,
    model_paths: &[String],
    session: &image::Session,
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
    if missing.is_empty() {
        return Ok(());
    }
    let keep = Keep {
        models: missing.iter().map(|(path, _)| path.clone()).collect(),
        models_only: true,
    };
    let mut layers: Vec<usize> = missing.iter().map(|(_, layer)| *layer).collect();
    layers.sort_unstable();
    layers.dedup();
    for layer in layers {
        let index = read_cached(opened, &opened.layers[layer], layer, &keep, session, name).await?;
        for entry in &index.entries {
            if let Some(sha256) = &entry.sha256 {
                tree.set_digest(&entry.path, layer, sha256.clone());
            }
        }
    }
    Ok(())
}

/// `--layers` for an engine's image: the image streamed out through the engine's export
/// (`docker save`), its layers merged, and what exec or static capture found attributed to
/// the layer that wrote it. Returns `[[image.layers]]`.
pub(crate) async fn attribute_engine_image(
    engine: &Engine,
    facts: &Facts,
    models: &[(String, String)],
    inside: &mut Inside,
) -> Result<Vec<Layer>> {
    let exported = store::export(engine, &facts.id).await?;
    let image = ImageFacts::parse(&exported.config, &facts.id)?;
    let tree = Tree::merge(exported.layers.iter());
    let model_paths: Vec<String> = models
        .iter()
        .map(|(_, inside)| facts.model_path(inside))
        .collect();
    attribute(&tree, inside, &model_paths);
    let sizes: Vec<u64> = exported.layers.iter().map(|layer| layer.size).collect();
    Ok(image.history(&sizes).1)
}
