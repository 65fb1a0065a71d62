//! A lock as a CycloneDX 1.6 JSON document: the runtime as `metadata.component` (an
//! image, or the interpreter), then the interpreter and the operating system of an image,
//! each Python distribution, conda and system package, native numerics library, and each
//! model file as a `machine-learning-model`. Two exports of one lock are byte-identical:
//! the serial number is derived from the lock's content, and a timestamp is written only
//! when asked for.

use std::collections::BTreeSet;

use super::purl::Purl;
use super::{
    Bom, Component, ExternalReference, Hash, Metadata, Property, Tools, MANAGERS, SPEC_VERSION,
};
use crate::lock::{self, Lock, Model, NumericLibrary, Package, PackageSource, Sha256, SourceKind};

/// When the document says it was written: never (the default, so exports reproduce), or
/// at a time in seconds since the Unix epoch (`--timestamp`, or `SOURCE_DATE_EPOCH`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp(pub Option<u64>);

/// `lock` as CycloneDX 1.6 JSON, pretty-printed, with a final newline.
pub(crate) fn cyclonedx(lock: &Lock, stamp: Stamp) -> String {
    let mut refs = Refs::default();
    let runtime = runtime(lock, refs.unique("runtime"));
    let mut components = Vec::new();
    if lock.source.kind == SourceKind::Image {
        if let Some(python) = &lock.python {
            components.push(interpreter(python, refs.unique("python")));
        }
    }
    if let Some(os) = operating_system(lock, &mut refs) {
        components.push(os);
    }
    for package in &lock.packages {
        components.push(distribution(package, &mut refs));
    }
    for package in &lock.conda_packages {
        let purl = Purl::new("conda", &package.name, &package.version)
            .qualifier("build", Some(&package.build))
            .qualifier("channel", package.channel.as_deref())
            .text();
        let build = Property::new("envlock:build", &package.build);
        components.push(package_component(
            purl,
            &package.name,
            &package.version,
            build,
            &mut refs,
        ));
    }
    for package in &lock.system_packages {
        components.push(system_package(lock, package, &mut refs));
    }
    for library in &lock.numerics.libraries {
        components.push(numeric_library(library, &mut refs));
    }
    for model in &lock.models {
        components.push(model_component(model, &mut refs));
    }
    let bom = Bom {
        bom_format: "CycloneDX".into(),
        spec_version: SPEC_VERSION.into(),
        serial_number: Some(serial_number(lock, stamp)),
        version: 1,
        metadata: Metadata {
            timestamp: stamp.0.map(rfc3339),
            tools: Some(Tools::Object {
                components: vec![Component {
                    kind: "application".into(),
                    name: "envlock".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            }),
            component: Some(runtime),
            properties: platform_properties(lock),
        },
        components,
    };
    serde_json::to_string_pretty(&bom).expect("a BOM always serializes") + "\n"
}

/// The bom-refs given so far, each unique in the document.
#[derive(Default)]
struct Refs(BTreeSet<String>);

impl Refs {
    fn unique(&mut self, wanted: &str) -> String {
        let mut candidate = wanted.to_string();
        let mut counter = 2;
        while !self.0.insert(candidate.clone()) {
            candidate = format!("{wanted}#{counter}");
            counter += 1;
        }
        candidate
    }
}

/// `urn:uuid:` of a version-5-shaped UUID made of the lock's content digest (and the
/// timestamp, when there is one): the same lock gives the same serial number, another lock
/// or another time another.
fn serial_number(lock: &Lock, stamp: Stamp) -> String {
    let mut content = lock::render_lock(lock);
    if let Some(seconds) = stamp.0 {
        content.push_str(&format!("\n# timestamp {seconds}"));
    }
    let digest = Sha256::of(content);
    let hex = Sha256::hex(&digest);
    let variant = ["8", "9", "a", "b"][usize::from(hex.as_bytes()[16] % 4)];
    format!(
        "urn:uuid:{}-{}-5{}-{variant}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// `metadata.component`: the image (by reference, id and registry digests), or the
/// interpreter of a live runtime, or the project whose lock was declared.
fn runtime(lock: &Lock, bom_ref: String) -> Component {
    let source = &lock.source;
    let mut properties = vec![Property::new(
        "envlock:source-kind",
        source_kind(source.kind),
    )];
    match source.kind {
        SourceKind::Image => {
            let name = source
                .reference
                .clone()
                .or_else(|| source.id.clone())
                .unwrap_or_else(|| "image".into());
            properties.extend(
                source
                    .id
                    .iter()
                    .map(|id| Property::new("envlock:image-id", id)),
            );
            properties.extend(
                source
                    .repo_digests
                    .iter()
                    .map(|digest| Property::new("envlock:repo-digest", digest)),
            );
            properties.extend(
                source
                    .platform
                    .iter()
                    .map(|platform| Property::new("envlock:platform", platform)),
            );
            let purl = source
                .repo_digests
                .first()
                .and_then(|digest| oci_purl(digest));
            Component {
                kind: "container".into(),
                bom_ref: Some(bom_ref.clone()),
                name,
                version: source.id.clone(),
                hashes: source.id.iter().filter_map(|id| sha256_hash(id)).collect(),
                purl,
                properties,
                ..Component::default()
            }
        }
        SourceKind::Python | SourceKind::Declared | SourceKind::Sbom => {
            properties.extend(
                source
                    .interpreter
                    .iter()
                    .map(|path| Property::new("envlock:interpreter", path)),
            );
            let (name, version) = match &lock.python {
                Some(python) => (python.implementation.clone(), Some(python.version.clone())),
                None => (
                    source.reference.clone().unwrap_or_else(|| "python".into()),
                    None,
                ),
            };
            Component {
                kind: "application".into(),
                bom_ref: Some(bom_ref.clone()),
                name,
                version,
                properties,
                ..Component::default()
            }
        }
    }
}

fn source_kind(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Python => "python",
        SourceKind::Image => "image",
        SourceKind::Declared => "declared",
        SourceKind::Sbom => "sbom",
    }
}

/// `pkg:oci/NAME@sha256:…?repository_url=HOST/REPO` of a `HOST/REPO@sha256:…` digest.
fn oci_purl(repo_digest: &str) -> Option<String> {
    let (repository, digest) = repo_digest.split_once('@')?;
    let name = repository.rsplit('/').next()?.to_ascii_lowercase();
    Some(
        Purl::new("oci", &name, digest)
            .qualifier("repository_url", Some(repository))
            .text(),
    )
}

/// The interpreter of an image, as an application component.
fn interpreter(python: &lock::Python, bom_ref: String) -> Component {
    let mut properties = Vec::new();
    properties.extend(
        python
            .executable
            .iter()
            .map(|path| Property::new("envlock:executable", path)),
    );
    if let Some(selected_by) = &python.selected_by {
        let text = serde_json::to_value(selected_by)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string));
        properties.extend(text.map(|text| Property::new("envlock:selected-by", text)));
    }
    Component {
        kind: "application".into(),
        bom_ref: Some(bom_ref),
        name: python.implementation.clone(),
        version: Some(python.version.clone()),
        properties,
        ..Component::default()
    }
}

/// The image's operating system, as `/etc/os-release` names it.
fn operating_system(lock: &Lock, refs: &mut Refs) -> Option<Component> {
    let platform = &lock.platform;
    let id = platform.os_id.as_ref()?;
    Some(Component {
        kind: "operating-system".into(),
        bom_ref: Some(refs.unique(&format!("os:{id}"))),
        name: id.clone(),
        version: platform.os_version.clone(),
        ..Component::default()
    })
}

/// The platform facts, as `envlock:` properties of the document.
fn platform_properties(lock: &Lock) -> Vec<Property> {
    let platform = &lock.platform;
    let mut properties = Vec::new();
    let mut add = |name: &str, value: Option<&String>| {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            properties.push(Property::new(name, value.as_str()));
        }
    };
    add("envlock:os", Some(&platform.os));
    add("envlock:arch", Some(&platform.arch));
    add("envlock:libc", platform.libc.as_ref());
    add("envlock:libc-version", platform.libc_version.as_ref());
    add("envlock:os-id", platform.os_id.as_ref());
    add("envlock:os-version", platform.os_version.as_ref());
    properties
}

