//! NumPy's `.npy` format, as `numpy.lib.format` writes it: the magic `\x93NUMPY`, the
//! format's major and minor version, the header's length (2 bytes little-endian in version
//! 1, 4 in versions 2 and 3), then the header, a Python dict literal (`{'descr': '<f8',
//! 'fortran_order': False, 'shape': (3,), }`) padded with spaces and ended by `\n`. An
//! array whose dtype holds objects (`'|O'`, alone or as a field of a structured dtype) is
//! written as a pickle after the header (`write_array` calls `pickle.dump`), which
//! `numpy.load` runs when allowed to (`allow_pickle=True`). `.npz` is a zip of these.

/// The magic every `.npy` starts with.
const MAGIC: &[u8] = b"\x93NUMPY";
/// Bytes of a header read: `numpy.load` refuses headers over 10,000 bytes by default
/// (`max_header_size`); a file may raise that, envlock does not read further.
const MAX_HEADER: usize = 1024 * 1024;

/// What an array's header says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    /// Bytes from the start of the file to the array's data.
    pub(crate) length: usize,
    /// Its dtype holds Python objects: the data is a pickle.
    pub(crate) objects: bool,
}

/// The header of the `.npy` that `bytes` start with: `None` when they do not start as
/// one, an error when its header cannot be read from them (cut short, not text).
pub(crate) fn header(bytes: &[u8]) -> Option<Result<Header, String>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let &[major, _minor, ref rest @ ..] = rest else {
        return Some(Err("the file ends inside the array's header".to_string()));
    };
    let (text_length, start) = match (major, rest) {
        (1, [low, high, ..]) => (usize::from(u16::from_le_bytes([*low, *high])), 10),
        (2 | 3, [a, b, c, d, ..]) => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 12),
        (1..=3, _) => return Some(Err("the file ends inside the array's header".to_string())),
        (major, _) => {
            return Some(Err(format!(
                "the array's format version {major} is not one numpy writes"
            )))
        }
    };
    if text_length > MAX_HEADER {
        return Some(Err(format!(
            "the array's header is {text_length} bytes, more than {MAX_HEADER}"
        )));
    }
    let Some(text) = bytes.get(start..start + text_length) else {
        return Some(Err("the file ends inside the array's header".to_string()));
    };
    Some(Ok(Header {
        length: start + text_length,
        objects: holds_objects(text),
    }))
}

/// Whether a header names the object type: a quoted `O` (with a byte order, `|O`, and a
/// size, `O8`) where a type stands, after `'descr':` or after a field's name in a
/// structured dtype (`('a', '|O')`), never as a field's name (`('O', '<f8')`).
fn holds_objects(text: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = text[at..].iter().position(|&byte| byte == b'O') {
        let index = at + found;
        at = index + 1;
        let mut start = index;
        if start > 0 && b"|<>=".contains(&text[start - 1]) {
            start -= 1;
        }
        let Some(quote) = start.checked_sub(1).map(|before| text[before]) else {
            continue;
        };
        if quote != b'\'' && quote != b'"' {
            continue;
        }
        let digits = text[index + 1..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if text.get(index + 1 + digits) != Some(&quote) {
            continue;
        }
        let before = text[..start - 1]
            .iter()
            .rev()
            .find(|byte| !byte.is_ascii_whitespace());
        if matches!(before, Some(b':' | b',')) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes
    }

    #[test]
    fn object_types_are_told_from_field_names() {
        let objects = [
            "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
            "{'descr': [('a', '<i8'), ('b', '|O')], 'fortran_order': False, 'shape': (2,), }",
            "{\"descr\": \"O\", 'shape': ()}",
        ];
        for text in objects {
            let header = header(&npy(text)).unwrap().unwrap();
            assert!(header.objects, "{text}");
            assert_eq!(header.length, 10 + text.len());
        }
        let plain = [
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            "{'descr': [('O', '<f8')], 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }",
        ];
        for text in plain {
            assert!(!header(&npy(text)).unwrap().unwrap().objects, "{text}");
        }
    }

    #[test]
    fn other_bytes_are_no_array_and_cut_headers_are_errors() {
        assert_eq!(header(b"\x80\x04."), None);
        let whole = npy("{'descr': '|O'}");
        for end in MAGIC.len()..whole.len() {
            assert!(header(&whole[..end]).unwrap().is_err(), "{end}");
        }
        let mut future = whole.clone();
        future[6] = 9;
        assert!(header(&future).unwrap().is_err());
    }
}
