//! A pickle machine for torch checkpoints that builds values and lazy tensor descriptors and never calls anything.
//!
//! Python's unpickler imports and calls whatever the file names. This one has no way to run code at all: the few
//! functions a checkpoint needs (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter[_with_state]`,
//! `torch._tensor._rebuild_from_type_v2`, `collections.OrderedDict`, `_codecs.encode`, `torch.device`,
//! `torch.Size`, TorchScript's `torch.jit._pickle` list builders, builtin containers) are reimplemented as data
//! transformations. Everything else follows one policy, applied to REDUCE, INST, OBJ, NEWOBJ and `copyreg`
//! reconstruction alike:
//!
//! - a global from a module that can touch the system (`os`, `posix`, `subprocess`, `builtins` other than plain
//!   value types, `importlib`, `ctypes`, `socket`, `torch.hub`, `torch.jit`, ...) is refused with
//!   [`PickleError::Refused`], also when only instantiated with NEWOBJ;
//! - a class (by Python's naming convention, a capitalised name: `pathlib.PosixPath`, `argparse.Namespace`,
//!   omegaconf nodes, Lightning callbacks, enums), builtin value types (`complex`, `slice`, ...) and a few
//!   pure-data numpy/datetime constructors become an opaque [`Object`] record of the class, its arguments and its
//!   BUILD state;
//! - other torch `_rebuild_*` functions (quantized, sparse, ... tensors) become [`Value::UnsupportedTensor`], an
//!   error only if that tensor is asked for;
//! - any other function call (a lowercase name such as `posix.system`, `builtins.eval`, `numpy.load`) is refused.
//!
//! Refusals are a signal that a file is hostile; safety does not depend on them, because nothing is ever executed.
//! Tensors are not read here: [`TensorRef`] describes where the data lives, so callers copy only the tensors they
//! keep. Containers are shared (`Rc<RefCell>`) so memo references see later mutations, as in Python.
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    /// The pickle would call a global that can run code; names the global as `module.name`.
    #[error("its pickle calls {0} (code execution)")]
    Refused(String),
    /// The bytes end early or contradict themselves.
    #[error("{0}")]
    Corrupt(String),
    /// A valid pickle feature this reader does not implement.
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, PickleError>;

fn corrupt<T>(msg: impl Into<String>) -> Result<T> {
    Err(PickleError::Corrupt(msg.into()))
}

/// Most dimensions a tensor may have (libtorch's own limit is 64).
const MAX_DIMS: usize = 64;
/// How deeply `_rebuild_from_type_v2` may wrap another rebuild call.
const MAX_CALL_NESTING: usize = 8;
/// Longest text line (protocol 0 opcodes) accepted.
const MAX_LINE: usize = 4096;
/// Calls, persistent ids and BUILD copy elements out of containers that memo references can reuse for a few
/// bytes each; without a limit a small hostile pickle could demand quadratic work or exponential memory.
/// Real checkpoints copy far less than one element per pickle byte.
const COPY_BUDGET_PER_BYTE: usize = 1;
const MIN_COPY_BUDGET: usize = 1 << 20;

/// A `module.name` reference from GLOBAL / STACK_GLOBAL. As a value it is only a name; nothing is imported.
#[derive(Clone, PartialEq, Eq)]
pub struct Global {
    pub module: Rc<str>,
    pub name: Rc<str>,
}

impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

