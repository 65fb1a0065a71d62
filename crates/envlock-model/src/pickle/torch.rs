//! What is torch's own: the legacy `torch.save` stream (torch < 1.6, five pickles back to
//! back), persistent ids (its storages), and TorchScript's classes.

use std::io::BufRead;

use super::{not_an_opcode, Context, Counted, Machine, Scan, Step, Value};

/// The legacy torch file's first pickle: `torch.serialization.MAGIC_NUMBER`.
pub(super) const TORCH_MAGIC: i128 = 0x1950a86a20f9469cfc6c;

/// Reads a legacy `torch.save` file (torch < 1.6): five pickles back to back (the magic
/// number, the protocol version, the system info, the object with persistent ids naming
/// its storages, the storage keys), then the storages' raw bytes, which are not pickle.
/// Offsets are from the start of the file.
pub(crate) fn scan_legacy_torch(reader: &mut dyn BufRead, size: u64) -> Scan {
    let mut all = Scan::default();
    let mut start = 0u64;
    for index in 0..5 {
        let context = if index == 3 {
            Context::Torch
        } else {
            Context::File
        };
        let mut counted = Counted {
            inner: &mut *reader,
            read: 0,
        };
        let scan = super::scan(&mut counted, size.saturating_sub(start), context);
        let read = counted.read;
        if index == 0 {
            all.legacy_torch = scan.legacy_torch;
        }
        let broken = scan.unreadable.is_some();
        all.absorb(scan, start);
        if broken {
            break;
        }
        start += read;
    }
    all
}

impl Machine<'_> {
    /// Persistent ids (PERSID, BINPERSID): torch's storages.
    pub(super) fn persistent_load(&mut self, op: u8) -> Step<()> {
        match op {
            b'P' => {
                self.input.line()?;
                self.persistent_id();
                self.push(Value::Opaque)?;
            }
            b'Q' => {
                self.pop()?;
                self.persistent_id();
                self.push(Value::Opaque)?;
            }
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    fn persistent_id(&mut self) {
        self.scan.persistent_ids += 1;
    }
}

/// A TorchScript class (`__torch__.Net`), which torch's own unpickler builds from the
/// archive's compiled `code/`: no Python module is imported for it, and its `__setstate__`
/// is TorchScript, which cannot reach Python.
pub(super) fn is_torchscript_class(module: &str) -> bool {
    module == "__torch__" || module.starts_with("__torch__.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;

    /// A legacy `torch.save` file: five pickles, then raw storage bytes.
    fn legacy_torch_file(object: &[u8]) -> Vec<u8> {
        let mut file = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
        file.extend_from_slice(b"\x80\x02M\xe9\x03.");
        file.extend_from_slice(b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s.");
        file.extend_from_slice(object);
        file.extend_from_slice(b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.");
        file.extend_from_slice(&[0u8; 64]);
        file
    }

    #[test]
    fn legacy_torch_files() {
        let object = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.";
        let file = legacy_torch_file(object);
        assert!(scan_bytes(&file).legacy_torch);
        let mut reader = file.as_slice();
        let scan = scan_legacy_torch(&mut reader, file.len() as u64);
        assert!(scan.legacy_torch);
        assert_eq!(scan.unreadable, None);
        assert_eq!(scan.unsafe_calls, vec![]);
        assert_eq!(scan.persistent_ids, 1);
        assert!(names(&scan, "torch", "FloatStorage"));
        assert_eq!(reader.len(), 64);
        let hostile = legacy_torch_file(fixture!("hostile-os-system-p2.pkl"));
        let mut reader = hostile.as_slice();
        let scan = scan_legacy_torch(&mut reader, hostile.len() as u64);
        assert_eq!(calls(&scan), BTreeSet::from(["os.system"]));
        // Offsets are the file's: the object pickle starts after the first three.
        let payload = fixture!("hostile-os-system-p2.pkl");
        let start = hostile
            .windows(payload.len())
            .position(|window| window == payload)
            .expect("the object pickle");
        assert_eq!(scan.unsafe_calls[0].offset, start as u64 + 27);
    }
}
