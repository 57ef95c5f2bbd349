//! The `--loss` terms of a run with what they need, prepared once: the smoothness blur kernel, the
//! edge loss's target (the colour, or `--edge-input-image`) and its bands or mask, the style
//! loss's VGG16 and style image.
use super::losses::{self, EdgeRegion};
use super::style_loss::{Replay, RngDraws, StyleDraws, StyleLoss};
use crate::models::vgg::Vgg16;
use crate::settings::{LossKind, LossTerm, Settings, SmoothnessType};
use anyhow::{Context, Result};
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

pub struct ExtraLosses {
    terms: Vec<LossTerm>,
    smoothness: SmoothnessType,
    blur: Option<Tensor>,
    edge: Option<Edge>,
    style: Option<Style>,
}

struct Style {
    loss: StyleLoss,
    /// pixray's --styleloss_skip and --styleloss_every, in its iterations (step - 1).
    skip: i64,
    every: i64,
    /// Recorded draws that replace the run's (tests replay the reference's).
    replay: Mutex<Option<Replay>>,
}

struct Edge {
    target: Tensor,
    region: EdgeRegion,
    global: f64,
    weight: f64,
}

impl ExtraLosses {
    /// `vgg`: the style loss's network, loaded when `--loss style` is on.
    pub fn new(s: &Settings, device: Device, vgg: Option<Vgg16>) -> Result<ExtraLosses> {
        let (h, w) = (s.size.height, s.size.width);
        let blur = (s.smoothness_gaussian_kernel > 0).then(|| {
            losses::gaussian_kernel(3, s.smoothness_gaussian_kernel, s.smoothness_gaussian_std)
                .to_device(device)
        });
        let edge = if s.loss.iter().any(|t| t.kind == LossKind::Edge) {
            let target = match &s.edge_input_image {
                Some(p) => picture(p, (h, w), "--edge-input-image")?,
                None => {
                    let [r, g, b] = s.edge_color.0.map(|c| c as f32 / 255.0);
                    Tensor::from_slice(&[r, g, b])
                        .view([1, 3, 1, 1])
                        .expand([1, 3, h, w], false)
                        .contiguous()
                }
            };
            let region = match &s.edge_mask_image {
                Some(p) => EdgeRegion::Mask(
                    picture(p, (h, w), "--edge-mask-image")?
                        .mean_dim(1, true, Kind::Float)
                        .to_device(device),
                ),
                None => {
                    let m = s.edge_margins.map(|m| m.0).unwrap_or([s.edge_thickness; 4]);
                    // pixray's int(map_number(pct, 0, 100, 0, side)): truncated
                    let px = |pct: f64, side: i64| (pct / 100.0 * side as f64) as i64;
                    EdgeRegion::Bands([px(m[0], w), px(m[1], w), px(m[2], h), px(m[3], h)])
                }
            };
            Some(Edge {
                target: target.to_device(device),
                region,
                global: s.global_color_weight,
                weight: s.edge_color_weight,
            })
        } else {
            None
        };
        let style = match (&s.style_file, vgg) {
            (Some(path), Some(vgg)) if s.loss.iter().any(|t| t.kind == LossKind::Style) => {
                let pixels = crate::image_io::load_rgb(path)
                    .map(|i| crate::image_io::rgb_to_tensor(&i))
                    .with_context(|| format!("--style-file {}", path.display()))?;
                let style = StyleLoss::stretch(&pixels, h, w);
                Some(Style {
                    loss: StyleLoss::new(
                        vgg,
                        style,
                        s.styleloss_content_weight,
                        s.styleloss_ospace,
                        device,
                    ),
                    skip: s.styleloss_skip,
                    every: s.styleloss_every,
                    replay: Mutex::new(None),
                })
            }
            _ => None,
        };
        Ok(ExtraLosses {
            terms: s.loss.clone(),
            smoothness: s.smoothness_type,
            blur,
            edge,
            style,
        })
    }

    /// Plays `draws` back as the style loss's random draws instead of the run's (tests).
    pub fn replay_style_draws(&self, draws: Vec<i64>) {
        if let Some(s) = &self.style
            && let Ok(mut r) = s.replay.lock()
        {
            *r = Some(Replay::new(draws));
        }
    }

    /// Whether replayed style draws were all used (none left, none missing).
    pub fn style_draws_used_up(&self) -> bool {
        self.style.as_ref().is_some_and(|s| {
            s.replay
                .lock()
                .is_ok_and(|r| r.as_ref().is_some_and(|r| r.used_up()))
        })
    }

    /// Each `--loss` term on `img` `[1, 3, h, w]` in [0, 1] at `step` (from 1) of the run seeded
    /// `seed`, weighted, with its stop.
    pub fn terms(&self, img: &Tensor, step: i64, seed: u64) -> Vec<Tensor> {
        self.terms
            .iter()
            .map(|t| {
                let value = match t.kind {
                    LossKind::Style => self.style_value(img, step, seed),
                    kind => self.value(kind, img),
                };
                losses::weighted_with_stop(value, t.weight, t.stop)
            })
            .collect()
    }

    /// The style loss at `step`: 0 before --styleloss-skip and between --styleloss-every.
    fn style_value(&self, img: &Tensor, step: i64, seed: u64) -> Tensor {
        let zero = || Tensor::zeros([], (Kind::Float, img.device()));
        let Some(s) = &self.style else { return zero() };
        let iteration = step - 1;
        if iteration < s.skip || iteration % s.every != 0 {
            return zero();
        }
        let mut replay = s.replay.lock().ok();
        match replay.as_mut().and_then(|r| r.as_mut()) {
            Some(r) => s.loss.value(img, r),
            None => {
                let mut draws = RngDraws(super::rng::style_rng(seed, step));
                s.loss.value(img, &mut draws as &mut dyn StyleDraws)
            }
        }
    }

    /// One loss, unweighted (the style loss needs a step: [`ExtraLosses::terms`]).
    pub fn value(&self, kind: LossKind, img: &Tensor) -> Tensor {
        match kind {
            LossKind::Tv => losses::tv_loss(img),
            LossKind::Saturation => losses::saturation_loss(img),
            LossKind::Symmetry => losses::symmetry_loss(img),
            LossKind::Smoothness => match (self.smoothness, &self.blur) {
                (SmoothnessType::Default, None) => losses::smoothness_loss(img),
                (kind, blur) => losses::smoothness_loss_with(img, kind, blur.as_ref()),
            },
            LossKind::Edge => match &self.edge {
                Some(e) => losses::edge_loss(img, &e.target, &e.region, e.global, e.weight),
                None => Tensor::zeros([], (Kind::Float, img.device())),
            },
            // Scored on CLIP embeddings or cutouts with the prompts (the engine's perceptor
            // terms), or needing the step (terms).
            LossKind::Aesthetic | LossKind::Resmem | LossKind::Style => {
                Tensor::zeros([], (Kind::Float, img.device()))
            }
        }
    }
}

/// An image stretched to `(h, w)` (bicubic, as pixray's TF.resize), `[1, 3, h, w]` in [0, 1].
fn picture(path: &std::path::Path, (h, w): (i64, i64), flag: &str) -> Result<Tensor> {
    let filter = image::imageops::FilterType::CatmullRom;
    crate::image_io::load_stretched(path, w as u32, h as u32, filter)
        .with_context(|| format!("{flag} {}", path.display()))
}
