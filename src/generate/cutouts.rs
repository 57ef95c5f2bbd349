//! MakeCutouts (anchors §3.3): the batch of `count` views of the render that CLIP sees each step.
//!
//! - `Pooled` (nerdyrodent "latest"): no crop; `(adaptive_avg_pool(s) + adaptive_max_pool(s))/2`
//!   of the whole image, repeated `count` times (non-square images are squashed, as there).
//! - `Original` (Crowson): square crops of side `⌊r^cut_pow·(max − min) + min⌋`, `r ~ U[0, 1)`,
//!   `max = min(W, H)`, `min = min(W, H, s)`, integer offsets uniform, resized to `s×s` by
//!   torch's antialiased bicubic (`_upsample_bicubic2d_aa`, PIL-like) instead of the notebook's
//!   Lanczos-2 prefilter + bicubic.
//!
//! - `Pixray`: the pooled image through pixray's own augments ([`super::pixray_cuts`]); the
//!   `augments` list does not apply.
//!
//! Then the augments of [`AugmentPlan`]. All draws happen in [`CutoutPlan::sample`] (crops first,
//! then augments), so one plan applied to the render and to an image prompt of the same size
//! uses identical geometry, and the same `ChaCha8Rng` state gives the same cutouts.
use crate::generate::augments::AugmentPlan;
use crate::settings::{Augment, CutMethod};
use anyhow::{Result, bail};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// What to cut: method, how many, CLIP's input side and the augments.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutConfig {
    pub method: CutMethod,
    pub count: i64,
    pub cut_pow: f64,
    pub augments: Vec<Augment>,
    /// CLIP input resolution `s` (224 for ViT-B/32).
    pub size: i64,
}

/// One `Original` crop: top-left corner and side, in pixels of the render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: i64,
    pub y: i64,
    pub size: i64,
}

/// Every random draw of one step's cutouts, ready to apply to any image of `image_hw`.
#[derive(Debug)]
pub struct CutoutPlan {
    method: CutMethod,
    count: i64,
    size: i64,
    image_hw: (i64, i64),
    crops: Vec<Crop>,
    augments: AugmentPlan,
}

