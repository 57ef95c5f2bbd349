//! Reads any supported CLIP file into one canonical state dict with OpenAI's key names:
//! 1. OpenAI's TorchScript `.pt` (parameters only; the graph is never run),
//! 2. open_clip `.safetensors`/`.bin` with OpenAI names (maybe under `module.`/`model.`/`state_dict.`),
//! 3. Hugging Face `transformers` `CLIPModel` safetensors (names mapped, q/k/v fused).
//!
//! Upstream names: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py and
//! https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py
use crate::weights::{TensorMap, load_tensors};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

/// Which key-naming convention a file used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFormat {
    /// OpenAI names (the official TorchScript files and open_clip state dicts).
    OpenAi,
    /// Hugging Face `transformers` `CLIPModel` names.
    HuggingFace,
}

const OPENAI_ANCHOR: &str = "visual.conv1.weight";
const HF_ANCHOR: &str = "vision_model.embeddings.patch_embedding.weight";

/// Loads `path` and returns its tensors under OpenAI's names (CPU, file dtype).
pub fn read_clip_tensors(path: &Path) -> Result<(TensorMap, ClipFormat)> {
    let map = load_tensors(path, &|_| true)
        .with_context(|| format!("cannot load CLIP model {}", path.display()))?;
    canonicalize(map)
}

/// Detects the naming convention of an already loaded state dict and maps it to OpenAI's names.
pub fn canonicalize(map: TensorMap) -> Result<(TensorMap, ClipFormat)> {
    if let Some(prefix) = anchor_prefix(&map, OPENAI_ANCHOR) {
        return Ok((keep_under(map, &prefix), ClipFormat::OpenAi));
    }
    if let Some(prefix) = anchor_prefix(&map, HF_ANCHOR) {
        let map = keep_under(map, &prefix);
        return Ok((from_hugging_face(map)?, ClipFormat::HuggingFace));
    }
    bail!(not_clip_message(&map))
}

/// The shortest prefix before `anchor` among the keys that end with it
/// (`""`, `module.`, `model.`, `state_dict.`, ...).
fn anchor_prefix(map: &TensorMap, anchor: &str) -> Option<String> {
    map.names()
        .filter_map(|k| k.strip_suffix(anchor))
        .filter(|p| p.is_empty() || p.ends_with('.'))
        .min_by_key(|p| p.len())
        .map(str::to_string)
}

/// Keeps the keys under `prefix`, without it.
fn keep_under(map: TensorMap, prefix: &str) -> TensorMap {
    if prefix.is_empty() {
        return map;
    }
    let tensors = map
        .tensors
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v)))
        .collect();
    TensorMap {
        source: map.source,
        tensors,
    }
}

/// "X is not a CLIP model: it has keys like a, b, c (looks like a VQGAN)".
fn not_clip_message(map: &TensorMap) -> String {
    let file = map.source.display();
    if map.is_empty() {
        return format!("{file} is not a CLIP model: it holds no tensors");
    }
    let mut sample: Vec<&str> = map
        .names()
        .filter(|k| k.ends_with("weight"))
        .take(3)
        .collect();
    if sample.is_empty() {
        sample = map.names().take(3).collect();
    }
    let has = |p: &str| {
        map.names()
            .any(|k| k.starts_with(p) || k.contains(&format!(".{p}")))
    };
    let guess = if has("model.diffusion_model.") {
        " (looks like a Stable Diffusion checkpoint)"
    } else if has("decoder.") || has("quantize.") || has("post_quant_conv.") {
        " (looks like a VQGAN)"
    } else if has("text_model.") {
        " (looks like a CLIP text encoder without the vision tower)"
    } else {
        ""
    };
    format!(
        "{file} is not a CLIP model: it has keys like {}{guess}",
        sample.join(", ")
    )
}

