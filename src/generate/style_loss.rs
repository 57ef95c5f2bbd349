//! `--loss style`: pixray's STROTSS style loss (pixray/Losses/StyleLoss.py, after Kolkin et al.'s
//! STROTSS): at each scale of a Laplacian pyramid, VGG16 hypercolumns at sampled positions of the
//! picture are compared with those of the style image (relaxed earth mover's distance, mean and
//! covariance) and with the picture's own layout (the self-similarity of its content).
//!
//! Equal to pixray's code given the same random draws (tests/losses.rs against
//! tests/fixtures/make_style_fixtures.py), with two exact savings: the picture's VGG16 features are
//! computed once per scale instead of once per inner iteration (they do not change between them:
//! pixray's inner loop only reshuffles the positions), and the style's once per scale instead of
//! five times.
use crate::models::vgg::Vgg16;
use crate::settings::StyleSpace;
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// The smallest short side STROTSS works at (pixray's scales keep `side / 2^k >= 33`).
pub const MIN_SIDE: i64 = 33;
/// Style positions sampled per draw (pixray's `samps=1000`), five draws per scale.
const STYLE_SAMPLES: usize = 1000;
const STYLE_DRAWS: usize = 5;
/// The picture positions compared per inner iteration (pixray's `num_locations`).
const LOCATIONS: usize = 1024;
/// Inner iterations per scale (pixray's `opt_iter`).
const ITERATIONS: usize = 3;

/// The loss's random draws, as pixray makes them with numpy (replaced by recorded ones in tests).
pub trait StyleDraws {
    /// The first `k` of a random permutation of `0..n`.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize>;
    /// A random integer in `0..n`.
    fn below(&mut self, n: usize) -> usize;
}

/// Draws from a random generator (a run's: [`crate::generate::rng::style_rng`]).
pub struct RngDraws<R: Rng>(pub R);

impl<R: Rng> StyleDraws for RngDraws<R> {
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        rand::seq::index::sample(&mut self.0, n, k.min(n)).into_vec()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n.max(1))
    }
}

/// Recorded draws played back in order (tests: numpy's draws from the reference).
pub struct Replay {
    values: Vec<i64>,
    at: usize,
}

impl Replay {
    pub fn new(values: Vec<i64>) -> Replay {
        Replay { values, at: 0 }
    }
    fn next(&mut self) -> usize {
        let v = self.values.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v.max(0) as usize
    }
    /// Whether every recorded draw was used, and no more.
    pub fn used_up(&self) -> bool {
        self.at == self.values.len()
    }
}

impl StyleDraws for Replay {
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        (0..k.min(n)).map(|_| self.next()).collect()
    }
    fn below(&mut self, _n: usize) -> usize {
        self.next()
    }
}

/// The style loss of a run: the VGG16, the style image at the picture's size and the settings.
pub struct StyleLoss {
    vgg: Vgg16,
    /// `[1, 3, h, w]`, the style image stretched to the picture.
    style: Tensor,
    content_weight: f64,
    space: StyleSpace,
    mean: Tensor,
    std: Tensor,
    /// RGB to YUV, for the colour term.
    yuv: Tensor,
}

/// `F.interpolate(x, [h, w], mode="bilinear", align_corners=False)`.
fn resample(x: &Tensor, h: i64, w: i64) -> Tensor {
    x.upsample_bilinear2d([h, w], false, None, None)
}

fn hw(x: &Tensor) -> (i64, i64) {
    let s = x.size();
    (s[2], s[3])
}

fn laplacian(x: &Tensor) -> Tensor {
    let (h, w) = hw(x);
    x - resample(&resample(x, h / 2, w / 2), h, w)
}

fn laplace_pyramid(x: &Tensor, levels: usize) -> Vec<Tensor> {
    let mut pyramid = Vec::with_capacity(levels + 1);
    let mut current = x.shallow_clone();
    for _ in 0..levels {
        pyramid.push(laplacian(&current));
        let (h, w) = hw(&current);
        current = resample(&current, (h / 2).max(1), (w / 2).max(1));
    }
    pyramid.push(current);
    pyramid
}

fn fold_pyramid(pyramid: &[Tensor]) -> Tensor {
    let mut current = pyramid[pyramid.len() - 1].shallow_clone();
    for level in pyramid[..pyramid.len() - 1].iter().rev() {
        let (h, w) = hw(level);
        current = level + resample(&current, h, w);
    }
    current
}

