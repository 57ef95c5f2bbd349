//! Settings resolution and run-directory rules for `generate` (all validation before any model loads).
use crate::error::usage;
use crate::generate::checkpoint;
use crate::settings::{PartialSettings, Settings, check_resume_layer, slug};
pub use crate::settings::{read_config, resolve_layers};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `generate` will do, before any model is loaded (all validation done here).
#[derive(Debug)]
pub struct Plan {
    pub settings: Settings,
    pub run_dir: PathBuf,
    pub resume: bool,
    /// Write into a run directory that already holds a result (`--force`).
    pub force: bool,
}

/// What a caller asks of one run: the layers its settings come from and where it goes. The
/// command line builds one from its flags, `batch` from a job, `--count` and `--style-frames` one
/// per member.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The flag layer (highest precedence).
    pub flags: PartialSettings,
    /// Presets, applied in order under `config` and `flags`.
    pub presets: Vec<String>,
    /// A settings file, a run.toml or a vqclip PNG.
    pub config: Option<PathBuf>,
    /// The run directory (default outputs/<date>-<time>-<prompt>).
    pub out: Option<PathBuf>,
    /// Allow writing into a run directory that already holds a result.
    pub force: bool,
    /// Continue the run in this directory from its checkpoint.
    pub resume: Option<PathBuf>,
}

/// Resolves flags, presets and config into validated settings and a run directory.
pub fn plan(req: &Request) -> Result<Plan> {
    if let Some(dir) = &req.resume {
        return plan_resume(req, dir);
    }
    let mut layers = Vec::new();
    if let Some(cfg) = &req.config {
        layers.push(read_config(cfg)?);
    }
    layers.push(req.flags.clone());
    let settings = resolve_layers(&req.presets, layers)?;
    let run_dir = match &req.out {
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
    check_run_dir(&run_dir, req.force)?;
    Ok(Plan {
        settings,
        run_dir,
        resume: false,
        force: req.force,
    })
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

fn plan_resume(req: &Request, dir: &Path) -> Result<Plan> {
    let flags = req.flags.clone();
    check_resume_layer(&flags)?;
    // The run's own options that name another run or other settings.
    let others: &[(&str, bool)] = &[
        ("--out", req.out.is_some()),
        ("--force", req.force),
        ("--preset", !req.presets.is_empty()),
        ("--config", req.config.is_some()),
    ];
    if let Some((name, _)) = others.iter().find(|(_, set)| *set) {
        return Err(usage(format!(
            "cannot change {name} on resume (only {} may be given with --resume)",
            crate::settings::resume_flags()
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
    // Only the settings declared `may_change` are left in the flag layer.
    partial.merge(flags);
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
        force: false,
    })
}
