//! pixray's smoothness (with its types and Gaussian blur) and edge losses against their code,
//! transcribed in tests/fixtures/make_loss_fixtures.py: values and image gradients on a seeded
//! random 32x32 picture (tests/fixtures/losses_ref.safetensors), through the run's own settings.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use std::path::Path;
use tch::{Kind, Tensor};
use vqclip::generate::extra_losses::ExtraLosses;
use vqclip::generate::losses::{self, EdgeRegion};
use vqclip::settings::{LossKind, PartialSettings, Settings};

fn reference() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(common::fixture("losses_ref.safetensors")).unwrap()
}

fn get(r: &[(String, Tensor)], name: &str) -> Tensor {
    r.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
        .shallow_clone()
}

fn settings(extra: &str) -> Settings {
    let toml = format!(
        "drawer = \"fast_pixel\"\nsize = \"32x32\"\nclip = [\"{}\"]\nprompts = [\"x\"]\n{extra}\n",
        common::CLIP
    );
    PartialSettings::from_toml(&toml, Path::new("t.toml"))
        .unwrap()
        .resolve()
        .unwrap()
}

/// The value and gradient of `f` at the fixture's picture against the reference's `name`,
/// relative to the reference's size; returns the worse of the two.
fn compare(r: &[(String, Tensor)], name: &str, f: &dyn Fn(&Tensor) -> Tensor) -> f64 {
    let x = get(r, "img").set_requires_grad(true);
    let v = f(&x);
    let g = Tensor::run_backward(&[&v], &[&x], false, false).remove(0);
    let want = get(r, name).double_value(&[0]);
    let want_g = get(r, &format!("{name}_grad"));
    let dv = (v.double_value(&[]) - want).abs() / want.abs();
    let scale = want_g.abs().max().double_value(&[]);
    let dg = (g - &want_g).abs().max().double_value(&[]) / scale;
    eprintln!(
        "losses: {name}: value {want:.6}, relative differences value {dv:.1e}, gradient {dg:.1e}"
    );
    assert!(dv < 1e-5 && dg < 1e-5, "{name}: {dv} {dg}");
    dv.max(dg)
}

