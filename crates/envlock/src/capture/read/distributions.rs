//! Reading installed distributions from the folders on `sys.path`, as `importlib.metadata`
//! finds them: `*.dist-info/` and `*.egg-info` (folder or file), the first copy of a name on
//! `sys.path` winning. The files come through the runtime's one view ([`Files`]), so a dev
//! environment, the exec probe's answer, an engine's container and an image's layers share
//! this reader.
//!
//! What counts as metadata is defined once, in [`WANTED`]: the probe (inside images) and
//! static capture (from archive streams) keep exactly those files.

use crate::warning::{Warning, WarningCode};
use std::collections::BTreeMap;
use std::str::FromStr as _;

use pep508_rs::PackageName;
use serde::Serialize;

use super::imports::Modules;
use crate::capture::fs::{self, Files, Kind as FileKind, ReadError};
pub(crate) use crate::capture::numerics::Binary;
use crate::lock::{MetadataFormat, Package, PackageSource, PthFile, Sha256, Shadowed};

/// Which entries of a site folder hold metadata, and which files of them are read. Sent to
/// the probe as JSON (its `--files` argument), so the Python side decides nothing itself.
#[derive(Debug, Serialize)]
pub(crate) struct Wanted {
    /// Folders, by suffix, whose `files` are read: a distribution's metadata folder.
    pub(crate) folders: &'static [&'static str],
    /// The files read inside such a folder.
    pub(crate) files: &'static [&'static str],
    /// Files, by suffix, read whole: a single-file `.egg-info`.
    pub(crate) single: &'static [&'static str],
    /// The site folders, by name, whose `.pth` files are read (`site` processes no others:
    /// a `.pth` elsewhere, a PyTorch checkpoint say, is no start-up file).
    pub(crate) pth_folders: &'static [&'static str],
    /// The most bytes kept of any one file (larger ones are cut).
    pub(crate) limit: u64,
    /// The folder of package records of a conda prefix (see [`super::conda`]).
    pub(crate) conda_meta: &'static str,
    /// The keys of a conda record that are kept.
    pub(crate) conda_keys: &'static [&'static str],
}

/// The one definition of what envlock reads from a site folder.
pub(crate) const WANTED: Wanted = Wanted {
    folders: &[".dist-info", ".egg-info"],
    files: &[
        "METADATA",
        "PKG-INFO",
        "WHEEL",
        "INSTALLER",
        "REQUESTED",
        "direct_url.json",
        "RECORD",
        "top_level.txt",
        "requires.txt",
    ],
    single: &[".egg-info"],
    pth_folders: &["site-packages", "dist-packages"],
    limit: fs::METADATA_LIMIT,
    conda_meta: super::conda::CONDA_META,
    conda_keys: super::conda::RECORD_KEYS,
};

impl Wanted {
    /// Whether `name`, an entry of a site folder, is a metadata folder.
    pub(crate) fn is_folder(&self, name: &str) -> bool {
        ends_with_any(name, self.folders)
    }

    /// Whether `name`, a file in a site folder, is read whole.
    pub(crate) fn is_single(&self, name: &str) -> bool {
        ends_with_any(name, self.single)
    }

    /// Whether `name`, a file in the folder named `folder`, is a `.pth` file `site` reads.
    pub(crate) fn is_pth(&self, folder: &str, name: &str) -> bool {
        super::site::is_pth(name) && self.pth_folders.contains(&folder)
    }
}

fn ends_with_any(name: &str, suffixes: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    suffixes.iter().any(|suffix| lower.ends_with(suffix))
}

/// What was found on `sys.path`.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// One package per normalized name, sorted by name; later copies in `shadowed`.
    pub(crate) packages: Vec<Package>,
    /// `.pth` files, in `sys.path` order then by name.
    pub(crate) pth_files: Vec<PthFile>,
    /// Distributions that were skipped, and why.
    pub(crate) warnings: Vec<Warning>,
    /// Native numeric libraries and numpy's and scipy's extensions that the winning
    /// distributions' RECORDs list (see [`crate::capture::numerics`]).
    pub(crate) binaries: Vec<Binary>,
    /// The modules the winning distributions' RECORDs install.
    pub(crate) modules: Modules,
}

/// What a distribution's RECORD lists that capture keeps.
#[derive(Default)]
struct Installed {
    binaries: Vec<Binary>,
    modules: Modules,
}

