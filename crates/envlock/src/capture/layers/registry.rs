//! `registry:HOST/REPO:TAG`: the OCI distribution API through `oci-client`, no engine.
//! Credentials come from the Docker config (and its credential helpers), else none; plain
//! HTTP is used for loopback registries, or any with `--insecure-registry`. Manifests and
//! the config are checked against their digests here, layers as they stream.
//!
//! Every request may take `ENVLOCK_REGISTRY_TIMEOUT` to connect and between two reads. A
//! transient answer (429, 502, 503, 504, a connection reset) is asked again, up to
//! [`TRIES`] times in all with pauses of 1, 2 and 4 s; a blob cut off mid-stream is resumed
//! from where it broke with a range request (its digest is checked over the whole). A
//! timeout is not asked again (a stall ends within the limit), nor a permanent answer (401,
//! 403, 404, 500, a digest that does not match). oci-client does not pass on response
//! headers, so a `Retry-After` is not read: the pauses are envlock's own.

use std::future::Future;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::layout::parse_json;
use super::oci::{pick, valid_digest, Manifest};
use super::store::{Blob, Opened, JSON_LIMIT};
use crate::error::{Error, ImageProblem, Result};
use crate::lock::Sha256;
use crate::settings::{waited, Settings};

/// The media types of manifests and indexes asked for.
const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A registry repository, connected.
pub(super) struct Remote {
    client: Client,
    reference: Reference,
    name: String,
    /// `ENVLOCK_REGISTRY_TIMEOUT`.
    timeout: Duration,
}

/// How many times a request with a transient failure is made in all (and how many times
/// in all a blob's stream is asked for, its resumptions included).
pub(crate) const TRIES: u32 = 4;

/// The pause before the `n`-th retry (from 0): 1 s, doubled each time.
pub(crate) fn pause(n: u32) -> Duration {
    Duration::from_secs(1) * 2u32.pow(n)
}

/// Whether `error` may go away when asked again: rate limits, a registry briefly down, a
/// connection reset or refused; never a timeout, a refusal or a digest that does not match.
fn transient(error: &OciDistributionError) -> bool {
    use oci_client::errors::OciErrorCode;
    use OciDistributionError as E;
    match error {
        // 5xx answers are server errors whatever their body.
        E::ServerError { code, .. } => matches!(code, 429 | 502 | 503 | 504),
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|error| error.code == OciErrorCode::Toomanyrequests),
        E::RequestError(error) => !timed_out(error) && !error.is_builder(),
        E::IoError(error) => io_transient(error),
        _ => false,
    }
}

/// A stream's error that may go away when asked again: anything but a timeout or a digest
/// that does not match.
fn io_transient(error: &std::io::Error) -> bool {
    !timed_out(error) && !digest_mismatch(error)
}

/// Whether a blob stream's error is oci-client's check of the bytes against the digest,
/// which it reports at the stream's end inside an `io::Error`: a corrupt blob, not a
/// registry gone away.
pub(super) fn digest_mismatch(error: &std::io::Error) -> bool {
    causes(error).any(|cause| cause.is::<oci_client::errors::DigestError>())
}

/// Whether `error` is a read or connect that ran out of time (`ENVLOCK_REGISTRY_TIMEOUT`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|error| error.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// `error` and its causes (an `io::Error`'s inner error included).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| {
        error.source().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|inner| inner as &(dyn std::error::Error + 'static))
        })
    })
}

/// Runs `call` until it succeeds, fails for good, or has been tried [`TRIES`] times.
async fn retried<T, F: Future<Output = Result<T, OciDistributionError>>>(
    mut call: impl FnMut() -> F,
) -> Result<T, OciDistributionError> {
    let mut tries = 1;
    loop {
        match call().await {
            Err(error) if tries < TRIES && transient(&error) => {
                tokio::time::sleep(pause(tries - 1)).await;
                tries += 1;
            }
            done => return done,
        }
    }
}

