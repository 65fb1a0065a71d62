//! Conda prefixes: `conda-meta/<name>-<version>-<build>.json`, one record per installed
//! package, read through [`SiteFiles`] like the distribution metadata (the host's files, or
//! what the probe or an image's archive stream kept).

use std::path::Path;

use serde::Deserialize;

use super::files::SiteFiles;
use crate::lock::CondaPackage;

/// The folder of package records inside a conda prefix.
pub(crate) const CONDA_META: &str = "conda-meta";

/// The keys of a record envlock keeps; the probe sends only these (a record's `files` list
/// is long).
pub(crate) const RECORD_KEYS: &[&str] = &["name", "version", "build", "channel"];

#[derive(Deserialize)]
struct Record {
    name: String,
    version: String,
    #[serde(default)]
    build: String,
    #[serde(default)]
    channel: Option<String>,
}

/// The package records of the conda prefixes among `prefixes` (a venv's prefix and its
/// base), sorted by name; a record that cannot be read is a warning.
pub(crate) fn read_prefixes(
    files: &dyn SiteFiles,
    prefixes: &[&str],
    warnings: &mut Vec<String>,
) -> Vec<CondaPackage> {
    let mut packages = Vec::new();
    let mut seen = Vec::new();
    for prefix in prefixes {
        let folder = Path::new(prefix).join(CONDA_META);
        if seen.contains(&folder) {
            continue;
        }
        let Ok(names) = files.list(&folder) else {
            continue;
        };
        for (name, _) in names.iter().filter(|(name, _)| name.ends_with(".json")) {
            let path = folder.join(name);
            let record = files
                .read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<Record>(&bytes).map_err(|error| error.to_string())
                });
            match record {
                Ok(record) => packages.push(CondaPackage {
                    name: record.name,
                    version: record.version,
                    build: record.build,
                    channel: record.channel.as_deref().map(channel_name),
                    layer: None,
                }),
                Err(error) => warnings.push(format!(
                    "skipped conda record `{}` ({error})",
                    path.display()
                )),
            }
        }
        seen.push(folder);
    }
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    packages
}

/// `https://conda.anaconda.org/conda-forge/linux-64` → `conda-forge`: the channel, without
/// the host and platform subfolder that differ between machines for the same package.
fn channel_name(channel: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::python::files::MemoryFiles;

    #[test]
    fn channels_are_named_without_host_and_platform() {
        assert_eq!(
            channel_name("https://conda.anaconda.org/conda-forge/linux-64"),
            "conda-forge"
        );
        assert_eq!(
            channel_name("https://repo.anaconda.com/pkgs/main/noarch"),
            "main"
        );
        assert_eq!(channel_name("conda-forge"), "conda-forge");
        assert_eq!(
            channel_name("https://conda.anaconda.org/nvidia/linux-aarch64/"),
            "nvidia"
        );
    }

    #[test]
    fn records_are_read_and_bad_ones_warned_about() {
        let mut files = MemoryFiles::default();
        let folder = Path::new("/opt/conda/conda-meta");
        for (name, text) in [
            (
                "mkl-2024.0.0-h1_0.json",
                r#"{"name": "mkl", "version": "2024.0.0", "build": "h1_0", "channel": "https://conda.anaconda.org/conda-forge/linux-64", "files": []}"#,
            ),
            ("broken.json", "{"),
            ("history", "not json"),
        ] {
            files.add_entry(folder, name.to_string(), false);
            files.add_file(folder.join(name), text.as_bytes().to_vec());
        }
        let mut warnings = Vec::new();
        let packages = read_prefixes(&files, &["/opt/conda", "/opt/conda"], &mut warnings);
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].build, "h1_0");
        assert_eq!(packages[0].channel.as_deref(), Some("conda-forge"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    proptest::proptest! {
        #[test]
        fn records_and_channels_never_panic(text in ".{0,200}") {
            let _ = channel_name(&text);
            let mut files = MemoryFiles::default();
            let folder = Path::new("/p/conda-meta");
            files.add_entry(folder, "x.json".into(), false);
            files.add_file(folder.join("x.json"), text.into_bytes());
            let mut warnings = Vec::new();
            let found = read_prefixes(&files, &["/p"], &mut warnings);
            proptest::prop_assert!(found.len() + warnings.len() == 1);
        }
    }
}
