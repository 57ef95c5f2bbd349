//! The optimization loop over a drawer's parameters, scored by CLIP. No printing, no files: the
//! caller (`cmd::generate`) drives `step()` and decides when to save.
//!
//! One step: x = drawer.render() (for the VQGAN: z -> straight-through quantize -> decoder) ->
//! img = clamp(x, 0, 1) -> cutouts (one batch per CLIP model) -> CLIP image embeddings -> loss.
//! The backward runs in two stages so the anchors' ClampWithGrad rule needs no custom autograd:
//! the loss is differentiated w.r.t. a detached image leaf, that gradient is masked
//! (`grad::clamp_grad_mask`), then pushed through the render into the drawer's parameters.
use super::auto_stop::{AutoStop, Verdict};
use super::checkpoint::{self, Meta, WeightFile};
use super::cutouts::{CutoutConfig, CutoutPlan};
use super::drawers::{self, Drawer};
use super::grad::clamp_grad_mask;
use super::loss_row::{Layout, LossRow};
use super::losses;
use super::optim::{Optimizer, OptimizerState};
use super::profile::StepProfile;
pub use super::rng::step_rng;
use crate::device::{self, ModelRole};
pub use crate::image_io::resize_cover;
use crate::models::clip::Clip;
use crate::models::vqgan::Vqgan;
use crate::rundir::StepRecord;
use crate::settings::{LossKind, Settings};
use crate::tokenizer::Tokenizer;
use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// The frozen models of a run (no VQGAN for drawers that need none).
pub struct Models {
    pub vqgan: Option<Vqgan>,
    pub clips: Vec<Clip>,
    /// `--loss aesthetic`'s head and the index of the CLIP model it rates.
    pub head: Option<(usize, crate::models::head::Head)>,
    /// `--loss style`'s VGG16.
    pub vgg: Option<crate::models::vgg::Vgg16>,
    /// `--loss resmem`'s model (it scores the first CLIP model's cutouts).
    pub resmem: Option<crate::models::resmem::ResMem>,
    pub weights: Vec<WeightFile>,
}

/// Per-CLIP-model targets, computed once.
struct Perceptor {
    clip: Clip,
    /// Normalized text embeddings, one row per prompt.
    text: Tensor,
    /// Normalized noise-prompt directions, one row per noise prompt.
    noise: Tensor,
    /// Per `--vector-prompt`: this model's row of its table, `[1, d]` (None: the table has none).
    vectors: Vec<Option<Tensor>>,
    /// `--loss aesthetic`'s head, on the model it rates.
    aesthetic: Option<crate::models::head::Head>,
    /// `--loss resmem`'s model, on the first CLIP model (its cutouts, before CLIP's normalization).
    resmem: Option<crate::models::resmem::ResMem>,
    /// Per `--target-image`: its files' normalized embeddings, one row per file.
    targets: Vec<Tensor>,
    /// `--label` embeddings: each the normalized mean of its templated texts', one row per label.
    labels: Tensor,
    /// Normalized `--spot` and `--spot-off` text embeddings, one row per prompt.
    spot_text: Tensor,
    spot_off_text: Tensor,
}

/// One step's loss terms, kept on the device until flushed (no host sync inside a step).
struct PendingLog {
    step: i64,
    /// The animation frame that made it.
    frame: Option<usize>,
    lr: f64,
    seconds: f64,
    /// The step's `LossRow`, packed.
    terms: Tensor,
}

/// One animation frame's share of the run: its parameters, their start, its optimizer and its
/// steps.
pub struct FrameState {
    pub z: Tensor,
    pub z0: Tensor,
    pub opt: OptimizerState,
    pub step: i64,
}

impl FrameState {
    /// A deep copy (frames must not share tensors the optimizer updates in place).
    pub fn copy(&self) -> FrameState {
        FrameState {
            z: self.z.copy(),
            z0: self.z0.copy(),
            opt: OptimizerState {
                m: self.opt.m.copy(),
                v: self.opt.v.copy(),
                vmax: self.opt.vmax.as_ref().map(Tensor::copy),
                t: self.opt.t,
                lr: self.opt.lr,
            },
            step: self.step,
        }
    }
}

/// What `Generator::prepare` hands the later stages of a step.
struct Frame {
    /// The step's random stream, continued by the cutout draws.
    rng: ChaCha8Rng,
    /// The render before the clamp: stage 2 backpropagates through it.
    x: Tensor,
    /// `x` clamped to [0, 1] as a detached leaf: stage 1's gradient is taken w.r.t. it.
    img: Tensor,
    /// What the cutouts are cut from: `img` in palette colours (flattened over the step's
    /// background with `--transparent`), tile-shifted.
    seen: Tensor,
    /// What the `--loss` terms judge: `img`'s colours, flattened like `seen`.
    base: Tensor,
    /// The palette pull term (`--palette`), until `extra_losses` takes it.
    palette_pull: Option<Tensor>,
    /// `--transparent-weight` x the mean alpha, until `extra_losses` takes it.
    alpha_term: Option<Tensor>,
    /// The wallpaper filter's edge-match loss x its weight (in the total, not a row term).
    filter_term: Option<Tensor>,
}

/// One batch's cutouts at one CLIP input side: of the image, and of each image prompt (same draws).
struct Cutouts {
    size: i64,
    image: Tensor,
    /// Per image prompt its cutouts (None: not this animation frame's).
    image_prompts: Vec<Option<Tensor>>,
    /// The same cutouts with the rest of the image zeroed (`--spot`), and with the spot zeroed
    /// (`--spot-off`).
    spot: Option<Tensor>,
    spot_off: Option<Tensor>,
}

/// The CLIP-side terms of a step (detached, summed over the batches) and their image gradient.
struct ClipTerms {
    prompts: Vec<Tensor>,
    labels: Vec<Tensor>,
    image_prompts: Vec<Tensor>,
    target_images: Vec<Tensor>,
    noise_prompts: Vec<Tensor>,
    vector_prompts: Vec<Tensor>,
    spot: Vec<Tensor>,
    spot_off: Vec<Tensor>,
    /// `--loss aesthetic` (scored on CLIP embeddings, logged among the `--loss` terms).
    aesthetic: Option<Tensor>,
    /// `--loss resmem` (scored on the first CLIP model's cutouts, logged among the `--loss` terms).
    resmem: Option<Tensor>,
    grad: Option<Tensor>,
}

/// The `--loss` terms and the palette pull (with their graphs), their sum and its image gradient.
struct ExtraTerms {
    losses: Vec<Tensor>,
    palette: Option<Tensor>,
    transparent: Option<Tensor>,
    total: Tensor,
    grad: Option<Tensor>,
}