impl fmt::Debug for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel[, view])`.
#[derive(Debug, Clone)]
pub struct StorageRef {
    /// The storage class, e.g. `torch.FloatStorage`; decides the dtype.
    pub class: Global,
    /// Archive key: `data/<key>` in zip files, the root storage's key in legacy files.
    pub key: String,
    pub location: String,
    /// Elements in this storage (in a legacy view: in the view).
    pub numel: i64,
    /// Legacy views: where the view starts inside the root storage, in elements.
    pub view_offset: i64,
}

/// A tensor described by `_rebuild_tensor_v2`, not yet read: offsets and strides are in elements.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// An instance of a class this reader does not know: a record, nothing was run to make it.
pub struct Object {
    pub class: Global,
    /// Constructor arguments (a tuple), as the pickle gave them.
    pub args: Value,
    /// What BUILD set: usually the instance `__dict__` (TorchScript modules: attributes and submodules).
    pub state: Value,
}

/// A list or tuple body, shared between memo and stack.
#[derive(Clone)]
pub struct Seq(pub Rc<RefCell<Vec<Value>>>);
/// A dict body in insertion order (later duplicates win on lookup), shared between memo and stack.
#[derive(Clone)]
pub struct Dict(pub Rc<RefCell<Vec<(Value, Value)>>>);
/// An opaque object, shared between memo and stack.
#[derive(Clone)]
pub struct Obj(pub Rc<RefCell<Object>>);

/// A value built by the machine. Cloning is cheap (shared bodies).
#[derive(Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64: little-endian two's complement bytes, as LONG1/LONG4 store them.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Seq),
    /// Lists, and sets (order kept).
    List(Seq),
    Dict(Dict),
    Global(Global),
    Object(Obj),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    Device(Rc<str>),
    /// A tensor built by a torch rebuild function this reader does not implement (quantized, sparse, ...).
    /// Only an error if someone asks for it.
    UnsupportedTensor(Global),
}

impl Value {
    /// The Python-ish type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
            Value::Storage(_) => "storage",
            Value::Tensor(_) | Value::UnsupportedTensor(_) => "tensor",
            Value::Device(_) => "device",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Number of items of a tuple, list or dict (0 for anything else).
    pub fn body_len(&self) -> usize {
        match self {
            Value::Tuple(s) | Value::List(s) => s.0.borrow().len(),
            Value::Dict(d) => d.0.borrow().len(),
            _ => 0,
        }
    }

    /// Items of a tuple or list (a cheap copy of the handles).
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(s) | Value::List(s) => Some(s.0.borrow().clone()),
            _ => None,
        }
    }

    /// Entries of a dict (a cheap copy of the handles), in insertion order.
    pub fn entries(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::Dict(d) => Some(d.0.borrow().clone()),
            _ => None,
        }
    }

    /// Looks up a string key in a dict (the last matching entry wins, like Python's overwrite).
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(d) => {
                d.0.borrow()
                    .iter()
                    .rev()
                    .find(|(k, _)| k.as_str() == Some(key))
                    .map(|(_, v)| v.clone())
            }
            _ => None,
        }
    }

    fn tuple(items: Vec<Value>) -> Value {
        Value::Tuple(Seq(Rc::new(RefCell::new(items))))
    }
    fn list(items: Vec<Value>) -> Value {
        Value::List(Seq(Rc::new(RefCell::new(items))))
    }
    fn dict(entries: Vec<(Value, Value)>) -> Value {
        Value::Dict(Dict(Rc::new(RefCell::new(entries))))
    }
    fn object(class: Global, args: Value) -> Value {
        Value::Object(Obj(Rc::new(RefCell::new(Object {
            class,
            args,
            state: Value::None,
        }))))
    }
}

impl fmt::Debug for Value {
    // Shallow on purpose: values from hostile files may nest arbitrarily deep or contain cycles.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Global(g) => write!(f, "{g}"),
            Value::Object(o) => write!(f, "<{} object>", o.0.borrow().class),
            Value::Tensor(t) => write!(f, "<tensor {:?} {:?}>", t.storage.class, t.size),
            Value::Device(d) => write!(f, "device({d:?})"),
            Value::Tuple(s) | Value::List(s) => {
                write!(f, "<{} of {}>", self.type_name(), s.0.borrow().len())
            }
            Value::Dict(d) => write!(f, "<dict of {}>", d.0.borrow().len()),
            other => write!(f, "<{}>", other.type_name()),
        }
    }
}

// Dropping a deeply nested value recursively could overflow the stack on a hostile file (`]]]]...aaaa`),
// so containers hand their children to a work list instead, when they are the last owner.
fn take_children(v: &mut Value, work: &mut Vec<Value>) {
    match v {
        Value::Tuple(s) | Value::List(s) => {
            if let Some(cell) = Rc::get_mut(&mut s.0) {
                work.append(cell.get_mut());
            }
        }
        Value::Dict(d) => {
            if let Some(cell) = Rc::get_mut(&mut d.0) {
                for (k, v) in cell.get_mut().drain(..) {
                    work.push(k);
                    work.push(v);
                }
            }
        }
        Value::Object(o) => {
            if let Some(cell) = Rc::get_mut(&mut o.0) {
                let o = cell.get_mut();
                work.push(std::mem::replace(&mut o.args, Value::None));
                work.push(std::mem::replace(&mut o.state, Value::None));
            }
        }
        _ => {}
    }
}

fn drop_iteratively(first: Vec<Value>) {
    let mut work = first;
    while let Some(mut v) = work.pop() {
        take_children(&mut v, &mut work);
    }
}

impl Drop for Seq {
    fn drop(&mut self) {
        if let Some(cell) = Rc::get_mut(&mut self.0) {
            drop_iteratively(std::mem::take(cell.get_mut()));
        }
    }
}

impl Drop for Dict {
    fn drop(&mut self) {
        if let Some(cell) = Rc::get_mut(&mut self.0) {
            let flat = std::mem::take(cell.get_mut())
                .into_iter()
                .flat_map(|(k, v)| [k, v])
                .collect();
            drop_iteratively(flat);
        }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        if let Some(cell) = Rc::get_mut(&mut self.0) {
            let o = cell.get_mut();
            let args = std::mem::replace(&mut o.args, Value::None);
            let state = std::mem::replace(&mut o.state, Value::None);
            drop_iteratively(vec![args, state]);
        }
    }
}

/// One unpickled value and what it referenced.
pub struct Loaded {
    pub value: Value,
    /// Byte offset just after the STOP opcode (legacy files hold several pickles back to back).
    pub end: usize,
    /// Every storage a persistent id named, in order of appearance.
    pub storages: Vec<Rc<StorageRef>>,
    /// Containers changed after they were made (see [`Mutated`]); held only for its `Drop`, which empties
    /// them: containers cloned out of `value` are valid while this `Loaded` lives.
    #[allow(dead_code)]
    mutated: Mutated,
}

// Moving `value` out would let the containers be emptied under the caller (the list below empties them when
// the `Loaded` goes): with a Drop impl the compiler refuses the move, so values are borrowed from a live `Loaded`.
impl Drop for Loaded {
    fn drop(&mut self) {}
}

/// The containers APPEND/SETITEM/BUILD changed after they were made. Only such a change can close a reference
/// loop (`d = {}; d['self'] = d`), and `Rc` never frees a loop, so when the value is dropped these bodies are
/// emptied: a hostile pickle cannot leak memory into the process, whatever it links.
#[derive(Default)]
struct Mutated(Vec<Value>);

impl Mutated {
    fn note(&mut self, v: &Value) {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::List(x), Value::List(y)) => Rc::ptr_eq(&x.0, &y.0),
            (Value::Dict(x), Value::Dict(y)) => Rc::ptr_eq(&x.0, &y.0),
            (Value::Object(x), Value::Object(y)) => Rc::ptr_eq(&x.0, &y.0),
            _ => false,
        };
        if matches!(v, Value::List(_) | Value::Dict(_) | Value::Object(_))
            && !self.0.last().is_some_and(|l| same(l, v))
        {
            self.0.push(v.clone());
        }
    }
}

impl Drop for Mutated {
    fn drop(&mut self) {
        for v in self.0.drain(..) {
            match v {
                Value::List(s) => {
                    if let Ok(mut b) = s.0.try_borrow_mut() {
                        b.clear();
                    }
                }
                Value::Dict(d) => {
                    if let Ok(mut b) = d.0.try_borrow_mut() {
                        b.clear();
                    }
                }
                Value::Object(o) => {
                    if let Ok(mut b) = o.0.try_borrow_mut() {
                        b.args = Value::None;
                        b.state = Value::None;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Unpickles one value starting at `data[start]`. Never calls anything; see the module docs for the policy.
pub fn load(data: &[u8], start: usize) -> Result<Loaded> {
    let mut m = Machine {
        data,
        pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        storages: Vec::new(),
        mutated: Mutated::default(),
        budget: data
            .len()
            .saturating_mul(COPY_BUDGET_PER_BYTE)
            .max(MIN_COPY_BUDGET),
    };
    let value = m.run()?;
    Ok(Loaded {
        value,
        end: m.pos,
        storages: std::mem::take(&mut m.storages),
        // On an error return the machine drops with its own list, which empties the same way.
        mutated: std::mem::take(&mut m.mutated),
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: Vec<Rc<StorageRef>>,
    mutated: Mutated,
    /// Elements left to copy out of existing containers (see [`COPY_BUDGET_PER_BYTE`]).
    budget: usize,
}

/// Modules whose globals are never constructed or called, whatever the name.
const DENIED_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "sys",
    "builtins",
    "shutil",
    "socket",
    "socketserver",
    "importlib",
    "imp",
    "runpy",
    "code",
    "codeop",
    "pty",
    "commands",
    "pickle",
    "_pickle",
    "cPickle",
    "marshal",
    "ctypes",
    "_ctypes",
    "multiprocessing",
    "threading",
    "_thread",
    "signal",
    "webbrowser",
    "platform",
    "asyncio",
    "types",
    "io",
    "_io",
    "tempfile",
    "inspect",
    "pdb",
    "bdb",
    "timeit",
    "trace",
    "profile",
    "cProfile",
    "ssl",
    "http",
    "urllib",
    "ftplib",
    "smtplib",
    "telnetlib",
    "xmlrpc",
    "pydoc",
    "zipimport",
    "pkgutil",
    "site",
    "logging",
    "shelve",
    "dbm",
    "sqlite3",
    "torch.hub",
    "torch.jit",
    "torch._C",
    "torch.ops",
    "torch.utils.cpp_extension",
];

/// Functions (lowercase names) that only build data; they become opaque records, never run.
const OPAQUE_FUNCTIONS: &[(&str, &str)] = &[
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
];

fn module_denied(module: &str) -> bool {
    DENIED_MODULES.iter().any(|d| {
        module == *d
            || (module.len() > d.len()
                && module.starts_with(d)
                && module.as_bytes()[d.len()] == b'.')
    })
}

fn is_builtins(module: &str) -> bool {
    module == "builtins"
}

/// Python 2 module names that protocol-2 pickles still use, as Python 3's unpickler renames them.
fn py3_module(module: &str) -> String {
    match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        other => other,
    }
    .to_string()
}

impl<'a> Machine<'a> {
    fn run(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = *self.data.get(at).ok_or_else(|| {
                PickleError::Corrupt(format!(
                    "pickle data ends at byte {at} without a STOP opcode"
                ))
            })?;
            self.pos += 1;
            match op {
                b'.' => {
                    // STOP
                    return self.pop();
                }
                0x80 => {
                    // PROTO
                    let v = self.byte()?;
                    if v > 5 {
                        return Err(PickleError::Unsupported(format!(
                            "pickle protocol {v} (at byte {at})"
                        )));
                    }
                }
                0x95 => {
                    // FRAME: only a read-ahead hint
                    self.u64()?;
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                // constants and numbers
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let b = self.take(4)?;
                    self.stack.push(Value::Int(
                        i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                    ));
                }
                b'K' => {
                    let b = self.byte()?;
                    self.stack.push(Value::Int(b as i64));
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.stack
                        .push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                0x8a => {
                    let n = self.byte()? as usize;
                    let b = self.take(n)?;
                    self.stack.push(long_value(b));
                }
                0x8b => {
                    let n = self.len32_signed()?;
                    let b = self.take(n)?;
                    self.stack.push(long_value(b));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'I' => {
                    let line = self.line()?;
                    let v = match line {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        s => Value::Int(s.parse().map_err(|_| bad_text("INT", s, at))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let line = self.line()?;
                    let s = line.strip_suffix('L').unwrap_or(line);
                    let v = match s.parse::<i64>() {
                        Ok(v) => Value::Int(v),
                        // Protocol 0 writes every Python 2 long this way, however large.
                        Err(_) => Value::BigInt(
                            decimal_to_le(s)
                                .ok_or_else(|| bad_text("LONG", line, at))?
                                .into(),
                        ),
                    };
                    self.stack.push(v);
                }
                b'F' => {
                    let line = self.line()?;
                    let v = line
                        .parse::<f64>()
                        .map_err(|_| bad_text("FLOAT", line, at))?;
                    self.stack.push(Value::Float(v));
                }
                // strings and bytes
                b'X' => {
                    let n = self.len32()?;
                    let s = self.utf8(n, at)?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = self.byte()? as usize;
                    let s = self.utf8(n, at)?;
                    self.stack.push(s);
                }
                0x8d => {
                    let n = self.len64()?;
                    let s = self.utf8(n, at)?;
                    self.stack.push(s);
                }
                b'T' => {
                    // BINSTRING: Python 2 str; text if it decodes, bytes otherwise
                    let n = self.len32_signed()?;
                    let b = self.take(n)?;
                    self.stack.push(py2_str(b));
                }
                b'U' => {
                    let n = self.byte()? as usize;
                    let b = self.take(n)?;
                    self.stack.push(py2_str(b));
                }
                b'B' => {
                    let n = self.len32()?;
                    let b = self.take(n)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                b'C' => {
                    let n = self.byte()? as usize;
                    let b = self.take(n)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                0x8e | 0x96 => {
                    let n = self.len64()?;
                    let b = self.take(n)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                b'S' => {
                    let line = self.line()?;
                    let s = unquote(line).ok_or_else(|| bad_text("STRING", line, at))?;
                    self.stack.push(Value::Str(s.into()));
                }
                b'V' => {
                    let line = self.line()?;
                    if line.contains('\\') {
                        return Err(PickleError::Unsupported(format!(
                            "escaped text in a protocol-0 UNICODE opcode at byte {at}"
                        )));
                    }
                    self.stack.push(Value::Str(line.into()));
                }
                // containers
                b')' => self.stack.push(Value::tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let items = self.pop_n(n)?;
                    self.stack.push(Value::tuple(items));
                }
                b']' => self.stack.push(Value::list(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::list(items));
                }
                b'}' => self.stack.push(Value::dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let entries = pairs(items, at)?;
                    self.stack.push(Value::dict(entries));
                }
                0x8f => self.stack.push(Value::list(Vec::new())),
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::tuple(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v], at)?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend_list(items, at)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_dict(vec![(k, v)], at)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let entries = pairs(items, at)?;
                    self.extend_dict(entries, at)?;
                }
                // memo
                b'q' => {
                    let i = self.byte()? as u32;
                    self.put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.put(i)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let i = line.parse::<u32>().map_err(|_| bad_text("PUT", line, at))?;
                    self.put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| PickleError::Corrupt("memo grew past 2^32 entries".into()))?;
                    self.put(i)?;
                }
                b'h' => {
                    let i = self.byte()? as u32;
                    self.get(i, at)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i, at)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let i = line.parse::<u32>().map_err(|_| bad_text("GET", line, at))?;
                    self.get(i, at)?;
                }
                // globals, calls and objects
                b'c' => {
                    let module = py3_module(self.line()?);
                    let name = self.line()?.to_string();
                    self.stack.push(Value::Global(Global {
                        module: module.into(),
                        name: name.into(),
                    }));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.stack.push(Value::Global(Global { module, name }))
                        }
                        (m, n) => {
                            return corrupt(format!(
                                "STACK_GLOBAL at byte {at} needs two strings, got {} and {}",
                                m.type_name(),
                                n.type_name()
                            ));
                        }
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.call(func, args, 0, at)?;
                    self.stack.push(v);
                }
                b'i' => {
                    // INST: module and class on text lines, arguments since the mark; calls the class
                    let module = py3_module(self.line()?);
                    let name = self.line()?.to_string();
                    let args = self.pop_mark()?;
                    let g = Value::Global(Global {
                        module: module.into(),
                        name: name.into(),
                    });
                    let v = self.call(g, Value::tuple(args), 0, at)?;
                    self.stack.push(v);
                }
                b'o' => {
                    // OBJ: class and arguments since the mark; calls the class
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return corrupt(format!("OBJ at byte {at} has no class"));
                    }
                    let cls = items.remove(0);
                    let v = self.call(cls, Value::tuple(items), 0, at)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = construct(cls, args, at)?;
                    self.stack.push(v);
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = construct(cls, args, at)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    self.charge(state.body_len())?;
                    let target = self.top()?.clone();
                    self.mutated.note(&target);
                    build(&target, state);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid, at)?;
                    self.stack.push(v);
                }
                b'P' => {
                    return Err(PickleError::Unsupported(format!(
                        "text persistent id (PERSID) at byte {at}; torch files use BINPERSID"
                    )));
                }
                0x82..=0x84 => {
                    return Err(PickleError::Unsupported(format!(
                        "pickle opcode {} (0x{op:02x}, copyreg extension registry) at byte {at}",
                        ["EXT1", "EXT2", "EXT4"][(op - 0x82) as usize]
                    )));
                }
                0x97 | 0x98 => {
                    return Err(PickleError::Unsupported(format!(
                        "pickle opcode {} (0x{op:02x}, out-of-band buffers) at byte {at}",
                        if op == 0x97 {
                            "NEXT_BUFFER"
                        } else {
                            "READONLY_BUFFER"
                        }
                    )));
                }
                other => {
                    return corrupt(format!("unknown pickle opcode 0x{other:02x} at byte {at}"));
                }
            }
        }
    }

    // ---- byte reading ----

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                PickleError::Corrupt(format!(
                    "pickle data ends at byte {} but an opcode needs {n} more bytes from byte {}",
                    self.data.len(),
                    self.pos
                ))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn len32(&mut self) -> Result<usize> {
        Ok(self.u32()? as usize)
    }
    fn len32_signed(&mut self) -> Result<usize> {
        let at = self.pos;
        let n = self.u32()? as i32;
        usize::try_from(n)
            .map_err(|_| PickleError::Corrupt(format!("negative length {n} at byte {at}")))
    }
    fn len64(&mut self) -> Result<usize> {
        let at = self.pos;
        let n = self.u64()?;
        usize::try_from(n)
            .map_err(|_| PickleError::Corrupt(format!("absurd length {n} at byte {at}")))
    }
    fn utf8(&mut self, n: usize, at: usize) -> Result<Value> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b)
            .map_err(|_| PickleError::Corrupt(format!("string at byte {at} is not valid UTF-8")))?;
        Ok(Value::Str(s.into()))
    }
    fn line(&mut self) -> Result<&'a str> {
        let at = self.pos;
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest
            .iter()
            .take(MAX_LINE)
            .position(|&b| b == b'\n')
            .ok_or_else(|| {
                PickleError::Corrupt(format!(
                    "text line at byte {at} has no end (or is longer than {MAX_LINE} bytes)"
                ))
            })?;
        let line = &rest[..n];
        self.pos += n + 1;
        let line = std::str::from_utf8(line).map_err(|_| {
            PickleError::Corrupt(format!("text line at byte {at} is not valid UTF-8"))
        })?;
        Ok(line.strip_suffix('\r').unwrap_or(line))
    }

    // ---- stack ----

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return corrupt(format!("pickle stack underflow before byte {}", self.pos));
        }
        self.stack
            .pop()
            .ok_or_else(|| PickleError::Corrupt("pickle stack underflow".into()))
    }
    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return corrupt(format!("pickle stack underflow before byte {}", self.pos));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }
    fn top(&self) -> Result<&Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return corrupt(format!("pickle stack underflow before byte {}", self.pos));
        }
        self.stack
            .last()
            .ok_or_else(|| PickleError::Corrupt("pickle stack underflow".into()))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self.marks.pop().ok_or_else(|| {
            PickleError::Corrupt(format!("pickle needs a MARK before byte {}", self.pos))
        })?;
        if mark > self.stack.len() {
            return corrupt("pickle MARK points past the stack");
        }
        Ok(self.stack.split_off(mark))
    }

    fn extend_list(&mut self, items: Vec<Value>, at: usize) -> Result<()> {
        let top = self.top()?.clone();
        self.mutated.note(&top);
        match &top {
            Value::List(s) => {
                s.0.borrow_mut().extend(items);
                Ok(())
            }
            // APPEND on an opaque object: Python would call its append(); keep the items in its state instead.
            Value::Object(o) => {
                let mut o = o.0.borrow_mut();
                if !matches!(o.state, Value::List(_)) {
                    o.state = Value::list(Vec::new());
                }
                if let Value::List(s) = &o.state {
                    s.0.borrow_mut().extend(items);
                }
                Ok(())
            }
            other => corrupt(format!("APPEND at byte {at} on a {}", other.type_name())),
        }
    }

    fn extend_dict(&mut self, entries: Vec<(Value, Value)>, at: usize) -> Result<()> {
        let top = self.top()?.clone();
        self.mutated.note(&top);
        match &top {
            Value::Dict(d) => {
                d.0.borrow_mut().extend(entries);
                Ok(())
            }
            // SETITEM on an opaque object (a dict subclass): keep the items in its state.
            Value::Object(o) => {
                let mut o = o.0.borrow_mut();
                if !matches!(o.state, Value::Dict(_)) {
                    o.state = Value::dict(Vec::new());
                }
                if let Value::Dict(d) = &o.state {
                    d.0.borrow_mut().extend(entries);
                }
                Ok(())
            }
            other => corrupt(format!("SETITEM at byte {at} on a {}", other.type_name())),
        }
    }

    fn put(&mut self, i: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32, at: usize) -> Result<()> {
        let v = self
            .memo
            .get(&i)
            .ok_or_else(|| {
                PickleError::Corrupt(format!("memo index {i} at byte {at} was never stored"))
            })?
            .clone();
        self.stack.push(v);
        Ok(())
    }

    fn charge(&mut self, n: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| {
            PickleError::Corrupt(format!(
                "the pickle copies far more data than its size allows (at byte {}); a pickle bomb?",
                self.pos
            ))
        })?;
        Ok(())
    }

    // ---- persistent ids (torch storages) ----

    fn persistent_load(&mut self, pid: Value, at: usize) -> Result<Value> {
        self.charge(pid.body_len())?;
        let items = pid.items().ok_or_else(|| {
            PickleError::Corrupt(format!(
                "persistent id at byte {at} is a {}, not a tuple",
                pid.type_name()
            ))
        })?;
        let kind = match items.first() {
            Some(Value::Str(s)) => s.to_string(),
            Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => return corrupt(format!("persistent id at byte {at} has no type name")),
        };
        match kind.as_str() {
            "storage" => {
                if items.len() < 5 {
                    return corrupt(format!(
                        "storage persistent id at byte {at} has {} fields, not 5",
                        items.len()
                    ));
                }
                let class = match &items[1] {
                    Value::Global(g) => g.clone(),
                    other => {
                        return corrupt(format!(
                            "storage type at byte {at} is a {}, not a class",
                            other.type_name()
                        ));
                    }
                };
                let key = key_string(&items[2]).ok_or_else(|| {
                    PickleError::Corrupt(format!("storage key at byte {at} is not a string"))
                })?;
                let location = items[3].as_str().unwrap_or("").to_string();
                let numel = nonneg(&items[4], "storage size", at)?;
                let mut storage = StorageRef {
                    class,
                    key,
                    location,
                    numel,
                    view_offset: 0,
                };
                // Legacy files: (view_key, offset, size) makes this a slice of the root storage.
                if let Some(view) = items.get(5).and_then(|v| v.items()) {
                    if view.len() != 3 {
                        return corrupt(format!(
                            "storage view at byte {at} has {} fields, not 3",
                            view.len()
                        ));
                    }
                    storage.view_offset = nonneg(&view[1], "storage view offset", at)?;
                    storage.numel = nonneg(&view[2], "storage view size", at)?;
                }
                let storage = Rc::new(storage);
                self.storages.push(storage.clone());
                Ok(Value::Storage(storage))
            }
            // Legacy whole-module saves: ('module', class, source file, source). Only the class, as a name.
            "module" => Ok(items.get(1).cloned().unwrap_or(Value::None)),
            other => corrupt(format!("unknown persistent id type {other:?} at byte {at}")),
        }
    }

    // ---- calls: the whole allowlist lives here ----

    fn call(&mut self, func: Value, args: Value, depth: usize, at: usize) -> Result<Value> {
        let g = match func {
            Value::Global(g) => g,
            other => {
                return Err(PickleError::Refused(format!(
                    "a computed {} value instead of a named function (at byte {at})",
                    other.type_name()
                )));
            }
        };
        self.charge(args.body_len())?;
        // Containers passed on by the call (OrderedDict pairs, set items, torch.Size) are copied too.
        self.charge(
            args.items()
                .and_then(|a| a.first().map(Value::body_len))
                .unwrap_or(0),
        )?;
        let args = match args.items() {
            Some(a) if matches!(args, Value::Tuple(_)) => a,
            _ => {
                return corrupt(format!(
                    "REDUCE of {g} at byte {at} has {} arguments, not a tuple",
                    args.type_name()
                ));
            }
        };
        let module: &str = &g.module;
        let name: &str = &g.name;
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                rebuild_tensor(&g, &args, at)
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => first_arg(&g, &args, at),
            ("torch._tensor", "_rebuild_from_type_v2") | ("torch._utils", "_rebuild_from_type") => {
                // (func, new_type, args, state): rebuild with func, ignore the subclass and its Python state
                if depth >= MAX_CALL_NESTING {
                    return corrupt(format!(
                        "{g} nested more than {MAX_CALL_NESTING} deep at byte {at}"
                    ));
                }
                if args.len() < 3 {
                    return corrupt(format!(
                        "{g} at byte {at} has {} arguments, not 4",
                        args.len()
                    ));
                }
                self.call(args[0].clone(), args[2].clone(), depth + 1, at)
            }
            ("collections", "OrderedDict") | ("collections", "defaultdict") => {
                let mut entries = Vec::new();
                // OrderedDict([(k, v), ...]); defaultdict's first argument is the factory, never called
                if name == "OrderedDict"
                    && let Some(pairs) = args.first().and_then(|a| a.items())
                {
                    for p in pairs {
                        match p.items().as_deref() {
                            Some([k, v]) => entries.push((k.clone(), v.clone())),
                            _ => {
                                return corrupt(format!("{g} at byte {at} got a non-pair item"));
                            }
                        }
                    }
                }
                Ok(Value::dict(entries))
            }
            // TorchScript's typed containers: the value itself, the type tag is dropped
            (
                "torch.jit._pickle",
                "build_intlist" | "build_doublelist" | "build_boollist" | "build_tensorlist"
                | "restore_type_tag",
            ) => first_arg(&g, &args, at),
            ("_codecs", "encode") => codecs_encode(&args, at),
            ("torch", "device") => {
                let text = match args.as_slice() {
                    [Value::Str(s)] => s.to_string(),
                    [Value::Str(s), Value::Int(i)] => format!("{s}:{i}"),
                    _ => {
                        return corrupt(format!(
                            "torch.device at byte {at} has unexpected arguments"
                        ));
                    }
                };
                Ok(Value::Device(text.into()))
            }
            ("torch", "Size") => Ok(Value::tuple(
                args.first().and_then(|a| a.items()).unwrap_or_default(),
            )),
            (m, "set" | "frozenset" | "list" | "tuple") if is_builtins(m) => {
                let items = args.first().and_then(|a| a.items()).unwrap_or_default();
                Ok(if name == "list" || name == "set" {
                    Value::list(items)
                } else {
                    Value::tuple(items)
                })
            }
            (m, "bytearray") if is_builtins(m) => match args.first() {
                None => Ok(Value::Bytes(Rc::from(&[][..]))),
                Some(Value::Bytes(b)) => Ok(Value::Bytes(b.clone())),
                Some(_) => codecs_encode(&args, at),
            },
            // Plain value types: a record of the arguments (complex(1, 2), slice(0, 3), ...)
            (
                m,
                "complex" | "slice" | "range" | "int" | "float" | "str" | "bool" | "bytes" | "dict"
                | "object",
            ) if is_builtins(m) => Ok(Value::object(g.clone(), Value::tuple(args))),
            ("copyreg", "_reconstructor") => {
                // (cls, base, state): object.__new__(cls) in Python; a record here
                let cls = args.first().cloned().unwrap_or(Value::None);
                construct(
                    cls,
                    Value::tuple(args.iter().skip(2).cloned().collect()),
                    at,
                )
            }
            ("copyreg", "__newobj__") => {
                let cls = args.first().cloned().unwrap_or(Value::None);
                construct(
                    cls,
                    Value::tuple(args.iter().skip(1).cloned().collect()),
                    at,
                )
            }
            _ => {
                if module_denied(module) {
                    return Err(PickleError::Refused(g.to_string()));
                }
                if OPAQUE_FUNCTIONS
                    .iter()
                    .any(|(m, n)| *m == module && *n == name)
                {
                    return Ok(Value::object(g, Value::tuple(args)));
                }
                if module.starts_with("torch")
                    && (name.starts_with("_rebuild_") || name.starts_with("rebuild_"))
                {
                    return Ok(Value::UnsupportedTensor(g));
                }
                if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    // A class: Python would construct an instance; record it instead.
                    return Ok(Value::object(g, Value::tuple(args)));
                }
                Err(PickleError::Refused(g.to_string()))
            }
        }
    }
}

/// NEWOBJ / copyreg reconstruction of a class: an opaque record (refused for system modules).
fn construct(cls: Value, args: Value, at: usize) -> Result<Value> {
    match cls {
        Value::Global(g) => {
            if module_denied(&g.module) && !(is_builtins(&g.module) && &*g.name == "object") {
                return Err(PickleError::Refused(g.to_string()));
            }
            Ok(Value::object(g, args))
        }
        other => corrupt(format!(
            "NEWOBJ at byte {at} on a {}, not a class",
            other.type_name()
        )),
    }
}

/// BUILD: set an object's state; merge into dicts; ignore elsewhere (tensor subclass state, classes).
fn build(target: &Value, state: Value) {
    match target {
        Value::Object(o) => {
            let mut o = o.0.borrow_mut();
            match (&o.state, &state) {
                // SETITEMS may already have filled a dict subclass: keep both
                (Value::Dict(have), Value::Dict(new)) if !Rc::ptr_eq(&have.0, &new.0) => {
                    let extra = new.0.borrow().clone();
                    have.0.borrow_mut().extend(extra);
                }
                _ => o.state = state,
            }
        }
        Value::Dict(d) => {
            if let Value::Dict(new) = &state
                && !Rc::ptr_eq(&d.0, &new.0)
            {
                let extra = new.0.borrow().clone();
                d.0.borrow_mut().extend(extra);
            }
        }
        _ => {}
    }
}

fn rebuild_tensor(g: &Global, args: &[Value], at: usize) -> Result<Value> {
    if args.len() < 4 {
        return corrupt(format!(
            "{g} at byte {at} has {} arguments, not at least 4",
            args.len()
        ));
    }
    let storage = match &args[0] {
        Value::Storage(s) => s.clone(),
        other => {
            return corrupt(format!(
                "{g} at byte {at} got a {} instead of a storage",
                other.type_name()
            ));
        }
    };
    let offset = nonneg(&args[1], "storage offset", at)?;
    let size = dims(&args[2], "size", at)?;
    let stride = dims(&args[3], "stride", at)?;
    if size.len() != stride.len() {
        return corrupt(format!(
            "tensor at byte {at} has {} sizes but {} strides",
            size.len(),
            stride.len()
        ));
    }
    Ok(Value::Tensor(Rc::new(TensorRef {
        storage,
        offset,
        size,
        stride,
    })))
}

fn first_arg(g: &Global, args: &[Value], at: usize) -> Result<Value> {
    args.first()
        .cloned()
        .ok_or_else(|| PickleError::Corrupt(format!("{g} at byte {at} has no arguments")))
}

fn codecs_encode(args: &[Value], at: usize) -> Result<Value> {
    // How protocol 2 stores bytes: _codecs.encode('\xff...', 'latin1')
    let text = match args.first() {
        Some(Value::Str(s)) => s.clone(),
        _ => return corrupt(format!("_codecs.encode at byte {at} needs a string")),
    };
    let encoding = args
        .get(1)
        .and_then(|e| e.as_str())
        .unwrap_or("utf-8")
        .to_ascii_lowercase();
    let bytes: Vec<u8> = match encoding.as_str() {
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => text
            .chars()
            .map(|c| u8::try_from(c as u32))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                PickleError::Corrupt(format!("_codecs.encode at byte {at}: text is not latin-1"))
            })?,
        "utf-8" | "utf8" | "ascii" => text.as_bytes().to_vec(),
        other => {
            return Err(PickleError::Unsupported(format!(
                "_codecs.encode with encoding {other:?} at byte {at}"
            )));
        }
    };
    Ok(Value::Bytes(bytes.into()))
}

fn nonneg(v: &Value, what: &str, at: usize) -> Result<i64> {
    match v.as_int() {
        Some(i) if i >= 0 => Ok(i),
        Some(i) => corrupt(format!("negative {what} {i} at byte {at}")),
        None => corrupt(format!(
            "{what} at byte {at} is a {}, not an int",
            v.type_name()
        )),
    }
}

fn dims(v: &Value, what: &str, at: usize) -> Result<Vec<i64>> {
    let items = v.items().ok_or_else(|| {
        PickleError::Corrupt(format!("tensor {what} at byte {at} is a {}", v.type_name()))
    })?;
    if items.len() > MAX_DIMS {
        return corrupt(format!(
            "tensor at byte {at} has {} dimensions",
            items.len()
        ));
    }
    items
        .iter()
        .map(|d| nonneg(d, &format!("tensor {what}"), at))
        .collect()
}

fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_string),
        _ => None,
    }
}

fn pairs(items: Vec<Value>, at: usize) -> Result<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return corrupt(format!("SETITEMS at byte {at} has an odd number of items"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// LONG1/LONG4 payload: little-endian two's complement.
fn long_value(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() > 8 {
        return Value::BigInt(b.into());
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(a))
}

fn py2_str(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::Str(s.into()),
        Err(_) => Value::Bytes(b.into()),
    }
}

/// A protocol-0 STRING argument: `'text'` or `"text"`, simple escapes only.
fn unquote(line: &str) -> Option<String> {
    let q = line.chars().next()?;
    if (q != '\'' && q != '"') || line.len() < 2 || !line.ends_with(q) {
        return None;
    }
    let inner = &line[1..line.len() - 1];
    if !inner.contains('\\') {
        return Some(inner.to_string());
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            _ => return None,
        }
    }
    Some(out)
}

/// A decimal integer as little-endian two's complement bytes (LONG1's layout), shortest form.
fn decimal_to_le(s: &str) -> Option<Vec<u8>> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in mag.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            mag.push(carry as u8);
        }
    }
    mag.push(0); // room for the sign bit
    if neg {
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
    }
    // Drop redundant sign-extension bytes.
    while mag.len() > 1 {
        let (last, prev) = (mag[mag.len() - 1], mag[mag.len() - 2]);
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            mag.pop();
        } else {
            break;
        }
    }
    Some(mag)
}

fn bad_text(op: &str, line: &str, at: usize) -> PickleError {
    let shown: String = line.chars().take(40).collect();
    PickleError::Corrupt(format!(
        "{op} at byte {at} has an unreadable argument {shown:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(bytes: &[u8]) -> Value {
        // Leaked so the containers stay whole for the test's lifetime (dropping a Loaded empties them).
        Box::leak(Box::new(load(bytes, 0).unwrap())).value.clone()
    }

    #[test]
    fn numbers_strings_and_containers() {
        // {'a': [1, -2, 300, 70000], 'b': (1.5, True, None), 'c': b'xy'}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend([b'X', 1, 0, 0, 0, b'a', b']', b'(', b'K', 1, b'J']);
        p.extend((-2i32).to_le_bytes());
        p.extend([b'M', 0x2c, 0x01, 0x8a, 3, 0x70, 0x11, 0x01, b'e']);
        p.extend([0x8c, 1, b'b', b'G']);
        p.extend(1.5f64.to_be_bytes());
        p.extend([
            0x88, b'N', 0x87, b'U', 1, b'c', b'C', 2, b'x', b'y', b'u', b'.',
        ]);
        let v = value(&p);
        let a = v.get("a").unwrap().items().unwrap();
        let ints: Vec<i64> = a.iter().map(|x| x.as_int().unwrap()).collect();
        assert_eq!(ints, vec![1, -2, 300, 70000]);
        let b = v.get("b").unwrap().items().unwrap();
        assert!(matches!(b[0], Value::Float(x) if x == 1.5));
        assert!(matches!(b[1], Value::Bool(true)));
        assert!(matches!(b[2], Value::None));
        assert!(matches!(v.get("c"), Some(Value::Bytes(ref x)) if &x[..] == b"xy"));
    }

    #[test]
    fn memo_shares_mutations() {
        // l = []; memo[0] = l; append 7 afterwards; (l, memo[0]) sees one list
        let p = [0x80, 2, b']', b'q', 0, b'K', 7, b'a', b'h', 0, 0x86, b'.'];
        let v = value(&p);
        let items = v.items().unwrap();
        assert_eq!(items[1].items().unwrap()[0].as_int(), Some(7));
    }

    #[test]
    fn ordered_dict_and_tensor_descriptor() {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\n)R(X\x01\0\0\0w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\0\0\0storage");
        p.extend(b"ctorch\nHalfStorage\nX\x01\0\0\x000X\x03\0\0\0cpuK\x06tQ");
        p.extend(b"K\x01K\x02K\x02\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtRu.");
        let v = value(&p);
        match v.get("w") {
            Some(Value::Tensor(t)) => {
                assert_eq!(t.storage.class.to_string(), "torch.HalfStorage");
                assert_eq!(t.storage.key, "0");
                assert_eq!(t.storage.numel, 6);
                assert_eq!(
                    (t.offset, t.size.clone(), t.stride.clone()),
                    (1, vec![2, 2], vec![1, 2])
                );
            }
            other => panic!("not a tensor: {other:?}"),
        }
    }

    #[test]
    fn protocol4_stack_global_and_memoize() {
        // STACK_GLOBAL('argparse', 'Namespace') NEWOBJ () BUILD {'x': 1}
        let mut p = vec![0x80, 4, 0x95];
        p.extend(0u64.to_le_bytes());
        p.extend([0x8c, 8]);
        p.extend(b"argparse");
        p.push(0x94);
        p.extend([0x8c, 9]);
        p.extend(b"Namespace");
        p.extend([
            0x94, 0x93, 0x94, b')', 0x81, b'}', 0x8c, 1, b'x', b'K', 1, b's', b'b', b'.',
        ]);
        match value(&p) {
            Value::Object(o) => {
                let o = o.0.borrow();
                assert_eq!(o.class.to_string(), "argparse.Namespace");
                assert_eq!(o.state.get("x").unwrap().as_int(), Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn class_as_dict_key_is_only_a_name() {
        let p = b"\x80\x02}cpytorch_lightning.callbacks.model_checkpoint\nModelCheckpoint\n}s.";
        let v = value(p);
        let e = v.entries().unwrap();
        assert!(matches!(&e[0].0, Value::Global(g) if &*g.name == "ModelCheckpoint"));
    }

    #[test]
    fn refuses_system_calls() {
        for (module, name) in [
            ("posix", "system"),
            ("os", "system"),
            ("builtins", "eval"),
            ("subprocess", "Popen"),
        ] {
            let mut p = b"\x80\x02c".to_vec();
            p.extend(format!("{module}\n{name}\n").bytes());
            p.extend(b"X\x04\x00\x00\x00echo\x85R.");
            match load(&p, 0) {
                Err(PickleError::Refused(g)) => assert_eq!(g, format!("{module}.{name}")),
                other => panic!("{module}.{name}: {:?}", other.map(|l| l.value.clone())),
            }
        }
        // Any lowercase function outside the allowlist, and NEWOBJ of a system class.
        assert!(matches!(
            load(b"cnumpy.testing._private.utils\nrunstring\n)R.", 0),
            Err(PickleError::Refused(_))
        ));
        assert!(matches!(
            load(b"csubprocess\nPopen\n)\x81.", 0),
            Err(PickleError::Refused(_))
        ));
        // Calling something that is not a named global (e.g. the result of another call).
        assert!(matches!(
            load(b"cpathlib\nPosixPath\n)R)R.", 0),
            Err(PickleError::Refused(_))
        ));
    }

    #[test]
    fn foreign_classes_become_records() {
        let v = value(b"\x80\x02cpathlib\nPosixPath\nX\x01\x00\x00\x00/\x85R.");
        assert!(
            matches!(v, Value::Object(ref o) if o.0.borrow().class.to_string() == "pathlib.PosixPath")
        );
        let v = value(b"\x80\x02ccopyreg\n_reconstructor\ncomegaconf\nDictConfig\nc__builtin__\nobject\nN\x87R}b.");
        assert!(
            matches!(v, Value::Object(ref o) if o.0.borrow().class.to_string() == "omegaconf.DictConfig")
        );
    }

    #[test]
    fn torchscript_typed_containers_are_plain_values() {
        let v = value(b"\x80\x02ctorch.jit._pickle\nbuild_intlist\n(](K\x01K\x02etR.");
        assert_eq!(v.items().unwrap().len(), 2);
        assert!(matches!(
            load(b"\x80\x02ctorch.jit\nload\n)R.", 0),
            Err(PickleError::Refused(_))
        ));
    }

    #[test]
    fn codecs_encode_gives_bytes() {
        let v = value(
            b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xc3\xbfaX\x06\x00\x00\x00latin1\x86R.",
        );
        assert!(matches!(v, Value::Bytes(ref b) if b[..] == [0xff, b'a']));
    }

    #[test]
    fn corrupt_inputs_are_errors() {
        let cases: &[&[u8]] = &[
            b"\x80\x02",                      // no STOP
            b"\x80\x02X\xff\xff\xff\x7fab.",  // string longer than the data
            b"\x80\x02h\x05.",                // memo index never stored
            b"\x80\x02a.",                    // stack underflow
            b"\x80\x02u.",                    // SETITEMS without MARK
            b"\x80\x02\x8b\xff\xff\xff\xff.", // negative LONG4 length
            b"\x80\x02\xff.",                 // unknown opcode
            b"\x80\x02K\x01K\x02s.",          // SETITEM on an int
        ];
        for c in cases {
            assert!(matches!(load(c, 0), Err(PickleError::Corrupt(_))), "{c:?}");
        }
        assert!(matches!(
            load(b"\x80\x02K\x01\x82\x01.", 0),
            Err(PickleError::Unsupported(_))
        ));
    }

    #[test]
    fn pickle_bombs_are_stopped() {
        // a = {}; b = {0: 0}; then BUILD a <- b, BUILD b <- a, ... doubles the entries per few bytes.
        let mut p = b"\x80\x02}q\x00}q\x01K\x00K\x00s0".to_vec();
        for _ in 0..64 {
            p.extend(b"h\x00h\x01b0h\x01h\x00b0");
        }
        p.extend(b"N.");
        assert!(matches!(load(&p, 0), Err(PickleError::Corrupt(m)) if m.contains("pickle bomb")));
    }

    #[test]
    fn deep_nesting_drops_without_overflow() {
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 200_000));
        p.extend(std::iter::repeat_n(b'a', 199_999));
        p.push(b'.');
        let v = value(&p);
        assert!(matches!(v, Value::List(_)));
        drop(v);
    }
}
