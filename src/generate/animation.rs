//! pixray's animation mode (`--animation-dir`): one frame per input file, each with its own
//! parameters, optimizer and random streams. Frames take turns, `--save-every` steps each (a
//! round); after a round each frame gets the previous frame's picture (cyclically) pasted over it
//! at `--animation-alpha` and taken back into its parameters, so the sequence stays coherent.
//!
//! Where a frame stands is its step count alone: the next frame to run is the first one behind
//! the current round's end, and the blend is done before the checkpoint that closes a round. So
//! any checkpoint (a save or Ctrl-C mid-frame) resumes to the same bytes.
use super::checkpoint::{self, FrameMeta};
use super::engine::{FrameState, Generator, paste};
use crate::error::usage;
use crate::settings::{Settings, expand_glob};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The gif's speed (pixray's `ffmpeg -framerate 10`).
pub const FPS: u32 = 10;
pub const GIF: &str = "anim.gif";
pub const MP4: &str = "anim.mp4";

pub struct Animation {
    /// Where the frames go (`--animation-dir`, inside the run directory when relative).
    pub dir: PathBuf,
    /// Frame i's file: `dir/<its input's file name>`.
    pub outputs: Vec<PathBuf>,
    /// Each frame's state while another is loaded in the generator (None: the loaded one).
    states: Vec<Option<FrameState>>,
}