/// A Python distribution: its purl, and what the lock knows of its install.
fn distribution(package: &Package, refs: &mut Refs) -> Component {
    let purl = Purl::new("pypi", &package.name, &package.version).text();
    let mut properties = vec![Property::new("envlock:location", &package.location)];
    if package.format == lock::MetadataFormat::EggInfo {
        properties.push(Property::new("envlock:metadata-format", "egg-info"));
    }
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            properties.push(Property::new(name, value.as_str()));
        }
    };
    add("envlock:record", &package.record);
    add("envlock:installer", &package.installer);
    add("envlock:archive-sha256", &package.archive_sha256);
    add("envlock:url", &package.url);
    add("envlock:vcs", &package.vcs);
    add("envlock:vcs-commit", &package.commit);
    if let Some(source) = package.source {
        properties.push(Property::new("envlock:direct-url", source.name()));
    }
    if package.editable {
        properties.push(Property::new("envlock:editable", "true"));
    }
    if package.requested {
        properties.push(Property::new("envlock:requested", "true"));
    }
    for tag in &package.wheel_tags {
        properties.push(Property::new("envlock:wheel-tag", tag));
    }
    for requirement in &package.requires {
        properties.push(Property::new("envlock:requires", requirement));
    }
    let external_references = match (package.source, &package.url) {
        (Some(source), Some(url)) => vec![ExternalReference {
            kind: match source {
                PackageSource::Vcs => "vcs",
                PackageSource::Archive => "distribution",
                PackageSource::Directory => "other",
            }
            .into(),
            url: url.clone(),
        }],
        _ => Vec::new(),
    };
    Component {
        kind: "library".into(),
        bom_ref: Some(refs.unique(&purl)),
        name: package.name.clone(),
        version: Some(package.version.clone()),
        purl: Some(purl),
        external_references,
        properties,
        ..Component::default()
    }
}

