//! torch checkpoint containers: zip archives (`torch.save` since 1.6, Lightning `.ckpt`, TorchScript `.pt`) and
//! legacy pre-zip files, read through our own pickle machine ([`super::pickle`]) without running any of it.
//!
//! The file is memory-mapped; the pickle yields tensor descriptors, names are chosen and filtered, and only the
//! kept tensors are copied, once, from the mapping into libtorch memory. Pages already copied are handed back to
//! the kernel, so a 980 MB Lightning checkpoint peaks near the size of the tensors kept.
use super::pickle::{self, Global, PickleError, TensorRef, Value};
use anyhow::{Context, Result, anyhow, bail};
use memmap2::Mmap;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::Path;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};
use zip::{CompressionMethod, ZipArchive};

/// Deepest nesting of dicts/objects walked when naming tensors.
const MAX_DEPTH: usize = 64;
/// Most containers and entries visited when naming tensors (shared sub-objects are visited once per path, so a
/// hostile pickle could otherwise multiply its size).
const MAX_VISITS: usize = 20_000_000;
/// Most tensor names one file may yield (real checkpoints have thousands).
const MAX_TENSORS: usize = 1_000_000;
/// Largest compressed pickle or code entry decompressed into memory (a ViT-L/14 TorchScript's data.pkl is
/// under 1 MB; a zip bomb stops here, not at the end of memory).
const MAX_INFLATED: u64 = 256 << 20;

