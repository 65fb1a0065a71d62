//! What loading imports: GLOBAL, STACK_GLOBAL (and INST's class, in `calls.rs`) name a
//! module attribute, resolved as Python 3 resolves it; EXT1, EXT2 and EXT4 name whatever
//! `copyreg`'s registry holds, which is unsafe.

use std::rc::Rc;

use super::torch::is_torchscript_class;
use super::value::Global;
use super::{allow, not_an_opcode, Context, Failure, Machine, Step, Value, MAX_GLOBALS, MAX_NAME};

impl Machine<'_> {
    /// GLOBAL, STACK_GLOBAL and the extension registry: what loading imports.
    pub(super) fn naming(&mut self, op: u8, offset: u64) -> Step<()> {
        match op {
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
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
    }

    /// A global named by GLOBAL, STACK_GLOBAL or INST, as Python 3 resolves it.
    pub(super) fn global(
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
    use crate::pickle::testing::*;

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
}
