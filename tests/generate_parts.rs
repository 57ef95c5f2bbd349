//! The differentiable pieces of the generator loop on hand-made tensors: straight-through
//! gradients, cutouts and augments, losses, and the init images.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use tch::{Device, Kind, Tensor};
use vqclip::generate::augments::randn_seeded;
use vqclip::generate::cutouts::{CutoutConfig, CutoutPlan};
use vqclip::generate::grad::{clamp_grad_mask, replace_grad, straight_through_quantize};
use vqclip::generate::{init, losses};
use vqclip::settings::{Augment, CutMethod, LossKind};

const CPU: Device = Device::Cpu;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn t(values: &[f64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).view(shape).to_kind(Kind::Double)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn scalar(x: &Tensor) -> f64 {
    x.double_value(&[])
}

/// A random image in [0, 1) from a host rng (torch's global generator is shared between tests).
fn image(h: i64, w: i64, seed: u64) -> Tensor {
    let mut r = rng(seed);
    let v: Vec<f32> = (0..3 * h * w).map(|_| r.random::<f32>()).collect();
    Tensor::from_slice(&v).view([1, 3, h, w])
}

fn leaf(x: &Tensor) -> Tensor {
    x.detach().copy().set_requires_grad(true)
}

// ---------------------------------------------------------------- grad.rs

#[test]
fn replace_grad_forwards_one_and_backpropagates_to_the_other() {
    let fwd = leaf(&t(&[1.0, -2.0, 3.5], &[3]));
    let bwd = leaf(&t(&[10.0, 20.0, 30.0], &[3]));
    let y = replace_grad(&fwd, &bwd);
    assert_eq!(max_diff(&y, &fwd), 0.0, "forward value is x_fwd exactly");
    (&y * t(&[2.0, 3.0, -4.0], &[3]))
        .sum(Kind::Double)
        .backward();
    assert_eq!(max_diff(&bwd.grad(), &t(&[2.0, 3.0, -4.0], &[3])), 0.0);
    assert!(!fwd.grad().defined() || scalar(&fwd.grad().abs().sum(Kind::Double)) == 0.0);
}

#[test]
fn replace_grad_sums_a_broadcast_gradient() {
    let fwd = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let bwd = leaf(&t(&[0.0, 0.0, 0.0], &[1, 3]));
    let y = replace_grad(&fwd, &bwd);
    assert_eq!(y.size(), [2, 3]);
    assert_eq!(max_diff(&y, &fwd), 0.0);
    (&y * t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]))
        .sum(Kind::Double)
        .backward();
    assert_eq!(max_diff(&bwd.grad(), &t(&[5.0, 7.0, 9.0], &[1, 3])), 0.0);
}

#[test]
fn clamp_grad_mask_passes_only_gradients_that_lead_back_into_range() {
    let x = t(&[-0.5, -0.5, 0.5, 0.5, 1.5, 1.5, 0.0, 1.0], &[8]);
    let g = t(&[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 2.0, -2.0], &[8]);
    let masked = clamp_grad_mask(&x, &g, 0.0, 1.0);
    // below the range a descent step with g > 0 goes further down: blocked; above with g < 0 too.
    let want = t(&[0.0, -1.0, 1.0, -1.0, 1.0, 0.0, 2.0, -2.0], &[8]);
    assert_eq!(max_diff(&masked, &want), 0.0);
}

#[test]
fn straight_through_quantize_picks_nearest_codes_and_passes_the_gradient() {
    let codebook = t(&[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[4, 2]).to_kind(Kind::Float);
    // three tokens (0.1, 0.2), (0.9, 0.1), (0.6, 0.7): z is [1, e=2, h=1, w=3]
    let z = leaf(&t(&[0.1, 0.9, 0.6, 0.2, 0.1, 0.7], &[1, 2, 1, 3]).to_kind(Kind::Float));
    let (z_q, idx) = straight_through_quantize(&z, &codebook);
    assert_eq!(Vec::<i64>::try_from(&idx).unwrap(), vec![0, 1, 3]);
    assert_eq!(z_q.size(), [1, 2, 1, 3]);
    let want = t(&[0.0, 1.0, 1.0, 0.0, 0.0, 1.0], &[1, 2, 1, 3]);
    assert_eq!(max_diff(&z_q, &want), 0.0, "forward is exactly the codes");
    let w = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 1, 3]).to_kind(Kind::Float);
    (&z_q * &w).sum(Kind::Float).backward();
    assert_eq!(
        max_diff(&z.grad(), &w),
        0.0,
        "gradient passes to z unchanged"
    );
}

