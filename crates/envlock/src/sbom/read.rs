//! A CycloneDX JSON SBOM as a lock without interpreter facts: its `pkg:pypi` components
//! become distributions, `pkg:conda` conda packages, `pkg:deb`/`pkg:rpm`/`pkg:apk` system
//! packages, `machine-learning-model` components models, and what envlock itself exported
//! (`envlock:` properties) comes back whole. Components of other kinds (npm, binaries,
//! files) are counted in a note and left out.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::str::FromStr as _;

use pep508_rs::PackageName;

use super::purl::Purl;
use super::{properties, Bom, Component, MANAGERS};
use crate::error::{Error, Result};
use crate::lock::{self, GpuCode, Lock, Model, NumericLibrary, Package, PackageSource, Shadowed};

/// The largest SBOM read (syft's of a large image is tens of MB).
const LIMIT: u64 = 128 << 20;

/// The most JSON objects an SBOM may hold (each `{` counts, so strings too): what bounds
/// the memory its components take, 3 bytes (`{},`) making a component of hundreds.
const OBJECT_LIMIT: usize = 2_000_000;

/// The lock an SBOM describes, and the notes on what it could not say.
pub(crate) fn read_sbom(path: &Path) -> Result<(Lock, Vec<String>)> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    parse_sbom(&bytes, path)
}

