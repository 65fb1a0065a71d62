//! safetensors files: an 8-byte little-endian length N, a JSON header of N bytes (each
//! tensor's `dtype`, `shape` and `data_offsets` `[begin, end]` into the data that
//! follows, and an optional `__metadata__` of strings), then the tensors' bytes. Nothing
//! in it is code or names a module: loading it imports nothing.

use serde_json::Value;

use super::stream::{Broken, Stream};

/// Bytes of a header read: safetensors itself refuses headers over 100 MB.
pub(crate) const MAX_HEADER: u64 = 100 * 1000 * 1000;

/// Whether `head` starts as a safetensors file does: a header length within bounds, then
/// the header's `{`.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let Some((length, rest)) = head.split_first_chunk::<8>() else {
        return false;
    };
    let length = u64::from_le_bytes(*length);
    (2..=MAX_HEADER).contains(&length) && rest.first() == Some(&b'{')
}

/// Reads the header of a file of `size` bytes: `Ok(true)` when it is a valid safetensors
/// header whose tensors fit in the file.
pub(crate) fn read(stream: &mut Stream, size: u64) -> Result<bool, Broken> {
    let length = u64::from_le_bytes(stream.array()?);
    let Some(data) = size
        .checked_sub(8)
        .and_then(|rest| rest.checked_sub(length))
    else {
        return Ok(false);
    };
    if length > MAX_HEADER {
        return Ok(false);
    }
    let header = stream.bytes(length as usize)?;
    // serde_json stops at 128 levels of nesting.
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header) else {
        return Ok(false);
    };
    Ok(header.iter().all(|(name, value)| match name.as_str() {
        "__metadata__" => value
            .as_object()
            .is_some_and(|metadata| metadata.values().all(Value::is_string)),
        _ => tensor_fits(value, data),
    }))
}

/// Whether a tensor's entry is well formed and its bytes lie within the `data` bytes.
fn tensor_fits(tensor: &Value, data: u64) -> bool {
    let dtype = tensor.get("dtype").and_then(Value::as_str);
    let shape = (tensor.get("shape").and_then(Value::as_array))
        .is_some_and(|shape| shape.iter().all(Value::is_u64));
    let offsets = tensor.get("data_offsets").and_then(Value::as_array);
    let fits = match offsets.map(Vec::as_slice) {
        Some([begin, end]) => match (begin.as_u64(), end.as_u64()) {
            (Some(begin), Some(end)) => begin <= end && end <= data,
            _ => false,
        },
        _ => false,
    };
    dtype.is_some() && shape && fits
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &[u8] = include_bytes!("../../../../fixtures/models/formats/tiny.safetensors");

    fn valid(bytes: &[u8], size: u64) -> Result<bool, Broken> {
        let mut reader = bytes;
        read(&mut Stream::new(&mut reader), size)
    }

    #[test]
    fn a_real_file_is_valid() {
        assert!(sniff(TINY));
        assert_eq!(valid(TINY, TINY.len() as u64), Ok(true));
    }

    #[test]
    fn offsets_past_the_end_and_huge_lengths_are_not_safetensors() {
        // The real file's data cut short: its tensors no longer fit.
        assert_eq!(valid(TINY, TINY.len() as u64 - 1), Ok(false));
        let mut huge = (1u64 << 63).to_le_bytes().to_vec();
        huge.extend(b"{}");
        assert!(!sniff(&huge));
        assert_eq!(valid(&huge, u64::MAX), Ok(false));
        assert_eq!(valid(&huge, huge.len() as u64), Ok(false));
        let mut wrong = 2u64.to_le_bytes().to_vec();
        wrong.extend(b"[]");
        assert_eq!(valid(&wrong, wrong.len() as u64), Ok(false));
        assert!(valid(&TINY[..20], TINY.len() as u64).is_err());
    }
}
