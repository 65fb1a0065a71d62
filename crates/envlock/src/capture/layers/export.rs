//! An engine's image streamed out through its export (`docker save`), read as it arrives:
//! no file is written.

use std::collections::HashMap;
use std::io::{self, Read};

use super::layout::{archive_name, parse_json, read_bounded, SavedImage};
use super::read::{read_layer, Keep, LayerError, LayerIndex};
use super::store::{layer_error, not_an_image};
use crate::capture::engine::{pump, Engine, Pumped, Rest};
use crate::error::untrusted;
use crate::error::{Error, ImageProblem, Result};

/// An engine's image streamed out through its export (`docker save`), read as it arrives.
pub(crate) struct Exported {
    pub(crate) config: Vec<u8>,
    pub(crate) layers: Vec<LayerIndex>,
}

/// Streams image `id` out of the engine and reads its layers.
pub(crate) async fn export(engine: &Engine, id: &str) -> Result<Exported> {
    let stream = engine.docker().export_image(id);
    let read = pump(stream, engine.limit(), Rest::Drain, read_export).await;
    let failed = |detail: String| Error::ImageRead {
        image: id.to_string(),
        detail: format!("the engine's export of it broke off ({detail})"),
        problem: ImageProblem::Corrupt,
    };
    let (mut jsons, mut layers) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(error)) => return Err(layer_error(id, 0, id, error)),
        // The engine's stream broke: the engine failed, not the image.
        Err(Pumped::Stream(error)) => {
            return Err(engine
                .failed(format!("exporting image `{id}` (`--layers`)"))(
                error
            ))
        }
        Err(Pumped::Silent(_)) => {
            return Err(engine
                .failed(format!("exporting image `{id}` (`--layers`)"))(
                bollard::errors::Error::RequestTimeoutError,
            ))
        }
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
    let corrupt = |error: io::Error| LayerError::Corrupt(untrusted(error));
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