/// Reads the tensors of a torch zip archive whose final dotted names pass `keep`.
pub fn read_zip(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Tensor>> {
    let map = map_file(path)?;
    let bytes: &[u8] = &map;
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| corrupt(path, format!("cannot read the zip directory ({e})")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    let pkl_name = names
        .iter()
        .filter(|n| n.as_str() == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .cloned()
        .ok_or_else(|| {
            let shown: Vec<&str> = names.iter().take(8).map(|s| s.as_str()).collect();
            anyhow!(
                "{} is a zip archive but not a torch checkpoint: it has no data.pkl (found {} entries: {}{})",
                path.display(),
                names.len(),
                shown.join(", "),
                if names.len() > shown.len() { ", ..." } else { "" }
            )
        })?;
    let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();

    if let Some(i) = zip.index_for_name(&format!("{prefix}byteorder")) {
        let order = entry_bytes(path, &mut zip, bytes, i)?;
        if order.trim_ascii() == b"big" {
            bail!(
                "{} was saved on a big-endian machine; vqclip reads little-endian torch files only",
                path.display()
            );
        }
    }

    let pkl_index = zip
        .index_for_name(&pkl_name)
        .ok_or_else(|| anyhow!("{}: cannot open {pkl_name}", path.display()))?;
    let pkl = entry_bytes(path, &mut zip, bytes, pkl_index)?;
    // Stored entries are sliced straight from the file, past the zip reader's CRC check. The pickle
    // decides every tensor's name, shape and storage, so a damaged one is refused here; tensor data is
    // not summed (gigabytes, read lazily).
    let want = zip
        .by_index_raw(pkl_index)
        .map(|e| e.crc32())
        .map_err(|e| anyhow!("{}: cannot read {pkl_name}: {e}", path.display()))?;
    if crc32fast::hash(&pkl) != want {
        bail!(
            "{}: {pkl_name} is damaged (its CRC-32 does not match the zip directory); download the file again",
            path.display()
        );
    }
    let loaded = pickle::load(&pkl, 0).map_err(|e| pickle_error(path, e))?;

    // TorchScript archives say which attributes are parameters and buffers in their code/ files.
    let code_prefix = format!("{prefix}code/");
    let mut module_tensors = HashMap::new();
    for name in names
        .iter()
        .filter(|n| n.starts_with(&code_prefix) && n.ends_with(".py"))
    {
        if let Some(i) = zip.index_for_name(name) {
            let text = entry_bytes(path, &mut zip, bytes, i)?;
            let module = name[code_prefix.len()..name.len() - 3].replace('/', ".");
            parse_module_tensors(
                &module,
                &String::from_utf8_lossy(&text),
                &mut module_tensors,
            );
        }
    }

    let leaves = name_tensors(path, &loaded.value, &module_tensors)?;
    let mut out = BTreeMap::new();
    let mut located: HashMap<String, Storage> = HashMap::new();
    for (name, leaf) in leaves {
        if !keep(&name) {
            continue;
        }
        let t = leaf_tensor(path, &name, &leaf)?;
        let key = &t.storage.key;
        if !located.contains_key(key) {
            let entry = format!("{prefix}data/{key}");
            let i = zip.index_for_name(&entry).ok_or_else(|| {
                corrupt(
                    path,
                    format!("tensor {name} needs storage {entry}, which the archive lacks"),
                )
            })?;
            located.insert(key.clone(), locate_entry(path, &mut zip, bytes, i)?);
        }
        let tensor = match &located[key] {
            Storage::Mapped(range) => {
                let tensor = make_tensor(path, &name, t, &bytes[range.clone()])?;
                release(&map, range.clone());
                tensor
            }
            Storage::Owned(data) => make_tensor(path, &name, t, data)?,
        };
        out.insert(name, tensor);
    }
    Ok(out)
}

/// Reads a legacy (pre-1.6, non-zip) torch file: five pickles, then every storage as an 8-byte element count
/// followed by its raw little-endian data, in the order of the key list.
pub fn read_legacy(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Tensor>> {
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    let map = map_file(path)?;
    let bytes: &[u8] = &map;
    let load = |at: usize| pickle::load(bytes, at).map_err(|e| pickle_error(path, e));

    let magic = load(0)?;
    if !matches!(&magic.value, Value::BigInt(b) if b[..] == MAGIC) {
        bail!(
            "{} is not a legacy torch file: wrong magic number",
            path.display()
        );
    }
    let version = load(magic.end)?;
    if version.value.as_int() != Some(1001) {
        bail!(
            "{}: legacy torch protocol version {:?} is not supported (expected 1001)",
            path.display(),
            version.value
        );
    }
    let sys_info = load(version.end)?;
    if matches!(
        sys_info.value.get("little_endian"),
        Some(Value::Bool(false))
    ) {
        bail!(
            "{} was saved on a big-endian machine; vqclip reads little-endian torch files only",
            path.display()
        );
    }
    let object = load(sys_info.end)?;
    let keys_pickle = load(object.end)?;
    let keys = keys_pickle
        .value
        .items()
        .ok_or_else(|| corrupt(path, "the storage key list is not a list".to_string()))?;

    // Walk the storage records; every one must be skipped over, so every type must be known.
    let mut class_of: HashMap<&str, &Global> = HashMap::new();
    for s in &object.storages {
        class_of.insert(s.key.as_str(), &s.class);
    }
    let mut ranges: HashMap<String, std::ops::Range<usize>> = HashMap::new();
    let mut pos = keys_pickle.end;
    for key in &keys {
        let key = match key {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            other => {
                return Err(corrupt(
                    path,
                    format!("storage key is a {}", other.type_name()),
                ));
            }
        };
        let class = class_of.get(key.as_str()).ok_or_else(|| {
            corrupt(
                path,
                format!("storage {key} is listed but no tensor uses it"),
            )
        })?;
        let (_, elem) = storage_kind(class).ok_or_else(|| unknown_dtype(path, &key, class))?;
        let count_bytes = bytes.get(pos..pos.saturating_add(8)).ok_or_else(|| {
            corrupt(
                path,
                format!("the file ends before storage {key} (byte {pos})"),
            )
        })?;
        let mut a = [0u8; 8];
        a.copy_from_slice(count_bytes);
        let count = u64::from_le_bytes(a);
        let start = pos + 8;
        let end = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(elem))
            .and_then(|n| start.checked_add(n))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!(
                        "storage {key} claims {count} elements but the file ends at byte {}",
                        bytes.len()
                    ),
                )
            })?;
        ranges.insert(key, start..end);
        pos = end;
    }

    let leaves = name_tensors(path, &object.value, &HashMap::new())?;
    let mut out = BTreeMap::new();
    for (name, leaf) in leaves {
        if !keep(&name) {
            continue;
        }
        let t = leaf_tensor(path, &name, &leaf)?;
        let range = ranges
            .get(&t.storage.key)
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!(
                        "tensor {name} uses storage {}, which is missing",
                        t.storage.key
                    ),
                )
            })?
            .clone();
        let tensor = make_tensor(path, &name, t, &bytes[range.clone()])?;
        release(&map, range);
        out.insert(name, tensor);
    }
    Ok(out)
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: a read-only mapping that we never write through. As with any reader, another process truncating or
    // rewriting the file while we read it is outside what we can guard against.
    unsafe { Mmap::map(&file) }
        .with_context(|| format!("cannot map {} into memory", path.display()))
}

