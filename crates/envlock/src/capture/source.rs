//! Where a runtime comes from, as an operand names it: an existing file is a lock,
//! `python:PATH` a live interpreter, and an image is written as syft and skopeo users write
//! it: `docker:REF` (the local engine; a bare reference means this), `registry:HOST/REPO:TAG`
//! (the OCI distribution API, no engine), `docker-archive:PATH` (`docker save`),
//! `oci-dir:PATH` and `oci-archive:PATH` (an OCI image layout, as a folder or a tar). A
//! project's own lock (`uv.lock`, `pylock.toml`, `poetry.lock`, `requirements*.txt`, or a
//! path prefixed `uv-lock:`, `pylock:`, `poetry-lock:`, `requirements:`) is a declared lock.
//! A CycloneDX JSON SBOM is `cyclonedx:PATH`, or a file named `*.cdx.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::declared::DeclaredSource;
use crate::error::{Error, Result};

/// A runtime's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A lock file.
    Lock(PathBuf),
    /// A live interpreter, captured on the spot; `None` is the configured or default one.
    Python(Option<PathBuf>),
    /// An image, captured on the spot.
    Image(ImageSource),
    /// A project's declared lock (uv.lock, pylock.toml, poetry.lock, requirements.txt),
    /// selected for the runtime it is compared with.
    Declared(DeclaredSource),
    /// A CycloneDX JSON SBOM (`cyclonedx:PATH`, or a file named `*.cdx.json`).
    Sbom(PathBuf),
}

/// Where an image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image of the local (or `DOCKER_HOST`) engine, by reference or id.
    Engine(String),
    /// An image in a registry, `HOST/REPO:TAG` or `HOST/REPO@sha256:…`.
    Registry(String),
    /// A `docker save` tarball (the legacy layout, or the OCI one of Docker 25+).
    DockerArchive(PathBuf),
    /// An OCI image layout folder (`index.json`, `blobs/`).
    OciDir(PathBuf),
    /// An OCI image layout in a tar.
    OciArchive(PathBuf),
}

impl ImageSource {
    /// Whether the image is in an engine, where golden cases and the probe can run.
    pub fn is_engine(&self) -> bool {
        matches!(self, ImageSource::Engine(_))
    }
}

impl fmt::Display for ImageSource {
    /// The source as an operand writes it; an engine image as its bare reference.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Engine(reference) => write!(f, "{reference}"),
            ImageSource::Registry(reference) => write!(f, "registry:{reference}"),
            ImageSource::DockerArchive(path) => write!(f, "docker-archive:{}", path.display()),
            ImageSource::OciDir(path) => write!(f, "oci-dir:{}", path.display()),
            ImageSource::OciArchive(path) => write!(f, "oci-archive:{}", path.display()),
        }
    }
}

/// The transports an image operand may start with.
const TRANSPORTS: &[&str] = &[
    "docker:",
    "registry:",
    "docker-archive:",
    "oci-dir:",
    "oci-archive:",
];

impl Source {
    /// Reads an operand as the contract says; a missing file that looks like a lock is an
    /// error here rather than an image reference to look up.
    pub fn parse(text: &str) -> Result<Source> {
        if let Some(interpreter) = text.strip_prefix("python:") {
            return Ok(Source::Python(Some(PathBuf::from(interpreter))));
        }
        if let Some(image) = ImageSource::parse_transport(text)? {
            return Ok(Source::Image(image));
        }
        let sbom = text.strip_prefix("cyclonedx:").or_else(|| {
            let name = Path::new(text).file_name()?.to_str()?;
            name.ends_with(".cdx.json").then_some(text)
        });
        if let Some(sbom) = sbom {
            if !Path::new(sbom).is_file() {
                return Err(Error::InvalidSbom {
                    path: PathBuf::from(sbom),
                    detail: "there is no such file".into(),
                });
            }
            return Ok(Source::Sbom(PathBuf::from(sbom)));
        }
        if let Some(declared) = DeclaredSource::parse(text) {
            if !declared.path.is_file() {
                return Err(Error::LockNotFound {
                    operand: text.to_string(),
                });
            }
            return Ok(Source::Declared(declared));
        }
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Source::Lock(path.to_path_buf()));
        }
        let looks_like_a_file = [".lock", ".toml", ".json"]
            .iter()
            .any(|end| text.ends_with(end))
            || text.starts_with('.')
            || text.starts_with('/')
            || path.exists();
        if looks_like_a_file {
            return Err(Error::LockNotFound {
                operand: text.to_string(),
            });
        }
        Ok(Source::Image(ImageSource::Engine(text.to_string())))
    }
}