#[test]
fn straight_through_quantize_matches_brute_force_argmin() {
    let mut r = rng(3);
    let zv: Vec<f32> = (0..4 * 3 * 5)
        .map(|_| r.random::<f32>() * 2.0 - 1.0)
        .collect();
    let cv: Vec<f32> = (0..7 * 4).map(|_| r.random::<f32>() * 2.0 - 1.0).collect();
    let z = Tensor::from_slice(&zv).view([1, 4, 3, 5]);
    let cb = Tensor::from_slice(&cv).view([7, 4]);
    let (z_q, idx) = straight_through_quantize(&z, &cb);
    let idx = Vec::<i64>::try_from(&idx).unwrap();
    for y in 0..3 {
        for x in 0..5 {
            let p: Vec<f32> = (0..4).map(|c| zv[(c * 15 + y * 5 + x) as usize]).collect();
            let dist = |k: usize| (0..4).map(|c| (p[c] - cv[k * 4 + c]).powi(2)).sum::<f32>();
            let best = (0..7).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
            assert_eq!(idx[(y * 5 + x) as usize], best as i64);
            let got = z_q.select(3, x).select(2, y).select(0, 0);
            assert_eq!(max_diff(&got, &cb.select(0, best as i64)), 0.0);
        }
    }
}

// ---------------------------------------------------------------- cutouts.rs + augments.rs

fn config(method: CutMethod, count: i64, augments: &[Augment], size: i64) -> CutoutConfig {
    CutoutConfig {
        method,
        count,
        cut_pow: 1.0,
        augments: augments.to_vec(),
        size,
    }
}

fn cut(cfg: &CutoutConfig, img: &Tensor, seed: u64) -> Tensor {
    let (h, w) = (img.size()[2], img.size()[3]);
    let plan = CutoutPlan::sample(cfg, (h, w), &mut rng(seed), CPU);
    plan.try_apply(img).unwrap()
}

#[test]
fn each_augment_alone_keeps_the_shape_and_passes_gradients() {
    for method in [CutMethod::Pooled, CutMethod::Original] {
        for &aug in Augment::ALL {
            let cfg = config(method, 6, &[aug], 16);
            let img = leaf(&image(40, 48, 1));
            let out = cut(&cfg, &img, 7);
            assert_eq!(out.size(), [6, 3, 16, 16], "{method} {aug}");
            assert_eq!(out.kind(), Kind::Float);
            (&out * image(16, 16, 2)).sum(Kind::Float).backward();
            let g = img.grad();
            let total = scalar(&g.abs().sum(Kind::Double));
            assert!(
                total.is_finite() && total > 0.0,
                "{method} {aug}: gradient sum {total}"
            );
            assert!(
                scalar(&g.isfinite().all()) == 1.0,
                "{method} {aug}: non-finite gradient"
            );
        }
    }
}

#[test]
fn pooled_without_augments_on_an_s_by_s_image_is_the_image() {
    let img = image(16, 16, 4);
    let out = cut(&config(CutMethod::Pooled, 5, &[], 16), &img, 1);
    assert_eq!(out.size(), [5, 3, 16, 16]);
    assert_eq!(max_diff(&out, &img.expand([5, 3, 16, 16], false)), 0.0);
}