pub struct Generator {
    pub settings: Settings,
    drawer: Box<dyn Drawer>,
    perceptors: Vec<Perceptor>,
    image_prompts: Vec<(Tensor, f64)>,
    /// `[K, 3]` palette colours in [0, 1] (`--palette`).
    palette: Option<Tensor>,
    /// The spot prompts' image-space masks.
    spot: Option<super::spot::SpotMasks>,
    /// `--overlay-image` at the run's size, `[1, 4, H, W]` straight RGBA in [0, 1]: the glob's
    /// first file, or every file in animation mode (frame i pastes the i-th).
    overlays: Vec<Tensor>,
    /// The `--loss` terms, prepared.
    extra: super::extra_losses::ExtraLosses,
    /// `--image-labels`: the label images taken into the drawer's parameters, each normalized
    /// along its last dimension, averaged (pixray's z_labels).
    image_label: Option<Tensor>,
    /// Animation mode: the frame whose state is loaded (it picks its image prompt, target file
    /// and overlay), and the seed of its random streams.
    frame: Option<usize>,
    stream_seed: u64,
    /// Every `--target-image` file as (target, row): animation frame i scores the i-th.
    target_rows: Vec<(usize, i64)>,
    /// What the run should be told but does not stop it (a vector prompt without this model).
    warnings: Vec<String>,
    /// `--init-image` at the run's size (`--init-weight-pix`).
    init_pixels: Option<Tensor>,
    /// The drawer's parameters at the start (or after the last zoom): the `--init-weight` pull.
    z0: Tensor,
    opt: Optimizer,
    /// Steps completed.
    pub step: i64,
    device: Device,
    pending: Vec<PendingLog>,
    /// The sections of each step's loss row.
    layout: Layout,
    weights: Vec<WeightFile>,
    drop_steps: Vec<i64>,
    /// `--auto-stop`'s watch over the loss.
    auto_stop: Option<AutoStop>,
    /// `generate --profile`: each step's time by part.
    profile: Option<StepProfile>,
}

/// Prompts encoded per text-encoder batch.
const TEXT_CHUNK: usize = 64;

impl Generator {
    /// Builds the run: text targets, image prompts and the initial latents (seeded before init).
    pub fn new(settings: Settings, models: Models, device: Device) -> Result<Generator> {
        let Models {
            vqgan,
            clips,
            mut head,
            vgg,
            mut resmem,
            weights,
        } = models;
        let tokenizer = Tokenizer::new()?;
        let texts_of = |ps: &[crate::settings::Prompt]| -> Vec<String> {
            ps.iter().map(|p| p.text.clone()).collect()
        };
        let (texts, spot, spot_off) = (
            texts_of(&settings.prompts),
            texts_of(&settings.spot),
            texts_of(&settings.spot_off),
        );
        let mut perceptors = Vec::new();
        let mut warnings = Vec::new();
        for (index, (mut clip, name)) in clips.into_iter().zip(&settings.clip).enumerate() {
            let text = encode_texts(&clip, &tokenizer, &texts, device)?;
            let spot_text = encode_texts(&clip, &tokenizer, &spot, device)?;
            let spot_off_text = encode_texts(&clip, &tokenizer, &spot_off, device)?;
            let labels = label_embeddings(&clip, &tokenizer, &settings.labels, device)?;
            let targets = settings
                .target_images
                .iter()
                .map(|t| target_embeddings(&clip, t, device))
                .collect::<Result<Vec<_>>>()?;
            // Text and image targets are computed once in f32; only the per-step image path runs
            // in low precision.
            let kind =
                device::model_kind(settings.precision, device, ModelRole::clip(clip.config()));
            if kind != Kind::Float {
                clip.to_kind(kind);
            }
            let dim = clip.config().embed_dim;
            let mut vectors = Vec::new();
            for vp in &settings.vector_prompts {
                let row = vp.vector(name, dim)?;
                if row.is_none() {
                    warnings.push(format!(
                        "--vector-prompt {} has no vector for CLIP model {name}: that model runs without it",
                        vp.path
                    ));
                }
                vectors.push(row.map(|v| Tensor::from_slice(&v).view([1, dim]).to_device(device)));
            }
            let rows: Vec<f32> = settings
                .noise_prompts
                .iter()
                .flat_map(|p| noise_direction(p.seed, dim))
                .collect();
            let noise = Tensor::from_slice(&rows)
                .view([settings.noise_prompts.len() as i64, dim])
                .to_device(device);
            perceptors.push(Perceptor {
                clip,
                text,
                noise,
                vectors,
                aesthetic: head.take_if(|(i, _)| *i == index).map(|(_, h)| h),
                resmem: resmem.take(),
                targets,
                spot_text,
                spot_off_text,
                labels,
            });
        }
        let (h, w) = (settings.size.height, settings.size.width);
        let mut image_prompts = Vec::new();
        for ip in &settings.image_prompts {
            let img = crate::image_io::load_rgb(&ip.path)
                .with_context(|| format!("--image-prompt {}", ip.path.display()))?;
            let img = resize_cover(&img, w as u32, h as u32);
            image_prompts.push((
                crate::image_io::rgb_to_tensor(&img).to_device(device),
                ip.weight,
            ));
        }
        // Animation frames start from the random start with their own init image blended in
        // (`animation`); the drawer itself starts without one.
        let drawer = if settings.animation_dir.is_some() {
            let mut plain = settings.clone();
            plain.init_image = None;
            drawers::build(&plain, vqgan, device)?
        } else {
            drawers::build(&settings, vqgan, device)?
        };
        let z0 = drawer.params().detach().copy();
        let opt = Optimizer::new(settings.optimizer, settings.lr, drawer.params())
            .with_groups(drawer.lr_groups());
        let drop_steps = settings.lr_drop_steps();
        let settings_auto_stop = settings.auto_stop;
        let settings_seed = settings.seed;
        let palette = settings
            .palette_colours()
            .map(|c| crate::palette::to_tensor(&c, device));
        let spot = super::spot::masks(&settings, device)?;
        let init_pixels = match (&settings.init_image, settings.init_weight_pix > 0.0) {
            (Some(p), true) => {
                let img = crate::image_io::load_rgb(p)
                    .with_context(|| format!("--init-image {}", p.display()))?;
                Some(
                    crate::image_io::rgb_to_tensor(&resize_cover(&img, w as u32, h as u32))
                        .to_device(device),
                )
            }
            _ => None,
        };
        let overlays = match &settings.overlay_image {
            Some(p) => load_overlays(p, &settings)?
                .into_iter()
                .map(|t| t.to_device(device))
                .collect(),
            None => Vec::new(),
        };
        let image_label = match &settings.image_labels {
            Some(p) => Some(image_label_params(p, &settings, drawer.as_ref())?),
            None => None,
        };
        let extra = super::extra_losses::ExtraLosses::new(&settings, device, vgg)?;
        let mut target_rows = Vec::new();
        for (i, t) in settings.target_images.iter().enumerate() {
            target_rows.extend((0..t.files()?.len() as i64).map(|r| (i, r)));
        }
        let layout = Layout {
            prompts: settings.prompts.len(),
            labels: settings.labels.len(),
            image_prompts: image_prompts.len(),
            target_images: settings.target_images.len(),
            noise_prompts: settings.noise_prompts.len(),
            vector_prompts: settings.vector_prompts.len(),
            spot: settings.spot.len(),
            spot_off: settings.spot_off.len(),
            extra: settings.loss.len(),
            palette: palette.is_some(),
            transparent: settings.transparent && settings.transparent_weight > 0.0,
        };
        Ok(Generator {
            settings,
            drawer,
            perceptors,
            image_prompts,
            palette,
            spot,
            overlays,
            extra,
            image_label,
            frame: None,
            stream_seed: settings_seed,
            target_rows,
            warnings,
            init_pixels,
            z0,
            opt,
            step: 0,
            device,
            pending: Vec::new(),
            layout,
            weights,
            drop_steps,
            auto_stop: settings_auto_stop.then(AutoStop::new),
            profile: None,
        })
    }

