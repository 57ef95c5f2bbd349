//! Reading weight files into named tensors, whatever format the user has:
//! torch zip archives (Lightning `.ckpt`, `.pt`/`.bin` state dicts, TorchScript `.pt`),
//! legacy pre-zip torch files, and `.safetensors`. Nothing from a file is ever executed.
pub mod convert;
pub mod fetch;
pub mod pickle;
pub mod registry;
pub mod safetensors_file;
pub mod torch_file;
pub mod verify;

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor, nn};

/// Named tensors read from one file (CPU, in the file's dtype).
pub struct TensorMap {
    pub source: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TensorMap {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<i64>> {
        self.tensors.get(name).map(|t| t.size())
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|k| k.as_str())
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    /// Removes a common prefix (`first_stage_model.`, `model.`) from every key that has it.
    pub fn strip_prefix(&mut self, prefix: &str) {
        let old = std::mem::take(&mut self.tensors);
        self.tensors = old
            .into_iter()
            .map(|(k, v)| match k.strip_prefix(prefix) {
                Some(s) => (s.to_string(), v),
                None => (k, v),
            })
            .collect();
    }
}

/// What a file looks like from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    TorchZip,
    TorchLegacy,
    Safetensors,
    Png,
    Jpeg,
    Yaml,
    Unknown,
}

impl FileKind {
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::TorchZip => "a torch zip archive",
            FileKind::TorchLegacy => "a legacy torch file",
            FileKind::Safetensors => "a safetensors file",
            FileKind::Png => "a PNG image",
            FileKind::Jpeg => "a JPEG image",
            FileKind::Yaml => "a text/YAML file",
            FileKind::Unknown => "an unrecognised file",
        }
    }
}

/// Sniffs the format from magic bytes (never from the extension alone).
pub fn sniff(path: &Path) -> Result<FileKind> {
    let head = verify::read_head(path)?;
    let head = &head[..head.len().min(16)];
    let n = head.len();
    Ok(
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            FileKind::TorchZip
        } else if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]) {
            FileKind::TorchLegacy
        } else if head.starts_with(b"\x89PNG") {
            FileKind::Png
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            FileKind::Jpeg
        } else if n >= 9 && head[8] == b'{' {
            FileKind::Safetensors
        } else if head.iter().all(|b| b.is_ascii()) && n > 0 {
            FileKind::Yaml
        } else {
            FileKind::Unknown
        },
    )
}

/// Reads every tensor whose name passes `keep` from a weight file, choosing the reader by magic bytes.
/// Lightning checkpoints yield their nested `state_dict`; TorchScript archives their parameters.
pub fn load_tensors(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<TensorMap> {
    let kind = sniff(path)?;
    let tensors = match kind {
        FileKind::Safetensors => safetensors_file::read(path, keep)?,
        FileKind::TorchZip => torch_file::read_zip(path, keep)?,
        FileKind::TorchLegacy => torch_file::read_legacy(path, keep)?,
        other => bail!(
            "{} is not a weight file: found {} (expected a .ckpt, .pt, .bin or .safetensors)",
            path.display(),
            other.describe()
        ),
    };
    Ok(TensorMap {
        source: path.to_path_buf(),
        tensors,
    })
}

/// Copies tensors from `map` into every variable of `vs` (converting dtype to the variable's),
/// reporting all missing and wrongly shaped names in one error.
pub fn fill_var_store(vs: &nn::VarStore, map: &TensorMap, what: &str) -> Result<()> {
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (name, var) in vars.iter() {
        match map.get(name) {
            None => missing.push(name.clone()),
            Some(src) if src.size() != var.size() => wrong.push(format!(
                "{name} (file {:?}, model {:?})",
                src.size(),
                var.size()
            )),
            Some(_) => {}
        }
    }
    if !missing.is_empty() || !wrong.is_empty() {
        missing.sort();
        wrong.sort();
        let mut msg = format!(
            "{} does not match the {what} architecture:",
            map.source.display()
        );
        if !missing.is_empty() {
            msg += &format!(" {} missing key(s): {}", missing.len(), summarize(&missing));
        }
        if !wrong.is_empty() {
            msg += &format!("; {} wrongly shaped: {}", wrong.len(), summarize(&wrong));
        }
        bail!(msg);
    }
    tch::no_grad(|| {
        for (name, var) in vars.iter() {
            if let Some(src) = map.get(name) {
                let mut var = var.shallow_clone();
                var.copy_(&src.to_device(var.device()).to_kind(var.kind()));
            }
        }
    });
    Ok(())
}

fn summarize(items: &[String]) -> String {
    const MAX: usize = 12;
    if items.len() <= MAX {
        items.join(", ")
    } else {
        format!(
            "{}, ... and {} more",
            items[..MAX].join(", "),
            items.len() - MAX
        )
    }
}

/// A float dtype name for messages.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Half => "f16",
        Kind::BFloat16 => "bf16",
        Kind::Float => "f32",
        Kind::Double => "f64",
        Kind::Int64 => "i64",
        _ => "other",
    }
}