#[test]
fn original_on_an_s_by_s_image_crops_the_whole_image() {
    let img = image(16, 16, 4);
    let cfg = config(CutMethod::Original, 3, &[], 16);
    let plan = CutoutPlan::sample(&cfg, (16, 16), &mut rng(2), CPU);
    assert!(
        plan.crops()
            .iter()
            .all(|c| c.size == 16 && c.x == 0 && c.y == 0)
    );
    assert_eq!(
        max_diff(&plan.apply(&img), &img.expand([3, 3, 16, 16], false)),
        0.0
    );
}

#[test]
fn original_crops_stay_within_min_and_max() {
    let (h, w, s) = (40, 56, 16);
    for cut_pow in [0.5, 1.0, 3.0] {
        let cfg = CutoutConfig {
            cut_pow,
            ..config(CutMethod::Original, 64, &[], s)
        };
        let plan = CutoutPlan::sample(&cfg, (h, w), &mut rng(9), CPU);
        let sizes: Vec<i64> = plan.crops().iter().map(|c| c.size).collect();
        assert_eq!(sizes.len(), 64);
        for c in plan.crops() {
            assert!(
                (s..=h).contains(&c.size),
                "size {} outside [{s}, {h}]",
                c.size
            );
            assert!(
                c.x >= 0 && c.x + c.size <= w && c.y >= 0 && c.y + c.size <= h,
                "{c:?}"
            );
        }
        assert!(
            sizes.iter().min() != sizes.iter().max(),
            "sizes vary: {sizes:?}"
        );
        // a constant image stays constant through crop + antialiased resize
        let out = plan.apply(&Tensor::full([1, 3, h, w], 0.25, (Kind::Float, CPU)));
        assert!(max_diff(&out, &Tensor::full([64, 3, s, s], 0.25, (Kind::Float, CPU))) < 1e-6);
    }
    // an image smaller than s is upsampled
    let cfg = config(CutMethod::Original, 4, &[], 16);
    let plan = CutoutPlan::sample(&cfg, (10, 12), &mut rng(1), CPU);
    assert!(plan.crops().iter().all(|c| c.size == 10));
    assert_eq!(plan.apply(&image(10, 12, 1)).size(), [4, 3, 16, 16]);
}

#[test]
fn flip_gives_the_image_or_its_mirror() {
    let img = image(16, 16, 5);
    let out = cut(
        &config(CutMethod::Pooled, 16, &[Augment::Flip], 16),
        &img,
        3,
    );
    let mirror = img.flip([3]);
    let (mut plain, mut flipped) = (0, 0);
    for i in 0..16 {
        let o = out.select(0, i).unsqueeze(0);
        let (d0, d1) = (max_diff(&o, &img), max_diff(&o, &mirror));
        assert!(d0.min(d1) < 1e-5, "cutout {i}: {d0} {d1}");
        if d0 < 1e-5 { plain += 1 } else { flipped += 1 }
    }
    assert!(plain > 0 && flipped > 0, "{plain} plain, {flipped} flipped");
}

#[test]
fn the_same_plan_uses_the_same_geometry_on_two_images() {
    // Every augment but noise is linear in the image, so a plan shared between two images
    // must give out(a·img) = a·out(img); independent draws would not.
    let augs = [
        Augment::Flip,
        Augment::Affine,
        Augment::Perspective,
        Augment::Jitter,
        Augment::Erasing,
    ];
    for method in [CutMethod::Pooled, CutMethod::Original] {
        let cfg = config(method, 8, &augs, 16);
        let plan = CutoutPlan::sample(&cfg, (24, 32), &mut rng(11), CPU);
        let img = image(24, 32, 6);
        let a = plan.apply(&img);
        let b = plan.apply(&(&img * 0.5));
        assert!(max_diff(&(a * 0.5), &b) < 1e-6, "{method}");
        // and with noise the same plan applied twice is identical
        let cfg = config(method, 8, Augment::ALL, 16);
        let plan = CutoutPlan::sample(&cfg, (24, 32), &mut rng(11), CPU);
        assert_eq!(max_diff(&plan.apply(&img), &plan.apply(&img)), 0.0);
    }
}

