//! The stack and its marks: POP, DUP, MARK, POP_MARK, and the pushes and pops every other
//! family makes, bounded by [`MAX_STACK`].

use super::{not_an_opcode, Failure, Machine, Step, Value, MAX_STACK};

impl Machine<'_> {
    /// Stack manipulation and marks.
    pub(super) fn stack_op(&mut self, op: u8) -> Step<()> {
        match op {
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
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// Where the values of the innermost MARK begin.
    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn push(&mut self, value: Value) -> Step<()> {
        if self.stack.len() + self.marks.len() >= MAX_STACK {
            return Err(too_deep());
        }
        self.stack.push(value);
        Ok(())
    }

    pub(super) fn pop(&mut self) -> Step<Value> {
        if self.stack.len() <= self.base() {
            return Err(underflow());
        }
        self.stack.pop().ok_or_else(underflow)
    }

    pub(super) fn pop_many(&mut self, count: usize) -> Step<Vec<Value>> {
        if self.stack.len() < self.base() + count {
            return Err(underflow());
        }
        Ok(self.stack.split_off(self.stack.len() - count))
    }

    pub(super) fn top(&mut self) -> Step<&mut Value> {
        if self.stack.len() <= self.base() {
            return Err(underflow());
        }
        self.stack.last_mut().ok_or_else(underflow)
    }

    pub(super) fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Failure::new("an opcode needs a MARK and there is none"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }
}

fn too_deep() -> Failure {
    Failure::new(format!(
        "too deeply nested (more than {MAX_STACK} values on the stack)"
    ))
}

fn underflow() -> Failure {
    Failure::new("an opcode takes more values than the stack holds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;

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
}
