//! The symbolic pickle machine: it reads a pickle opcode by opcode, as Python's `Unpickler`
//! does, but every value it builds is a symbol (a small [`Value`]); nothing is imported,
//! called or unpickled. What it learns: the globals the pickle names (imported on load),
//! the calls loading would make outside the allow-list (`allow.rs`), the library versions
//! estimators keep in their state, and whether the stream can be read to its STOP at all.
//!
//! It follows CPython 3.11's `pickletools` opcode table (protocols 0 to 5) and joblib 1.x's
//! `NumpyUnpickler`, which reads raw array bytes from the stream after each
//! `NumpyArrayWrapper` and then resumes the pickle: a scan that stopped at the first array
//! would miss a payload after it (aisbom#91, modelscan#356).
//!
//! Everything is bounded by a named constant below; a stream that would exceed a bound, that
//! is cut short, or that holds an opcode Python would refuse is `unreadable`, which the
//! caller treats as unsafe (fail closed).
//!
//! Python shares one list or dict between the memo and every reference to it; the machine's
//! values are copies. When a list or dict changes, the memo entries holding it change with
//! it, and any other copy that missed the change is stale: a check that would read one (a
//! call's arguments, a joblib wrapper's state) treats it as unknown.
//!
//! What is unsafe (each an [`UnsafeCall`]):
//! - REDUCE of a global that is not an exact (module, name) pair of `allow.rs`, or of a value
//!   the pickle computed (what a call returned, an EXT code);
//! - NEWOBJ, NEWOBJ_EX, OBJ and INST with arguments of a class not in that list (they run
//!   `__init__` or `__new__` with the file's arguments);
//! - NEWOBJ and NEWOBJ_EX without arguments (`cls.__new__(cls)`, then BUILD sets the state)
//!   of a class outside the modules `allow.rs` lists (INST and OBJ without arguments call a
//!   function as it is, so they must name an exact pair): `copyreg._reconstructor(cls, builtins.object, None)`
//!   and scikit-learn's `newObj(cls)` count as this; `_reconstructor` with another base or a
//!   state runs the base's `__init__` and is unsafe;
//! - a class or function handed as an argument to an allowed callable, anywhere in the
//!   arguments (nested in tuples, lists and dicts too), that `allow.rs` does not list for that
//!   callable (`defaultdict(builtins.eval)`, `__generator_ctor(…, torch.utils.collect_env.run)`),
//!   or arguments too many or too deep to look at all of them;
//! - a global whose name is a lookup chain or a dunder (`numpy` + `__builtins__.eval`),
//!   even when it is only named: Python resolves it attribute by attribute on load;
//! - EXT1, EXT2, EXT4 (`copyreg`'s extension registry may map a code to any callable);
//! - APPEND(S), SETITEM(S), ADDITEMS or BUILD on a module's attribute (`os.environ`,
//!   `sys.path`, a class), which changes it for the whole process;
//! - any other global that no list of `allow.rs` has, even when it is only named (fail
//!   closed, as every peer scanner does): loading imports it, and an object graph that
//!   holds `posix.system` is one attribute call away from running it.
//!
//! Globals the lists have and that are only named (a dtype, torch's storage types) are
//! imported on load but not called: they are listed in `globals`, not reported. Persistent
//! ids name torch's storages in `data.pkl`; in a file of their own the default `Unpickler`
//! refuses them, so they are counted, not reported. In torch's own pickles (`Context::Torch`)
//! a TorchScript class (`__torch__.…`) is built from the archive's code, not imported.

// The machine's parts: its input and values, then one module per opcode family, as
// `pickletools` groups them; `Machine::step` hands each opcode to its family.
mod calls;
mod containers;
mod frames;
mod globals;
mod input;
mod literals;
mod memo;
mod stack;
mod state;
#[cfg(test)]
mod testing;
mod torch;
mod value;

pub(crate) use torch::scan_legacy_torch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead};

use crate::allow;
use input::Input;
use value::Value;

/// Where a pickle is read: a file of its own (joblib's inline arrays may follow a
/// `NumpyArrayWrapper`), or torch's `data.pkl` and `constants.pkl` (persistent ids name
/// its storages; TorchScript's classes are `__torch__.…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    File,
    Torch,
}