impl ImageSource {
    /// An image as `--image` takes it: a transport, or a bare engine reference.
    pub fn parse(text: &str) -> Result<ImageSource> {
        Ok(ImageSource::parse_transport(text)?
            .unwrap_or_else(|| ImageSource::Engine(text.to_string())))
    }

    /// `Some` when `text` names a transport; an empty or malformed rest is an error.
    fn parse_transport(text: &str) -> Result<Option<ImageSource>> {
        let Some(transport) = TRANSPORTS.iter().find(|t| text.starts_with(**t)) else {
            return Ok(None);
        };
        let rest = &text[transport.len()..];
        let invalid = |detail: &str| Error::InvalidSource {
            source_text: text.to_string(),
            detail: detail.to_string(),
        };
        if rest.is_empty() {
            return Err(invalid("nothing follows the transport"));
        }
        Ok(Some(match *transport {
            "docker:" => ImageSource::Engine(rest.to_string()),
            "registry:" => {
                let host = rest.split('/').next().unwrap_or_default();
                let has_host = rest.contains('/')
                    && (host.contains('.') || host.contains(':') || host == "localhost");
                if !has_host {
                    return Err(invalid(
                        "a registry image is written `registry:HOST/REPO:TAG` (or `@sha256:…`), with the registry's host first",
                    ));
                }
                ImageSource::Registry(rest.to_string())
            }
            "docker-archive:" => ImageSource::DockerArchive(PathBuf::from(rest)),
            "oci-dir:" => ImageSource::OciDir(PathBuf::from(rest)),
            _ => ImageSource::OciArchive(PathBuf::from(rest)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declared::DeclaredFormat;

    #[test]
    fn operands_are_read_as_the_contract_says() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("dev.lock");
        std::fs::write(&lock, "").unwrap();
        let text = lock.to_str().unwrap();
        let engine = |reference: &str| Source::Image(ImageSource::Engine(reference.into()));
        assert_eq!(Source::parse(text).unwrap(), Source::Lock(lock.clone()));
        assert_eq!(
            Source::parse("python:.venv/bin/python").unwrap(),
            Source::Python(Some(".venv/bin/python".into()))
        );
        assert_eq!(
            Source::parse("ml-model:latest").unwrap(),
            engine("ml-model:latest")
        );
        assert_eq!(
            Source::parse("registry.local:5000/ml@sha256:abc").unwrap(),
            engine("registry.local:5000/ml@sha256:abc")
        );
        assert_eq!(
            Source::parse("docker:ml-model:latest").unwrap(),
            engine("ml-model:latest")
        );
        assert_eq!(
            Source::parse("registry:127.0.0.1:5000/ml:v1").unwrap(),
            Source::Image(ImageSource::Registry("127.0.0.1:5000/ml:v1".into()))
        );
        assert_eq!(
            Source::parse("docker-archive:ml.tar").unwrap(),
            Source::Image(ImageSource::DockerArchive("ml.tar".into()))
        );
        assert_eq!(
            Source::parse("oci-dir:./layout").unwrap(),
            Source::Image(ImageSource::OciDir("./layout".into()))
        );
        assert_eq!(
            Source::parse("oci-archive:/tmp/ml.tar").unwrap(),
            Source::Image(ImageSource::OciArchive("/tmp/ml.tar".into()))
        );
        assert!(matches!(
            Source::parse("registry:ml:v1"),
            Err(Error::InvalidSource { .. })
        ));
        assert!(matches!(
            Source::parse("oci-dir:"),
            Err(Error::InvalidSource { .. })
        ));
        for (name, format) in [
            ("uv.lock", DeclaredFormat::UvLock),
            ("pylock.toml", DeclaredFormat::Pylock),
            ("pylock.gpu.toml", DeclaredFormat::Pylock),
            ("poetry.lock", DeclaredFormat::PoetryLock),
            ("requirements-dev.txt", DeclaredFormat::Requirements),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, "").unwrap();
            assert_eq!(
                Source::parse(path.to_str().unwrap()).unwrap(),
                Source::Declared(DeclaredSource { format, path })
            );
        }
        let prefixed = format!("requirements:{text}");
        assert_eq!(
            Source::parse(&prefixed).unwrap(),
            Source::Declared(DeclaredSource {
                format: DeclaredFormat::Requirements,
                path: lock.clone()
            })
        );
        let not_pylock = dir.path().join("pylock.a.b.toml");
        std::fs::write(&not_pylock, "").unwrap();
        assert_eq!(
            Source::parse(not_pylock.to_str().unwrap()).unwrap(),
            Source::Lock(not_pylock.clone())
        );
        assert!(matches!(
            Source::parse("uv-lock:missing"),
            Err(Error::LockNotFound { .. })
        ));
        assert!(matches!(
            Source::parse("missing.lock"),
            Err(Error::LockNotFound { .. })
        ));
    }
}
