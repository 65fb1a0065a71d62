//! The top-level keys of a JSON object, read as it streams: the values asked for are kept
//! (small ones), every other is skipped without being built. An XGBoost model keeps its
//! `version` after a `learner` object of hundreds of MB, so the skipping is done on the
//! stream's buffers, byte by byte only outside strings.

use std::collections::BTreeSet;
use std::io::BufRead;

use serde_json::Value;

use super::stream::{Broken, Stream};

/// Nesting of arrays and objects skipped (a bit each in `Skip::objects`): XGBoost nests
/// about eight levels and Hugging Face configs fewer.
const MAX_DEPTH: usize = 128;
/// Bytes of a kept value: versions and model types are a few bytes, architectures lists
/// short.
const MAX_KEPT: usize = 64 * 1024;
/// Bytes of a key (longer ones are skipped: no key asked for is long).
const MAX_KEY: usize = 1024;
/// Top-level keys remembered.
const MAX_KEYS: usize = 4096;

/// What the top-level object holds.
#[derive(Debug, Default)]
pub(crate) struct Object {
    /// Its keys (the first `MAX_KEYS`).
    pub(crate) keys: BTreeSet<String>,
    /// The values of the keys asked for, when small and valid JSON.
    pub(crate) values: Vec<(String, Value)>,
}

impl Object {
    /// The kept value of `key` (the last, as JSON readers take it).
    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        (self.values.iter().rev())
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }
}

/// Reads the top-level object, keeping the values of `wanted`; `object` holds what was
/// read before a stop.
pub(crate) fn object(
    stream: &mut Stream,
    wanted: &[&str],
    object: &mut Object,
) -> Result<(), Broken> {
    if next(stream)? != Some(b'{') {
        return Err(stream.broken("the file is not a JSON object"));
    }
    stream.consume(1);
    if next(stream)? == Some(b'}') {
        return Ok(());
    }
    loop {
        if next(stream)? != Some(b'"') {
            return Err(stream.broken("a key of the JSON object is not a string"));
        }
        let key = value(stream, Some(MAX_KEY))?
            .and_then(|raw| serde_json::from_slice::<String>(&raw).ok());
        if next(stream)? != Some(b':') {
            return Err(stream.broken("a key of the JSON object is not followed by `:`"));
        }
        stream.consume(1);
        next(stream)?;
        match key {
            Some(key) if wanted.contains(&key.as_str()) => {
                let raw = value(stream, Some(MAX_KEPT))?;
                if let Some(kept) = raw.and_then(|raw| serde_json::from_slice(&raw).ok()) {
                    object.values.push((key.clone(), kept));
                }
                remember(object, key);
            }
            Some(key) => {
                value(stream, None)?;
                remember(object, key);
            }
            None => {
                value(stream, None)?;
            }
        }
        match next(stream)? {
            Some(b',') => stream.consume(1),
            Some(b'}') => {
                stream.consume(1);
                return Ok(());
            }
            _ => return Err(stream.broken("the JSON object's values are not separated by `,`")),
        }
        next(stream)?;
    }
}

fn remember(object: &mut Object, key: String) {
    if object.keys.len() < MAX_KEYS {
        object.keys.insert(key);
    }
}