    /// Restores latents, optimizer state and step count from a checkpoint.
    pub fn restore(&mut self, state: checkpoint::State) -> Result<()> {
        let expect = self.drawer.params().size();
        if state.z.size() != expect {
            bail!(
                "the checkpoint's {} parameters have shape {:?}, this run needs {:?}",
                self.drawer.kind(),
                state.z.size(),
                expect
            );
        }
        // The optimizer checks its state before anything changes.
        let opt = OptimizerState {
            m: state.m,
            v: state.v,
            vmax: state.vmax,
            t: state.meta.adam_t,
            lr: state.meta.lr,
        };
        self.opt.restore(opt, self.device)?;
        self.drawer.set_params(
            state
                .z
                .to_device(self.device)
                .detach()
                .set_requires_grad(true),
        );
        self.z0 = state.z0.to_device(self.device).detach();
        self.step = state.meta.step;
        if self.auto_stop.is_some() {
            self.auto_stop = Some(state.meta.auto_stop.unwrap_or_default());
        }
        Ok(())
    }

    /// The checkpoint state now.
    pub fn state(&self) -> checkpoint::State {
        let opt = self.opt.state();
        checkpoint::State {
            meta: Meta {
                format_version: checkpoint::FORMAT_VERSION,
                vqclip_version: env!("CARGO_PKG_VERSION").to_string(),
                step: self.step,
                lr: opt.lr,
                adam_t: opt.t,
                weights: self.weights.clone(),
                settings: self.settings.to_partial(),
                auto_stop: self.auto_stop.clone(),
                animation: None,
            },
            z: self.drawer.params().detach(),
            z0: self.z0.shallow_clone(),
            m: opt.m,
            v: opt.v,
            vmax: opt.vmax,
            frames: Vec::new(),
        }
    }

    pub fn weights(&self) -> &[WeightFile] {
        &self.weights
    }

    /// The `--loss` terms (tests replay the style loss's draws through it).
    pub fn extra(&self) -> &super::extra_losses::ExtraLosses {
        &self.extra
    }

    /// The drawer's parameters (what the optimizer moves).
    pub fn params(&self) -> &Tensor {
        self.drawer.params()
    }

    /// The drawing as SVG (vector drawers), in palette colours as [`Generator::image`].
    pub fn svg(&self) -> Result<Option<drawers::vector::svg::Svg>> {
        // The drawing is not the saved picture when the wallpaper repeats or trims it.
        if self.settings.wallpaper().is_some() {
            return Ok(None);
        }
        let snap = |c: [f32; 3]| -> [f32; 3] {
            match &self.palette {
                Some(p) => {
                    let t = Tensor::from_slice(&c)
                        .view([1, 3, 1, 1])
                        .to_device(p.device());
                    let n = crate::palette::nearest(&t, p).reshape([3]);
                    let v =
                        Vec::<f32>::try_from(n.to_device(tch::Device::Cpu)).unwrap_or(c.to_vec());
                    [v[0], v[1], v[2]]
                }
                None => c,
            }
        };
        self.drawer.svg(&snap)
    }

    /// The current image, `[1, 3, H, W]` in [0, 1] (`[1, 4, H, W]` with `--transparent`), in
    /// palette colours with `--palette` (alpha kept).
    pub fn image(&self) -> Tensor {
        tch::no_grad(|| {
            let img = self.drawer.image();
            // The saved picture is the wallpaper's pattern, unrolled.
            let img = match self.settings.wallpaper() {
                Some(_) => {
                    let s = &self.settings;
                    super::wallpaper::apply(&img, s.wallpaper_type, s.wallpaper_edge_match, (0, 0))
                        .0
                }
                None => img,
            };
            match &self.palette {
                Some(p) if img.size()[1] == 4 => Tensor::cat(
                    &[
                        crate::palette::nearest(&img.narrow(1, 0, 3), p),
                        img.narrow(1, 3, 1),
                    ],
                    1,
                ),
                Some(p) => crate::palette::nearest(&img, p),
                None => img,
            }
        })
    }

    /// The zoom-video move: the current image is zoomed/shifted/rotated, taken back into the
    /// drawer's parameters (the VQGAN encodes it onto the codebook, as at init), and the optimizer
    /// starts afresh, as in the anchor. The `--init-weight` pull then holds toward this new start.
    pub fn zoom(&mut self) -> Result<()> {
        let moved = super::zoom::apply(&self.image(), self.settings.zoom());
        let z = self.drawer.params_for(&moved)?;
        self.z0 = z.copy();
        self.drawer.set_params(drawers::leaf(z));
        self.opt = Optimizer::new(self.settings.optimizer, self.opt.lr, self.drawer.params())
            .with_groups(self.drawer.lr_groups());
        Ok(())
    }

    /// `--overlay-image`: the overlay pasted over the current picture with its alpha and taken
    /// back into the drawer's parameters (the VQGAN encodes it onto the codebook), in place: the
    /// optimizer keeps its moments and the `--init-weight` pull its target, as pixray's
    /// `reapply_from_tensor`.
    pub fn overlay(&mut self) -> Result<()> {
        if self.overlays.is_empty() {
            return Ok(());
        }
        let ov = &self.overlays[self.frame.unwrap_or(0) % self.overlays.len()];
        let pasted = tch::no_grad(|| paste(&self.drawer.image(), ov));
        self.reapply(&pasted)
    }

