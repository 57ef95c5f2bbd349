//! `.safetensors` via mmap: the header is parsed by the `safetensors` crate and each kept tensor is
//! copied once from the mapped file into its own tensor memory.
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

pub fn read(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Tensor>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY-free: memmap2's map is `unsafe` only because another process could truncate the file;
    // a truncated file then faults instead of erroring, which we accept for read-only weights.
    let mmap = map(&file).with_context(|| format!("cannot map {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&mmap)
        .map_err(|e| anyhow::anyhow!("{} is truncated/corrupt: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if !keep(&name) {
            continue;
        }
        let kind = match view.dtype() {
            safetensors::Dtype::F32 => Kind::Float,
            safetensors::Dtype::F16 => Kind::Half,
            safetensors::Dtype::BF16 => Kind::BFloat16,
            safetensors::Dtype::F64 => Kind::Double,
            safetensors::Dtype::I64 => Kind::Int64,
            safetensors::Dtype::I32 => Kind::Int,
            safetensors::Dtype::I16 => Kind::Int16,
            safetensors::Dtype::I8 => Kind::Int8,
            safetensors::Dtype::U8 => Kind::Uint8,
            safetensors::Dtype::BOOL => Kind::Bool,
            other => bail!(
                "{}: tensor {name} has unsupported dtype {other:?}",
                path.display()
            ),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("{}: cannot build tensor {name}", path.display()))?;
        out.insert(name, t);
    }
    Ok(out)
}

#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: read-only map of a weight file; see the note in `read`.
    unsafe { memmap2::Mmap::map(file) }
}
