//! Drawers: the image parameterizations the loop optimizes (pixray's `--drawer`). The engine
//! (cutouts, augments, CLIP terms, optimizer, schedule, frames, checkpoint) sees only this trait:
//! one parameter tensor for the optimizer, a differentiable render, the saved image, a post-step
//! fix-up and a way back from an image (init and the zoom move).
//!
//! - [`vqgan::VqganDrawer`]: latent codes, straight-through quantized, through the VQGAN decoder.
//! - [`fast_pixel::FastPixel`]: pixray's FastPixelDrawer, a grid of colour cells.
//! - [`fft::Fft`]: aphantasia's Fourier-space image (pixray's FftDrawer).
//! - [`pixel::Pixel`]: pixray's PixelDrawer, polygon cells with fixed coverage (also as SVG).
//! - [`strokes::StrokeDrawer`]: pixray's ClipDrawer and LineDrawer, Bézier strokes through a
//!   differentiable rasterizer (also as SVG).
pub mod fast_pixel;
pub mod fft;
pub mod pixel;
pub mod strokes;
pub mod vector;
pub mod vqgan;

use crate::models::vqgan::Vqgan;
use crate::settings::{DrawerKind, InitKind, Settings};
use anyhow::{Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

pub trait Drawer {
    fn kind(&self) -> DrawerKind;
    /// The tensor the optimizer moves (f32 leaf that requires grad; saved as `z` in checkpoints).
    fn params(&self) -> &Tensor;
    /// Replaces the parameters (resume, zoom); the shape must stay.
    fn set_params(&mut self, params: Tensor);
    /// The image before the [0, 1] clamp, `[1, 3, H, W]`, differentiable w.r.t. the parameters
    /// (`[1, 4, H, W]` straight RGBA with `--transparent`). The engine clamps it with the
    /// anchors' ClampWithGrad rule.
    fn render(&self) -> Tensor;
    /// The image as saved: `[1, 3, H, W]` (or `[1, 4, H, W]`) in [0, 1], no graph.
    fn image(&self) -> Tensor;
    /// Parameter groups with their own learning rate, as torch's: (length along dim 0, factor of
    /// `--lr`). None: one group.
    fn lr_groups(&self) -> Option<Vec<(i64, f64)>> {
        None
    }
    /// Keeps the parameters in their valid range after an optimizer step.
    fn after_step(&mut self) {}
    /// Parameters that draw `img` (`[1, 3, H, W]` in [0, 1]): the zoom move's re-application.
    fn params_for(&self, img: &Tensor) -> Result<Tensor>;
    /// The drawing as SVG (vector drawers), its colours passed through `map` (the palette).
    fn svg(&self, _map: &dyn Fn([f32; 3]) -> [f32; 3]) -> Result<Option<vector::svg::Svg>> {
        Ok(None)
    }
}

/// Builds the drawer of `settings` with its starting parameters: from `--init-image` or an init
/// kind's picture when there is one, else the drawer's own random start. All draws come from the
/// (seed, 0) stream, so a run is a pure function of its settings.
pub fn build(settings: &Settings, vqgan: Option<Vqgan>, device: Device) -> Result<Box<dyn Drawer>> {
    let (h, w) = (settings.size.height, settings.size.width);
    if settings.drawer == DrawerKind::Vqgan {
        let vq = vqgan.as_ref().context("the vqgan drawer needs a VQGAN")?;
        vqgan::check_size(vq, settings)?;
    }
    let mut rng = super::rng::step_rng(settings.seed, 0);
    tch::manual_seed(rng.random::<i64>() & i64::MAX);
    let start = start_image(settings, &mut rng)?.map(|t| t.to_device(device));
    Ok(match settings.drawer {
        DrawerKind::Vqgan => {
            let vq = vqgan.context("the vqgan drawer needs a VQGAN")?;
            let kind = crate::device::model_kind(
                settings.precision,
                device,
                crate::device::ModelRole::Vqgan,
            );
            Box::new(vqgan::VqganDrawer::new(
                vq, settings, start, &mut rng, kind, device,
            )?)
        }
        DrawerKind::FastPixel => Box::new(fast_pixel::FastPixel::new(
            settings.pixel_size,
            (h, w),
            start,
            &mut rng,
            device,
        )),
        DrawerKind::Pixel => Box::new(pixel::Pixel::new(
            settings.pixel_type,
            settings.pixel_size,
            (h, w),
            start,
            settings.transparent,
            &mut rng,
            device,
        )?),
        DrawerKind::Clipdraw | DrawerKind::LineSketch => Box::new(strokes::StrokeDrawer::new(
            settings, start, &mut rng, device,
        )?),
        DrawerKind::Fft => Box::new(fft::Fft::new(
            fft::FftSettings {
                decay: settings.fft_decay,
                colors: settings.fft_colors,
                contrast: settings.fft_contrast,
            },
            (h, w),
            start,
            &mut rng,
            device,
        )),
    })
}

/// The picture a run starts from, on the CPU in [0, 1]: the init image (resized to cover and
/// cropped), or the init kind's noise; None for a random start.
fn start_image(settings: &Settings, rng: &mut ChaCha8Rng) -> Result<Option<Tensor>> {
    let (h, w) = (settings.size.height, settings.size.width);
    if let Some(path) = settings.init_image_files()?.first() {
        let img = crate::image_io::load_rgb(path)
            .with_context(|| format!("--init-image {}", path.display()))?;
        return Ok(Some(crate::image_io::rgb_to_tensor(
            &crate::image_io::resize_cover(&img, w as u32, h as u32),
        )));
    }
    Ok(match settings.init {
        InitKind::Codes | InitKind::Random => None,
        InitKind::Perlin => Some(super::init::perlin(h, w, rng)),
        InitKind::Gradient => Some(super::init::gradient(h, w, rng)),
        InitKind::Snow => Some(super::init::snow(h, w, rng)),
    })
}

/// `n` uniform draws in [0, 1) from the host RNG (device- and platform-independent starts).
pub(crate) fn uniform(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>()).collect()
}

/// `n` standard normal draws (Box-Muller) from the host RNG.
pub(crate) fn normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

/// A leaf copy of `t` in f32 that requires grad.
pub fn leaf(t: Tensor) -> Tensor {
    t.to_kind(Kind::Float)
        .detach()
        .contiguous()
        .set_requires_grad(true)
}