/// `1 - cos` between every row of `x` `[n, d]` and of `y` `[m, d]` (no epsilon, as pixray).
fn cos_distances(x: &Tensor, y: &Tensor) -> Tensor {
    let xn = x
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .sqrt()
        .view([-1, 1]);
    let yn = y
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .sqrt()
        .view([1, -1]);
    (x.mm(&y.tr()) / xn / yn).neg() + 1.0
}

/// Squared L2 distances clamped to [1e-5, 1e5], over `d`, then the root.
fn l2_distances(x: &Tensor, y: &Tensor) -> Tensor {
    let xn = x
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .view([-1, 1]);
    let yn = y
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .view([1, -1]);
    let d = xn + yn - x.mm(&y.tr()) * 2.0;
    (d.clamp(1e-5, 1e5) / x.size()[1] as f64).sqrt()
}

fn content_loss(x: &Tensor, y: &Tensor) -> Tensor {
    (cos_distances(x, x) - cos_distances(y, y))
        .abs()
        .mean(Kind::Float)
}

/// Relaxed EMD between the rows of `x` `[n, d]` and `y` `[m, d]` (cosine distances).
fn remd(x: &Tensor, y: &Tensor) -> Tensor {
    relaxed(&cos_distances(x, y))
}

/// The colour term's relaxed EMD: rows `[n, 3]` in YUV (`yuv` `[3, 3]`), cosine plus L2
/// distances (pixray's style_loss with d = 3).
fn colour_remd(x: &Tensor, y: &Tensor, yuv: &Tensor) -> Tensor {
    let x = yuv.mm(&x.tr()).tr();
    let y = yuv.mm(&y.tr()).tr();
    relaxed(&(cos_distances(&x, &y) + l2_distances(&x, &y)))
}

/// The larger of the mean row-wise and column-wise minima of a distance matrix.
fn relaxed(m: &Tensor) -> Tensor {
    let m1 = m.min_dim(1, false).0.mean(Kind::Float);
    let m2 = m.min_dim(0, false).0.mean(Kind::Float);
    m1.maximum(&m2)
}

/// The mean and covariance differences of `x` `[n, d]` and the style columns (their [`Moments`]).
fn moment_loss(x: &Tensor, y: &Moments) -> Tensor {
    let mx = x.mean_dim(0, true, Kind::Float);
    let means = (&mx - &y.mean).abs().mean(Kind::Float);
    let xc = x - &mx;
    let cx = xc.tr().mm(&xc) / (x.size()[0] - 1) as f64;
    means + (cx - &y.cov).abs().mean(Kind::Float)
}

/// The style columns' mean and covariance: the same for the three inner iterations of a scale,
/// so computed once (pixray recomputes them; at VGG16's 2179 channels and 5000 samples the
/// covariance is about 47 GFLOP).
struct Moments {
    mean: Tensor,
    cov: Tensor,
}

impl Moments {
    fn of(y: &Tensor) -> Moments {
        tch::no_grad(|| {
            let mean = y.mean_dim(0, true, Kind::Float);
            let yc = y - &mean;
            let cov = yc.tr().mm(&yc) / (y.size()[0] - 1) as f64;
            Moments { mean, cov }
        })
    }
}

/// Integer positions halved (floored) where a layer is smaller than the one before, clamped to
/// each layer: the rows of every layer at `(xs, ys)` (pixray's forward_samples_hypercolumn),
/// `[n, channels]` over all layers.
fn hypercolumns(feats: &[Tensor], xs: &[i64], ys: &[i64]) -> Tensor {
    let mut xs = xs.to_vec();
    let mut ys = ys.to_vec();
    let mut cols = Vec::with_capacity(feats.len());
    for (i, f) in feats.iter().enumerate() {
        let (h, w) = hw(f);
        if i > 0 && h < hw(&feats[i - 1]).0 {
            xs.iter_mut().for_each(|x| *x /= 2);
            ys.iter_mut().for_each(|y| *y /= 2);
        }
        xs.iter_mut().for_each(|x| *x = (*x).clamp(0, h - 1));
        ys.iter_mut().for_each(|y| *y = (*y).clamp(0, w - 1));
        let flat: Vec<i64> = xs.iter().zip(&ys).map(|(x, y)| x * w + y).collect();
        let idx = Tensor::from_slice(&flat).to_device(f.device());
        let c = f.size()[1];
        cols.push(f.view([c, h * w]).index_select(1, &idx));
    }
    Tensor::cat(&cols, 0).tr()
}

