//! The lock: one captured runtime, as written to and read from a TOML file.
//!
//! A dev snapshot and an image snapshot produce the same [`Lock`], so the diff never needs to
//! know where a runtime came from. Key names are kebab-case and are a contract: scripts read
//! them. Collections are kept sorted so the same runtime always serialises to the same bytes.

mod digest;
mod file;
mod golden;
mod layer;
mod model;
mod numerics;

pub(crate) use digest::Sha256;
pub(crate) use file::parse_lock;
pub use file::write_text;
pub use file::{containing_folder, read_lock, render_lock, write_lock};
pub use golden::{
    FieldTolerance, GoldenCase, GoldenSpec, HttpCase, Latency, LatencySpec, Loaded, OutputFormat,
};
pub use layer::Layer;
pub use model::{Model, ModelFile, ModelFormat, ModelKind, WrittenBy, UNREADABLE};
pub use numerics::{Cpu, Framework, GpuCode, Kernel, NumericLibrary, Numerics, CUDA_FAMILIES};

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The lock schema this build writes and the newest one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One captured runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(title = "envlock lock file")]
pub struct Lock {
    /// Which schema the file follows and what wrote it.
    pub envlock: Header,
    /// Where the runtime was captured from.
    pub source: Source,
    /// The Python interpreter, absent when the runtime has none (a distroless image without Python).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<Python>,
    /// Operating system, architecture and C library.
    pub platform: Platform,
    /// The drift-relevant environment variables (an allow-list; no other value is ever stored).
    pub env: Env,
    /// Installed distributions, one per normalized name (the copy that wins on `sys.path`),
    /// sorted by name.
    #[serde(default)]
    pub packages: Vec<Package>,
    /// `.pth` files found on `sys.path`: they add paths and can run code at start-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pth_files: Vec<PthFile>,
    /// Packages of the conda prefix the interpreter lives in (`conda-meta/*.json`), sorted
    /// by name: conda's builds and the non-Python libraries (MKL, OpenBLAS, CUDA) it brings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda_packages: Vec<CondaPackage>,
    /// The native libraries and CPU behind the numbers.
    #[serde(default, skip_serializing_if = "Numerics::is_empty")]
    pub numerics: Numerics,
    /// Model files and folders, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<Model>,
    /// Golden cases with the outputs this runtime gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub golden: Vec<GoldenCase>,
    /// Packages of the system package manager (dpkg, apk), sorted by name; images only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_packages: Vec<SystemPackage>,
    /// The image's own facts, for a runtime captured from an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// A baseline read from the project's own lock (uv.lock, pylock.toml, poetry.lock,
    /// requirements.txt) rather than captured: what it was and what was selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<DeclaredLock>,
}

/// `[declared]`: a baseline selected from a project's declared lock for one target. It has
/// packages (name, version, the wheel files the lock lists) and no interpreter facts, so the
/// diff compares only what a lock declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DeclaredLock {
    /// `uv.lock`, `pylock.toml`, `poetry.lock` or `requirements.txt`.
    pub format: String,
    /// The Python versions the lock is for (PEP 440 specifiers), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// The project's own packages (its root, editable members): never reported as added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// The extras selected (`--extra`), normalized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
    /// The dependency groups selected (`--group`), normalized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// `[image]`: what the image's config and history say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Image {
    /// How the runtime was read: `exec` (the probe ran in a locked-down container) or
    /// `static` (files read through the API; nothing from the image ran).
    pub capture: CaptureMode,
    /// `repo:tag` names of the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    /// When the image was built, as the engine reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The config's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// The config's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// The config's working folder; relative model paths start here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The user commands run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Exposed ports, e.g. `5000/tcp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// Other interpreters the image has on its `PATH`, when the captured one is not
    /// `python3` there (the image runs a venv's Python, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_pythons: Vec<String>,
    /// Names (never values) of the config's variables outside the allow-list: image
    /// environments often hold secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
    /// The layers, base first. A lock of an older envlock lists their diff-ids as strings.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "layer::layers_or_digests"
    )]
    pub layers: Vec<Layer>,
    /// Build steps, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryStep>,
}

/// `[[system-packages]]`: a package of the operating system's package manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SystemPackage {
    /// The package's name.
    pub name: String,
    /// Its version, as the package manager writes it.
    pub version: String,
    /// `dpkg`, `apk` or `rpm` (whose versions are `[epoch:]version-release`).
    pub manager: String,
    /// Layered image sources: the layer from which on the database holds this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

