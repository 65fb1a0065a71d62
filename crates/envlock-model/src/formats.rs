//! The model formats that hold no pickle: ONNX, XGBoost (JSON, UBJ), LightGBM text,
//! safetensors and Hugging Face `config.json`. Each is read as it streams, once, keeping
//! only small bounded parts; what they record of the libraries that wrote them goes to
//! `written_by`. None of them names a module to import or holds code, so none is unsafe.

mod json;
mod onnx;
mod safetensors;
pub(crate) mod stream;
mod xgboost;

use std::io::BufRead;

use memchr::memmem;

use self::stream::Stream;
use super::{Facts, Format};

/// The format `head` says, for these (`name`: the file's name, which alone tells a Hugging
/// Face `config.json` from other JSON).
pub(crate) fn sniff(head: &[u8], name: &str) -> Option<Format> {
    if name == "config.json" && is_hf_config(head) {
        Some(Format::HfConfig)
    } else if safetensors::sniff(head) {
        Some(Format::Safetensors)
    } else if is_lightgbm(head) {
        Some(Format::Lightgbm)
    } else if xgboost::sniff_json(head) || xgboost::sniff_ubj(head) {
        Some(Format::Xgboost)
    } else if onnx::sniff(head) {
        Some(Format::Onnx)
    } else {
        None
    }
}

/// A JSON object with one of the keys `transformers` writes in a model's config (sorted:
/// `architectures` comes first, `transformers_version` last).
fn is_hf_config(head: &[u8]) -> bool {
    let start = (head.iter())
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(head.len());
    head[start..].starts_with(b"{")
        && HF_KEYS
            .iter()
            .any(|key| memmem::find(head, format!("\"{key}\"").as_bytes()).is_some())
}

/// The keys of a Hugging Face config that say it is one.
const HF_KEYS: [&str; 3] = ["architectures", "model_type", "transformers_version"];

/// LightGBM's text model starts with `tree` and its format version, `version=v4`.
fn is_lightgbm(head: &[u8]) -> bool {
    head.starts_with(b"tree\nversion=v") || head.starts_with(b"tree\r\nversion=v")
}

/// Reads a file of `format` (as `sniff` said), `size` bytes.
pub(crate) fn read(format: Format, reader: &mut dyn BufRead, size: u64) -> Facts {
    let mut stream = Stream::new(reader);
    let mut facts = Facts::of(format);
    match format {
        Format::Onnx => {
            let mut model = onnx::Model::default();
            // A model cut short still is ONNX (its head said so) and says what it read.
            let _ = onnx::read(&mut stream, &mut model);
            facts.written_by.extend(model.written_by());
        }
        Format::Xgboost => {
            let head = stream.fill_buf().unwrap_or_default();
            let (version, _) = if xgboost::sniff_ubj(head) {
                xgboost::read_ubj(&mut stream)
            } else {
                xgboost::read_json(&mut stream)
            };
            if let Some(version) = version {
                facts.written_by.insert("xgboost".to_string(), version);
            }
        }
        // LightGBM records only its model format's version (`version=v4`), never the
        // library's, so nothing is written by: the folder's lock has LightGBM's
        // distribution from the runtime itself.
        Format::Lightgbm => {}
        // Nothing in a valid header imports anything; an invalid one is no safetensors.
        Format::Safetensors if safetensors::read(&mut stream, size) != Ok(true) => {
            return Facts::default();
        }
        Format::HfConfig => {
            let mut object = json::Object::default();
            let _ = json::object(&mut stream, &HF_KEYS, &mut object);
            if !HF_KEYS.iter().any(|key| object.keys.contains(*key)) {
                return Facts::default();
            }
            let version = object.value("transformers_version");
            if let Some(version) = version.and_then(|version| version.as_str()) {
                if let Some(version) = plausible_version(version) {
                    facts.written_by.insert("transformers".to_string(), version);
                }
            }
        }
        _ => {}
    }
    facts
}

