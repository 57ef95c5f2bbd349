//! The layers a run's settings come from: presets (in order), a `--config` file (TOML, run.toml or
//! a vqclip PNG), then flags; merged, resolved, and checked against what needs no model loaded.
use super::{LossKind, PartialSettings, Settings};
use crate::error::usage;
use crate::presets;
use anyhow::Result;
use std::path::Path;

/// Presets (in order), then each layer over the last, resolved and validated: the settings a run
/// would get, with every check that needs no model loaded (weights specs, input files).
pub fn resolve_layers(presets: &[String], layers: Vec<PartialSettings>) -> Result<Settings> {
    let mut merged = PartialSettings::default();
    let mut applied = Vec::new();
    for spec in presets {
        let p = presets::load(spec)?;
        merged.merge(p.preset.settings.clone());
        applied.push(p);
    }
    for layer in layers {
        merged.merge(layer);
    }
    let mut settings = merged.resolve()?;
    for p in &applied {
        p.preset.apply_prompts(&mut settings.prompts)?;
    }
    settings
        .presets
        .extend(applied.iter().map(|p| p.name.clone()));
    if settings.drawer == super::DrawerKind::Vqgan {
        crate::weights::registry::check_spec(
            &settings.vqgan,
            crate::weights::registry::ModelKind::Vqgan,
        )?;
    }
    for c in &settings.clip {
        crate::models::clip::resolve_clip(c)
            .map(|_| ())
            .or_else(|e| {
                if crate::error::exit_code(&e) == 2 {
                    Err(e)
                } else {
                    Ok(())
                }
            })?;
    }
    settings.init_image_files()?;
    for (p, flag) in [
        (&settings.edge_input_image, "--edge-input-image"),
        (&settings.edge_mask_image, "--edge-mask-image"),
    ] {
        if let Some(p) = p
            && !p.is_file()
        {
            return Err(usage(format!("{flag} {}: file not found", p.display())));
        }
    }
    if settings.loss.iter().any(|t| t.kind == LossKind::Aesthetic) {
        aesthetic_clip(&settings)?;
    }
    for v in &settings.vector_prompts {
        if !Path::new(&v.path).is_file() {
            return Err(usage(format!("--vector-prompt {}: file not found", v.path)));
        }
    }
    if let Some(p) = &settings.image_labels {
        crate::settings::expand_glob(p, "--image-labels")?;
    }
    if let Some(p) = &settings.spot_file
        && !p.is_file()
    {
        return Err(usage(format!(
            "--spot-file {}: file not found",
            p.display()
        )));
    }
    if let Some(p) = &settings.overlay_image {
        crate::settings::expand_glob(p, "--overlay-image")?;
    }
    for t in &settings.target_images {
        t.files()?;
    }
    for ip in &settings.image_prompts {
        if !ip.path.is_file() {
            return Err(usage(format!(
                "--image-prompt {}: file not found",
                ip.path.display()
            )));
        }
    }
    Ok(settings)
}

/// `--config FILE`: a TOML with the setting keys, a run.toml, or a vqclip PNG (its settings chunk).
pub fn read_config(path: &Path) -> Result<PartialSettings> {
    let bytes = std::fs::read(path)
        .map_err(|e| usage(format!("--config {}: cannot read: {e}", path.display())))?;
    let svg = crate::generate::drawers::vector::svg::is_svg(&bytes);
    let text = if bytes.starts_with(b"\x89PNG") || svg {
        let chunks = crate::image_io::read_image_text(path)?;
        match chunks
            .into_iter()
            .find(|(k, _)| k == crate::rundir::KEY_SETTINGS)
        {
            Some((_, v)) => v,
            None => {
                return Err(usage(format!(
                    "--config {}: this image has no vqclip settings",
                    path.display()
                )));
            }
        }
    } else {
        String::from_utf8(bytes).map_err(|_| {
            usage(format!(
                "--config {}: not a UTF-8 TOML file",
                path.display()
            ))
        })?
    };
    // run.toml carries a [run] table with provenance; it is not a setting.
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        usage(format!("{}: {}", path.display(), e.message().trim()))
    })?;
    table.remove("run");
    let mut s = PartialSettings::from_toml(&toml::to_string(&table).unwrap_or_default(), path)?;
    // The presets list of a finished run is a record: its prompts are already expanded.
    s.presets = None;
    Ok(s)
}

/// `--loss aesthetic` with a known head needs the CLIP model the head was trained on: its index
/// in `--clip` (None for a head given as a file: it reads the CLIP of its input size).
pub fn aesthetic_clip(settings: &Settings) -> Result<Option<usize>> {
    use crate::weights::registry::{ModelKind, find};
    if Path::new(&settings.aesthetic_model).is_file() {
        return Ok(None);
    }
    let head = find(&settings.aesthetic_model, ModelKind::Head).ok_or_else(|| {
        usage(format!(
            "--aesthetic-model {}: not a known head (ava_vit_b_16_linear) or a file",
            settings.aesthetic_model
        ))
    })?;
    let want = head.clip.as_deref().unwrap_or_default();
    let index = settings
        .clip
        .iter()
        .position(|c| find(c, ModelKind::Clip).is_some_and(|m| m.name.eq_ignore_ascii_case(want)));
    index.map(Some).ok_or_else(|| {
        usage(format!(
            "--loss aesthetic: the head {} rates {want} image embeddings, and this run has no {want}: add it (e.g. --clip {},{want})",
            head.name,
            settings.clip.join(",")
        ))
    })
}