/// A call loading would make outside the allow-list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnsafeCall {
    /// `module.name`.
    pub(crate) call: String,
    /// Offset of the opcode in the pickle stream.
    pub(crate) offset: u64,
    /// One phrase: "REDUCE calls `posix.system`".
    pub(crate) why: String,
}

/// What a pickle says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scan {
    /// Every global it names, (module, name).
    pub(crate) globals: BTreeSet<(String, String)>,
    /// Library versions recorded in its objects' state (PEP 503 name -> version).
    pub(crate) written_by: BTreeMap<String, String>,
    pub(crate) unsafe_calls: Vec<UnsafeCall>,
    /// Where and why the stream could not be read to STOP.
    pub(crate) unreadable: Option<(u64, String)>,
    /// It held joblib's `NumpyArrayWrapper` arrays.
    pub(crate) joblib: bool,
    /// It starts as a legacy torch file does (the pickled magic number).
    pub(crate) legacy_torch: bool,
    /// How many persistent ids (PERSID, BINPERSID) it holds: torch's storages in `data.pkl`;
    /// in a file of its own the default `Unpickler` refuses them (loading fails, nothing runs).
    pub(crate) persistent_ids: u64,
}

impl Scan {
    /// A pickle that could not be read at all.
    pub(crate) fn unreadable(offset: u64, why: String) -> Scan {
        Scan {
            unreadable: Some((offset, why)),
            ..Scan::default()
        }
    }

    /// Moves its offsets `by` bytes on: for a pickle that starts there in its file.
    pub(crate) fn shift(&mut self, by: u64) {
        for call in &mut self.unsafe_calls {
            call.offset += by;
        }
        if let Some((offset, _)) = &mut self.unreadable {
            *offset += by;
        }
    }

    /// Adds what `next`, a later pickle of the same file starting at byte `start`, says.
    fn absorb(&mut self, mut next: Scan, start: u64) {
        next.shift(start);
        self.globals.extend(next.globals);
        self.written_by.extend(next.written_by);
        self.unsafe_calls.extend(next.unsafe_calls);
        self.persistent_ids += next.persistent_ids;
        self.joblib |= next.joblib;
        if self.unreadable.is_none() {
            self.unreadable = next.unreadable;
        }
    }
}

/// Reads through large payloads (array bytes, long byte strings) in blocks this big: a
/// `BufReader` hands a read at least its capacity straight to the stream it wraps, so the
/// hashing reader below sees large blocks and keeps sha256's pace.
const BLOCK: usize = 1024 * 1024;
/// Values on the stack (marks included). Real pickles stay in the thousands; a million
/// catches `((((…` and `]]]]…` bombs while bounding memory to tens of MiB.
const MAX_STACK: usize = 1_000_000;
/// Memo entries (about 32 bytes each, so at most about 128 MiB). Pickles memoize one entry
/// per object; a large forest or checkpoint holds some hundred thousand.
const MAX_MEMO: usize = 4 * 1024 * 1024;
/// Children kept over the whole scan (16 bytes each, 256 MiB at most): each container
/// keeps its first [`KEPT_CHILDREN`], and this bounds memory across all of them.
const MAX_KEPT: usize = 16 * 1024 * 1024;
/// A protocol 0 line (GLOBAL's module and name, INT, STRING, ...): Python reads any length,
/// but real lines are identifiers and numbers.
const MAX_LINE: usize = 64 * 1024;
/// Module and name of a global: longer ones are no module Python could import.
const MAX_NAME: usize = 1024;
/// Distinct globals one pickle may name (real ones name tens to hundreds).
const MAX_GLOBALS: usize = 10_000;
/// Strings kept with their content (keys, versions, module names); longer ones are only
/// known to be strings.
const KEPT_TEXT: usize = 1024;
/// Children a tuple, list or dict keeps (the rest are counted): enough for call arguments,
/// shapes (numpy has at most 64 dimensions) and the wrapper's state. Dict entries whose key
/// is in [`NOTABLE_KEYS`] are kept wherever they are.
const KEPT_CHILDREN: usize = 64;
/// Nesting of kept values: deeper children become opaque, so that dropping a value never
/// recurses deeper than this, whatever the input nests.
const MAX_DEPTH: u32 = 64;
/// Memo entries a list or dict remembers holding it (updated when it changes); a copy in
/// more entries than this goes stale there.
const MAX_SLOTS: usize = 8;
/// Unsafe calls reported in full; beyond, only calls not yet reported are added.
const MAX_REPORTED: usize = 1000;

