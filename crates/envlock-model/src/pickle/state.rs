//! BUILD's state: the versions estimators record, a `numpy.dtype`'s item size, and joblib's
//! inline arrays, whose raw bytes follow their `NumpyArrayWrapper` in the stream.

use std::cell::Cell;
use std::rc::Rc;

use super::value::Dtype;
use super::{Context, Failure, Machine, Outer, Step, Value};

impl Machine<'_> {
    /// BUILD: sets the state of the value on top.
    pub(super) fn build(&mut self, state: Value, offset: u64) -> Step<()> {
        let target = self.top()?.clone();
        match &target {
            Value::Object(class) => {
                self.record_versions(&state);
                let wrapper =
                    class.module == "joblib.numpy_pickle" && class.name == "NumpyArrayWrapper";
                let old_wrapper = class.name == "NDArrayWrapper"
                    && matches!(
                        class.module.as_str(),
                        "joblib.numpy_pickle" | "joblib.numpy_pickle_compat"
                    );
                if wrapper || old_wrapper {
                    self.scan.joblib = true;
                }
                if wrapper && self.context == Context::File && self.outer.is_none() {
                    self.joblib_array(&state)?;
                }
            }
            Value::Dtype(dtype) => complete_dtype(dtype, &state),
            Value::Global(_) => self.mutates(&target, "BUILD", offset),
            _ => {}
        }
        Ok(())
    }

    /// Versions estimators keep in their state.
    fn record_versions(&mut self, state: &Value) {
        let map = match state {
            Value::Dict(map) => map,
            Value::Tuple(seq) => match seq.items.first() {
                Some(Value::Dict(map)) => map,
                _ => return,
            },
            _ => return,
        };
        if let Some(Value::Str(version)) = map.get("_sklearn_version") {
            self.scan
                .written_by
                .insert("scikit-learn".to_string(), version.to_string());
        }
    }

    /// joblib's inline array after a `NumpyArrayWrapper` (joblib 1.x `read_array`): its raw
    /// bytes (after one padding-length byte and that many padding bytes, when the wrapper
    /// has `numpy_array_alignment_bytes`), or a nested pickle for an array of objects.
    fn joblib_array(&mut self, state: &Value) -> Step<()> {
        let fail = |what: &str| Failure::new(format!("a joblib `NumpyArrayWrapper` {what}"));
        let Value::Dict(map) = state else {
            return Err(fail("has a state that is not a dict"));
        };
        if map.unclear_keys {
            return Err(fail("has a state whose keys cannot all be read"));
        }
        if map.identity.stale() {
            return Err(fail(
                "has a state that changed through another reference to it",
            ));
        }
        let Some(Value::Dtype(dtype)) = map.get("dtype") else {
            return Err(fail("has no `numpy.dtype`"));
        };
        let dtype = dtype.clone();
        let Some(shape) = map.get("shape").and_then(Value::whole_tuple) else {
            return Err(fail("has no shape"));
        };
        let mut count: u64 = 1;
        for dimension in shape {
            let Value::Int(dimension) = dimension else {
                return Err(fail("has a shape that is not integers"));
            };
            let dimension =
                u64::try_from(*dimension).map_err(|_| fail("has a negative or huge shape"))?;
            count = count
                .checked_mul(dimension)
                .ok_or_else(|| fail("has a shape whose size overflows"))?;
        }
        if dtype.object {
            // joblib pickles arrays of objects: a nested pickle, with its own stack and memo.
            self.outer = Some(Outer {
                stack: std::mem::take(&mut self.stack),
                marks: std::mem::take(&mut self.marks),
                memo: std::mem::take(&mut self.memo),
                protocol: self.protocol,
            });
            self.protocol = 0;
            return Ok(());
        }
        let aligned = match map.get("numpy_array_alignment_bytes") {
            None | Some(Value::None) => false,
            Some(Value::Int(_)) => true,
            Some(_) => return Err(fail("has an alignment that is not an integer")),
        };
        let itemsize = dtype
            .itemsize
            .get()
            .ok_or_else(|| fail("has a dtype of unknown item size"))?;
        let length = count
            .checked_mul(itemsize)
            .ok_or_else(|| fail("has a size that overflows"))?;
        if aligned {
            let [padding] = self.input.array()?;
            self.input
                .declared(padding.into(), "a joblib array's padding")?;
            self.input.skip(padding.into())?;
        }
        self.input.declared(length, "a joblib inline array")?;
        self.input.skip(length)?;
        // joblib replaces the wrapper with the array it read.
        *self.top()? = Value::Opaque;
        Ok(())
    }
}

