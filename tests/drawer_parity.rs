//! fast_pixel and fft against the anchors' code on the same tensors
//! (tests/fixtures/drawers_ref.safetensors, written by tests/fixtures/make_drawer_fixtures.py with
//! Pixray's FastPixelDrawer and aphantasia's fft_image): renders, inits and gradients, then four
//! steps of the whole loop (tiny CLIP, pooled cutouts, no augments) against a torch reference loop.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, device, fixture, tol};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};
use vqclip::generate::checkpoint::State;
use vqclip::generate::drawers::fast_pixel::{FastPixel, downsample, upsample};
use vqclip::generate::drawers::fft::{Fft, FftSettings};
use vqclip::generate::drawers::{Drawer, leaf};
use vqclip::generate::engine::{Generator, Models};
use vqclip::generate::grad::clamp_grad_mask;
use vqclip::models::clip::Clip;
use vqclip::settings::PartialSettings;

fn reference() -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture("drawers_ref.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Double);
    (cpu(a) - cpu(b)).abs().max().double_value(&[])
}

/// The gradient of `(render(p) * grad_out).sum()` w.r.t. `p`, with the engine's ClampWithGrad
/// mask when `clamp` (the two-stage backward of the loop).
fn grad_of(drawer: &dyn Drawer, grad_out: &Tensor, clamp: bool) -> Tensor {
    let x = drawer.render();
    let g = if clamp {
        clamp_grad_mask(&x.detach(), grad_out, 0.0, 1.0)
    } else {
        grad_out.shallow_clone()
    };
    let objective = (&x * &g).sum(Kind::Float);
    Tensor::run_backward(&[&objective], &[drawer.params()], false, false)
        .pop()
        .unwrap()
}

fn rng() -> rand_chacha::ChaCha8Rng {
    rand::SeedableRng::seed_from_u64(1)
}

#[test]
fn fast_pixel_render_init_and_gradient_equal_pixrays() {
    let r = reference();
    let mut fp = FastPixel::new((12, 8), (32, 48), None, &mut rng(), Device::Cpu);
    fp.set_params(leaf(r["fp_cells"].shallow_clone()));
    // pixray's synth: clamp_with_grad(interpolate(z, nearest)) - forward equal to the last bit
    let d = max_diff(&fp.render().clamp(0.0, 1.0), &r["fp_render"]);
    assert_eq!(d, 0.0, "render differs by {d}");
    assert_eq!(max_diff(&fp.image(), &r["fp_render"]), 0.0);
    let d = max_diff(&grad_of(&fp, &r["fp_grad_out"], true), &r["fp_grad_cells"]);
    assert!(d < 1e-5, "gradient differs by {d}");
    // a non-integer ratio
    let d = max_diff(
        &upsample(&r["fp_cells_odd"], (32, 48)).clamp(0.0, 1.0),
        &r["fp_render_odd"],
    );
    assert_eq!(d, 0.0, "odd render differs by {d}");
    // get_z_from_tensor: bilinear downsampling, also the drawer's start from an image
    for (name, rows_cols) in [("fp_init", (8, 12)), ("fp_init_odd", (7, 10))] {
        let d = max_diff(&downsample(&r["fp_image"], rows_cols), &r[name]);
        assert!(d < 1e-6, "{name} differs by {d}");
    }
    let from_image = FastPixel::new(
        (12, 8),
        (32, 48),
        Some(r["fp_image"].shallow_clone()),
        &mut rng(),
        Device::Cpu,
    );
    assert!(max_diff(from_image.params(), &r["fp_init"]) < 1e-6);
}

fn fft(decay: f64) -> Fft {
    Fft::new(
        FftSettings {
            decay,
            colors: 1.5,
            contrast: 0.9,
        },
        (32, 48),
        None,
        &mut rng(),
        Device::Cpu,
    )
}

#[test]
fn fft_render_and_gradient_equal_aphantasias() {
    let r = reference();
    for (decay, want) in [(1.5, "fft_render"), (1.0, "fft_render_d1")] {
        let mut f = fft(decay);
        f.set_params(leaf(r["fft_params"].shallow_clone()));
        let d = max_diff(&f.render(), &r[want]);
        eprintln!("{want}: largest difference {d:.2e}");
        assert!(d < 1e-5, "{want} differs by {d}");
    }
    let mut f = fft(1.5);
    f.set_params(leaf(r["fft_params"].shallow_clone()));
    let g = grad_of(&f, &r["fft_grad_out"], false);
    let scale = r["fft_grad_params"].abs().max().double_value(&[]);
    let d = max_diff(&g, &r["fft_grad_params"]);
    assert!(
        d < 1e-5 * scale.max(1.0),
        "gradient differs by {d} (max {scale})"
    );
}

