//! Differentiable per-cutout augments (nerdyrodent's kornia list, anchors §3.3), batched.
//!
//! Every random parameter is drawn on the host from the caller's `ChaCha8Rng` in a fixed order
//! (per cutout: flip, affine, perspective, jitter, erasing; then one seed for the noise tensor),
//! whether or not the augment fires, so the same `(seed, step)` gives the same draws. The
//! sampling grid, colour matrices, erasing masks and noise are built once in
//! [`AugmentPlan::sample`] on the target device; [`AugmentPlan::apply`] only runs batched tensor
//! ops (no host-device sync), so the same plan can be applied to the render and to image prompts.
//!
//! Ranges (kornia's meaning, nerdyrodent's values):
//! - flip: horizontal, p 0.5.
//! - affine: rotation U(±15°), translation U(±0.1)·size per axis, x-shear U(±5°), no scaling, p 0.7.
//! - perspective: each corner moves inward by U(0, 0.7)·size/2 per axis, p 0.7.
//! - jitter: brightness, contrast, saturation factors U(0.9, 1.1) (torchvision's multiplicative
//!   forms), hue U(±0.1) turns as a rotation of the YIQ chroma plane, p 0.7, applied in that fixed
//!   order and without kornia's clamps (they would cut the gradient).
//! - erasing: area U(0.1, 0.4)·size², aspect exp(U(ln 0.3, ln 3.3)), one box per cutout filled
//!   with the cutout's per-channel mean (kornia fills 0; the mean keeps the colour statistics),
//!   p 0.7.
//! - noise: `+ f·N(0, 1)` with `f ~ U(0, 0.1)` per cutout, always (nerdyrodent's `noise_fac`).
//!
//! Flip, affine and perspective of one cutout are composed into one homography
//! `P·A·F` and every cutout is warped by one bilinear `grid_sampler` call with zero padding
//! (kornia's default for both warps). Composing differs from kornia's sequential warps only where
//! an intermediate warp would have sampled its own padding; it also avoids resampling twice.
use crate::settings::Augment;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

pub const FLIP_P: f64 = 0.5;
pub const AFFINE_P: f64 = 0.7;
pub const AFFINE_DEGREES: f64 = 15.0;
pub const AFFINE_TRANSLATE: f64 = 0.1;
pub const AFFINE_SHEAR_DEGREES: f64 = 5.0;
pub const PERSPECTIVE_P: f64 = 0.7;
pub const PERSPECTIVE_DISTORTION: f64 = 0.7;
pub const JITTER_P: f64 = 0.7;
pub const JITTER_BRIGHTNESS: f64 = 0.1;
pub const JITTER_CONTRAST: f64 = 0.1;
pub const JITTER_SATURATION: f64 = 0.1;
pub const JITTER_HUE: f64 = 0.1;
pub const ERASING_P: f64 = 0.7;
pub const ERASING_SCALE: (f64, f64) = (0.1, 0.4);
pub const ERASING_RATIO: (f64, f64) = (0.3, 3.3);
pub const NOISE_FAC: f64 = 0.1;

/// Rec. 601 luma, the grey of torchvision's saturation/contrast and the Y of YIQ.
const LUMA: [f64; 3] = [0.299, 0.587, 0.114];

pub(super) type Mat3 = [[f64; 3]; 3];
pub(super) const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Every draw of one step's augments, as device tensors ready to apply (all f32).
#[derive(Debug)]
pub struct AugmentPlan {
    pub(super) count: i64,
    pub(super) size: i64,
    /// `[n, s, s, 2]` sampling grid of the composed warps (None: no warp fired).
    pub(super) grid: Option<Tensor>,
    /// Grey level for samples outside the image (None: black, kornia's zero padding).
    pub(super) fill: Option<f64>,
    /// `y = A·x + B·mean(x)`: `A`, `B` `[n, 3, 3]`, `mean` the cutout's per-channel mean
    /// (None: jitter not enabled).
    pub(super) color: Option<(Tensor, Tensor)>,
    /// `[n, 1, s, s]`, 1 inside each cutout's erased box.
    pub(super) erase: Option<Tensor>,
    /// `[n, 3, s, s]`, already scaled by each cutout's factor.
    pub(super) noise: Option<Tensor>,
}

/// `lo + (hi − lo)·u` with `u ~ U[0, 1)`: one draw, also when `lo == hi`.
pub(super) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

pub(super) fn matmul3(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// Inverse by the adjugate; `None` when (numerically) singular.
pub(super) fn invert3(m: &Mat3) -> Option<Mat3> {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ];
    let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
    if det.abs() < 1e-12 {
        return None;
    }
    Some(adj.map(|row| row.map(|v| v / det)))
}

