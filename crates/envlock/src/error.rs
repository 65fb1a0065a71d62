//! The library's errors. Each names the thing in backticks and, through [`Error::hint`], says
//! what to do; the CLI prints them and exits with code 2.

use std::path::PathBuf;

/// Everything that stops envlock from capturing or reading a runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// What was written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A lock file is not valid TOML or misses required keys.
    #[error("invalid lock `{}`", path.display())]
    InvalidLock {
        /// The lock file.
        path: PathBuf,
        /// The parser's message, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A lock file has no `[envlock] schema`, or not an integer.
    #[error("invalid lock `{}`: {message}", path.display())]
    LockHeader {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with the header.
        message: String,
    },
    /// A lock file was written by a newer envlock.
    #[error(
        "lock `{}` has schema {found}; this envlock reads schema {supported} at most",
        path.display()
    )]
    NewerSchema {
        /// The lock file.
        path: PathBuf,
        /// The schema it declares.
        found: i64,
        /// The newest schema this build reads.
        supported: u32,
    },
    /// `envlock.toml` is not valid TOML or has unknown keys.
    #[error("invalid config `{}`", path.display())]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// `[policy]` is well-formed TOML but makes no sense.
    #[error("invalid policy in `{}`: {message}", path.display())]
    InvalidPolicy {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `[[golden]]` cases are well-formed TOML but make no sense.
    #[error("invalid golden cases in `{}`:\n  {}", path.display(), problems.join("\n  "))]
    InvalidGolden {
        /// The config file.
        path: PathBuf,
        /// Every problem, with its line and column.
        problems: Vec<String>,
    },
    /// A diff operand is neither a lock file, `python:PATH`, nor an image in the engine.
    #[error("`{operand}` is not a lock file, and no image `{operand}` is in the Docker engine")]
    UnknownOperand {
        /// The operand as given.
        operand: String,
    },
    /// A diff operand that looks like a lock file does not exist.
    #[error("lock file `{operand}` not found")]
    LockNotFound {
        /// The operand as given.
        operand: String,
    },
    /// The interpreter path does not exist.
    #[error("interpreter `{}` not found", path.display())]
    InterpreterNotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// No interpreter was named and none was found.
    #[error("no Python interpreter found: `$VIRTUAL_ENV` is not set and there is no `python3` on `PATH`")]
    NoInterpreter,
    /// The interpreter exists but could not be started.
    #[error("cannot run interpreter `{}`", path.display())]
    InterpreterNotRunnable {
        /// The interpreter.
        path: PathBuf,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter did not answer within the probe's timeout.
    #[error("interpreter `{}` did not answer the probe within {limit}", path.display())]
    ProbeTimeout {
        /// The interpreter.
        path: PathBuf,
        /// The timeout, e.g. `30s`.
        limit: String,
    },
    /// The program ran but did not answer like a Python interpreter.
    #[error("`{}` did not answer the probe like a Python interpreter: {detail}", path.display())]
    ProbeFailed {
        /// The program.
        path: PathBuf,
        /// Exit status and the tail of its output.
        detail: String,
    },
    /// A model path does not exist or cannot be read.
    #[error("cannot read model `{}`", path.display())]
    Model {
        /// The model path as resolved on disk.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A symlink inside a model folder points back to one of its parents.
    #[error("symlink loop in model folder: `{}` leads back to `{}`", path.display(), ancestor.display())]
    ModelSymlinkLoop {
        /// The link.
        path: PathBuf,
        /// The folder it leads back to.
        ancestor: PathBuf,
    },
    /// The Docker engine could not be reached.
    #[error("cannot reach the Docker engine at `{host}`")]
    EngineUnreachable {
        /// `DOCKER_HOST`, or the default socket.
        host: String,
        /// What the connection said.
        #[source]
        source: EngineFault,
    },
    /// The image is not in the local engine.
    #[error("image `{reference}` not found in the Docker engine (envlock never pulls)")]
    ImageNotFound {
        /// The reference as given.
        reference: String,
    },
    /// Another engine error.
    #[error("the Docker engine at `{host}` failed while {action}")]
    Docker {
        /// `DOCKER_HOST`, or the default socket.
        host: String,
        /// What envlock was doing.
        action: String,
        /// The engine's error.
        #[source]
        source: EngineFault,
    },
    /// Containers of envlock's that the engine would not remove (after a few tries), at the
    /// end of a run that went well, or on the way out of one that failed (`after`).
    #[error(
        "the Docker engine at `{host}` would not remove envlock's {}{}",
        containers.join(", "),
        if after.is_some() { ", on the way out of the failure below" } else { "" }
    )]
    NotRemoved {
        /// `DOCKER_HOST`, or the default socket.
        host: String,
        /// Each container, `container ID (org.envlock.role=ROLE)`.
        containers: Vec<String>,
        /// What ended the run, when it failed.
        #[source]
        after: Option<Box<Error>>,
    },
    /// `--pull` failed.
    #[error("cannot pull `{reference}`")]
    Pull {
        /// The reference.
        reference: String,
        /// The engine's error.
        #[source]
        source: EngineFault,
    },
    /// The image is built for another platform than the engine runs.
    #[error("image `{reference}` is for {image}, but this engine runs {engine}: its Python cannot run here")]
    ForeignPlatform {
        /// The image.
        reference: String,
        /// The image's `os/arch`.
        image: String,
        /// The engine's `os/arch`.
        engine: String,
    },
    /// The probe container did not finish in time; it was removed.
    #[error("the probe in image `{reference}` did not finish within {limit}")]
    ImageProbeTimeout {
        /// The image.
        reference: String,
        /// The limit, e.g. `30s`.
        limit: String,
    },
    /// The probe ran in the image but failed.
    #[error("the probe in image `{reference}` failed: {detail}")]
    ImageProbeFailed {
        /// The image.
        reference: String,
        /// Exit code and the tail of its stderr.
        detail: String,
    },
    /// The interpreter asked for with `--python` (or `[image] python`) is not a Python the
    /// image has.
    #[error("`{path}` in image `{reference}` is not a Python interpreter: {detail}")]
    ImagePython {
        /// The path or name as given.
        path: String,
        /// The image.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// A `--model` path does not exist in the image.
    #[error("model `{path}` not found in image `{reference}`")]
    ModelNotInImage {
        /// The path inside the image.
        path: String,
        /// The image.
        reference: String,
    },
    /// A model inside an image could not be read.
    #[error("cannot read model `{path}` in image `{reference}`: {detail}")]
    ImageModel {
        /// The path inside the image.
        path: String,
        /// The image.
        reference: String,
        /// What went wrong.
        detail: String,
    },
    /// A golden case failed in the baseline, so there is no reference output.
    #[error("golden case `{name}` failed in the baseline runtime: {detail}")]
    GoldenBaseline {
        /// The case.
        name: String,
        /// What happened.
        detail: String,
    },
    /// An `ENVLOCK_*` variable holds a value envlock cannot use.
    #[error("invalid `{name}={value}`: {expected}")]
    InvalidVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A signal stopped the run; every container envlock created was removed and its child
    /// processes stopped.
    #[error(
        "interrupted by {}; envlock's containers were removed and its processes stopped",
        signal_name(*signal)
    )]
    Interrupted {
        /// The signal's number.
        signal: i32,
    },
    /// An image source operand is malformed.
    #[error("invalid image source `{source_text}`: {detail}")]
    InvalidSource {
        /// The operand as given.
        source_text: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An image could not be read where it lives: a registry, a saved archive, an OCI layout.
    #[error("cannot read image `{image}`: {detail}")]
    ImageRead {
        /// The source, as written (`registry:…`, `docker-archive:…`).
        image: String,
        /// What went wrong.
        detail: String,
        /// What kind of problem, for the hint.
        problem: ImageProblem,
    },
    /// A file of the runtime could not be read (a failure, not an absent file): nothing is
    /// written, since a lock must never be a picture of what envlock could not see.
    #[error("cannot read `{path}` in {runtime}: {detail}")]
    RuntimeRead {
        /// The runtime: "image `ml:1`".
        runtime: String,
        /// The path inside it.
        path: String,
        /// What went wrong.
        detail: String,
        /// envlock's layer reader kept too little of the file for one of its readers: a
        /// bug of envlock's, not a failure of the image's source.
        not_kept: bool,
    },
    /// An operand of `envlock audit` could not be captured.
    #[error("cannot capture `{operand}`")]
    AuditOperand {
        /// The operand as given.
        operand: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A project's declared lock (uv.lock, pylock.toml, poetry.lock, requirements.txt) that
    /// cannot be read as its format says.
    #[error("invalid {format} `{}`: {detail}", path.display())]
    InvalidDeclared {
        /// The file.
        path: PathBuf,
        /// Its format (`uv.lock`, `pylock.toml`, …).
        format: &'static str,
        /// The command that writes it again.
        regenerate: &'static str,
        /// What is wrong, with the line (and column) where the parser says.
        detail: String,
    },
    /// The `pyproject.toml` beside a poetry.lock, which says what the project requires,
    /// declares a requirement that cannot be read.
    #[error("invalid `{}` beside the lock: {detail}", path.display())]
    InvalidProject {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the requirement.
        detail: String,
    },
    /// A declared lock of a version this build does not read.
    #[error("`{}` is {format} version {found}; this envlock reads version {supported}", path.display())]
    DeclaredVersion {
        /// The file.
        path: PathBuf,
        /// Its format (`uv.lock`, `pylock.toml`, …).
        format: &'static str,
        /// The command that writes it again.
        regenerate: &'static str,
        /// The version it declares.
        found: String,
        /// The versions this build reads.
        supported: &'static str,
    },
    /// A requirements file names a range where a lock pins a version.
    #[error("`{}` line {line}: `{requirement}` is a range, not a pin: a range is not a lock", path.display())]
    NotAPin {
        /// The requirements file (an included one, when the range is there).
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// The requirement as written.
        requirement: String,
    },
    /// `--shard` that is not K/N with 1 ≤ K ≤ N.
    #[error("`--shard {spec}`: {detail}")]
    InvalidShard {
        /// As given.
        spec: String,
        /// What is wrong with it.
        detail: String,
    },
    /// `--merge` given files that are not the shards of one audit.
    #[error("`envlock audit --merge`: {}{detail}", file.as_ref().map(|file| format!("`{file}`: ")).unwrap_or_default())]
    AuditMerge {
        /// The file at fault (`None`: the set of files).
        file: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A repository operand of `audit` with no tag to audit, or `--tags` without one.
    #[error("{}{detail}", repository.as_ref().map(|repository| format!("`{repository}`: ")).unwrap_or_default())]
    NoTags {
        /// The operand (`None`: none was given).
        repository: Option<String>,
        /// Why.
        detail: String,
    },
    /// An SBOM operand that is not a CycloneDX JSON document envlock reads.
    #[error("`{}` is not a CycloneDX JSON SBOM envlock can read: {detail}", path.display())]
    InvalidSbom {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A declared lock given as the runtime to check rather than as the baseline.
    #[error("`{operand}` is a project's lock, not a runtime: it can be the baseline of `envlock diff`, and the target must be a lock, `python:PATH` or an image")]
    DeclaredTarget {
        /// The operand as given.
        operand: String,
    },
    /// `--extra` or `--group` names something the lock does not have.
    #[error("`--{flag} {name}`: `{}` has no {what} `{name}` (it has: {known})", path.display())]
    UnknownSelection {
        /// The lock.
        path: PathBuf,
        /// `extra` or `group`.
        flag: &'static str,
        /// `extra` or `dependency group`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The names the lock has.
        known: String,
    },
}

impl Error {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::InvalidLock { path, .. } | Error::LockHeader { path, .. } => format!(
                "regenerate it with `envlock snapshot -o {}`",
                path.display()
            ),
            Error::NewerSchema { .. } => {
                "upgrade envlock, or regenerate the lock with this version".to_string()
            }
            Error::UnknownOperand { .. } | Error::LockNotFound { .. } => {
                "an operand is read as a lock when the file exists, as an interpreter when written `python:PATH`, and otherwise as an image reference in the local engine (`docker images` lists them)".to_string()
            }
            Error::InvalidGolden { .. } => {
                "golden cases are described in envlock's docs/golden.md".to_string()
            }
            Error::InvalidPolicy { .. } | Error::InvalidConfig { .. } => {
                "the keys envlock.toml accepts are listed in envlock's docs/configuration.md"
                    .to_string()
            }
            Error::InterpreterNotFound { .. } | Error::NoInterpreter => {
                "pass `--python PATH` with the path of a Python executable, e.g. `.venv/bin/python`"
                    .to_string()
            }
            Error::InterpreterNotRunnable { .. } | Error::ProbeFailed { .. } => {
                "`--python` must name a Python 3 interpreter that runs on this machine".to_string()
            }
            Error::ProbeTimeout { .. } => {
                "check that the interpreter starts (`PATH -c pass`); raise the limit with `ENVLOCK_PROBE_TIMEOUT=SECONDS`"
                    .to_string()
            }
            Error::Model { .. } => {
                "`--model` takes an existing file or folder, relative to the current folder (or to envlock.toml for its `models`)"
                    .to_string()
            }
            Error::ModelSymlinkLoop { .. } => {
                "remove the link, or point `--model` at a folder without it".to_string()
            }
            Error::Write { .. } => "check that the folder exists and is writable".to_string(),
            Error::EngineUnreachable { source, .. } if timed_out(source) => {
                "the engine did not answer in time: check it with `docker info`, or raise `ENVLOCK_ENGINE_TIMEOUT=SECONDS`".to_string()
            }
            Error::Docker { source, .. } if timed_out(source) => {
                "check the engine with `docker info`, or raise `ENVLOCK_ENGINE_TIMEOUT=SECONDS`".to_string()
            }
            Error::EngineUnreachable { source, .. } => {
                if permission_denied(source) {
                    "run envlock as a user allowed to use Docker (the `docker` group), or set `DOCKER_HOST`".to_string()
                } else {
                    "start the Docker engine, or point `DOCKER_HOST` at it (e.g. `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`)".to_string()
                }
            }
            Error::ImageNotFound { .. } => {
                "build or load the image first (`docker images` lists what the engine has), or pass `--pull`".to_string()
            }
            Error::Docker { .. } => "check the engine with `docker info`".to_string(),
            Error::NotRemoved { .. } => "remove them with `docker rm -f ID` (`docker ps -a --filter label=org.envlock.role` lists envlock's containers)".to_string(),
            Error::ImageProbeTimeout { .. } => {
                "check that the image's Python starts; raise the limit with `ENVLOCK_PROBE_TIMEOUT=SECONDS`, or capture without running anything with `--no-exec`".to_string()
            }
            Error::Pull { .. } => {
                "check the reference, and that the engine can reach its registry (`docker pull` says the same)".to_string()
            }
            Error::ForeignPlatform { .. } => {
                "capture it without running anything with `--no-exec`".to_string()
            }
            Error::ImageProbeFailed { .. } => {
                "capture without running anything in the image with `--no-exec`".to_string()
            }
            Error::ImagePython { .. } => {
                "`--python` with `--image` (or `[image] python`) takes a path inside the image, or a name looked up on the image's PATH; leave it out to capture the Python the image's ENTRYPOINT/CMD runs".to_string()
            }
            Error::ModelNotInImage { .. } | Error::ImageModel { .. } => {
                "`--model` with `--image` takes a path inside the image; a relative one starts at the image's WORKDIR".to_string()
            }
            Error::GoldenBaseline { .. } => {
                "fix the case in envlock.toml (`[[golden]]`) until it runs in the dev environment".to_string()
            }
            Error::InvalidVariable { name, .. } => {
                format!("set `{name}` as envlock's docs/configuration.md says, or unset it")
            }
            Error::InvalidSource { .. } => {
                "images are `docker:REF` (or a bare reference), `registry:HOST/REPO:TAG`, `docker-archive:PATH`, `oci-dir:PATH` or `oci-archive:PATH`".to_string()
            }
            Error::ImageRead { problem, .. } => match problem {
                ImageProblem::NotFound => "check the reference (`skopeo list-tags docker://HOST/REPO` lists a registry's tags), or the path".to_string(),
                ImageProblem::Unauthorized => "log in with `docker login HOST` (envlock reads the Docker config and its credential helpers; `DOCKER_CONFIG` moves it)".to_string(),
                ImageProblem::Unreachable => "check that the registry answers (`curl https://HOST/v2/`); a plain-HTTP registry off this machine needs `--insecure-registry`".to_string(),
                ImageProblem::Corrupt => "fetch or save the image again; envlock refuses a blob whose bytes do not match its digest".to_string(),
                ImageProblem::NotAnImage => "`docker-archive:` takes a `docker save` tarball, `oci-dir:` an OCI layout folder (`skopeo copy … oci:DIR`), `oci-archive:` its tar".to_string(),
                ImageProblem::Hostile => "the image is refused as it is; rebuild it from a trusted Dockerfile".to_string(),
                ImageProblem::Platform => "pick a platform the image has with `--platform OS/ARCH`, or leave the flag out".to_string(),
            },
            Error::RuntimeRead { not_kept: true, .. } => {
                "envlock kept too little of the image's layers for one of its readers: that is envlock's bug; please report it with the image's Dockerfile".to_string()
            }
            Error::RuntimeRead { .. } => {
                "check the engine (`docker info`) or the image source and run again; envlock writes no lock from a partial read".to_string()
            }
            Error::InvalidDeclared { regenerate, .. } | Error::DeclaredVersion { regenerate, .. } => {
                format!("regenerate it with {regenerate}")
            }
            Error::InvalidProject { .. } => {
                "fix the requirement (`poetry check` names it too), then `poetry lock` again".to_string()
            }
            Error::NotAPin { .. } => {
                "a lock pins every package with `==` (or `===`, or `NAME @ URL`): write it with `uv export -o requirements.txt`, `uv pip compile` or `pip-compile`".to_string()
            }
            Error::DeclaredTarget { .. } => {
                "put the project's lock first: `envlock diff uv.lock IMAGE`".to_string()
            }
            Error::UnknownSelection { .. } => {
                "name an extra or a dependency group the project declares (pyproject.toml)".to_string()
            }
            Error::Interrupted { .. } => return None,
            Error::AuditOperand { source, .. } => return source.hint(),
            Error::InvalidShard { .. } => "`--shard K/N` audits every N-th operand from the K-th, K from 1 to N; in a Kubernetes Indexed Job, `--shard /N` takes K from JOB_COMPLETION_INDEX".to_string(),
            Error::AuditMerge { .. } => "merge the JSON outputs (`--format json`) of every shard of one `envlock audit --shard K/N` run, each once".to_string(),
            Error::NoTags { .. } => "`--tags GLOB` takes `*` and `?` (`--tags 'v1.*'`); `skopeo list-tags docker://HOST/REPO` lists a repository's tags".to_string(),
            Error::InvalidSbom { .. } => "envlock reads CycloneDX JSON 1.4 to 1.7: `syft IMAGE -o cyclonedx-json`, `cyclonedx-py environment`, `envlock export LOCK --format cyclonedx`".to_string(),
            Error::Read { .. } => "check that the path exists and is readable".to_string(),
        })
    }
}