/// Reads every distribution and `.pth` file in the `sys_path` folders, in order. A folder
/// that is absent (or a zip) holds nothing; one that cannot be read is an error.
pub(crate) async fn read_sys_path(
    files: &impl Files,
    sys_path: &[String],
) -> Result<Found, ReadError> {
    let mut found = Found::default();
    let mut winners: BTreeMap<String, Package> = BTreeMap::new();
    for location in sys_path {
        let Some(names) = files.list(location).await? else {
            continue;
        };
        for entry in names {
            let is_folder = entry.kind == FileKind::Folder;
            let Some(kind) = Kind::of(&entry.name, is_folder, fs::base_name(location)) else {
                continue;
            };
            let path = fs::join(location, &entry.name);
            let read = match kind {
                Kind::Distribution(format) => Read::Package(
                    read_distribution(files, &path, format, is_folder, location)
                        .await?
                        .map(Box::new),
                ),
                Kind::Pth => Read::Pth(read_pth(files, &path).await?),
            };
            match read {
                Read::Package(Ok(read)) => {
                    let (package, installed) = *read;
                    match winners.get_mut(&package.name) {
                        Some(winner) => winner.shadowed.push(Shadowed {
                            version: package.version,
                            location: package.location,
                        }),
                        None => {
                            found.binaries.extend(installed.binaries);
                            found.modules.extend(installed.modules);
                            winners.insert(package.name.clone(), package);
                        }
                    }
                }
                Read::Pth(Ok(pth)) => found.pth_files.push(pth),
                Read::Package(Err(skipped)) => found.warnings.push(Warning::new(
                    WarningCode::SkippedDistribution,
                    skipped.to_string(),
                )),
                Read::Pth(Err(skipped)) => found
                    .warnings
                    .push(Warning::new(WarningCode::SkippedPth, skipped.to_string())),
            }
        }
    }
    found.packages = winners.into_values().collect();
    Ok(found)
}

#[derive(Clone, Copy)]
enum Kind {
    Distribution(MetadataFormat),
    Pth,
}

impl Kind {
    fn of(name: &str, is_folder: bool, folder: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        if is_folder {
            return WANTED.is_folder(name).then(|| {
                Kind::Distribution(if lower.ends_with(".dist-info") {
                    MetadataFormat::DistInfo
                } else {
                    MetadataFormat::EggInfo
                })
            });
        }
        if WANTED.is_single(name) {
            Some(Kind::Distribution(MetadataFormat::EggInfo))
        } else if WANTED.is_pth(folder, name) {
            Some(Kind::Pth)
        } else {
            None
        }
    }
}

enum Read {
    Package(Result<Box<(Package, Installed)>, Skipped>),
    Pth(Result<PthFile, Skipped>),
}

/// A distribution or `.pth` file left out, with a warning: its metadata says too little to
/// be one, or it is no file.
#[derive(Debug, thiserror::Error)]
#[error("skipped `{path}`: {why}")]
struct Skipped {
    /// The `.dist-info`, `.egg-info` or `.pth` path.
    path: String,
    why: Why,
}