/// Hands copied pages back to the kernel so the mapping doesn't double the peak memory.
fn release(map: &Mmap, range: std::ops::Range<usize>) {
    #[cfg(unix)]
    // SAFETY: the mapping is read-only and file-backed, so dropped pages are re-read from the file unchanged if
    // they are touched again (e.g. a storage shared by two tensors).
    unsafe {
        let _ = map.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            range.start,
            range.len(),
        );
    }
    #[cfg(not(unix))]
    let _ = (map, range);
}

fn corrupt(path: &Path, detail: String) -> anyhow::Error {
    anyhow!("{} is truncated/corrupt: {detail}", path.display())
}

fn pickle_error(path: &Path, e: PickleError) -> anyhow::Error {
    match e {
        PickleError::Refused(what) => anyhow!(
            "refusing to load {}: its pickle calls {what} (code execution); vqclip never runs code from weight files",
            path.display()
        ),
        PickleError::Corrupt(detail) => corrupt(path, detail),
        PickleError::Unsupported(what) => {
            anyhow!(
                "{}: cannot read this torch file: it uses {what}, which vqclip does not support",
                path.display()
            )
        }
    }
}

fn unknown_dtype(path: &Path, key: &str, class: &Global) -> anyhow::Error {
    anyhow!(
        "{}: storage {key} has type {class}, which vqclip cannot read (supported: Float, Half, BFloat16, Double, Long, \
         Int, Short, Char, Byte, Bool storages)",
        path.display()
    )
}

/// dtype and element size of a `torch.<X>Storage` class.
fn storage_kind(class: &Global) -> Option<(Kind, usize)> {
    if !matches!(&*class.module, "torch" | "torch.cuda") {
        return None;
    }
    Some(match &*class.name {
        "FloatStorage" => (Kind::Float, 4),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "DoubleStorage" => (Kind::Double, 8),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "ShortStorage" => (Kind::Int16, 2),
        "CharStorage" => (Kind::Int8, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        "BoolStorage" => (Kind::Bool, 1),
        _ => return None,
    })
}

/// Where a zip entry's bytes are: inside the mapping (stored entries, the torch default) or inflated.
enum Storage {
    Mapped(std::ops::Range<usize>),
    Owned(Vec<u8>),
}

fn locate_entry(
    path: &Path,
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    bytes: &[u8],
    i: usize,
) -> Result<Storage> {
    let (name, method, start, len, size) = {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| corrupt(path, format!("zip entry {i}: {e}")))?;
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        if f.encrypted() {
            bail!("{}: zip entry {name} is encrypted", path.display());
        }
        let start = f
            .data_start()
            .ok_or_else(|| corrupt(path, format!("zip entry {name} has no data offset")))?;
        (name, f.compression(), start, f.compressed_size(), f.size())
    };
    if method == CompressionMethod::Stored {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!("zip entry {name} runs past the end of the file"),
                )
            })?;
        return Ok(Storage::Mapped(start as usize..end as usize));
    }
    // Not what torch writes, but a re-zipped archive still reads (at the cost of one copy of this entry).
    if size > MAX_INFLATED.min((bytes.len() as u64).saturating_mul(1100)) {
        return Err(corrupt(
            path,
            format!("zip entry {name} claims an absurd size of {size} bytes"),
        ));
    }
    let mut f = zip
        .by_index(i)
        .map_err(|e| corrupt(path, format!("zip entry {name}: {e}")))?;
    let mut data = Vec::with_capacity(size as usize);
    f.by_ref()
        .take(size)
        .read_to_end(&mut data)
        .map_err(|e| corrupt(path, format!("cannot inflate zip entry {name} ({e})")))?;
    Ok(Storage::Owned(data))
}

fn entry_bytes<'m>(
    path: &Path,
    zip: &mut ZipArchive<Cursor<&'m [u8]>>,
    bytes: &'m [u8],
    i: usize,
) -> Result<Cow<'m, [u8]>> {
    Ok(match locate_entry(path, zip, bytes, i)? {
        Storage::Mapped(r) => Cow::Borrowed(&bytes[r]),
        Storage::Owned(v) => Cow::Owned(v),
    })
}

/// Collects `__parameters__` and `__buffers__` of every `class X(Module):` in a TorchScript code file,
/// keyed by the qualified class name the pickle uses (`__torch__.clip.model.VisionTransformer`).
fn parse_module_tensors(module: &str, text: &str, out: &mut HashMap<String, HashSet<String>>) {
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("class ") {
            current = rest
                .strip_suffix("(Module):")
                .map(|class| format!("{module}.{}", class.trim()));
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        let Some(class) = &current else { continue };
        let t = line.trim_start();
        if let Some(list) = t
            .strip_prefix("__parameters__ = [")
            .or_else(|| t.strip_prefix("__buffers__ = ["))
        {
            let names = out.entry(class.clone()).or_default();
            for (i, part) in list.split('"').enumerate() {
                if i % 2 == 1 {
                    names.insert(part.to_string());
                }
            }
        }
    }
}