/// `[[conda-packages]]`: a package record of a conda prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CondaPackage {
    /// The package's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The build string, e.g. `pthreads_h413a1c8_0`: another build of the same version.
    pub build: String,
    /// The channel it came from, e.g. `conda-forge` (a channel URL is shortened to its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Layered image sources: the layer that last wrote its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

impl CondaPackage {
    /// `https://conda.anaconda.org/conda-forge/linux-64` → `conda-forge`: the channel, without
    /// the host and platform subfolder that differ between machines for the same package.
    pub fn channel_name(channel: &str) -> String {
        let trimmed = channel.trim_end_matches('/');
        let Some((_, path)) = trimmed.split_once("://") else {
            return trimmed.to_string();
        };
        let mut parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.last().is_some_and(|last| {
            *last == "noarch"
                || last.contains("-64")
                || last.contains("-aarch64")
                || last.contains("-arm64")
        }) {
            parts.pop();
        }
        match parts.as_slice() {
            [] => trimmed.to_string(),
            // repo.anaconda.com/pkgs/main: the `pkgs/` level names no channel.
            ["pkgs", rest @ ..] if !rest.is_empty() => rest.join("/"),
            _ => parts.join("/"),
        }
    }
}

/// How an image's runtime was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureMode {
    /// The probe ran with the image's own Python in a locked-down container.
    #[default]
    Exec,
    /// Files were read through the engine's API; nothing from the image ran.
    Static,
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct HistoryStep {
    /// The Dockerfile instruction as the engine records it, with the values of variables
    /// and build arguments outside the allow-list replaced by `<redacted>`.
    pub created_by: String,
    /// Bytes the step added (0 for a step without a layer).
    pub size: i64,
}

/// `[envlock]`: the file's schema and the tool that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Header {
    /// Schema version; a lock with a higher one is refused.
    pub schema: u32,
    /// `envlock <version>` of the writer.
    pub created_by: String,
}

/// `[source]`: what was captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Source {
    /// `python` for a live interpreter, `image` for a Docker image.
    pub kind: SourceKind,
    /// python: the interpreter as it was invoked (made absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// image: the reference as given (`ml-model:latest`, `sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// image: the image id (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// image: `repo@sha256:…` digests of the image in registries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// image: `os/arch[/variant]`, e.g. `linux/amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// The kind of runtime a lock was captured from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A Python interpreter on this machine.
    #[default]
    Python,
    /// A Docker image.
    Image,
    /// A project's declared lock (uv.lock, pylock.toml, poetry.lock, requirements.txt),
    /// selected for a target.
    Declared,
    /// A CycloneDX SBOM (`cyclonedx:PATH`, `*.cdx.json`): packages and models, no
    /// interpreter facts.
    Sbom,
}

/// `[python]`: facts the interpreter reported about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Python {
    /// `sys.implementation.name`, e.g. `cpython`.
    pub implementation: String,
    /// `platform.python_version()`, e.g. `3.11.7`.
    pub version: String,
    /// `sys.executable` (resolves shims and venv links to the real program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// `sys.prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `sys.base_prefix`; differs from `prefix` inside a venv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_prefix: Option<String>,
    /// The extension-module ABI tag (`SOABI`), e.g. `cpython-311-x86_64-linux-gnu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soabi: Option<String>,
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_tag: Option<String>,
    /// `sys.path` in order, without the entry of the probe's own script folder.
    #[serde(default)]
    pub sys_path: Vec<String>,
    /// The PEP 508 marker environment (`python_full_version`, `platform_machine`, ...).
    #[serde(default)]
    pub markers: BTreeMap<String, String>,
    /// How the interpreter was chosen (see [`SelectedBy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<SelectedBy>,
}

/// How the captured interpreter was chosen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, strum::AsRefStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum SelectedBy {
    /// `--python`.
    Flag,
    /// `python` (dev) or `[image] python` (images) in `envlock.toml`.
    Config,
    /// An image's ENTRYPOINT names it (directly or through a wrapper).
    Entrypoint,
    /// An image's CMD names it (directly, through a wrapper or a shell's `-c`).
    Cmd,
    /// The shebang of the script the image runs names it.
    Shebang,
    /// Found on `PATH` (`python3`, then `python`; or `$VIRTUAL_ENV` on the dev side).
    Path,
}

