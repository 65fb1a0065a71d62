//! The system beneath Python in an image: packages of dpkg, apk or RPM, the C library, and
//! the version of Debian's own Python.

use super::rpm;
use crate::capture::fs::{Files, ReadError};
use crate::lock::SystemPackage;

/// Where `os-release` is: `/etc` first.
pub(crate) const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
/// The users, for the home of the image's user.
pub(crate) const PASSWD: &str = "/etc/passwd";

/// dpkg's database of installed packages.
pub(crate) const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// apk's.
pub(crate) const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// The largest RPM database read (a full RHEL image's is tens of MiB).
pub(crate) const RPM_LIMIT: u64 = 256 << 20;

/// The home folder of the image's `user` (a name or uid, maybe with `:group`) from its
/// `/etc/passwd`; `/root` for root or an unknown user.
pub(crate) async fn home_of(files: &impl Files, user: Option<&str>) -> Result<String, ReadError> {
    let user = user.and_then(|user| user.split(':').next()).unwrap_or("");
    if user.is_empty() || user == "root" || user == "0" {
        return Ok("/root".to_string());
    }
    let passwd = files.read(PASSWD).await?.unwrap_or_default();
    Ok(home_in_passwd(&String::from_utf8_lossy(&passwd), user).unwrap_or_else(|| "/root".into()))
}

/// `name:x:uid:gid:gecos:home:shell` lines: the home of `user` (a name or a uid).
fn home_in_passwd(passwd: &str, user: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let matches = fields.first() == Some(&user) || fields.get(2) == Some(&user);
        (matches && fields.len() >= 6).then(|| fields[5].to_string())
    })
}

/// Installed system packages from dpkg's, apk's or RPM's database, sorted by name, and a
/// warning when a database is there but cannot be read.
pub(crate) async fn system_packages(
    files: &impl Files,
) -> Result<(Vec<SystemPackage>, Option<String>), ReadError> {
    if let Some(bytes) = files.read(DPKG_STATUS).await? {
        return Ok((parse_dpkg_status(&String::from_utf8_lossy(&bytes)), None));
    }
    if let Some(bytes) = files.read(APK_INSTALLED).await? {
        return Ok((parse_apk_installed(&String::from_utf8_lossy(&bytes)), None));
    }
    if let Some(database) = files.head(rpm::SQLITE, RPM_LIMIT).await? {
        let wal = files.head(rpm::SQLITE_WAL, RPM_LIMIT).await?;
        return Ok(match rpm::packages(&database, wal.as_deref()) {
            Ok(packages) => (packages, None),
            Err(problem) => (
                Vec::new(),
                Some(format!(
                    "the RPM database `{}` could not be read ({problem}): the lock has no system packages",
                    rpm::SQLITE
                )),
            ),
        });
    }
    for path in rpm::BERKELEY {
        if files.exists(path).await? {
            let warning = format!(
                "the image's RPM database `{path}` is in the Berkeley DB form of RPM before 4.16, \
                 which envlock does not read: the lock has no system packages"
            );
            return Ok((Vec::new(), Some(warning)));
        }
    }
    Ok((Vec::new(), None))
}

/// Stanzas of `/var/lib/dpkg/status` whose `Status` ends in `installed`.
pub(crate) fn parse_dpkg_status(text: &str) -> Vec<SystemPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(|value| value.trim().to_string())
        };
        let installed = field("Status").is_some_and(|status| status.ends_with(" installed"));
        if let (true, Some(name), Some(version)) = (installed, field("Package"), field("Version")) {
            packages.push(SystemPackage {
                name,
                version,
                manager: "dpkg".to_string(),
                layer: None,
            });
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages.dedup_by(|a, b| a.name == b.name);
    packages
}

