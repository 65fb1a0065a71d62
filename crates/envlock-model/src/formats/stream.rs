//! A model file's bytes read once, in order, with the offset of each: the readers of every
//! format (and of zips) stop with the place and the reason when the bytes do not go on as
//! the format says.

use std::io::{self, BufRead, ErrorKind, Read};

/// Bytes skipped per read of data nothing looks at (a tensor, a tree): large reads keep the
/// calls into the caller's stream (a tar entry of an engine's archive) few.
const SKIP_BLOCK: usize = 1024 * 1024;

/// Why a reader stopped, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Broken {
    /// Offset in the file of the byte that did not fit.
    pub(crate) offset: u64,
    /// One phrase, lower case: "the file ends inside a string".
    pub(crate) why: String,
}

impl Broken {
    /// The sentence for `unsafe_where`: "byte 1234: the file ends inside a string".
    pub(crate) fn sentence(&self) -> String {
        format!("byte {}: {}", self.offset, self.why)
    }
}

/// The file's bytes, with the offset of the next one.
pub(crate) struct Stream<'a> {
    inner: &'a mut dyn BufRead,
    offset: u64,
    /// Allocated on the first skip, and only then.
    skip_buffer: Vec<u8>,
    /// Bytes read ahead and handed back ([`Stream::unread`]), served before `inner`'s from
    /// `unread_at` on: a reader that must look past a boundary it cannot know in advance
    /// (where a zip entry of unknown size ends) reads on, then returns what it overran.
    unread: Vec<u8>,
    unread_at: usize,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(inner: &'a mut dyn BufRead) -> Stream<'a> {
        Stream {
            inner,
            offset: 0,
            skip_buffer: Vec::new(),
            unread: Vec::new(),
            unread_at: 0,
        }
    }

    /// Hands `bytes`, the last ones read, back: they are read again next.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        let mut again = bytes.to_vec();
        again.extend_from_slice(&self.unread[self.unread_at..]);
        self.unread = again;
        self.unread_at = 0;
        self.offset -= bytes.len() as u64;
    }

    /// The next bytes, at most `length`, without consuming them (fewer only at the end).
    pub(crate) fn look_ahead(&mut self, length: usize) -> Result<Vec<u8>, Broken> {
        let ahead = self.up_to(length)?;
        self.unread(&ahead);
        Ok(ahead)
    }

    /// The next bytes, at most `length` (fewer only at the end).
    pub(crate) fn up_to(&mut self, length: usize) -> Result<Vec<u8>, Broken> {
        let mut ahead = Vec::with_capacity(length.min(1 << 20));
        while ahead.len() < length {
            let buffer = match self.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.failed(&error)),
            };
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min(length - ahead.len());
            ahead.extend_from_slice(&buffer[..take]);
            self.consume(take);
        }
        Ok(ahead)
    }

    /// Bytes handed back and not yet read again.
    fn pending(&self) -> &[u8] {
        &self.unread[self.unread_at..]
    }

    /// Offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// A stop here, for `why`.
    pub(crate) fn broken(&self, why: impl Into<String>) -> Broken {
        Broken {
            offset: self.offset,
            why: why.into(),
        }
    }

    /// The stop for an error of the stream: its end, or its failure (which the caller,
    /// hashing the same stream, reports as its own error).
    fn failed(&self, error: &io::Error) -> Broken {
        match error.kind() {
            ErrorKind::UnexpectedEof => self.broken("the file ends"),
            _ => self.broken(format!("the stream failed ({error})")),
        }
    }

    /// The next byte, or `None` at the end; nothing is consumed.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, Broken> {
        loop {
            match self.fill_buf() {
                Ok(buffer) => return Ok(buffer.first().copied()),
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.failed(&error)),
            }
        }
    }

    /// The next byte.
    pub(crate) fn byte(&mut self) -> Result<u8, Broken> {
        let [byte] = self.array()?;
        Ok(byte)
    }

    /// The next `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Broken> {
        let mut bytes = [0; N];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }

    /// Fills `bytes` from the stream.
    pub(crate) fn fill(&mut self, bytes: &mut [u8]) -> Result<(), Broken> {
        let start = self.offset;
        match Read::read_exact(self, bytes) {
            Ok(()) => Ok(()),
            Err(error) => {
                let mut broken = self.failed(&error);
                broken.offset = broken.offset.max(start);
                Err(broken)
            }
        }
    }

    /// The next `length` bytes, which the caller has bounded.
    pub(crate) fn bytes(&mut self, length: usize) -> Result<Vec<u8>, Broken> {
        let mut bytes = vec![0; length];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }

    /// Skips `length` bytes.
    pub(crate) fn skip(&mut self, mut length: u64) -> Result<(), Broken> {
        let pending = self
            .pending()
            .len()
            .min(usize::try_from(length).unwrap_or(usize::MAX));
        self.consume(pending);
        length -= pending as u64;
        if self.skip_buffer.is_empty() && length > 0 {
            self.skip_buffer = vec![0; SKIP_BLOCK];
        }
        while length > 0 {
            let block = usize::try_from(length).map_or(SKIP_BLOCK, |left| left.min(SKIP_BLOCK));
            let read = match self.inner.read(&mut self.skip_buffer[..block]) {
                Ok(0) => return Err(self.broken("the file ends")),
                Ok(read) => read,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.failed(&error)),
            };
            self.offset += read as u64;
            length -= read as u64;
        }
        Ok(())
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = if self.pending().is_empty() {
            self.inner.read(buffer)?
        } else {
            let pending = self.pending();
            let read = pending.len().min(buffer.len());
            buffer[..read].copy_from_slice(&pending[..read]);
            self.unread_at += read;
            read
        };
        self.offset += read as u64;
        Ok(read)
    }
}

