//! What the tests of every family share: scanning bytes, and writing joblib's wrappers.

pub(super) use super::{scan, sniff, Context, Scan};
pub(super) use std::collections::BTreeSet;

pub(super) fn scan_bytes(bytes: &[u8]) -> Scan {
    let mut reader = bytes;
    scan(&mut reader, bytes.len() as u64, Context::File)
}

pub(super) fn calls(scan: &Scan) -> BTreeSet<&str> {
    scan.unsafe_calls
        .iter()
        .map(|call| call.call.as_str())
        .collect()
}

pub(super) fn names(scan: &Scan, module: &str, name: &str) -> bool {
    scan.globals
        .contains(&(module.to_string(), name.to_string()))
}

/// A benign file: read to STOP, nothing unsafe.
pub(super) fn clean(bytes: &[u8]) -> Scan {
    let scan = scan_bytes(bytes);
    assert_eq!(scan.unreadable, None);
    assert_eq!(scan.unsafe_calls, vec![]);
    scan
}

/// `numpy.dtype(code, False, True)` given `state` by BUILD.
pub(super) fn dtype_bytes(code: &str, state: &[u8]) -> Vec<u8> {
    let mut bytes = b"cnumpy\ndtype\nX".to_vec();
    bytes.extend_from_slice(&(code.len() as u32).to_le_bytes());
    bytes.extend_from_slice(code.as_bytes());
    bytes.extend_from_slice(b"\x89\x88\x87R");
    bytes.extend_from_slice(state);
    bytes.push(b'b');
    bytes
}

/// A dtype's state `(3, '<', None, None, None, elsize, -1, flags)`.
pub(super) fn dtype_state(elsize: i32, flags: u8) -> Vec<u8> {
    let mut bytes = b"(K\x03X\x01\x00\x00\x00<NNNJ".to_vec();
    bytes.extend_from_slice(&elsize.to_le_bytes());
    bytes.extend_from_slice(b"J\xff\xff\xff\xffK");
    bytes.push(flags);
    bytes.push(b't');
    bytes
}

/// A joblib `NumpyArrayWrapper` of `dtype` and shape `(count,)`, then `after` (the raw
/// array bytes and the rest of the pickle).
pub(super) fn wrapper(dtype: &[u8], count: u8, after: &[u8]) -> Vec<u8> {
    let mut bytes =
        b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x05\x00\x00\x00dtype".to_vec();
    bytes.extend_from_slice(dtype);
    bytes.extend_from_slice(b"X\x05\x00\x00\x00shapeK");
    bytes.push(count);
    bytes.extend_from_slice(b"\x85X\x05\x00\x00\x00orderX\x01\x00\x00\x00Cub");
    bytes.extend_from_slice(after);
    bytes
}

/// Eight bytes of array data, `os.system('id')`, then enough `None`, POP to be skipped
/// by a scan that reads up to 100 bytes of array, and STOP.
pub(super) fn data_then_payload() -> Vec<u8> {
    let mut after = vec![0u8; 8];
    after.extend_from_slice(b"cos\nsystem\nX\x02\x00\x00\x00id\x85R0");
    while after.len() < 120 {
        after.extend_from_slice(b"N0");
    }
    after.push(b'.');
    after
}