/// Bilinear samples of two equally shaped feature stacks at fractional positions `(xs, ys)`
/// (halved where a layer shrinks), `[n, channels]` each (pixray's spatial_feature_extract).
fn bilinear_columns(a: &[Tensor], b: &[Tensor], xs: &[f64], ys: &[f64]) -> (Tensor, Tensor) {
    let mut xs = xs.to_vec();
    let mut ys = ys.to_vec();
    let (mut ca, mut cb) = (Vec::new(), Vec::new());
    for i in 0..a.len() {
        let (h, w) = hw(&a[i]);
        if i > 0 && hw(&a[i - 1]).0 > h {
            xs.iter_mut().for_each(|x| *x /= 2.0);
            ys.iter_mut().for_each(|y| *y /= 2.0);
        }
        let n = xs.len();
        let mut weights = [Vec::with_capacity(n), Vec::new(), Vec::new(), Vec::new()];
        let mut index = [Vec::with_capacity(n), Vec::new(), Vec::new(), Vec::new()];
        for (&x, &y) in xs.iter().zip(&ys) {
            let (xm, ym) = (x.floor(), y.floor());
            let (xr, yr) = (x - xm, y - ym);
            weights[0].push(((1.0 - xr) * (1.0 - yr)) as f32);
            weights[1].push(((1.0 - xr) * yr) as f32);
            weights[2].push((xr * (1.0 - yr)) as f32);
            weights[3].push((xr * yr) as f32);
            let (xm, ym) = ((xm as i64).clamp(0, h - 1), (ym as i64).clamp(0, w - 1));
            let (x1, y1) = ((xm + 1).min(h - 1), (ym + 1).min(w - 1));
            index[0].push(xm * w + ym);
            index[1].push(xm * w + y1);
            index[2].push(x1 * w + ym);
            index[3].push(x1 * w + y1);
        }
        let dev = a[i].device();
        let idx: Vec<Tensor> = index
            .iter()
            .map(|v| Tensor::from_slice(v).to_device(dev))
            .collect();
        let wts: Vec<Tensor> = weights
            .iter()
            .map(|v| Tensor::from_slice(v).to_device(dev).view([1, -1]))
            .collect();
        let sample = |f: &Tensor| {
            let c = f.size()[1];
            let flat = f.view([c, h * w]);
            let mut acc = flat.index_select(1, &idx[0]) * &wts[0];
            for k in 1..4 {
                acc += flat.index_select(1, &idx[k]) * &wts[k];
            }
            acc
        };
        ca.push(sample(&a[i]));
        cb.push(sample(&b[i]));
    }
    (Tensor::cat(&ca, 0).tr(), Tensor::cat(&cb, 0).tr())
}

impl StyleLoss {
    /// `style` `[1, 3, h, w]` is the style image already at the picture's size.
    pub fn new(
        vgg: Vgg16,
        style: Tensor,
        content_weight: f64,
        space: StyleSpace,
        device: Device,
    ) -> StyleLoss {
        let stat = |v: [f32; 3]| Tensor::from_slice(&v).view([1, 3, 1, 1]).to_device(device);
        StyleLoss {
            vgg,
            style: style.to_kind(Kind::Float).to_device(device),
            content_weight,
            space,
            mean: stat([0.485, 0.456, 0.406]),
            std: stat([0.229, 0.224, 0.225]),
            yuv: Tensor::from_slice(&[
                0.577350f32,
                0.577350,
                0.577350,
                -0.577350,
                0.788675,
                -0.211325,
                -0.577350,
                -0.211325,
                0.788675,
            ])
            .view([3, 3])
            .to_device(device),
        }
    }

    /// pixray's `TF.resize(TF.to_tensor(image), out size, BICUBIC)`: bicubic with antialiasing,
    /// values not clamped. `pixels` `[1, 3, H, W]` in [0, 1].
    pub fn stretch(pixels: &Tensor, h: i64, w: i64) -> Tensor {
        pixels.internal_upsample_bicubic2d_aa([h, w], false, None, None)
    }

    fn extract(&self, x: &Tensor) -> Vec<Tensor> {
        let x = match self.space {
            StyleSpace::Uniform => ((x + 1.0) / 2.0 - &self.mean) / &self.std,
            StyleSpace::Vgg => x.shallow_clone(),
        };
        self.vgg.features(&x)
    }

    /// The scale divisors, coarsest first (pixray's `scales`).
    fn scales(h: i64, w: i64) -> Vec<i64> {
        (0..10)
            .map(|s| 1i64 << s)
            .filter(|d| h.min(w) / d >= MIN_SIDE)
            .rev()
            .collect()
    }