#[test]
fn the_same_seed_gives_the_same_cutouts_and_another_seed_others() {
    let img = image(24, 32, 8);
    for method in [CutMethod::Pooled, CutMethod::Original] {
        let cfg = config(method, 8, Augment::ALL, 16);
        let a = cut(&cfg, &img, 100);
        let b = cut(&cfg, &img, 100);
        let c = cut(&cfg, &img, 101);
        assert_eq!(max_diff(&a, &b), 0.0, "{method}");
        assert!(max_diff(&a, &c) > 1e-3, "{method}");
    }
}

#[test]
fn jitter_keeps_greys_grey_and_erasing_a_flat_image_changes_nothing() {
    let grey = Tensor::full([1, 3, 16, 16], 0.4, (Kind::Float, CPU));
    let out = cut(
        &config(CutMethod::Pooled, 16, &[Augment::Jitter], 16),
        &grey,
        2,
    );
    let spread = out.amax(&[1i64][..], false) - out.amin(&[1i64][..], false);
    assert!(
        scalar(&spread.max()) < 1e-5,
        "channels differ on a grey input"
    );
    assert!(
        max_diff(&out, &grey) > 1e-3,
        "brightness/contrast moved the level"
    );
    let out = cut(
        &config(CutMethod::Pooled, 16, &[Augment::Erasing], 16),
        &grey,
        2,
    );
    assert!(max_diff(&out, &grey) < 1e-6);
    // on a varied image some cutouts get a box of their mean colour
    let img = image(16, 16, 3);
    let out = cut(
        &config(CutMethod::Pooled, 16, &[Augment::Erasing], 16),
        &img,
        2,
    );
    let changed = (out - &img)
        .abs()
        .gt(1e-6)
        .to_kind(Kind::Double)
        .mean(Kind::Double);
    let frac = scalar(&changed);
    assert!(frac > 0.02 && frac < 0.45, "fraction erased {frac}");
}

#[test]
fn noise_is_small_and_seeded() {
    let img = image(16, 16, 3);
    let out = cut(
        &config(CutMethod::Pooled, 32, &[Augment::Noise], 16),
        &img,
        4,
    );
    let std = (out - &img).std_dim(&[1i64, 2, 3][..], true, false);
    let (lo, hi) = (scalar(&std.min()), scalar(&std.max()));
    assert!(
        lo >= 0.0 && hi < 0.11 && hi > 0.03,
        "noise std in [{lo}, {hi}]"
    );
    let a = randn_seeded(&[4, 5], 42, (Kind::Float, CPU));
    let b = randn_seeded(&[4, 5], 42, (Kind::Float, CPU));
    assert_eq!(max_diff(&a, &b), 0.0);
}

#[test]
fn perspective_pads_with_zeros_and_warps_keep_the_range() {
    let ones = Tensor::ones([1, 3, 16, 16], (Kind::Float, CPU));
    let out = cut(
        &config(CutMethod::Pooled, 16, &[Augment::Perspective], 16),
        &ones,
        6,
    );
    assert!(scalar(&out.min()) >= 0.0 && scalar(&out.max()) <= 1.0 + 1e-6);
    let zeros_per_cutout =
        out.eq(0.0)
            .to_kind(Kind::Double)
            .sum_dim_intlist(&[1i64, 2, 3][..], false, None);
    let with_padding = scalar(
        &zeros_per_cutout
            .gt(0.0)
            .to_kind(Kind::Double)
            .sum(Kind::Double),
    );
    assert!(
        with_padding >= 4.0,
        "{with_padding} of 16 cutouts show padding"
    );
}

#[test]
fn other_float_kinds_come_back_in_their_kind() {
    let img = image(20, 24, 1).to_kind(Kind::Double);
    let out = cut(&config(CutMethod::Original, 4, Augment::ALL, 16), &img, 1);
    assert_eq!(out.kind(), Kind::Double);
    let cfg = config(CutMethod::Pooled, 4, &[], 16);
    let plan = CutoutPlan::sample(&cfg, (20, 24), &mut rng(1), CPU);
    assert!(
        plan.try_apply(&image(24, 20, 1)).is_err(),
        "wrong size is an error"
    );
}

