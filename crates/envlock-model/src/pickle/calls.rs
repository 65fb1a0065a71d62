//! What loading calls: REDUCE, INST, OBJ, NEWOBJ and NEWOBJ_EX, each checked against the
//! allow-list (`allow.rs`) with its arguments, and BUILD (whose state `state.rs` reads).

use std::collections::BTreeSet;
use std::rc::Rc;

use super::state::dtype;
use super::torch::is_torchscript_class;
use super::value::Global;
use super::{allow, not_an_opcode, Context, Failure, Machine, Step, Value};

impl Machine<'_> {
    /// Calls and objects: REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX.
    pub(super) fn call(&mut self, op: u8, offset: u64) -> Step<()> {
        match op {
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
            other => return Err(not_an_opcode(other)),
        }
        Ok(())
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
            ("copyreg", "_reconstructor") => self.reconstructor(&call, items, offset),
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
                _ => self.unexpected_arguments(&call, offset),
            },
            ("copyreg", "__newobj_ex__") => self.newobj_ex(&call, items, offset),
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

    /// REDUCE of `copyreg._reconstructor(cls, base, state)`: `object.__new__(cls)` when the
    /// base is `object` and the state None; otherwise `base.__init__(obj, state)` runs.
    fn reconstructor(&mut self, call: &str, items: &[Value], offset: u64) -> Value {
        let [class, base, state] = items else {
            return self.unexpected_arguments(call, offset);
        };
        if !base.is_global("builtins", "object") || !matches!(state, Value::None) {
            let base = match base {
                Value::Global(base) => base.dotted(),
                _ => "a computed value".to_string(),
            };
            self.unsafe_call(
                call,
                offset,
                format!("REDUCE calls `{call}` with base `{base}` and a state, which runs the base's `__init__`"),
            );
            return Value::Opaque;
        }
        self.instantiate("`copyreg._reconstructor`", class, &[], 0, offset)
    }

    /// REDUCE of `copyreg.__newobj_ex__(cls, args, kwargs)`: `cls.__new__(cls, *args,
    /// **kwargs)`, as NEWOBJ_EX.
    fn newobj_ex(&mut self, call: &str, items: &[Value], offset: u64) -> Value {
        let [class, args, kwargs] = items else {
            return self.unexpected_arguments(call, offset);
        };
        match (args.whole_tuple(), kwargs) {
            (Some(args), Value::Dict(kwargs)) if kwargs.len == 0 && !kwargs.identity.stale() => {
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
                    call,
                    offset,
                    format!("REDUCE calls `{call}` with arguments that cannot be seen"),
                );
                Value::Opaque
            }
        }
    }

    /// REDUCE of a constructor of `copyreg` or scikit-learn with arguments it never takes.
    fn unexpected_arguments(&mut self, call: &str, offset: u64) -> Value {
        self.unsafe_call(
            call,
            offset,
            format!("REDUCE calls `{call}` with unexpected arguments"),
        );
        Value::Opaque
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::testing::*;
    use crate::pickle::KEPT_CHILDREN;

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
}
