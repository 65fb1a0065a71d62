//! CycloneDX, the SBOM format security and compliance tools read: a lock written as a
//! CycloneDX 1.6 JSON document (`write`), and a CycloneDX JSON SBOM read as a lock
//! (`read`), so `envlock diff release-41.cdx.json ml-model:42` works on the SBOMs a team
//! already archives (syft's, cyclonedx-py's, envlock's own).
//!
//! What a lock knows beyond CycloneDX's fields (a RECORD digest, the installer, a model's
//! format) travels as `envlock:` properties, which `read` takes back: a lock exported and
//! read again compares equal on every package, model and numeric library.

mod purl;
mod read;
mod write;

use serde::{Deserialize, Serialize};

pub(crate) use read::{parse_sbom, read_sbom};
pub(crate) use write::cyclonedx;
pub use write::Stamp;

/// The specification version written.
const SPEC_VERSION: &str = "1.6";

/// The system package managers, and the purl type of their packages.
const MANAGERS: &[(&str, &str)] = &[("dpkg", "deb"), ("rpm", "rpm"), ("apk", "apk")];

/// A CycloneDX document: the fields envlock writes and reads; others are ignored on read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    #[serde(default)]
    bom_format: String,
    #[serde(default)]
    spec_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    #[serde(default)]
    version: u32,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tools: Option<Tools>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    component: Option<Component>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

/// `tools`: CycloneDX 1.5's object form (what envlock writes), or the list of 1.4 (still
/// allowed, deprecated, in 1.5 and 1.6), whose entries have a name and a version too.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Tools {
    Object {
        #[serde(default)]
        components: Vec<Component>,
    },
    List(Vec<Component>),
}

impl Tools {
    fn components(&self) -> &[Component] {
        match self {
            Tools::Object { components } | Tools::List(components) => components,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    /// Nested components (syft and others nest; envlock writes a flat list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
}

impl Component {
    /// The values of property `name`, in order.
    fn property<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        properties(&self.properties, name)
    }

    /// The first value of property `name`.
    fn first(&self, name: &str) -> Option<String> {
        self.property(name).next().map(str::to_string)
    }

    /// The SHA-256 among its hashes, as `sha256:<hex>`.
    fn sha256(&self) -> Option<String> {
        self.hashes
            .iter()
            .find(|hash| hash.alg == "SHA-256")
            .and_then(|hash| crate::lock::Sha256::from_hex(&hash.content))
    }
}

/// The values of property `name` among `properties`.
fn properties<'a>(properties: &'a [Property], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    properties
        .iter()
        .filter(move |property| property.name == name)
        .map(|property| property.value.as_str())
}

#[derive(Debug, Serialize, Deserialize)]
struct Hash {
    #[serde(default)]
    alg: String,
    #[serde(default)]
    content: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExternalReference {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    url: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Property {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

impl Property {
    fn new(name: &str, value: impl Into<String>) -> Property {
        Property {
            name: name.to_string(),
            value: value.into(),
        }
    }
}