/// The lock the SBOM `bytes` (read from `path`) describes.
pub(crate) fn parse_sbom(bytes: &[u8], path: &Path) -> Result<(Lock, Vec<String>)> {
    let invalid = |detail: String| Error::InvalidSbom {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() as u64 > LIMIT {
        return Err(invalid(format!("it is larger than {} MiB", LIMIT >> 20)));
    }
    if memchr::memchr_iter(b'{', bytes).count() > OBJECT_LIMIT {
        return Err(invalid(format!(
            "it holds more than {OBJECT_LIMIT} JSON objects"
        )));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Err(invalid(
            "it is XML; envlock reads CycloneDX JSON".to_string(),
        ));
    }
    let bom: Bom = serde_json::from_slice(bytes)
        .map_err(|error| invalid(format!("it is not CycloneDX JSON ({error})")))?;
    if bom.bom_format != "CycloneDX" {
        return Err(invalid(if bom.bom_format.is_empty() {
            "it has no `bomFormat: \"CycloneDX\"`".to_string()
        } else {
            format!("its `bomFormat` is `{}`, not `CycloneDX`", bom.bom_format)
        }));
    }
    if !["1.4", "1.5", "1.6", "1.7"].contains(&bom.spec_version.as_str()) {
        return Err(invalid(format!(
            "its `specVersion` is `{}`; envlock reads CycloneDX 1.4 to 1.7",
            bom.spec_version
        )));
    }
    Ok(to_lock(&bom, path))
}

/// The interpreter of an SBOM envlock exported: the image's `python` component, or the
/// document's own component for a live interpreter. Other tools record none.
fn python_of(bom: &Bom) -> Option<lock::Python> {
    let runtime = bom.metadata.component.as_ref()?;
    let kind = runtime.first("envlock:source-kind")?;
    let component = if kind == "image" {
        bom.components
            .iter()
            .find(|component| component.bom_ref.as_deref() == Some("python"))?
    } else {
        runtime
    };
    Some(lock::Python {
        implementation: component.name.clone(),
        version: component.version.clone()?,
        executable: component.first("envlock:executable"),
        prefix: None,
        base_prefix: None,
        soabi: None,
        cache_tag: None,
        sys_path: Vec::new(),
        markers: BTreeMap::new(),
        selected_by: None,
    })
}

/// What the SBOM's components say, gathered.
#[derive(Default)]
struct Gathered {
    packages: BTreeMap<String, Package>,
    conda: BTreeMap<String, lock::CondaPackage>,
    system: BTreeMap<(String, String), lock::SystemPackage>,
    libraries: Vec<NumericLibrary>,
    models: Vec<Model>,
    /// Components of kinds envlock does not compare, by purl type or component type.
    other: BTreeMap<String, usize>,
    os: Option<(String, Option<String>)>,
    /// Distributions listed more than once.
    duplicates: Vec<String>,
}

fn to_lock(bom: &Bom, path: &Path) -> (Lock, Vec<String>) {
    let mut gathered = Gathered::default();
    let mut stack: Vec<&Component> = bom.components.iter().rev().collect();
    while let Some(component) = stack.pop() {
        gathered.add(component);
        // The files envlock nests in a model are the model's, read with it.
        if !is_envlock_model(component) {
            stack.extend(component.components.iter().rev());
        }
    }
    let metadata = &bom.metadata;
    let property = |name: &'static str| {
        properties(&metadata.properties, name)
            .next()
            .map(str::to_string)
    };
    let (os_id, os_version) = match (property("envlock:os-id"), &gathered.os) {
        (Some(id), _) => (Some(id), property("envlock:os-version")),
        (None, Some((id, version))) => (Some(id.clone()), version.clone()),
        (None, None) => (None, None),
    };
    let platform = lock::Platform {
        os: property("envlock:os").unwrap_or_default(),
        arch: property("envlock:arch").unwrap_or_default(),
        libc: property("envlock:libc"),
        libc_version: property("envlock:libc-version"),
        os_id,
        os_version,
    };
    let runtime = metadata.component.as_ref();
    let python = python_of(bom);
    let file = path.display().to_string();
    let source = lock::Source {
        kind: lock::SourceKind::Sbom,
        reference: Some(
            runtime
                .map(|component| component.name.clone())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| file.clone()),
        ),
        id: runtime.and_then(|component| component.first("envlock:image-id")),
        repo_digests: runtime
            .map(|component| {
                component
                    .property("envlock:repo-digest")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        platform: runtime.and_then(|component| component.first("envlock:platform")),
        interpreter: None,
    };
    let tools: Vec<String> = metadata
        .tools
        .iter()
        .flat_map(|tools| tools.components())
        .map(|tool| match &tool.version {
            Some(version) => format!("{} {version}", tool.name),
            None => tool.name.clone(),
        })
        .collect();
    let by = if tools.is_empty() {
        String::new()
    } else {
        format!(", written by {}", tools.join(", "))
    };
    let recorded = match (&python, platform.os.is_empty()) {
        (Some(_), false) => "the Python version, the platform, ",
        (Some(_), true) => "the Python version, ",
        (None, false) => "the platform, ",
        (None, true) => "",
    };
    let mut notes = vec![format!(
        "`{file}` is a CycloneDX SBOM{by}: its packages, {recorded}models and numerics libraries are compared where it records them; environment variables, the interpreter's other facts and golden outputs are not, as an SBOM records none of them"
    )];
    if !gathered.duplicates.is_empty() {
        notes.push(format!(
            "`{file}` lists more than one copy of {} and does not say which one Python imports: the copy whose version the other side has is compared",
            gathered.duplicates.join(", ")
        ));
    }
    if !gathered.other.is_empty() {
        let kinds: Vec<String> = gathered
            .other
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        notes.push(format!(
            "`{file}`: components of other kinds are not compared ({})",
            kinds.join(", ")
        ));
    }
    let lock = Lock {
        envlock: lock::Header::current(),
        source,
        python,
        platform,
        env: lock::Env::default(),
        packages: gathered.packages.into_values().collect(),
        pth_files: Vec::new(),
        conda_packages: gathered.conda.into_values().collect(),
        numerics: lock::Numerics {
            libraries: gathered.libraries,
            ..lock::Numerics::default()
        },
        models: gathered.models,
        golden: Vec::new(),
        system_packages: gathered.system.into_values().collect(),
        image: None,
        declared: None,
    };
    (lock, notes)
}

impl Gathered {
    fn add(&mut self, component: &Component) {
        if component.kind == "machine-learning-model" {
            if is_envlock_model(component) {
                self.models.push(model(component));
            } else {
                *self.other.entry(component.kind.clone()).or_default() += 1;
            }
            return;
        }
        if component.kind == "operating-system" {
            if self.os.is_none() && !component.name.is_empty() {
                self.os = Some((
                    component.name.to_ascii_lowercase(),
                    component.version.clone(),
                ));
            }
            return;
        }
        if let Some(family) = component.first("envlock:numerics-family") {
            self.libraries.push(numeric_library(component, family));
            return;
        }
        let Some(purl) = component.purl.as_deref().and_then(Purl::parse) else {
            // cyclonedx-py writes a direct-URL install (a wheel file, a folder, a VCS
            // checkout) with no purl and the bom-ref `NAME==VERSION`.
            let python = component.version.as_ref().filter(|version| {
                component.bom_ref.as_deref() == Some(&format!("{}=={version}", component.name))
            });
            if let Some(version) = python {
                self.add_package(component, &component.name, version.clone());
                return;
            }
            if !component.kind.is_empty() {
                *self.other.entry(component.kind.clone()).or_default() += 1;
            }
            return;
        };
        let version = purl
            .version
            .clone()
            .or_else(|| component.version.clone())
            .unwrap_or_default();
        match purl.kind.as_str() {
            "pypi" => self.add_package(component, &purl.name, version),
            "conda" => {
                let build = purl
                    .qualifiers
                    .get("build")
                    .cloned()
                    .or_else(|| component.first("envlock:build"))
                    .unwrap_or_default();
                let name = purl.name.to_ascii_lowercase();
                self.conda
                    .entry(name.clone())
                    .or_insert(lock::CondaPackage {
                        name,
                        version,
                        build,
                        channel: purl
                            .qualifiers
                            .get("channel")
                            .map(|channel| lock::CondaPackage::channel_name(channel)),
                        layer: None,
                    });
            }
            kind if MANAGERS.iter().any(|(_, purl_kind)| *purl_kind == kind) => {
                let manager = MANAGERS
                    .iter()
                    .find(|(_, purl_kind)| *purl_kind == kind)
                    .map_or(kind, |(manager, _)| manager);
                // RPM's `[epoch:]version-release`, as the lock writes it (epoch 0 too).
                let version = match purl.qualifiers.get("epoch") {
                    Some(epoch) if !version.contains(':') => format!("{epoch}:{version}"),
                    _ => version,
                };
                self.system
                    .entry((purl.name.clone(), manager.to_string()))
                    .or_insert(lock::SystemPackage {
                        name: purl.name.clone(),
                        version,
                        manager: manager.to_string(),
                        layer: None,
                    });
            }
            other => *self.other.entry(format!("pkg:{other}")).or_default() += 1,
        }
    }

    /// A Python distribution; a second one of the same name (another site folder) is kept
    /// as shadowed, as an SBOM does not say which wins on `sys.path`.
    fn add_package(&mut self, component: &Component, name: &str, version: String) {
        let Ok(name) = PackageName::from_str(name) else {
            *self
                .other
                .entry("library with an invalid Python name".into())
                .or_default() += 1;
            return;
        };
        let name = name.to_string();
        let location = component.first("envlock:location").unwrap_or_default();
        if let Some(first) = self.packages.get_mut(&name) {
            if first.shadowed.is_empty() {
                self.duplicates.push(name.clone());
            }
            first.shadowed.push(Shadowed { version, location });
            return;
        }
        let flag = |property: &str| component.first(property).as_deref() == Some("true");
        let source = component
            .first("envlock:direct-url")
            .and_then(|text| PackageSource::from_name(&text));
        let package = Package {
            name: name.clone(),
            version,
            location,
            format: if component.first("envlock:metadata-format").as_deref() == Some("egg-info") {
                lock::MetadataFormat::EggInfo
            } else {
                lock::MetadataFormat::DistInfo
            },
            installer: component.first("envlock:installer"),
            requested: flag("envlock:requested"),
            source,
            editable: flag("envlock:editable"),
            url: component.first("envlock:url"),
            commit: component.first("envlock:vcs-commit"),
            vcs: component.first("envlock:vcs"),
            archive_sha256: component.first("envlock:archive-sha256"),
            wheel_tags: component
                .property("envlock:wheel-tag")
                .map(str::to_string)
                .collect(),
            record: component.first("envlock:record"),
            requires: component
                .property("envlock:requires")
                .map(str::to_string)
                .collect(),
            ..Package::default()
        };
        self.packages.insert(name, package);
    }
}

fn numeric_library(component: &Component, family: String) -> NumericLibrary {
    NumericLibrary {
        family,
        version: component.version.clone(),
        threading: component.first("envlock:threading"),
        path: component
            .first("envlock:path")
            .unwrap_or_else(|| component.name.clone()),
        sha256: component.sha256(),
        shipped_by: component.first("envlock:shipped-by"),
        loaded_by: component
            .property("envlock:loaded-by")
            .map(str::to_string)
            .collect(),
        loaded: component.first("envlock:loaded").as_deref() == Some("true"),
        gpu: gpu_code(component),
    }
}

/// A CUDA library's GPU code, as envlock's export writes it.
fn gpu_code(component: &Component) -> Option<GpuCode> {
    let list =
        |name: &str| -> Vec<String> { component.property(name).map(str::to_string).collect() };
    let code = GpuCode {
        sass: list("envlock:gpu-sass"),
        ptx: list("envlock:gpu-ptx"),
        partial: list("envlock:gpu-partial"),
    };
    (!code.sass.is_empty() || !code.ptx.is_empty()).then_some(code)
}

/// A model envlock exported: it has a path and a digest; another tool's ML-BOM names a
/// model (`bert-base-uncased`), which is no path to check.
fn is_envlock_model(component: &Component) -> bool {
    component.kind == "machine-learning-model" && component.first("envlock:model-kind").is_some()
}

/// The format property of a model or one of its files.
fn model_format(component: &Component) -> Option<lock::ModelFormat> {
    let format = component.first("envlock:model-format")?;
    serde_json::from_value(serde_json::Value::String(format)).ok()
}

/// The `envlock:written-by` properties (`name version`).
fn written_by(component: &Component) -> Vec<lock::WrittenBy> {
    (component.property("envlock:written-by"))
        .filter_map(|text| text.split_once(' '))
        .map(|(name, version)| lock::WrittenBy {
            name: name.to_string(),
            version: version.to_string(),
        })
        .collect()
}

/// A file envlock nested in a model folder's component.
fn model_file(component: &Component) -> lock::ModelFile {
    let list =
        |name: &str| -> Vec<String> { component.property(name).map(str::to_string).collect() };
    lock::ModelFile {
        path: component.name.clone(),
        sha256: component.sha256(),
        size: (component.first("envlock:size"))
            .and_then(|size| size.parse().ok())
            .unwrap_or_default(),
        link: component.first("envlock:link"),
        format: model_format(component),
        written_by: written_by(component),
        imports: list("envlock:import"),
        unsafe_calls: list("envlock:unsafe"),
    }
}

/// A `machine-learning-model` component; what envlock exported of it comes back.
fn model(component: &Component) -> Model {
    let text = |value: Option<String>| value.map(serde_json::Value::String);
    let list =
        |name: &str| -> Vec<String> { component.property(name).map(str::to_string).collect() };
    Model {
        path: component.name.clone(),
        kind: text(component.first("envlock:model-kind"))
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default(),
        sha256: component.sha256().unwrap_or_default(),
        size: component
            .first("envlock:size")
            .and_then(|size| size.parse().ok())
            .unwrap_or_default(),
        format: model_format(component),
        written_by: written_by(component),
        imports: list("envlock:import"),
        unsafe_calls: list("envlock:unsafe"),
        unsafe_where: list("envlock:unsafe-where"),
        not_importable: list("envlock:not-importable"),
        files: (component.components.iter())
            .filter(|file| file.kind == "file")
            .map(model_file)
            .collect(),
        layer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<(Lock, Vec<String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cdx.json");
        std::fs::write(&path, text).unwrap();
        read_sbom(&path)
    }

    #[test]
    fn what_is_not_a_cyclonedx_json_sbom() {
        for (text, says) in [
            ("<bom/>", "XML"),
            ("{", "not CycloneDX JSON"),
            ("[]", "no `bomFormat"),
            (r#"{"spdxVersion": "SPDX-2.3"}"#, "no `bomFormat"),
            (r#"{"bomFormat": "SPDX", "specVersion": "1.6"}"#, "`SPDX`"),
            (
                r#"{"bomFormat": "CycloneDX", "specVersion": "1.2"}"#,
                "1.4 to 1.7",
            ),
            (
                r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": 3}"#,
                "not CycloneDX JSON",
            ),
        ] {
            let error = read_text(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn too_many_objects_are_refused_before_they_are_read() {
        let text = format!(
            r#"{{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{}{{}}]}}"#,
            "{},".repeat(OBJECT_LIMIT)
        );
        let error = read_text(&text).unwrap_err().to_string();
        assert!(error.contains("more than 2000000 JSON objects"), "{error}");
    }

    #[test]
    fn components_of_other_tools() {
        // CycloneDX 1.4's list of tools, still allowed in 1.5 and 1.6.
        let text = r#"{"bomFormat": "CycloneDX", "specVersion": "1.5",
            "metadata": {"tools": [{"vendor": "anchore", "name": "syft", "version": "0.80.0"}]},
            "components": [
            {"type": "library", "name": "Boolean.py", "version": "5.0", "purl": "pkg:pypi/boolean.py@5.0"},
            {"type": "library", "name": "PyYAML", "purl": "pkg:pypi/PyYAML@6.0.2",
             "components": [{"type": "library", "name": "six", "purl": "pkg:pypi/six@1.16.0"}]},
            {"type": "library", "name": "pyyaml", "purl": "pkg:pypi/pyyaml@5.4"},
            {"type": "library", "name": "bash", "purl": "pkg:rpm/fedora/bash@5.2.15-5.fc38?epoch=1&distro=fedora-38"},
            {"type": "library", "name": "tzdata", "purl": "pkg:rpm/fedora/tzdata@2024a-1.fc38?epoch=0"},
            {"type": "machine-learning-model", "name": "bert-base-uncased"},
            {"type": "library", "name": "mkl", "purl": "pkg:conda/mkl@2024.0.0?channel=https://conda.anaconda.org/conda-forge/linux-64"},
            {"type": "library", "name": "libc6", "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"},
            {"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad@1.3.0"},
            {"type": "library", "name": "Local_Wheel", "version": "1.2+local", "bom-ref": "Local_Wheel==1.2+local"},
            {"type": "file", "name": "/usr/bin/python3.11"},
            {"type": "operating-system", "name": "Debian", "version": "12"}
        ]}"#;
        let (lock, notes) = read_text(text).unwrap();
        let packages: Vec<(&str, &str)> = lock
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            packages,
            [
                ("boolean-py", "5.0"),
                ("local-wheel", "1.2+local"),
                ("pyyaml", "6.0.2"),
                ("six", "1.16.0")
            ]
        );
        assert_eq!(lock.packages[2].shadowed[0].version, "5.4");
        let system: Vec<(&str, &str, &str)> = lock
            .system_packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.manager.as_str()))
            .collect();
        assert_eq!(
            system,
            [
                ("bash", "1:5.2.15-5.fc38", "rpm"),
                ("libc6", "2.36-9+deb12u4", "dpkg"),
                ("tzdata", "0:2024a-1.fc38", "rpm")
            ]
        );
        assert!(lock.models.is_empty(), "a named model is no path");
        let mkl = &lock.conda_packages[0];
        assert_eq!(
            (mkl.channel.as_deref(), mkl.build.as_str()),
            (Some("conda-forge"), "")
        );
        assert!(notes[0].contains("written by syft 0.80.0"), "{notes:?}");
        assert!(
            notes[1].contains("more than one copy of pyyaml"),
            "{notes:?}"
        );
        assert_eq!(lock.platform.os_id.as_deref(), Some("debian"));
        assert!(lock.python.is_none());
        assert!(
            notes[2].contains("1 file, 1 machine-learning-model, 1 pkg:npm"),
            "{notes:?}"
        );
    }
}