/// The homography taking the four `from` points to the four `to` points (an 8×8 solve with
/// partial pivoting; `h33 = 1`). `None` for degenerate point sets.
fn homography(from: &[[f64; 2]; 4], to: &[[f64; 2]; 4]) -> Option<Mat3> {
    let mut a = [[0.0f64; 9]; 8]; // augmented [A | b]
    for k in 0..4 {
        let ([x, y], [u, v]) = (from[k], to[k]);
        a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let p = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / p[col];
                for (v, pv) in r.iter_mut().zip(p.iter()).skip(col) {
                    *v -= f * pv;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]])
}

/// Forward affine map in normalised coordinates ([-1, 1], origin at the cutout centre):
/// translate · rotate · x-shear. A translation of `t`·size is `2t` in these units.
fn affine_matrix(angle: f64, tx: f64, ty: f64, shear: f64) -> Mat3 {
    let (s, c) = angle.sin_cos();
    let rot = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
    let sh = [[1.0, shear.tan(), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let tr = [[1.0, 0.0, 2.0 * tx], [0.0, 1.0, 2.0 * ty], [0.0, 0.0, 1.0]];
    matmul3(&tr, &matmul3(&rot, &sh))
}

/// Forward perspective map: corners `(±1, ±1)` move inward by `distortion·u` per axis (kornia's
/// `distortion·size/2` pixels), `u` the 8 draws in [0, 1).
fn perspective_matrix(u: &[f64; 8]) -> Mat3 {
    perspective_matrix_with(u, PERSPECTIVE_DISTORTION)
}

/// [`perspective_matrix`] with another distortion scale (pixray uses 0.4 and 0.2).
pub(super) fn perspective_matrix_with(u: &[f64; 8], distortion: f64) -> Mat3 {
    let corners = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
    let mut moved = corners;
    for (k, p) in moved.iter_mut().enumerate() {
        p[0] -= corners[k][0] * distortion * u[2 * k];
        p[1] -= corners[k][1] * distortion * u[2 * k + 1];
    }
    // Corners stay in their own quadrant, so the quad is never degenerate.
    homography(&corners, &moved).unwrap_or(IDENTITY)
}

/// Scales a sampling homography so w > 0 at the output centre (which the warped quad always
/// contains), as [`sampling_grid`] expects.
pub(super) fn positive_w(m: Mat3) -> Mat3 {
    let scale = if m[2][2] < 0.0 { -1.0 } else { 1.0 } / m[2][2].abs().max(1e-12);
    m.map(|row| row.map(|v| v * scale))
}

/// RGB → YIQ (FCC NTSC); Y is [`LUMA`] and the chroma rows sum to zero, so greys stay grey.
const RGB_TO_YIQ: Mat3 = [
    [0.299, 0.587, 0.114],
    [0.595716, -0.274453, -0.321263],
    [0.211456, -0.522591, 0.311135],
];

/// The linear part of one cutout's colour jitter, `b·c·H·S`, and the grey-mix weight `(1−c)·b`.
///
/// brightness `x·b`, contrast `c·x + (1−c)·mean_luma`, saturation `s·x + (1−s)·luma(x)`, hue a
/// rotation by `2π·hue` of the IQ plane. `S` and `H` fix greys, so contrast's grey term passes
/// through them unchanged and the whole chain is `A·x + d·mean_luma(x)`.
pub(super) fn color_matrix(b: f64, c: f64, s: f64, hue: f64) -> (Mat3, f64) {
    let mut sat = [[0.0; 3]; 3];
    for (i, row) in sat.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (1.0 - s) * LUMA[j] + if i == j { s } else { 0.0 };
        }
    }
    let (sn, cs) = (2.0 * PI * hue).sin_cos();
    let rot = [[1.0, 0.0, 0.0], [0.0, cs, -sn], [0.0, sn, cs]];
    let yiq_to_rgb = invert3(&RGB_TO_YIQ).unwrap_or(IDENTITY);
    let hue_m = matmul3(&yiq_to_rgb, &matmul3(&rot, &RGB_TO_YIQ));
    let a = matmul3(&hue_m, &sat).map(|row| row.map(|v| v * b * c));
    (a, (1.0 - c) * b)
}

/// Serialises `manual_seed` + draw: the torch generator is global, and tests run in threads.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// `randn(size)` on `options.1` from a host-drawn seed: the same seed gives the same tensor.
/// Reseeds torch's global generator (CPU and CUDA), under a lock.
pub fn randn_seeded(size: &[i64], seed: u64, options: (Kind, Device)) -> Tensor {
    let _guard = TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed as i64);
    Tensor::randn(size, options)
}

/// The host-drawn numbers of one plan, packed so they reach the device in one copy: on CUDA a
/// pageable host-to-device copy synchronizes the stream, so five small uploads per step would
/// be five stalls; one pinned, non-blocking upload is none.
#[derive(Default)]
pub(super) struct Upload {
    data: Vec<f32>,
    /// (offset, shape) of each part, in push order.
    parts: Vec<(usize, Vec<i64>)>,
}

