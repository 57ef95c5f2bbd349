//! The resume state of a run: `checkpoint/state.safetensors` (the drawer's parameters `z` and their
//! start `z0`, optimizer state m and v, and `adam_vmax` for amsgrad) and
//! `checkpoint/meta.toml` (format version, step, lr, optimizer step count, full settings, weight files).
//! Random draws are derived from (seed, step), so no RNG state needs saving.
//!
//! Writes go to `checkpoint.tmp/` and are renamed into place, so a kill at any moment leaves a
//! complete checkpoint (`checkpoint/`, or `checkpoint.old/` during the swap).
use crate::settings::PartialSettings;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const FORMAT_VERSION: u32 = 1;
/// The names live with the rest of the run directory's (`crate::rundir`).
pub const DIR: &str = crate::rundir::CHECKPOINT;

/// A weight file a run used, to detect a changed file on resume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WeightFile {
    pub role: String,
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub format_version: u32,
    pub vqclip_version: String,
    /// Steps completed.
    pub step: i64,
    pub lr: f64,
    pub adam_t: i64,
    pub weights: Vec<WeightFile>,
    pub settings: PartialSettings,
    /// `--auto-stop`'s watch (absent without it, and in checkpoints from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop: Option<super::auto_stop::AutoStop>,
    /// Animation runs: each frame's steps and optimizer counters (its tensors are `frame.N.*`
    /// in state.safetensors; the top-level ones are the frame that was loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animation: Option<Vec<FrameMeta>>,
}

/// An animation frame's counters in meta.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameMeta {
    pub step: i64,
    pub lr: f64,
    pub adam_t: i64,
}

pub struct State {
    pub meta: Meta,
    /// The drawer's parameters (VQGAN latents, pixel cells, spectrum).
    pub z: Tensor,
    pub z0: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    pub vmax: Option<Tensor>,
    /// Animation runs: every frame's state (empty otherwise).
    pub frames: Vec<super::engine::FrameState>,
}

pub fn save(run_dir: &Path, state: &State) -> Result<()> {
    let dir = run_dir.join(DIR);
    let tmp = run_dir.join(crate::rundir::CHECKPOINT_TMP);
    let old = run_dir.join(crate::rundir::CHECKPOINT_OLD);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let cpu = |t: &Tensor| t.detach().to_device(tch::Device::Cpu).contiguous();
    let mut tensors = vec![
        ("z".to_string(), cpu(&state.z)),
        ("z0".to_string(), cpu(&state.z0)),
        ("adam_m".to_string(), cpu(&state.m)),
        ("adam_v".to_string(), cpu(&state.v)),
    ];
    if let Some(vmax) = &state.vmax {
        tensors.push(("adam_vmax".to_string(), cpu(vmax)));
    }
    for (i, f) in state.frames.iter().enumerate() {
        let named = [
            ("z", Some(&f.z)),
            ("z0", Some(&f.z0)),
            ("adam_m", Some(&f.opt.m)),
            ("adam_v", Some(&f.opt.v)),
            ("adam_vmax", f.opt.vmax.as_ref()),
        ];
        for (name, t) in named {
            if let Some(t) = t {
                tensors.push((format!("frame.{i}.{name}"), cpu(t)));
            }
        }
    }
    Tensor::write_safetensors(&tensors, tmp.join("state.safetensors"))
        .with_context(|| format!("cannot write {}", tmp.join("state.safetensors").display()))?;
    let meta = toml::to_string(&state.meta).context("cannot serialize checkpoint metadata")?;
    write_synced(&tmp.join("meta.toml"), meta.as_bytes())?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot clear {}", old.display()))?;
        }
        std::fs::rename(&dir, &old).with_context(|| format!("cannot move {}", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot move {} into place", tmp.display()))?;
    if old.exists() {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(())
}

/// The checkpoint directory of a run: `checkpoint/`, or `checkpoint.old/` if a kill hit the swap.
pub fn find(run_dir: &Path) -> Option<PathBuf> {
    [DIR, crate::rundir::CHECKPOINT_OLD]
        .iter()
        .map(|d| run_dir.join(d))
        .find(|d| d.join("meta.toml").is_file() && d.join("state.safetensors").is_file())
}

pub fn read_meta(ckpt_dir: &Path) -> Result<Meta> {
    let path = ckpt_dir.join("meta.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_meta(&text).with_context(|| format!("cannot use {}", path.display()))
}

/// Parses and checks a checkpoint's meta.toml text.
pub fn parse_meta(text: &str) -> Result<Meta> {
    let meta: Meta = toml::from_str(text)?;
    if meta.format_version != FORMAT_VERSION {
        bail!(
            "checkpoint format {} but this vqclip reads format {FORMAT_VERSION}",
            meta.format_version
        );
    }
    Ok(meta)
}

pub fn load(ckpt_dir: &Path) -> Result<State> {
    let meta = read_meta(ckpt_dir)?;
    let path = ckpt_dir.join("state.safetensors");
    let tensors = Tensor::read_safetensors(&path)
        .with_context(|| format!("{} is corrupt", path.display()))?;
    let get = |name: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
            .with_context(|| format!("{} has no tensor {name}", path.display()))
    };
    let mut frames = Vec::new();
    for (i, f) in meta.animation.iter().flatten().enumerate() {
        frames.push(super::engine::FrameState {
            z: get(&format!("frame.{i}.z"))?,
            z0: get(&format!("frame.{i}.z0"))?,
            opt: super::optim::OptimizerState {
                m: get(&format!("frame.{i}.adam_m"))?,
                v: get(&format!("frame.{i}.adam_v"))?,
                vmax: get(&format!("frame.{i}.adam_vmax")).ok(),
                t: f.adam_t,
                lr: f.lr,
            },
            step: f.step,
        });
    }
    Ok(State {
        frames,
        z: get("z")?,
        z0: get("z0")?,
        m: get("adam_m")?,
        v: get("adam_v")?,
        vmax: get("adam_vmax").ok(),
        meta,
    })
}
