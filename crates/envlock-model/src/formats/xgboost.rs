//! XGBoost models saved as JSON or UBJ (`Booster.save_model`): an object whose keys come
//! sorted, `learner` (the trees, which can be hundreds of MB) and then `version`, the
//! XGBoost that wrote it as `[major, minor, patch]`.
//!
//! UBJ (Universal Binary JSON) as XGBoost writes it: an object is `{`, then each key as a
//! length (a typed integer: `L` and 8 big-endian bytes) and its bytes with no `S` marker,
//! then its value, then `}`; numeric arrays are optimised (`[$d#L<count>` and the
//! big-endian values, no markers), other arrays counted (`[#L<count>`) or not.

use super::json;
use super::stream::{Broken, Stream};

/// Nesting of UBJ containers skipped (XGBoost nests about eight levels).
const MAX_DEPTH: usize = 128;
/// Bytes of a UBJ key kept to compare (longer keys are skipped).
const MAX_KEY: u64 = 1024;
/// Numbers of a version kept (XGBoost writes three).
const MAX_VERSION_PARTS: usize = 4;

/// Whether `head` starts as XGBoost's JSON does: an object whose first key is `learner`.
pub(crate) fn sniff_json(head: &[u8]) -> bool {
    let text = trim_start(head);
    let Some(text) = text.strip_prefix(b"{") else {
        return false;
    };
    trim_start(text).starts_with(b"\"learner\"")
}

/// Whether `head` starts as XGBoost's UBJ does: `{` and the key `learner`, its length an
/// integer of any UBJ width.
pub(crate) fn sniff_ubj(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"{") else {
        return false;
    };
    let mut reader = rest;
    let mut stream = Stream::new(&mut reader);
    let Ok(marker) = stream.byte() else {
        return false;
    };
    let Ok(7) = integer(&mut stream, marker) else {
        return false;
    };
    let start = rest.len() - reader.len();
    rest.get(start..start + 7) == Some(b"learner")
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = (bytes.iter())
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The XGBoost version of a JSON model, and whether it was read to its end.
pub(crate) fn read_json(stream: &mut Stream) -> (Option<String>, Option<Broken>) {
    let mut object = json::Object::default();
    let broken = json::object(stream, &["version"], &mut object).err();
    let version = object.value("version").and_then(|version| {
        let parts = version.as_array()?;
        let parts: Option<Vec<u64>> = parts.iter().map(serde_json::Value::as_u64).collect();
        joined(&parts?)
    });
    (version, broken)
}

/// The XGBoost version of a UBJ model, and whether it was read to its end.
pub(crate) fn read_ubj(stream: &mut Stream) -> (Option<String>, Option<Broken>) {
    let mut version = None;
    let broken = top_level(stream, &mut version).err();
    (version, broken)
}

fn joined(parts: &[u64]) -> Option<String> {
    if parts.is_empty() || parts.len() > MAX_VERSION_PARTS {
        return None;
    }
    let parts: Vec<String> = parts.iter().map(u64::to_string).collect();
    Some(parts.join("."))
}

/// The top-level UBJ object, to its `}`; `version` set when its key is read.
fn top_level(stream: &mut Stream, version: &mut Option<String>) -> Result<(), Broken> {
    if stream.byte()? != b'{' {
        return Err(stream.broken("the file is not a UBJ object"));
    }
    loop {
        let marker = stream.byte()?;
        if marker == b'}' {
            return Ok(());
        }
        if marker == b'N' {
            continue;
        }
        let length = length(stream, marker)?;
        let key = if length <= MAX_KEY {
            Some(stream.bytes(length as usize)?)
        } else {
            stream.skip(length)?;
            None
        };
        let marker = stream.byte()?;
        if key.as_deref() == Some(b"version") && marker == b'[' {
            let parts = integers(stream)?;
            *version = parts.and_then(|parts| joined(&parts));
        } else {
            skip(stream, marker, 1)?;
        }
    }
}

/// A UBJ integer after its `marker`.
fn integer(stream: &mut Stream, marker: u8) -> Result<i64, Broken> {
    Ok(match marker {
        b'i' => i64::from(i8::from_be_bytes(stream.array()?)),
        b'U' => i64::from(stream.byte()?),
        b'I' => i64::from(i16::from_be_bytes(stream.array()?)),
        b'l' => i64::from(i32::from_be_bytes(stream.array()?)),
        b'L' => i64::from_be_bytes(stream.array()?),
        _ => return Err(stream.broken(format!("UBJ marker {marker:#04x} is not an integer's"))),
    })
}

/// A UBJ length or count (a non-negative integer) after its `marker`.
fn length(stream: &mut Stream, marker: u8) -> Result<u64, Broken> {
    let value = integer(stream, marker)?;
    u64::try_from(value).map_err(|_| stream.broken(format!("a UBJ length is negative ({value})")))
}

/// Bytes of a value of fixed size after its `marker`, or `None` for the others.
fn fixed_size(marker: u8) -> Option<u64> {
    match marker {
        b'Z' | b'N' | b'T' | b'F' => Some(0),
        b'i' | b'U' | b'C' => Some(1),
        b'I' => Some(2),
        b'l' | b'd' => Some(4),
        b'L' | b'D' => Some(8),
        _ => None,
    }
}

/// Skips the value after its `marker`, `depth` containers deep.
fn skip(stream: &mut Stream, marker: u8, depth: usize) -> Result<(), Broken> {
    if let Some(size) = fixed_size(marker) {
        return stream.skip(size);
    }
    match marker {
        b'S' | b'H' => {
            let marker = stream.byte()?;
            let length = length(stream, marker)?;
            stream.skip(length)
        }
        b'[' | b'{' => container(stream, marker == b'{', depth),
        _ => Err(stream.broken(format!("UBJ marker {marker:#04x} is not a value's"))),
    }
}