/// Skips whitespace; the next byte (not consumed), or `None` at the end.
fn next(stream: &mut Stream) -> Result<Option<u8>, Broken> {
    loop {
        let (skipped, found) = {
            let chunk = match stream.fill_buf() {
                Ok(chunk) => chunk,
                Err(error) => return Err(stream.broken(format!("the stream failed ({error})"))),
            };
            if chunk.is_empty() {
                return Ok(None);
            }
            match chunk.iter().position(|byte| !is_space(*byte)) {
                Some(at) => (at, Some(chunk[at])),
                None => (chunk.len(), None),
            }
        };
        stream.consume(skipped);
        if found.is_some() {
            return Ok(found);
        }
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Reads the value starting at the stream's position, keeping its text when `keep` is
/// `Some(limit)` and it is at most `limit` bytes.
fn value(stream: &mut Stream, keep: Option<usize>) -> Result<Option<Vec<u8>>, Broken> {
    let mut skip = Skip::default();
    let mut kept = keep.map(|_| Vec::new());
    loop {
        let (used, ended) = {
            let chunk = match stream.fill_buf() {
                Ok(chunk) => chunk,
                Err(error) => return Err(stream.broken(format!("the stream failed ({error})"))),
            };
            if chunk.is_empty() {
                return Err(stream.broken("the file ends inside a JSON value"));
            }
            let (used, ended) = match skip.feed(chunk) {
                Ok(Some(used)) => (used, true),
                Ok(None) => (chunk.len(), false),
                Err((at, why)) => {
                    let mut broken = stream.broken(why);
                    broken.offset += at as u64;
                    return Err(broken);
                }
            };
            if let (Some(bytes), Some(limit)) = (&mut kept, keep) {
                if bytes.len() + used <= limit {
                    bytes.extend_from_slice(&chunk[..used]);
                } else {
                    kept = None;
                }
            }
            (used, ended)
        };
        stream.consume(used);
        if ended {
            return Ok(kept);
        }
    }
}

/// Where in a value the skipping is.
#[derive(Debug, Default)]
struct Skip {
    /// Open arrays and objects.
    depth: usize,
    /// Bit `d`: the container at depth `d + 1` is an object.
    objects: u128,
    string: bool,
    escaped: bool,
    /// Inside a number, `true`, `false` or `null`.
    scalar: bool,
}

impl Skip {
    /// Goes through the next bytes of the value: `Some(n)` when it ends after `n` of them,
    /// or where and why they are not JSON.
    fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>, (usize, &'static str)> {
        let mut at = 0;
        while at < chunk.len() {
            if self.string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                let Some(found) = memchr::memchr2(b'"', b'\\', &chunk[at..]) else {
                    return Ok(None);
                };
                at += found;
                if chunk[at] == b'\\' {
                    self.escaped = true;
                } else {
                    self.string = false;
                    if self.depth == 0 {
                        return Ok(Some(at + 1));
                    }
                }
                at += 1;
                continue;
            }
            let byte = chunk[at];
            if self.scalar {
                if !is_space(byte) && !matches!(byte, b',' | b'}' | b']' | b':') {
                    at += 1;
                    continue;
                }
                self.scalar = false;
                if self.depth == 0 {
                    return Ok(Some(at));
                }
            }
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b',' | b':' if self.depth > 0 => {}
                b'"' => self.string = true,
                b'{' | b'[' => {
                    if self.depth == MAX_DEPTH {
                        return Err((at, "the JSON nests more than 128 levels deep"));
                    }
                    if byte == b'{' {
                        self.objects |= 1 << self.depth;
                    } else {
                        self.objects &= !(1 << self.depth);
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    let Some(depth) = self.depth.checked_sub(1) else {
                        return Err((at, "a JSON bracket closes nothing"));
                    };
                    if (self.objects >> depth) & 1 != u128::from(byte == b'}') {
                        return Err((at, "a JSON bracket closes another kind"));
                    }
                    self.depth = depth;
                    if depth == 0 {
                        return Ok(Some(at + 1));
                    }
                }
                b',' | b':' => return Err((at, "a JSON value is missing")),
                _ => self.scalar = true,
            }
            at += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], wanted: &[&str]) -> (Object, Option<Broken>) {
        let mut reader = text;
        let mut stream = Stream::new(&mut reader);
        let mut object = Object::default();
        let broken = super::object(&mut stream, wanted, &mut object).err();
        (object, broken)
    }

    #[test]
    fn keeps_the_values_asked_for_and_skips_the_rest() {
        let text = br#" { "learner" : {"a": [1, 2.5e3, "x\"}]", {"b": null}], "c": true},
            "k\u00e9y": "v", "version": [3, 2, 0] } trailing"#;
        let (object, broken) = read(text, &["version", "kéy"]);
        assert_eq!(broken, None);
        assert_eq!(object.value("version"), Some(&serde_json::json!([3, 2, 0])));
        assert_eq!(object.value("kéy"), Some(&serde_json::json!("v")));
        assert_eq!(object.keys.len(), 3);
    }

    #[test]
    fn skips_across_buffer_boundaries() {
        let text = br#"{"a": ["x\\\"y", 12345, {"z": false}], "v": "1.0"}"#;
        // A reader that hands over one byte at a time.
        let mut reader = std::io::BufReader::with_capacity(1, &text[..]);
        let mut stream = Stream::new(&mut reader);
        let mut object = Object::default();
        super::object(&mut stream, &["v"], &mut object).unwrap();
        assert_eq!(object.value("v"), Some(&serde_json::json!("1.0")));
    }

    #[test]
    fn deep_nesting_and_broken_json_stop_without_panicking() {
        let deep = [b"{\"a\":".as_slice(), &[b'['; 200], &[b']'; 200], b"}"].concat();
        let (_, broken) = read(&deep, &[]);
        assert!(broken.unwrap().why.contains("128 levels"));
        for text in [
            &b"{\"a\": [1}"[..],
            b"{\"a\" 1}",
            b"{\"a\": 1",
            b"[1]",
            b"{\"a\":,}",
            b"",
        ] {
            assert!(
                read(text, &["a"]).1.is_some(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn a_large_value_is_skipped_not_kept() {
        let text = format!("{{\"version\": \"{}\"}}", "x".repeat(MAX_KEPT + 1));
        let (object, broken) = read(text.as_bytes(), &["version"]);
        assert_eq!(broken, None);
        assert_eq!(object.value("version"), None);
        assert!(object.keys.contains("version"));
    }
}