impl CutoutPlan {
    /// Draws the crops (for `Original`) and the augments for an image of `image_hw` = (H, W).
    pub fn sample(
        cfg: &CutoutConfig,
        image_hw: (i64, i64),
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> CutoutPlan {
        let (h, w) = image_hw;
        let crops = match cfg.method {
            CutMethod::Pooled | CutMethod::Pixray => Vec::new(),
            CutMethod::Original => {
                let max = h.min(w);
                let min = max.min(cfg.size);
                (0..cfg.count)
                    .map(|_| {
                        let r: f64 = rng.random();
                        let side = (r.powf(cfg.cut_pow) * (max - min) as f64 + min as f64).floor();
                        let side = (side as i64).clamp(min, max);
                        let x = rng.random_range(0..=w - side);
                        let y = rng.random_range(0..=h - side);
                        Crop { x, y, size: side }
                    })
                    .collect()
            }
        };
        let augments = match cfg.method {
            CutMethod::Pixray => {
                super::pixray_cuts::sample(cfg.count, cfg.size, image_hw, rng, device)
            }
            _ => AugmentPlan::sample(&cfg.augments, cfg.count, cfg.size, rng, device),
        };
        CutoutPlan {
            method: cfg.method,
            count: cfg.count,
            size: cfg.size,
            image_hw,
            crops,
            augments,
        }
    }

    /// `img` `[1, 3, H, W]` in [0, 1] (any float kind, on the plan's device, `(H, W)` =
    /// `image_hw`) → `[count, 3, s, s]` in `img`'s kind, differentiable w.r.t. `img`. The work is
    /// done in f32. See [`CutoutPlan::try_apply`] for the checked form.
    pub fn apply(&self, img: &Tensor) -> Tensor {
        let cut = self.cut(&img.to_kind(Kind::Float));
        self.augments.apply(&cut).to_kind(img.kind())
    }

    /// The cutouts of `img` with what `keep` (`[1, 3, H, W]` in {0, 1}, image space) leaves out
    /// zeroed before the augments: `keep` is cut with the same geometry (the share of each cutout
    /// pixel it covers, >= 1/2 kept), so the region follows every crop and warp (spot prompts).
    pub fn apply_masked(&self, img: &Tensor, keep: &Tensor) -> Tensor {
        let s = self.size;
        let k = keep.to_kind(Kind::Float);
        let k = match self.method {
            CutMethod::Pooled | CutMethod::Pixray => k
                .adaptive_avg_pool2d([s, s])
                .expand([self.count, 3, s, s], false),
            CutMethod::Original => {
                let views: Vec<Tensor> = self
                    .crops
                    .iter()
                    .map(|c| {
                        let v = k.narrow(2, c.y, c.size).narrow(3, c.x, c.size);
                        if c.size == s {
                            v
                        } else {
                            v.adaptive_avg_pool2d([s, s])
                        }
                    })
                    .collect();
                Tensor::cat(&views, 0)
            }
        }
        .ge(0.5)
        .to_kind(Kind::Float);
        let cut = self.cut(&img.to_kind(Kind::Float)) * k;
        self.augments.apply(&cut).to_kind(img.kind())
    }

    /// The crops (or pooled views) before the augments, `[count, 3, s, s]`.
    fn cut(&self, x: &Tensor) -> Tensor {
        let s = self.size;
        match self.method {
            CutMethod::Pooled | CutMethod::Pixray => {
                let pooled =
                    (x.adaptive_avg_pool2d([s, s]) + x.adaptive_max_pool2d([s, s]).0) / 2.0;
                pooled.expand([self.count, 3, s, s], false)
            }
            CutMethod::Original => {
                let views: Vec<Tensor> = self
                    .crops
                    .iter()
                    .map(|c| {
                        let v = x.narrow(2, c.y, c.size).narrow(3, c.x, c.size);
                        if c.size == s {
                            v
                        } else {
                            v.internal_upsample_bicubic2d_aa([s, s], false, None, None)
                        }
                    })
                    .collect();
                Tensor::cat(&views, 0)
            }
        }
    }

    /// [`CutoutPlan::apply`] after checking that `img` is `[1, 3, H, W]` with the plan's size.
    pub fn try_apply(&self, img: &Tensor) -> Result<Tensor> {
        let (h, w) = self.image_hw;
        let got = img.size();
        if got != [1, 3, h, w] {
            bail!("cutouts: expected an image of shape [1, 3, {h}, {w}], got {got:?}");
        }
        if !matches!(
            img.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            bail!("cutouts: expected a float image, got {:?}", img.kind());
        }
        Ok(self.apply(img))
    }

    /// The `Original` crops in draw order (empty for `Pooled`).
    pub fn crops(&self) -> &[Crop] {
        &self.crops
    }

    /// The (H, W) the plan was drawn for.
    pub fn image_hw(&self) -> (i64, i64) {
        self.image_hw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A spot mask is cut with each cutout's own crop: for same-size crops (no resize) the kept
    /// columns are exactly the crop's columns inside the mask's half.
    #[test]
    fn masks_follow_each_crop() {
        let cfg = CutoutConfig {
            method: CutMethod::Original,
            count: 6,
            cut_pow: 1.0,
            augments: Vec::new(),
            size: 16,
        };
        let (h, w) = (16, 48);
        let plan = CutoutPlan::sample(&cfg, (h, w), &mut ChaCha8Rng::seed_from_u64(5), Device::Cpu);
        let img = Tensor::rand([1, 3, h, w], (Kind::Float, Device::Cpu)) + 0.1;
        let all = Tensor::ones([1, 3, h, w], (Kind::Float, Device::Cpu));
        assert!(plan.apply_masked(&img, &all).equal(&plan.apply(&img)));
        let left = Tensor::arange(w, (Kind::Float, Device::Cpu))
            .lt(20.0)
            .to_kind(Kind::Float)
            .view([1, 1, 1, w])
            .expand([1, 3, h, w], false);
        let cut = plan.apply_masked(&img, &left);
        for (i, c) in plan.crops.iter().enumerate() {
            assert_eq!(c.size, 16);
            for x in 0..16 {
                let kept = cut
                    .get(i as i64)
                    .select(2, x)
                    .abs()
                    .sum(Kind::Float)
                    .double_value(&[])
                    > 0.0;
                assert_eq!(kept, c.x + x < 20, "crop {i} at x {} column {x}", c.x);
            }
        }
    }
}
