//! Settings resolution and run-directory rules for `generate` (all validation before any model loads).
use crate::cli::GenerateArgs;
use crate::error::usage;
use crate::generate::checkpoint;
use crate::presets;
use crate::rundir::KEY_SETTINGS;
use crate::settings::{PartialSettings, Settings, slug};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `generate` will do, before any model is loaded (all validation done here).
#[derive(Debug)]
pub struct Plan {
    pub settings: Settings,
    pub run_dir: PathBuf,
    pub resume: bool,
}

/// Resolves flags, presets and config into validated settings and a run directory.
pub fn plan(args: &GenerateArgs) -> Result<Plan> {
    if let Some(dir) = &args.resume {
        return plan_resume(args, dir);
    }
    let mut layers = Vec::new();
    if let Some(cfg) = &args.config {
        layers.push(read_config(cfg)?);
    }
    layers.push(PartialSettings::from_args(args));
    let settings = resolve_layers(&args.preset, layers)?;
    let run_dir = match &args.out {
        Some(d) => d.clone(),
        None => {
            let first = settings
                .prompts
                .first()
                .map(|p| p.text.as_str())
                .unwrap_or("image");
            PathBuf::from("outputs").join(format!(
                "{}-{}",
                chrono::Local::now().format("%Y%m%d-%H%M%S"),
                slug(first)
            ))
        }
    };
    check_run_dir(&run_dir, args.force)?;
    Ok(Plan {
        settings,
        run_dir,
        resume: false,
    })
}

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
    if settings.drawer == crate::settings::DrawerKind::Vqgan {
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
    if let Some(p) = &settings.init_image
        && !p.is_file()
    {
        return Err(usage(format!(
            "--init-image {}: file not found",
            p.display()
        )));
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

/// A run directory holding a result is never overwritten silently.
pub fn check_run_dir(dir: &Path, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(usage(format!(
            "--out {}: exists and is not a directory",
            dir.display()
        )));
    }
    if crate::rundir::RunDir::new(dir).has_result() && !force {
        return Err(usage(format!(
            "--out {}: already holds a run ({} or {}); use --resume {} to continue it, \
             --force to overwrite, or another --out",
            dir.display(),
            crate::rundir::FINAL_PNG,
            crate::rundir::CHECKPOINT,
            dir.display()
        )));
    }
    Ok(())
}

/// `--config FILE`: a TOML with the flag keys, a run.toml, or a vqclip PNG (its settings chunk).
pub fn read_config(path: &Path) -> Result<PartialSettings> {
    let bytes = std::fs::read(path)
        .map_err(|e| usage(format!("--config {}: cannot read: {e}", path.display())))?;
    let text = if bytes.starts_with(b"\x89PNG") {
        let chunks = crate::image_io::read_png_text(path)?;
        match chunks.into_iter().find(|(k, _)| k == KEY_SETTINGS) {
            Some((_, v)) => v,
            None => {
                return Err(usage(format!(
                    "--config {}: this PNG has no vqclip settings",
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

fn plan_resume(args: &GenerateArgs, dir: &Path) -> Result<Plan> {
    let forbidden: &[(&str, bool)] = &[
        ("PROMPT", args.prompt.is_some()),
        ("--size", args.size.is_some()),
        ("--seed", args.seed.is_some()),
        ("--cutouts", args.cutouts.is_some()),
        ("--cut-pow", args.cut_pow.is_some()),
        ("--cut-method", args.cut_method.is_some()),
        ("--augments", args.augments.is_some()),
        ("--lr", args.lr.is_some()),
        ("--optimizer", args.optimizer.is_some()),
        ("--lr-drops", args.lr_drops.is_some()),
        ("--batches", args.batches.is_some()),
        ("--change-prompt-every", args.change_prompt_every.is_some()),
        ("--tile", args.tile),
        ("--zoom-every", args.zoom_every.is_some()),
        ("--zoom-start", args.zoom_start.is_some()),
        ("--zoom-scale", args.zoom_scale.is_some()),
        ("--zoom-shift", args.zoom_shift.is_some()),
        ("--zoom-rotate", args.zoom_rotate.is_some()),
        ("--init", args.init.is_some()),
        ("--init-image", args.init_image.is_some()),
        ("--init-weight", args.init_weight.is_some()),
        ("--image-prompt", !args.image_prompt.is_empty()),
        ("--noise-prompt", !args.noise_prompt.is_empty()),
        ("--loss", args.loss.is_some()),
        ("--palette", args.palette.is_some()),
        ("--palette-weight", args.palette_weight.is_some()),
        ("--vqgan", args.vqgan.is_some()),
        ("--drawer", args.drawer.is_some()),
        ("--pixel-size", args.pixel_size.is_some()),
        ("--pixel-scale", args.pixel_scale.is_some()),
        ("--fft-decay", args.fft_decay.is_some()),
        ("--fft-colors", args.fft_colors.is_some()),
        ("--fft-contrast", args.fft_contrast.is_some()),
        ("--clip", args.clip.is_some()),
        ("--precision", args.precision.is_some()),
        ("--out", args.out.is_some()),
        ("--force", args.force),
        ("--count", args.count.is_some()),
        ("--style-frames", args.style_frames.is_some()),
        ("--preset", !args.preset.is_empty()),
        ("--config", args.config.is_some()),
    ];
    if let Some((name, _)) = forbidden.iter().find(|(_, set)| *set) {
        return Err(usage(format!(
            "cannot change {name} on resume (only --steps, --save-every, --device, --quiet and --video may be given with --resume)"
        )));
    }
    let ckpt = checkpoint::find(dir).ok_or_else(|| {
        usage(format!(
            "--resume {}: no checkpoint found in that directory",
            dir.display()
        ))
    })?;
    let meta = checkpoint::read_meta(&ckpt)?;
    let mut partial = meta.settings.clone();
    let presets_record = partial.presets.take();
    if let Some(s) = args.steps {
        partial.steps = Some(s);
    }
    if let Some(s) = args.save_every {
        partial.save_every = Some(s);
    }
    if let Some(d) = &args.device {
        partial.device = Some(d.clone());
    }
    let mut settings = partial.resolve()?;
    settings.presets = presets_record.unwrap_or_default();
    if settings.steps < meta.step {
        return Err(usage(format!(
            "--steps {}: the run in {} has already done {} steps",
            settings.steps,
            dir.display(),
            meta.step
        )));
    }
    Ok(Plan {
        settings,
        run_dir: dir.to_path_buf(),
        resume: true,
    })
}
