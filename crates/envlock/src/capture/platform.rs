//! Naming platforms the same way whichever side reported them.

use crate::lock::Platform;

/// `ID` and `VERSION_ID` from the text of an `os-release` file (shell-style `KEY=value`,
/// values optionally quoted).
pub(crate) fn os_release_fields(text: &str) -> (Option<String>, Option<String>) {
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version = Some(value),
            _ => {}
        }
    }
    (id, version)
}

/// The kernel's name for an architecture (`x86_64`, `aarch64`), from either the kernel's or
/// Docker's spelling (`amd64`, `arm64`).
pub(crate) fn normalize_arch(arch: &str) -> String {
    match arch {
        "amd64" | "x86-64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        other => other,
    }
    .to_string()
}

/// A platform from its parts.
pub(crate) fn platform(
    os: &str,
    arch: &str,
    libc: Option<String>,
    libc_version: Option<String>,
    os_release: Option<&str>,
) -> Platform {
    let (os_id, os_version) = os_release.map(os_release_fields).unwrap_or_default();
    Platform {
        os: os.to_ascii_lowercase(),
        arch: normalize_arch(arch),
        libc,
        libc_version,
        os_id,
        os_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_reads_quoted_and_bare_values() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        assert_eq!(
            os_release_fields(text),
            (Some("debian".into()), Some("12".into()))
        );
        assert_eq!(
            os_release_fields("ID=alpine\nVERSION_ID=3.19.1\n"),
            (Some("alpine".into()), Some("3.19.1".into()))
        );
    }

    #[test]
    fn docker_and_kernel_arch_names_agree() {
        assert_eq!(normalize_arch("amd64"), normalize_arch("x86_64"));
        assert_eq!(normalize_arch("arm64"), normalize_arch("aarch64"));
    }

    proptest::proptest! {
        #[test]
        fn os_release_never_panics(text in "(([A-Z_]{1,10}=(\"[^\"]{0,10}\"?|.{0,10}))?\n){0,10}") {
            let _ = os_release_fields(&text);
            let _ = normalize_arch(&text);
        }
    }
}