#[test]
fn fft_takes_an_image_back_to_its_spectrum() {
    // An image the fft drawer drew comes back exactly (its logit contrast is the drawer's), and
    // the spectrum has the random start's RMS, so --lr means the same for both starts.
    let r = reference();
    let mut f = fft(1.5);
    f.set_params(leaf(r["fft_params"].shallow_clone()));
    let img = f.image();
    let back = f.params_for(&img).unwrap();
    let rms = back.square().mean(Kind::Float).sqrt().double_value(&[]);
    assert!((rms - 0.01).abs() < 1e-6, "rms {rms}");
    f.set_params(leaf(back));
    let d = max_diff(&f.image(), &img);
    assert!(d < 1e-4, "round trip differs by {d}");
}

/// Four loop steps of `drawer` from the reference's start, with the reference loop's settings, on
/// the test device (`VQCLIP_TEST_DEVICE`).
fn loop_losses(toml: &str, start: &Tensor, amsgrad: bool) -> (Vec<f64>, Tensor) {
    let start = &start.to_device(device());
    let partial = PartialSettings::from_toml(
        &format!(
            "{toml}\nprompts = [\"a red square\"]\nsize = \"48x32\"\ncutouts = 4\naugments = \"none\"\n\
             cut-method = \"pooled\"\nclip = [\"{CLIP}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\n\
             steps = 4\nseed = 1\n"
        ),
        std::path::Path::new("test"),
    )
    .unwrap();
    let settings = partial.resolve().unwrap();
    let models = Models {
        vqgan: None,
        vgg: None,
        resmem: None,
        head: None,
        clips: vec![Clip::load(std::path::Path::new(CLIP), device()).unwrap()],
        weights: Vec::new(),
    };
    let mut g = Generator::new(settings, models, device()).unwrap();
    let meta = g.state().meta;
    g.restore(State {
        meta,
        z: start.shallow_clone(),
        z0: start.copy(),
        m: start.zeros_like(),
        v: start.zeros_like(),
        vmax: amsgrad.then(|| start.zeros_like()),
        frames: Vec::new(),
    })
    .unwrap();
    for _ in 0..4 {
        g.step().unwrap();
    }
    let losses = g.flush().unwrap().iter().map(|r| r.loss).collect();
    (losses, g.params().detach().copy())
}

fn assert_close(what: &str, got: &[f64], want: &Tensor) {
    let want: Vec<f64> = Vec::try_from(want.to_kind(Kind::Double)).unwrap();
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: largest difference to the reference loop {worst:.2e}");
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() < tol(1e-4, 1e-3),
            "{what} step {}: {a} vs {b}",
            i + 1
        );
    }
    // the loop moved: the reference losses are not all equal
    assert!(want.windows(2).any(|w| w[0] != w[1]), "{want:?}");
}

#[test]
fn fast_pixel_loop_matches_the_reference_loop() {
    let r = reference();
    let (losses, params) = loop_losses(
        "drawer = \"fast_pixel\"\npixel-size = \"12x8\"",
        &r["fp_loop_init"],
        false,
    );
    assert_close("fast_pixel loss", &losses, &r["fp_loop_losses"]);
    let d = max_diff(&params, &r["fp_loop_final"]);
    eprintln!("fast_pixel cells after 4 steps: largest difference {d:.2e}");
    assert!(d < tol(1e-4, 1e-3), "cells after 4 steps differ by {d}");
}

#[test]
fn fft_loop_matches_the_reference_loop() {
    let r = reference();
    let (losses, params) = loop_losses("drawer = \"fft\"", &r["fft_loop_init"], true);
    assert_close("fft loss", &losses, &r["fft_loop_losses"]);
    let d = max_diff(&params, &r["fft_loop_final"]);
    eprintln!("fft spectrum after 4 steps: largest difference {d:.2e}");
    assert!(d < tol(1e-4, 1e-3), "spectrum after 4 steps differs by {d}");
}
