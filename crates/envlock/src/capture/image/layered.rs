//! Capturing an image read from its layers (a registry, a saved archive, an OCI layout):
//! the layers merged into a tree, the same reading as for an engine's container over it,
//! and everything found attributed to the layer that wrote it.

use super::attribute::attribute;
use super::{assemble, read_inside, Files, Inside};
use crate::capture::engine::Engine;
use crate::capture::layers::{self, Cache, ImageFacts, Tree};
use crate::capture::read::facts::Facts;
use crate::capture::source::ImageSource;
use crate::capture::Snapshot;
use crate::error::Result;
use crate::lock::Layer;
use crate::settings::Settings;

/// Captures a layered image source (anything but an engine's image) with its models.
pub(crate) async fn capture(
    source: &ImageSource,
    models: &[(String, String)],
    settings: &Settings,
    cache: &Cache,
) -> Result<Snapshot> {
    let name = source.to_string();
    // The models' paths need the config's WORKDIR, known only once the config is read; the
    // layers are read with them.
    let opened = layers::open(source, settings).await?;
    let image = ImageFacts::parse(&opened.config, &name)?;
    let facts = facts_of(&image, &opened);
    let model_paths: Vec<String> = models
        .iter()
        .map(|(_, inside)| facts.model_path(inside))
        .collect();
    let (mut tree, sizes) =
        layers::read_image(&opened, &image, &name, settings, cache, &model_paths).await?;
    // The first pass keeps what the readers read where files usually are; a symlink that
    // leads elsewhere (a site folder, a METADATA) leaves a file unkept, which the read
    // records: the layers that wrote those are read once more for exactly them, and the
    // capture read again from the tree (in memory). Bounded: a pass that keeps nothing
    // new, or the last one, leaves the capture's own answer (an error naming the file).
    let mut passes = 0;
    let mut inside = loop {
        let read = read_inside(Files::Tree(&tree), None, &name, models, settings, &facts).await;
        if passes == SECOND_PASSES || !layers::keep_missed(&opened, &mut tree, cache, &name).await?
        {
            break read?;
        }
        passes += 1;
    };
    inside.notes.push(format!(
        "`{name}` read from its {} layers: static capture, nothing from the image ran",
        sizes.len()
    ));
    attribute(&tree, &mut inside, &model_paths);
    let (history, layers) = image.history(&sizes);
    Ok(assemble(&name, facts, inside, history, layers))
}

/// How many more passes over the layers a capture may make for files reached through
/// symlinks: a file read on one pass (a `.pth`) may name others (its folder's
/// distributions) that another pass keeps.
const SECOND_PASSES: usize = 3;

/// The facts as capture takes them, with the names and digests of `opened`.
fn facts_of(image: &ImageFacts, opened: &layers::Opened) -> Facts {
    Facts::new(
        image.id.clone(),
        image.config.clone().unwrap_or_default(),
        image.os.clone(),
        image.architecture.clone(),
        image.variant.clone(),
    )
    .with(
        opened.repo_tags.clone(),
        opened.repo_digests.clone(),
        image.created.clone(),
        image.diff_ids.clone(),
    )
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
    let exported = layers::export(engine, &facts.id).await?;
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
