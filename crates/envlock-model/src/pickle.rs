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

#[path = "allow.rs"]
mod allow;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead};
use std::rc::Rc;

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

/// The legacy torch file's first pickle: `torch.serialization.MAGIC_NUMBER`.
const TORCH_MAGIC: i128 = 0x1950a86a20f9469cfc6c;

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
        let scan = self::scan(&mut counted, size.saturating_sub(start), context);
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

/// The bytes of the pickle, with what was consumed of them.
struct Input<'a> {
    reader: &'a mut dyn BufRead,
    /// Bytes consumed since the scan began.
    read: u64,
    /// What the file holds from where the scan began (`u64::MAX`: unknown).
    size: u64,
    /// The block large payloads are read through, allocated on first use.
    block: Vec<u8>,
}

impl Input<'_> {
    /// What is left of the file.
    fn left(&self) -> u64 {
        self.size.saturating_sub(self.read)
    }

    /// Fails when `length` bytes are declared but the file cannot hold them.
    fn declared(&self, length: u64, what: &str) -> Step<()> {
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

    fn ended() -> Failure {
        Failure {
            why: "the stream ends before STOP".to_string(),
            end_of_input: true,
        }
    }

    /// The next byte, or `None` at the end of the stream.
    fn byte(&mut self) -> Step<Option<u8>> {
        let Some(&byte) = self.fill()?.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        self.read += 1;
        Ok(Some(byte))
    }

    /// The next `N` bytes (an opcode's fixed-size argument).
    fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
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
    fn take(&mut self, length: u64, keep: usize, what: &str) -> Step<Option<Vec<u8>>> {
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
    fn skip(&mut self, length: u64) -> Step<()> {
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
    fn line(&mut self) -> Step<Vec<u8>> {
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

/// A symbol for what loading would build.
#[derive(Debug, Clone)]
enum Value {
    None,
    /// `True` or `False` (which one no check needs).
    Bool,
    /// An integer of up to 16 bytes, kept exactly.
    Int(i128),
    /// A longer integer, not kept.
    BigInt,
    Float,
    /// A string of at most [`KEPT_TEXT`] bytes.
    Str(Rc<str>),
    /// A longer string (or one that is not UTF-8), not kept.
    LongStr,
    /// A byte string (`bytes`): no check needs its content, which is read through.
    Bytes,
    Tuple(Rc<Seq>),
    List(Rc<Seq>),
    Dict(Rc<Map>),
    /// A module attribute named by GLOBAL, STACK_GLOBAL or INST.
    Global(Rc<Global>),
    /// An instance of a class, made without running its `__init__`.
    Object(Rc<Global>),
    /// A `numpy.dtype` (joblib's inline arrays need its item size).
    Dtype(Rc<Dtype>),
    /// Anything else: a call's result, a set, a buffer.
    Opaque,
}

impl Value {
    /// Nesting of kept children below this value.
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(seq) | Value::List(seq) => seq.depth,
            Value::Dict(map) => map.depth,
            _ => 0,
        }
    }

    /// Whether this value is or holds a global, and whether one may hide below it.
    fn seen(&self) -> Seen {
        match self {
            Value::Global(_) => Seen {
                globals: true,
                ..Seen::default()
            },
            Value::Tuple(seq) => seq.seen,
            Value::List(seq) => Seen {
                mutable: true,
                ..seq.seen
            },
            Value::Dict(map) => Seen {
                mutable: true,
                ..map.seen
            },
            _ => Seen::default(),
        }
    }

    /// A list's or dict's identity.
    fn identity(&self) -> Option<&Identity> {
        match self {
            Value::List(seq) => Some(&seq.identity),
            Value::Dict(map) => Some(&map.identity),
            _ => None,
        }
    }

    /// Where a list or dict copy is, to tell it from other copies of the same object.
    fn address(&self) -> Option<*const ()> {
        match self {
            Value::List(seq) => Some(Rc::as_ptr(seq).cast()),
            Value::Dict(map) => Some(Rc::as_ptr(map).cast()),
            _ => None,
        }
    }

    /// A list or dict that changed since this copy was made.
    fn stale(&self) -> bool {
        self.identity().is_some_and(Identity::stale)
    }

    fn text(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// A tuple's kept items, if all are kept.
    fn whole_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(seq) if seq.len == seq.items.len() as u64 => Some(&seq.items),
            _ => None,
        }
    }

    fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(self, Value::Global(global) if global.module == module && global.name == name)
    }
}

/// `module.name`.
#[derive(Debug)]
struct Global {
    module: String,
    name: String,
}

impl Global {
    fn dotted(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A tuple's or list's first children and its length.
#[derive(Debug, Clone, Default)]
struct Seq {
    items: Vec<Value>,
    len: u64,
    depth: u32,
    seen: Seen,
    identity: Identity,
}

/// Which Python object a list or dict is. The machine's values are copied where Python
/// shares one object (the memo, DUP, another container holding it): when a copy changes,
/// the memo entries that hold it are changed with it, and every other copy is stale (it
/// misses what Python's object holds), which any check that reads it treats as unknown.
#[derive(Debug, Clone, Default)]
struct Identity {
    /// The object's version, shared by all its copies (`None` for a tuple, which never
    /// changes); [`POISONED`] once a stale copy was changed, when no copy is right.
    current: Option<Rc<Cell<u64>>>,
    /// This copy's version.
    version: u64,
    /// Memo entries holding this copy (at most [`MAX_SLOTS`]).
    slots: RefCell<Vec<u64>>,
}

/// The version of an object whose copies all miss something.
const POISONED: u64 = u64::MAX;

impl Identity {
    /// A new list or dict.
    fn object() -> Identity {
        Identity {
            current: Some(Rc::default()),
            ..Identity::default()
        }
    }

    /// Whether the object changed since this copy was made.
    fn stale(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.get() != self.version)
    }

    /// This copy was changed: other copies are stale now, and if it was stale itself, all.
    fn changed(&mut self) {
        let Some(current) = &self.current else {
            return;
        };
        if self.stale() {
            current.set(POISONED);
            self.version = 0;
        } else {
            let version = current.get() + 1;
            current.set(version);
            self.version = version;
        }
    }
}

/// Where the globals below a container are: a call handed the container is handed them.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// A global is somewhere below, kept or not.
    globals: bool,
    /// A global may be below where the scan cannot see it (a child past [`KEPT_CHILDREN`],
    /// or nested deeper than [`MAX_DEPTH`]).
    unseen: bool,
    /// A list or dict is somewhere below (or is the value): it may have changed since.
    mutable: bool,
}

impl Seen {
    /// Notes a child, kept as `kept` (or dropped when `None`).
    fn child(&mut self, child: &Value, kept: Option<&Value>) {
        let below = child.seen();
        self.globals |= below.globals;
        self.unseen |= below.unseen;
        self.mutable |= below.mutable;
        let dropped = match kept {
            None => true,
            Some(kept) => matches!(kept, Value::Opaque) && !matches!(child, Value::Opaque),
        };
        if dropped && (below.globals || below.mutable) {
            self.unseen = true;
        }
    }
}