// ---------------------------------------------------------------- losses.rs

#[test]
fn spherical_distance_is_half_the_squared_angle() {
    let a = t(&[1.0, 0.0, 0.0, 2.0, 1.0, 1.0], &[3, 2]);
    let b = t(&[3.0, 0.0, -1.0, 0.0], &[2, 2]);
    let d = losses::spherical_distance(&a, &b);
    assert_eq!(d.size(), [3, 2]);
    let want = t(
        &[
            0.0,
            PI * PI / 2.0,
            PI * PI / 8.0,
            PI * PI / 8.0,
            PI * PI / 32.0,
            9.0 * PI * PI / 32.0,
        ],
        &[3, 2],
    );
    assert!(max_diff(&d, &want) < 1e-6, "{d}");
}

#[test]
fn prompt_loss_weight_sign_and_stop() {
    let target = t(&[1.0, 0.0], &[1, 2]);
    let emb = t(&[1.0, 1.0, 0.0, 1.0], &[2, 2]); // angles π/4 and π/2
    let dists = [PI * PI / 32.0, PI * PI / 8.0];
    let grad_of = |w: f64, stop: f64| {
        let e = leaf(&emb);
        let l = losses::prompt_loss(&e, &target, w, stop);
        l.backward();
        (scalar(&l), e.grad())
    };
    let mean = (dists[0] + dists[1]) / 2.0;
    let (v, g_pos) = grad_of(2.0, f64::NEG_INFINITY);
    assert!((v - 2.0 * mean).abs() < 1e-9);
    let (v, g_neg) = grad_of(-2.0, f64::NEG_INFINITY);
    assert!(
        (v + 2.0 * mean).abs() < 1e-9,
        "forward of a negative weight is w·mean(d)"
    );
    assert!(
        max_diff(&g_neg, &(-&g_pos)) < 1e-12,
        "a negative weight pushes away"
    );
    assert!(scalar(&g_pos.abs().sum(Kind::Double)) > 0.0);
    // stop between the two distances: forward unchanged, gradient only for the far row
    let (v, g_stop) = grad_of(1.0, 0.5);
    assert!((v - mean).abs() < 1e-9);
    assert_eq!(scalar(&g_stop.select(0, 0).abs().sum(Kind::Double)), 0.0);
    assert!(max_diff(&g_stop.select(0, 1), &(g_pos.select(0, 1) / 2.0)) < 1e-12);
    // a negative weight with stop −0.5 only pushes rows still closer than 0.5
    let (v, g) = grad_of(-1.0, -0.5);
    assert!((v + mean).abs() < 1e-9);
    assert!(scalar(&g.select(0, 0).abs().sum(Kind::Double)) > 0.0);
    assert_eq!(scalar(&g.select(0, 1).abs().sum(Kind::Double)), 0.0);
    // the gradient matches a finite difference
    let e = leaf(&emb);
    losses::prompt_loss(&e, &target, 1.0, f64::NEG_INFINITY).backward();
    let h = 1e-6;
    let bump = t(&[h, 0.0, 0.0, 0.0], &[2, 2]);
    let fd = (scalar(&losses::prompt_loss(
        &(&emb + &bump),
        &target,
        1.0,
        f64::NEG_INFINITY,
    )) - scalar(&losses::prompt_loss(
        &(&emb - &bump),
        &target,
        1.0,
        f64::NEG_INFINITY,
    ))) / (2.0 * h);
    assert!((fd - e.grad().double_value(&[0, 0])).abs() < 1e-6);
}