/// The element type and count of a container (`$` and `#`), when it says them.
fn container_header(stream: &mut Stream) -> Result<(Option<u8>, Option<u64>), Broken> {
    let mut element = None;
    if stream.peek()? == Some(b'$') {
        stream.byte()?;
        element = Some(stream.byte()?);
        if stream.peek()? != Some(b'#') {
            return Err(stream.broken("a typed UBJ container has no count"));
        }
    }
    let mut count = None;
    if stream.peek()? == Some(b'#') {
        stream.byte()?;
        let marker = stream.byte()?;
        count = Some(length(stream, marker)?);
    }
    Ok((element, count))
}

/// Skips a container after its `[` or `{`.
fn container(stream: &mut Stream, object: bool, depth: usize) -> Result<(), Broken> {
    if depth > MAX_DEPTH {
        return Err(stream.broken(format!("the UBJ nests more than {MAX_DEPTH} levels deep")));
    }
    let (element, count) = container_header(stream)?;
    if let (Some(size), Some(count), false) = (element.and_then(fixed_size), count, object) {
        let Some(bytes) = count.checked_mul(size) else {
            return Err(stream.broken("a UBJ array is larger than any file"));
        };
        return stream.skip(bytes);
    }
    let close = if object { b'}' } else { b']' };
    let mut left = count;
    loop {
        if left == Some(0) {
            return Ok(());
        }
        if object {
            let marker = stream.byte()?;
            if left.is_none() && marker == close {
                return Ok(());
            }
            if left.is_none() && marker == b'N' {
                continue;
            }
            let length = length(stream, marker)?;
            stream.skip(length)?;
        }
        let marker = match element {
            Some(element) => element,
            None => stream.byte()?,
        };
        if left.is_none() && !object && marker == close {
            return Ok(());
        }
        skip(stream, marker, depth + 1)?;
        left = left.map(|left| left - 1);
    }
}

/// The integers of a UBJ array after its `[` (`None` when it holds anything else or more
/// than a version has), read to its end either way.
fn integers(stream: &mut Stream) -> Result<Option<Vec<u64>>, Broken> {
    let (element, count) = container_header(stream)?;
    let mut parts = Some(Vec::new());
    let mut left = count;
    loop {
        if left == Some(0) {
            return Ok(parts);
        }
        let marker = match element {
            Some(element) => element,
            None => stream.byte()?,
        };
        if left.is_none() && marker == b']' {
            return Ok(parts);
        }
        if fixed_size(marker).is_some() && !matches!(marker, b'i' | b'U' | b'I' | b'l' | b'L') {
            skip(stream, marker, 1)?;
            parts = None;
        } else if matches!(marker, b'i' | b'U' | b'I' | b'l' | b'L') {
            let value = u64::try_from(integer(stream, marker)?).ok();
            parts = match (parts, value) {
                (Some(mut parts), Some(value)) if parts.len() < MAX_VERSION_PARTS => {
                    parts.push(value);
                    Some(parts)
                }
                _ => None,
            };
        } else {
            skip(stream, marker, 2)?;
            parts = None;
        }
        left = left.map(|left| left - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = include_bytes!("../../../../fixtures/models/formats/xgboost.json");
    const UBJ: &[u8] = include_bytes!("../../../../fixtures/models/formats/xgboost.ubj");

    fn ubj(bytes: &[u8]) -> (Option<String>, Option<Broken>) {
        let mut reader = bytes;
        read_ubj(&mut Stream::new(&mut reader))
    }

    #[test]
    fn real_models_give_the_xgboost_version() {
        assert!(sniff_json(JSON) && sniff_ubj(UBJ));
        assert!(!sniff_json(UBJ) && !sniff_ubj(JSON));
        let mut reader = JSON;
        assert_eq!(
            read_json(&mut Stream::new(&mut reader)),
            (Some("3.2.0".to_string()), None)
        );
        assert_eq!(ubj(UBJ), (Some("3.2.0".to_string()), None));
    }

    #[test]
    fn typed_and_counted_containers_are_skipped() {
        let mut model = b"{L\0\0\0\0\0\0\0\x07learner{".to_vec();
        // A typed array of 3 float32, an unsized array, a counted object, a string.
        model.extend(b"i\x01a[$d#i\x03");
        model.extend([0u8; 12]);
        model.extend(b"i\x01b[iZSi\x02hi]i\x01c{#U\x01i\x01k[$S#i\x01i\x02ab");
        model.extend(b"}i\x07version[$U#i\x03\x01\x02\x03}");
        assert_eq!(ubj(&model), (Some("1.2.3".to_string()), None));
    }

    #[test]
    fn hostile_ubj_stops_without_panicking() {
        let deep = [b"{i\x01a".as_slice(), &[b'['; 300]].concat();
        assert!(ubj(&deep).1.unwrap().why.contains("levels deep"));
        let huge = b"{i\x01a[$D#L\x7f\xff\xff\xff\xff\xff\xff\xff}";
        assert!(ubj(huge).1.is_some());
        let negative = b"{i\xffa";
        assert!(ubj(negative).1.unwrap().why.contains("negative"));
        assert!(ubj(b"{i\x01aX}").1.is_some());
    }

    #[test]
    fn every_truncation_of_the_real_models_stops_cleanly() {
        for end in 0..UBJ.len() {
            let (version, broken) = ubj(&UBJ[..end]);
            assert!(broken.is_some(), "{end}");
            assert!(version.is_none() || end > UBJ.len() - 20);
        }
        for end in 0..JSON.len() {
            let mut reader = &JSON[..end];
            assert!(read_json(&mut Stream::new(&mut reader)).1.is_some());
        }
    }
}