    /// Takes `img` (`[1, 3, H, W]` in [0, 1]) back into the drawer's parameters in place: the
    /// optimizer keeps its moments and the `--init-weight` pull its target (pixray's
    /// `reapply_from_tensor`).
    pub fn reapply(&mut self, img: &Tensor) -> Result<()> {
        let z = self.drawer.params_for(img)?;
        tch::no_grad(|| self.drawer.params().shallow_clone().copy_(&z));
        Ok(())
    }

    /// The drawer's own picture (no palette), `[1, 3, H, W]` in [0, 1]: what pixray's animation
    /// blends.
    pub fn raw_image(&self) -> Tensor {
        tch::no_grad(|| self.drawer.image())
    }

    /// Animation: starts the loaded frame from `img` (its parameters, the `--init-weight` target
    /// and a fresh optimizer), as pixray's frames start from their init image.
    pub fn start_from(&mut self, img: &Tensor) -> Result<()> {
        let z = self.drawer.params_for(img)?;
        self.z0 = z.copy();
        self.drawer.set_params(drawers::leaf(z));
        self.opt = Optimizer::new(
            self.settings.optimizer,
            self.settings.lr,
            self.drawer.params(),
        )
        .with_groups(self.drawer.lr_groups());
        Ok(())
    }

    /// Animation: the loaded frame's state, copied (the optimizer updates its tensors in place).
    pub fn frame_state(&self) -> FrameState {
        FrameState {
            z: self.drawer.params().detach(),
            z0: self.z0.shallow_clone(),
            opt: self.opt.state(),
            step: self.step,
        }
        .copy()
    }

    /// Animation: loads frame `index`'s state (its own stream of draws). Pending log rows must
    /// have been flushed: they belong to the frame that made them.
    pub fn load_frame(&mut self, index: usize, state: FrameState) -> Result<()> {
        if !self.pending.is_empty() {
            bail!("loss rows of frame {:?} were not flushed", self.frame);
        }
        if state.z.size() != self.drawer.params().size() {
            bail!(
                "frame {index}'s parameters have shape {:?}, this run needs {:?}",
                state.z.size(),
                self.drawer.params().size()
            );
        }
        self.opt.restore(state.opt, self.device)?;
        self.drawer
            .set_params(drawers::leaf(state.z.to_device(self.device)));
        self.z0 = state.z0.to_device(self.device);
        self.step = state.step;
        self.frame = Some(index);
        self.stream_seed = frame_seed(self.settings.seed, index);
        Ok(())
    }

    /// Warnings from building the run, for the caller to show.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What each frozen model runs in, as `name kind` ("vqgan bf16", "ViT-B/32 f32"): `auto`
    /// decides per machine and tower, so the closing line says what it picked.
    pub fn precisions(&self) -> Vec<String> {
        let name = crate::weights::kind_name;
        let mut out = Vec::new();
        if self.settings.drawer == crate::settings::DrawerKind::Vqgan {
            let k = device::model_kind(self.settings.precision, self.device, ModelRole::Vqgan);
            out.push(format!("vqgan {}", name(k)));
        }
        for (p, spec) in self.perceptors.iter().zip(&self.settings.clip) {
            out.push(format!(
                "{} {}",
                short_model_name(spec),
                name(p.clip.kind())
            ));
        }
        out
    }

    /// The animation frame loaded, if any.
    pub fn frame(&self) -> Option<usize> {
        self.frame
    }

    /// One optimization step, in stages: `prepare` (render), `clip_terms` (stage 1 of the backward,
    /// batch by batch), `extra_losses`, `apply` (stage 2 and the optimizer) and `log_step`.
    pub fn step(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        if let Some(p) = &self.profile {
            p.start();
        }
        let step = self.step + 1;
        let mut frame = self.prepare(step);
        self.mark("filters");
        let clip = self.clip_terms(step, &mut frame)?;
        let extra = self.extra_losses(
            step,
            &frame.base,
            &frame.img,
            frame.palette_pull.take(),
            frame.alpha_term.take(),
            frame.filter_term.take(),
        )?;
        self.mark("extra_losses");
        let grad = accumulate(clip.grad, extra.grad);
        let image_total = clip
            .prompts
            .iter()
            .chain(&clip.labels)
            .chain(&clip.image_prompts)
            .chain(&clip.target_images)
            .chain(&clip.noise_prompts)
            .chain(&clip.vector_prompts)
            .chain(&clip.aesthetic)
            .chain(&clip.resmem)
            .chain(&clip.spot)
            .chain(&clip.spot_off)
            .fold(extra.total.detach(), |acc, t| acc + t);
        let total = self.apply(frame, grad, image_total)?;
        // The aesthetic and resmem terms were scored with the CLIP terms; the row logs them in
        // their --loss places.
        let mut extra_row = extra.losses;
        for (kind, value) in [
            (LossKind::Aesthetic, clip.aesthetic),
            (LossKind::Resmem, clip.resmem),
        ] {
            if let Some(v) = value
                && let Some(i) = self.settings.loss.iter().position(|t| t.kind == kind)
            {
                extra_row[i] = v;
            }
        }
        // Auto-stop judges every step's loss: one host sync, only when it is on.
        let loss = self.auto_stop.is_some().then(|| total.double_value(&[]));
        let row = LossRow {
            total,
            prompts: clip.prompts,
            labels: clip.labels,
            image_prompts: clip.image_prompts,
            target_images: clip.target_images,
            noise_prompts: clip.noise_prompts,
            vector_prompts: clip.vector_prompts,
            spot: clip.spot,
            spot_off: clip.spot_off,
            extra: extra_row,
            palette: extra.palette,
            transparent: extra.transparent,
        };
        self.log_step(step, started, row)?;
        if let (Some(watch), Some(loss)) = (&mut self.auto_stop, loss) {
            let scheduled = self.drop_steps.contains(&step);
            if watch.after_step(step, loss, scheduled, self.drop_steps.len()) == Verdict::DropLr {
                self.opt.lr /= 10.0;
            }
        }
        if let Some(p) = &self.profile {
            p.end();
        }
        Ok(())
    }

    /// `generate --profile`: time each step by part from now on.
    pub fn enable_profile(&mut self) {
        self.profile = Some(StepProfile::new(self.device));
    }

    /// The profile's table (median seconds per part), when profiling.
    pub fn profile_table(&self) -> Option<String> {
        self.profile.as_ref().and_then(StepProfile::table)
    }

