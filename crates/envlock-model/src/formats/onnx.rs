//! ONNX models: a protobuf `ModelProto` with no magic number. Its fields come in the order
//! of their numbers (as protobuf writes them): `ir_version` (1), `producer_name` (2),
//! `producer_version` (3), `domain` (4), `model_version` (5), `doc_string` (6), `graph`
//! (7, the weights: it can be GBs and is skipped by its length), then `opset_import` (8,
//! `OperatorSetIdProto { domain = 1, version = 2 }`) and `metadata_props` (14).

use std::collections::BTreeMap;

use super::plausible_version;
use super::stream::{Broken, Stream};

/// Highest `ir_version` taken for ONNX when sniffing (ONNX 1.17 writes 10).
const MAX_IR_VERSION: u8 = 20;
/// Bytes of a string field kept (a producer's name or version is a few bytes).
const MAX_TEXT: u64 = 1024;
/// Bytes of one `opset_import` read (a domain name and a number).
const MAX_OPSET: u64 = 4096;
/// `opset_import`s kept (a model imports a handful of domains).
const MAX_OPSETS: usize = 256;

/// The producers whose `producer_version` is the version of a distribution (PEP 503 name):
/// `torch.onnx.export` writes "pytorch" and torch's version, the converters their own
/// names and versions (tf2onnx adds a commit after a space). Other producers (runtimes'
/// optimisers, `onnx.helper` with no producer, tools that write a format version) are not
/// recorded: their version says nothing about a distribution to install.
const PRODUCERS: &[(&str, &str)] = &[
    ("pytorch", "torch"),
    ("skl2onnx", "skl2onnx"),
    ("tf2onnx", "tf2onnx"),
    ("onnxmltools", "onnxmltools"),
    ("keras2onnx", "keras2onnx"),
];

/// The wire types of protobuf.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH: u8 = 2;
const FIXED32: u8 = 5;

/// Whether `head` starts as an ONNX model does: `ir_version` first (tag 0x08) with a small
/// value, then only fields of `ModelProto` with their wire types, as far as the head goes.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let [0x08, version, ..] = head else {
        return false;
    };
    if !(1..=MAX_IR_VERSION).contains(version) {
        return false;
    }
    let mut rest = &head[2..];
    let mut fields = 0;
    while !rest.is_empty() {
        let mut reader = rest;
        let mut stream = Stream::new(&mut reader);
        let Ok(tag) = varint(&mut stream) else {
            break;
        };
        let (field, wire) = (tag >> 3, (tag & 7) as u8);
        if expected_wire(field) != Some(wire) {
            return false;
        }
        fields += 1;
        let value = match wire {
            VARINT => varint(&mut stream).map(|_| 0),
            _ => varint(&mut stream),
        };
        let Ok(length) = value else {
            break;
        };
        let read = rest.len() - reader.len();
        match usize::try_from(length)
            .ok()
            .and_then(|length| rest.get(read + length..))
        {
            Some(tail) => rest = tail,
            // A field longer than the head (the graph): the head fitted.
            None => break,
        }
    }
    fields > 0
}

/// The wire type of each `ModelProto` field.
fn expected_wire(field: u64) -> Option<u8> {
    match field {
        1 | 5 => Some(VARINT),
        2 | 3 | 4 | 6 | 7 | 8 | 14 | 20 | 25 => Some(LENGTH),
        _ => None,
    }
}

/// What an ONNX model says.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Model {
    pub(crate) ir_version: Option<u64>,
    pub(crate) producer_name: Option<String>,
    pub(crate) producer_version: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) model_version: Option<u64>,
    /// Operator set domain ("" for the default one) -> version.
    pub(crate) opsets: BTreeMap<String, u64>,
}

impl Model {
    /// The distribution that wrote it, with its version, when the producer is one.
    pub(crate) fn written_by(&self) -> Option<(String, String)> {
        let producer = self.producer_name.as_deref()?.to_ascii_lowercase();
        let (_, distribution) = PRODUCERS.iter().find(|(name, _)| *name == producer)?;
        let version = self
            .producer_version
            .as_deref()?
            .split_whitespace()
            .next()?;
        Some((distribution.to_string(), plausible_version(version)?))
    }
}

/// Reads the top-level fields of `ModelProto`, skipping the graph; `model` holds what was
/// read before a stop.
pub(crate) fn read(stream: &mut Stream, model: &mut Model) -> Result<(), Broken> {
    while stream.peek()?.is_some() {
        let tag = varint(stream)?;
        let (field, wire) = (tag >> 3, (tag & 7) as u8);
        match (field, wire) {
            (0, _) => return Err(stream.broken("a protobuf field is numbered 0")),
            (1, VARINT) => model.ir_version = Some(varint(stream)?),
            (5, VARINT) => model.model_version = Some(varint(stream)?),
            (2..=4, LENGTH) => {
                let text = text(stream)?;
                let slot = match field {
                    2 => &mut model.producer_name,
                    3 => &mut model.producer_version,
                    _ => &mut model.domain,
                };
                *slot = text;
            }
            (8, LENGTH) => {
                let length = varint(stream)?;
                if length > MAX_OPSET || model.opsets.len() == MAX_OPSETS {
                    stream.skip(length)?;
                } else if let Some((domain, version)) = opset(&stream.bytes(length as usize)?) {
                    model.opsets.insert(domain, version);
                }
            }
            (_, VARINT) => {
                varint(stream)?;
            }
            (_, FIXED64) => stream.skip(8)?,
            (_, FIXED32) => stream.skip(4)?,
            (_, LENGTH) => {
                let length = varint(stream)?;
                stream.skip(length)?;
            }
            (_, wire) => {
                return Err(stream.broken(format!("protobuf wire type {wire} is not ONNX's")))
            }
        }
    }
    Ok(())
}

