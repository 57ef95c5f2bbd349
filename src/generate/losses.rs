//! Loss terms of the generator loop: the CLIP prompt loss (spherical distance with weight and
//! stop, anchors §3.5–3.6), the init regulariser, and the image-space extras of `--loss`
//! (TV, pixray's saturation/symmetry/smoothness, anchors §1.9). Every function returns a scalar
//! (0-dim) tensor unless stated; the caller multiplies by the user's weight where noted.
use crate::generate::grad::replace_grad;
use crate::settings::SmoothnessType;
use tch::{Reduction, Tensor};

/// Keeps `sqrt` differentiable where its argument is 0 (flat images, equal vectors).
const SQRT_EPS: f64 = 1e-8;

/// Row-wise L2 normalisation, `x / max(‖x‖, 1e-12)` like `F.normalize`.
fn normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12)
}

/// Spherical distance between every row of `a` `[n, d]` and every row of `b` `[m, d]`: `[n, m]`.
///
/// Both are L2-normalised, then `d = 2·asin(‖â − b̂‖ / 2)²`. With θ the angle between the rows,
/// `‖â − b̂‖ = 2 sin(θ/2)`, so `d = θ²/2`: 0 for equal directions, π²/8 for orthogonal ones and
/// π²/2 for opposite ones. The asin argument is clamped to 1 against rounding.
pub fn spherical_distance(a: &Tensor, b: &Tensor) -> Tensor {
    let a = normalize(a).unsqueeze(1); // [n, 1, d]
    let b = normalize(b).unsqueeze(0); // [1, m, d]
    let chord = (a - b).norm_scalaropt_dim(2.0, [-1], false); // [n, m]
    (chord / 2.0).clamp_max(1.0).arcsin().square() * 2.0
}

/// One prompt's loss (Crowson's `Prompt.forward`): `image_embeds` `[n, d]` (one row per cutout)
/// against `target` `[m, d]` (one row for text, several for an image prompt).
///
/// With `D = spherical_distance(image_embeds, target)` `[n, m]` and `s = sign(weight)`, the value is
/// `|weight| · mean(s·D)` (= `weight · mean(D)`), a scalar. The gradient flows only through the
/// elements with `s·D > stop`; `stop = −∞` means always. A negative weight pushes away.
pub fn prompt_loss(image_embeds: &Tensor, target: &Tensor, weight: f64, stop: f64) -> Tensor {
    let signed = spherical_distance(image_embeds, target) * weight.signum();
    // Forward: s·D everywhere; backward: only where s·D > stop.
    let open = signed.gt(stop).to_kind(signed.kind());
    let stopped = replace_grad(&signed, &(&signed * open));
    stopped.mean(None) * weight.abs()
}

/// Total-variation loss of `img` `[b, c, h, w]` (the codebook notebook's `tv_loss`):
/// `Σ (x[i, j+1] − x[i, j])² + Σ (x[i+1, j] − x[i, j])²` divided by `b·c·h·w`, i.e. the mean over
/// pixels of `Δx² + Δy²` with replicate padding (the last row/column contributes 0). The notebook
/// scales it by `w/4` at the call site; here the caller's weight applies directly.
pub fn tv_loss(img: &Tensor) -> Tensor {
    let w = img.size()[3];
    let h = img.size()[2];
    let dx = img.narrow(3, 1, w - 1) - img.narrow(3, 0, w - 1);
    let dy = img.narrow(2, 1, h - 1) - img.narrow(2, 0, h - 1);
    (dx.square().sum(None) + dy.square().sum(None)) / img.numel() as f64
}

/// Pixray's saturation loss: minus the Hasler–Süsstrunk colourfulness of `img` `[b, 3, h, w]`
/// over all its pixels, divided by 10, so a positive weight saturates and a negative one greys.
///
/// `rg = R − G`, `yb = ½(R + G) − B`; `C = √(σ_rg² + σ_yb²) + 0.3·√(μ_rg² + μ_yb²)` with unbiased σ
/// (`torch.std_mean`), and `1e-8` added inside both roots so a grey image has a finite gradient.
pub fn saturation_loss(img: &Tensor) -> Tensor {
    let r = img.select(1, 0);
    let g = img.select(1, 1);
    let b = img.select(1, 2);
    let rg = &r - &g;
    let yb = (&r + &g) * 0.5 - b;
    let spread = (rg.var(true) + yb.var(true) + SQRT_EPS).sqrt();
    let centre = (rg.mean(None).square() + yb.mean(None).square() + SQRT_EPS).sqrt();
    (spread + centre * 0.3) * -0.1
}

/// Pixray's symmetry loss: `MSE(img, hflip(img))` over all elements of `img` `[b, c, h, w]`.
pub fn symmetry_loss(img: &Tensor) -> Tensor {
    img.mse_loss(&img.flip([3]), Reduction::Mean)
}

/// `torch.gradient` along `dim` with unit spacing and edge order 1: central differences inside,
/// one-sided differences on the two edges. Zero when the axis has fewer than 2 samples.
fn finite_gradient(x: &Tensor, dim: i64) -> Tensor {
    let n = x.size()[dim as usize];
    if n < 2 {
        return x.zeros_like();
    }
    let first = x.narrow(dim, 1, 1) - x.narrow(dim, 0, 1);
    let inner = (x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2)) / 2.0;
    let last = x.narrow(dim, n - 1, 1) - x.narrow(dim, n - 2, 1);
    Tensor::cat(&[first, inner, last], dim)
}

/// Pixray's smoothness loss ("default" type) on `img` `[b, c, h, w]`: per pixel
/// `s = √(Σ_c (g_x² + g_y²) + 1e-8)` with `g` from [`finite_gradient`] (`torch.gradient`), then
/// the mean of `s` over all pixels. The `1e-8` keeps the gradient finite on flat areas.
pub fn smoothness_loss(img: &Tensor) -> Tensor {
    sharpness(img).mean(None)
}

