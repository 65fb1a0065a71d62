//! Conda prefixes: `conda-meta/<name>-<version>-<build>.json`, one record per installed
//! package, read through the runtime's view ([`Files`]) like the distribution metadata.

use crate::warning::{Warning, WarningCode};
use serde::Deserialize;

use crate::capture::fs::{self, Files, ReadError};
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

/// A conda record skipped with a warning: the rest of `conda-meta` is still read.
#[derive(Debug, thiserror::Error)]
enum BadRecord {
    /// Not the JSON of a package record.
    #[error(transparent)]
    Json(serde_json::Error),
    /// A name ending in `.json` that is no file.
    #[error("not a readable file")]
    NotAFile,
}

/// The package records of the conda prefixes among `prefixes` (a venv's prefix and its
/// base), sorted by name; a record that cannot be read is a warning.
pub(crate) async fn read_prefixes(
    files: &impl Files,
    prefixes: &[&str],
    warnings: &mut Vec<Warning>,
) -> Result<Vec<CondaPackage>, ReadError> {
    let mut packages = Vec::new();
    let mut seen = Vec::new();
    for prefix in prefixes {
        let folder = fs::join(prefix, CONDA_META);
        if seen.contains(&folder) {
            continue;
        }
        let Some(names) = files.list(&folder).await? else {
            continue;
        };
        for entry in names.iter().filter(|entry| entry.name.ends_with(".json")) {
            let path = fs::join(&folder, &entry.name);
            let record = match files.read(&path).await? {
                Some(bytes) => serde_json::from_slice::<Record>(&bytes).map_err(BadRecord::Json),
                None => Err(BadRecord::NotAFile),
            };
            match record {
                Ok(record) => packages.push(CondaPackage {
                    name: record.name,
                    version: record.version,
                    build: record.build,
                    channel: record.channel.as_deref().map(CondaPackage::channel_name),
                    layer: None,
                }),
                Err(error) => warnings.push(Warning::new(
                    WarningCode::SkippedCondaRecord,
                    format!("skipped conda record `{path}` ({error})"),
                )),
            }
        }
        seen.push(folder);
    }
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::fs::{memory::MemoryFiles, Kind};
    use futures_util::FutureExt as _;

    fn read(
        files: &MemoryFiles,
        prefixes: &[&str],
        warnings: &mut Vec<Warning>,
    ) -> Vec<CondaPackage> {
        read_prefixes(files, prefixes, warnings)
            .now_or_never()
            .expect("memory reads never wait")
            .expect("memory reads never fail")
    }

    #[test]
    fn channels_are_named_without_host_and_platform() {
        assert_eq!(
            CondaPackage::channel_name("https://conda.anaconda.org/conda-forge/linux-64"),
            "conda-forge"
        );
        assert_eq!(
            CondaPackage::channel_name("https://repo.anaconda.com/pkgs/main/noarch"),
            "main"
        );
        assert_eq!(CondaPackage::channel_name("conda-forge"), "conda-forge");
        assert_eq!(
            CondaPackage::channel_name("https://conda.anaconda.org/nvidia/linux-aarch64/"),
            "nvidia"
        );
    }

    #[test]
    fn records_are_read_and_bad_ones_warned_about() {
        let mut files = MemoryFiles::default();
        let folder = "/opt/conda/conda-meta";
        for (name, text) in [
            (
                "mkl-2024.0.0-h1_0.json",
                r#"{"name": "mkl", "version": "2024.0.0", "build": "h1_0", "channel": "https://conda.anaconda.org/conda-forge/linux-64", "files": []}"#,
            ),
            ("broken.json", "{"),
            ("history", "not json"),
        ] {
            files.add_entry(folder, name.to_string(), Kind::File);
            files.add_file(format!("{folder}/{name}"), text.as_bytes().to_vec());
        }
        let mut warnings = Vec::new();
        let packages = read(&files, &["/opt/conda", "/opt/conda"], &mut warnings);
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].build, "h1_0");
        assert_eq!(packages[0].channel.as_deref(), Some("conda-forge"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    proptest::proptest! {
        #[test]
        fn records_and_channels_never_panic(text in ".{0,200}") {
            let _ = CondaPackage::channel_name(&text);
            let mut files = MemoryFiles::default();
            files.add_entry("/p/conda-meta", "x.json".into(), Kind::File);
            files.add_file("/p/conda-meta/x.json".into(), text.into_bytes());
            let mut warnings = Vec::new();
            let found = read(&files, &["/p"], &mut warnings);
            proptest::prop_assert!(found.len() + warnings.len() == 1);
        }
    }
}
