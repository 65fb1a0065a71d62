//! RPM's package database, as Fedora, RHEL, Rocky Linux and Amazon Linux images carry it:
//! `/var/lib/rpm/rpmdb.sqlite` (RPM 4.16 and later), one row per package holding its header
//! blob. The blob is parsed here for name, epoch, version, release and arch; nothing of
//! RPM is run. The older Berkeley DB form (`Packages`) is not read, and says so.

use std::path::Path;

use crate::lock::SystemPackage;

/// Where images keep the database, newest layout first.
pub(crate) const SQLITE: &str = "/var/lib/rpm/rpmdb.sqlite";
/// Its write-ahead log, whose committed pages belong to the database.
pub(crate) const SQLITE_WAL: &str = "/var/lib/rpm/rpmdb.sqlite-wal";
/// The Berkeley DB form of RPM before 4.16.
pub(crate) const BERKELEY: &[&str] = &["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"];

/// Whether `path` is in a folder of RPM's databases.
pub(crate) fn is_database(path: &str) -> bool {
    path.starts_with("/var/lib/rpm/") || path.starts_with("/usr/lib/sysimage/rpm/")
}

/// The tags read from a header.
const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const ARCH: u32 = 1022;

/// The installed packages of the database `database` (and its write-ahead log `wal`),
/// sorted by name; a package installed for two architectures is named `name.arch`, as
/// `yum` writes it. `gpg-pubkey` entries are signing keys, not software, and are left out.
pub(crate) fn packages(
    database: &[u8],
    wal: Option<&[u8]>,
) -> Result<Vec<SystemPackage>, RpmError> {
    let folder = tempfile::tempdir().map_err(RpmError::TempFolder)?;
    let path = folder.path().join("rpmdb.sqlite");
    std::fs::write(&path, database).map_err(RpmError::Copy)?;
    if let Some(wal) = wal.filter(|wal| !wal.is_empty()) {
        std::fs::write(folder.path().join("rpmdb.sqlite-wal"), wal).map_err(RpmError::CopyLog)?;
    }
    let blobs = read_blobs(&path).map_err(RpmError::NotADatabase)?;
    let mut headers = Vec::with_capacity(blobs.len());
    for (row, blob) in blobs.iter().enumerate() {
        let header = Header::parse(blob).ok_or(RpmError::Header { number: row + 1 })?;
        if header.name != "gpg-pubkey" {
            headers.push(header);
        }
    }
    Ok(to_packages(headers))
}

