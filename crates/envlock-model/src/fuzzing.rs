//! The model reader's parsers of untrusted bytes, one entry each, for coverage-guided fuzzing
//! of this crate alone (`crates/envlock-model/fuzz/`, cargo-fuzz) and for replaying in
//! `cargo test` the inputs that once crashed them. `model` is the whole reader, as a caller
//! hands it a file; the others reach one parser without the sniffing in front of it. A
//! target passes when nothing panics, hangs or allocates without bound. Not an API: hidden
//! from the docs and free to change.

use crate::{compress, formats, npy, pickle, zip, Format};

/// The targets, by name; `fuzz/fuzz_targets/NAME.rs` (hyphens as underscores) runs each.
#[doc(hidden)]
pub const TARGETS: &[&str] = &[
    "model",
    "pickle",
    "npy",
    "zip",
    "compressed",
    "formats",
    "torch-tar",
];

/// The file names a `model` input's first byte picks from: each one a reader sniffs for.
const MODEL_NAMES: &[&str] = &[
    "model.pkl",
    "model.joblib",
    "model.pt",
    "model.keras",
    "model.onnx",
    "model.safetensors",
    "model.json",
    "model.ubj",
    "model.txt",
    "config.json",
    "model.bin",
];

/// The compressors a `compressed` input's first byte picks from (joblib's).
const COMPRESSIONS: &[compress::Compression] = &[
    compress::Compression::Zlib,
    compress::Compression::Gzip,
    compress::Compression::Bz2,
    compress::Compression::Xz,
    compress::Compression::Lzma,
    compress::Compression::Lz4,
];

/// The formats a `formats` input's first byte picks from: those `formats::read` reads.
const FORMATS: &[Format] = &[
    Format::Onnx,
    Format::Xgboost,
    Format::Safetensors,
    Format::HfConfig,
    Format::Lightgbm,
];

/// Feeds `data` to the parser `target` names. An input's first byte picks the variant
/// (a file name, a compressor, a format, a pickle's context) for the targets that have
/// several; the rest is the file.
#[doc(hidden)]
pub fn run(target: &str, data: &[u8]) {
    let (first, rest) = data.split_first().map_or((0, data), |(&b, rest)| (b, rest));
    let pick = |count: usize| usize::from(first) % count;
    let size = rest.len() as u64;
    match target {
        "model" => {
            if data.is_empty() {
                return;
            }
            let _ = crate::read(&mut &rest[..], size, MODEL_NAMES[pick(MODEL_NAMES.len())]);
        }
        "pickle" => {
            let _ = pickle::sniff(rest);
            let _ = match pick(3) {
                0 => pickle::scan_all(&mut &rest[..], size, pickle::Context::File),
                1 => pickle::scan_all(&mut &rest[..], size, pickle::Context::Torch),
                _ => pickle::scan_legacy_torch(&mut &rest[..], size),
            };
        }
        "npy" => {
            let _ = npy::header(data);
            let _ = npy::length(data);
        }
        "zip" => {
            let _ = zip::start(data);
            let _ = zip::read(&mut &data[..]);
        }
        "compressed" => {
            let _ = compress::sniff(rest);
            let mut reader = rest;
            let compression = COMPRESSIONS[pick(COMPRESSIONS.len())];
            // Read as `read` reads it: the pickles, and nothing after where they stop (the
            // caller drains the compressed stream, never the inflated one).
            let Ok(mut inflated) = compress::open(compression, &mut reader, size) else {
                return;
            };
            let _ = pickle::scan_all(&mut inflated, u64::MAX, pickle::Context::File);
        }
        "formats" => {
            let format = FORMATS[pick(FORMATS.len())];
            let _ = formats::sniff(rest, "config.json");
            let _ = formats::read(format, &mut &rest[..], size);
        }
        "torch-tar" => {
            let _ = crate::legacy_torch_tar(&mut &data[..]);
        }
        other => panic!(
            "no fuzz target `{other}` (the targets: {})",
            TARGETS.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every target on the inputs that once crashed it (`fuzz/regressions/TARGET/` of this
    /// crate, committed), as the fuzzer ran them, and `fuzz/fuzz_targets/` has one file per
    /// target, no more.
    #[test]
    fn every_target_runs_its_regressions() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut sources: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
            .unwrap()
            .map(|entry| {
                let name = entry.unwrap().file_name();
                name.to_string_lossy().replace('_', "-")
            })
            .collect();
        sources.sort();
        let mut wanted: Vec<String> = TARGETS
            .iter()
            .map(|target| format!("{target}.rs"))
            .collect();
        wanted.sort();
        assert_eq!(sources, wanted, "fuzz/fuzz_targets/ has a file per target");
        for target in TARGETS {
            run(target, b"");
            run(target, b"\x00");
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