#[test]
fn image_losses_on_hand_made_images() {
    // tv: channel 0 = [[0, 1], [2, 3]]: Δx² = 1 + 1, Δy² = 4 + 4, over 12 elements
    let mut v = vec![0.0; 12];
    v[..4].copy_from_slice(&[0.0, 1.0, 2.0, 3.0]);
    let img = t(&v, &[1, 3, 2, 2]);
    assert!((scalar(&losses::tv_loss(&img)) - 10.0 / 12.0).abs() < 1e-12);
    // symmetry: [1, 3] vs its mirror [3, 1]
    let row = t(&[1.0, 3.0], &[1, 1, 1, 2]);
    assert!((scalar(&losses::symmetry_loss(&row)) - 4.0).abs() < 1e-12);
    // smoothness: rows [0, 1, 3]: torch.gradient along x = [1, 1.5, 2], along y = 0
    let ramp = t(&[0.0, 1.0, 3.0, 0.0, 1.0, 3.0], &[1, 1, 2, 3]);
    assert!((scalar(&losses::smoothness_loss(&ramp)) - 1.5).abs() < 1e-6);
    // saturation: a red and a green pixel: σ_rg = √2, σ_yb = 0, μ_rg = 0, μ_yb = 0.5
    let rg = t(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[1, 3, 1, 2]);
    let want = -(2f64.sqrt() + 0.3 * 0.5) / 10.0;
    assert!((scalar(&losses::saturation_loss(&rg)) - want).abs() < 1e-7);
    // init: mse([1, 2], [0, 0]) / 2
    let z = t(&[1.0, 2.0], &[2]);
    assert!((scalar(&losses::init_loss(&z, &z.zeros_like())) - 1.25).abs() < 1e-12);
}

#[test]
fn image_losses_have_finite_gradients_on_flat_images() {
    let flat = Tensor::full([1, 3, 8, 8], 0.5, (Kind::Float, CPU));
    for kind in [
        LossKind::Tv,
        LossKind::Saturation,
        LossKind::Symmetry,
        LossKind::Smoothness,
    ] {
        let x = leaf(&flat);
        let l = match kind {
            LossKind::Tv => losses::tv_loss(&x),
            LossKind::Saturation => losses::saturation_loss(&x),
            LossKind::Symmetry => losses::symmetry_loss(&x),
            _ => losses::smoothness_loss(&x),
        };
        assert_eq!(l.dim(), 0, "{kind}");
        l.backward();
        assert!(scalar(&x.grad().isfinite().all()) == 1.0, "{kind}");
        assert!(scalar(&l).abs() < 1e-3, "{kind}: {}", scalar(&l));
    }
    // a positive weight on saturation raises colourfulness: descent moves R and G apart
    let x = leaf(&image(8, 8, 1));
    losses::saturation_loss(&x).backward();
    let before = scalar(&losses::saturation_loss(&x));
    let after = scalar(&losses::saturation_loss(&(x.detach() - x.grad() * 0.5)));
    assert!(after < before, "{after} !< {before}");
}

// ---------------------------------------------------------------- init.rs

#[test]
fn init_images_have_the_shape_range_and_seed_behaviour() {
    type Gen = fn(i64, i64, &mut ChaCha8Rng) -> Tensor;
    let gens: [(&str, Gen); 3] = [
        ("perlin", init::perlin),
        ("gradient", init::gradient),
        ("snow", init::snow),
    ];
    for (name, f) in gens {
        for (h, w) in [(48, 80), (300, 20)] {
            let a = f(h, w, &mut rng(1));
            assert_eq!(a.size(), [1, 3, h, w], "{name}");
            assert_eq!(a.kind(), Kind::Float);
            assert!(scalar(&a.min()) >= 0.0 && scalar(&a.max()) <= 1.0, "{name}");
            assert!(scalar(&a.std(true)) > 0.01, "{name} is not flat");
            // 8-bit values
            assert!(
                max_diff(&(&a * 255.0).round(), &(&a * 255.0)) < 1e-4,
                "{name}"
            );
            assert_eq!(
                max_diff(&a, &f(h, w, &mut rng(1))),
                0.0,
                "{name}: same seed"
            );
            assert!(
                max_diff(&a, &f(h, w, &mut rng(2))) > 0.0,
                "{name}: other seed"
            );
        }
    }
    // perlin spans the range after min-max + contrast; gradient ramps R along x, G along y
    let p = init::perlin(64, 64, &mut rng(3));
    assert!(scalar(&p.min()) < 0.01 && scalar(&p.max()) > 0.99);
    let g = init::gradient(10, 12, &mut rng(3));
    assert_eq!(g.double_value(&[0, 0, 0, 0]), 0.0);
    assert!(g.double_value(&[0, 0, 0, 11]) > g.double_value(&[0, 0, 0, 0]));
    assert_eq!(g.double_value(&[0, 0, 0, 7]), g.double_value(&[0, 0, 9, 7]));
    assert!(g.double_value(&[0, 1, 9, 0]) > g.double_value(&[0, 1, 0, 0]));
    assert!(scalar(&init::snow(20, 20, &mut rng(3)).max()) <= 254.0 / 255.0 + 1e-7);
}