    /// The loss of `out` `[1, 3, h, w]` (the picture, the style image's size).
    pub fn value(&self, out: &Tensor, draws: &mut dyn StyleDraws) -> Tensor {
        let (h, w) = hw(out);
        let scales = Self::scales(h, w);
        let mut total = Tensor::zeros([], (Kind::Float, out.device()));
        let mut content_weight = self.content_weight;
        let mut lr = 2e-3;
        let mut result: Option<Tensor> = None;
        for (i, &scale) in scales.iter().enumerate() {
            let content = resample(out, h / scale, w / scale);
            let (sh, sw) = hw(&self.style);
            let style = resample(&self.style, sh / scale, sw / scale);
            let (ch, cw) = hw(&content);
            let r = match result.take() {
                None => {
                    laplacian(&content)
                        + style
                            .mean_dim(2, true, Kind::Float)
                            .mean_dim(3, true, Kind::Float)
                }
                Some(r) if i == scales.len() - 1 => {
                    lr = 1.0;
                    resample(&r, ch, cw)
                }
                Some(r) => resample(&r, ch, cw) + laplacian(&content),
            };
            total += self.scale_loss(&r, &content, &style, content_weight, lr, draws);
            result = Some(r);
            content_weight /= 2.0;
        }
        total
    }

    fn scale_loss(
        &self,
        result: &Tensor,
        content: &Tensor,
        style: &Tensor,
        content_weight: f64,
        lr: f64,
        draws: &mut dyn StyleDraws,
    ) -> Tensor {
        let feat_content = self.extract(content);
        let feat_style = tch::no_grad(|| self.extract(style));
        let (sh, sw) = hw(style);
        let positions = (sh * sw) as usize;
        let samples = STYLE_SAMPLES.min(positions);
        let mut style_cols = Vec::with_capacity(STYLE_DRAWS);
        for _ in 0..STYLE_DRAWS {
            // numpy's meshgrid order: position p is (p % h, p / h)
            let picked = draws.sample(positions, samples);
            let xs: Vec<i64> = picked.iter().map(|&p| p as i64 % sh).collect();
            let ys: Vec<i64> = picked.iter().map(|&p| p as i64 / sh).collect();
            style_cols.push(hypercolumns(&feat_style, &xs, &ys));
        }
        let style_cols = Tensor::cat(&style_cols, 0);
        let moments = Moments::of(&style_cols);
        // pixray's sample_indices, over the content's own size
        let (h, w) = hw(content);
        let q = ((h * w) / (128 * 128)) as f64;
        let stride_x = (q.sqrt().floor() as i64).max(1);
        let offset_x = draws.below(stride_x as usize) as i64;
        let stride_y = (q.sqrt().ceil() as i64).max(1);
        let offset_y = draws.below(stride_y as usize) as i64;
        let (mut xx, mut xy) = (Vec::new(), Vec::new());
        for y in (offset_y..w).step_by(stride_y as usize) {
            for x in (offset_x..h).step_by(stride_x as usize) {
                xx.push(x);
                xy.push(y);
            }
        }
        // The inner iterations change only the positions: the picture's features are the same.
        let stylized = fold_pyramid(&laplace_pyramid(result, 5));
        let feat_result = self.extract(&stylized);
        let mut total = Tensor::zeros([], (Kind::Float, result.device()));
        for it in 0..ITERATIONS {
            if it != 0 {
                let p = draws.sample(xx.len(), xx.len());
                xx = p.iter().map(|&i| xx[i]).collect();
                let p = draws.sample(xy.len(), xy.len());
                xy = p.iter().map(|&i| xy[i]).collect();
            }
            let n = xx.len().min(LOCATIONS);
            let fx: Vec<f64> = xx[..n].iter().map(|&v| v as f64).collect();
            let fy: Vec<f64> = xy[..n].iter().map(|&v| v as f64).collect();
            let loss = self.calculate(
                &feat_result,
                &feat_content,
                (&style_cols, &moments),
                &fx,
                &fy,
                content_weight,
            );
            total += loss * lr;
        }
        total
    }

    fn calculate(
        &self,
        feat_result: &[Tensor],
        feat_content: &[Tensor],
        (style, moments): (&Tensor, &Moments),
        xs: &[f64],
        ys: &[f64],
        content_weight: f64,
    ) -> Tensor {
        let (res, con) = bilinear_columns(feat_result, feat_content, xs, ys);
        let loss_content = content_loss(&res, &con);
        let loss_remd = remd(&res, style);
        let rgb = |t: &Tensor| t.narrow(1, 0, 3);
        let palette =
            colour_remd(&rgb(&res), &rgb(style), &self.yuv) * (1.0 / content_weight.max(1.0));
        let moment = moment_loss(&res, moments) + palette;
        let loss_style = loss_remd + moment;
        let style_weight = 2.0;
        (loss_content * content_weight + loss_style) / (content_weight + style_weight)
    }
}
