//! Reading installed distributions from the folders on `sys.path`, as `importlib.metadata`
//! finds them: `*.dist-info/` and `*.egg-info` (folder or file), the first copy of a name on
//! `sys.path` winning. The files come through [`SiteFiles`], so a dev environment (the host's
//! file system) and an image (files streamed out of a container) share this reader.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::lock::{MetadataFormat, Package, PackageSource, PthFile, Shadowed};

/// Read-only access to the files of a runtime.
pub trait SiteFiles: Sync {
    /// The names in `folder`, each with whether it is a folder (following symlinks).
    fn list(&self, folder: &Path) -> io::Result<Vec<(String, bool)>>;
    /// A file's bytes.
    fn read(&self, file: &Path) -> io::Result<Vec<u8>>;
    /// At least the header block of a METADATA-style file (up to its first blank line); the
    /// body, often a long README, is not needed.
    fn read_headers(&self, file: &Path) -> io::Result<Vec<u8>> {
        self.read(file)
    }
    /// Whether a file exists.
    fn exists(&self, file: &Path) -> bool;
}

/// The host's file system.
pub struct HostFiles;

impl SiteFiles for HostFiles {
    fn list(&self, folder: &Path) -> io::Result<Vec<(String, bool)>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(folder)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let is_folder = if kind.is_symlink() {
                entry.path().is_dir()
            } else {
                kind.is_dir()
            };
            names.push((entry.file_name().to_string_lossy().into_owned(), is_folder));
        }
        Ok(names)
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(file)
    }

    fn read_headers(&self, file: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let mut handle = std::fs::File::open(file)?;
        let mut bytes = Vec::with_capacity(8192);
        loop {
            let start = bytes.len().saturating_sub(3);
            let read = (&mut handle).take(8192).read_to_end(&mut bytes)?;
            let tail = &bytes[start..];
            let blank =
                tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n");
            if read == 0 || blank {
                return Ok(bytes);
            }
        }
    }

    fn exists(&self, file: &Path) -> bool {
        file.exists()
    }
}

/// What was found on `sys.path`.
#[derive(Debug, Default)]
pub struct Found {
    /// One package per normalized name, sorted by name; later copies in `shadowed`.
    pub packages: Vec<Package>,
    /// `.pth` files, in `sys.path` order then by name.
    pub pth_files: Vec<PthFile>,
    /// Distributions that were skipped, and why.
    pub warnings: Vec<String>,
}

/// Reads every distribution and `.pth` file in the `sys_path` folders, in order.
pub fn read_sys_path(files: &dyn SiteFiles, sys_path: &[String]) -> Found {
    let mut found = Found::default();
    let mut winners: BTreeMap<String, Package> = BTreeMap::new();
    for location in sys_path {
        // Entries that are not folders (a zip, a missing path) hold no distributions we read.
        let Ok(mut names) = files.list(Path::new(location)) else {
            continue;
        };
        names.sort();
        let folder = Path::new(location);
        let candidates: Vec<(String, bool, Kind)> = names
            .into_iter()
            .filter_map(|(name, is_folder)| {
                let kind = Kind::of(&name, is_folder)?;
                Some((name, is_folder, kind))
            })
            .collect();
        // Reading is independent per candidate; two threads halve it on large environments.
        let results = parallel_map(&candidates, |(name, is_folder, kind)| {
            let path = folder.join(name);
            match kind {
                Kind::Distribution(format) => Read::Package(read_distribution(
                    files, &path, *format, *is_folder, location,
                )),
                Kind::Pth => Read::Pth(read_pth(files, &path)),
            }
        });
        for result in results {
            match result {
                Read::Package(Ok(package)) => match winners.get_mut(&package.name) {
                    Some(winner) => winner.shadowed.push(Shadowed {
                        version: package.version,
                        location: package.location,
                    }),
                    None => {
                        winners.insert(package.name.clone(), package);
                    }
                },
                Read::Package(Err(warning)) => found.warnings.push(warning),
                Read::Pth(Ok(pth)) => found.pth_files.push(pth),
                Read::Pth(Err(warning)) => found.warnings.push(warning),
            }
        }
    }
    found.packages = winners.into_values().collect();
    found
}

enum Kind {
    Distribution(MetadataFormat),
    Pth,
}

impl Kind {
    fn of(name: &str, is_folder: bool) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".dist-info") && is_folder {
            Some(Kind::Distribution(MetadataFormat::DistInfo))
        } else if lower.ends_with(".egg-info") {
            Some(Kind::Distribution(MetadataFormat::EggInfo))
        } else if lower.ends_with(".pth") && !is_folder {
            Some(Kind::Pth)
        } else {
            None
        }
    }
}