/// Why a [`Skipped`] distribution or `.pth` file is left out.
#[derive(Debug, thiserror::Error)]
enum Why {
    #[error("it has no `{0}`")]
    NoMetadata(String),
    #[error("`{file}` has no `{key}:` header")]
    NoHeader { file: String, key: &'static str },
    #[error("the `{key}:` header is not valid UTF-8 (byte {offset}) of `{file}`")]
    NotUtf8 {
        file: String,
        key: &'static str,
        offset: usize,
    },
    #[error("the `{key}:` header is empty of `{file}`")]
    Empty { file: String, key: &'static str },
    #[error("the `Name:` header `{name}` is not a package name of `{file}`")]
    NotAName {
        file: String,
        name: String,
        #[source]
        source: pep508_rs::InvalidNameError,
    },
    #[error("it is not a readable file")]
    NotAFile,
}

/// One distribution: `Ok(Err(warning))` when its metadata says too little to be one.
async fn read_distribution(
    files: &impl Files,
    path: &str,
    format: MetadataFormat,
    is_folder: bool,
    location: &str,
) -> Result<Result<(Package, Installed), Skipped>, ReadError> {
    let metadata_file = match (format, is_folder) {
        (MetadataFormat::DistInfo, _) => fs::join(path, "METADATA"),
        (MetadataFormat::EggInfo, true) => fs::join(path, "PKG-INFO"),
        (MetadataFormat::EggInfo, false) => path.to_string(),
    };
    let skipped = |why: Why| Skipped {
        path: path.to_string(),
        why,
    };
    let Some(metadata) = files.headers(&metadata_file).await? else {
        return Ok(Err(skipped(Why::NoMetadata(metadata_file))));
    };
    let mut package = match package_of(&metadata, &metadata_file, location, format) {
        Ok(package) => package,
        Err(why) => return Ok(Err(skipped(why))),
    };
    // As `importlib.metadata` gives them: `Requires-Dist`, else an egg-info's requires.txt.
    if package.requires.is_empty() && format == MetadataFormat::EggInfo && is_folder {
        if let Some(bytes) = files.read(&fs::join(path, "requires.txt")).await? {
            package.requires = requires_txt(&String::from_utf8_lossy(&bytes));
        }
    }
    let mut installed = Installed::default();
    if format == MetadataFormat::DistInfo {
        installed = read_installer_files(files, path, &mut package).await?;
    }
    Ok(Ok((package, installed)))
}

/// The package a METADATA header block names, or why it names none.
fn package_of(
    metadata: &[u8],
    metadata_file: &str,
    location: &str,
    format: MetadataFormat,
) -> Result<Package, Why> {
    let file = || metadata_file.to_string();
    let headers = Headers::parse(metadata);
    let field = |key: &'static str| -> Result<String, Why> {
        match headers.first(key) {
            None => Err(Why::NoHeader { file: file(), key }),
            Some(Err(offset)) => Err(Why::NotUtf8 {
                file: file(),
                key,
                offset,
            }),
            Some(Ok(value)) if value.is_empty() => Err(Why::Empty { file: file(), key }),
            Some(Ok(value)) => Ok(value),
        }
    };
    let name = field("Name")?;
    let name = PackageName::from_str(&name).map_err(|source| Why::NotAName {
        file: file(),
        name: name.clone(),
        source,
    })?;
    Ok(Package {
        name: name.to_string(),
        version: field("Version")?,
        location: location.to_string(),
        format,
        // A line that is not UTF-8 is left out: no requirement is read from it.
        requires: headers
            .all("Requires-Dist")
            .filter_map(Result::ok)
            .filter(|requirement| !requirement.is_empty())
            .collect(),
        ..Package::default()
    })
}

/// An egg-info's `requires.txt` as `Requires-Dist` lines, as `importlib.metadata` converts
/// it: a `[EXTRA]`, `[:MARKER]` or `[EXTRA:MARKER]` section adds its condition to the lines
/// under it.
fn requires_txt(text: &str) -> Vec<String> {
    let mut condition = String::new();
    let mut requires = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (extra, marker) = section.split_once(':').unwrap_or((section, ""));
            condition = match (extra, marker) {
                ("", "") => String::new(),
                ("", marker) => marker.to_string(),
                (extra, "") => format!("extra == \"{extra}\""),
                (extra, marker) => format!("({marker}) and extra == \"{extra}\""),
            };
            continue;
        }
        // PEP 508 wants a space between a URL and its marker.
        let space = if line.contains('@') { " " } else { "" };
        requires.push(if condition.is_empty() {
            line.to_string()
        } else {
            format!("{line}{space}; {condition}")
        });
    }
    requires
}

