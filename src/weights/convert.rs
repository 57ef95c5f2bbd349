//! The fast-load cache: a `.safetensors` holding only what inference needs (VQGAN encoder, quant_conv,
//! codebook, post_quant_conv, decoder; CLIP's towers), in the dtype the source stores.
//! A Lightning checkpoint is mostly loss network and optimizer state; safetensors loads by mmap.
use super::registry::ModelKind;
use super::verify::{self, human_bytes};
use super::{FileKind, load_tensors, sniff};
use crate::error::usage;
use anyhow::{Context, Result, bail};
use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Net2NetTransformer checkpoints (sflckr) keep the VQGAN under this attribute.
const NET2NET_PREFIX: &str = "first_stage_model.";
/// The parts of a VQGAN state dict that encoding and decoding use.
const VQGAN_PARTS: [&str; 5] = [
    "encoder.",
    "decoder.",
    "quant_conv.",
    "post_quant_conv.",
    "quantize.",
];
/// Entries of OpenAI's state dict that are settings, not parameters (`clip/model.py` `build_model`).
const CLIP_EXTRAS: [&str; 3] = ["input_resolution", "context_length", "vocab_size"];

#[derive(Debug, Clone)]
pub struct ConvertReport {
    pub out: PathBuf,
    pub kind: ModelKind,
    pub tensors: usize,
    pub bytes: u64,
    /// The taming config now beside the output, if there is one.
    pub yaml: Option<PathBuf>,
    /// Remarks for the user (a yaml that was kept, a missing config).
    pub notes: Vec<String>,
}

/// `<stem>.safetensors` beside the source: the name `registry::find_present` looks for.
pub fn default_output(src: &Path) -> PathBuf {
    src.with_extension("safetensors")
}

pub fn is_safetensors(path: &Path) -> bool {
    matches!(sniff(path), Ok(FileKind::Safetensors))
}

/// Whether a tensor (named as in the source file) belongs in the cache.
pub fn keeps(kind: ModelKind, name: &str) -> bool {
    match kind {
        ModelKind::Vqgan => {
            let n = name.strip_prefix(NET2NET_PREFIX).unwrap_or(name);
            VQGAN_PARTS.iter().any(|p| n.starts_with(p))
        }
        ModelKind::Clip => {
            let last = name.rsplit('.').next().unwrap_or(name);
            !CLIP_EXTRAS.contains(&last)
        }
        ModelKind::Head => true,
        // The features only: torchvision's classifier is 90% of the file and never used.
        ModelKind::Vgg => {
            name.starts_with("features.") || name.contains("perceptual_loss.net.slice")
        }
        // BatchNorm's step counters are never read.
        ModelKind::Resmem => !name.ends_with("num_batches_tracked"),
    }
}