#[test]
fn random_codes_are_uniform_indices() {
    let c = init::random_codes(3, 5, 16, &mut rng(1));
    assert_eq!(c.size(), [15]);
    assert_eq!(c.kind(), Kind::Int64);
    let v = Vec::<i64>::try_from(&c).unwrap();
    assert!(v.iter().all(|&i| (0..16).contains(&i)));
    assert_eq!(
        v,
        Vec::<i64>::try_from(&init::random_codes(3, 5, 16, &mut rng(1))).unwrap()
    );
    assert_ne!(
        v,
        Vec::<i64>::try_from(&init::random_codes(3, 5, 16, &mut rng(2))).unwrap()
    );
}

/// `--cut-method pixray` on a 2:1 image whose left half is red and right half blue: 60 % of the
/// cutouts are zoomed views (no grey), 40 % show the whole width (both colours) with the fill grey
/// above and below; shapes, gradients and the shared geometry hold as for the other methods.
#[test]
fn pixray_cutouts_zoom_and_wide_views() {
    let (h, w, s, n) = (32, 64, 24, 10);
    let red = Tensor::from_slice(&[1.0f32, 0.0, 0.0]).view([1, 3, 1, 1]);
    let blue = Tensor::from_slice(&[0.0f32, 0.0, 1.0]).view([1, 3, 1, 1]);
    let img = Tensor::cat(
        &[
            red.expand([1, 3, h, w / 2], false),
            blue.expand([1, 3, h, w / 2], false),
        ],
        3,
    );
    let cfg = config(CutMethod::Pixray, n, &[], s);
    let plan = CutoutPlan::sample(&cfg, (h, w), &mut rng(3), CPU);
    let out = plan.try_apply(&img).unwrap();
    assert_eq!(out.size(), [n, 3, s, s]);
    // Compare colours without the noise: a pixel is "red", "blue" or "grey" by its channels.
    let n_zoom = (0.6 * n as f64) as i64;
    for i in 0..n {
        let c = out.get(i);
        let row = |y: i64| c.narrow(1, y, 1).mean_dim(&[1i64, 2][..], false, None);
        let mid = row(s / 2);
        let top = row(0);
        let (r, g, b) = (
            scalar(&mid.get(0)),
            scalar(&mid.get(1)),
            scalar(&mid.get(2)),
        );
        if i < n_zoom {
            // zoom: only image colours on the middle row, so green (only in the grey) stays ~0
            assert!(
                g.abs() < 0.15,
                "zoom cutout {i}: green {g} in the middle row"
            );
        } else {
            // wide: both halves visible on the middle row, grey fill on the top row
            assert!(
                r > 0.2 && b > 0.2,
                "wide cutout {i}: middle row r {r} b {b}"
            );
            let (tr, tg, tb) = (
                scalar(&top.get(0)),
                scalar(&top.get(1)),
                scalar(&top.get(2)),
            );
            assert!(
                (tr - tg).abs() < 0.15 && (tb - tg).abs() < 0.15,
                "wide cutout {i}: top row not grey ({tr}, {tg}, {tb})"
            );
        }
    }
    // Gradients reach the image.
    let leafed = leaf(&image(h, w, 1));
    let cuts = plan.try_apply(&leafed).unwrap();
    (&cuts * image(s, s, 2)).sum(Kind::Float).backward();
    assert!(scalar(&leafed.grad().abs().sum(Kind::Double)) > 0.0);
}