/// The per-pixel sharpness `[b, h, w]` of [`smoothness_loss`].
fn sharpness(img: &Tensor) -> Tensor {
    let gx = finite_gradient(img, 3);
    let gy = finite_gradient(img, 2);
    let sq = (gx.square() + gy.square()).sum_dim_intlist(1, false, None);
    (sq + SQRT_EPS).sqrt()
}

/// Pixray's smoothness loss with its options: `img` first blurred by `blur` (a depthwise
/// [`gaussian_kernel`], no padding, as its GaussianSmoothing), then the sharpness as is, clipped at
/// 0.5, or `log(1 + s)`, averaged.
pub fn smoothness_loss_with(img: &Tensor, kind: SmoothnessType, blur: Option<&Tensor>) -> Tensor {
    let img = match blur {
        Some(k) => img.conv2d(k, None::<Tensor>, [1, 1], [0, 0], [1, 1], img.size()[1]),
        None => img.shallow_clone(),
    };
    let s = sharpness(&img);
    let s = match kind {
        SmoothnessType::Default => s,
        SmoothnessType::Clipped => s.clamp_max(0.5),
        SmoothnessType::Log => (s + 1.0).log(),
    };
    s.mean(None)
}

/// Pixray's GaussianSmoothing weight for `channels` channels, `[channels, 1, size, size]`: the
/// product over both axes of `exp(-((x - (size-1)/2) / (2·std))²)` (its formula, with 2·std
/// inside the square), normalized to sum 1.
pub fn gaussian_kernel(channels: i64, size: i64, std: f64) -> Tensor {
    let mean = (size - 1) as f64 / 2.0;
    let axis: Vec<f64> = (0..size)
        .map(|x| {
            let z = (x as f64 - mean) / (2.0 * std);
            (-(z * z)).exp() / (std * (2.0 * std::f64::consts::PI).sqrt())
        })
        .collect();
    let a = Tensor::from_slice(&axis).to_kind(tch::Kind::Float);
    let k = a.unsqueeze(1) * a.unsqueeze(0);
    let k = &k / k.sum(tch::Kind::Float);
    k.view([1, 1, size, size]).repeat([channels, 1, 1, 1])
}

/// Where pixray's edge loss pulls: bands along the edges (pixels: left, right, upper, lower; 0
/// leaves one out), or a mask (its black part: where the mask is above 0 the loss is 0).
pub enum EdgeRegion {
    Bands([i64; 4]),
    Mask(Tensor),
}

/// Pixray's EdgeLoss on `out` `[1, 3, h, w]` against `target` (the edge colour everywhere, or an
/// image): the MSE of each band (the upper and lower ones between the left and right bands), or
/// of the picture with the mask's non-black part replaced by the target, plus `global` x the MSE
/// of the whole picture, all times `edge`.
pub fn edge_loss(
    out: &Tensor,
    target: &Tensor,
    region: &EdgeRegion,
    global: f64,
    edge: f64,
) -> Tensor {
    let (h, w) = (out.size()[2], out.size()[3]);
    let mse = |a: &Tensor, b: &Tensor| a.mse_loss(b, Reduction::Mean);
    let mut loss = Tensor::zeros([], (tch::Kind::Float, out.device()));
    match region {
        EdgeRegion::Bands([left, right, upper, lower]) => {
            let (l, r, u, d) = (*left, *right, *upper, *lower);
            let cut = |t: &Tensor, (y0, y1): (i64, i64), (x0, x1): (i64, i64)| {
                t.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0)
            };
            let bands = [
                (l, (0, h), (0, l)),
                (r, (0, h), (w - r, w)),
                (u, (0, u), (l, w - r)),
                (d, (h - d, h), (l, w - r)),
            ];
            for (n, ys, xs) in bands {
                if n != 0 && ys.1 > ys.0 && xs.1 > xs.0 {
                    loss += mse(&cut(out, ys, xs), &cut(target, ys, xs));
                }
            }
        }
        EdgeRegion::Mask(mask) => {
            let masked = target.where_self(&mask.gt(0.0), out);
            loss += mse(&masked, target);
        }
    }
    if global != 0.0 {
        loss += mse(out, target) * global;
    }
    loss * edge
}

/// A term `weight x value` that pushes only while `value > stop` (still logged after): no host
/// sync, as a prompt's stop.
pub fn weighted_with_stop(value: Tensor, weight: f64, stop: Option<f64>) -> Tensor {
    let term = &value * weight;
    match stop {
        None => term,
        Some(s) => term.where_self(&value.gt(s), &term.detach()),
    }
}

/// The anchors' `init_weight` regulariser (Crowson): `MSE(z, z0) / 2`, any equal shapes. The
/// caller multiplies by the weight.
pub fn init_loss(z: &Tensor, z0: &Tensor) -> Tensor {
    z.mse_loss(z0, Reduction::Mean) / 2.0
}

/// pixray's `init_weight_cos` term: `F.cosine_embedding_loss(z, z0, 1)` of the flattened
/// parameters, i.e. `1 - cos(z, z0)` (torch's eps 1e-12 inside the norms). Unweighted.
pub fn init_cos_loss(z: &Tensor, z0: &Tensor) -> Tensor {
    let (a, b) = (z.reshape([-1]), z0.reshape([-1]));
    let dot = (&a * &b).sum(tch::Kind::Float);
    let norms = ((a.square().sum(tch::Kind::Float) + 1e-12)
        * (b.square().sum(tch::Kind::Float) + 1e-12))
        .sqrt();
    -(dot / norms) + 1.0
}