/// Dict keys read from state wherever they sit in a dict, however large.
const NOTABLE_KEYS: &[&str] = &[
    "_sklearn_version",
    "dtype",
    "numpy_array_alignment_bytes",
    "order",
    "shape",
];

/// Whether `head` starts as a pickle does: protocol 2 to 5 open with PROTO; a protocol 0 or 1
/// pickle must start with an opcode such pickles start with, and the head must read as valid
/// opcodes (names that are identifiers, numbers that parse, memo entries that exist) up to
/// STOP or, for a long pickle, to the end of the head after at least [`SNIFF_OPCODES`].
pub(crate) fn sniff(head: &[u8]) -> bool {
    match head {
        [0x80, protocol, ..] => (2..=5).contains(protocol),
        [first, ..] if b"(]})NILFSVcGJKMTUX".contains(first) => {
            let mut reader = head;
            let mut machine = Machine::new(&mut reader, head.len() as u64, Context::File);
            match machine.run() {
                Ok(()) => true,
                // A head that names a global, reads on, then breaks is a pickle that cannot
                // be read (`cbuiltins\nexec\n(` and then a string cut short): unsafe, not
                // unknown. Text breaks sooner: `Copyright 2024` names no global, and a
                // label file's `cat\ndog\nbird` breaks at the opcode after `cat.dog`.
                Err(error) => {
                    (error.end_of_input && machine.opcodes >= SNIFF_OPCODES)
                        || machine
                            .first_global
                            .is_some_and(|at| machine.opcodes > at + 1)
                }
            }
        }
        _ => false,
    }
}

/// Opcodes a protocol 0 or 1 head must read without error when it does not reach STOP.
const SNIFF_OPCODES: u64 = 8;

/// Reads one pickle (a file's, or the next of several back to back) from `reader` to its
/// STOP; `size` bounds what it may declare (`u64::MAX`: unknown). After STOP the reader is
/// right after it, so the caller may scan the next pickle.
pub(crate) fn scan(reader: &mut dyn BufRead, size: u64, context: Context) -> Scan {
    let mut machine = Machine::new(reader, size, context);
    let outcome = machine.run();
    // Fail closed on globals: one that no list allows is unsafe even when only named, as
    // every peer scanner has it: loading imports it, and an object graph that holds
    // `posix.system` is one attribute call away from running it.
    for (call, offset, opcode) in std::mem::take(&mut machine.named) {
        if !machine.reported.contains(&call) {
            let why = format!(
                "{opcode} names `{call}`, which no allow-list has (loading imports it, and \
                 whatever holds it can call it)"
            );
            machine.unsafe_call(&call, offset, why);
        }
    }
    let mut scan = machine.scan;
    if let Err(error) = outcome {
        scan.unreadable = Some((error.offset, error.why));
    }
    scan
}

/// Reads every pickle of a file, back to back to its end, as `pickle.load` in a loop does
/// (`size`: the file's, or `u64::MAX`). Bytes after a STOP that do not start another
/// pickle make it unreadable: a loader reading on would take them for one, and no writer
/// leaves them. Offsets are from the start of the file.
pub(crate) fn scan_all(reader: &mut dyn BufRead, size: u64, context: Context) -> Scan {
    /// Pickles read from one file; `pickle.dump` in a loop writes one per object.
    const MAX_STREAMS: usize = 10_000;
    let mut all = Scan::default();
    let mut start = 0u64;
    for index in 0.. {
        let mut counted = Counted {
            inner: &mut *reader,
            read: 0,
        };
        let scan = self::scan(&mut counted, size.saturating_sub(start), context);
        start += counted.read;
        if index == 0 {
            all.legacy_torch = scan.legacy_torch;
        }
        let broken = scan.unreadable.is_some();
        all.absorb(scan, start - counted.read);
        if broken {
            break;
        }
        let next = match reader.fill_buf() {
            Ok(next) => next,
            Err(error) => {
                all.unreadable = Some((start, format!("the stream failed ({error})")));
                break;
            }
        };
        if next.is_empty() {
            break;
        }
        if index + 1 == MAX_STREAMS {
            all.unreadable = Some((
                start,
                format!("more than {MAX_STREAMS} pickles follow each other"),
            ));
            break;
        }
        if !starts_pickle(next) {
            all.unreadable = Some((
                start,
                "bytes follow the pickle's STOP that are not another pickle".to_string(),
            ));
            break;
        }
    }
    all
}