enum Read {
    Package(Result<Package, String>),
    Pth(Result<PthFile, String>),
}

fn parallel_map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < 16 {
        return items.iter().map(&work).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let helper = scope.spawn(|| second.iter().map(&work).collect::<Vec<R>>());
        let mut results: Vec<R> = first.iter().map(&work).collect();
        results.extend(helper.join().expect("a distribution reader never panics"));
        results
    })
}

/// PEP 503 normalization: runs of `-`, `_`, `.` become one `-`, all lower case.
pub fn normalize_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator = false;
    for character in name.trim().chars() {
        if matches!(character, '-' | '_' | '.') {
            in_separator = true;
        } else {
            if in_separator && !normalized.is_empty() {
                normalized.push('-');
            }
            in_separator = false;
            normalized.extend(character.to_lowercase());
        }
    }
    normalized
}

fn read_distribution(
    files: &dyn SiteFiles,
    path: &Path,
    format: MetadataFormat,
    is_folder: bool,
    location: &str,
) -> Result<Package, String> {
    let metadata_file = match (format, is_folder) {
        (MetadataFormat::DistInfo, _) => path.join("METADATA"),
        (MetadataFormat::EggInfo, true) => path.join("PKG-INFO"),
        (MetadataFormat::EggInfo, false) => path.to_path_buf(),
    };
    let skipped = |why: String| format!("skipped `{}`: {why}", path.display());
    let metadata = files.read_headers(&metadata_file).map_err(|error| {
        skipped(format!(
            "cannot read `{}` ({error})",
            metadata_file.display()
        ))
    })?;
    let headers = Headers::parse(&metadata);
    let field = |key: &str| -> Result<String, String> {
        match headers.first(key) {
            None => Err(skipped(format!(
                "`{}` has no `{key}:` header",
                metadata_file.display()
            ))),
            Some(Err(offset)) => Err(skipped(format!(
                "the `{key}:` header of `{}` is not valid UTF-8 (byte {offset})",
                metadata_file.display()
            ))),
            Some(Ok(value)) if value.is_empty() => Err(skipped(format!(
                "the `{key}:` header of `{}` is empty",
                metadata_file.display()
            ))),
            Some(Ok(value)) => Ok(value),
        }
    };
    let name = normalize_name(&field("Name")?);
    let version = field("Version")?;
    let mut package = Package {
        name,
        version,
        location: location.to_string(),
        format,
        installer: None,
        requested: false,
        source: None,
        editable: false,
        url: None,
        commit: None,
        wheel_tags: Vec::new(),
        record: None,
        shadowed: Vec::new(),
    };
    if format == MetadataFormat::DistInfo {
        read_installer_files(files, path, &mut package);
    }
    Ok(package)
}

/// The optional files of a `.dist-info`; a missing or unreadable one leaves its field empty.
fn read_installer_files(files: &dyn SiteFiles, folder: &Path, package: &mut Package) {
    if let Ok(bytes) = files.read(&folder.join("INSTALLER")) {
        let text = String::from_utf8_lossy(&bytes);
        package.installer = text
            .lines()
            .next()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string);
    }
    package.requested = files.exists(&folder.join("REQUESTED"));
    if let Ok(bytes) = files.read(&folder.join("WHEEL")) {
        package.wheel_tags = Headers::parse(&bytes)
            .all("Tag")
            .filter_map(Result::ok)
            .collect();
    }
    if let Ok(bytes) = files.read(&folder.join("direct_url.json")) {
        read_direct_url(&bytes, package);
    }
    if let Ok(bytes) = files.read(&folder.join("RECORD")) {
        let own_folder = folder
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        package.record = Some(record_digest(&bytes, &own_folder));
    }
}

/// PEP 610 `direct_url.json`.
fn read_direct_url(bytes: &[u8], package: &mut Package) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    package.url = value["url"].as_str().map(str::to_string);
    if let Some(directory) = value.get("dir_info") {
        package.source = Some(PackageSource::Directory);
        package.editable = directory["editable"].as_bool().unwrap_or(false);
    } else if let Some(vcs) = value.get("vcs_info") {
        package.source = Some(PackageSource::Vcs);
        package.commit = vcs["commit_id"].as_str().map(str::to_string);
    } else if value.get("archive_info").is_some() {
        package.source = Some(PackageSource::Archive);
    }
}

/// The installer's own files, which differ between two installs of the same wheel.
const INSTALLER_FILES: &[&str] = &["INSTALLER", "REQUESTED", "direct_url.json", "RECORD"];