/// `P:` and `V:` lines of apk's database.
pub(crate) fn parse_apk_installed(text: &str) -> Vec<SystemPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|value| value.trim().to_string())
        };
        if let (Some(name), Some(version)) = (field("P:"), field("V:")) {
            packages.push(SystemPackage {
                name,
                version,
                manager: "apk".to_string(),
                layer: None,
            });
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// The C library from the system packages: glibc from `libc6`, musl from `musl`.
pub(crate) fn libc_of(packages: &[SystemPackage]) -> (Option<String>, Option<String>) {
    let upstream = |version: &str| {
        let without_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
        without_epoch
            .split('-')
            .next()
            .unwrap_or(without_epoch)
            .to_string()
    };
    for package in packages {
        // `glibc.x86_64` when RPM has it for two architectures.
        let name = match package.manager.as_str() {
            "rpm" => package.name.split('.').next().unwrap_or(&package.name),
            _ => package.name.as_str(),
        };
        match name {
            "libc6" | "glibc" => return (Some("glibc".into()), Some(upstream(&package.version))),
            "musl" => return (Some("musl".into()), Some(upstream(&package.version))),
            _ => {}
        }
    }
    (None, None)
}

/// The upstream version of the system Python from its package, e.g. `3.11.2`: Debian's
/// `python3.X-minimal`, or RPM's `python3.X` or `python3` (whose `-libs` hold the
/// interpreter on Fedora and RHEL).
pub(crate) fn system_python_version(packages: &[SystemPackage]) -> Option<String> {
    packages
        .iter()
        .filter(|p| match p.manager.as_str() {
            "dpkg" => p.name.starts_with("python3.") && p.name.ends_with("-minimal"),
            "rpm" => {
                let name = p.name.split('.').next().unwrap_or(&p.name);
                name == "python3" || name == "python3-libs" || is_minor_package(&p.name)
            }
            _ => false,
        })
        .map(|p| {
            let version = p
                .version
                .split_once(':')
                .map_or(p.version.as_str(), |(_, v)| v);
            version.split('-').next().unwrap_or(version).to_string()
        })
        .next()
}

/// `python3.11`, `python3.12` (RHEL's packages of a Python besides the default).
fn is_minor_package(name: &str) -> bool {
    name.strip_prefix("python3.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// For the fuzz targets (`src/fuzzing.rs`): `/etc/passwd`.
pub(crate) fn fuzz_passwd(text: &str) {
    let _ = home_in_passwd(text, "0");
    let _ = home_in_passwd(text, "model");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_keeps_installed_packages() {
        let text = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u6\n";
        let packages = parse_dpkg_status(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(
            libc_of(&packages),
            (Some("glibc".into()), Some("2.36".into()))
        );
        assert_eq!(system_python_version(&packages).as_deref(), Some("3.11.2"));
    }

    #[test]
    fn homes_by_name_or_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nmodel:x:1000:1000::/home/model:/bin/sh\n";
        assert_eq!(
            home_in_passwd(passwd, "model").as_deref(),
            Some("/home/model")
        );
        assert_eq!(
            home_in_passwd(passwd, "1000").as_deref(),
            Some("/home/model")
        );
        assert_eq!(home_in_passwd(passwd, "nobody"), None);
    }

    #[test]
    fn apk_database_and_musl() {
        let packages = parse_apk_installed("C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:python3\nV:3.11.8-r0\n");
        assert_eq!(
            libc_of(&packages),
            (Some("musl".into()), Some("1.2.4".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn package_databases_never_panic(text in "(([A-Za-z-]{1,10}: ?.{0,20}|[PVC]:.{0,20})\n{1,2}){0,20}") {
            let _ = parse_dpkg_status(&text);
            let packages = parse_apk_installed(&text);
            let _ = libc_of(&packages);
            let _ = system_python_version(&packages);
            let _ = home_in_passwd(&text, "model");
        }

        #[test]
        fn any_text_never_panics(text in ".{0,300}") {
            let _ = parse_dpkg_status(&text);
            let _ = parse_apk_installed(&text);
            let _ = home_in_passwd(&text, "0");
        }
    }
}
