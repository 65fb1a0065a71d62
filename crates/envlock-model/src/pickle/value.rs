//! The machine's values: symbols for what loading would build, and what a container
//! keeps of its children (the first few, the globals below it, which Python object it is).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A symbol for what loading would build.
#[derive(Debug, Clone)]
pub(super) enum Value {
    None,
    /// `True` or `False` (which one no check needs).
    Bool,
    /// An integer of up to 16 bytes, kept exactly.
    Int(i128),
    /// A longer integer, not kept.
    BigInt,
    Float,
    /// A string of at most [`KEPT_TEXT`](super::KEPT_TEXT) bytes.
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
    pub(super) fn depth(&self) -> u32 {
        match self {
            Value::Tuple(seq) | Value::List(seq) => seq.depth,
            Value::Dict(map) => map.depth,
            _ => 0,
        }
    }

    /// Whether this value is or holds a global, and whether one may hide below it.
    pub(super) fn seen(&self) -> Seen {
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
    pub(super) fn identity(&self) -> Option<&Identity> {
        match self {
            Value::List(seq) => Some(&seq.identity),
            Value::Dict(map) => Some(&map.identity),
            _ => None,
        }
    }

    /// Where a list or dict copy is, to tell it from other copies of the same object.
    pub(super) fn address(&self) -> Option<*const ()> {
        match self {
            Value::List(seq) => Some(Rc::as_ptr(seq).cast()),
            Value::Dict(map) => Some(Rc::as_ptr(map).cast()),
            _ => None,
        }
    }

    /// A list or dict that changed since this copy was made.
    pub(super) fn stale(&self) -> bool {
        self.identity().is_some_and(Identity::stale)
    }

    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// A tuple's kept items, if all are kept.
    pub(super) fn whole_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(seq) if seq.len == seq.items.len() as u64 => Some(&seq.items),
            _ => None,
        }
    }

    pub(super) fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(self, Value::Global(global) if global.module == module && global.name == name)
    }
}

/// `module.name`.
#[derive(Debug)]
pub(super) struct Global {
    pub(super) module: String,
    pub(super) name: String,
}

impl Global {
    pub(super) fn dotted(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A tuple's or list's first children and its length.
#[derive(Debug, Clone, Default)]
pub(super) struct Seq {
    pub(super) items: Vec<Value>,
    pub(super) len: u64,
    pub(super) depth: u32,
    pub(super) seen: Seen,
    pub(super) identity: Identity,
}

/// Which Python object a list or dict is. The machine's values are copied where Python
/// shares one object (the memo, DUP, another container holding it): when a copy changes,
/// the memo entries that hold it are changed with it, and every other copy is stale (it
/// misses what Python's object holds), which any check that reads it treats as unknown.
#[derive(Debug, Clone, Default)]
pub(super) struct Identity {
    /// The object's version, shared by all its copies (`None` for a tuple, which never
    /// changes); [`POISONED`] once a stale copy was changed, when no copy is right.
    pub(super) current: Option<Rc<Cell<u64>>>,
    /// This copy's version.
    pub(super) version: u64,
    /// Memo entries holding this copy (at most [`MAX_SLOTS`](super::MAX_SLOTS)).
    pub(super) slots: RefCell<Vec<u64>>,
}

/// The version of an object whose copies all miss something.
const POISONED: u64 = u64::MAX;

impl Identity {
    /// A new list or dict.
    pub(super) fn object() -> Identity {
        Identity {
            current: Some(Rc::default()),
            ..Identity::default()
        }
    }

    /// Whether the object changed since this copy was made.
    pub(super) fn stale(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.get() != self.version)
    }

    /// This copy was changed: other copies are stale now, and if it was stale itself, all.
    pub(super) fn changed(&mut self) {
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
pub(super) struct Seen {
    /// A global is somewhere below, kept or not.
    pub(super) globals: bool,
    /// A global may be below where the scan cannot see it (a child past [`KEPT_CHILDREN`](super::KEPT_CHILDREN),
    /// or nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH)).
    pub(super) unseen: bool,
    /// A list or dict is somewhere below (or is the value): it may have changed since.
    pub(super) mutable: bool,
}

impl Seen {
    /// Notes a child, kept as `kept` (or dropped when `None`).
    pub(super) fn child(&mut self, child: &Value, kept: Option<&Value>) {
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
pub(super) struct Map {
    pub(super) pairs: Vec<(Value, Value)>,
    /// Entries past [`KEPT_CHILDREN`](super::KEPT_CHILDREN) whose key is one of [`NOTABLE_KEYS`](super::NOTABLE_KEYS).
    pub(super) notable: Vec<(Rc<str>, Value)>,
    pub(super) len: u64,
    pub(super) depth: u32,
    pub(super) seen: Seen,
    pub(super) identity: Identity,
    /// A key the scan cannot read as a plain string (`S'\x64type'` is `dtype` to Python), or
    /// an entry of a notable key it could not keep: `get` may miss what Python sees.
    pub(super) unclear_keys: bool,
}

impl Map {
    /// The value of a string key (each key is kept once, with the value set last).
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
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
pub(super) struct Dtype {
    pub(super) kind: u8,
    /// `None` when not known: joblib's array after it cannot be read.
    pub(super) itemsize: Cell<Option<u64>>,
    /// Its code is `O8` (or `|O`): joblib pickles the array nested.
    pub(super) object: bool,
}
