//! Layer attribution: which layer last wrote each package, conda package, system package
//! and model. A distribution is the layer of its metadata file; a conda package of its
//! record; a model of its newest file; a system package the first layer of the run of
//! layers, up to the top, whose package database holds it at its final version (dpkg and
//! apk keep one database file for all packages, so each layer's copy is compared).

use std::collections::HashMap;

use pep508_rs::PackageName;

use super::Inside;
use crate::capture::layers::{Kind, Tree, DATABASES};
use crate::capture::read::system::{
    parse_apk_installed, parse_dpkg_status, APK_INSTALLED, DPKG_STATUS,
};
use crate::lock::Package;

/// Sets `layer` on everything `inside` holds that `tree` shows the origin of; `models` are
/// the models' paths inside the image, in the order of `inside.models`.
pub(crate) fn attribute(tree: &Tree, inside: &mut Inside, models: &[String]) {
    for package in &mut inside.packages {
        package.layer = package_layer(tree, package);
    }
    let prefixes: Vec<String> = inside
        .python
        .iter()
        .flat_map(|python| [python.prefix.clone(), python.base_prefix.clone()])
        .flatten()
        .collect();
    for package in &mut inside.conda_packages {
        let record = format!(
            "{}-{}-{}.json",
            package.name, package.version, package.build
        );
        package.layer = prefixes.iter().find_map(|prefix| {
            let path = format!("{}/conda-meta/{record}", prefix.trim_end_matches('/'));
            tree.resolve(&path).map(|(_, node)| node.layer)
        });
    }
    let since = system_layers(tree);
    for package in &mut inside.system_packages {
        package.layer = since
            .get(&package.name)
            .filter(|(version, _)| *version == package.version)
            .map(|(_, layer)| *layer);
    }
    for (model, path) in inside.models.iter_mut().zip(models) {
        model.layer = model_layer(tree, path);
    }
}

/// The layer of a distribution's metadata (`METADATA`, `PKG-INFO`, or a single-file
/// `.egg-info`) in its `sys.path` folder.
fn package_layer(tree: &Tree, package: &Package) -> Option<usize> {
    let (folder, _) = tree.resolve(&package.location)?;
    let version = package.version.replace('-', "_");
    let mut candidates: Vec<(&str, &str)> = tree
        .children(&folder)
        .filter(|(_, name, _)| name.ends_with(".dist-info") || name.ends_with(".egg-info"))
        .filter(|(_, name, _)| {
            let stem = name.split_once('-').map_or(*name, |(stem, _)| stem);
            let stem = stem
                .trim_end_matches(".dist-info")
                .trim_end_matches(".egg-info");
            PackageName::new(stem.to_string()).is_ok_and(|stem| stem.as_ref() == package.name)
        })
        .map(|(path, name, _)| (path, name))
        .collect();
    // Two copies of a name in one folder: the one of this version.
    candidates.sort_by_key(|(_, name)| !name.contains(&version));
    let (path, _) = candidates.first()?;
    let (_, node) = tree.lookup(path)?;
    if node.kind != Kind::Folder {
        return Some(node.layer);
    }
    ["METADATA", "PKG-INFO"]
        .iter()
        .find_map(|file| tree.lookup(&format!("{path}/{file}")))
        .map(|(_, node)| node.layer)
        .or(Some(node.layer))
}

/// For each system package of the final database: its version and the layer from which on
/// every later copy of the database holds that version.
fn system_layers(tree: &Tree) -> HashMap<String, (String, usize)> {
    let mut since: HashMap<String, (String, usize)> = HashMap::new();
    for database in DATABASES {
        let Some(versions) = tree.history.get(*database) else {
            continue;
        };
        // Only the database the image ends with counts.
        if tree.resolve(database).is_none() {
            continue;
        }
        for (layer, bytes) in versions {
            let text = String::from_utf8_lossy(bytes);
            let packages = if format!("/{database}") == DPKG_STATUS {
                parse_dpkg_status(&text)
            } else {
                debug_assert_eq!(format!("/{database}"), APK_INSTALLED);
                parse_apk_installed(&text)
            };
            let mut next = HashMap::with_capacity(packages.len());
            for package in packages {
                let layer = match since.get(&package.name) {
                    Some((version, first)) if *version == package.version => *first,
                    _ => *layer,
                };
                next.insert(package.name, (package.version, layer));
            }
            since = next;
        }
    }
    since
}

/// The newest layer among a model's file (or its folder's files).
fn model_layer(tree: &Tree, path: &str) -> Option<usize> {
    let (resolved, node) = tree.resolve(path)?;
    if node.kind != Kind::Folder {
        return Some(node.layer);
    }
    tree.below(&resolved)
        .filter(|(_, node)| node.kind == Kind::File)
        .map(|(_, node)| node.layer)
        .max()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::capture::layers::read::{Entry, LayerIndex, Stored};

    fn status(packages: &[(&str, &str)]) -> Entry {
        let text: String = packages
            .iter()
            .map(|(name, version)| {
                format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\n\n")
            })
            .collect();
        Entry {
            path: "var/lib/dpkg/status".into(),
            stored: Stored {
                kind: Kind::File,
                size: text.len() as u64,
                content: Some(Arc::from(text.as_bytes())),
                sha256: None,
                version: None,
                gpu: None,
                model: None,
            },
        }
    }

    #[test]
    fn a_system_package_belongs_to_the_layer_that_gave_it_its_version() {
        let layers: Vec<LayerIndex> = [
            status(&[("libc6", "2.36-9"), ("curl", "7.88")]),
            status(&[("libc6", "2.36-9"), ("curl", "7.88"), ("libgomp1", "12.2")]),
            status(&[("libc6", "2.36-9+deb12u4"), ("libgomp1", "12.2")]),
        ]
        .into_iter()
        .map(|entry| LayerIndex {
            entries: vec![entry],
            ..LayerIndex::default()
        })
        .collect();
        let tree = Tree::merge(layers.iter());
        let since = system_layers(&tree);
        assert_eq!(since["libc6"], ("2.36-9+deb12u4".to_string(), 2));
        assert_eq!(since["libgomp1"], ("12.2".to_string(), 1));
        assert!(!since.contains_key("curl"));
    }
}