    /// Profiling: the time since the last mark belongs to `part`.
    fn mark(&self, part: &str) {
        if let Some(p) = &self.profile {
            p.mark(part);
        }
    }

    /// Whether `--auto-stop` ended the run (no more steps).
    pub fn stopped(&self) -> bool {
        self.auto_stop.as_ref().is_some_and(|a| a.stopped)
    }

    /// Whether item `i` of `n` (an image prompt) belongs to the loaded frame: all of them outside
    /// animation, the frame's own (cyclically) in it.
    fn frame_uses(&self, i: usize, n: usize) -> bool {
        self.frame.is_none_or(|f| f % n == i)
    }

    /// The lr drop, the step's random stream, the tile shift, the render and the palette lookup.
    fn prepare(&mut self, step: i64) -> Frame {
        if self.drop_steps.contains(&step) {
            self.opt.lr /= 10.0;
        }
        let mut rng = step_rng(self.stream_seed, step);
        // Tiles: a wrap-around shift moves the seam somewhere new each step, so CLIP judges it.
        let shift = self.settings.tile.then(|| {
            let (h, w) = (self.settings.size.height, self.settings.size.width);
            (rng.random_range(0..h), rng.random_range(0..w))
        });
        let x = self.drawer.render();
        self.mark("render");
        let img = x.detach().clamp(0.0, 1.0).set_requires_grad(true);
        let (rgb, alpha) = if img.size()[1] == 4 {
            (img.narrow(1, 0, 3), Some(img.narrow(1, 3, 1)))
        } else {
            (img.shallow_clone(), None)
        };
        // pixray's filters run before everything that judges the picture: the wallpaper here,
        // rolled by the step's draw, then the lookup (the palette).
        let (rgb, filter_term) = match self.settings.wallpaper() {
            Some(weight) => {
                let (h, w) = (self.settings.size.height, self.settings.size.width);
                let roll = (rng.random_range(0..h), rng.random_range(0..w));
                let s = &self.settings;
                let (out, loss) =
                    super::wallpaper::apply(&rgb, s.wallpaper_type, s.wallpaper_edge_match, roll);
                (out, loss.map(|l| l * weight))
            }
            None => (rgb, None),
        };
        // Palette: CLIP sees the image in palette colours (straight through: the gradient passes
        // as if unquantized), and each pixel is pulled toward its nearest colour (pixray's lookup).
        let (looked_up, palette_pull) = match &self.palette {
            Some(p) => {
                let q = crate::palette::nearest(&rgb, p);
                let pull =
                    (&rgb - &q).square().mean(Kind::Float) * self.settings.palette_pull_weight();
                (&rgb + (q - &rgb).detach(), Some(pull))
            }
            None => (rgb.shallow_clone(), None),
        };
        let (looked_up, base, alpha_term) = match &alpha {
            Some(a) => {
                let (h, w) = (self.settings.size.height, self.settings.size.width);
                let bg = super::transparent::background(&mut rng, (h, w), self.device);
                let weight = self.settings.transparent_weight;
                let term = (weight > 0.0).then(|| a.mean(Kind::Float) * weight);
                (
                    super::transparent::flatten(&looked_up, a, &bg),
                    super::transparent::flatten(&rgb, a, &bg),
                    term,
                )
            }
            None => (looked_up, rgb, None),
        };
        let seen = match shift {
            Some((dy, dx)) => looked_up.roll([dy, dx], [2, 3]),
            None => looked_up,
        };
        Frame {
            rng,
            x,
            img,
            seen,
            base,
            palette_pull,
            alpha_term,
            filter_term,
        }
    }

    /// Stage 1 of the backward: per cutout batch, every CLIP model's prompt, image-prompt and noise
    /// terms and their gradient w.r.t. the image, one batch at a time so only one batch of CLIP
    /// activations is alive.
    fn clip_terms(&self, step: i64, frame: &mut Frame) -> Result<ClipTerms> {
        let phase = self.settings.phase_at(step);
        let zeros = |n: usize| {
            (0..n)
                .map(|_| Tensor::zeros([], (Kind::Float, self.device)))
                .collect()
        };
        let mut terms = ClipTerms {
            prompts: zeros(self.settings.prompts.len()),
            labels: zeros(self.settings.labels.len()),
            image_prompts: zeros(self.image_prompts.len()),
            target_images: zeros(self.settings.target_images.len()),
            noise_prompts: zeros(self.settings.noise_prompts.len()),
            vector_prompts: zeros(self.settings.vector_prompts.len()),
            aesthetic: self
                .perceptors
                .iter()
                .any(|p| p.aesthetic.is_some())
                .then(|| Tensor::zeros([], (Kind::Float, self.device))),
            resmem: self
                .perceptors
                .iter()
                .any(|p| p.resmem.is_some())
                .then(|| Tensor::zeros([], (Kind::Float, self.device))),
            spot: zeros(self.settings.spot.len()),
            spot_off: zeros(self.settings.spot_off.len()),
            grad: None,
        };
        for _ in 0..self.settings.batches {
            let mut batch_terms = Vec::new();
            let mut by_resolution = Vec::new();
            for p in &self.perceptors {
                let size = p.clip.input_resolution();
                let cuts = self.cutouts_for(size, &mut by_resolution, frame)?;
                self.mark("cutouts");
                self.perceptor_terms(p, cuts, phase, &mut terms, &mut batch_terms);
            }
            let batch_total = sum_terms(&batch_terms, self.device);
            self.mark("losses");
            if batch_total.requires_grad() {
                let gb = image_grad(&batch_total, &frame.img)?;
                terms.grad = accumulate(terms.grad.take(), Some(gb));
            }
            self.mark("clip_bwd");
        }
        Ok(terms)
    }