/// Hugging Face `CLIPModel` names -> OpenAI names. q/k/v projections are fused into
/// `in_proj_*` (rows q, k, v); the projection matrices are transposed ([E, W] -> [W, E]).
fn from_hugging_face(map: TensorMap) -> Result<TensorMap> {
    let source = map.source;
    let mut out = BTreeMap::new();
    // layer prefix ("visual.transformer.resblocks.3.attn.in_proj_") -> [q, k, v] per weight/bias
    let mut qkv: BTreeMap<(String, &'static str), [Option<Tensor>; 3]> = BTreeMap::new();
    for (key, t) in map.tensors {
        if key.ends_with("position_ids") {
            continue;
        }
        let Some(name) = map_hf_name(&key) else {
            continue;
        };
        match name {
            HfName::Plain(n) => {
                out.insert(n, t);
            }
            HfName::Transposed(n) => {
                if t.dim() != 2 {
                    bail!(
                        "{}: {key} has shape {:?}, expected a matrix",
                        source.display(),
                        t.size()
                    );
                }
                out.insert(n, t.tr().contiguous());
            }
            HfName::InProj { block, which, part } => {
                qkv.entry((block, part)).or_default()[which] = Some(t);
            }
        }
    }
    for ((block, part), parts) in qkv {
        // a missing q/k/v leaves in_proj absent, which the loader reports as a missing key
        if let [Some(q), Some(k), Some(v)] = parts {
            out.insert(
                format!("{block}attn.in_proj_{part}"),
                Tensor::cat(&[q, k, v], 0),
            );
        }
    }
    Ok(TensorMap {
        source,
        tensors: out,
    })
}

enum HfName {
    Plain(String),
    Transposed(String),
    /// `block` ends with '.', `which` is 0/1/2 for q/k/v, `part` is "weight" or "bias".
    InProj {
        block: String,
        which: usize,
        part: &'static str,
    },
}

fn map_hf_name(key: &str) -> Option<HfName> {
    use HfName::*;
    let plain = |s: &str| Some(Plain(s.to_string()));
    match key {
        "logit_scale" => return plain("logit_scale"),
        "text_projection.weight" => return Some(Transposed("text_projection".into())),
        "visual_projection.weight" => return Some(Transposed("visual.proj".into())),
        "vision_model.embeddings.class_embedding" => return plain("visual.class_embedding"),
        "vision_model.embeddings.patch_embedding.weight" => return plain("visual.conv1.weight"),
        "vision_model.embeddings.position_embedding.weight" => {
            return plain("visual.positional_embedding");
        }
        "text_model.embeddings.token_embedding.weight" => return plain("token_embedding.weight"),
        "text_model.embeddings.position_embedding.weight" => return plain("positional_embedding"),
        _ => {}
    }
    for (hf, ours) in [
        ("vision_model.pre_layrnorm.", "visual.ln_pre."),
        ("vision_model.post_layernorm.", "visual.ln_post."),
        ("text_model.final_layer_norm.", "ln_final."),
    ] {
        if let Some(rest) = key.strip_prefix(hf) {
            return Some(Plain(format!("{ours}{rest}")));
        }
    }
    for (hf, ours) in [
        (
            "vision_model.encoder.layers.",
            "visual.transformer.resblocks.",
        ),
        ("text_model.encoder.layers.", "transformer.resblocks."),
    ] {
        let Some(rest) = key.strip_prefix(hf) else {
            continue;
        };
        let (n, inner) = rest.split_once('.')?;
        let block = format!("{ours}{n}.");
        for (which, proj) in [
            "self_attn.q_proj.",
            "self_attn.k_proj.",
            "self_attn.v_proj.",
        ]
        .iter()
        .enumerate()
        {
            if let Some(part) = inner.strip_prefix(proj) {
                let part = match part {
                    "weight" => "weight",
                    "bias" => "bias",
                    _ => return None,
                };
                return Some(InProj { block, which, part });
            }
        }
        for (hf_inner, our_inner) in [
            ("self_attn.out_proj.", "attn.out_proj."),
            ("layer_norm1.", "ln_1."),
            ("layer_norm2.", "ln_2."),
            ("mlp.fc1.", "mlp.c_fc."),
            ("mlp.fc2.", "mlp.c_proj."),
        ] {
            if let Some(part) = inner.strip_prefix(hf_inner) {
                return Some(Plain(format!("{block}{our_inner}{part}")));
            }
        }
        return None;
    }
    None
}