/// A dpkg, rpm or apk package, with the distribution as its namespace and qualifier.
fn system_package(lock: &Lock, package: &lock::SystemPackage, refs: &mut Refs) -> Component {
    let platform = &lock.platform;
    let kind = MANAGERS
        .iter()
        .find(|(manager, _)| *manager == package.manager)
        .map_or(package.manager.as_str(), |(_, kind)| kind);
    let distro = platform
        .os_id
        .as_ref()
        .map(|id| match &platform.os_version {
            Some(version) => format!("{id}-{version}"),
            None => id.clone(),
        });
    // RPM's epoch is a qualifier; the version is `version-release`.
    let (epoch, version) = match (kind, package.version.split_once(':')) {
        ("rpm", Some((epoch, rest))) if epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(epoch), rest)
        }
        _ => (None, package.version.as_str()),
    };
    let purl = Purl::new(kind, &package.name, version)
        .namespace(platform.os_id.as_deref())
        .qualifier("distro", distro.as_deref())
        .qualifier("epoch", epoch)
        .text();
    let manager = Property::new("envlock:package-manager", &package.manager);
    package_component(purl, &package.name, &package.version, manager, refs)
}

/// A conda or system package: a library known by its purl, with one property.
fn package_component(
    purl: String,
    name: &str,
    version: &str,
    property: Property,
    refs: &mut Refs,
) -> Component {
    Component {
        kind: "library".into(),
        bom_ref: Some(refs.unique(&purl)),
        name: name.to_string(),
        version: Some(version.to_string()),
        purl: Some(purl),
        properties: vec![property],
        ..Component::default()
    }
}

/// A native numerics library: its family, version and bytes' SHA-256.
fn numeric_library(library: &NumericLibrary, refs: &mut Refs) -> Component {
    let mut properties = vec![
        Property::new("envlock:numerics-family", &library.family),
        Property::new("envlock:path", &library.path),
    ];
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            properties.push(Property::new(name, value.as_str()));
        }
    };
    add("envlock:threading", &library.threading);
    add("envlock:shipped-by", &library.shipped_by);
    for by in &library.loaded_by {
        properties.push(Property::new("envlock:loaded-by", by));
    }
    if library.loaded {
        properties.push(Property::new("envlock:loaded", "true"));
    }
    if let Some(gpu) = &library.gpu {
        let lists = [
            ("envlock:gpu-sass", &gpu.sass),
            ("envlock:gpu-ptx", &gpu.ptx),
            ("envlock:gpu-partial", &gpu.partial),
        ];
        for (name, list) in lists {
            properties.extend(list.iter().map(|arch| Property::new(name, arch)));
        }
    }
    let file = library.path.rsplit('/').next().unwrap_or(&library.path);
    Component {
        kind: "library".into(),
        bom_ref: Some(refs.unique(&format!("numerics:{}", library.path))),
        name: file.to_string(),
        version: library.version.clone(),
        description: Some(format!("{} (native numerics library)", library.family)),
        hashes: library
            .sha256
            .iter()
            .filter_map(|digest| sha256_hash(digest))
            .collect(),
        properties,
        ..Component::default()
    }
}