/// Whether `next`, the bytes after a STOP, start another pickle: an opcode a pickle may
/// start with (a protocol 0 or 1 pickle has no PROTO).
fn starts_pickle(next: &[u8]) -> bool {
    match next {
        [0x80, ..] => true,
        [first, ..] => b"(]})NILFSVcGJKMTUX".contains(first),
        [] => false,
    }
}

/// A reader that counts what is consumed through it.
struct Counted<'a> {
    inner: &'a mut dyn BufRead,
    read: u64,
}

impl io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.read += got as u64;
        Ok(got)
    }
}

impl BufRead for Counted<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amount: usize) {
        self.read += amount as u64;
        self.inner.consume(amount);
    }
}

/// Why a stream cannot be read to its STOP, and where.
#[derive(Debug)]
struct Unreadable {
    offset: u64,
    why: String,
    /// The stream ended, or a length reaches past it (what `sniff` accepts from a head that
    /// cuts a pickle short).
    end_of_input: bool,
}

/// An opcode's failure, before the machine adds where.
#[derive(Debug)]
struct Failure {
    why: String,
    end_of_input: bool,
}

impl Failure {
    fn new(why: impl Into<String>) -> Failure {
        Failure {
            why: why.into(),
            end_of_input: false,
        }
    }
}

type Step<T> = Result<T, Failure>;

/// The outer pickle, kept while joblib's nested pickle of an object array is read.
struct Outer {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    protocol: u8,
}

/// The machine's state.
struct Machine<'a> {
    input: Input<'a>,
    context: Context,
    stack: Vec<Value>,
    /// Stack lengths at each MARK (Python's metastack).
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    protocol: u8,
    /// Children kept so far (bounded by [`MAX_KEPT`]).
    kept: usize,
    /// Set while a joblib object array's nested pickle is read.
    outer: Option<Outer>,
    /// Opcodes read (for `sniff`).
    opcodes: u64,
    reported: BTreeSet<String>,
    /// Globals named that no list of `allow.rs` has: `module.name`, offset, opcode.
    named: Vec<(String, u64, String)>,
    /// The opcode (counted from 1) that first named a global (for `sniff`).
    first_global: Option<u64>,
    scan: Scan,
}

/// What an opcode leaves the machine to do.
enum Flow {
    Next,
    Stop,
}