/// A string field (after its tag): its text when short and UTF-8.
fn text(stream: &mut Stream) -> Result<Option<String>, Broken> {
    let length = varint(stream)?;
    if length > MAX_TEXT {
        stream.skip(length)?;
        return Ok(None);
    }
    Ok(String::from_utf8(stream.bytes(length as usize)?).ok())
}

/// An `OperatorSetIdProto`.
fn opset(bytes: &[u8]) -> Option<(String, u64)> {
    let mut reader = bytes;
    let mut stream = Stream::new(&mut reader);
    let (mut domain, mut version) = (String::new(), None);
    while stream.peek().ok()?.is_some() {
        let tag = varint(&mut stream).ok()?;
        match (tag >> 3, (tag & 7) as u8) {
            (1, LENGTH) => domain = text(&mut stream).ok()??,
            (2, VARINT) => version = Some(varint(&mut stream).ok()?),
            _ => return None,
        }
    }
    Some((domain, version?))
}

/// A protobuf varint (at most ten bytes).
fn varint(stream: &mut Stream) -> Result<u64, Broken> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = stream.byte()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(stream.broken("a protobuf varint is longer than ten bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &[u8] = include_bytes!("../../../../fixtures/models/formats/tiny.onnx");
    const INITIALIZER: &[u8] =
        include_bytes!("../../../../fixtures/models/formats/initializer.onnx");

    fn model(bytes: &[u8]) -> (Model, Option<Broken>) {
        let mut reader = bytes;
        let mut model = Model::default();
        let broken = read(&mut Stream::new(&mut reader), &mut model).err();
        (model, broken)
    }

    #[test]
    fn real_models_give_their_producer_and_opsets() {
        assert!(sniff(TINY) && sniff(INITIALIZER));
        let (tiny, broken) = model(TINY);
        assert_eq!(broken, None);
        assert_eq!(tiny.ir_version, Some(8));
        assert_eq!(tiny.producer_name.as_deref(), Some("pytorch"));
        assert_eq!(
            tiny.opsets,
            BTreeMap::from([("".to_string(), 17), ("ai.onnx.ml".to_string(), 3)])
        );
        assert_eq!(
            tiny.written_by(),
            Some(("torch".to_string(), "2.1.0".to_string()))
        );
        let (initializer, broken) = model(INITIALIZER);
        assert_eq!(broken, None);
        assert_eq!(
            initializer.written_by(),
            Some(("skl2onnx".to_string(), "1.17.0".to_string()))
        );
        assert_eq!(initializer.opsets.len(), 2);
    }

    #[test]
    fn a_graph_larger_than_the_head_is_skipped_by_its_length() {
        // ir_version 9, producer "tf2onnx" "1.16.1 15c810", a graph of 3 MiB, an opset.
        let graph = 3 * 1024 * 1024u32;
        let mut bytes = b"\x08\x09\x12\x07tf2onnx\x1a\x0d1.16.1 15c810\x3a".to_vec();
        let mut length = graph;
        while length >= 0x80 {
            bytes.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        bytes.push(length as u8);
        let head = bytes.clone();
        bytes.resize(bytes.len() + graph as usize, 0xee);
        bytes.extend(b"\x42\x04\x10\x0c\x0a\x00");
        assert!(sniff(&head));
        assert!(sniff(&bytes[..64 * 1024]));
        let (read, broken) = model(&bytes);
        assert_eq!(broken, None);
        assert_eq!(read.opsets, BTreeMap::from([("".to_string(), 12)]));
        assert_eq!(
            read.written_by(),
            Some(("tf2onnx".to_string(), "1.16.1".to_string()))
        );
    }

    #[test]
    fn other_bytes_are_not_onnx() {
        for head in [
            &b"\x08\x00\x12\x01a"[..],
            b"\x08\x15\x12\x01a",
            b"\x08\x08\x58\x01",
            b"\x08",
            b"tree\nversion=v4",
            b"\x80\x02}q\x00.",
        ] {
            assert!(!sniff(head), "{head:?}");
        }
        assert_eq!(
            model(b"\x08\x08\x0b").1.unwrap().why,
            "protobuf wire type 3 is not ONNX's"
        );
        assert!(
            model(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .1
                .is_some()
        );
    }

    #[test]
    fn every_truncation_of_a_real_model_stops_cleanly() {
        for end in 0..INITIALIZER.len() {
            model(&INITIALIZER[..end]);
            sniff(&INITIALIZER[..end]);
        }
    }
}