impl Upload {
    /// Appends a part; returns its index.
    pub(super) fn push(&mut self, values: impl IntoIterator<Item = f32>, shape: &[i64]) -> usize {
        let offset = self.data.len();
        self.data.extend(values);
        debug_assert_eq!(
            (self.data.len() - offset) as i64,
            shape.iter().product::<i64>()
        );
        self.parts.push((offset, shape.to_vec()));
        self.parts.len() - 1
    }

    pub(super) fn push_mat3(&mut self, ms: &[Mat3]) -> usize {
        let values = ms
            .iter()
            .flat_map(|m| m.iter().flatten().map(|&v| v as f32));
        self.push(values.collect::<Vec<_>>(), &[ms.len() as i64, 3, 3])
    }

    /// Copies everything to `device` at once and splits it into the parts (views of one buffer).
    pub(super) fn finish(self, device: Device) -> Vec<Tensor> {
        if self.data.is_empty() {
            return self
                .parts
                .iter()
                .map(|(_, shape)| Tensor::zeros(shape.as_slice(), (Kind::Float, device)))
                .collect();
        }
        let buf = crate::device::to_device_async(&Tensor::from_slice(&self.data), device);
        self.parts
            .iter()
            .map(|(offset, shape)| {
                let len: i64 = shape.iter().product();
                buf.narrow(0, *offset as i64, len).view(shape.as_slice())
            })
            .collect()
    }
}

/// `[n, s, s, 2]` grid sampling the input at `inv · (x, y, 1)` for each output pixel, with the
/// align_corners=True convention (pixel centres at ±1 on the edges). `inv` is `[n, 3, 3]`.
pub(super) fn sampling_grid(inv: &Tensor, size: i64) -> Tensor {
    let n = inv.size()[0];
    let opts = (Kind::Float, inv.device());
    let lin = Tensor::linspace(-1.0, 1.0, size, opts);
    let xs = lin.view([1, size, 1]).expand([size, size, 1], false);
    let ys = lin.view([size, 1, 1]).expand([size, size, 1], false);
    let base =
        Tensor::cat(&[xs, ys, Tensor::ones([size, size, 1], opts)], 2).view([size * size, 3]);
    // [s*s, 3] @ [n, 3, 3]ᵀ -> [n, s*s, 3]
    let h = base.matmul(&inv.transpose(1, 2));
    // inv is scaled so w > 0 where the image is; w ≤ 0 lies beyond the horizon (padding).
    let w = h.narrow(2, 2, 1).clamp_min(1e-8);
    (h.narrow(2, 0, 2) / w)
        .clamp(-2.0, 2.0)
        .view([n, size, size, 2])
}