impl<'a> Machine<'a> {
    fn new(reader: &'a mut dyn BufRead, size: u64, context: Context) -> Machine<'a> {
        Machine {
            input: Input::new(reader, size),
            context,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            protocol: 0,
            kept: 0,
            outer: None,
            opcodes: 0,
            reported: BTreeSet::new(),
            named: Vec::new(),
            first_global: None,
            scan: Scan::default(),
        }
    }

    fn run(&mut self) -> Result<(), Unreadable> {
        loop {
            let offset = self.input.read;
            let flow = self.input.byte().and_then(|op| match op {
                Some(op) => {
                    self.opcodes += 1;
                    self.step(op, offset)
                }
                None => Err(Input::ended()),
            });
            match flow {
                Ok(Flow::Next) => {}
                Ok(Flow::Stop) => return Ok(()),
                Err(failure) => {
                    return Err(Unreadable {
                        offset,
                        why: failure.why,
                        end_of_input: failure.end_of_input,
                    })
                }
            }
        }
    }

    /// One opcode (CPython 3.11's `pickletools.opcodes`), handed to its family.
    fn step(&mut self, op: u8, offset: u64) -> Step<Flow> {
        match op {
            b'I' | b'J' | b'K' | b'M' | b'L' | 0x8a | 0x8b | b'F' | b'G' | b'N' | 0x88 | 0x89 => {
                self.number(op)
            }
            b'S' | b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96..=0x98 | b'V' | b'X' | 0x8c | 0x8d => {
                self.text(op)
            }
            b')' | b't' | 0x85..=0x87 | b']' | b'l' | b'a' | b'e' => self.sequence(op, offset),
            b'}' | b'd' | b's' | b'u' | 0x8f..=0x91 => self.mapping(op, offset),
            b'0' | b'2' | b'(' | b'1' => self.stack_op(op),
            b'g' | b'h' | b'j' | b'p' | b'q' | b'r' | 0x94 => self.memo_op(op),
            0x82..=0x84 | b'c' | 0x93 => self.naming(op, offset),
            b'R' | b'b' | b'i' | b'o' | 0x81 | 0x92 => self.call(op, offset),
            b'P' | b'Q' => self.persistent_load(op),
            0x80 | 0x95 => self.framing(op),
            b'.' => return self.stop(),
            other => Err(not_an_opcode(other)),
        }?;
        Ok(Flow::Next)
    }
    /// Reports a call loading would make outside the allow-list.
    fn unsafe_call(&mut self, call: &str, offset: u64, why: String) {
        let new = self.reported.insert(call.to_string());
        if new || self.scan.unsafe_calls.len() < MAX_REPORTED {
            self.scan.unsafe_calls.push(UnsafeCall {
                call: call.to_string(),
                offset,
                why,
            });
        }
    }
}

/// A byte that is no opcode of `pickletools`' table.
fn not_an_opcode(byte: u8) -> Failure {
    Failure::new(format!("byte 0x{byte:02x} is not a pickle opcode"))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;
    use proptest::prelude::*;

    #[test]
    fn scikit_learn_estimators_record_their_version() {
        for bytes in [
            fixture!("sklearn-logistic-p4.pkl"),
            fixture!("sklearn-tree-p5.pkl"),
        ] {
            let scan = clean(bytes);
            assert_eq!(
                scan.written_by.get("scikit-learn").map(String::as_str),
                Some("1.9.1")
            );
            assert!(sniff(bytes));
        }
        let tree = clean(fixture!("sklearn-tree-p5.pkl"));
        assert!(names(&tree, "sklearn.tree._tree", "Tree"));
        let logistic = clean(fixture!("sklearn-logistic-p4.pkl"));
        assert!(names(
            &logistic,
            "sklearn.linear_model._logistic",
            "LogisticRegression"
        ));
    }

    #[test]
    fn numpy_2_arrays_import_numpy_core() {
        let p2 = clean(fixture!("numpy2-array-p2.pkl"));
        assert!(names(&p2, "numpy._core.multiarray", "_reconstruct"));
        let p5 = clean(fixture!("numpy2-array-p5.pkl"));
        assert!(names(&p5, "numpy._core.numeric", "_frombuffer"));
    }

    #[test]
    fn python_values_at_every_protocol() {
        for bytes in [
            fixture!("values-p0.pkl"),
            fixture!("values-p1.pkl"),
            fixture!("values-p2.pkl"),
            fixture!("values-p3.pkl"),
            fixture!("values-p4.pkl"),
            fixture!("values-p5.pkl"),
        ] {
            let scan = clean(bytes);
            assert!(sniff(bytes));
            assert!(names(&scan, "collections", "OrderedDict"));
            assert!(names(&scan, "datetime", "datetime"));
            assert!(!scan.joblib && !scan.legacy_torch);
        }
        // Protocols 0 to 2 name builtins as Python 2 did, read as Python 3 does.
        let p0 = clean(fixture!("values-p0.pkl"));
        assert!(names(&p0, "builtins", "set"));
        assert!(!p0.globals.iter().any(|(module, _)| module == "__builtin__"));
    }

    #[test]
    fn stops_right_after_stop() {
        let mut two = fixture!("values-p4.pkl").to_vec();
        two.extend_from_slice(fixture!("hostile-os-system-p2.pkl"));
        let mut reader = two.as_slice();
        let first = scan(&mut reader, two.len() as u64, Context::File);
        assert_eq!(first.unsafe_calls, vec![]);
        assert_eq!(reader, fixture!("hostile-os-system-p2.pkl"));
        let left = reader.len() as u64;
        let second = scan(&mut reader, left, Context::File);
        assert_eq!(calls(&second), BTreeSet::from(["os.system"]));
    }

    #[test]
    fn every_cut_of_a_pickle_is_unreadable() {
        for bytes in [
            fixture!("sklearn-logistic-p4.pkl"),
            fixture!("values-p0.pkl"),
            fixture!("joblib-plain.joblib"),
            fixture!("hostile-after-array-p5.joblib"),
        ] {
            let whole = scan_bytes(bytes);
            for cut in 0..bytes.len() {
                let part = scan_bytes(&bytes[..cut]);
                assert!(part.unreadable.is_some(), "cut at {cut}");
                for call in &part.unsafe_calls {
                    assert!(whole.unsafe_calls.contains(call), "cut at {cut}: {call:?}");
                }
                // The same with the size unknown (a decompressed stream).
                let mut reader = &bytes[..cut];
                assert!(scan(&mut reader, u64::MAX, Context::File)
                    .unreadable
                    .is_some());
            }
        }
    }

    #[test]
    fn garbage_is_unreadable() {
        for bytes in [
            b"\x80\x04\xff".as_slice(),
            b"\x80\x09N.",
            b"",
            b"\x80\x02)",
            b"\x80\x02R.",
            b"\x80\x02h\x05.",
            b"\x80\x02u.",
            b"\x80\x04K\x01K\x02\x93.",
            b"\x80\x02c\xff\xfe\nx\n.",
            b"\x80\x02cos system\nx\n.",
        ] {
            let scan = scan_bytes(bytes);
            assert!(scan.unreadable.is_some(), "{bytes:?}");
        }
    }

    #[test]
    fn label_files_are_no_pickles_and_a_broken_pickle_after_a_global_is() {
        for text in [
            &b"cat\ndog\nbird\n"[..],
            b"cloudy\nsunny\nrain\n",
            b"Copyright 2024\n",
        ] {
            assert!(!sniff(text), "{}", String::from_utf8_lossy(text));
        }
        assert!(sniff(b"cbuiltins\nexec\n(X\xff\xff\xff\x7fimport os"));
    }

    #[test]
    fn sniffs_pickles_and_nothing_else() {
        for pickle in [
            fixture!("values-p0.pkl"),
            fixture!("values-p1.pkl"),
            fixture!("joblib-plain.joblib"),
            b"N.",
            b"(dp0\nVa\np1\nI1\nsS'b'\np2\n(lp3\nI1\naI2\nas.",
            // A protocol 1 head whose byte string goes on past the head.
            b"(lp0\nI1\naI2\naI3\naI4\naT\xff\xff\x00\x00",
        ] {
            assert!(sniff(pickle), "{pickle:?}");
        }
        for other in [
            b"{\"a\": 1}".as_slice(),
            b"[1, 2]",
            b"\x7fELF\x02\x01\x01\x00",
            b"PK\x03\x04",
            b"import os\nprint(1)\n",
            b"class Model:\n    pass\n",
            b"I love pickles\n",
            b"(hello)",
            b"Name,Value\n1,2\n",
            b"\x80\x06N.",
            b"",
        ] {
            assert!(!sniff(other), "{other:?}");
        }
    }

    /// `step` hands every opcode of `pickletools`' table to a family that knows it, and
    /// only those: an opcode a family does not handle would read as no opcode at all.
    #[test]
    fn every_opcode_has_a_family() {
        let mut opcodes: Vec<u8> = b"(.012abcdeghijlopqrstuIJKLMNPQRSTUVXFGBC]})".to_vec();
        opcodes.extend(0x80..=0x98);
        assert_eq!(opcodes.len(), 68);
        for byte in 0..=u8::MAX {
            let mut reader: &[u8] = b"";
            let mut machine = Machine::new(&mut reader, 0, Context::File);
            let refused = match machine.step(byte, 0) {
                Ok(_) => false,
                Err(failure) => failure.why.contains("is not a pickle opcode"),
            };
            assert_eq!(refused, !opcodes.contains(&byte), "byte 0x{byte:02x}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let scan = scan_bytes(&bytes);
            let _ = sniff(&bytes);
            prop_assert!(scan.unsafe_calls.len() <= bytes.len());
        }

        #[test]
        fn mutated_pickles_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let original = [
                fixture!("sklearn-logistic-p4.pkl"),
                fixture!("values-p0.pkl"),
                fixture!("joblib-plain.joblib"),
                fixture!("hostile-after-array-p5.joblib"),
            ][which];
            let mut bytes = original.to_vec();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let started = std::time::Instant::now();
            let scan = scan_bytes(&bytes);
            // Linear time: a few KiB read in well under a second, even in a debug build.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
            prop_assert!(scan.unsafe_calls.len() <= bytes.len());
        }
    }
}