/// What the engine's client said when a call failed. The library's errors carry it as a
/// source without exposing the client library's own types.
#[derive(Debug)]
pub struct EngineFault(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for EngineFault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::error::Error for EngineFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl EngineFault {
    /// The engine ran out of `ENVLOCK_ENGINE_TIMEOUT`; `text` names the limit.
    pub(crate) fn timeout(text: String) -> EngineFault {
        EngineFault(Box::new(Timeout(text)))
    }
}

/// An engine call that ran out of its limit (see [`EngineFault::timeout`]).
#[derive(Debug)]
struct Timeout(String);

impl std::fmt::Display for Timeout {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Timeout {}

/// Whether the engine ran out of `ENVLOCK_ENGINE_TIMEOUT`.
fn timed_out(fault: &EngineFault) -> bool {
    fault.0.is::<Timeout>()
}

/// Whether the engine's socket refused this user: an `io::Error` of kind
/// `PermissionDenied` somewhere in the fault's chain (the client wraps the connector's;
/// its own `IOError` is transparent, so it is looked into too).
fn permission_denied(fault: &EngineFault) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&*fault.0);
    while let Some(error) = next {
        next = error.source();
        let io = error.downcast_ref::<std::io::Error>().or_else(|| {
            match error.downcast_ref::<bollard::errors::Error>() {
                Some(bollard::errors::Error::IOError { err }) => Some(err),
                _ => None,
            }
        });
        if let Some(io) = io {
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return true;
            }
            next = next.or(io.get_ref().map(|inner| inner as _));
        }
    }
    false
}