impl AugmentPlan {
    /// Draws the augments in `augs` (order and repeats do not matter) for `count` cutouts of
    /// `size`×`size`, and builds their tensors on `device`.
    pub fn sample(
        augs: &[Augment],
        count: i64,
        size: i64,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> AugmentPlan {
        let has = |a: Augment| augs.contains(&a);
        let n = count.max(0) as usize;
        let mut inv = Vec::with_capacity(n);
        let mut any_warp = false;
        let mut colors = Vec::with_capacity(n);
        let mut greys = Vec::with_capacity(n);
        let mut boxes = Vec::with_capacity(4 * n);
        let mut any_erase = false;
        for _ in 0..n {
            let mut fwd = IDENTITY;
            if has(Augment::Flip) && rng.random_bool(FLIP_P) {
                fwd = matmul3(&[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], &fwd);
                any_warp = true;
            }
            if has(Augment::Affine) {
                let on = rng.random_bool(AFFINE_P);
                let angle = uniform(rng, -AFFINE_DEGREES, AFFINE_DEGREES).to_radians();
                let tx = uniform(rng, -AFFINE_TRANSLATE, AFFINE_TRANSLATE);
                let ty = uniform(rng, -AFFINE_TRANSLATE, AFFINE_TRANSLATE);
                let shear = uniform(rng, -AFFINE_SHEAR_DEGREES, AFFINE_SHEAR_DEGREES).to_radians();
                if on {
                    fwd = matmul3(&affine_matrix(angle, tx, ty, shear), &fwd);
                    any_warp = true;
                }
            }
            if has(Augment::Perspective) {
                let on = rng.random_bool(PERSPECTIVE_P);
                let u: [f64; 8] = std::array::from_fn(|_| rng.random::<f64>());
                if on {
                    fwd = matmul3(&perspective_matrix(&u), &fwd);
                    any_warp = true;
                }
            }
            // Each factor is a non-degenerate warp, so the inverse exists.
            inv.push(positive_w(invert3(&fwd).unwrap_or(IDENTITY)));

            if has(Augment::Jitter) {
                let on = rng.random_bool(JITTER_P);
                let b = uniform(rng, 1.0 - JITTER_BRIGHTNESS, 1.0 + JITTER_BRIGHTNESS);
                let c = uniform(rng, 1.0 - JITTER_CONTRAST, 1.0 + JITTER_CONTRAST);
                let s = uniform(rng, 1.0 - JITTER_SATURATION, 1.0 + JITTER_SATURATION);
                let hue = uniform(rng, -JITTER_HUE, JITTER_HUE);
                let (a, d) = if on {
                    color_matrix(b, c, s, hue)
                } else {
                    (IDENTITY, 0.0)
                };
                colors.push(a);
                // d·mean_luma(x)·1 = (d·1·lumaᵀ)·mean(x)
                greys.push([LUMA.map(|l| l * d); 3]);
            }
            if has(Augment::Erasing) {
                let on = rng.random_bool(ERASING_P);
                let area = (size * size) as f64 * uniform(rng, ERASING_SCALE.0, ERASING_SCALE.1);
                let ratio = uniform(rng, ERASING_RATIO.0.ln(), ERASING_RATIO.1.ln()).exp();
                let h = ((area * ratio).sqrt().round() as i64).clamp(1, size);
                let w = ((area / ratio).sqrt().round() as i64).clamp(1, size);
                let y0 = rng.random_range(0..=size - h);
                let x0 = rng.random_range(0..=size - w);
                if on {
                    boxes.extend([y0, y0 + h, x0, x0 + w]);
                    any_erase = true;
                } else {
                    boxes.extend([0, 0, 0, 0]);
                }
            }
        }
        let mut up = Upload::default();
        let noise_part = has(Augment::Noise).then(|| {
            let facs: Vec<f32> = (0..n)
                .map(|_| uniform(rng, 0.0, NOISE_FAC) as f32)
                .collect();
            (up.push(facs, &[count, 1, 1, 1]), rng.next_u64())
        });
        let grid_part = any_warp.then(|| up.push_mat3(&inv));
        let color_part =
            (!colors.is_empty()).then(|| (up.push_mat3(&colors), up.push_mat3(&greys)));
        // Box bounds are integers below 2^24, exact in f32.
        let erase_part = any_erase.then(|| up.push(boxes.iter().map(|&b| b as f32), &[count, 4]));
        let parts = up.finish(device);

        let noise = noise_part.map(|(i, seed)| {
            randn_seeded(&[count, 3, size, size], seed, (Kind::Float, device)) * &parts[i]
        });
        let grid = grid_part.map(|i| sampling_grid(&parts[i], size));
        let color = color_part.map(|(a, b)| (parts[a].shallow_clone(), parts[b].shallow_clone()));
        let erase = erase_part.map(|i| {
            let b = &parts[i];
            let bound = |k: i64| b.select(1, k).view([count, 1, 1, 1]);
            let idx = Tensor::arange(size, (Kind::Float, device));
            let rows = idx.view([1, 1, size, 1]);
            let cols = idx.view([1, 1, 1, size]);
            rows.ge_tensor(&bound(0))
                .logical_and(&rows.lt_tensor(&bound(1)))
                .logical_and(&cols.ge_tensor(&bound(2)))
                .logical_and(&cols.lt_tensor(&bound(3)))
                .to_kind(Kind::Float)
        });
        AugmentPlan {
            count,
            size,
            grid,
            fill: None,
            color,
            erase,
            noise,
        }
    }

    /// Applies the plan to `x` `[n, 3, s, s]` f32 (the cut-out batch): warp, colour jitter,
    /// erasing, noise. Differentiable w.r.t. `x`.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let (n, s) = (self.count, self.size);
        let mut x = match (&self.grid, self.fill) {
            // interpolation 0 = bilinear, padding 0 = zeros
            (Some(grid), None) => x.grid_sampler(grid, 0, 0, true),
            // Zero padding around `x - g`, plus g: outside samples read grey g, edges blend.
            (Some(grid), Some(g)) => (x - g).grid_sampler(grid, 0, 0, true) + g,
            (None, _) => x.shallow_clone(),
        };
        if let Some((a, b)) = &self.color {
            let flat = x.reshape([n, 3, s * s]);
            let mean = flat.mean_dim(2, true, None); // [n, 3, 1]
            x = (a.bmm(&flat) + b.bmm(&mean)).view([n, 3, s, s]);
        }
        if let Some(mask) = &self.erase {
            let mean = x.mean_dim(&[2i64, 3][..], true, None); // [n, 3, 1, 1]
            x = &x + mask * (mean - &x);
        }
        if let Some(noise) = &self.noise {
            x = &x + noise;
        }
        x
    }
}