/// `text` when it can be a version a file records (`2.1.0`, `2.1.0+cu121`, `3.6.0rc1`):
/// short, starting with a digit, of the characters of PEP 440 versions and their local
/// parts. Anything else from a file is not put in a lock.
pub(crate) fn plausible_version(text: &str) -> Option<String> {
    /// Longer versions are not ones a library writes.
    const MAX_VERSION: usize = 64;
    let plausible = text.len() <= MAX_VERSION
        && text.starts_with(|character: char| character.is_ascii_digit())
        && (text.chars()).all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '.' | '+' | '-' | '_' | '!')
        });
    plausible.then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::super::{read as read_model, Facts, Format};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../../fixtures/models/formats/", $name))
        };
    }

    /// Every fixture, with its file name.
    const FIXTURES: &[(&str, &[u8])] = &[
        ("xgboost.json", fixture!("xgboost.json")),
        ("xgboost.ubj", fixture!("xgboost.ubj")),
        ("lightgbm.txt", fixture!("lightgbm.txt")),
        ("tiny.onnx", fixture!("tiny.onnx")),
        ("initializer.onnx", fixture!("initializer.onnx")),
        ("tiny.safetensors", fixture!("tiny.safetensors")),
        ("config.json", fixture!("config.json")),
        ("tiny.keras", fixture!("tiny.keras")),
        ("lambda.keras", fixture!("lambda.keras")),
        ("streamed.keras", fixture!("streamed.keras")),
        ("stored-descriptor.zip", fixture!("stored-descriptor.zip")),
        ("tiny.pt", fixture!("tiny.pt")),
    ];

    fn facts(name: &str, bytes: &[u8]) -> Facts {
        let mut reader = bytes;
        read_model(&mut reader, bytes.len() as u64, name)
    }

    fn fixture(name: &str) -> &'static [u8] {
        let found = FIXTURES.iter().find(|(fixture, _)| *fixture == name);
        found.map(|(_, bytes)| *bytes).unwrap_or_default()
    }

    fn written_by(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        (pairs.iter())
            .map(|(name, version)| (name.to_string(), version.to_string()))
            .collect()
    }

    #[test]
    fn real_files_give_their_format_and_writers() {
        let expected = [
            ("xgboost.json", Format::Xgboost, &[("xgboost", "3.2.0")][..]),
            ("xgboost.ubj", Format::Xgboost, &[("xgboost", "3.2.0")]),
            ("lightgbm.txt", Format::Lightgbm, &[]),
            ("tiny.onnx", Format::Onnx, &[("torch", "2.1.0")]),
            ("initializer.onnx", Format::Onnx, &[("skl2onnx", "1.17.0")]),
            ("tiny.safetensors", Format::Safetensors, &[]),
            (
                "config.json",
                Format::HfConfig,
                &[("transformers", "4.44.2")],
            ),
        ];
        for (name, format, writers) in expected {
            let facts = facts(name, fixture(name));
            assert_eq!(facts.format, format, "{name}");
            assert_eq!(facts.written_by, written_by(writers), "{name}");
            assert!(
                facts.unsafe_calls.is_empty() && facts.imports.is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_config_json_is_hugging_faces_only_by_its_name_and_keys() {
        assert_eq!(
            facts("other.json", fixture("config.json")).format,
            Format::Unknown
        );
        assert_eq!(facts("config.json", b"{\"a\": 1}").format, Format::Unknown);
        // `model_type` in the head but not a top-level key.
        let nested = br#"{"a": {"model_type": "bert"}}"#;
        assert_eq!(facts("config.json", nested).format, Format::Unknown);
    }

    #[test]
    fn a_safetensors_header_that_does_not_fit_is_unknown() {
        let mut huge = (1u64 << 63).to_le_bytes().to_vec();
        huge.extend(b"{\"a\":1}");
        assert_eq!(facts("x.safetensors", &huge).format, Format::Unknown);
        let tiny = fixture("tiny.safetensors");
        let cut = &tiny[..tiny.len() - 4];
        assert_eq!(facts("x.safetensors", cut).format, Format::Unknown);
    }

    #[test]
    fn versions_from_files_are_plausible_or_dropped() {
        use super::plausible_version;
        assert_eq!(
            plausible_version("2.1.0+cu121").as_deref(),
            Some("2.1.0+cu121")
        );
        for text in [
            "",
            "v1",
            "1.0\n",
            "1.0 beta",
            &"1".repeat(65),
            "1.0\u{1b}[31m",
        ] {
            assert_eq!(plausible_version(text), None, "{text:?}");
        }
    }

    #[test]
    fn garbage_is_unknown() {
        for bytes in [&b""[..], b"\0\0\0", b"hello", b"{\"a\": 1}", b"PK\x03\x04"] {
            assert_eq!(facts("model.bin", bytes), Facts::default(), "{bytes:?}");
        }
    }

    /// The fixture bytes with `changes` applied (offset, new byte) and cut at `end`.
    fn mutated(bytes: &[u8], changes: &[(usize, u8)], end: usize) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        for &(offset, byte) in changes {
            if !bytes.is_empty() {
                let at = offset % bytes.len();
                bytes[at] = byte;
            }
        }
        bytes.truncate(end.max(1));
        bytes
    }

    /// Whether the facts hold together: every unsafe call has its sentence, and a sentence
    /// is there only for one.
    fn consistent(facts: &Facts) -> bool {
        facts.unsafe_calls.is_empty() == facts.unsafe_where.is_empty()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for name in ["model.bin", "config.json"] {
                facts(name, &bytes);
            }
            let mut prefixed = b"PK\x03\x04".to_vec();
            prefixed.extend(&bytes);
            facts("model.pt", &prefixed);
        }

        #[test]
        fn mutated_fixtures_never_panic(
            index in 0..FIXTURES.len(),
            changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            end in any::<usize>(),
        ) {
            let (name, bytes) = FIXTURES[index];
            let bytes = mutated(bytes, &changes, end % (bytes.len() + 1));
            let facts = facts(name, &bytes);
            prop_assert!(consistent(&facts));
        }
    }
}
