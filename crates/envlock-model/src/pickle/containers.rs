//! Tuples, lists, dicts and sets: building them (each keeps its first [`KEPT_CHILDREN`]
//! children), and changing them in place (APPEND(S), SETITEM(S), ADDITEMS), which is
//! unsafe on a module's attribute.

use std::rc::Rc;

use super::value::{Identity, Map, Seen, Seq};
use super::{
    not_an_opcode, Failure, Machine, Step, Value, KEPT_CHILDREN, MAX_DEPTH, MAX_KEPT, NOTABLE_KEYS,
};

impl Machine<'_> {
    /// Tuples and lists.
    pub(super) fn sequence(&mut self, op: u8, offset: u64) -> Step<()> {
        match op {
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
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// Dicts and sets.
    pub(super) fn mapping(&mut self, op: u8, offset: u64) -> Step<()> {
        match op {
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
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
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
    pub(super) fn mutates(&mut self, target: &Value, opcode: &str, offset: u64) {
        if let Value::Global(global) = target {
            let call = global.dotted();
            self.unsafe_call(
                &call,
                offset,
                format!("{opcode} changes `{call}`, a module's attribute"),
            );
        }
    }
}