impl BufRead for Stream<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.unread_at < self.unread.len() {
            return Ok(&self.unread[self.unread_at..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if self.unread_at < self.unread.len() {
            self.unread_at += amount;
            debug_assert!(self.unread_at <= self.unread.len());
        } else {
            self.inner.consume(amount);
        }
        self.offset += amount as u64;
    }
}

/// `text` as one printable line of at most `MAX_SHOWN` characters, for a sentence: a name
/// from a hostile file could otherwise print lines of its own and terminal escapes.
pub(crate) fn shown(text: &[u8]) -> String {
    /// Characters of a file's text shown in a sentence.
    const MAX_SHOWN: usize = 120;
    let text = String::from_utf8_lossy(text);
    let mut shown = String::new();
    for (index, character) in text.chars().enumerate() {
        if index == MAX_SHOWN {
            shown.push('…');
            break;
        }
        if character.is_control() {
            shown.extend(character.escape_default());
        } else {
            shown.push(character);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_and_counts_offsets() {
        let data = vec![7u8; 3 * SKIP_BLOCK + 5];
        let mut reader = &data[..];
        let mut stream = Stream::new(&mut reader);
        stream.skip(3 * SKIP_BLOCK as u64 + 1).unwrap();
        assert_eq!(stream.offset(), 3 * SKIP_BLOCK as u64 + 1);
        assert_eq!(stream.array::<2>().unwrap(), [7, 7]);
        assert_eq!(stream.peek().unwrap(), Some(7));
        let broken = stream.skip(10).unwrap_err();
        assert_eq!(broken.why, "the file ends");
        assert_eq!(stream.peek().unwrap(), None);
    }

    #[test]
    fn bytes_handed_back_are_read_again_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        let mut reader = &data[..];
        let mut stream = Stream::new(&mut reader);
        stream.skip(10).unwrap();
        let ahead = stream.look_ahead(20).unwrap();
        assert_eq!(ahead, data[10..30]);
        assert_eq!(stream.offset(), 10);
        let first = Stream::bytes(&mut stream, 25).unwrap();
        assert_eq!(first, data[10..35]);
        stream.unread(&first[20..]);
        assert_eq!(stream.offset(), 30);
        stream.skip(3).unwrap();
        assert_eq!(stream.array::<4>().unwrap(), [33, 34, 35, 36]);
        assert_eq!(stream.look_ahead(1000).unwrap().len(), 256 - 37);
    }

    #[test]
    fn a_short_read_says_where_the_file_ends() {
        let mut reader = &b"abc"[..];
        let mut stream = Stream::new(&mut reader);
        stream.byte().unwrap();
        let broken = stream.array::<4>().unwrap_err();
        assert_eq!(broken.sentence(), "byte 3: the file ends");
    }

    #[test]
    fn shown_names_are_one_printable_line() {
        assert_eq!(shown(b"a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(shown(&[b'x'; 200]).chars().count(), 121);
    }
}