/// A `numpy.dtype` from `numpy.dtype(code, align, copy)`'s arguments. Only the codes numpy
/// writes for arrays joblib reads as raw bytes have a known item size: one kind and a size
/// (`<f8`, `|b1`, `<U2`, `|V12`, `<M8[ns]`), or `O8`/`|O` for objects. Any other code numpy
/// would still parse (`f4,i8`, `(2,)f8`, `[('a', 'f4')]`) makes a structured or subarray
/// dtype whose size the scan does not compute: unknown, so joblib's array after it cannot be
/// read (fail closed).
pub(super) fn dtype(args: &[Value]) -> Value {
    let code = args.first().and_then(Value::text).unwrap_or("");
    let object = matches!(code, "O8" | "|O8" | "O" | "|O");
    let body = code.strip_prefix(['<', '>', '|', '=']).unwrap_or(code);
    let kind = body.bytes().next().unwrap_or(b'?');
    let itemsize = if object { Some(8) } else { simple_size(body) };
    Value::Dtype(Rc::new(Dtype {
        kind: if object { b'O' } else { kind },
        itemsize: Cell::new(itemsize),
        object,
    }))
}

/// The item size of `[biufcmMSUV]<digits>([unit])`, in bytes (a unicode code counts
/// characters of 4 bytes), or `None` for any other code.
fn simple_size(code: &str) -> Option<u64> {
    let mut bytes = code.bytes();
    let kind = bytes.next().filter(|kind| b"biufcmMSUV".contains(kind))?;
    let rest = &code[1..];
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, unit) = rest.split_at(digits_end);
    let unit_ok = unit.is_empty()
        || unit
            .strip_prefix('[')
            .and_then(|unit| unit.strip_suffix(']'))
            .is_some_and(|unit| {
                !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
    if digits.is_empty() || !unit_ok {
        return None;
    }
    let scale = if kind == b'U' { 4 } else { 1 };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// A dtype's BUILD state `(version, byteorder, subarray, names, fields, elsize, alignment,
/// flags[, metadata])`, as numpy's `arraydescr_setstate` reads it: `elsize` replaces the
/// item size of the flexible kinds (S, U, V) only, and the size of the others never changes.
/// A structured or subarray dtype is pickled as `V<size>` with its fields or subarray in the
/// state and its size in `elsize` (scikit-learn's tree nodes are one); fields or a subarray
/// on any other kind, the object flag (0x01, `NPY_ITEM_HASOBJECT`) on a dtype that is not
/// `O8`, or a state that is not understood make the size unknown.
fn complete_dtype(dtype: &Dtype, state: &Value) {
    let understood = match state.whole_tuple() {
        Some(
            [_, _, subarray, names, fields, elsize, _, Value::Int(flags)]
            | [_, _, subarray, names, fields, elsize, _, Value::Int(flags), _],
        ) => {
            let plain = [subarray, names, fields]
                .iter()
                .all(|part| matches!(part, Value::None));
            let object_ok = flags & 1 == 0 || dtype.object;
            match (dtype.kind, elsize) {
                _ if !object_ok => false,
                (b'V', Value::Int(elsize)) | (b'S' | b'U', Value::Int(elsize))
                    if plain || dtype.kind == b'V' =>
                {
                    match u64::try_from(*elsize) {
                        Ok(elsize) => {
                            dtype.itemsize.set(Some(elsize));
                            true
                        }
                        Err(_) => false,
                    }
                }
                (b'S' | b'U' | b'V', _) => false,
                _ => plain,
            }
        }
        _ => false,
    };
    if !understood {
        dtype.itemsize.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;
    use crate::pickle::KEPT_CHILDREN;

    #[test]
    fn joblib_inline_arrays_are_read_through() {
        for bytes in [
            fixture!("joblib-plain.joblib"),
            fixture!("joblib-p2.joblib"),
        ] {
            let mut reader = bytes;
            let scan = scan(&mut reader, bytes.len() as u64, Context::File);
            assert_eq!(scan.unreadable, None);
            assert_eq!(scan.unsafe_calls, vec![]);
            assert!(scan.joblib);
            assert_eq!(
                scan.written_by.get("scikit-learn").map(String::as_str),
                Some("1.9.1")
            );
            // STOP was the last byte: the arrays (one of objects, pickled nested) were read
            // through exactly.
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn a_payload_after_a_joblib_array_is_found() {
        for bytes in [
            fixture!("hostile-after-array-p2.joblib"),
            fixture!("hostile-after-array-p5.joblib"),
        ] {
            let scan = scan_bytes(bytes);
            assert!(scan.joblib);
            assert_eq!(scan.unreadable, None);
            assert_eq!(calls(&scan), BTreeSet::from(["posix.system"]));
        }
    }

    #[test]
    fn joblib_array_sizes_follow_numpy() {
        // A plain dtype reads its size from its code.
        let plain = wrapper(
            &dtype_bytes("<f8", &dtype_state(-1, 0)),
            1,
            b"\0\0\0\0\0\0\0\0.",
        );
        assert!(clean(&plain).joblib);
        // numpy never changes a fixed kind's size from the state: `elsize` 100 on `<f8`
        // leaves 8 bytes of array, and the payload right after them runs.
        let elsize = scan_bytes(&wrapper(
            &dtype_bytes("<f8", &dtype_state(100, 0)),
            1,
            &data_then_payload(),
        ));
        assert_eq!(calls(&elsize), BTreeSet::from(["os.system"]));
        // A flexible kind takes its size from the state, as numpy does.
        let flexible = wrapper(
            &dtype_bytes("|V4", &dtype_state(8, 0)),
            1,
            &data_then_payload(),
        );
        assert_eq!(calls(&scan_bytes(&flexible)), BTreeSet::from(["os.system"]));
        // Structured and subarray codes: numpy's size is not the first field's.
        for code in ["f4,i8", "(2,)f8", "<f8x", "f", "O4", "<<f8"] {
            let scan = scan_bytes(&wrapper(
                &dtype_bytes(code, &dtype_state(-1, 0)),
                1,
                &data_then_payload(),
            ));
            assert!(scan.unreadable.is_some(), "{code}");
        }
        // A structured dtype is `V<size>` with fields in its state, whose `elsize` numpy
        // honours; fields on another kind, or the object flag on a dtype that is not `O8`,
        // leave the size unknown.
        let fields = b"(K\x03X\x01\x00\x00\x00|N(X\x01\x00\x00\x00at}J\x08\x00\x00\x00J\x01\x00\x00\x00K\x00t";
        let structured = wrapper(&dtype_bytes("V4", fields), 1, &data_then_payload());
        assert_eq!(
            calls(&scan_bytes(&structured)),
            BTreeSet::from(["os.system"])
        );
        let float_fields = wrapper(&dtype_bytes("<f8", fields), 1, &data_then_payload());
        assert!(scan_bytes(&float_fields).unreadable.is_some());
        let object = wrapper(
            &dtype_bytes("<f8", &dtype_state(-1, 1)),
            1,
            &data_then_payload(),
        );
        assert!(scan_bytes(&object).unreadable.is_some());
        // Datetime units are part of a simple code.
        let datetime = wrapper(
            &dtype_bytes("<M8[ns]", &dtype_state(-1, 0)),
            1,
            &data_then_payload(),
        );
        assert_eq!(calls(&scan_bytes(&datetime)), BTreeSet::from(["os.system"]));
    }

    #[test]
    fn wrapper_keys_the_scan_cannot_read_are_unreadable() {
        let f8 = dtype_bytes("<f8", &dtype_state(-1, 0));
        let i1 = dtype_bytes("|i1", &dtype_state(-1, 0));
        // `S'\x64type'` is `dtype` to Python, set after the plain one: Python reads 1 byte.
        let mut escaped = f8.clone();
        escaped.extend_from_slice(b"S'\\x64type'\n");
        escaped.extend_from_slice(&i1);
        let scan = scan_bytes(&wrapper(&escaped, 1, &data_then_payload()));
        assert!(scan.unreadable.is_some());
        // A key that is not a string at all.
        let mut int_key = f8.clone();
        int_key.extend_from_slice(b"K\x01N");
        assert!(scan_bytes(&wrapper(&int_key, 1, &data_then_payload()))
            .unreadable
            .is_some());
        // A repeated key: the last value wins, as in Python (1 byte, then the payload).
        let mut repeated = f8.clone();
        repeated.extend_from_slice(b"X\x05\x00\x00\x00dtype");
        repeated.extend_from_slice(&i1);
        let mut after = vec![0u8];
        after.extend_from_slice(&data_then_payload()[8..]);
        let scan = scan_bytes(&wrapper(&repeated, 1, &after));
        assert_eq!(calls(&scan), BTreeSet::from(["os.system"]));
        // The same past the kept entries: the notable key is replaced where it is.
        let mut late = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
        for key in 0..KEPT_CHILDREN as u8 {
            late.extend_from_slice(&[b'X', 2, 0, 0, 0, b'a' + key / 26, b'a' + key % 26, b'N']);
        }
        for dtype in [&f8, &i1] {
            late.extend_from_slice(b"X\x05\x00\x00\x00dtype");
            late.extend_from_slice(dtype);
        }
        late.extend_from_slice(b"X\x05\x00\x00\x00shapeK\x01\x85ub");
        late.extend_from_slice(&after);
        assert_eq!(calls(&scan_bytes(&late)), BTreeSet::from(["os.system"]));
    }

    #[test]
    fn scikit_learn_version_past_the_kept_entries() {
        let mut bytes = b"\x80\x04\x8c\x0esklearn.svm._c\x8c\x03Foo\x93)\x81}(".to_vec();
        for key in 0..200u8 {
            bytes.extend_from_slice(&[b'K', key, b'N']);
        }
        bytes.extend_from_slice(b"\x8c\x10_sklearn_version\x8c\x031.5ub.");
        let scan = clean(&bytes);
        assert_eq!(
            scan.written_by.get("scikit-learn").map(String::as_str),
            Some("1.5")
        );
    }
}