/// `[platform]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Platform {
    /// Operating system, lower case: `linux`, `darwin`, `windows`.
    pub os: String,
    /// Machine architecture as the kernel names it: `x86_64`, `aarch64`.
    pub arch: String,
    /// C library family: `glibc` or `musl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc: Option<String>,
    /// C library version, e.g. `2.36`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc_version: Option<String>,
    /// `ID` from `/etc/os-release`, e.g. `debian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_id: Option<String>,
    /// `VERSION_ID` from `/etc/os-release`, e.g. `12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

/// `[env]`: allow-listed variables that change results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Env {
    /// Allow-listed variables that are unset, sorted.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Allow-listed variables that are set, with their values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// `[[packages]]`: one installed distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Package {
    /// PEP 503 normalized name, from METADATA's `Name` (never from the folder name).
    pub name: String,
    /// The version exactly as installed, local label (`+cu121`) included.
    pub version: String,
    /// The `sys.path` entry the distribution was found in.
    pub location: String,
    /// `dist-info` or `egg-info`.
    pub format: MetadataFormat,
    /// The `INSTALLER` file's first line (`pip`, `uv`, `conda`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    /// Whether a `REQUESTED` file marks it as asked for by the user (not a dependency).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requested: bool,
    /// Where it came from, by `direct_url.json`; absent when there is none (an index, or unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PackageSource>,
    /// Installed in editable (development) mode: its code lives outside `sys.path`'s site folder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub editable: bool,
    /// `direct_url.json`'s `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The VCS commit of a VCS install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The VCS of a VCS install: `git`, `hg`, `bzr`, `svn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs: Option<String>,
    /// `sha256:` of the archive (wheel or sdist) of a direct URL install, when the installer
    /// recorded it (`archive_info.hashes` of `direct_url.json`); installs from an index
    /// record none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_sha256: Option<String>,
    /// The `Tag:` lines of the `WHEEL` file, e.g. `cp311-cp311-manylinux_2_17_x86_64`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wheel_tags: Vec<String>,
    /// Declared baselines: the wheel file names the project's lock lists for this version
    /// (every platform's); the installed wheel's tags should match one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wheels: Vec<String>,
    /// `sha256:` over the sorted `path,hash` rows of RECORD that describe the package's own
    /// files: rows outside the site folder (scripts, whose shebang names the interpreter), rows
    /// without a hash (`.pyc`) and the installer's own files (`INSTALLER`, `REQUESTED`,
    /// `direct_url.json`, `RECORD`) are left out, so the same wheel gives the same digest in
    /// any environment, and another build of the same version gives another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// What it requires, as its metadata states it: the `Requires-Dist` lines, markers
    /// included (an egg-info without them: its `requires.txt`, in that form). The diff
    /// checks that the runtime meets them (`requirement-unmet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Other copies of the same name further down `sys.path`, which Python never imports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadowed: Vec<Shadowed>,
    /// Layered image sources: the layer (`[[image.layers]]` index) that last wrote its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

/// A distribution's metadata format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataFormat {
    /// `*.dist-info/` (wheels, PEP 376).
    #[default]
    DistInfo,
    /// `*.egg-info`, a folder or a single file (setuptools, Debian's packages).
    EggInfo,
}

/// How a package was installed, from `direct_url.json` (PEP 610).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PackageSource {
    /// A wheel or sdist file or URL (`archive_info`).
    Archive,
    /// A local folder (`dir_info`), editable or not.
    Directory,
    /// A version-control checkout (`vcs_info`).
    Vcs,
}

impl PackageSource {
    /// Its name in the lock (`archive`, `directory`, `vcs`).
    pub fn name(self) -> &'static str {
        match self {
            PackageSource::Archive => "archive",
            PackageSource::Directory => "directory",
            PackageSource::Vcs => "vcs",
        }
    }

    /// The source named `name`.
    pub fn from_name(name: &str) -> Option<PackageSource> {
        [
            PackageSource::Archive,
            PackageSource::Directory,
            PackageSource::Vcs,
        ]
        .into_iter()
        .find(|source| source.name() == name)
    }
}

/// A copy of a distribution hidden by an earlier one on `sys.path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Shadowed {
    /// Its version.
    pub version: String,
    /// The `sys.path` entry it sits in.
    pub location: String,
}

/// `[[pth-files]]`: a `.pth` file on `sys.path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PthFile {
    /// Its absolute path.
    pub path: String,
    /// `sha256:<hex>` of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Header {
    /// The header this build writes.
    pub fn current() -> Self {
        Header {
            schema: SCHEMA_VERSION,
            created_by: format!("envlock {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The JSON Schema of the lock, as committed in `schemas/envlock.lock.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Lock);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}
