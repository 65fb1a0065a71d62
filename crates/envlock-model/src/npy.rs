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

/// Why an array's header cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum HeaderError {
    /// The bytes end before the header does.
    #[error("the file ends inside the array's header")]
    Cut,
    /// A format version numpy does not write (it writes 1, 2 and 3).
    #[error("the array's format version {0} is not one numpy writes")]
    Version(u8),
    /// A header longer than [`MAX_HEADER`].
    #[error("the array's header is {0} bytes, more than {max}", max = MAX_HEADER)]
    TooLong(usize),
}

/// Bytes of the magic, the version and the header's length, at most.
pub(crate) const PREFIX: usize = 12;

/// The bytes up to the array's data, from the first [`PREFIX`] bytes: `None` when they do
/// not say (not an array, another version, a header too long).
pub(crate) fn length(prefix: &[u8]) -> Option<usize> {
    let (start, text_length) = bounds(prefix)?.ok()?;
    Some(start + text_length)
}

/// Where the header's text starts and how long it is, from the magic, the version and the
/// length field: `None` when `bytes` do not start as an array.
fn bounds(bytes: &[u8]) -> Option<Result<(usize, usize), HeaderError>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let &[major, _minor, ref rest @ ..] = rest else {
        return Some(Err(HeaderError::Cut));
    };
    let (text_length, start) = match (major, rest) {
        (1, [low, high, ..]) => (usize::from(u16::from_le_bytes([*low, *high])), 10),
        (2 | 3, [a, b, c, d, ..]) => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 12),
        (1..=3, _) => return Some(Err(HeaderError::Cut)),
        (major, _) => return Some(Err(HeaderError::Version(major))),
    };
    if text_length > MAX_HEADER {
        return Some(Err(HeaderError::TooLong(text_length)));
    }
    Some(Ok((start, text_length)))
}

/// The header of the `.npy` that `bytes` start with: `None` when they do not start as
/// one, an error when its header cannot be read from them (cut short, not text).
pub(crate) fn header(bytes: &[u8]) -> Option<Result<Header, HeaderError>> {
    let (start, text_length) = match bounds(bytes)? {
        Ok(bounds) => bounds,
        Err(why) => return Some(Err(why)),
    };
    let Some(text) = bytes.get(start..start + text_length) else {
        return Some(Err(HeaderError::Cut));
    };
    Some(Ok(Header {
        length: start + text_length,
        objects: holds_objects(text),
    }))
}

/// Whether a header's dtype may hold objects, failing closed: `numpy.load` builds the dtype
/// with `numpy.dtype(descr)` after `ast.literal_eval`, so `'object'`, `'O'` and a structured
/// dtype with an object field all do. A dtype is plain only when `descr` is a simple type
/// string (`'<f8'`, `'|b1'`, `'<U3'`, `'<M8[ns]'`, never `O`) or a list of fields, each
/// `(name, type[, shape])` with a plain type, as `numpy.lib.format` writes them; anything
/// else (another spelling, an escape, a dict, a header that does not parse) holds objects.
fn holds_objects(text: &[u8]) -> bool {
    let Some(Literal::Dict(entries)) = Parser::new(text).literal(0) else {
        return true;
    };
    let descr = entries.iter().find_map(|(key, value)| match key {
        Literal::Str(key) if key == "descr" => Some(value),
        _ => None,
    });
    descr.is_none_or(|descr| !plain_dtype(descr))
}

/// A dtype spec of plain types only.
fn plain_dtype(spec: &Literal) -> bool {
    match spec {
        Literal::Str(code) => plain_type(code),
        Literal::List(fields) => fields.iter().all(|field| match field {
            Literal::Tuple(parts) => match &parts[..] {
                [Literal::Str(_), spec] | [Literal::Str(_), spec, _] => plain_dtype(spec),
                _ => false,
            },
            _ => false,
        }),
        _ => false,
    }
}

/// A type string of one plain kind: a byte order, a kind that is not an object, a size, and
/// a datetime unit (`<M8[ns]`).
fn plain_type(code: &str) -> bool {
    let code = code.strip_prefix(['<', '>', '|', '=']).unwrap_or(code);
    let mut characters = code.chars();
    let Some(kind) = characters.next() else {
        return false;
    };
    let rest = characters.as_str();
    let (size, unit) = match rest.split_once('[') {
        Some((size, unit)) => (size, Some(unit)),
        None => (rest, None),
    };
    "?bBhHiIlLqQpPefdgFDGSUVmMuca".contains(kind)
        && size.chars().all(|character| character.is_ascii_digit())
        && unit.is_none_or(|unit| {
            (unit.strip_suffix(']')).is_some_and(|unit| {
                !unit.is_empty()
                    && unit
                        .chars()
                        .all(|character| character.is_ascii_alphanumeric())
            })
        })
}

