//! The parsers of untrusted bytes, one entry each, for coverage-guided fuzzing (`fuzz/`,
//! cargo-fuzz) and for replaying in `cargo test` the inputs that once crashed them. Each target feeds its bytes
//! where a runtime, an image, a registry, a model file or a golden run would; a target
//! passes when nothing panics, hangs or allocates without bound. Not an API: hidden from
//! the docs and free to change.

use std::path::Path;

use futures_util::FutureExt as _;

use crate::capture;
use crate::capture::read::{distributions, history, select, site, system};
use crate::declared::DeclaredFormat;

/// The targets, by name; `fuzz/fuzz_targets/NAME.rs` runs each. The model reader's own
/// (`model`, `pickle`, `zip`, …) are `envlock_model::fuzzing`'s, fuzzed without envlock.
#[doc(hidden)]
pub const TARGETS: &[&str] = &[
    "metadata",
    "record",
    "direct-url",
    "dpkg-status",
    "apk-installed",
    "rpm-header",
    "os-release",
    "passwd",
    "conda-record",
    "pyvenv",
    "command-line",
    "elf",
    "layer-tar",
    "folder-tar",
    "model-tar",
    "oci-manifest",
    "image-config",
    "history-step",
    "probe-answer",
    "job-results",
    "trace",
    "lock",
    "golden-output",
    "http-response",
    "uv-lock",
    "pylock",
    "poetry-lock",
    "requirements",
    "marker",
    "sbom",
    "audit-shard",
];

/// Feeds `data` to the parser `target` names.
#[doc(hidden)]
pub fn run(target: &str, data: &[u8]) {
    let text = || String::from_utf8_lossy(data);
    match target {
        "metadata" => distributions::fuzz_headers(data),
        "record" => {
            let _ = distributions::record_digest(data, "x-1.0.dist-info");
        }
        "direct-url" => distributions::fuzz_direct_url(data),
        "dpkg-status" => {
            let packages = system::parse_dpkg_status(&text());
            let _ = system::libc_of(&packages);
            let _ = system::system_python_version(&packages);
        }
        "apk-installed" => {
            let packages = system::parse_apk_installed(&text());
            let _ = system::libc_of(&packages);
        }
        "rpm-header" => capture::read::fuzz_rpm_header(data),
        "os-release" => {
            let _ = capture::platform::os_release_fields(&text());
            let _ = capture::platform::normalize_arch(&text());
        }
        "passwd" => system::fuzz_passwd(&text()),
        "conda-record" => {
            let mut files = capture::fs::memory::MemoryFiles::default();
            files.add_entry("/p/conda-meta", "x.json".into(), capture::fs::Kind::File);
            files.add_file("/p/conda-meta/x.json".into(), data.to_vec());
            let mut warnings = Vec::new();
            let read = capture::read::conda::read_prefixes(&files, &["/p"], &mut warnings);
            let _ = read.now_or_never();
        }
        "pyvenv" => site::fuzz_layout_files(&text()),
        "command-line" => select::fuzz_command_line(&text()),
        "elf" => capture::numerics::fuzz_elf(data),
        "layer-tar" => {
            let keep = capture::layers::Keep::readers(vec!["app/model".into()]);
            let _ = capture::layers::read::read_layer(&mut &data[..], None, &keep);
        }
        "folder-tar" => capture::engine::fuzz_folder_tar(data),
        "model-tar" => capture::image::fuzz_model_tar(data),
        "oci-manifest" => capture::layers::fuzz_manifest(data),
        "image-config" => {
            let _ = capture::layers::ImageFacts::parse(data, "fuzz");
        }
        "history-step" => {
            let _ = history::redact_step(&text());
        }
        "probe-answer" => {
            let _ = capture::python::probe::Answer::parse(data);
        }
        "job-results" => capture::engine::jobs::fuzz_read_back(data),
        "trace" => crate::golden::trace::fuzz(data),
        "lock" => {
            let _ = crate::lock::parse_lock(Path::new("fuzz.lock"), &text());
        }
        "golden-output" => crate::golden::compare::fuzz(&text()),
        "http-response" => crate::golden::fuzz_http_response(data),
        "uv-lock" => crate::declared::fuzz(DeclaredFormat::UvLock, &text()),
        "pylock" => crate::declared::fuzz(DeclaredFormat::Pylock, &text()),
        "poetry-lock" => crate::declared::fuzz(DeclaredFormat::PoetryLock, &text()),
        "requirements" => crate::declared::fuzz(DeclaredFormat::Requirements, &text()),
        "marker" => {
            let _ = crate::declared::Marker::parse(&text());
        }
        "sbom" => {
            let _ = crate::sbom::parse_sbom(data, Path::new("fuzz.cdx.json"));
        }
        "audit-shard" => {
            let _ = crate::audit::merge(&[("fuzz.json".to_string(), data.to_vec())]);
        }
        other => panic!(
            "no fuzz target `{other}` (the targets: {})",
            TARGETS.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target on the inputs that once crashed it (`fuzz/regressions/TARGET/`,
    /// committed), as the fuzzer ran them: the regression tests of what fuzzing found.
    #[test]
    fn every_target_runs_its_corpus() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut sources: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .replace('_', "-")
            })
            .collect();
        sources.sort();
        let mut wanted: Vec<String> = TARGETS
            .iter()
            .map(|target| format!("{target}.rs"))
            .collect();
        wanted.sort();
        assert_eq!(
            sources, wanted,
            "fuzz/fuzz_targets/ has a file per target, no more"
        );
        for target in TARGETS {
            let source = fuzz
                .join("fuzz_targets")
                .join(format!("{}.rs", target.replace('-', "_")));
            assert!(source.exists(), "no {}", source.display());
            run(target, b"");
            let Ok(entries) = std::fs::read_dir(fuzz.join("regressions").join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                run(target, &std::fs::read(&path).unwrap());
            }
        }
    }
}
