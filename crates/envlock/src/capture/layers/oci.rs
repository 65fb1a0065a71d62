//! The OCI types envlock reads: descriptors, indexes and manifests, and picking the
//! manifest of a platform from an index.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::{Error, ImageProblem, Result};
use crate::lock::Sha256;
use crate::settings::ImagePlatform;

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
    pub(super) annotations: HashMap<String, String>,
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
    }
}
