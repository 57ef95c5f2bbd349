//! Loading a run's frozen models (fetching missing known ones when asked) and what resume checks
//! about them.
use super::checkpoint::WeightFile;
use super::engine::Models;
use crate::models::clip::Clip;
use crate::models::head::Head;
use crate::models::vqgan::Vqgan;
use crate::settings::{DrawerKind, LossKind, Settings};
use crate::weights::registry::{self, ModelKind};
use anyhow::{Result, bail};
use std::path::Path;

/// The loaded models' sizes for the memory estimate.
pub fn model_sizes(models: &Models) -> crate::generate::memory::ModelSizes<'_> {
    let bytes = |vs: &tch::nn::VarStore| -> f64 {
        vs.variables()
            .values()
            .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as f64)
            .sum()
    };
    crate::generate::memory::ModelSizes {
        vqgan: models.vqgan.as_ref().map(|v| v.config()),
        clips: models.clips.iter().map(|c| c.config()).collect(),
        weight_bytes: models.vqgan.as_ref().map_or(0.0, |v| bytes(v.var_store()))
            + models
                .clips
                .iter()
                .map(|c| bytes(c.var_store()))
                .sum::<f64>()
            // The loss models' weights (their activations are not in the estimate).
            + models.vgg.as_ref().map_or(0, |v| v.bytes()) as f64
            + models.resmem.as_ref().map_or(0, |r| r.bytes()) as f64,
    }
}

pub fn check_weights(saved: &[WeightFile], now: &[WeightFile]) -> Result<()> {
    for (a, b) in saved.iter().zip(now) {
        if a.bytes != b.bytes {
            bail!(
                "the {} weights changed since the checkpoint ({} was {} bytes, {} is {} bytes); \
                 resume needs the same files",
                a.role,
                a.path,
                a.bytes,
                b.path,
                b.bytes
            );
        }
    }
    Ok(())
}

/// Loads the VQGAN (vqgan drawer only) and every CLIP model of the settings.
pub fn load_models(
    settings: &Settings,
    device: tch::Device,
    fetch: bool,
    quiet: bool,
) -> Result<Models> {
    let mut weights = Vec::new();
    // Only the vqgan drawer reads a VQGAN; the others need no file for it.
    let vqgan = if settings.drawer == DrawerKind::Vqgan {
        let vq_path = resolve_or_fetch(&settings.vqgan, ModelKind::Vqgan, fetch, quiet)?;
        weights.push(weight_file("vqgan", &vq_path));
        Some(Vqgan::load(&vq_path, device)?)
    } else {
        None
    };
    let mut clips = Vec::new();
    for spec in &settings.clip {
        let p = resolve_or_fetch(spec, ModelKind::Clip, fetch, quiet)?;
        weights.push(weight_file("clip", &p));
        clips.push(Clip::load(&p, device)?);
    }
    let uses = |kind| settings.loss.iter().any(|t| t.kind == kind);
    let head = if uses(LossKind::Aesthetic) {
        let p = resolve_or_fetch(&settings.aesthetic_model, ModelKind::Head, fetch, quiet)?;
        weights.push(weight_file("head", &p));
        let head = Head::load(&p, device)?;
        let index = match crate::settings::aesthetic_clip(settings)? {
            Some(i) => i,
            None => clips
                .iter()
                .position(|c| c.config().embed_dim == head.dim())
                .ok_or_else(|| {
                    crate::error::usage(format!(
                        "--aesthetic-model {}: it reads {}-number embeddings, and no --clip model of this run makes them",
                        p.display(),
                        head.dim()
                    ))
                })?,
        };
        Some((index, head))
    } else {
        None
    };
    let vgg = if uses(LossKind::Style) {
        let p = resolve_or_fetch(&settings.style_model, ModelKind::Vgg, fetch, quiet)?;
        weights.push(weight_file("vgg", &p));
        Some(crate::models::vgg::Vgg16::load(&p, device)?)
    } else {
        None
    };
    let resmem = if uses(LossKind::Resmem) {
        let p = resolve_or_fetch(&settings.resmem_model, ModelKind::Resmem, fetch, quiet)?;
        weights.push(weight_file("resmem", &p));
        Some(crate::models::resmem::ResMem::load(&p, device)?)
    } else {
        None
    };
    Ok(Models {
        vqgan,
        clips,
        head,
        vgg,
        resmem,
        weights,
    })
}

/// A known model that is missing is downloaded first when `fetch` is on.
fn resolve_or_fetch(
    spec: &str,
    kind: ModelKind,
    fetch: bool,
    quiet: bool,
) -> Result<std::path::PathBuf> {
    if fetch
        && !Path::new(spec).is_file()
        && let Some(entry) = registry::find(spec, kind)
    {
        let dir = registry::weights_dir();
        if registry::find_present(entry, &dir).is_none() {
            return crate::weights::fetch::fetch_model(entry, &dir, quiet);
        }
    }
    registry::resolve(spec, kind).map_err(|e| {
        let missing_known = registry::find(spec, kind).is_some_and(|m| {
            !m.bundled && registry::find_present(m, &registry::weights_dir()).is_none()
        });
        if missing_known {
            anyhow::anyhow!("{e:#}\n{DEMO_HINT}")
        } else {
            e
        }
    })
}

/// Shown under a missing-weights error: the bundled demo world makes an image with no download.
pub const DEMO_HINT: &str = "hint: no weights yet, or no network? `vqclip generate \"a red circle on a blue background\" --preset demo` makes an image with the bundled demo models (flat shapes in 8 colours)";

fn weight_file(role: &str, path: &Path) -> WeightFile {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    WeightFile {
        role: role.to_string(),
        path: path.display().to_string(),
        bytes,
    }
}