/// The fingerprint of a distribution's installed files (see [`Package::record`]).
pub fn record_digest(record: &[u8], own_folder: &str) -> String {
    let text = String::from_utf8_lossy(record);
    let mut rows: Vec<Cow<str>> = text
        .lines()
        .filter_map(|line| {
            // Most rows are unquoted: `path,hash` is then a slice of the line, no allocation.
            let (path, hash, row) = if line.starts_with('"') {
                let mut fields = csv_fields(line).into_iter();
                let (path, hash) = (fields.next()?, fields.next()?);
                let row = format!("{path},{hash}");
                (Cow::Owned(path), Cow::Owned(hash), Cow::Owned(row))
            } else {
                let (path, rest) = line.split_once(',')?;
                let hash = rest.split(',').next()?;
                let row = &line[..path.len() + 1 + hash.len()];
                (Cow::Borrowed(path), Cow::Borrowed(hash), Cow::Borrowed(row))
            };
            let outside = path.starts_with("../") || path.starts_with('/');
            let installer_file = path
                .strip_prefix(own_folder)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| INSTALLER_FILES.contains(&rest));
            (!hash.is_empty() && !outside && !installer_file && !path.ends_with(".pyc"))
                .then_some(row)
        })
        .collect();
    rows.sort_unstable();
    let mut digest = Sha256::new();
    for row in &rows {
        digest.update(row.as_bytes());
        digest.update(b"\n");
    }
    format!("sha256:{:x}", digest.finalize())
}

/// Splits one CSV line (RECORD quotes paths that hold commas).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut characters = line.trim_end_matches('\r').chars().peekable();
    while let Some(character) = characters.next() {
        let field = fields.last_mut().expect("never empty");
        match character {
            '"' if quoted && characters.peek() == Some(&'"') => {
                field.push('"');
                characters.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            other => field.push(other),
        }
    }
    fields
}

fn read_pth(files: &dyn SiteFiles, path: &Path) -> Result<PthFile, String> {
    let bytes = files
        .read(path)
        .map_err(|error| format!("cannot read `{}` ({error})", path.display()))?;
    Ok(PthFile {
        path: path.to_string_lossy().into_owned(),
        sha256: format!("sha256:{:x}", Sha256::digest(&bytes)),
        size: bytes.len() as u64,
    })
}

/// RFC 822 style headers of METADATA, PKG-INFO and WHEEL: `Key: value` lines up to the first
/// blank line; continuation lines (starting with white space) belong to the previous header.
/// Bytes may be invalid UTF-8 (old packages wrote Latin-1 author names); only the values
/// asked for must decode.
struct Headers<'a> {
    lines: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Headers<'a> {
    fn parse(bytes: &'a [u8]) -> Headers<'a> {
        let mut lines = Vec::new();
        for line in bytes.split(|&byte| byte == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                continue;
            }
            if let Some(colon) = line.iter().position(|&byte| byte == b':') {
                lines.push((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()));
            }
        }
        Headers { lines }
    }

    /// Every value of `key` (case-insensitive); `Err(byte offset)` for one that is not UTF-8.
    fn all(&self, key: &'a str) -> impl Iterator<Item = Result<String, usize>> + '_ {
        self.lines
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(key.as_bytes()))
            .map(|(_, value)| {
                std::str::from_utf8(value)
                    .map(str::to_string)
                    .map_err(|error| error.valid_up_to())
            })
    }

    fn first(&self, key: &'a str) -> Option<Result<String, usize>> {
        self.all(key).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_normalization() {
        assert_eq!(normalize_name("Zope.Interface"), "zope-interface");
        assert_eq!(normalize_name("typing_extensions"), "typing-extensions");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
        assert_eq!(normalize_name("a-_.b"), "a-b");
        assert_eq!(normalize_name("  ruamel.yaml.clib "), "ruamel-yaml-clib");
    }

    #[test]
    fn headers_stop_at_the_first_blank_line_and_skip_continuations() {
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
    fn record_digest_ignores_installer_files_scripts_and_pyc() {
        let base = "pkg/__init__.py,sha256=AAA,10\npkg-1.0.dist-info/METADATA,sha256=BBB,20\n";
        let noisy = format!(
            "{base}pkg-1.0.dist-info/INSTALLER,sha256=CCC,4\npkg-1.0.dist-info/RECORD,,\n\
             ../../../bin/tool,sha256=DDD,50\npkg/__pycache__/x.cpython-311.pyc,,\n\
             pkg-1.0.dist-info/direct_url.json,sha256=EEE,90\n"
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
    fn csv_fields_handle_quoted_commas() {
        assert_eq!(
            csv_fields("\"a,b.py\",sha256=X,3"),
            vec!["a,b.py", "sha256=X", "3"]
        );
        assert_eq!(csv_fields("a\"\"b,,"), vec!["ab", "", ""]);
    }
}