    /// A batch's cutouts at CLIP input side `size`: one set per resolution, shared by the models of
    /// that resolution (pixray's cutoutsTable), drawn when the first of them needs it.
    fn cutouts_for<'a>(
        &self,
        size: i64,
        table: &'a mut Vec<Cutouts>,
        frame: &mut Frame,
    ) -> Result<&'a Cutouts> {
        if !table.iter().any(|c| c.size == size) {
            let cfg = CutoutConfig {
                method: self.settings.cut_method,
                count: self.settings.cutouts,
                cut_pow: self.settings.cut_pow,
                augments: self.settings.augments.clone(),
                size,
            };
            // The picture CLIP sees (a wallpaper may have resized it).
            let (h, w) = (frame.seen.size()[2], frame.seen.size()[3]);
            let plan = CutoutPlan::sample(&cfg, (h, w), &mut frame.rng, self.device);
            // Shared draws line the prompt's views up with the picture's; pixray's shuffle gives
            // each image prompt draws of its own (after the picture's, from the same stream).
            let n = self.image_prompts.len();
            let image_prompts = self
                .image_prompts
                .iter()
                .enumerate()
                .map(|(i, (ip, _))| {
                    if !self.frame_uses(i, n) {
                        None
                    } else if self.settings.image_prompt_shuffle {
                        let own = CutoutPlan::sample(&cfg, (h, w), &mut frame.rng, self.device);
                        Some(tch::no_grad(|| own.apply(ip)))
                    } else {
                        Some(tch::no_grad(|| plan.apply(ip)))
                    }
                })
                .collect();
            let masked = |keep: &Tensor, prompts: &[crate::settings::Prompt]| {
                (!prompts.is_empty()).then(|| plan.apply_masked(&frame.seen, keep))
            };
            let (spot, spot_off) = match &self.spot {
                Some(m) => (
                    masked(&m.spot, &self.settings.spot),
                    masked(&m.rest, &self.settings.spot_off),
                ),
                None => (None, None),
            };
            table.push(Cutouts {
                size,
                image: plan.apply(&frame.seen),
                image_prompts,
                spot,
                spot_off,
            });
        }
        table
            .iter()
            .find(|c| c.size == size)
            .context("cutouts for this resolution")
    }

    /// One CLIP model's terms on one batch's cutouts: each term's share of the step is added to its
    /// logged sum in `terms` and kept, with its graph, in `batch_terms` for the batch's backward.
    fn perceptor_terms(
        &self,
        p: &Perceptor,
        cuts: &Cutouts,
        phase: usize,
        terms: &mut ClipTerms,
        batch_terms: &mut Vec<Tensor>,
    ) {
        let batches = self.settings.batches;
        let emb = p
            .clip
            .encode_image(&Clip::normalize(&cuts.image))
            .to_kind(Kind::Float);
        self.mark("clip_fwd");
        let emb = &emb / emb.norm_scalaropt_dim(2.0, [-1], true);
        for (i, pr) in self.settings.prompts.iter().enumerate() {
            if pr.phase != phase {
                continue;
            }
            let target = p.text.narrow(0, i as i64, 1);
            let term = losses::prompt_loss(&emb, &target, pr.weight, pr.stop);
            take_share(term, batches, &mut terms.prompts[i], batch_terms);
        }
        for (i, pr) in self.settings.labels.iter().enumerate() {
            let target = p.labels.narrow(0, i as i64, 1);
            let term = losses::prompt_loss(&emb, &target, pr.weight, pr.stop);
            take_share(term, batches, &mut terms.labels[i], batch_terms);
        }
        let image_prompts = self.image_prompts.iter().zip(&cuts.image_prompts);
        for (i, ((_, weight), ip_cut)) in image_prompts.enumerate() {
            let Some(ip_cut) = ip_cut else { continue };
            let target = tch::no_grad(|| {
                let e = p
                    .clip
                    .encode_image(&Clip::normalize(ip_cut))
                    .to_kind(Kind::Float);
                &e / e.norm_scalaropt_dim(2.0, [-1], true)
            });
            let term = losses::prompt_loss(&emb, &target, *weight, f64::NEG_INFINITY);
            take_share(term, batches, &mut terms.image_prompts[i], batch_terms);
        }
        // An animation frame scores one target file: the frame's, cyclically.
        let picked = self
            .frame
            .filter(|_| !self.target_rows.is_empty())
            .map(|f| self.target_rows[f % self.target_rows.len()]);
        for (i, (t, target)) in self
            .settings
            .target_images
            .iter()
            .zip(&p.targets)
            .enumerate()
        {
            let target = match picked {
                Some((ti, _)) if ti != i => continue,
                Some((_, row)) => target.narrow(0, row, 1),
                None => target.shallow_clone(),
            };
            let term = losses::prompt_loss(&emb, &target, t.weight, t.stop);
            take_share(term, batches, &mut terms.target_images[i], batch_terms);
        }
        for (i, np) in self.settings.noise_prompts.iter().enumerate() {
            let target = p.noise.narrow(0, i as i64, 1);
            let term = losses::prompt_loss(&emb, &target, np.weight, f64::NEG_INFINITY);
            take_share(term, batches, &mut terms.noise_prompts[i], batch_terms);
        }
        // pixray's AestheticLoss: 0.02 x the mean squared distance of the cutouts' ratings to
        // the target.
        if let (Some(head), Some(logged)) = (&p.aesthetic, terms.aesthetic.as_mut()) {
            let value = (head.rate(&emb) - self.settings.aesthetic_target)
                .square()
                .mean(Kind::Float)
                * 0.02;
            if let Some(t) = self
                .settings
                .loss
                .iter()
                .find(|t| t.kind == LossKind::Aesthetic)
            {
                let term = losses::weighted_with_stop(value, t.weight, t.stop);
                take_share(term, batches, logged, batch_terms);
            }
        }
        // pixray's ResmemLoss: on the cutouts as CLIP gets them, before its normalization.
        if let (Some(model), Some(logged)) = (&p.resmem, terms.resmem.as_mut())
            && let Some(t) = self
                .settings
                .loss
                .iter()
                .find(|t| t.kind == LossKind::Resmem)
        {
            let value = model.loss(&cuts.image.to_kind(Kind::Float));
            let term = losses::weighted_with_stop(value, t.weight, t.stop);
            take_share(term, batches, logged, batch_terms);
        }
        // pixray scores vector prompts as text prompts at a tenth of their weight.
        for (i, (vp, row)) in self
            .settings
            .vector_prompts
            .iter()
            .zip(&p.vectors)
            .enumerate()
        {
            let Some(row) = row else { continue };
            let term = losses::prompt_loss(&emb, row, 0.1 * vp.weight, vp.stop);
            take_share(term, batches, &mut terms.vector_prompts[i], batch_terms);
        }
        // Spot prompts: their own embeddings of the masked cutouts (pixray's second and third
        // CLIP pass).
        let spot_kinds = [
            (
                &cuts.spot,
                &self.settings.spot,
                &p.spot_text,
                &mut terms.spot,
            ),
            (
                &cuts.spot_off,
                &self.settings.spot_off,
                &p.spot_off_text,
                &mut terms.spot_off,
            ),
        ];
        for (cut, prompts, text, logged) in spot_kinds {
            let Some(cut) = cut else { continue };
            self.mark("losses");
            let emb = p
                .clip
                .encode_image(&Clip::normalize(cut))
                .to_kind(Kind::Float);
            self.mark("clip_fwd");
            let emb = &emb / emb.norm_scalaropt_dim(2.0, [-1], true);
            for (i, pr) in prompts.iter().enumerate() {
                let target = text.narrow(0, i as i64, 1);
                let term = losses::prompt_loss(&emb, &target, pr.weight, pr.stop);
                take_share(term, batches, &mut logged[i], batch_terms);
            }
        }
    }

    /// The `--loss` terms on `base`, the palette pull and the alpha term, their sum and its
    /// gradient w.r.t. the image leaf `img`.
    fn extra_losses(
        &self,
        step: i64,
        base: &Tensor,
        img: &Tensor,
        palette: Option<Tensor>,
        transparent: Option<Tensor>,
        filter: Option<Tensor>,
    ) -> Result<ExtraTerms> {
        let losses = self.extra.terms(base, step, self.stream_seed);
        // pixray's init_weight_pix: L1 to the init image / 2, in the total (not a row term).
        let pix = self
            .init_pixels
            .as_ref()
            .map(|p| base.l1_loss(p, tch::Reduction::Mean) * (self.settings.init_weight_pix / 2.0));
        // The palette pull and the alpha term come after the --loss terms (the row's order).
        let total = sum_terms(
            losses
                .iter()
                .chain(&palette)
                .chain(&transparent)
                .chain(&pix)
                .chain(&filter),
            self.device,
        );
        let grad = if total.requires_grad() {
            Some(image_grad(&total, img)?)
        } else {
            None
        };
        Ok(ExtraTerms {
            losses,
            palette,
            transparent,
            total,
            grad,
        })
    }

    /// Stage 2: the ClampWithGrad mask on the image gradient, then through the render into the
    /// parameters (plus the `--init-weight` pull), the optimizer step and the drawer's fix-up.
    /// Returns the logged total: `image_total` plus the init pull.
    fn apply(&mut self, frame: Frame, grad: Option<Tensor>, image_total: Tensor) -> Result<Tensor> {
        let g = grad.unwrap_or_else(|| frame.img.zeros_like());
        let g = clamp_grad_mask(&frame.x.detach(), &g, 0.0, 1.0);
        let pixel_objective = (&frame.x * &g).sum(Kind::Float);
        // --init-weight and pixray's --init-weight-dist are one pull (MSE / 2); --init-weight-cos
        // another, on the parameters.
        let s = &self.settings;
        let dist = s.init_weight + s.init_weight_dist;
        let mut pulls = Vec::new();
        if dist > 0.0 {
            pulls.push(losses::init_loss(self.drawer.params(), &self.z0) * dist);
        }
        if s.init_weight_cos > 0.0 {
            pulls.push(losses::init_cos_loss(self.drawer.params(), &self.z0) * s.init_weight_cos);
        }
        if let Some(label) = &self.image_label {
            let z = self.drawer.params().reshape([1, -1]);
            let d = losses::spherical_distance(&z, &label.reshape([1, -1])).reshape([]);
            pulls.push(d * s.image_label_weight);
        }
        let (z_objective, total) = pulls
            .iter()
            .fold((pixel_objective, image_total), |(z, t), p| {
                (z + p, t + p.detach())
            });
        let grad_z = Tensor::run_backward(&[&z_objective], &[self.drawer.params()], false, false)
            .pop()
            .context("no gradient for the drawer's parameters")?;
        self.mark("render_bwd");
        // The optimizer updates the leaf in place (a shallow clone shares its storage).
        let mut params = self.drawer.params().shallow_clone();
        self.opt.step(&mut params, &grad_z);
        self.drawer.after_step();
        Ok(total)
    }

    /// Queues the step's loss row for the next `flush` (still on the device) and counts the step.
    fn log_step(
        &mut self,
        step: i64,
        started: std::time::Instant,
        row: LossRow<Tensor>,
    ) -> Result<()> {
        if row.layout() != self.layout {
            bail!(
                "step {step}'s loss row has layout {:?}, the run's is {:?}",
                row.layout(),
                self.layout
            );
        }
        self.pending.push(PendingLog {
            step,
            frame: self.frame,
            lr: self.opt.lr,
            seconds: started.elapsed().as_secs_f64(),
            terms: row.pack(),
        });
        self.step = step;
        Ok(())
    }

    /// Copies the pending loss terms to the host (one sync) and returns them as log records.
    /// Errors if a loss is not finite (the caller keeps the last good checkpoint).
    pub fn flush(&mut self) -> Result<Vec<StepRecord>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let stacked = Tensor::stack(
            &pending
                .iter()
                .map(|p| p.terms.shallow_clone())
                .collect::<Vec<_>>(),
            0,
        )
        .to_device(Device::Cpu)
        .to_kind(Kind::Double);
        let rows: Vec<Vec<f64>> =
            Vec::<Vec<f64>>::try_from(&stacked).context("cannot read loss values")?;
        let mut out = Vec::new();
        for (p, values) in pending.iter().zip(rows) {
            let row = LossRow::unpack(self.layout, &values)?;
            if !row.is_finite() {
                bail!(
                    "the loss became NaN/infinite at step {} (try a lower --lr or smaller prompt weights)",
                    p.step
                );
            }
            let mut record = row.record(p.step, p.lr, p.seconds);
            record.frame = p.frame.map(|f| f as i64);
            out.push(record);
        }
        Ok(out)
    }
}

