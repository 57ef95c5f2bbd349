//! The fft drawer: aphantasia's Fourier-space image (lucid's parameterization), as pixray's
//! FftDrawer uses it. The parameters are a half spectrum `[1, 3, H, W/2+1, 2]` (real, imaginary);
//! each frequency is scaled by `sqrt(H·W) / max(f, 4/max(H, W))^decay`, so low frequencies move
//! first and the image stays smooth. Render: inverse real FFT (orthonormal), normalized to
//! `contrast / std`, colours decorrelated by aphantasia's fixed 3x3 matrix, then a sigmoid to RGB.
//!
//! The way back from an image (init image, zoom) is the exact inverse of that render for images
//! whose logit contrast is `contrast`; other images come back with their contrast normalized,
//! since the render fixes it.
use super::Drawer;
use crate::settings::DrawerKind;
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Standard deviation of the random start (aphantasia's `0.01 * randn`); an image start is
/// scaled to the same RMS, so `--lr` means the same for both.
const START_SD: f64 = 0.01;
/// Pixels are clamped to `[EPS, 1 - EPS]` before the logit of the way back.
const EPS: f64 = 0.01;

#[derive(Debug, Clone, Copy)]
pub struct FftSettings {
    pub decay: f64,
    pub colors: f64,
    pub contrast: f64,
}

pub struct Fft {
    spectrum: Tensor,
    /// `[1, 1, H, W/2+1, 1]` frequency scale.
    scale: Tensor,
    /// aphantasia's `colcorr_t`, `[3, 3]`, and its inverse.
    colour: Tensor,
    colour_inv: Tensor,
    contrast: f64,
    hw: (i64, i64),
}

/// numpy's `fft.fftfreq(n)`.
fn fftfreq(n: i64) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let k = if k <= (n - 1) / 2 { k } else { k - n };
            k as f64 / n as f64
        })
        .collect()
}

/// The half-spectrum width numpy's `rfft2d_freqs` keeps.
fn half_width(w: i64) -> i64 {
    if w % 2 == 1 { (w + 1) / 2 } else { w / 2 + 1 }
}

/// aphantasia's frequency scale (`fft_image`), computed in f64 as numpy does, then f32.
pub fn frequency_scale(h: i64, w: i64, decay: f64, device: Device) -> Tensor {
    let fy = fftfreq(h);
    let w2 = half_width(w);
    let fx = &fftfreq(w)[..w2 as usize];
    let floor = 4.0 / h.max(w) as f64;
    let root = ((h * w) as f64).sqrt();
    let v: Vec<f32> = fy
        .iter()
        .flat_map(|y| {
            fx.iter().map(move |x| {
                let f = (x * x + y * y).sqrt().max(floor);
                (1.0 / f.powf(decay) * root) as f32
            })
        })
        .collect();
    Tensor::from_slice(&v)
        .view([1, 1, h, w2, 1])
        .to_device(device)
}

/// aphantasia's `to_valid_rgb` colour matrix `colcorr_t` for `colors` (f32, as torch builds it).
pub fn colour_matrix(colors: f64, device: Device) -> Tensor {
    let c = Tensor::from_slice(&[0.26f32, 0.09, 0.02, 0.27, 0.00, -0.05, 0.27, -0.09, 0.03])
        .view([3, 3]);
    let c = c / Tensor::from_slice(&[colors as f32, 1.0, 1.0]);
    let max_norm = c.norm_scalaropt_dim(2, [0], false).max();
    (c / max_norm)
        .transpose(0, 1)
        .contiguous()
        .to_device(device)
}

fn decorrelate(img: &Tensor, m: &Tensor) -> Tensor {
    Tensor::einsum("nchw,cd->ndhw", &[img, m], None::<&[i64]>)
}

impl Fft {
    pub fn new(
        s: FftSettings,
        hw: (i64, i64),
        start: Option<Tensor>,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> Fft {
        let (h, w) = hw;
        let colour = colour_matrix(s.colors, device);
        let colour_inv = Tensor::linalg_inv(&colour.to_kind(Kind::Double)).to_kind(Kind::Float);
        let mut fft = Fft {
            spectrum: Tensor::zeros([1], (Kind::Float, device)),
            scale: frequency_scale(h, w, s.decay, device),
            colour,
            colour_inv,
            contrast: s.contrast,
            hw,
        };
        let spectrum = match start {
            Some(img) => fft.spectrum_of(&img),
            None => {
                let n = (3 * h * half_width(w) * 2) as usize;
                let v = super::normal(rng, n);
                (Tensor::from_slice(&v) * START_SD)
                    .view([1, 3, h, half_width(w), 2])
                    .to_device(device)
            }
        };
        fft.spectrum = super::leaf(spectrum);
        fft
    }

    /// The spectrum whose render is `img` (up to the fixed contrast), scaled to the start RMS.
    fn spectrum_of(&self, img: &Tensor) -> Tensor {
        let (h, w) = self.hw;
        tch::no_grad(|| {
            let x = img.to_kind(Kind::Float).clamp(EPS, 1.0 - EPS);
            let logit = (&x / (x.ones_like() - &x)).log();
            let u = decorrelate(&logit, &self.colour_inv);
            let spec = u
                .fft_rfftn([h, w].as_slice(), [2i64, 3].as_slice(), "ortho")
                .view_as_real()
                / &self.scale;
            let rms = spec.square().mean(Kind::Float).sqrt().clamp_min(1e-12);
            (spec / rms * START_SD).contiguous()
        })
    }
}

impl Drawer for Fft {
    fn kind(&self) -> DrawerKind {
        DrawerKind::Fft
    }

    fn params(&self) -> &Tensor {
        &self.spectrum
    }

    fn set_params(&mut self, params: Tensor) {
        self.spectrum = params;
    }

    fn render(&self) -> Tensor {
        let (h, w) = self.hw;
        let scaled = (&self.scale * &self.spectrum).view_as_complex();
        let img = scaled.fft_irfftn([h, w].as_slice(), [2i64, 3].as_slice(), "ortho");
        let img = &img * self.contrast / img.std(true);
        decorrelate(&img, &self.colour).sigmoid()
    }

    fn image(&self) -> Tensor {
        tch::no_grad(|| self.render().clamp(0.0, 1.0))
    }

    fn params_for(&self, img: &Tensor) -> Result<Tensor> {
        Ok(self.spectrum_of(img))
    }
}