/// Why an RPM database gave no packages: a warning, the capture goes on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpmError {
    /// The database is read by SQLite from a copy in a temp folder.
    #[error("cannot make a temp folder: {0}")]
    TempFolder(#[source] std::io::Error),
    /// The database could not be copied there.
    #[error("cannot copy the database: {0}")]
    Copy(#[source] std::io::Error),
    /// Its write-ahead log could not be copied beside it.
    #[error("cannot copy the database's log: {0}")]
    CopyLog(#[source] std::io::Error),
    /// SQLite could not read its packages from it.
    #[error("not an RPM database: {0}")]
    NotADatabase(#[source] rusqlite::Error),
    /// A package's header blob that does not parse (counted from 1).
    #[error("the header of package {number} is malformed")]
    Header { number: usize },
}

fn read_blobs(path: &Path) -> rusqlite::Result<Vec<Vec<u8>>> {
    let connection = rusqlite::Connection::open(path)?;
    let mut statement = connection.prepare("SELECT blob FROM Packages ORDER BY hnum")?;
    let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    rows.collect()
}

/// What a package's header says of it.
#[derive(Debug, PartialEq)]
struct Header {
    name: String,
    epoch: Option<u32>,
    version: String,
    release: String,
    arch: Option<String>,
}

impl Header {
    /// A header blob as the database stores it: the index length and data length (both
    /// big-endian u32), the index entries (tag, type, offset, count), then the data.
    fn parse(blob: &[u8]) -> Option<Header> {
        let u32_at = |at: usize| -> Option<u32> {
            let bytes = blob.get(at..at.checked_add(4)?)?;
            Some(u32::from_be_bytes(bytes.try_into().ok()?))
        };
        let entries = usize::try_from(u32_at(0)?).ok()?;
        let data_length = usize::try_from(u32_at(4)?).ok()?;
        let data_start = entries.checked_mul(16)?.checked_add(8)?;
        let data = blob.get(data_start..data_start.checked_add(data_length)?)?;
        let mut header = Header {
            name: String::new(),
            epoch: None,
            version: String::new(),
            release: String::new(),
            arch: None,
        };
        for entry in 0..entries {
            let at = 8 + entry * 16;
            let (tag, kind, offset) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
            let offset = usize::try_from(offset).ok()?;
            let string = || -> Option<String> {
                // STRING (6) and I18NSTRING (9): NUL-terminated, the first one.
                if kind != 6 && kind != 9 {
                    return None;
                }
                let rest = data.get(offset..)?;
                let end = rest.iter().position(|&byte| byte == 0)?;
                Some(String::from_utf8_lossy(&rest[..end]).into_owned())
            };
            match tag {
                NAME => header.name = string()?,
                VERSION => header.version = string()?,
                RELEASE => header.release = string()?,
                ARCH => header.arch = string(),
                // INT32 (4), big-endian.
                EPOCH if kind == 4 => {
                    let bytes = data.get(offset..offset.checked_add(4)?)?;
                    header.epoch = Some(u32::from_be_bytes(bytes.try_into().ok()?));
                }
                _ => {}
            }
        }
        (!header.name.is_empty() && !header.version.is_empty()).then_some(header)
    }

    /// `[epoch:]version-release`, as `rpm -q` and `dnf` show it.
    fn full_version(&self) -> String {
        let epoch = self.epoch.map(|e| format!("{e}:")).unwrap_or_default();
        match self.release.as_str() {
            "" => format!("{epoch}{}", self.version),
            release => format!("{epoch}{}-{release}", self.version),
        }
    }
}

fn to_packages(headers: Vec<Header>) -> Vec<SystemPackage> {
    let count = |name: &str| headers.iter().filter(|h| h.name == name).count();
    let mut packages: Vec<SystemPackage> = headers
        .iter()
        .map(|header| {
            let name = match (&header.arch, count(&header.name)) {
                (Some(arch), 2..) => format!("{}.{arch}", header.name),
                _ => header.name.clone(),
            };
            SystemPackage {
                name,
                version: header.full_version(),
                manager: "rpm".to_string(),
                layer: None,
            }
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    packages.dedup_by(|a, b| a.name == b.name);
    packages
}

/// For the fuzz targets (`src/fuzzing.rs`): a header blob of the database.
pub(super) fn fuzz_header(blob: &[u8]) {
    let _ = Header::parse(blob);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with `strings` (tag, value) and an epoch.
    fn blob(strings: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in strings {
            index.push((*tag, 6u32, data.len() as u32));
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        if let Some(epoch) = epoch {
            while data.len() % 4 != 0 {
                data.push(0);
            }
            index.push((EPOCH, 4, data.len() as u32));
            data.extend_from_slice(&epoch.to_be_bytes());
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(index.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for (tag, kind, offset) in index {
            for value in [tag, kind, offset, 1] {
                blob.extend_from_slice(&value.to_be_bytes());
            }
        }
        blob.extend_from_slice(&data);
        blob
    }

    #[test]
    fn headers_give_epoch_version_release() {
        let strings = [
            (NAME, "openssl-libs"),
            (VERSION, "3.0.7"),
            (RELEASE, "27.el9"),
            (ARCH, "x86_64"),
        ];
        let header = Header::parse(&blob(&strings, Some(1))).unwrap();
        assert_eq!(header.full_version(), "1:3.0.7-27.el9");
        assert_eq!(header.arch.as_deref(), Some("x86_64"));
        let header = Header::parse(&blob(&strings, None)).unwrap();
        assert_eq!(header.full_version(), "3.0.7-27.el9");
        assert!(Header::parse(&blob(&[(VERSION, "1")], None)).is_none());
        assert!(Header::parse(&[0, 0, 0, 9]).is_none());
    }

    #[test]
    fn two_architectures_are_named_apart() {
        let header = |arch: &str| Header {
            name: "glibc".into(),
            epoch: None,
            version: "2.34".into(),
            release: "100.el9".into(),
            arch: Some(arch.into()),
        };
        let names: Vec<String> = to_packages(vec![header("x86_64"), header("i686")])
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["glibc.i686", "glibc.x86_64"]);
    }

    proptest::proptest! {
        #[test]
        fn any_blob_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn any_database_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = packages(&bytes, None);
        }
    }
}