/// `top` (straight RGBA `[1, 4, H, W]`) pasted over `base` (`[1, 3, H, W]`) with its alpha, as
/// PIL's `paste(top, mask=top)`.
pub fn paste(base: &Tensor, top: &Tensor) -> Tensor {
    let a = top.narrow(1, 3, 1);
    &a * top.narrow(1, 0, 3) + (a.neg() + 1.0) * base
}

/// The seed of animation frame `index`'s random streams (frame 0's is the run's).
pub fn frame_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The overlay images stretched to the run's size, `[1, 4, H, W]` each: the glob's first file, or
/// all of them in animation mode.
fn load_overlays(pattern: &str, settings: &Settings) -> Result<Vec<Tensor>> {
    let mut files = crate::settings::expand_glob(pattern, "--overlay-image")?;
    if settings.animation_dir.is_none() {
        files.truncate(1);
    }
    files.iter().map(|p| load_overlay(p, settings)).collect()
}

/// `--image-labels` (pixray's): each image stretched to the run's size and taken into the
/// drawer's parameters, normalized along the last dimension, averaged and normalized.
fn image_label_params(pattern: &str, settings: &Settings, drawer: &dyn Drawer) -> Result<Tensor> {
    let (h, w) = (settings.size.height, settings.size.width);
    let mut rows = Vec::new();
    for path in crate::settings::expand_glob(pattern, "--image-labels")? {
        let filter = image::imageops::FilterType::Lanczos3;
        let t = crate::image_io::load_stretched(&path, w as u32, h as u32, filter)
            .with_context(|| format!("--image-labels {}", path.display()))?
            .to_device(drawer.params().device());
        let z = tch::no_grad(|| drawer.params_for(&t))?.to_kind(Kind::Float);
        rows.push(&z / z.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12));
    }
    let mean = Tensor::stack(&rows, 0).mean_dim(0, false, Kind::Float);
    Ok(&mean / mean.norm())
}