/// The optional files of a `.dist-info`; a missing one leaves its field empty. Returns the
/// numeric binaries its RECORD lists.
async fn read_installer_files(
    files: &impl Files,
    folder: &str,
    package: &mut Package,
) -> Result<Installed, ReadError> {
    if let Some(bytes) = files.read(&fs::join(folder, "INSTALLER")).await? {
        let text = String::from_utf8_lossy(&bytes);
        package.installer = text
            .lines()
            .next()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string);
    }
    package.requested = files.exists(&fs::join(folder, "REQUESTED")).await?;
    if let Some(bytes) = files.read(&fs::join(folder, "WHEEL")).await? {
        package.wheel_tags = Headers::parse(&bytes)
            .all("Tag")
            .filter_map(Result::ok)
            .collect();
    }
    if let Some(bytes) = files.read(&fs::join(folder, "direct_url.json")).await? {
        read_direct_url(&bytes, package);
    }
    if let Some(bytes) = files.read(&fs::join(folder, "RECORD")).await? {
        package.record = Some(record_digest(&bytes, fs::base_name(folder)));
        let mut modules = Modules::default();
        modules.add_record(&bytes, &package.name);
        return Ok(Installed {
            binaries: crate::capture::numerics::binaries_in_record(&bytes, package),
            modules,
        });
    }
    // No RECORD (an egg-info, as Debian's packages and `setup.py install` write): the
    // top-level modules it declares, so a traced run's imports still map to it.
    if let Some(bytes) = files.read(&fs::join(folder, "top_level.txt")).await? {
        let mut modules = Modules::default();
        modules.add_top_level(&bytes, &package.name);
        return Ok(Installed {
            modules,
            ..Installed::default()
        });
    }
    Ok(Installed::default())
}

/// PEP 610 `direct_url.json`.
fn read_direct_url(bytes: &[u8], package: &mut Package) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    package.url = value["url"].as_str().map(without_credentials);
    if let Some(directory) = value.get("dir_info") {
        package.source = Some(PackageSource::Directory);
        package.editable = directory["editable"].as_bool().unwrap_or(false);
    } else if let Some(vcs) = value.get("vcs_info") {
        package.source = Some(PackageSource::Vcs);
        package.commit = vcs["commit_id"].as_str().map(str::to_string);
        package.vcs = vcs["vcs"].as_str().map(str::to_string);
    } else if let Some(archive) = value.get("archive_info") {
        package.source = Some(PackageSource::Archive);
        // `hashes = {"sha256": …}`, or the older `hash = "sha256=…"`.
        let sha256 = archive["hashes"]["sha256"].as_str().or_else(|| {
            archive["hash"]
                .as_str()
                .and_then(|hash| hash.strip_prefix("sha256="))
        });
        package.archive_sha256 = sha256.and_then(Sha256::from_hex);
    }
}

/// `url` without the `user:password@` (or token) before its host, which PEP 610 asks
/// installers to strip and an old or careless one may not have: a lock and an SBOM are
/// shared. `git@`, the user of SSH URLs, is no secret and stays.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    if &rest[..at] == "git" {
        return url.to_string();
    }
    format!("{scheme}://{}", &rest[at + 1..])
}

/// The installer's own files, which differ between two installs of the same wheel.
const INSTALLER_FILES: &[&str] = &["INSTALLER", "REQUESTED", "direct_url.json", "RECORD"];

/// The fingerprint of a distribution's installed files (see [`Package::record`]): the sorted
/// `path,hash` rows of RECORD, leaving out what differs between two installs of the same
/// wheel (the installer's files, `.pyc` rows without a hash) and files outside the site
/// folder (`../` scripts, absolute paths), whose place depends on the install prefix.
pub(crate) fn record_digest(record: &[u8], own_folder: &str) -> String {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(record);
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut row = csv::ByteRecord::new();
    // A malformed row (an unclosed quote) ends the reading; what came before still counts.
    while reader.read_byte_record(&mut row).unwrap_or(false) {
        let (Some(path), Some(hash)) = (row.get(0), row.get(1)) else {
            continue;
        };
        let outside = path.starts_with(b"../") || path.starts_with(b"/");
        let installer_file = path
            .strip_prefix(own_folder.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"/"))
            .is_some_and(|rest| INSTALLER_FILES.iter().any(|file| file.as_bytes() == rest));
        if hash.is_empty() || outside || installer_file || path.ends_with(b".pyc") {
            continue;
        }
        rows.push([path, b",", hash].concat());
    }
    rows.sort_unstable();
    let mut digest = Sha256::default();
    for row in &rows {
        digest.update(row);
        digest.update(b"\n");
    }
    digest.finish()
}

async fn read_pth(files: &impl Files, path: &str) -> Result<Result<PthFile, Skipped>, ReadError> {
    Ok(match files.read(path).await? {
        Some(bytes) => Ok(PthFile {
            path: path.to_string(),
            sha256: Sha256::of(&bytes),
            size: bytes.len() as u64,
        }),
        None => Err(Skipped {
            path: path.to_string(),
            why: Why::NotAFile,
        }),
    })
}