/// A named leaf of the object tree.
enum Leaf {
    Tensor(Rc<TensorRef>),
    Unsupported(Global),
}

fn leaf_tensor<'l>(path: &Path, name: &str, leaf: &'l Leaf) -> Result<&'l TensorRef> {
    match leaf {
        Leaf::Tensor(t) => Ok(t),
        Leaf::Unsupported(g) => {
            bail!(
                "{}: tensor {name} is built by {g}, a tensor kind vqclip does not support",
                path.display()
            )
        }
    }
}

/// Chooses what the file's tensors are called: a Lightning `state_dict`, a `model`/`module` sub-dict, a plain
/// dict (nested dicts joined with dots), a TorchScript module tree or a pickled `nn.Module` (attribute paths).
fn name_tensors(
    path: &Path,
    top: &Value,
    module_tensors: &HashMap<String, HashSet<String>>,
) -> Result<Vec<(String, Leaf)>> {
    let mut candidates = Vec::new();
    if let Value::Dict(_) = top {
        for key in ["state_dict", "model", "module"] {
            if let Some(v @ (Value::Dict(_) | Value::Object(_))) = top.get(key) {
                candidates.push(v);
            }
        }
    }
    for c in candidates {
        let leaves = flatten(path, &c, module_tensors)?;
        if !leaves.is_empty() {
            return Ok(leaves);
        }
    }
    let leaves = flatten(path, top, module_tensors)?;
    if leaves.is_empty() {
        bail!(
            "{} holds no tensors (its top-level value is a {})",
            path.display(),
            describe(top)
        );
    }
    Ok(leaves)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Object(o) => format!("{} object", o.0.borrow().class),
        Value::Dict(_) => {
            let keys: Vec<String> = v
                .entries()
                .unwrap_or_default()
                .iter()
                .take(8)
                .map(|(k, _)| {
                    k.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{k:?}"))
                })
                .collect();
            format!("dict with keys [{}]", keys.join(", "))
        }
        other => other.type_name().to_string(),
    }
}

fn flatten(
    path: &Path,
    root: &Value,
    module_tensors: &HashMap<String, HashSet<String>>,
) -> Result<Vec<(String, Leaf)>> {
    let mut f = Flattener {
        module_tensors,
        out: Vec::new(),
        ancestors: Vec::new(),
        visits: 0,
    };
    f.walk(root, "").map_err(|detail| corrupt(path, detail))?;
    Ok(f.out)
}