/// One overlay file stretched to the run's size, `[1, 4, H, W]`: its own alpha, or
/// `--overlay-alpha`, as pixray's `putalpha`.
fn load_overlay(path: &std::path::Path, settings: &Settings) -> Result<Tensor> {
    let img = crate::image_io::load_image(path)
        .map_err(|e| crate::error::usage(format!("--overlay-image: {e:#}")))?
        .to_rgba8();
    let (h, w) = (settings.size.height, settings.size.width);
    let mut img = image::imageops::resize(
        &img,
        w as u32,
        h as u32,
        image::imageops::FilterType::Lanczos3,
    );
    if let Some(a) = settings.overlay_alpha {
        for p in img.pixels_mut() {
            p[3] = a as u8;
        }
    }
    Ok(Tensor::from_slice(img.as_raw())
        .view([h, w, 4])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0)
}

/// `texts` through CLIP's text tower: `[n, d]`, rows normalized (`[0, 1]` for none). In chunks:
/// one batch of a thousand prompts would hold every layer's activations at once.
fn encode_texts(
    clip: &Clip,
    tokenizer: &Tokenizer,
    texts: &[String],
    device: Device,
) -> Result<Tensor> {
    if texts.is_empty() {
        return Ok(Tensor::zeros([0, 1], (Kind::Float, device)));
    }
    let mut parts = Vec::new();
    for chunk in texts.chunks(TEXT_CHUNK) {
        let (tokens, _dropped) = tokenizer.tokenize_batch(chunk)?;
        parts.push(tch::no_grad(|| {
            let e = clip
                .encode_text(&tokens.to_device(device))
                .to_kind(Kind::Float);
            &e / e.norm_scalaropt_dim(2.0, [-1], true)
        }));
    }
    Ok(Tensor::cat(&parts, 0))
}

/// `--label`s as pixray encodes them: each text in its 7 ImageNet templates, the embeddings
/// normalized, averaged and normalized again (CLIP's zero-shot classifier).
fn label_embeddings(
    clip: &Clip,
    tokenizer: &Tokenizer,
    labels: &[crate::settings::Prompt],
    device: Device,
) -> Result<Tensor> {
    use crate::clip_tasks::templates::{IMAGENET_SELECTED, fill};
    let mut rows = Vec::new();
    for l in labels {
        let texts: Vec<String> = IMAGENET_SELECTED.iter().map(|t| fill(t, &l.text)).collect();
        let e = encode_texts(clip, tokenizer, &texts, device)?.mean_dim(0, true, Kind::Float);
        rows.push(&e / e.norm_scalaropt_dim(2.0, [-1], true));
    }
    if rows.is_empty() {
        return Ok(Tensor::zeros([0, 1], (Kind::Float, device)));
    }
    Ok(Tensor::cat(&rows, 0))
}

/// A `--target-image`'s files through CLIP's own preprocessing (shorter side resized to the input
/// resolution, centre-cropped; pixray's `-ti`), encoded once: `[files, d]`, rows normalized.
fn target_embeddings(
    clip: &Clip,
    target: &crate::settings::TargetImage,
    device: Device,
) -> Result<Tensor> {
    let res = clip.input_resolution();
    let mut rows = Vec::new();
    for path in target.files()? {
        let img = crate::image_io::load_rgb(&path)
            .with_context(|| format!("--target-image {}", path.display()))?;
        rows.push(crate::models::clip::preprocess::preprocess_image(&img, res));
    }
    let e = tch::no_grad(|| {
        clip.encode_image(&Tensor::cat(&rows, 0).to_device(device))
            .to_kind(Kind::Float)
    });
    Ok(&e / e.norm_scalaropt_dim(2.0, [-1], true))
}

/// `a + b`, where either may be absent.
fn accumulate(a: Option<Tensor>, b: Option<Tensor>) -> Option<Tensor> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The gradient of `loss` w.r.t. the image leaf `img` (the graph is freed).
fn image_grad(loss: &Tensor, img: &Tensor) -> Result<Tensor> {
    Tensor::run_backward(&[loss], &[img], false, false)
        .pop()
        .context("no image gradient")
}

/// Takes a batch's loss term: its share when a step averages `batches` cutout batches is added
/// to the logged total in `logged` and kept (with its graph) in `batch_terms` for the backward.
fn take_share(term: Tensor, batches: i64, logged: &mut Tensor, batch_terms: &mut Vec<Tensor>) {
    let term = if batches > 1 {
        term / batches as f64
    } else {
        term
    };
    *logged = &*logged + term.detach();
    batch_terms.push(term);
}

/// A unit vector of `dim` standard normal draws (Box-Muller) from `seed`: the target of a noise
/// prompt, drawn on the host so every device and run gets the same one.
pub fn noise_direction(seed: u64, dim: i64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f64> = (0..dim)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| (x / norm) as f32).collect()
}

/// The sum of `terms` in order, from a 0-d zero (the zero when empty).
fn sum_terms<'a>(terms: impl IntoIterator<Item = &'a Tensor>, device: Device) -> Tensor {
    terms
        .into_iter()
        .fold(Tensor::zeros([], (Kind::Float, device)), |acc, t| acc + t)
}

/// A `--clip` value as the closing line names it: a file by its name, a known model by its own.
fn short_model_name(spec: &str) -> String {
    let p = std::path::Path::new(spec);
    match p.extension().and_then(|e| e.to_str()) {
        Some("pt" | "safetensors" | "pth" | "bin") => p
            .file_name()
            .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned()),
        _ => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::noise_direction;

    #[test]
    fn noise_directions_are_seeded_unit_vectors() {
        let a = noise_direction(42, 512);
        assert_eq!(a, noise_direction(42, 512));
        assert_ne!(a, noise_direction(43, 512));
        let norm: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        // Standard normal draws: the mean of 512 unit-vector entries is about 0 (σ = 1/512).
        let mean: f64 = a.iter().map(|&x| x as f64).sum::<f64>() / 512.0;
        assert!(mean.abs() < 4.0 / 512.0, "{mean}");
    }
}
