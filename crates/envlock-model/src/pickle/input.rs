//! The bytes of the pickle as the machine consumes them: opcodes, their fixed-size and
//! declared-length arguments, protocol 0 lines, all bounded by what the file can hold.

use std::io::{self, BufRead};

use super::{Failure, Step, BLOCK, MAX_LINE};

/// The bytes of the pickle, with what was consumed of them.
pub(super) struct Input<'a> {
    reader: &'a mut dyn BufRead,
    /// Bytes consumed since the scan began.
    pub(super) read: u64,
    /// What the file holds from where the scan began (`u64::MAX`: unknown).
    size: u64,
    /// The block large payloads are read through, allocated on first use.
    block: Vec<u8>,
}

impl<'a> Input<'a> {
    /// The `size` bytes `reader` yields (`u64::MAX`: unknown), none read yet.
    pub(super) fn new(reader: &'a mut dyn BufRead, size: u64) -> Input<'a> {
        Input {
            reader,
            read: 0,
            size,
            block: Vec::new(),
        }
    }

    /// What is left of the file.
    fn left(&self) -> u64 {
        self.size.saturating_sub(self.read)
    }

    /// Fails when `length` bytes are declared but the file cannot hold them.
    pub(super) fn declared(&self, length: u64, what: &str) -> Step<()> {
        if length > self.left() {
            return Err(Failure {
                why: format!(
                    "{what} declares {length} bytes, more than the {} left in the file",
                    self.left()
                ),
                // What `sniff` accepts: the head it reads is not the whole file.
                end_of_input: true,
            });
        }
        Ok(())
    }

    fn fill(&mut self) -> Step<&[u8]> {
        loop {
            match self.reader.fill_buf() {
                Ok(_) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(Failure::new(format!("cannot read the stream: {error}"))),
            }
        }
        // Filled above: this returns what is buffered without reading.
        self.reader
            .fill_buf()
            .map_err(|error| Failure::new(format!("cannot read the stream: {error}")))
    }

    pub(super) fn ended() -> Failure {
        Failure {
            why: "the stream ends before STOP".to_string(),
            end_of_input: true,
        }
    }

    /// The next byte, or `None` at the end of the stream.
    pub(super) fn byte(&mut self) -> Step<Option<u8>> {
        let Some(&byte) = self.fill()?.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        self.read += 1;
        Ok(Some(byte))
    }

    /// The next `N` bytes (an opcode's fixed-size argument).
    pub(super) fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut out = [0u8; N];
        let mut filled = 0;
        while filled < N {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                return Err(Input::ended());
            }
            let amount = buffer.len().min(N - filled);
            out[filled..filled + amount].copy_from_slice(&buffer[..amount]);
            self.reader.consume(amount);
            self.read += amount as u64;
            filled += amount;
        }
        Ok(out)
    }

    /// Reads `length` declared bytes: their content when at most `keep` bytes, else reads
    /// through them (never allocating a declared length).
    pub(super) fn take(&mut self, length: u64, keep: usize, what: &str) -> Step<Option<Vec<u8>>> {
        self.declared(length, what)?;
        if length <= keep as u64 {
            let mut out = Vec::with_capacity(length as usize);
            while out.len() < length as usize {
                let buffer = self.fill()?;
                if buffer.is_empty() {
                    return Err(Input::ended());
                }
                let amount = buffer.len().min(length as usize - out.len());
                out.extend_from_slice(&buffer[..amount]);
                self.reader.consume(amount);
                self.read += amount as u64;
            }
            return Ok(Some(out));
        }
        self.skip(length)?;
        Ok(None)
    }

    /// Reads through `length` bytes.
    pub(super) fn skip(&mut self, length: u64) -> Step<()> {
        let mut left = length;
        while left > 0 {
            if left >= BLOCK as u64 {
                if self.block.is_empty() {
                    self.block = vec![0; BLOCK];
                }
                let got = loop {
                    match self.reader.read(&mut self.block) {
                        Ok(got) => break got,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            return Err(Failure::new(format!("cannot read the stream: {error}")))
                        }
                    }
                };
                if got == 0 {
                    return Err(Input::ended());
                }
                left -= got as u64;
                self.read += got as u64;
            } else {
                let buffer = self.fill()?;
                if buffer.is_empty() {
                    return Err(Input::ended());
                }
                let amount = (buffer.len() as u64).min(left) as usize;
                self.reader.consume(amount);
                self.read += amount as u64;
                left -= amount as u64;
            }
        }
        Ok(())
    }

    /// A protocol 0 line, without its newline.
    pub(super) fn line(&mut self) -> Step<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                return Err(Input::ended());
            }
            let (amount, done) = match memchr::memchr(b'\n', buffer) {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            };
            let wanted = if done { amount - 1 } else { amount };
            if out.len() + wanted > MAX_LINE {
                return Err(Failure::new(format!(
                    "a protocol 0 line longer than {MAX_LINE} bytes"
                )));
            }
            out.extend_from_slice(&buffer[..wanted]);
            self.reader.consume(amount);
            self.read += amount as u64;
            if done {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pickle::testing::*;

    #[test]
    fn declared_lengths_beyond_the_file_are_unreadable_at_once() {
        let bytes = b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff";
        let scan = scan_bytes(bytes);
        let (offset, why) = scan.unreadable.expect("unreadable");
        assert_eq!(offset, 2);
        assert!(
            why.contains("BINBYTES8 declares 18446744073709551615 bytes"),
            "{why}"
        );
        for bytes in [
            b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x01\x00N.".as_slice(),
            b"\x80\x05\x96\x00\x00\x00\x00\x00\x00\x01\x00.",
            b"\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x01\x00.",
            b"\x80\x02\x8b\xff\xff\xff\x7f.",
            b"\x80\x02T\xff\xff\xff\xff.",
        ] {
            assert!(scan_bytes(bytes).unreadable.is_some(), "{bytes:?}");
        }
        // An unknown size reads on and finds the end instead.
        let mut reader = bytes.as_slice();
        let unknown = crate::pickle::scan(&mut reader, u64::MAX, Context::File);
        assert!(unknown.unreadable.is_some());
    }
}
