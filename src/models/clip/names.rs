//! `--clip` values -> files. The known names (`ViT-B/32`, ..., `RN50`, ..., `RN50x64`) and their
//! file names live in the model registry (`crate::weights::registry`).
use crate::weights::registry::{self, ModelKind};
use anyhow::Result;
use std::path::PathBuf;

/// A known name -> its file in the weights directory (`$VQCLIP_WEIGHTS`, default `weights/`:
/// `ViT-B-32.pt`, or a `ViT-B-32.safetensors` conversion); anything else is taken as a path.
/// A missing known model is a runtime error naming the expected file and `vqclip weights fetch`;
/// a word that is neither a known name nor a path is a usage error listing the names.
pub fn resolve_clip(spec: &str) -> Result<PathBuf> {
    registry::resolve(spec, ModelKind::Clip)
}

/// The CLIP names the registry knows, in its order.
pub fn known_clip_models() -> Vec<String> {
    registry::models()
        .iter()
        .filter(|m| m.kind == ModelKind::Clip)
        .map(|m| m.name.clone())
        .collect()
}