/// A model file or folder as a `machine-learning-model` (a folder's SHA-256 is that of its
/// manifest, as in the lock), a folder's files nested in it as `file` components with their
/// own SHA-256 and what each says.
fn model_component(model: &Model, refs: &mut Refs) -> Component {
    let kind = serde_json::to_value(model.kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut properties = vec![
        Property::new("envlock:model-kind", kind),
        Property::new("envlock:size", model.size.to_string()),
    ];
    facts_properties(
        model.format,
        &model.written_by,
        &model.imports,
        &model.unsafe_calls,
        &mut properties,
    );
    let lists = [
        ("envlock:unsafe-where", &model.unsafe_where),
        ("envlock:not-importable", &model.not_importable),
    ];
    for (name, values) in lists {
        properties.extend(values.iter().map(|value| Property::new(name, value)));
    }
    let files = (model.files.iter())
        .map(|file| {
            let mut properties = vec![Property::new("envlock:size", file.size.to_string())];
            if let Some(target) = &file.link {
                properties.push(Property::new("envlock:link", target));
            }
            facts_properties(
                file.format,
                &file.written_by,
                &file.imports,
                &file.unsafe_calls,
                &mut properties,
            );
            Component {
                kind: "file".into(),
                name: file.path.clone(),
                hashes: (file.sha256.as_deref())
                    .and_then(sha256_hash)
                    .into_iter()
                    .collect(),
                properties,
                ..Component::default()
            }
        })
        .collect();
    Component {
        kind: "machine-learning-model".into(),
        bom_ref: Some(refs.unique(&format!("model:{}", model.path))),
        name: model.path.clone(),
        hashes: sha256_hash(&model.sha256).into_iter().collect(),
        properties,
        components: files,
        ..Component::default()
    }
}

/// What a model file's bytes say, as properties (a folder: its files' together).
fn facts_properties(
    format: Option<lock::ModelFormat>,
    written_by: &[lock::WrittenBy],
    imports: &[String],
    unsafe_calls: &[String],
    properties: &mut Vec<Property>,
) {
    if let Some(format) = format {
        properties.push(Property::new("envlock:model-format", format.name()));
    }
    for writer in written_by {
        properties.push(Property::new(
            "envlock:written-by",
            format!("{} {}", writer.name, writer.version),
        ));
    }
    for (name, values) in [
        ("envlock:import", imports),
        ("envlock:unsafe", unsafe_calls),
    ] {
        properties.extend(values.iter().map(|value| Property::new(name, value)));
    }
}

/// A CycloneDX SHA-256 hash of a `sha256:<hex>` digest.
fn sha256_hash(digest: &str) -> Option<Hash> {
    Sha256::is_valid(digest).then(|| Hash {
        alg: "SHA-256".into(),
        content: Sha256::hex(digest).to_string(),
    })
}

/// `2026-12-02T01:02:03Z` of seconds since the Unix epoch.
fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil, for the proleptic Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_173_323), "2026-12-02T01:02:03Z");
    }

    #[test]
    fn deterministic_and_unique_refs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/locks/baseline.lock");
        let mut lock = crate::lock::read_lock(&path).unwrap();
        let first = cyclonedx(&lock, Stamp::default());
        assert_eq!(first, cyclonedx(&lock, Stamp::default()));
        assert!(!first.contains("timestamp"));
        assert!(
            cyclonedx(&lock, Stamp(Some(0))).contains("\"timestamp\": \"1970-01-01T00:00:00Z\"")
        );
        let serial = |text: &str| {
            let bom: serde_json::Value = serde_json::from_str(text).unwrap();
            bom["serialNumber"].as_str().unwrap().to_string()
        };
        lock.packages[0].version.push_str(".post1");
        assert_ne!(serial(&first), serial(&cyclonedx(&lock, Stamp::default())));
        let mut refs = Refs::default();
        assert_eq!(refs.unique("a"), "a");
        assert_eq!(refs.unique("a"), "a#2");
        assert_eq!(refs.unique("a"), "a#3");
    }
}