#[test]
fn smoothness_and_edge_equal_pixrays_code() {
    let r = reference();
    let mut worst = 0.0f64;
    let through_settings = [
        (
            "smooth_default",
            LossKind::Smoothness,
            "loss = [\"smoothness\"]",
        ),
        (
            "smooth_clipped",
            LossKind::Smoothness,
            "loss = [\"smoothness\"]\nsmoothness-type = \"clipped\"",
        ),
        (
            "smooth_log",
            LossKind::Smoothness,
            "loss = [\"smoothness\"]\nsmoothness-type = \"log\"",
        ),
        (
            "smooth_k5",
            LossKind::Smoothness,
            "loss = [\"smoothness\"]\nsmoothness-gaussian-kernel = 5",
        ),
        (
            "smooth_log_k3_s2",
            LossKind::Smoothness,
            "loss = [\"smoothness\"]\nsmoothness-type = \"log\"\nsmoothness-gaussian-kernel = 3\nsmoothness-gaussian-std = 2.0",
        ),
        ("edge_default", LossKind::Edge, "loss = [\"edge\"]"),
        (
            "edge_margins",
            LossKind::Edge,
            "loss = [\"edge\"]\nedge-margins = \"10,0,20,5\"\nedge-color = \"(51+102+153)\"\nglobal-color-weight = 0.0",
        ),
        (
            "edge_thick",
            LossKind::Edge,
            "loss = [\"edge\"]\nedge-thickness = 25.0\nedge-color-weight = 0.5",
        ),
    ];
    for (name, kind, toml) in through_settings {
        let extra = ExtraLosses::new(&settings(toml), tch::Device::Cpu, None).unwrap();
        worst = worst.max(compare(&r, name, &|x| extra.value(kind, x)));
    }
    // an image target and a mask, given as the fixture's tensors (files would be quantized)
    let other = get(&r, "in_edge_image");
    let bands = EdgeRegion::Bands([3, 3, 3, 3]); // 10 % of 32, truncated
    worst = worst.max(compare(&r, "edge_image", &|x| {
        losses::edge_loss(x, &other, &bands, 0.05, 0.1)
    }));
    let white = Tensor::ones([1, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
    let mask = EdgeRegion::Mask(get(&r, "in_edge_mask"));
    worst = worst.max(compare(&r, "edge_mask", &|x| {
        losses::edge_loss(x, &white, &mask, 0.05, 0.1)
    }));
    eprintln!("losses: largest relative difference {worst:.1e}");
}

/// `name:weight:stop`: below the stop the term is logged but has no gradient.
#[test]
fn a_loss_stop_ends_its_push() {
    let img = Tensor::rand([1, 3, 16, 16], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let v = losses::tv_loss(&img);
    let value = v.double_value(&[]);
    for (stop, pushes) in [
        (None, true),
        (Some(value / 2.0), true),
        (Some(value * 2.0), false),
    ] {
        let t = losses::weighted_with_stop(losses::tv_loss(&img), 3.0, stop);
        assert!((t.double_value(&[]) - 3.0 * value).abs() < 1e-6);
        let g = Tensor::run_backward(&[&t], &[&img], false, true).remove(0);
        let moved = g.abs().sum(Kind::Float).double_value(&[]) > 0.0;
        assert_eq!(moved, pushes, "stop {stop:?}");
    }
    let s = settings("loss = [\"tv:0.5:0.01\", \"edge:2\"]");
    assert_eq!(s.loss.len(), 2);
    assert_eq!((s.loss[0].weight, s.loss[0].stop), (0.5, Some(0.01)));
    assert_eq!(s.loss[0].to_string(), "tv:0.5:0.01");
    assert_eq!(s.loss[1].to_string(), "edge:2");
}

/// The demo world with `--loss edge:10` (white, 5 % bands), 30 steps: the picture gets a white
/// frame that the same run without it lacks, and the inside is not washed out.
#[test]
fn a_white_edge_loss_draws_a_white_frame() {
    let dir = common::tmp_dir("edge-frame");
    let border = |extra: &[&str]| {
        let out = dir.join(extra.len().to_string());
        common::ok(
            &common::vqclip()
                .args([
                    "generate",
                    "a red circle on a blue background",
                    "--preset",
                    "demo",
                    "--seed",
                    "1",
                    "--steps",
                    "30",
                    "--quiet",
                    "--out",
                ])
                .arg(&out)
                .args(extra)
                .output()
                .unwrap(),
        );
        let img = common::pixels(&out.join("final.png"));
        let (w, h) = img.dimensions();
        let band = (0.05 * w as f64) as u32;
        let (mut edge, mut n_edge, mut inner, mut n_in) = (0.0, 0.0, 0.0, 0.0);
        for (x, y, p) in img.enumerate_pixels() {
            let inside = x >= band && x < w - band && y >= band && y < h - band;
            let grey = (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0;
            if inside {
                inner += grey;
                n_in += 1.0;
            } else {
                edge += grey;
                n_edge += 1.0;
            }
        }
        (edge / n_edge, inner / n_in)
    };
    let (plain, _) = border(&[]);
    let (framed, inside) = border(&["--loss", "edge:10"]);
    eprintln!(
        "losses: border mean {plain:.1} without the edge loss, {framed:.1} with it (inside {inside:.1})"
    );
    assert!(framed > 200.0, "{framed}");
    assert!(plain < 200.0, "{plain}");
    assert!(inside < 160.0, "the inside is not washed white: {inside}");
}

/// pixray's wallpaper filter, transcribed with its two random draws given: the same picture, the
/// same edge-match loss, the same gradient of sum(picture x probe) + loss, for every type.
#[test]
fn wallpaper_equals_pixrays_filter() {
    use vqclip::generate::wallpaper;
    use vqclip::settings::WallpaperType as T;
    let r = reference();
    let cases = [
        ("wall_shift", T::Shift, 0, (5, 7)),
        ("wall_horizontal", T::Horizontal, 4, (0, 3)),
        ("wall_vertical", T::Vertical, 6, (11, 0)),
        ("wall_none", T::None, 4, (2, 9)),
        ("wall_none_plain", T::None, 0, (2, 9)),
    ];
    for (name, kind, em, roll) in cases {
        let x = get(&r, "img").set_requires_grad(true);
        let (pic, loss) = wallpaper::apply(&x, kind, em, roll);
        let want = get(&r, name);
        assert_eq!(pic.size(), want.size(), "{name}");
        let d = (&pic - &want).abs().max().double_value(&[]);
        let want_loss = get(&r, &format!("{name}_loss")).double_value(&[0]);
        let loss = loss.unwrap_or_else(|| Tensor::zeros([], (Kind::Float, tch::Device::Cpu)));
        let dl = (loss.double_value(&[]) - want_loss).abs();
        let objective = (&pic * get(&r, &format!("{name}_probe"))).sum(Kind::Float) + &loss;
        let g = Tensor::run_backward(&[&objective], &[&x], false, false).remove(0);
        let dg = (g - get(&r, &format!("{name}_grad")))
            .abs()
            .max()
            .double_value(&[]);
        eprintln!(
            "losses: {name}: {:?}, picture {d:.1e}, loss {want_loss:.6} ({dl:.1e}), gradient {dg:.1e}",
            pic.size()
        );
        assert!(d == 0.0 && dl < 1e-7 && dg < 1e-5, "{name}: {d} {dl} {dg}");
    }
}

/// `--filters wallpaper --wallpaper-type shift` on the demo world: the saved picture is twice
/// as tall and its lower half is its upper half moved half a width, exactly; `--filters lookup`
/// draws in pixray's table, and `--lookup-beta` is `--palette-weight`.
#[test]
fn wallpaper_and_lookup_filters_in_runs() {
    let dir = common::tmp_dir("filters");
    let out = dir.join("wall");
    common::ok(
        &common::vqclip()
            .args([
                "generate",
                "a red circle on a blue background",
                "--preset",
                "demo",
            ])
            .args([
                "--filters",
                "wallpaper",
                "--wallpaper-type",
                "shift",
                "--steps",
                "20",
            ])
            .args(["--seed", "1", "--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let img = common::pixels(&out.join("final.png"));
    let (w, h) = img.dimensions();
    assert_eq!((w, h), (128, 256));
    for y in 0..h / 2 {
        for x in 0..w {
            assert_eq!(
                img.get_pixel(x, y + h / 2),
                img.get_pixel((x + w - w / 2) % w, y),
                "({x}, {y})"
            );
        }
    }
    let tiny = |name: &str, extra: &[&str]| {
        let o = dir.join(name);
        common::ok(
            &common::vqclip()
                .args([
                    "generate",
                    "a red apple",
                    "--drawer",
                    "fast-pixel",
                    "--clip",
                ])
                .arg(common::CLIP)
                .args([
                    "--size",
                    "32x32",
                    "--cutouts",
                    "2",
                    "--steps",
                    "3",
                    "--seed",
                    "2",
                ])
                .args(["--quiet", "--out"])
                .arg(&o)
                .args(extra)
                .output()
                .unwrap(),
        );
        common::pixels(&o.join("final.png"))
    };
    let a = tiny("lookup", &["--filters", "lookup", "--lookup-beta", "5"]);
    let table = vqclip::palette::PIXRAY_LOOKUP;
    assert!(
        a.pixels().all(|p| table.contains(&p.0)),
        "pixray's 16 colours"
    );
    let b = tiny("weight", &["--filters", "lookup", "--palette-weight", "5"]);
    assert_eq!(a, b, "--lookup-beta is --palette-weight");
    common::fails(
        &common::vqclip()
            .args(["generate", "x", "--wallpaper-type", "shift"])
            .output()
            .unwrap(),
        2,
        "apply to --filters wallpaper",
    );
}

/// The loop tests' run: fast_pixel cells of `pixel` drawn at `size`, 4 pooled cutouts of the tiny
/// CLIP without augments, f32 on the CPU, two steps of Adam at 0.2 (unless `extra` says
/// otherwise), and `extra`.
fn loop_settings(pixel: &str, size: &str, extra: &str) -> Settings {
    let toml = format!(
        "drawer = \"fast_pixel\"\npixel-size = \"{pixel}\"\nsize = \"{size}\"\ncutouts = 4\naugments = \"none\"\n\
         cut-method = \"pooled\"\nclip = [\"{}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\nsteps = 2\nseed = 1\n\
         prompts = [\"a red square\"]\nlr = 0.2\n{extra}\n",
        common::CLIP
    );
    PartialSettings::from_toml(&toml, Path::new("t.toml"))
        .unwrap()
        .resolve()
        .unwrap()
}

/// The loop tests' models: the tiny CLIP, no loss models.
fn tiny_clip_models(dev: tch::Device) -> vqclip::generate::engine::Models {
    vqclip::generate::engine::Models {
        vqgan: None,
        vgg: None,
        resmem: None,
        head: None,
        clips: vec![vqclip::models::clip::Clip::load(Path::new(common::CLIP), dev).unwrap()],
        weights: Vec::new(),
    }
}

/// Two engine steps from the cells `start` (Adam's moments zero, and DiffGrad's with `vmax`):
/// the logged totals.
fn two_steps(g: &mut vqclip::generate::engine::Generator, start: &Tensor, vmax: bool) -> Vec<f64> {
    let mut state = g.state();
    state.z = start.copy(); // the steps move it in place
    state.z0 = start.copy();
    state.m = start.zeros_like();
    state.v = start.zeros_like();
    state.vmax = vmax.then(|| start.zeros_like());
    g.restore(state).unwrap();
    g.step().unwrap();
    g.step().unwrap();
    g.flush().unwrap().iter().map(|x| x.loss).collect()
}

/// A loop's logged totals and final cells against the reference's `{prefix}losses` and
/// `{prefix}final`, within the loop bars; returns the reference's totals.
fn check_loop(
    r: &[(String, Tensor)],
    prefix: &str,
    name: &str,
    got: &[f64],
    params: &Tensor,
) -> Vec<f64> {
    let want: Vec<f64> =
        Vec::try_from(get(r, &format!("{prefix}losses")).to_kind(Kind::Double)).unwrap();
    let dl = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let dp = (params.to_device(tch::Device::Cpu) - get(r, &format!("{prefix}final")))
        .abs()
        .max()
        .double_value(&[]);
    eprintln!("losses: loop {name}: {want:?}, losses within {dl:.1e}, cells within {dp:.1e}");
    assert!(
        dl < common::tol(1e-5, 1e-3) && dp < common::tol(1e-4, 1e-3),
        "{name}: {got:?} vs {want:?}, cells {dp}"
    );
    want
}

/// Two steps of the engine against pixray's loop (make_loss_fixtures.py) with each loss, the
/// vector prompt, a stop, and the new optimizers, on the tiny CLIP from the same fast_pixel cells:
/// logged totals and the cells after the steps.
#[test]
fn two_loop_steps_with_each_term_equal_pixrays_loop() {
    use vqclip::generate::engine::Generator;
    use vqclip::models::head::Head;
    let r = reference();
    let dev = common::device();
    let start = get(&r, "loop_start").to_device(dev);
    let head_file = common::fixture("aesthetic_tiny.pth");
    let cases = [
        (
            "edge",
            "loss = [\"edge:2\"]\nedge-margins = \"10,0,20,5\"\nedge-color = \"(51+102+153)\""
                .to_string(),
        ),
        (
            "smooth_log_k3",
            "loss = [\"smoothness:3\"]\nsmoothness-type = \"log\"\nsmoothness-gaussian-kernel = 3"
                .to_string(),
        ),
        ("smooth_stop", "loss = [\"smoothness:3:10\"]".to_string()),
        (
            "aesthetic",
            format!(
                "loss = [\"aesthetic:2\"]\naesthetic-model = \"{}\"\naesthetic-target = 7.0",
                head_file.display()
            ),
        ),
        (
            "vector",
            format!(
                "vector-prompts = [\"{}:2\"]",
                common::fixture("vector_tiny.json").display()
            ),
        ),
        ("diffgrad", "optimizer = \"diffgrad\"".to_string()),
        ("adamp", "optimizer = \"adamp\"".to_string()),
        ("radam", "optimizer = \"radam\"".to_string()),
    ];
    for (name, extra) in cases {
        let s = loop_settings("12x8", "48x32", &extra);
        let mut models = tiny_clip_models(dev);
        models.head = (name == "aesthetic").then(|| (0, Head::load(&head_file, dev).unwrap()));
        let mut g = Generator::new(s, models, dev).unwrap();
        let got = two_steps(&mut g, &start, name == "diffgrad");
        let want = check_loop(&r, &format!("loop_{name}_"), name, &got, g.params());
        assert!(want[0] != want[1], "{name}: the loop did not move");
    }
}

fn style_reference() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(common::fixture("style_ref.safetensors")).unwrap()
}

fn draws(r: &[(String, Tensor)], name: &str) -> Vec<i64> {
    Vec::try_from(get(r, name).to_kind(Kind::Int64)).unwrap()
}

/// pixray's STROTSS style loss (make_style_fixtures.py, with numpy's draws recorded and replayed):
/// value and picture gradient at one, two and three scales and in VGG space, the VGG16 features
/// from torchvision's legacy .pth and from LPIPS's names, and the style image's bicubic stretch.
#[test]
fn style_loss_equals_pixrays_strotss() {
    use vqclip::generate::style_loss::{Replay, StyleLoss};
    use vqclip::models::vgg::Vgg16;
    use vqclip::settings::StyleSpace;
    let r = style_reference();
    let dev = common::device();
    let pth = common::fixture("vgg16_tiny.pth");
    let lpips = common::fixture("vgg16_tiny_lpips.safetensors");
    // The extractor alone, from both files: the sum of each of the ten tensors.
    let want = get(&r, "vgg_feature_sums");
    for file in [&pth, &lpips] {
        let vgg = Vgg16::load(file, dev).unwrap();
        assert_eq!(vgg.widths(), [3, 4, 4, 8, 8, 16, 16, 16, 32, 32]);
        let x = get(&r, "one_scale_img").to_device(dev) * 2.0 - 1.0;
        let x = ((x + 1.0) / 2.0
            - Tensor::from_slice(&[0.485f32, 0.456, 0.406])
                .view([1, 3, 1, 1])
                .to_device(dev))
            / Tensor::from_slice(&[0.229f32, 0.224, 0.225])
                .view([1, 3, 1, 1])
                .to_device(dev);
        let sums: Vec<f64> = vgg
            .features(&x)
            .iter()
            .map(|f| f.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]))
            .collect();
        for (i, s) in sums.iter().enumerate() {
            let w = want.double_value(&[i as i64]);
            assert!(
                (s - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{file:?} layer {i}: {s} vs {w}"
            );
        }
    }
    let pixels = vqclip::image_io::rgb_to_tensor(
        &vqclip::image_io::load_rgb(&common::fixture("style_input.png")).unwrap(),
    );
    let cases = [
        ("one_scale", 32.0, StyleSpace::Uniform),
        ("two_scales", 32.0, StyleSpace::Uniform),
        ("three_scales", 8.0, StyleSpace::Uniform),
        ("vgg_space", 0.5, StyleSpace::Vgg),
    ];
    for (name, weight, space) in cases {
        let img = get(&r, &format!("{name}_img"));
        let (h, w) = (img.size()[2], img.size()[3]);
        let style = get(&r, &format!("{name}_style"));
        let stretched = StyleLoss::stretch(&pixels, h, w);
        let ds = (&stretched - &style).abs().max().double_value(&[]);
        assert!(
            ds < 1e-5,
            "{name}: the style image's bicubic stretch is off by {ds}"
        );
        let loss = StyleLoss::new(Vgg16::load(&pth, dev).unwrap(), style, weight, space, dev);
        let x = img.to_device(dev).set_requires_grad(true);
        let mut replay = Replay::new(draws(&r, &format!("{name}_draws")));
        let v = loss.value(&x, &mut replay);
        assert!(
            replay.used_up(),
            "{name}: the draws differ in number from pixray's"
        );
        let g = Tensor::run_backward(&[&v], &[&x], false, false)
            .remove(0)
            .to_device(tch::Device::Cpu);
        let want = get(&r, name).double_value(&[0]);
        let want_g = get(&r, &format!("{name}_grad"));
        let dv = (v.double_value(&[]) - want).abs() / want.abs();
        let dg = (g - &want_g).abs().max().double_value(&[]) / want_g.abs().max().double_value(&[]);
        eprintln!(
            "losses: style {name} ({h}x{w}): value {want:.6}, relative differences value {dv:.1e}, gradient {dg:.1e}"
        );
        assert!(
            dv < common::tol(1e-5, 1e-4) && dg < common::tol(1e-5, 1e-4),
            "{name}: {dv} {dg}"
        );
    }
}

/// Two steps of the engine with `--loss style:300` (skip 0) against pixray's loop with its style
/// loss, replaying the reference's draws: logged totals and the cells after.
#[test]
fn two_loop_steps_with_the_style_loss_equal_pixrays_loop() {
    use vqclip::generate::engine::Generator;
    use vqclip::models::vgg::Vgg16;
    let r = style_reference();
    let dev = common::device();
    let start = get(&r, "loop_start").to_device(dev);
    let extra = format!(
        "loss = [\"style:300\"]\nstyleloss-skip = 0\nstyle-file = \"{}\"",
        common::fixture("style_input.png").display()
    );
    let mut models = tiny_clip_models(dev);
    models.vgg = Some(Vgg16::load(&common::fixture("vgg16_tiny.pth"), dev).unwrap());
    let mut g = Generator::new(loop_settings("10x9", "40x36", &extra), models, dev).unwrap();
    g.extra().replay_style_draws(draws(&r, "loop_draws"));
    let got = two_steps(&mut g, &start, false);
    assert!(
        g.extra().style_draws_used_up(),
        "the loop drew other than pixray's"
    );
    check_loop(&r, "loop_", "style", &got, g.params());
}

/// `--loss style` in runs: its term is 0 before --styleloss-skip and off the --styleloss-every
/// steps, a seeded run repeats itself, and the settings' mistakes are usage errors.
#[test]
fn the_style_loss_in_runs() {
    let dir = common::tmp_dir("style");
    let run = |name: &str, extra: &[&str]| {
        let o = dir.join(name);
        let out = common::vqclip()
            .args([
                "generate",
                "a red apple",
                "--drawer",
                "fast-pixel",
                "--clip",
            ])
            .arg(common::CLIP)
            .args([
                "--size",
                "40x36",
                "--cutouts",
                "2",
                "--steps",
                "5",
                "--seed",
                "2",
            ])
            .args(["--loss", "style:300,tv:1", "--style-file"])
            .arg(common::fixture("style_input.png"))
            .arg("--style-model")
            .arg(common::fixture("vgg16_tiny.pth"))
            .args(["--quiet", "--out"])
            .arg(&o)
            .args(extra)
            .output()
            .unwrap();
        (o, out)
    };
    let (a, out) = run("a", &["--styleloss-skip", "1", "--styleloss-every", "2"]);
    common::ok(&out);
    let style: Vec<f64> = common::log(&a)
        .iter()
        .map(|r| r["extra"][0].as_f64().unwrap())
        .collect();
    // pixray's iteration is step - 1: skip 1 and every 2 score steps 3 and 5
    assert_eq!(style[0], 0.0);
    assert_eq!(style[1], 0.0);
    assert!(style[2] > 0.0, "{style:?}");
    assert_eq!(style[3], 0.0);
    assert!(style[4] > 0.0, "{style:?}");
    let (b, out) = run("b", &["--styleloss-skip", "1", "--styleloss-every", "2"]);
    common::ok(&out);
    assert_eq!(common::log_values(&a), common::log_values(&b));
    assert!(common::same_file(
        &a.join("final.png"),
        &b.join("final.png")
    ));
    let cases: [(&[&str], &str); 3] = [
        (&["--size", "40x32"], "at least 33 px"),
        (&["--loss", "tv:1"], "applies to --loss style"),
        (&["--style-model", "nonesuch"], "unknown model 'nonesuch'"),
    ];
    for (extra, needle) in cases {
        let (_, out) = run("bad", extra);
        common::fails(&out, 2, needle);
    }
    common::fails(
        &common::vqclip()
            .args(["generate", "x", "--loss", "style:1"])
            .output()
            .unwrap(),
        2,
        "add --style-file IMAGE",
    );
}

fn resmem_reference() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(common::fixture("resmem_ref.safetensors")).unwrap()
}

/// ResMem and pixray's ResmemLoss (make_resmem_fixtures.py: the package's forward transcribed, on
/// a random ResMem of resnet152's block counts in the real file's format): the predictions, the
/// loss on a 224 px cutout (pixray's size) and on three 32 px ones, with their gradient.
#[test]
fn resmem_equals_its_reference() {
    use vqclip::models::resmem::ResMem;
    let r = resmem_reference();
    let dev = common::device();
    let model = ResMem::load(&common::fixture("resmem_tiny.pt"), dev).unwrap();
    assert_eq!(model.blocks(), [3, 8, 36, 3], "resnet152's blocks");
    // Every float tensor of the file is in the model (the memory estimate counts them).
    let file =
        vqclip::weights::load_tensors(&common::fixture("resmem_tiny.pt"), &|_| true).unwrap();
    let floats: i64 = file
        .tensors
        .iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(_, t)| t.numel() as i64 * 4)
        .sum();
    assert_eq!(model.bytes(), floats);
    let cut = get(&r, "cut32").to_device(dev);
    let recentered = cut.internal_upsample_bilinear2d_aa([256, 256], false, None, None);
    let pred = model
        .forward(&recentered.narrow(2, 14, 227).narrow(3, 14, 227))
        .to_device(tch::Device::Cpu);
    let dp = (&pred - get(&r, "cut32_predictions"))
        .abs()
        .max()
        .double_value(&[]);
    assert!(dp < common::tol(1e-6, 1e-4), "predictions off by {dp}");
    for name in ["cut224", "cut32"] {
        let x = get(&r, name).to_device(dev).set_requires_grad(true);
        let v = model.loss(&x);
        let want = get(&r, &format!("{name}_loss")).double_value(&[0]);
        let dv = (v.double_value(&[]) - want).abs() / want.abs();
        let mut dg = 0.0;
        if name == "cut32" {
            let g = Tensor::run_backward(&[&v], &[&x], false, false)
                .remove(0)
                .to_device(tch::Device::Cpu);
            let want_g = get(&r, "cut32_grad");
            dg = (g - &want_g).abs().max().double_value(&[]) / want_g.abs().max().double_value(&[]);
        }
        eprintln!(
            "losses: resmem {name}: value {want:.6}, relative differences value {dv:.1e}, gradient {dg:.1e}; predictions within {dp:.1e}"
        );
        assert!(
            dv < common::tol(1e-5, 1e-4) && dg < common::tol(1e-5, 1e-4),
            "{name}: {dv} {dg}"
        );
    }
}

/// The real ResMem (PyPI resmem 1.1.6's resmem/model.pt, 528 MB: not in the repository) against
/// the package's own class: `VQCLIP_RESMEM_REAL=model.pt VQCLIP_RESMEM_REF=ref.safetensors`, the
/// reference from `make_resmem_fixtures.py --real model.pt --out ref.safetensors`.
#[test]
#[ignore = "needs the real ResMem weights (VQCLIP_RESMEM_REAL, VQCLIP_RESMEM_REF)"]
fn real_resmem_equals_the_package() {
    use vqclip::models::resmem::ResMem;
    let (Some(model), Some(reference)) = (
        std::env::var_os("VQCLIP_RESMEM_REAL"),
        std::env::var_os("VQCLIP_RESMEM_REF"),
    ) else {
        panic!("set VQCLIP_RESMEM_REAL and VQCLIP_RESMEM_REF");
    };
    let r = Tensor::read_safetensors(reference).unwrap();
    // One thread, as the reference: with two, the reference's own gradient moves by 5e-4
    // (relative to its largest element) through resnet152's summation order.
    tch::set_num_threads(1);
    let model = ResMem::load(Path::new(&model), tch::Device::Cpu).unwrap();
    assert_eq!(model.blocks(), [3, 8, 36, 3]);
    let x = get(&r, "cutouts").set_requires_grad(true);
    let v = model.loss(&x);
    let g = Tensor::run_backward(&[&v], &[&x], false, false).remove(0);
    let want = get(&r, "loss").double_value(&[0]);
    let want_g = get(&r, "grad");
    let dv = (v.double_value(&[]) - want).abs() / want.abs();
    let dg = (g - &want_g).abs().max().double_value(&[]) / want_g.abs().max().double_value(&[]);
    eprintln!(
        "losses: real resmem: loss {want:.6}, relative differences value {dv:.1e}, gradient {dg:.1e}"
    );
    assert!(dv < 1e-5 && dg < 1e-5, "{dv} {dg}");
}

/// Two steps of the engine with `--loss resmem:20` against pixray's loop with its ResmemLoss on
/// the cutouts the tiny CLIP sees (make_resmem_fixtures.py).
#[test]
fn two_loop_steps_with_resmem_equal_pixrays_loop() {
    use vqclip::generate::engine::Generator;
    use vqclip::models::resmem::ResMem;
    let r = resmem_reference();
    let dev = common::device();
    let start = get(&r, "loop_start").to_device(dev);
    let mut models = tiny_clip_models(dev);
    models.resmem = Some(ResMem::load(&common::fixture("resmem_tiny.pt"), dev).unwrap());
    let s = loop_settings("12x8", "48x32", "loss = [\"resmem:20\"]");
    let mut g = Generator::new(s, models, dev).unwrap();
    let got = two_steps(&mut g, &start, false);
    check_loop(&r, "loop_", "resmem", &got, g.params());
}

/// `--loss resmem` in a run: its term is logged (pixray's 0.05 x the mapped mean, 0.03 or so for the
/// tiny model), and --resmem-model needs the loss.
#[test]
fn resmem_in_a_run() {
    let dir = common::tmp_dir("resmem");
    let o = dir.join("a");
    let run = |extra: &[&str]| {
        common::vqclip()
            .args([
                "generate",
                "a red apple",
                "--drawer",
                "fast-pixel",
                "--clip",
            ])
            .arg(common::CLIP)
            .args([
                "--size",
                "32x32",
                "--cutouts",
                "2",
                "--steps",
                "2",
                "--seed",
                "2",
            ])
            .arg("--resmem-model")
            .arg(common::fixture("resmem_tiny.pt"))
            .args(["--quiet", "--out"])
            .arg(&o)
            .args(extra)
            .output()
            .unwrap()
    };
    common::ok(&run(&["--loss", "resmem:1"]));
    for row in common::log(&o) {
        let v = row["extra"][0].as_f64().unwrap();
        assert!(v > 0.0 && v < 0.05, "{row}");
    }
    common::fails(
        &run(&["--loss", "tv:1", "--force"]),
        2,
        "applies to --loss resmem",
    );
}