/// A blob's stream that resumes, with a range request, where a transient error broke it:
/// at most [`TRIES`] requests in all. (oci-client checks no digest of a partial stream;
/// envlock's layer reader checks the whole blob's.)
struct Resuming {
    client: Client,
    reference: Reference,
    digest: String,
    stream: Option<BoxStream<'static, std::io::Result<bytes::Bytes>>>,
    /// Bytes handed on so far.
    offset: u64,
    /// Bytes a fresh whole stream (a registry ignoring the range) repeats, to drop.
    skip: u64,
    /// Requests made so far.
    tries: u32,
}

impl Resuming {
    /// The next piece of the blob, resuming the stream when it breaks.
    async fn next(&mut self) -> Option<std::io::Result<bytes::Bytes>> {
        loop {
            let item = self.stream.as_mut()?.next().await;
            match item {
                None => {
                    self.stream = None;
                    return None;
                }
                Some(Ok(mut bytes)) => {
                    let dropped = self.skip.min(bytes.len() as u64);
                    self.skip -= dropped;
                    let _ = bytes.split_to(dropped as usize);
                    if bytes.is_empty() {
                        continue;
                    }
                    self.offset += bytes.len() as u64;
                    return Some(Ok(bytes));
                }
                Some(Err(error)) => {
                    self.stream = None;
                    if !io_transient(&error) {
                        return Some(Err(error));
                    }
                    if let Err(error) = self.resume(error).await {
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    /// Asks for the rest of the blob after `broke`, within what is left of the tries.
    async fn resume(&mut self, broke: std::io::Error) -> std::io::Result<()> {
        let mut last = broke;
        while self.tries < TRIES {
            tokio::time::sleep(pause(self.tries - 1)).await;
            self.tries += 1;
            let asked = self
                .client
                .pull_blob_stream_partial(&self.reference, self.digest.as_str(), self.offset, None)
                .await;
            match asked {
                Ok(BlobResponse::Partial(sized)) => {
                    self.skip = 0;
                    self.stream = Some(sized.stream);
                    return Ok(());
                }
                Ok(BlobResponse::Full(sized)) => {
                    self.skip = self.offset;
                    self.stream = Some(sized.stream);
                    return Ok(());
                }
                Err(error) if transient(&error) => last = std::io::Error::other(error),
                Err(error) => return Err(std::io::Error::other(error)),
            }
        }
        let text = format!("{}; asked {TRIES} times", describe(&last));
        Err(std::io::Error::new(last.kind(), text))
    }
}

/// A client for the registry at `host`: plain HTTP only for loopback or
/// `--insecure-registry`, with the registry timeout on connects and reads.
fn client(settings: &Settings, host: &str) -> Client {
    let plain = settings.insecure_registry || is_loopback(host);
    let timeout = settings.registry_timeout;
    let config = ClientConfig {
        protocol: if plain {
            ClientProtocol::HttpsExcept(vec![host.to_string()])
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(timeout),
        read_timeout: Some(timeout),
        platform_resolver: None,
        ..ClientConfig::default()
    };
    // rustls's crypto provider for the process (ring; see Cargo.toml). Installing it twice
    // is harmless: the first one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(config)
}

/// The image manifest `remote` names (the one for the platform, when it names an index),
/// and its digest.
async fn image_manifest(
    remote: &Remote,
    auth: &RegistryAuth,
    settings: &Settings,
) -> Result<(Manifest, String)> {
    let name = &remote.name;
    let (bytes, digest) = retried(|| {
        remote
            .client
            .pull_manifest_raw(&remote.reference, auth, ACCEPTED)
    })
    .await
    .map_err(|error| remote.failed(error))?;
    let mut manifest: Manifest = parse_json(&bytes, "manifest", name)?;
    let mut image_digest = digest;
    if let Some(entries) = manifest.manifests.take() {
        let chosen = pick(&entries, settings.platform.as_ref(), name)?;
        let by_digest = remote.reference.clone_with_digest(chosen.digest.clone());
        let (bytes, digest) =
            retried(|| remote.client.pull_manifest_raw(&by_digest, auth, ACCEPTED))
                .await
                .map_err(|error| remote.failed(error))?;
        remote.check(&bytes, &chosen.digest, "manifest")?;
        manifest = parse_json(&bytes, "manifest", name)?;
        image_digest = digest;
    }
    Ok((manifest, image_digest))
}

/// Opens `reference` (`HOST/REPO:TAG` or `HOST/REPO@sha256:…`): its manifest (the one for
/// the platform, from an index), its config and its layers.
pub(super) async fn open(text: &str, settings: &Settings) -> Result<Opened> {
    let (remote, auth) = Remote::connect(text, settings)?;
    let host = remote.reference.resolve_registry().to_string();
    let (manifest, image_digest) = image_manifest(&remote, &auth, settings).await?;
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| remote.refused("its manifest names no config", ImageProblem::NotAnImage))?;
    let config_bytes = retried(|| async {
        let mut bytes = Vec::new();
        remote
            .client
            .pull_blob(&remote.reference, config.digest.as_str(), &mut bytes)
            .await
            .map(|()| bytes)
    })
    .await
    .map_err(|error| remote.failed(error))?;
    if config_bytes.len() as u64 > JSON_LIMIT {
        return Err(remote.refused("its config is too large", ImageProblem::Hostile));
    }
    remote.check(&config_bytes, &config.digest, "config")?;
    let layers = manifest
        .layers
        .iter()
        .map(|layer| {
            if !valid_digest(&layer.digest) {
                return Err(remote.refused(
                    format!(
                        "its layer `{}` is not named by a sha256 digest",
                        layer.digest
                    ),
                    ImageProblem::Hostile,
                ));
            }
            Ok(Blob::remote(layer.digest.clone()))
        })
        .collect::<Result<_>>()?;
    let repository = format!("{}/{}", host, remote.reference.repository());
    let repo_tags = remote
        .reference
        .tag()
        .map(|tag| vec![format!("{repository}:{tag}")])
        .unwrap_or_default();
    Ok(Opened::remote(
        config_bytes,
        layers,
        repo_tags,
        vec![format!("{repository}@{image_digest}")],
        remote,
    ))
}

/// Tags are asked for 1,000 at a time; a repository may have up to 100,000, listed in at most
/// 10,000 pages.
const TAG_PAGE: usize = 1000;
const TAG_LIMIT: usize = 100_000;
const TAG_PAGES: usize = 10_000;

/// The tags of repository `text` (`HOST/REPO`), through the distribution API's tag list,
/// page by page, in the order the registry gives them.
pub(crate) async fn tags(text: &str, settings: &Settings) -> Result<Vec<String>> {
    let (remote, auth) = Remote::connect(text, settings)?;
    let mut tags: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..TAG_PAGES {
        let last = tags.last().map(String::as_str);
        let page = retried(|| {
            remote
                .client
                .list_tags(&remote.reference, &auth, Some(TAG_PAGE), last)
        })
        .await
        .map_err(|error| match remote.failed(error) {
            Error::ImageRead {
                image,
                problem: ImageProblem::NotFound,
                ..
            } => Error::ImageRead {
                image,
                detail: "the registry has no such repository".into(),
                problem: ImageProblem::NotFound,
            },
            other => other,
        })?;
        // A registry may answer fewer than asked for and still have more (it announces them
        // in a `Link` header, which the client does not pass on): pages are asked for until
        // one adds no tag. A registry that repeats itself is done too.
        let before = tags.len();
        for tag in page.tags {
            if !valid_tag(&tag) {
                return Err(remote.refused(
                    format!(
                        "it lists a tag that is not a tag (`{}`)",
                        tag.escape_debug()
                    ),
                    ImageProblem::Hostile,
                ));
            }
            if seen.insert(tag.clone()) {
                tags.push(tag);
            }
        }
        if tags.len() == before {
            return Ok(tags);
        }
        if tags.len() > TAG_LIMIT {
            break;
        }
    }
    Err(remote.refused(
        format!("it lists more than {TAG_LIMIT} tags, or more than {TAG_PAGES} pages of them"),
        ImageProblem::Hostile,
    ))
}

impl Remote {
    /// The repository or image `text` names (`HOST/REPO[:TAG|@DIGEST]`), with a client for
    /// its registry and the Docker config's credentials for it.
    fn connect(text: &str, settings: &Settings) -> Result<(Remote, RegistryAuth)> {
        let name = format!("registry:{text}");
        let reference: Reference = text.parse().map_err(|error| Error::InvalidSource {
            source_text: name.clone(),
            detail: format!("not an image reference ({error})"),
        })?;
        let host = reference.resolve_registry().to_string();
        let auth = credentials(settings, &host)?;
        let remote = Remote {
            client: client(settings, &host),
            reference,
            name,
            timeout: settings.registry_timeout,
        };
        Ok((remote, auth))
    }

    /// The stream of blob `digest`, resumed where a transient error breaks it.
    pub(super) async fn blob_stream(
        &self,
        digest: &str,
    ) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        let sized = retried(|| self.client.pull_blob_stream(&self.reference, digest))
            .await
            .map_err(|error| self.failed(error))?;
        let resuming = Resuming {
            client: self.client.clone(),
            reference: self.reference.clone(),
            digest: digest.to_string(),
            stream: Some(sized.stream),
            offset: 0,
            skip: 0,
            tries: 1,
        };
        let stream = futures_util::stream::unfold(resuming, |mut resuming| async move {
            let item = resuming.next().await?;
            Some((item, resuming))
        });
        Ok(stream.boxed())
    }

    /// How long a blob's stream may send nothing: a read's timeout, then for each
    /// resumption its pause, connect and answer (each read times out well before).
    pub(super) fn limit(&self) -> Duration {
        self.timeout
            + (0..TRIES - 1)
                .map(|n| pause(n) + self.timeout * 2)
                .sum::<Duration>()
    }

    /// A stream that broke off.
    pub(super) fn broken(&self, index: usize, error: &std::io::Error) -> Error {
        let mut detail = format!("layer {index} broke off: {}", describe(error));
        if timed_out(error) {
            detail.push_str("; ");
            detail.push_str(&waited(self.timeout, "ENVLOCK_REGISTRY_TIMEOUT"));
        }
        self.refused(detail, ImageProblem::Unreachable)
    }

    fn refused(&self, detail: impl Into<String>, problem: ImageProblem) -> Error {
        Error::ImageRead {
            image: self.name.clone(),
            detail: detail.into(),
            problem,
        }
    }

    fn check(&self, bytes: &[u8], digest: &str, what: &str) -> Result<()> {
        if Sha256::of(bytes) == digest {
            return Ok(());
        }
        Err(self.refused(
            format!("its {what} does not match its digest `{digest}`"),
            ImageProblem::Corrupt,
        ))
    }

    /// What a registry error means for the user.
    fn failed(&self, error: OciDistributionError) -> Error {
        use OciDistributionError as E;
        let text = error.to_string();
        let problem = match &error {
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => ImageProblem::Unauthorized,
            E::ImageManifestNotFoundError(_) => ImageProblem::NotFound,
            E::ServerError {
                code: 401 | 403, ..
            } => ImageProblem::Unauthorized,
            E::ServerError { code: 404, .. } => ImageProblem::NotFound,
            E::RegistryError { envelope, .. } => {
                use oci_client::errors::OciErrorCode as C;
                let codes = || envelope.errors.iter().map(|error| &error.code);
                if codes().any(|code| matches!(code, C::Unauthorized | C::Denied)) {
                    ImageProblem::Unauthorized
                } else if codes().any(|code| {
                    matches!(
                        code,
                        C::BlobUnknown
                            | C::BlobUploadUnknown
                            | C::ManifestBlobUnknown
                            | C::ManifestUnknown
                            | C::NameUnknown
                            | C::NotFound
                    )
                }) {
                    ImageProblem::NotFound
                } else {
                    ImageProblem::Unreachable
                }
            }
            E::DigestError(_) => ImageProblem::Corrupt,
            // Only the client's own kinds of refusal: a text search would find `401` in a
            // port or a digest of the URL the message names.
            _ => ImageProblem::Unreachable,
        };
        let detail = match problem {
            ImageProblem::NotFound => "the registry has no such image".to_string(),
            ImageProblem::Unauthorized => format!("the registry refused access ({text})"),
            _ => {
                let text = describe(&error);
                // oci-client's request error is transparent: its causes skip it.
                let timeout = match &error {
                    E::RequestError(error) => timed_out(error),
                    error => timed_out(error),
                };
                let limit = if timeout {
                    format!("; {}", waited(self.timeout, "ENVLOCK_REGISTRY_TIMEOUT"))
                } else if transient(&error) {
                    format!("; asked {TRIES} times")
                } else {
                    String::new()
                };
                format!("the registry did not answer as expected ({text}){limit}")
            }
        };
        self.refused(detail, problem)
    }
}

/// An error with its causes (`connection refused`, `operation timed out`).
pub(super) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A tag as the distribution specification writes it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
/// (so it can only ever name a tag of the repository, never another reference).
fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(byte))
}

/// Loopback registries speak plain HTTP, as the Docker engine allows them to.
fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// The credentials of the Docker config for `host`, else anonymous access.
fn credentials(settings: &Settings, host: &str) -> Result<RegistryAuth> {
    let Some(path) = settings.docker_config() else {
        return Ok(RegistryAuth::Anonymous);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RegistryAuth::Anonymous)
        }
        Err(source) => return Err(Error::Read { path, source }),
    };
    use docker_credential::{CredentialRetrievalError as Why, DockerCredential};
    match docker_credential::get_credential_from_reader(file, host) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(Why::NoCredentialConfigured | Why::ConfigNotFound) => Ok(RegistryAuth::Anonymous),
        Err(error) => Err(Error::ImageRead {
            image: format!("registry:{host}"),
            detail: format!(
                "the credentials for `{host}` in `{}` could not be read ({error})",
                path.display()
            ),
            problem: ImageProblem::Unauthorized,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_mismatch_is_known_by_its_type_not_its_words() {
        let mismatch = std::io::Error::other(oci_client::errors::DigestError::VerificationError {
            expected: "sha256:aa".to_string(),
            actual: "sha256:bb".to_string(),
        });
        assert!(digest_mismatch(&mismatch));
        assert!(!io_transient(&mismatch));
        let worded = std::io::Error::other("Invalid digest. Expected a, got b");
        assert!(!digest_mismatch(&worded));
    }

    #[test]
    fn tags_are_what_the_specification_allows() {
        for tag in ["v1.2.0", "latest", "_x", "a".repeat(128).as_str()] {
            assert!(valid_tag(tag), "{tag}");
        }
        for tag in [
            "",
            ".x",
            "-x",
            "a/b",
            "a@sha256",
            "a:b",
            "a b",
            "a".repeat(129).as_str(),
        ] {
            assert!(!valid_tag(tag), "{tag}");
        }
    }

    #[test]
    fn only_transient_failures_are_asked_again() {
        use oci_client::errors::{DigestError, OciEnvelope};
        let status = |code| OciDistributionError::ServerError {
            code,
            url: "http://r/v2/x/manifests/1".into(),
            message: String::new(),
        };
        for code in [429, 502, 503, 504] {
            assert!(transient(&status(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 416, 500] {
            assert!(!transient(&status(code)), "{code}");
        }
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str::<OciEnvelope>(&format!(
                r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#
            ))
            .unwrap(),
            url: String::new(),
        };
        assert!(transient(&envelope("TOOMANYREQUESTS")));
        assert!(!transient(&envelope("MANIFEST_UNKNOWN")));
        assert!(!transient(&envelope("DENIED")));
        // A stream cut off is resumed; one whose bytes do not match, or that timed out, not.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(io_transient(&reset));
        let corrupt = std::io::Error::other(DigestError::VerificationError {
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        });
        assert!(!io_transient(&corrupt));
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert!(!io_transient(&slow));
        assert_eq!(
            (0..TRIES - 1).map(pause).collect::<Vec<_>>(),
            [1, 2, 4].map(Duration::from_secs)
        );
    }

    #[test]
    fn loopback_hosts_speak_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