impl Animation {
    /// A new animation: the frame list, the output names (refusing to overwrite files that are
    /// there, unless `force`), and each frame's start: the run's random start with the frame's
    /// `--init-image` pasted over it at `--init-image-alpha`, and its overlay if one is due at 0.
    pub fn start(generator: &mut Generator, run_dir: &Path, force: bool) -> Result<Animation> {
        let (dir, outputs) = plan(&generator.settings, run_dir)?;
        if !force {
            let gif = dir.join(GIF);
            if let Some(p) = outputs.iter().chain([&gif]).find(|p| p.exists()) {
                return Err(usage(format!(
                    "--animation-dir: {} exists and would be overwritten: choose another directory, remove it, or add --force",
                    p.display()
                )));
            }
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let s = &generator.settings;
        let inits = s.init_image_files()?;
        let alpha = s.init_image_alpha as f64 / 255.0;
        let (h, w) = (s.size.height, s.size.width);
        let start = generator.frame_state();
        let start_image = generator.raw_image();
        let mut states = Vec::with_capacity(outputs.len());
        for i in 0..outputs.len() {
            generator.load_frame(i, start.copy())?;
            if !inits.is_empty() {
                let top = load_stretched(&inits[i % inits.len()], (h, w), alpha)?
                    .to_device(start_image.device());
                generator.start_from(&paste(&start_image, &top))?;
            }
            if generator.settings.overlay_due(0) {
                generator.overlay()?;
            }
            states.push(Some(generator.frame_state()));
        }
        let mut anim = Animation {
            dir,
            outputs,
            states,
        };
        anim.load(generator, 0)?;
        Ok(anim)
    }

    /// The animation a checkpoint holds; `planned` is the steps the checkpointed run was planned
    /// for. A finished run ends without the blend of its last round, so one continued with more
    /// `--steps` blends first when that end closes a round, as the longer run would have.
    pub fn resume(
        generator: &mut Generator,
        run_dir: &Path,
        frames: Vec<FrameState>,
        planned: Option<i64>,
    ) -> Result<Animation> {
        let (dir, outputs) = plan(&generator.settings, run_dir)?;
        if frames.len() != outputs.len() {
            return Err(usage(format!(
                "the checkpoint holds {} animation frames, but the inputs now give {}: restore the input files",
                frames.len(),
                outputs.len()
            )));
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut anim = Animation {
            dir,
            outputs,
            states: frames.into_iter().map(Some).collect(),
        };
        let steps = anim.steps(generator);
        let at = steps.first().copied().unwrap_or(0);
        if planned == Some(at) && at > 0 && at % anim.round(generator) == 0 {
            anim.blend_if_due(generator, at)?;
        }
        let (first, _) = anim.next(generator).unwrap_or((0, 0));
        anim.load(generator, first)?;
        Ok(anim)
    }

    /// Each frame's steps done.
    pub fn steps(&self, generator: &Generator) -> Vec<i64> {
        self.states
            .iter()
            .map(|s| s.as_ref().map_or(generator.step, |s| s.step))
            .collect()
    }

    /// Steps done over all frames (the progress and the log's length).
    pub fn done(&self, generator: &Generator) -> i64 {
        self.steps(generator).iter().sum()
    }

    /// The frame to run next and the step its turn ends at, None when every frame is done.
    pub fn next(&self, generator: &Generator) -> Option<(usize, i64)> {
        let s = &generator.settings;
        let round = self.round(generator);
        let steps = self.steps(generator);
        let low = *steps.iter().min()?;
        if low >= s.steps {
            return None;
        }
        let end = (low - low % round + round).min(s.steps);
        steps.iter().position(|&n| n < end).map(|i| (i, end))
    }

    /// Steps per turn: `--save-every`, or the whole run without saves.
    fn round(&self, generator: &Generator) -> i64 {
        let s = &generator.settings;
        if s.save_every > 0 {
            s.save_every
        } else {
            s.steps
        }
    }

    /// Makes frame `index` the generator's (keeping the loaded one's state).
    pub fn load(&mut self, generator: &mut Generator, index: usize) -> Result<()> {
        if generator.frame() == Some(index) {
            return Ok(());
        }
        if let Some(cur) = generator.frame() {
            self.states[cur] = Some(generator.frame_state());
        }
        let state = self.states[index]
            .take()
            .with_context(|| format!("animation frame {index} has no state"))?;
        generator.load_frame(index, state)
    }

    /// After a round, when every frame stands at `end` and the run goes on: each frame's picture
    /// with the previous frame's pasted over it at `--animation-alpha`, taken back into its
    /// parameters (pixray's blend, from the pictures as the round left them).
    pub fn blend_if_due(&mut self, generator: &mut Generator, end: i64) -> Result<bool> {
        let steps = self.steps(generator);
        if end >= generator.settings.steps || steps.iter().any(|&n| n != end) {
            return Ok(false);
        }
        let n = self.outputs.len();
        let mut pictures = Vec::with_capacity(n);
        for i in 0..n {
            self.load(generator, i)?;
            pictures.push(generator.raw_image());
        }
        let alpha = generator.settings.animation_alpha as f64 / 255.0;
        for i in 0..n {
            let prev = &pictures[(i + n - 1) % n];
            let top = with_alpha(prev, alpha);
            self.load(generator, i)?;
            generator.reapply(&paste(&pictures[i], &top))?;
        }
        Ok(true)
    }

    /// The checkpoint: every frame's state (the loaded one's as it is now), the loaded frame's
    /// also at the top level; its step is the least any frame has done.
    pub fn checkpoint_state(&self, generator: &Generator) -> checkpoint::State {
        let mut state = generator.state();
        let frames: Vec<FrameState> = self
            .states
            .iter()
            .map(|s| match s {
                Some(s) => s.copy(),
                None => generator.frame_state(),
            })
            .collect();
        state.meta.step = frames.iter().map(|f| f.step).min().unwrap_or(0);
        state.meta.animation = Some(
            frames
                .iter()
                .map(|f| FrameMeta {
                    step: f.step,
                    lr: f.opt.lr,
                    adam_t: f.opt.t,
                })
                .collect(),
        );
        state.frames = frames;
        state
    }
}

/// The animation directory and each frame's output: one frame per file of the longest of the
/// overlay, target-image, init-image and image-prompt lists (pixray's order; a tie keeps the
/// earlier list).
fn plan(s: &Settings, run_dir: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let dir = s.animation_dir.as_ref().context("not an animation run")?;
    let dir = if dir.is_absolute() {
        dir.clone()
    } else {
        run_dir.join(dir)
    };
    let mut lists: Vec<Vec<PathBuf>> = Vec::new();
    if let Some(p) = &s.overlay_image {
        lists.push(expand_glob(p, "--overlay-image")?);
    }
    let mut targets = Vec::new();
    for t in &s.target_images {
        targets.extend(t.files()?);
    }
    lists.push(targets);
    lists.push(s.init_image_files()?);
    lists.push(s.image_prompts.iter().map(|p| p.path.clone()).collect());
    let mut files: Vec<PathBuf> = Vec::new();
    for l in lists {
        if l.len() > files.len() {
            files = l;
        }
    }
    if files.is_empty() {
        return Err(usage(
            "--animation-dir makes one frame per input file: give --init-image, --overlay-image, --target-image or --image-prompt (a glob such as 'frames/*.png')",
        ));
    }
    let mut outputs: Vec<PathBuf> = Vec::with_capacity(files.len());
    for f in &files {
        let name = f
            .file_name()
            .with_context(|| format!("{} has no file name", f.display()))?;
        let out = dir.join(name);
        if outputs.contains(&out) {
            return Err(usage(format!(
                "--animation-dir: two frame inputs are named {}: each frame is saved under its input's file name, so rename one",
                Path::new(name).display()
            )));
        }
        outputs.push(out);
    }
    Ok((dir, outputs))
}

/// An image stretched to `(h, w)` as straight RGBA `[1, 4, h, w]` with alpha `alpha` (pixray's
/// `resize` and `putalpha`).
fn load_stretched(path: &Path, (h, w): (i64, i64), alpha: f64) -> Result<Tensor> {
    let filter = image::imageops::FilterType::Lanczos3;
    let rgb = crate::image_io::load_stretched(path, w as u32, h as u32, filter)
        .with_context(|| format!("--init-image {}", path.display()))?;
    Ok(with_alpha(&rgb, alpha))
}

/// `rgb` `[1, 3, H, W]` as straight RGBA with one opacity everywhere (PIL's `putalpha`).
fn with_alpha(rgb: &Tensor, alpha: f64) -> Tensor {
    Tensor::cat(
        &[rgb.shallow_clone(), rgb.ones_like().narrow(1, 0, 1) * alpha],
        1,
    )
}

/// Writes a frame's picture to `path`: a PNG with the run's metadata (and an SVG beside it for
/// the pixel drawer), or for another extension (an input's `.jpg`) that format, as pixray saves
/// each frame under its input's name.
pub fn save_frame(generator: &Generator, path: &Path) -> Result<()> {
    let png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_none_or(|e| e.eq_ignore_ascii_case("png"));
    if png {
        return super::outputs::save_image(generator, path);
    }
    let format = image::ImageFormat::from_path(path)
        .with_context(|| format!("cannot tell the image format of {}", path.display()))?;
    let img = crate::image_io::tensor_to_image(&generator.image())?.to_rgb8();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("frame path has no file name")?;
    let tmp = path.with_file_name(format!(".{name}.partial"));
    img.save_with_format(&tmp, format)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