struct Flattener<'c> {
    module_tensors: &'c HashMap<String, HashSet<String>>,
    out: Vec<(String, Leaf)>,
    /// Containers on the current path (a pickle may hold cycles).
    ancestors: Vec<*const ()>,
    visits: usize,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn key_name(k: &Value) -> Option<String> {
    match k {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

impl Flattener<'_> {
    fn walk(&mut self, v: &Value, prefix: &str) -> std::result::Result<(), String> {
        match v {
            Value::Tensor(t) => self.leaf(prefix, Leaf::Tensor(t.clone()))?,
            Value::UnsupportedTensor(g) => self.leaf(prefix, Leaf::Unsupported(g.clone()))?,
            Value::Dict(d) => {
                let id = Rc::as_ptr(&d.0) as *const ();
                self.enter(id, v.body_len())?;
                for (k, v) in v.entries().unwrap_or_default() {
                    if let Some(k) = key_name(&k) {
                        self.walk(&v, &join(prefix, &k))?;
                    }
                }
                self.ancestors.pop();
            }
            Value::Object(o) => {
                let id = Rc::as_ptr(&o.0) as *const ();
                let (class, state) = {
                    let o = o.0.borrow();
                    (o.class.to_string(), o.state.clone())
                };
                self.enter(id, state.body_len())?;
                if state.get("_parameters").is_some() && state.get("_modules").is_some() {
                    // A pickled nn.Module: its __dict__ keeps parameters, buffers and children apart.
                    for part in ["_parameters", "_buffers", "_modules"] {
                        if let Some(d @ Value::Dict(_)) = state.get(part) {
                            self.walk(&d, prefix)?;
                        }
                    }
                } else {
                    // TorchScript module (or any object): tensor attributes that are parameters or buffers
                    // (all of them when the class is unknown), and sub-objects.
                    let allowed = self.module_tensors.get(&class);
                    for (k, v) in state.entries().unwrap_or_default() {
                        let Some(k) = key_name(&k) else { continue };
                        match &v {
                            Value::Tensor(_) | Value::UnsupportedTensor(_)
                                if allowed.is_none_or(|a| a.contains(&k)) =>
                            {
                                self.walk(&v, &join(prefix, &k))?
                            }
                            // Submodules; plain dict attributes too, unless the class is a known
                            // TorchScript module (its dict attributes are not in its state_dict).
                            Value::Object(_) => self.walk(&v, &join(prefix, &k))?,
                            Value::Dict(_) if allowed.is_none() => {
                                self.walk(&v, &join(prefix, &k))?
                            }
                            _ => {}
                        }
                    }
                }
                self.ancestors.pop();
            }
            _ => {}
        }
        Ok(())
    }

    fn leaf(&mut self, name: &str, leaf: Leaf) -> std::result::Result<(), String> {
        if self.out.len() >= MAX_TENSORS {
            return Err(format!("it names more than {MAX_TENSORS} tensors"));
        }
        self.out.push((name.to_string(), leaf));
        Ok(())
    }

    fn enter(&mut self, id: *const (), entries: usize) -> std::result::Result<(), String> {
        self.visits = self.visits.saturating_add(1 + entries);
        if self.visits > MAX_VISITS {
            return Err(format!(
                "its object graph has more than {MAX_VISITS} containers and entries"
            ));
        }
        if self.ancestors.len() >= MAX_DEPTH {
            return Err(format!(
                "its tensors are nested more than {MAX_DEPTH} levels deep"
            ));
        }
        if self.ancestors.contains(&id) {
            return Err("its object graph contains a cycle".to_string());
        }
        self.ancestors.push(id);
        Ok(())
    }
}

fn is_contiguous(size: &[i64], stride: &[i64]) -> bool {
    let mut expected = 1i64;
    for (&s, &st) in size.iter().zip(stride).rev() {
        if s != 1 && st != expected {
            return false;
        }
        expected = expected.saturating_mul(s);
    }
    true
}

/// Copies one tensor out of its storage bytes (the only copy), checking every offset against the data.
fn make_tensor(path: &Path, name: &str, t: &TensorRef, data: &[u8]) -> Result<Tensor> {
    let key = &t.storage.key;
    let (kind, elem) =
        storage_kind(&t.storage.class).ok_or_else(|| unknown_dtype(path, key, &t.storage.class))?;
    let bad = |what: &str| {
        corrupt(
            path,
            format!(
                "tensor {name} has {what} (size {:?}, stride {:?})",
                t.size, t.stride
            ),
        )
    };
    let numel = t
        .size
        .iter()
        .try_fold(1i64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("an absurd size"))?;
    if numel == 0 {
        return Tensor::f_zeros(&t.size, (kind, Device::Cpu))
            .map_err(|e| anyhow!("{}: {name}: {e}", path.display()));
    }
    let base = t
        .storage
        .view_offset
        .checked_add(t.offset)
        .ok_or_else(|| bad("an absurd offset"))?;
    let span = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(0i64, |acc, (&s, &st)| {
            acc.checked_add((s - 1).checked_mul(st)?)
        })
        .ok_or_else(|| bad("absurd strides"))?;
    let elems = |n: i64| usize::try_from(n).ok().and_then(|n| n.checked_mul(elem));
    let start = elems(base).ok_or_else(|| bad("an absurd offset"))?;
    let end = base
        .checked_add(span)
        .and_then(|e| e.checked_add(1))
        .and_then(elems)
        .ok_or_else(|| bad("an absurd extent"))?;
    if end > data.len() {
        return Err(corrupt(
            path,
            format!(
                "tensor {name} needs {end} bytes of storage {key} (offset {}, size {:?}, stride {:?}) but it holds {}",
                t.offset,
                t.size,
                t.stride,
                data.len()
            ),
        ));
    }
    let tch_err = |e: tch::TchError| anyhow!("{}: cannot build tensor {name}: {e}", path.display());
    if is_contiguous(&t.size, &t.stride) {
        let n = elems(numel).ok_or_else(|| bad("an absurd size"))?;
        Tensor::f_from_data_size(&data[start..start + n], &t.size, kind).map_err(tch_err)
    } else {
        // Copy the span the view covers, then let libtorch gather it into a contiguous tensor.
        let flat =
            Tensor::f_from_data_size(&data[start..end], &[span + 1], kind).map_err(tch_err)?;
        flat.f_as_strided(&t.size, &t.stride, 0)
            .and_then(|v| v.f_contiguous())
            .map_err(tch_err)
    }
}