/// A Python literal of a header, as far as the dtype check needs it.
#[derive(Debug)]
enum Literal {
    Str(String),
    List(Vec<Literal>),
    Tuple(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
    /// A number, `True`, `False`, `None`.
    Other,
}

/// Reads the literals `numpy.lib.format` writes: dicts, lists, tuples, strings without
/// escapes, numbers and names; `None` for anything else (which the caller fails closed on).
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a [u8]) -> Parser<'a> {
        Parser { text, at: 0 }
    }

    fn skip_spaces(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_spaces();
        let ate = self.text.get(self.at) == Some(&byte);
        self.at += usize::from(ate);
        ate
    }

    fn literal(&mut self, depth: u32) -> Option<Literal> {
        /// Nesting of a header's literal (numpy's own are three deep).
        const MAX_DEPTH: u32 = 32;
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_spaces();
        let first = *self.text.get(self.at)?;
        match first {
            b'\'' | b'"' => {
                let start = self.at + 1;
                let length = self.text[start..].iter().position(|&byte| byte == first)?;
                let text = &self.text[start..start + length];
                self.at = start + length + 1;
                // An escape could spell any type: fail closed.
                (!text.contains(&b'\\'))
                    .then(|| String::from_utf8(text.to_vec()).ok().map(Literal::Str))
                    .flatten()
            }
            b'{' => {
                self.at += 1;
                let mut entries = Vec::new();
                while !self.eat(b'}') {
                    let key = self.literal(depth + 1)?;
                    if !self.eat(b':') {
                        return None;
                    }
                    entries.push((key, self.literal(depth + 1)?));
                    if !self.eat(b',') && !self.eat(b'}') {
                        return None;
                    } else if self.text.get(self.at - 1) == Some(&b'}') {
                        break;
                    }
                }
                Some(Literal::Dict(entries))
            }
            b'[' | b'(' => {
                let close = if first == b'[' { b']' } else { b')' };
                self.at += 1;
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.literal(depth + 1)?);
                    if !self.eat(b',') && !self.eat(close) {
                        return None;
                    } else if self.text.get(self.at - 1) == Some(&close) {
                        break;
                    }
                }
                Some(if first == b'[' {
                    Literal::List(items)
                } else {
                    Literal::Tuple(items)
                })
            }
            _ => {
                let length = self.text[self.at..]
                    .iter()
                    .position(|byte| !(byte.is_ascii_alphanumeric() || b"+-._".contains(byte)))
                    .unwrap_or(self.text.len() - self.at);
                (length > 0).then(|| {
                    self.at += length;
                    Literal::Other
                })
            }
        }
    }
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
            // Other spellings `numpy.dtype` takes.
            "{'descr': 'object', 'fortran_order': False, 'shape': (1,), }",
            "{'descr': '\\x4f', 'fortran_order': False, 'shape': (1,), }",
            "{'descr': {'names': ['a'], 'formats': ['O']}, 'shape': (1,), }",
            "{'fortran_order': False, 'shape': (1,), }",
            "not a dict",
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
            "{'descr': '<M8[ns]', 'fortran_order': True, 'shape': (2, 3), }    \n",
            "{'descr': [('x', '<f4', (2,)), ('y', [('z', '|b1')])], 'fortran_order': False, 'shape': (), }",
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

    /// The sentences a report shows for a header that cannot be read.
    #[test]
    fn header_errors_say_why() {
        let whole = npy("{'descr': '|O'}");
        let error = |bytes: &[u8]| header(bytes).unwrap().unwrap_err().to_string();
        assert_eq!(
            error(&whole[..whole.len() - 1]),
            "the file ends inside the array's header"
        );
        let mut future = whole.clone();
        future[6] = 9;
        assert_eq!(
            error(&future),
            "the array's format version 9 is not one numpy writes"
        );
        let mut long = whole.clone();
        long[6] = 2;
        long.splice(8..10, [1, 0, 0x10, 0]);
        assert_eq!(
            error(&long),
            "the array's header is 1048577 bytes, more than 1048576"
        );
    }
}