/// RFC 822 style headers of METADATA, PKG-INFO and WHEEL (parsed by `mailparse`), up to the
/// first blank line. Bytes may be invalid UTF-8 (old packages wrote Latin-1 author names);
/// only the values asked for must decode.
struct Headers<'a> {
    headers: Vec<mailparse::MailHeader<'a>>,
}

impl<'a> Headers<'a> {
    fn parse(bytes: &'a [u8]) -> Headers<'a> {
        // A block mailparse refuses (it starts with a continuation line) has no headers.
        let headers = mailparse::parse_headers(bytes)
            .map(|(headers, _)| headers)
            .unwrap_or_default();
        Headers { headers }
    }

    /// Every value of `key` (case-insensitive); `Err(byte offset)` for one that is not UTF-8.
    fn all(&self, key: &'a str) -> impl Iterator<Item = Result<String, usize>> + '_ {
        self.headers
            .iter()
            .filter(move |header| header.get_key_ref().trim().eq_ignore_ascii_case(key))
            .map(|header| {
                std::str::from_utf8(header.get_value_raw().trim_ascii())
                    .map(str::to_string)
                    .map_err(|error| error.valid_up_to())
            })
    }

    fn first(&self, key: &'a str) -> Option<Result<String, usize>> {
        self.all(key).next()
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): METADATA, PKG-INFO and WHEEL headers.
pub(crate) fn fuzz_headers(bytes: &[u8]) {
    let headers = Headers::parse(bytes);
    let _ = headers.first("Name");
    let _ = headers.all("Tag").count();
}

/// For the fuzz targets (`src/fuzzing.rs`): `direct_url.json`.
pub(crate) fn fuzz_direct_url(bytes: &[u8]) {
    read_direct_url(bytes, &mut Package::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_by_pep_503() {
        for (given, normalized) in [
            ("Zope.Interface", "zope-interface"),
            ("typing_extensions", "typing-extensions"),
            ("PyYAML", "pyyaml"),
            ("a-_.b", "a-b"),
        ] {
            assert_eq!(PackageName::from_str(given).unwrap().as_ref(), normalized);
        }
    }

    #[test]
    fn headers_stop_at_the_first_blank_line() {
        let metadata =
            b"Metadata-Version: 2.1\r\nName: numpy\r\nSummary: x\r\n  more\r\nVersion: 1.26.4\r\n\r\nName: not-this\n";
        let headers = Headers::parse(metadata);
        assert_eq!(headers.first("name"), Some(Ok("numpy".to_string())));
        assert_eq!(headers.first("Version"), Some(Ok("1.26.4".to_string())));
        assert_eq!(headers.all("Name").count(), 1);
    }

    #[test]
    fn invalid_utf8_elsewhere_does_not_hide_name_and_version() {
        let metadata = b"Name: old\nAuthor: Fran\xe7ois\nVersion: 1.0\n";
        let headers = Headers::parse(metadata);
        assert_eq!(headers.first("Name"), Some(Ok("old".to_string())));
        assert_eq!(headers.first("Author"), Some(Err(4)));
        assert_eq!(headers.first("Version"), Some(Ok("1.0".to_string())));
    }

    #[test]
    fn direct_urls_lose_their_credentials() {
        for (url, kept) in [
            (
                "https://user:s3cret@example.com/a.whl",
                "https://example.com/a.whl",
            ),
            (
                "https://TOKEN@example.com/a.whl?x=@",
                "https://example.com/a.whl?x=@",
            ),
            (
                "git+ssh://git@github.com/o/r.git",
                "git+ssh://git@github.com/o/r.git",
            ),
            ("file:///src/pkg", "file:///src/pkg"),
            (
                "https://example.com/p@1/a.whl",
                "https://example.com/p@1/a.whl",
            ),
        ] {
            assert_eq!(without_credentials(url), kept, "{url}");
        }
    }

    #[test]
    fn record_digest_ignores_installer_files_scripts_and_pyc() {
        let base = "pkg/__init__.py,sha256=AAA,10\npkg-1.0.dist-info/METADATA,sha256=BBB,20\n";
        let noisy = format!(
            "{base}pkg-1.0.dist-info/INSTALLER,sha256=CCC,4\npkg-1.0.dist-info/RECORD,,\n\
             ../../../bin/tool,sha256=DDD,50\npkg/__pycache__/x.cpython-311.pyc,,\n\
             pkg-1.0.dist-info/direct_url.json,sha256=EEE,90\n/usr/share/x,sha256=FFF,1\n"
        );
        assert_eq!(
            record_digest(base.as_bytes(), "pkg-1.0.dist-info"),
            record_digest(noisy.as_bytes(), "pkg-1.0.dist-info")
        );
        let other_build = base.replace("AAA", "AAB");
        assert_ne!(
            record_digest(base.as_bytes(), "pkg-1.0.dist-info"),
            record_digest(other_build.as_bytes(), "pkg-1.0.dist-info")
        );
    }

    #[test]
    fn record_paths_with_commas_are_quoted() {
        let quoted = record_digest(b"\"a,b.py\",sha256=X,3\n", "x.dist-info");
        let mut digest = Sha256::default();
        digest.update(b"a,b.py,sha256=X\n");
        assert_eq!(quoted, digest.finish());
    }

    #[test]
    fn requires_txt_reads_as_importlib_metadata_gives_it() {
        // The lines importlib.metadata's `requires()` gives for this requires.txt.
        let text = "numpy>=1.20\n\n[:python_version < \"3.8\"]\nimportlib-metadata\n\
                    [plot]\nmatplotlib\n[test:sys_platform == \"win32\"]\npywin32\n\
                    [url]\nlocal @ file:///x\n";
        assert_eq!(
            requires_txt(text),
            [
                "numpy>=1.20",
                "importlib-metadata; python_version < \"3.8\"",
                "matplotlib; extra == \"plot\"",
                "pywin32; (sys_platform == \"win32\") and extra == \"test\"",
                "local @ file:///x ; extra == \"url\"",
            ]
        );
    }

    #[test]
    fn wanted_decides_what_is_metadata() {
        use crate::capture::read::{kept, Kept};
        assert_eq!(
            kept("/s/numpy-1.26.4.dist-info/RECORD", false),
            Kept::Head(WANTED.limit)
        );
        assert_eq!(kept("/s/numpy/core.py", false), Kept::Nothing);
        assert_eq!(kept("/app/model.pth", false), Kept::Nothing);
        assert_eq!(
            kept("/s/site-packages/x.pth", false),
            Kept::Head(WANTED.limit)
        );
        assert_eq!(kept("/usr/bin/tool", true), Kept::Script);
        assert!(WANTED.is_pth("site-packages", "distutils-precedence.pth"));
        assert!(!WANTED.is_pth("app", "model.pth"));
        assert!(Kind::of("x.dist-info", false, "site-packages").is_none());
        assert!(matches!(
            Kind::of("x.egg-info", false, "site-packages"),
            Some(Kind::Distribution(_))
        ));
        assert!(Kind::of("weights.pth", false, "app").is_none());
    }

    proptest::proptest! {
        #[test]
        fn metadata_files_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let headers = Headers::parse(&bytes);
            let _ = headers.first("Name");
            let _ = headers.all("Tag").count();
            let _ = record_digest(&bytes, "x-1.0.dist-info");
            let mut package = package_for_tests();
            read_direct_url(&bytes, &mut package);
        }

        #[test]
        fn distributions_with_any_metadata_never_panic(
            metadata in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            record in "((\"[a-z,]{0,6}\"|[a-z/.]{0,10}),(sha256=[A-Za-z0-9_-]{0,8})?,[0-9]{0,4}\n){0,10}",
        ) {
            use crate::capture::fs::memory::MemoryFiles;
            use futures_util::FutureExt as _;
            let mut files = MemoryFiles::default();
            files.add_entry("/site", "x-1.0.dist-info".into(), FileKind::Folder);
            files.add_file("/site/x-1.0.dist-info/METADATA".into(), metadata);
            files.add_file("/site/x-1.0.dist-info/RECORD".into(), record.into_bytes());
            let found = read_sys_path(&files, &["/site".to_string()])
                .now_or_never()
                .expect("memory reads never wait")
                .expect("memory reads never fail");
            proptest::prop_assert!(found.packages.len() + found.warnings.len() == 1);
        }
    }

    fn package_for_tests() -> Package {
        Package {
            name: "x".into(),
            version: "1".into(),
            location: "/site".into(),
            ..Package::default()
        }
    }
}
