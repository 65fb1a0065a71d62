//! The memo: PUT, BINPUT, LONG_BINPUT, MEMOIZE and the GETs, bounded by [`MAX_MEMO`]. A
//! list or dict in the memo is changed with the copy on the stack (`containers.rs`).

use super::{not_an_opcode, Failure, Machine, Step, MAX_MEMO, MAX_SLOTS};

impl Machine<'_> {
    /// The memo: GET and PUT.
    pub(super) fn memo_op(&mut self, op: u8) -> Step<()> {
        match op {
            b'g' => {
                let line = self.input.line()?;
                let index = index(&line, "GET")?;
                self.get(index)?;
            }
            b'h' => {
                let [index] = self.input.array()?;
                self.get(index.into())?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.input.array()?);
                self.get(index.into())?;
            }
            b'p' => {
                let line = self.input.line()?;
                let index = index(&line, "PUT")?;
                self.put(index)?;
            }
            b'q' => {
                let [index] = self.input.array()?;
                self.put(index.into())?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.input.array()?);
                self.put(index.into())?;
            }
            0x94 => {
                let index = self.memo.len() as u64;
                self.put(index)?;
            }
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    fn get(&mut self, index: u64) -> Step<()> {
        let value =
            self.memo.get(&index).cloned().ok_or_else(|| {
                Failure::new(format!("GET of memo entry {index}, which is not set"))
            })?;
        self.push(value)
    }

    fn put(&mut self, index: u64) -> Step<()> {
        // CPython's unpickler grows its memo to the index (twice it, 8 bytes an entry):
        // `LONG_BINPUT 0xfffffff0` asks for 64 GiB. Real pickles number their entries from 0.
        if index >= MAX_MEMO as u64 {
            return Err(Failure::new(format!(
                "a memo index of {index}, past {MAX_MEMO}: CPython's unpickler grows its memo \
                 to it (a pickle bomb)"
            )));
        }
        // Indices below the bound bound the entries too.
        let value = self.top()?.clone();
        if let Some(identity) = value.identity() {
            let mut slots = identity.slots.borrow_mut();
            if slots.len() < MAX_SLOTS && !slots.contains(&index) {
                slots.push(index);
            }
        }
        self.memo.insert(index, value);
        Ok(())
    }
}

/// GET and PUT's decimal memo index.
fn index(line: &[u8], what: &str) -> Step<u64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .ok_or_else(|| Failure::new(format!("{what} has an index that is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;

    #[test]
    fn a_dict_changed_through_a_memo_copy_is_shared_as_in_python() {
        let head = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81";
        let i1 = dtype_bytes("|i1", &dtype_state(-1, 0));
        let mut state = b"}q\x00(X\x05\x00\x00\x00dtype".to_vec();
        state.extend_from_slice(&i1);
        state.extend_from_slice(
            b"X\x05\x00\x00\x00shapeK\x01\x85X\x05\x00\x00\x00orderX\x01\x00\x00\x00Cu",
        );
        // Filled, popped and fetched again from the memo: the memo holds the filled dict.
        let mut fetched = head.to_vec();
        fetched.extend_from_slice(&state);
        fetched.extend_from_slice(b"0h\x00b\x00.");
        assert!(clean(&fetched).joblib);
        // Changed again through the memo's copy (`shape` 1000), which Python's wrapper
        // shares: the copy BUILD is handed misses it, and the array cannot be read.
        let mut aliased = head.to_vec();
        aliased.extend_from_slice(&state);
        aliased.extend_from_slice(b"h\x00(X\x05\x00\x00\x00shapeM\xe8\x03\x85u0b");
        aliased.extend_from_slice(&data_then_payload());
        assert!(scan_bytes(&aliased).unreadable.is_some());
        // A list given `eval` through one copy, handed to a call through another.
        let list = scan_bytes(b"\x80\x02cbuiltins\nset\n]q\x00h\x00(cbuiltins\neval\ne0\x85R.");
        assert_eq!(
            calls(&list),
            BTreeSet::from(["builtins.eval", "builtins.set"])
        );
    }

    #[test]
    fn memo_bombs_are_bounded() {
        // Each tuple holds the previous one twice: 2^100000 leaves, built in linear time.
        let mut laughs = b"\x80\x04]\x94".to_vec();
        for index in 0..100_000u32 {
            laughs.push(b'j');
            laughs.extend_from_slice(&index.to_le_bytes());
            laughs.push(b'j');
            laughs.extend_from_slice(&index.to_le_bytes());
            laughs.extend_from_slice(b"\x86\x94");
        }
        laughs.push(b'.');
        clean(&laughs);
        // More memo entries than the bound: the last index is at it.
        let mut entries = b"\x80\x02N".to_vec();
        for index in 0..=MAX_MEMO as u32 {
            entries.push(b'r');
            entries.extend_from_slice(&index.to_le_bytes());
        }
        entries.push(b'.');
        let (_, why) = scan_bytes(&entries).unreadable.expect("unreadable");
        assert!(why.contains("memo index of 4194304"), "{why}");
        // One index CPython would grow its memo to: 64 GiB.
        let (_, why) = scan_bytes(b"\x80\x02Nr\xf0\xff\xff\xff.")
            .unreadable
            .expect("bomb");
        assert!(why.contains("pickle bomb"), "{why}");
    }
}
