//! The `--loss` terms of a run with what they need, prepared once: the smoothness blur kernel, the
//! edge loss's target (the colour, or `--edge-input-image`) and its bands or mask.
use super::losses::{self, EdgeRegion};
use crate::settings::{LossKind, LossTerm, Settings, SmoothnessType};
use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

pub struct ExtraLosses {
    terms: Vec<LossTerm>,
    smoothness: SmoothnessType,
    blur: Option<Tensor>,
    edge: Option<Edge>,
}

struct Edge {
    target: Tensor,
    region: EdgeRegion,
    global: f64,
    weight: f64,
}

impl ExtraLosses {
    pub fn new(s: &Settings, device: Device) -> Result<ExtraLosses> {
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
        Ok(ExtraLosses {
            terms: s.loss.clone(),
            smoothness: s.smoothness_type,
            blur,
            edge,
        })
    }

    /// Each `--loss` term on `img` `[1, 3, h, w]` in [0, 1], weighted, with its stop.
    pub fn terms(&self, img: &Tensor) -> Vec<Tensor> {
        self.terms
            .iter()
            .map(|t| losses::weighted_with_stop(self.value(t.kind, img), t.weight, t.stop))
            .collect()
    }

    /// One loss, unweighted.
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
            // Scored on CLIP embeddings with the prompts (the engine's perceptor terms).
            LossKind::Aesthetic => Tensor::zeros([], (Kind::Float, img.device())),
        }
    }
}

/// An image stretched to `(h, w)` (bicubic, as pixray's TF.resize), `[1, 3, h, w]` in [0, 1].
fn picture(path: &std::path::Path, (h, w): (i64, i64), flag: &str) -> Result<Tensor> {
    let filter = image::imageops::FilterType::CatmullRom;
    crate::image_io::load_stretched(path, w as u32, h as u32, filter)
        .with_context(|| format!("{flag} {}", path.display()))
}