/// Writes the cache for `src` to `out` (to a temporary name, then renamed). An existing `out` is
/// replaced only with `force`. `kind` is detected from the tensor names when not given.
pub fn convert_file(
    src: &Path,
    kind: Option<ModelKind>,
    out: &Path,
    force: bool,
) -> Result<ConvertReport> {
    if !src.is_file() {
        bail!("{}: file not found", src.display());
    }
    if out.exists() {
        let same = match (fs::canonicalize(src), fs::canonicalize(out)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return Err(usage(format!(
                "{} is already a .safetensors file; give --out to write a trimmed copy elsewhere",
                src.display()
            )));
        }
        if !force {
            bail!(
                "{} exists; pass --force to replace it (or --out to write elsewhere)",
                out.display()
            );
        }
        if out.is_dir() {
            bail!("{} is a directory; --out needs a file name", out.display());
        }
    }

    // Names first (no tensor data is read), to pick the kind and the prefix.
    let names = RefCell::new(Vec::new());
    load_tensors(src, &|n| {
        names.borrow_mut().push(n.to_string());
        false
    })
    .with_context(|| format!("cannot read {}", src.display()))?;
    let names = names.into_inner();
    let detected = verify::detect_kind(names.iter().map(|s| s.as_str()));
    // A named kind needs its own characteristic tensor (the VQGAN/CLIP detection knows only those
    // two; a VQGAN checkpoint also holds a VGG16 in its LPIPS network).
    let has_key = |k: ModelKind| names.iter().any(|n| verify::characteristic_key(k, n));
    let kind = match (kind, detected) {
        (Some(k), Some(d)) if k == d => k,
        (Some(k), _) if !matches!(k, ModelKind::Vqgan | ModelKind::Clip) && has_key(k) => k,
        (Some(k), _) => bail!(
            "{} is not a {} checkpoint ({})",
            src.display(),
            k.as_str(),
            match detected {
                Some(d) => format!("it looks like a {} model", d.as_str()),
                None => format!("it has {}", verify::expected_keys(k)),
            }
        ),
        (None, Some(d)) => d,
        (None, None) => bail!(
            "{} is neither a VQGAN nor a CLIP checkpoint: none of its {} tensors is decoder.conv_in.weight, \
             visual.conv1.weight or vision_model.embeddings.patch_embedding.weight",
            src.display(),
            names.len()
        ),
    };

    let mut map = load_tensors(src, &|n| keeps(kind, n))
        .with_context(|| format!("cannot load {}", src.display()))?;
    if kind == ModelKind::Vqgan && map.names().any(|n| n.starts_with(NET2NET_PREFIX)) {
        map.strip_prefix(NET2NET_PREFIX);
    }
    if map.is_empty() {
        bail!(
            "{} holds no {} tensors to convert",
            src.display(),
            kind.as_str()
        );
    }
    let tensors: Vec<(String, Tensor)> = map
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.contiguous()))
        .collect();

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = Tensor::write_safetensors(&tensors, &tmp)
        .map_err(anyhow::Error::from)
        .and_then(|()| fs::rename(&tmp, out).map_err(anyhow::Error::from));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", out.display())));
    }
    let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);

    let mut notes = Vec::new();
    let yaml = if kind == ModelKind::Vqgan {
        keep_yaml(src, out, force, &mut notes)?
    } else {
        None
    };
    Ok(ConvertReport {
        out: out.to_path_buf(),
        kind,
        tensors: tensors.len(),
        bytes,
        yaml,
        notes,
    })
}

/// The taming config travels with the weights: `<src stem>.yaml` is copied to `<out stem>.yaml`.
fn keep_yaml(
    src: &Path,
    out: &Path,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    let src_yaml = src.with_extension("yaml");
    let out_yaml = out.with_extension("yaml");
    if !src_yaml.is_file() {
        if out_yaml.is_file() {
            return Ok(Some(out_yaml));
        }
        notes.push(format!(
            "no taming config {} beside the source: the architecture will be inferred from the tensors",
            src_yaml.display()
        ));
        return Ok(None);
    }
    if out_yaml == src_yaml {
        return Ok(Some(out_yaml));
    }
    if out_yaml.is_file() {
        let same = fs::read(&out_yaml).ok() == fs::read(&src_yaml).ok();
        if same {
            return Ok(Some(out_yaml));
        }
        if !force {
            notes.push(format!(
                "kept {} (it differs from {}; pass --force to replace it)",
                out_yaml.display(),
                src_yaml.display()
            ));
            return Ok(Some(out_yaml));
        }
    }
    fs::copy(&src_yaml, &out_yaml).with_context(|| {
        format!(
            "cannot copy {} to {}",
            src_yaml.display(),
            out_yaml.display()
        )
    })?;
    Ok(Some(out_yaml))
}

/// One line for the user: `wrote X (183 tensors, 4.2 MB, f32)`.
pub fn summary(r: &ConvertReport) -> String {
    format!(
        "wrote {} ({} {} tensors, {})",
        r.out.display(),
        r.tensors,
        r.kind.as_str(),
        human_bytes(r.bytes)
    )
}