/// A dict's first entries, its notable ones and its length.
#[derive(Debug, Clone, Default)]
struct Map {
    pairs: Vec<(Value, Value)>,
    /// Entries past [`KEPT_CHILDREN`] whose key is one of [`NOTABLE_KEYS`].
    notable: Vec<(Rc<str>, Value)>,
    len: u64,
    depth: u32,
    seen: Seen,
    identity: Identity,
    /// A key the scan cannot read as a plain string (`S'\x64type'` is `dtype` to Python), or
    /// an entry of a notable key it could not keep: `get` may miss what Python sees.
    unclear_keys: bool,
}

impl Map {
    /// The value of a string key (each key is kept once, with the value set last).
    fn get(&self, key: &str) -> Option<&Value> {
        let notable = self.notable.iter().find(|(k, _)| &**k == key);
        if let Some((_, value)) = notable {
            return Some(value);
        }
        self.pairs
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, value)| value)
    }
}

/// What joblib needs of a `numpy.dtype`: BUILD completes it (the item size of flexible
/// kinds), and a memoized copy sees that, as in Python.
#[derive(Debug)]
struct Dtype {
    kind: u8,
    /// `None` when not known: joblib's array after it cannot be read.
    itemsize: Cell<Option<u64>>,
    /// Its code is `O8` (or `|O`): joblib pickles the array nested.
    object: bool,
}

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
            input: Input {
                reader,
                read: 0,
                size,
                block: Vec::new(),
            },
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

    /// One opcode (CPython 3.11's `pickletools.opcodes`, in its order).
    fn step(&mut self, op: u8, offset: u64) -> Step<Flow> {
        match op {
            // Integers.
            b'I' => {
                let line = self.input.line()?;
                let value = match line.as_slice() {
                    b"00" | b"01" => Value::Bool,
                    digits => decimal(digits, "INT")?,
                };
                self.push(value)?;
            }
            b'J' => {
                let value = i32::from_le_bytes(self.input.array()?);
                self.push(Value::Int(value.into()))?;
            }
            b'K' => {
                let [value] = self.input.array()?;
                self.push(Value::Int(value.into()))?;
            }
            b'M' => {
                let value = u16::from_le_bytes(self.input.array()?);
                self.push(Value::Int(value.into()))?;
            }
            b'L' => {
                let line = self.input.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(&line);
                let value = decimal(digits, "LONG")?;
                self.push(value)?;
            }
            0x8a => {
                let [length] = self.input.array()?;
                self.long(length.into())?;
            }
            0x8b => {
                let length = i32::from_le_bytes(self.input.array()?);
                let length = u64::try_from(length)
                    .map_err(|_| Failure::new("LONG4 declares a negative length"))?;
                self.long(length)?;
            }
            // Strings (`str` in Python 3: protocol 0 and 1's byte strings decode to str).
            b'S' => {
                let line = self.input.line()?;
                let value = quoted(&line)?;
                self.push(value)?;
            }
            b'T' => {
                let length = i32::from_le_bytes(self.input.array()?);
                let length = u64::try_from(length)
                    .map_err(|_| Failure::new("BINSTRING declares a negative length"))?;
                self.string(length, "BINSTRING")?;
            }
            b'U' => {
                let [length] = self.input.array()?;
                self.string(length.into(), "SHORT_BINSTRING")?;
            }
            // Bytes.
            b'B' => {
                let length = u32::from_le_bytes(self.input.array()?);
                self.bytes(length.into(), "BINBYTES")?;
            }
            b'C' => {
                let [length] = self.input.array()?;
                self.bytes(length.into(), "SHORT_BINBYTES")?;
            }
            0x8e => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.bytes(length, "BINBYTES8")?;
            }
            0x96 => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.input.declared(length, "BYTEARRAY8")?;
                self.input.skip(length)?;
                self.push(Value::Opaque)?;
            }
            0x97 => self.push(Value::Opaque)?,
            0x98 => {
                self.top()?;
            }
            // Unicode strings.
            b'V' => {
                let line = self.input.line()?;
                let value = raw_unicode_escape(&line);
                self.push(value)?;
            }
            b'X' => {
                let length = u32::from_le_bytes(self.input.array()?);
                self.string(length.into(), "BINUNICODE")?;
            }
            0x8c => {
                let [length] = self.input.array()?;
                self.string(length.into(), "SHORT_BINUNICODE")?;
            }
            0x8d => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.string(length, "BINUNICODE8")?;
            }
            // Floats.
            b'F' => {
                let line = self.input.line()?;
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.parse::<f64>().is_err() {
                    return Err(Failure::new("FLOAT is not a number"));
                }
                self.push(Value::Float)?;
            }
            b'G' => {
                self.input.array::<8>()?;
                self.push(Value::Float)?;
            }
            // Constants.
            b'N' => self.push(Value::None)?,
            0x88 | 0x89 => self.push(Value::Bool)?,
            // Tuples.
            b')' => self.push(Value::Tuple(Rc::default()))?,
            b't' => {
                let items = self.pop_mark()?;
                let tuple = self.seq(items)?;
                self.push(Value::Tuple(tuple))?;
            }
            0x85..=0x87 => {
                let count = usize::from(op - 0x84);
                let items = self.pop_many(count)?;
                let tuple = self.seq(items)?;
                self.push(Value::Tuple(tuple))?;
            }
            // Lists.
            b']' => self.push(Value::List(Rc::new(Seq {
                identity: Identity::object(),
                ..Seq::default()
            })))?,
            b'l' => {
                let items = self.pop_mark()?;
                let mut list = self.seq(items)?;
                if let Some(list) = Rc::get_mut(&mut list) {
                    list.identity = Identity::object();
                }
                self.push(Value::List(list))?;
            }
            b'a' => {
                let item = self.pop()?;
                self.append(vec![item], "APPEND", offset)?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items, "APPENDS", offset)?;
            }
            // Dicts.
            b'}' => self.push(Value::Dict(Rc::new(Map {
                identity: Identity::object(),
                ..Map::default()
            })))?,
            b'd' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Failure::new("DICT has an odd number of items"));
                }
                let mut map = Map {
                    identity: Identity::object(),
                    ..Map::default()
                };
                self.insert(&mut map, items);
                self.push(Value::Dict(Rc::new(map)))?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![key, value], "SETITEM", offset)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Failure::new("SETITEMS has an odd number of items"));
                }
                self.set_items(items, "SETITEMS", offset)?;
            }
            // Sets.
            0x8f => self.push(Value::Opaque)?,
            0x90 => {
                self.pop_mark()?;
                let target = self.top()?.clone();
                self.mutates(&target, "ADDITEMS", offset);
            }
            0x91 => {
                self.pop_mark()?;
                self.push(Value::Opaque)?;
            }
            // Stack manipulation.
            b'0' => {
                if self.stack.len() > self.base() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
            }
            b'2' => {
                let top = self.top()?.clone();
                self.push(top)?;
            }
            b'(' => {
                if self.stack.len() + self.marks.len() >= MAX_STACK {
                    return Err(too_deep());
                }
                self.marks.push(self.stack.len());
            }
            b'1' => {
                self.pop_mark()?;
            }
            // Memo.
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
            // Extension registry: `copyreg`'s table maps a code to any callable.
            0x82..=0x84 => {
                let code = match op {
                    0x82 => u32::from(self.input.array::<1>()?[0]),
                    0x83 => u16::from_le_bytes(self.input.array()?).into(),
                    _ => i32::from_le_bytes(self.input.array()?) as u32,
                };
                let name = ["EXT1", "EXT2", "EXT4"][usize::from(op - 0x82)];
                self.unsafe_call(
                    "copyreg.extension",
                    offset,
                    format!("{name} loads extension {code} of `copyreg`'s registry, which may name any callable"),
                );
                self.push(Value::Opaque)?;
            }
            // Globals.
            b'c' => {
                let module = self.input.line()?;
                let name = self.input.line()?;
                let global = self.global(&module, &name, "GLOBAL", offset)?;
                self.push(Value::Global(global))?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (module.text(), name.text()) else {
                    return Err(Failure::new(
                        "STACK_GLOBAL takes a module and name that are not known strings",
                    ));
                };
                let (module, name) = (module.as_bytes().to_vec(), name.as_bytes().to_vec());
                let global = self.global(&module, &name, "STACK_GLOBAL", offset)?;
                self.push(Value::Global(global))?;
            }
            // Calls and objects.
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = self.reduce(&callable, &args, offset);
                self.push(result)?;
            }
            b'b' => {
                let state = self.pop()?;
                self.build(state, offset)?;
            }
            b'i' => {
                let module = self.input.line()?;
                let name = self.input.line()?;
                let class = self.global(&module, &name, "INST", offset)?;
                let args = self.pop_mark()?;
                let result = self.instantiate(
                    "INST",
                    &Value::Global(class),
                    &args,
                    args.len() as u64,
                    offset,
                );
                self.push(result)?;
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(Failure::new("OBJ without a class"));
                }
                let class = items.remove(0);
                let result = self.instantiate("OBJ", &class, &items, items.len() as u64, offset);
                self.push(result)?;
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                let result = self.new_object("NEWOBJ", &class, &args, None, offset);
                self.push(result)?;
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                let result = self.new_object("NEWOBJ_EX", &class, &args, Some(&kwargs), offset);
                self.push(result)?;
            }
            // Persistent ids.
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
            // Protocol and framing.
            0x80 => {
                let [protocol] = self.input.array()?;
                if protocol > 5 {
                    return Err(Failure::new(format!(
                        "unsupported pickle protocol {protocol}"
                    )));
                }
                self.protocol = protocol;
            }
            0x95 => {
                let length = u64::from_le_bytes(self.input.array()?);
                self.input.declared(length, "FRAME")?;
            }
            b'.' => return self.stop(),
            other => {
                return Err(Failure::new(format!(
                    "byte 0x{other:02x} is not a pickle opcode"
                )))
            }
        }
        Ok(Flow::Next)
    }

    /// STOP: the end of the pickle, or of joblib's nested pickle inside it.
    fn stop(&mut self) -> Step<Flow> {
        let result = self.pop()?;
        if let Some(outer) = self.outer.take() {
            self.stack = outer.stack;
            self.marks = outer.marks;
            self.memo = outer.memo;
            self.protocol = outer.protocol;
            // joblib replaces the wrapper with the array it read.
            *self.top()? = Value::Opaque;
            return Ok(Flow::Next);
        }
        if matches!(result, Value::Int(TORCH_MAGIC)) {
            self.scan.legacy_torch = true;
        }
        Ok(Flow::Stop)
    }

    /// Where the values of the innermost MARK begin.
    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, value: Value) -> Step<()> {
        if self.stack.len() + self.marks.len() >= MAX_STACK {
            return Err(too_deep());
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Step<Value> {
        if self.stack.len() <= self.base() {
            return Err(underflow());
        }
        self.stack.pop().ok_or_else(underflow)
    }

    fn pop_many(&mut self, count: usize) -> Step<Vec<Value>> {
        if self.stack.len() < self.base() + count {
            return Err(underflow());
        }
        Ok(self.stack.split_off(self.stack.len() - count))
    }

    fn top(&mut self) -> Step<&mut Value> {
        if self.stack.len() <= self.base() {
            return Err(underflow());
        }
        self.stack.last_mut().ok_or_else(underflow)
    }

    fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Failure::new("an opcode needs a MARK and there is none"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    /// Counts `count` children kept against [`MAX_KEPT`].
    fn keep(&mut self, count: usize) -> Step<()> {
        self.kept += count;
        if self.kept > MAX_KEPT {
            return Err(Failure::new(format!(
                "more than {MAX_KEPT} values to follow"
            )));
        }
        Ok(())
    }

    /// A child as kept: opaque when it nests too deeply.
    fn child(value: Value) -> Value {
        if value.depth() >= MAX_DEPTH {
            Value::Opaque
        } else {
            value
        }
    }

    fn seq(&mut self, items: Vec<Value>) -> Step<Rc<Seq>> {
        let len = items.len() as u64;
        let mut seen = Seen::default();
        let items = Machine::children(items, KEPT_CHILDREN, &mut seen);
        self.keep(items.len())?;
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        Ok(Rc::new(Seq {
            items,
            len,
            depth,
            seen,
            identity: Identity::default(),
        }))
    }

    /// The first `room` of `items` as kept, noting in `seen` the globals of all of them.
    fn children(items: Vec<Value>, room: usize, seen: &mut Seen) -> Vec<Value> {
        let mut kept = Vec::with_capacity(items.len().min(room));
        for item in items {
            if kept.len() < room {
                let child = Machine::child(item.clone());
                seen.child(&item, Some(&child));
                kept.push(child);
            } else {
                seen.child(&item, None);
            }
        }
        kept
    }

    /// Adds key, value pairs to a dict. As in Python, setting a key again replaces its value
    /// where it is.
    fn insert(&mut self, map: &mut Map, items: Vec<Value>) {
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            let text = key.text();
            if text.is_none() {
                map.unclear_keys = true;
            }
            if let Some(text) = text {
                let kept = map.pairs.iter_mut().find(|(k, _)| k.text() == Some(text));
                let slot = match kept {
                    Some((_, slot)) => Some(slot),
                    None => map
                        .notable
                        .iter_mut()
                        .find(|(k, _)| &**k == text)
                        .map(|(_, slot)| slot),
                };
                if let Some(slot) = slot {
                    let kept_value = Machine::child(value.clone());
                    map.seen.child(&value, Some(&kept_value));
                    map.depth = map.depth.max(1 + kept_value.depth());
                    *slot = kept_value;
                    continue;
                }
            }
            map.len += 1;
            let notable = text.filter(|key| NOTABLE_KEYS.contains(key));
            if map.pairs.len() < KEPT_CHILDREN && self.keep(2).is_ok() {
                let (kept_key, kept_value) =
                    (Machine::child(key.clone()), Machine::child(value.clone()));
                map.seen.child(&key, Some(&kept_key));
                map.seen.child(&value, Some(&kept_value));
                map.depth = map.depth.max(1 + kept_key.depth().max(kept_value.depth()));
                map.pairs.push((kept_key, kept_value));
            } else if let Some(key) = notable.filter(|_| map.notable.len() < 4 * NOTABLE_KEYS.len())
            {
                let kept_value = Machine::child(value.clone());
                map.seen.child(&value, Some(&kept_value));
                map.notable.push((key.into(), kept_value));
            } else {
                map.unclear_keys |= notable.is_some();
                map.seen.child(&key, None);
                map.seen.child(&value, None);
            }
        }
    }

    /// APPEND, APPENDS.
    fn append(&mut self, items: Vec<Value>, opcode: &str, offset: u64) -> Step<()> {
        let count = items.len();
        let top = self.top()?;
        if !matches!(top, Value::List(_)) {
            let target = top.clone();
            self.mutates(&target, opcode, offset);
            return Ok(());
        }
        let held = self.detach();
        let mut added = 0;
        if let Value::List(seq) = self.top()? {
            let seq = Rc::make_mut(seq);
            let room = KEPT_CHILDREN.saturating_sub(seq.items.len());
            let kept = Machine::children(items, room, &mut seq.seen);
            seq.len += count as u64;
            seq.depth = seq
                .depth
                .max(1 + kept.iter().map(Value::depth).max().unwrap_or(0));
            added = kept.len();
            seq.items.extend(kept);
            seq.identity.changed();
        }
        self.reattach(held)?;
        self.keep(added)
    }

    /// SETITEM, SETITEMS.
    fn set_items(&mut self, items: Vec<Value>, opcode: &str, offset: u64) -> Step<()> {
        let top = self.top()?;
        if !matches!(top, Value::Dict(_)) {
            let target = top.clone();
            self.mutates(&target, opcode, offset);
            return Ok(());
        }
        let held = self.detach();
        if let Value::Dict(map) = self.top()? {
            let mut map = std::mem::take(Rc::make_mut(map));
            self.insert(&mut map, items);
            map.identity.changed();
            if let Value::Dict(slot) = self.top()? {
                *Rc::make_mut(slot) = map;
            }
        }
        self.reattach(held)
    }

    /// Takes the list or dict on top out of the memo entries that hold it (so that changing
    /// it copies nothing when nothing else holds it), and says which they were.
    fn detach(&mut self) -> Vec<u64> {
        let Some(top) = self.stack.last() else {
            return Vec::new();
        };
        let (Some(identity), Some(address)) = (top.identity(), top.address()) else {
            return Vec::new();
        };
        let slots = identity.slots.borrow().clone();
        let mut held = Vec::new();
        for slot in slots {
            if let Some(entry) = self.memo.get_mut(&slot) {
                if entry.address() == Some(address) {
                    *entry = Value::None;
                    held.push(slot);
                }
            }
        }
        held
    }

    /// Puts the changed list or dict on top back into the memo entries it was taken from.
    fn reattach(&mut self, held: Vec<u64>) -> Step<()> {
        let top = self.top()?.clone();
        for slot in held {
            self.memo.insert(slot, top.clone());
        }
        Ok(())
    }

    /// An opcode that changes `target` in place: unsafe when it is a module's attribute
    /// (APPEND to `sys.path`, SETITEM of `os.environ`, BUILD on a class).
    fn mutates(&mut self, target: &Value, opcode: &str, offset: u64) {
        if let Value::Global(global) = target {
            let call = global.dotted();
            self.unsafe_call(
                &call,
                offset,
                format!("{opcode} changes `{call}`, a module's attribute"),
            );
        }
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

    /// LONG1, LONG4: little-endian two's complement.
    fn long(&mut self, length: u64) -> Step<()> {
        let value = match self.input.take(length, 16, "LONG")? {
            Some(bytes) => {
                let negative = bytes.last().is_some_and(|last| last & 0x80 != 0);
                let mut full = [if negative { 0xff } else { 0 }; 16];
                full[..bytes.len()].copy_from_slice(&bytes);
                Value::Int(i128::from_le_bytes(full))
            }
            None => Value::BigInt,
        };
        self.push(value)
    }

    fn string(&mut self, length: u64, what: &str) -> Step<()> {
        let value = match self.input.take(length, KEPT_TEXT, what)? {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Value::Str(text.into()),
                Err(_) => Value::LongStr,
            },
            None => Value::LongStr,
        };
        self.push(value)
    }

    fn bytes(&mut self, length: u64, what: &str) -> Step<()> {
        self.input.declared(length, what)?;
        self.input.skip(length)?;
        self.push(Value::Bytes)
    }

    fn persistent_id(&mut self) {
        self.scan.persistent_ids += 1;
    }

    /// A global named by GLOBAL, STACK_GLOBAL or INST, as Python 3 resolves it.
    fn global(
        &mut self,
        module: &[u8],
        name: &[u8],
        opcode: &str,
        offset: u64,
    ) -> Step<Rc<Global>> {
        let (Ok(module), Ok(name)) = (std::str::from_utf8(module), std::str::from_utf8(name))
        else {
            return Err(Failure::new(format!(
                "{opcode} names a global that is not UTF-8"
            )));
        };
        if module.len() > MAX_NAME || name.len() > MAX_NAME {
            return Err(Failure::new(format!(
                "{opcode} names a global longer than {MAX_NAME} bytes"
            )));
        }
        if !dotted_identifier(module) || !dotted_identifier(name) {
            return Err(Failure::new(format!(
                "{opcode} names `{}`, which is not a module attribute",
                printable(&format!("{module}.{name}"))
            )));
        }
        let (module, name) = if self.protocol < 3 {
            python2_name(module, name)
        } else {
            (module.to_string(), name.to_string())
        };
        let global = Rc::new(Global { module, name });
        self.first_global.get_or_insert(self.opcodes);
        let torchscript = self.context == Context::Torch && is_torchscript_class(&global.module);
        let pair = (global.module.clone(), global.name.clone());
        if !torchscript && !self.scan.globals.contains(&pair) {
            if self.scan.globals.len() >= MAX_GLOBALS {
                return Err(Failure::new(format!(
                    "more than {MAX_GLOBALS} distinct globals"
                )));
            }
            self.scan.globals.insert(pair);
            if !allow::known(&global.module, &global.name) {
                self.named
                    .push((global.dotted(), offset, opcode.to_string()));
            }
        }
        if allow::lookup_chain(&global.module, &global.name) {
            let call = global.dotted();
            self.unsafe_call(
                &call,
                offset,
                format!(
                    "{opcode} looks up `{call}` attribute by attribute, reaching past the module"
                ),
            );
        }
        Ok(global)
    }

    /// REDUCE: `callable(*args)`.
    fn reduce(&mut self, callable: &Value, args: &Value, offset: u64) -> Value {
        let Value::Global(global) = callable else {
            self.unsafe_call(
                "(computed)",
                offset,
                "REDUCE calls a value the pickle computed, not a named global".to_string(),
            );
            return Value::Opaque;
        };
        let call = global.dotted();
        let Some(items) = args.whole_tuple() else {
            self.unsafe_call(
                &call,
                offset,
                format!("REDUCE calls `{call}` with arguments that cannot be seen"),
            );
            return Value::Opaque;
        };
        match (global.module.as_str(), global.name.as_str()) {
            ("copyreg", "_reconstructor") => {
                // `object.__new__(cls)` when the base is `object` and the state None;
                // otherwise `base.__init__(obj, state)` runs.
                let [class, base, state] = items else {
                    self.unsafe_call(
                        &call,
                        offset,
                        format!("REDUCE calls `{call}` with unexpected arguments"),
                    );
                    return Value::Opaque;
                };
                if !base.is_global("builtins", "object") || !matches!(state, Value::None) {
                    let base = match base {
                        Value::Global(base) => base.dotted(),
                        _ => "a computed value".to_string(),
                    };
                    self.unsafe_call(
                        &call,
                        offset,
                        format!("REDUCE calls `{call}` with base `{base}` and a state, which runs the base's `__init__`"),
                    );
                    return Value::Opaque;
                }
                self.instantiate("`copyreg._reconstructor`", class, &[], 0, offset)
            }
            ("copyreg", "__newobj__") => match items.split_first() {
                Some((class, rest)) => self.instantiate(
                    "`copyreg.__newobj__`",
                    class,
                    rest,
                    rest.len() as u64,
                    offset,
                ),
                None => {
                    self.unsafe_call(
                        &call,
                        offset,
                        format!("REDUCE calls `{call}` without a class"),
                    );
                    Value::Opaque
                }
            },
            (_, "newObj") if allow::call(&global.module, &global.name) => match items {
                // scikit-learn's Cython `newObj(cls)` is `cls.__new__(cls)`.
                [class] => self.instantiate(&format!("`{call}`"), class, &[], 0, offset),
                _ => {
                    self.unsafe_call(
                        &call,
                        offset,
                        format!("REDUCE calls `{call}` with unexpected arguments"),
                    );
                    Value::Opaque
                }
            },
            ("copyreg", "__newobj_ex__") => match items {
                // `cls.__new__(cls, *args, **kwargs)`, as NEWOBJ_EX.
                [class, args, kwargs] => match (args.whole_tuple(), kwargs) {
                    (Some(args), Value::Dict(kwargs))
                        if kwargs.len == 0 && !kwargs.identity.stale() =>
                    {
                        self.instantiate(
                            "`copyreg.__newobj_ex__`",
                            class,
                            args,
                            args.len() as u64,
                            offset,
                        )
                    }
                    _ => {
                        self.unsafe_call(
                            &call,
                            offset,
                            format!("REDUCE calls `{call}` with arguments that cannot be seen"),
                        );
                        Value::Opaque
                    }
                },
                _ => {
                    self.unsafe_call(
                        &call,
                        offset,
                        format!("REDUCE calls `{call}` with unexpected arguments"),
                    );
                    Value::Opaque
                }
            },
            (module, name) if allow::call(module, name) => {
                self.check_arguments(global, items, offset);
                if (module, name) == ("numpy", "dtype") {
                    return dtype(items);
                }
                Value::Opaque
            }
            _ => {
                self.unsafe_call(&call, offset, format!("REDUCE calls `{call}`"));
                Value::Opaque
            }
        }
    }

    /// NEWOBJ, NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`.
    fn new_object(
        &mut self,
        opcode: &str,
        class: &Value,
        args: &Value,
        kwargs: Option<&Value>,
        offset: u64,
    ) -> Value {
        let kwargs_empty = match kwargs {
            None => true,
            Some(Value::Dict(map)) => map.len == 0 && !map.identity.stale(),
            Some(_) => false,
        };
        match args.whole_tuple() {
            Some(items) if kwargs_empty => {
                self.instantiate(opcode, class, items, items.len() as u64, offset)
            }
            _ => {
                let name = match class {
                    Value::Global(global) => global.dotted(),
                    _ => "(computed)".to_string(),
                };
                self.unsafe_call(
                    &name,
                    offset,
                    format!("{opcode} instantiates `{name}` with arguments that cannot be seen"),
                );
                Value::Opaque
            }
        }
    }

    /// A class instantiated by `how`, with `args` (of `count`): without arguments a class of
    /// the trusted packages (or an allowed callable) may be, except by INST and OBJ; with
    /// arguments only an allowed callable, whose arguments are checked in turn.
    fn instantiate(
        &mut self,
        how: &str,
        class: &Value,
        args: &[Value],
        count: u64,
        offset: u64,
    ) -> Value {
        let Value::Global(global) = class else {
            self.unsafe_call(
                "(computed)",
                offset,
                format!("{how} instantiates a value the pickle computed, not a named class"),
            );
            return Value::Opaque;
        };
        let call = global.dotted();
        // INST and OBJ call `klass()` when it is not a class (Python's `_instantiate`): a
        // function of a trusted package would run, so only the exact allow-list passes.
        let calls_functions = matches!(how, "INST" | "OBJ");
        if count == 0 && calls_functions {
            if !allow::call(&global.module, &global.name) {
                self.unsafe_call(&call, offset, format!("{how} calls `{call}`"));
                return Value::Opaque;
            }
        } else if count == 0 {
            let torchscript =
                self.context == Context::Torch && is_torchscript_class(&global.module);
            if !torchscript && !allow::instantiate(&global.module, &global.name) {
                self.unsafe_call(&call, offset, format!("{how} instantiates `{call}`"));
                return Value::Opaque;
            }
        } else if allow::call(&global.module, &global.name) {
            self.check_arguments(global, args, offset);
        } else {
            self.unsafe_call(
                &call,
                offset,
                format!("{how} calls `{call}` with arguments"),
            );
            return Value::Opaque;
        }
        if (global.module.as_str(), global.name.as_str()) == ("numpy", "dtype") {
            return dtype(args);
        }
        Value::Object(global.clone())
    }

    /// An allowed callable's arguments: every class or function among them, however deeply
    /// nested, must be one `allow.rs` lists for that callable (a `defaultdict` calls its
    /// factory, `_rebuild_from_type_v2` its `func`, `__bit_generator_ctor` its class).
    fn check_arguments(&mut self, callable: &Global, args: &[Value], offset: u64) {
        let call = callable.dotted();
        let mut globals = Vec::new();
        let mut unseen = false;
        let mut visited = BTreeSet::new();
        for arg in args {
            globals_in(arg, &mut globals, &mut unseen, &mut visited);
        }
        for global in globals {
            if !allow::argument(
                (&callable.module, &callable.name),
                &global.module,
                &global.name,
            ) {
                let name = global.dotted();
                self.unsafe_call(
                    &name,
                    offset,
                    format!("`{call}` is handed `{name}`, which it may call"),
                );
            }
        }
        if unseen {
            self.unsafe_call(
                &call,
                offset,
                format!("`{call}` is handed values too many or too deep to be seen, which may name a callable"),
            );
        }
        if let Some(asked) = allocation(callable, args).filter(|&asked| asked > MAX_ALLOCATION) {
            self.unsafe_call(
                &call,
                offset,
                format!(
                    "`{call}` is asked for {asked} elements, more than {MAX_ALLOCATION}: \
                     loading would exhaust memory (a pickle bomb)"
                ),
            );
        }
        // `defaultdict` calls its factory: a builtin type (checked above) or none.
        let factory = args.first();
        if (callable.module.as_str(), callable.name.as_str()) == ("collections", "defaultdict")
            && !matches!(factory, None | Some(Value::None | Value::Global(_)))
        {
            self.unsafe_call(
                &call,
                offset,
                format!("`{call}` is handed a factory that is not a builtin type"),
            );
        }
    }

    /// BUILD: sets the state of the value on top.
    fn build(&mut self, state: Value, offset: u64) -> Step<()> {
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

/// Elements an allowed call allocates from its arguments alone, without the file holding
/// them: `bytearray(n)` and `bytes(n)`, a `range` that whatever iterates it walks, the shape
/// numpy's `_reconstruct` and `ndarray` are handed (real pickles hand `(0,)` and give the
/// data in the state, which the file holds).
fn allocation(callable: &Global, args: &[Value]) -> Option<u128> {
    let int = |value: &Value| match value {
        Value::Int(int) => Some(u128::try_from(*int).unwrap_or(0)),
        Value::BigInt => Some(u128::MAX),
        _ => None,
    };
    match (callable.module.as_str(), callable.name.as_str(), args) {
        ("builtins", "bytearray" | "bytes", [size, ..]) => int(size),
        ("builtins", "range", [stop]) => int(stop),
        ("builtins", "range", [start, stop, ..]) => {
            let (start, stop) = (int(start).unwrap_or(0), int(stop)?);
            Some(stop.saturating_sub(start))
        }
        ("numpy._core.multiarray" | "numpy.core.multiarray", "_reconstruct", [_, shape, ..])
        | ("numpy", "ndarray", [shape, ..]) => {
            let dimensions = match shape {
                Value::Tuple(seq) | Value::List(seq) => &seq.items[..],
                other => std::slice::from_ref(other),
            };
            (dimensions.iter()).try_fold(1u128, |product, dimension| {
                Some(product.saturating_mul(int(dimension)?))
            })
        }
        _ => None,
    }
}

/// Elements one call may ask for before it is a pickle bomb (2^32: 4 GiB of bytes, or a
/// range no model iterates).
const MAX_ALLOCATION: u128 = 1 << 32;

/// A TorchScript class (`__torch__.Net`), which torch's own unpickler builds from the
/// archive's compiled `code/`: no Python module is imported for it, and its `__setstate__`
/// is TorchScript, which cannot reach Python.
fn is_torchscript_class(module: &str) -> bool {
    module == "__torch__" || module.starts_with("__torch__.")
}

fn too_deep() -> Failure {
    Failure::new(format!(
        "too deeply nested (more than {MAX_STACK} values on the stack)"
    ))
}

fn underflow() -> Failure {
    Failure::new("an opcode takes more values than the stack holds")
}

/// A `numpy.dtype` from `numpy.dtype(code, align, copy)`'s arguments. Only the codes numpy
/// writes for arrays joblib reads as raw bytes have a known item size: one kind and a size
/// (`<f8`, `|b1`, `<U2`, `|V12`, `<M8[ns]`), or `O8`/`|O` for objects. Any other code numpy
/// would still parse (`f4,i8`, `(2,)f8`, `[('a', 'f4')]`) makes a structured or subarray
/// dtype whose size the scan does not compute: unknown, so joblib's array after it cannot be
/// read (fail closed).
fn dtype(args: &[Value]) -> Value {
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

/// The globals in `value` and its kept children (at most [`MAX_DEPTH`] deep, each container
/// once), and whether one may hide where the scan cannot see (or in a stale copy).
fn globals_in(
    value: &Value,
    globals: &mut Vec<Rc<Global>>,
    unseen: &mut bool,
    visited: &mut BTreeSet<usize>,
) {
    let seen = value.seen();
    *unseen |= seen.unseen || value.stale();
    if !seen.globals && !seen.mutable {
        return;
    }
    let address = match value {
        Value::Tuple(seq) | Value::List(seq) => Rc::as_ptr(seq) as usize,
        Value::Dict(map) => Rc::as_ptr(map) as usize,
        Value::Global(global) => {
            globals.push(global.clone());
            return;
        }
        _ => return,
    };
    if !visited.insert(address) {
        return;
    }
    match value {
        Value::Tuple(seq) | Value::List(seq) => {
            for item in &seq.items {
                globals_in(item, globals, unseen, visited);
            }
        }
        Value::Dict(map) => {
            for (key, value) in &map.pairs {
                globals_in(key, globals, unseen, visited);
                globals_in(value, globals, unseen, visited);
            }
            for (_, value) in &map.notable {
                globals_in(value, globals, unseen, visited);
            }
        }
        _ => {}
    }
}

/// INT and LONG's decimal text.
fn decimal(digits: &[u8], what: &str) -> Step<Value> {
    let text = std::str::from_utf8(digits)
        .map_err(|_| Failure::new(format!("{what} is not a number")))?
        .trim();
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(Failure::new(format!("{what} is not a number")));
    }
    Ok(text
        .replace('_', "")
        .parse::<i128>()
        .map(Value::Int)
        .unwrap_or(Value::BigInt))
}

/// GET and PUT's decimal memo index.
fn index(line: &[u8], what: &str) -> Step<u64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .ok_or_else(|| Failure::new(format!("{what} has an index that is not a number")))
}

/// STRING's quoted text (`'abc'`): kept when it has no escapes.
fn quoted(line: &[u8]) -> Step<Value> {
    match line {
        [quote, body @ .., last] if (*quote == b'\'' || *quote == b'"') && last == quote => {
            if body.contains(&b'\\') || body.len() > KEPT_TEXT {
                return Ok(Value::LongStr);
            }
            Ok(match std::str::from_utf8(body) {
                Ok(text) => Value::Str(text.into()),
                Err(_) => Value::LongStr,
            })
        }
        _ => Err(Failure::new("STRING is not quoted")),
    }
}

/// UNICODE's `raw-unicode-escape` text: Latin-1 bytes, with `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_escape(line: &[u8]) -> Value {
    if line.len() > KEPT_TEXT * 4 {
        return Value::LongStr;
    }
    let mut text = String::new();
    let mut rest = line;
    while let Some((&byte, tail)) = rest.split_first() {
        let width = match tail.first() {
            Some(b'u') if byte == b'\\' => 4,
            Some(b'U') if byte == b'\\' => 8,
            _ => 0,
        };
        let escaped = tail
            .get(1..1 + width)
            .filter(|_| width > 0)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match escaped {
            Some(c) => {
                text.push(c);
                rest = &tail[1 + width..];
            }
            None => {
                text.push(char::from(byte));
                rest = tail;
            }
        }
    }
    if text.len() > KEPT_TEXT {
        Value::LongStr
    } else {
        Value::Str(text.into())
    }
}

/// Identifiers joined by dots (a module path, or a name that may be a lookup chain).
fn dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|segment| {
            let mut chars = segment.chars();
            chars
                .next()
                .is_some_and(|first| first.is_alphabetic() || first == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Text safe to print in one line of a report.
fn printable(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Python 3's names for what a protocol 0 to 2 pickle written by Python 2 names
/// (`_compat_pickle`'s `NAME_MAPPING` and `IMPORT_MAPPING`, the entries that matter here:
/// the allowed callables' old names and the modules that reach the system). Other Python 2
/// names are kept as they are: none is allowed, so they fail closed.
fn python2_name(module: &str, name: &str) -> (String, String) {
    let renamed = match (module, name) {
        ("__builtin__", "xrange") => Some(("builtins", "range")),
        ("__builtin__", "reduce") => Some(("functools", "reduce")),
        ("__builtin__", "intern") => Some(("sys", "intern")),
        ("__builtin__", "unichr") => Some(("builtins", "chr")),
        ("__builtin__", "unicode") => Some(("builtins", "str")),
        ("__builtin__", "long") => Some(("builtins", "int")),
        ("exceptions", _) => Some(("builtins", name)),
        _ => None,
    };
    if let Some((module, name)) = renamed {
        return (module.to_string(), name.to_string());
    }
    let module = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        "commands" => "subprocess",
        "cPickle" => "pickle",
        "Queue" => "queue",
        "thread" => "_thread",
        "UserDict" | "UserList" | "UserString" => "collections",
        "StringIO" | "cStringIO" => "io",
        other => other,
    };
    (module.to_string(), name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan_bytes(bytes: &[u8]) -> Scan {
        let mut reader = bytes;
        scan(&mut reader, bytes.len() as u64, Context::File)
    }

    fn calls(scan: &Scan) -> BTreeSet<&str> {
        scan.unsafe_calls
            .iter()
            .map(|call| call.call.as_str())
            .collect()
    }

    fn names(scan: &Scan, module: &str, name: &str) -> bool {
        scan.globals
            .contains(&(module.to_string(), name.to_string()))
    }

    /// A benign file: read to STOP, nothing unsafe.
    fn clean(bytes: &[u8]) -> Scan {
        let scan = scan_bytes(bytes);
        assert_eq!(scan.unreadable, None);
        assert_eq!(scan.unsafe_calls, vec![]);
        scan
    }

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
    fn reduce_to_system() {
        let p2 = scan_bytes(fixture!("hostile-os-system-p2.pkl"));
        assert_eq!(calls(&p2), BTreeSet::from(["os.system"]));
        assert_eq!(p2.unsafe_calls[0].why, "REDUCE calls `os.system`");
        assert_eq!(p2.unsafe_calls[0].offset, 27);
        let p4 = scan_bytes(fixture!("hostile-posix-system-p4.pkl"));
        assert_eq!(calls(&p4), BTreeSet::from(["posix.system"]));
        let inst = scan_bytes(fixture!("hostile-inst-p0.pkl"));
        assert_eq!(calls(&inst), BTreeSet::from(["os.system"]));
        assert!(sniff(fixture!("hostile-inst-p0.pkl")));
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
    fn lookup_chains_getattr_and_extensions_are_unsafe() {
        let chain = scan_bytes(fixture!("hostile-lookup-chain.pkl"));
        assert!(calls(&chain).contains("numpy.__builtins__.eval"));
        let getattr = scan_bytes(fixture!("hostile-getattr.pkl"));
        assert!(calls(&getattr).contains("builtins.getattr"));
        assert!(calls(&getattr).contains("builtins.__import__"));
        let ext = scan_bytes(fixture!("hostile-ext1.pkl"));
        assert!(calls(&ext).contains("copyreg.extension"));
        // Only named, never called: a lookup chain is still reported.
        let named = scan_bytes(b"\x80\x04\x8c\x05numpy\x8c\x11__builtins__.eval\x93.");
        assert_eq!(calls(&named), BTreeSet::from(["numpy.__builtins__.eval"]));
    }

    #[test]
    fn calls_outside_the_allow_list() {
        // `copyreg._reconstructor` with a base other than `object` runs the base's __init__.
        let base = scan_bytes(
            b"\x80\x02ccopyreg\n_reconstructor\ncsklearn.linear_model\nRidge\ncbuiltins\nlist\n]\x87R.",
        );
        assert_eq!(calls(&base), BTreeSet::from(["copyreg._reconstructor"]));
        // A class outside the trusted packages, instantiated and given state.
        let main = scan_bytes(b"\x80\x02c__main__\nModel\n)\x81}b.");
        assert_eq!(calls(&main), BTreeSet::from(["__main__.Model"]));
        // A trusted class instantiated with arguments runs its __init__.
        let args = scan_bytes(b"\x80\x02csklearn.linear_model\nRidge\nK\x01\x85\x81.");
        assert_eq!(calls(&args), BTreeSet::from(["sklearn.linear_model.Ridge"]));
        // A defaultdict whose factory is `eval`.
        let factory = scan_bytes(b"\x80\x02ccollections\ndefaultdict\ncbuiltins\neval\n\x85R.");
        assert_eq!(calls(&factory), BTreeSet::from(["builtins.eval"]));
        let list = clean(b"\x80\x02ccollections\ndefaultdict\ncbuiltins\nlist\n\x85R.");
        assert!(names(&list, "builtins", "list"));
        // SETITEM on a module's attribute (`os.environ`).
        // INST and OBJ without arguments call a function: `pandas.read_clipboard()`.
        let function = scan_bytes(b"(ipandas\nread_clipboard\n.");
        assert_eq!(calls(&function), BTreeSet::from(["pandas.read_clipboard"]));
        let obj = scan_bytes(b"\x80\x01(cpandas\nread_clipboard\no.");
        assert_eq!(calls(&obj), BTreeSet::from(["pandas.read_clipboard"]));
        let environ = scan_bytes(b"\x80\x02cos\nenviron\nX\x01\x00\x00\x00aX\x01\x00\x00\x00bs.");
        assert_eq!(calls(&environ), BTreeSet::from(["os.environ"]));
        // Calling what another call returned.
        let computed = scan_bytes(b"\x80\x02cbuiltins\nset\n)R)R.");
        assert_eq!(calls(&computed), BTreeSet::from(["(computed)"]));
    }

    #[test]
    fn an_allowed_callable_handed_a_trusted_function_is_unsafe() {
        // `__generator_ctor(name, ctor)` calls `ctor(name)`: torch's `collect_env.run`.
        let ctor = scan_bytes(
            b"\x80\x02cnumpy.random._pickle\n__generator_ctor\nX\x10\x00\x00\x00touch /tmp/pwnedctorch.utils.collect_env\nrun\n\x86R.",
        );
        assert_eq!(
            calls(&ctor),
            BTreeSet::from(["torch.utils.collect_env.run"])
        );
        // `_rebuild_from_type_v2(func, type, args, state)` calls `func(*args)`.
        let from_type = scan_bytes(
            b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(cnumpy.distutils.exec_command\nexec_command\nctorch\nTensor\nX\x05\x00\x00\x00touch\x85}tR.",
        );
        assert_eq!(
            calls(&from_type),
            BTreeSet::from(["numpy.distutils.exec_command.exec_command"])
        );
        // `__bit_generator_ctor(cls)` calls `cls()`.
        let class = scan_bytes(
            b"\x80\x02cnumpy.random._pickle\n__bit_generator_ctor\ncnumpy.lib._datasource\nDataSource\n\x85R.",
        );
        assert_eq!(
            calls(&class),
            BTreeSet::from(["numpy.lib._datasource.DataSource"])
        );
        // Nested in the arguments: `OrderedDict([(1, joblib.load)])`.
        let nested =
            scan_bytes(b"\x80\x02ccollections\nOrderedDict\n]K\x01cjoblib\nload\n\x86a\x85R.");
        assert_eq!(calls(&nested), BTreeSet::from(["joblib.load"]));
        // `__randomstate_ctor(path, ctor)` calls `ctor(path)`: `joblib.load` of any file.
        let load = scan_bytes(
            b"\x80\x02cnumpy.random._pickle\n__randomstate_ctor\nX\x0a\x00\x00\x00/tmp/x.pklcjoblib\nload\n\x86R.",
        );
        assert_eq!(calls(&load), BTreeSet::from(["joblib.load"]));
        // `pandas.read_pickle` handed to a callable that lists no argument at all.
        let path = scan_bytes(b"\x80\x02cbuiltins\nset\n]cpandas\nread_pickle\na\x85R.");
        assert_eq!(calls(&path), BTreeSet::from(["pandas.read_pickle"]));
        // A global past the children a list keeps cannot be looked at: unsafe.
        let mut hidden = b"\x80\x02ccollections\nOrderedDict\n](".to_vec();
        for _ in 0..KEPT_CHILDREN {
            hidden.extend_from_slice(b"K\x01");
        }
        hidden.extend_from_slice(b"cbuiltins\neval\ne\x85R.");
        assert_eq!(
            calls(&scan_bytes(&hidden)),
            BTreeSet::from(["builtins.eval", "collections.OrderedDict"])
        );
        // A factory that is an object (a torch module is callable): unsafe.
        let factory = scan_bytes(
            b"\x80\x02ccollections\ndefaultdict\nctorch.nn.modules.linear\nLinear\n)\x81\x85R.",
        );
        assert_eq!(calls(&factory), BTreeSet::from(["collections.defaultdict"]));
        // What numpy writes passes: 1.25 and later name the bit generator and its ctor,
        // numpy 2 hands the bit generator built from its class.
        clean(b"\x80\x02cnumpy.random._pickle\n__generator_ctor\nX\x07\x00\x00\x00MT19937cnumpy.random._pickle\n__bit_generator_ctor\n\x86R.");
        clean(b"\x80\x02cnumpy.random._pickle\n__generator_ctor\ncnumpy.random._pickle\n__bit_generator_ctor\ncnumpy.random._pcg64\nPCG64\n\x85R}b\x85R.");
        clean(b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor_v2\nctorch\nTensor\n)}tR.");
    }

    #[test]
    fn calls_that_allocate_more_than_the_file_holds_are_bombs() {
        // `bytearray(2**40)`, `range(2**40)` and `_reconstruct(ndarray, (2**20, 2**20), 'b')`.
        let bombs: [&[u8]; 3] = [
            b"\x80\x02cbuiltins\nbytearray\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85R.",
            b"\x80\x02cbuiltins\nrange\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85R.",
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\x00\x10\x00J\x00\x00\x10\x00\x86C\x01b\x87R.",
        ];
        for bomb in bombs {
            let scan = scan_bytes(bomb);
            assert!(
                scan.unsafe_calls
                    .iter()
                    .any(|call| call.why.contains("pickle bomb")),
                "{scan:?}"
            );
        }
        clean(b"\x80\x02cbuiltins\nbytearray\nK\x10\x85R.");
        clean(
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R.",
        );
    }

    #[test]
    fn only_listed_modules_may_be_instantiated_and_given_state() {
        // `DataSource.__del__` removes `_destpath` when `_istmpdest` is set.
        let gadget = scan_bytes(
            b"\x80\x02cnumpy.lib._datasource\nDataSource\n)\x81}(X\x0b\x00\x00\x00_istmpdest\x88X\t\x00\x00\x00_destpathX\x05\x00\x00\x00/homeub.",
        );
        assert_eq!(
            calls(&gadget),
            BTreeSet::from(["numpy.lib._datasource.DataSource"])
        );
        let reconstructor = scan_bytes(
            b"\x80\x02ccopyreg\n_reconstructor\ncnumpy.lib._datasource\nDataSource\ncbuiltins\nobject\nN\x87R.",
        );
        assert_eq!(
            calls(&reconstructor),
            BTreeSet::from(["numpy.lib._datasource.DataSource"])
        );
        // `copyreg.__newobj_ex__(cls, args, kwargs)` is NEWOBJ_EX.
        let newobj_ex = scan_bytes(
            b"\x80\x02ccopyreg\n__newobj_ex__\ncnumpy.lib._datasource\nDataSource\n)}\x87R.",
        );
        assert_eq!(
            calls(&newobj_ex),
            BTreeSet::from(["numpy.lib._datasource.DataSource"])
        );
        let with_args = scan_bytes(
            b"\x80\x02ccopyreg\n__newobj_ex__\ncsklearn.linear_model\nRidge\nK\x01\x85}\x87R.",
        );
        assert_eq!(
            calls(&with_args),
            BTreeSet::from(["sklearn.linear_model.Ridge"])
        );
        clean(b"\x80\x02ccopyreg\n__newobj_ex__\ncsklearn.linear_model\nRidge\n)}\x87R}b.");
    }

    /// `numpy.dtype(code, False, True)` given `state` by BUILD.
    fn dtype_bytes(code: &str, state: &[u8]) -> Vec<u8> {
        let mut bytes = b"cnumpy\ndtype\nX".to_vec();
        bytes.extend_from_slice(&(code.len() as u32).to_le_bytes());
        bytes.extend_from_slice(code.as_bytes());
        bytes.extend_from_slice(b"\x89\x88\x87R");
        bytes.extend_from_slice(state);
        bytes.push(b'b');
        bytes
    }

    /// A dtype's state `(3, '<', None, None, None, elsize, -1, flags)`.
    fn dtype_state(elsize: i32, flags: u8) -> Vec<u8> {
        let mut bytes = b"(K\x03X\x01\x00\x00\x00<NNNJ".to_vec();
        bytes.extend_from_slice(&elsize.to_le_bytes());
        bytes.extend_from_slice(b"J\xff\xff\xff\xffK");
        bytes.push(flags);
        bytes.push(b't');
        bytes
    }

    /// A joblib `NumpyArrayWrapper` of `dtype` and shape `(count,)`, then `after` (the raw
    /// array bytes and the rest of the pickle).
    fn wrapper(dtype: &[u8], count: u8, after: &[u8]) -> Vec<u8> {
        let mut bytes =
            b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x05\x00\x00\x00dtype"
                .to_vec();
        bytes.extend_from_slice(dtype);
        bytes.extend_from_slice(b"X\x05\x00\x00\x00shapeK");
        bytes.push(count);
        bytes.extend_from_slice(b"\x85X\x05\x00\x00\x00orderX\x01\x00\x00\x00Cub");
        bytes.extend_from_slice(after);
        bytes
    }

    /// Eight bytes of array data, `os.system('id')`, then enough `None`, POP to be skipped
    /// by a scan that reads up to 100 bytes of array, and STOP.
    fn data_then_payload() -> Vec<u8> {
        let mut after = vec![0u8; 8];
        after.extend_from_slice(b"cos\nsystem\nX\x02\x00\x00\x00id\x85R0");
        while after.len() < 120 {
            after.extend_from_slice(b"N0");
        }
        after.push(b'.');
        after
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
        let unknown = super::scan(&mut reader, u64::MAX, Context::File);
        assert!(unknown.unreadable.is_some());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut marks = b"\x80\x02".to_vec();
        marks.resize(MAX_STACK + 3, b'(');
        let (_, why) = scan_bytes(&marks).unreadable.expect("unreadable");
        assert!(why.contains("too deeply nested"), "{why}");
        // Lists nested half a million deep: kept values stay shallow, and dropping them
        // does not recurse that deep.
        let depth = 500_000;
        let mut lists = b"\x80\x02".to_vec();
        lists.extend(std::iter::repeat_n(b']', depth));
        lists.extend(std::iter::repeat_n(b'a', depth - 1));
        lists.push(b'.');
        clean(&lists);
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