impl From<bollard::errors::Error> for EngineFault {
    fn from(error: bollard::errors::Error) -> EngineFault {
        EngineFault(Box::new(error))
    }
}

/// Why an image could not be read where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageProblem {
    /// The registry, archive or layout has no such image.
    NotFound,
    /// The registry refused the credentials (or asked for some).
    Unauthorized,
    /// The registry did not answer, or the connection broke.
    Unreachable,
    /// A blob does not match its digest, or a layer is truncated or not a tar.
    Corrupt,
    /// The file or folder is not an image of that kind.
    NotAnImage,
    /// A layer climbs out of the image (`../` paths) or breaks a bound.
    Hostile,
    /// A multi-platform index lacks the platform asked for.
    Platform,
}

/// A parser's message about bytes of an image, fit for a terminal: the tar reader quotes
/// the header it refused, which is the image's, so only its first line is kept, at most 160
/// characters, with control characters escaped (an image cannot write to the terminal).
pub(crate) fn untrusted(detail: impl std::fmt::Display) -> String {
    let text = detail.to_string();
    let line = text.lines().next().unwrap_or_default();
    let mut kept: String = line
        .chars()
        .take(160)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if line.chars().count() > 160 || text.lines().nth(1).is_some() {
        kept.push('…');
    }
    kept
}

/// `SIGTERM` for 15: the name people know a signal by.
fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        other => format!("signal {other}"),
    }
}

/// Shorthand for the library's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_that_refuses_the_user_says_so_from_the_error_kind() {
        let unreachable = |kind: std::io::ErrorKind| Error::EngineUnreachable {
            host: "unix:///var/run/docker.sock".to_string(),
            source: EngineFault::from(bollard::errors::Error::from(std::io::Error::new(
                kind,
                "connect failed",
            ))),
        };
        let denied = unreachable(std::io::ErrorKind::PermissionDenied).hint();
        assert!(denied.unwrap().contains("the `docker` group"));
        let absent = unreachable(std::io::ErrorKind::NotFound).hint();
        assert!(absent.unwrap().starts_with("start the Docker engine"));
    }

    #[test]
    fn details_from_an_image_are_one_printable_line() {
        assert_eq!(
            untrusted("bad\x1b[31mheader\nroot:x:0:0"),
            "bad\\u{1b}[31mheader…"
        );
        assert_eq!(untrusted("short"), "short");
        assert!(untrusted("x".repeat(500)).chars().count() <= 161);
    }
}
