//! The vector drawers' parts against references made by tests/fixtures/vector/make_vector.py:
//! the pixel drawer's grids and cell polygons against pixray's own rules (transcribed), coverage
//! against 32x32 point sampling, the init-image colours against pixray's encode_image; then runs:
//! the SVG against an independent renderer (rsvg-convert), resume, `--config final.svg`, `info`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, ok, pixels, tmp_dir, vqclip};
use serde_json::Value;
use std::path::Path;
use tch::Tensor;
use vqclip::generate::drawers::Drawer;
use vqclip::generate::drawers::pixel::Pixel;
use vqclip::generate::drawers::vector::{coverage, grid, raster};
use vqclip::settings::{PixelType, Size, pixel_grid_for};

fn json(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(Path::new("tests/fixtures/vector").join(name)).unwrap(),
    )
    .unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn pixel_grids_and_cells_are_pixrays() {
    let cases = json("pixel_grids.json");
    let mut cells_checked = 0;
    for case in cases.as_array().unwrap() {
        let ty: PixelType = case["type"].as_str().unwrap().parse().unwrap();
        let size = Size {
            width: case["size"][0].as_i64().unwrap(),
            height: case["size"][1].as_i64().unwrap(),
        };
        let spec = case["pixel_size"]
            .as_array()
            .map(|p| format!("{}x{}", p[0], p[1]));
        let scale = case["scale"].as_f64();
        let (edge, iso) = (
            case["edge"].as_bool().unwrap(),
            case["iso"].as_bool().unwrap(),
        );
        let got = pixel_grid_for(spec.as_deref(), scale, size, Some((ty, iso, edge))).unwrap();
        let want = (
            case["grid"][0].as_i64().unwrap(),
            case["grid"][1].as_i64().unwrap(),
        );
        assert_eq!(got, want, "{ty} {size:?} edge {edge} iso {iso}");
        let Some(polys) = case["polys"].as_array() else {
            continue;
        };
        let cells = grid::cells(ty, got, (size.width, size.height));
        assert_eq!(cells.len(), polys.len(), "{ty} {size:?}");
        for (cell, want) in cells.iter().zip(polys) {
            let want = floats(want);
            let have: Vec<f64> = cell.poly.iter().flatten().copied().collect();
            assert_eq!(have.len(), want.len(), "{ty}");
            for (a, b) in have.iter().zip(&want) {
                // pixray keeps float32; the fixture rounds to 4 decimals
                assert!((a - b).abs() < 2e-4, "{ty} {size:?}: {have:?} vs {want:?}");
            }
            cells_checked += 1;
        }
    }
    assert!(cells_checked > 10_000, "{cells_checked}");
}

#[test]
fn coverage_matches_point_sampling_and_composites_over() {
    for scene in json("coverage.json").as_array().unwrap() {
        let name = scene["name"].as_str().unwrap();
        let (w, h) = (
            scene["size"][0].as_i64().unwrap(),
            scene["size"][1].as_i64().unwrap(),
        );
        let polys: Vec<Vec<grid::Pt>> = scene["polys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| floats(p).chunks(2).map(|c| [c[0], c[1]]).collect())
            .collect();
        let (mut sum, mut worst, mut n) = (0.0, 0.0f64, 0);
        for (poly, want) in polys.iter().zip(scene["coverage"].as_array().unwrap()) {
            let want = floats(want);
            for y in 0..h {
                for x in 0..w {
                    let e = (coverage::pixel_area(poly, x as f64, y as f64)
                        - want[(y * w + x) as usize])
                        .abs();
                    sum += e;
                    worst = worst.max(e);
                    n += 1;
                }
            }
        }
        let mean = sum / n as f64;
        eprintln!("coverage {name}: mean error {mean:.5}, max {worst:.4}");
        assert!(
            mean <= 0.01 && worst <= 0.08,
            "{name}: mean {mean}, max {worst}"
        );
        // the composite: painter's order, each shape over what is below with coverage x opacity
        let alphas = floats(&scene["alphas"]);
        let colours: Vec<Vec<f64>> = scene["colours"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        let weights = coverage::painter_weights(&polys, &alphas, (w, h));
        let mut img = vec![0f64; (w * h * 3) as usize];
        for k in 0..weights.pixel.len() {
            let (p, s) = (weights.pixel[k] as usize, weights.shape[k] as usize);
            for c in 0..3 {
                img[p * 3 + c] += weights.weight[k] as f64 * colours[s][c];
            }
        }
        let want = floats(&scene["image"]);
        let (mut sum, mut worst) = (0.0, 0.0f64);
        for (a, b) in img.iter().zip(&want) {
            sum += (a - b).abs();
            worst = worst.max((a - b).abs());
        }
        let mean = sum / img.len() as f64;
        eprintln!("composite {name}: mean error {mean:.5}, max {worst:.4}");
        assert!(
            mean <= 0.01 && worst <= 0.08,
            "{name}: mean {mean}, max {worst}"
        );
    }
}

#[test]
fn init_image_colours_are_pixrays_cell_averages() {
    let img = vqclip::image_io::rgb_to_tensor(
        &vqclip::image_io::load_rgb(Path::new("tests/fixtures/vector/init.png")).unwrap(),
    );
    for case in json("init.json").as_array().unwrap() {
        let ty: PixelType = case["type"].as_str().unwrap().parse().unwrap();
        let grid = (
            case["grid"][0].as_i64().unwrap(),
            case["grid"][1].as_i64().unwrap(),
        );
        let (w, h) = (
            case["size"][0].as_i64().unwrap(),
            case["size"][1].as_i64().unwrap(),
        );
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let d = Pixel::new(
            ty,
            grid,
            (h, w),
            Some(img.shallow_clone()),
            false,
            &mut rng,
            tch::Device::Cpu,
        )
        .unwrap();
        let have = Vec::<f32>::try_from(d.params().detach().reshape([-1])).unwrap();
        let want: Vec<f64> = case["colours"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_eq!(have.len(), want.len(), "{ty}");
        for (a, b) in have.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{ty}: {a} vs {b}");
        }
    }
}

fn pixel_run(out: &Path, extra: &[&str]) {
    let o = vqclip()
        .args([
            "generate",
            "a red apple",
            "--drawer",
            "pixel",
            "--clip",
            CLIP,
        ])
        .args([
            "--size",
            "96x64",
            "--cutouts",
            "4",
            "--device",
            "cpu",
            "--quiet",
            "--seed",
            "5",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    ok(&o);
}

/// Mean and worst 8x8-block mean absolute difference, in 1/255.
fn differences(a: &image::RgbImage, b: &image::RgbImage) -> (f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = a.dimensions();
    let d = |x: u32, y: u32| -> f64 {
        let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
        (0..3)
            .map(|c| (p[c] as f64 - q[c] as f64).abs())
            .sum::<f64>()
            / 3.0
    };
    let mut total = 0.0;
    for y in 0..h {
        for x in 0..w {
            total += d(x, y);
        }
    }
    let mut worst = 0.0f64;
    for by in 0..h / 8 {
        for bx in 0..w / 8 {
            let mut s = 0.0;
            for y in 0..8 {
                for x in 0..8 {
                    s += d(bx * 8 + x, by * 8 + y);
                }
            }
            worst = worst.max(s / 64.0);
        }
    }
    (total / (w * h) as f64, worst)
}

/// Whether rsvg-convert is here; without it (and without VQCLIP_REQUIRE_RSVG) the caller's check
/// says it checked nothing.
fn have_rsvg(what: &str) -> bool {
    let have = std::process::Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("VQCLIP_REQUIRE_RSVG").is_err(),
            "VQCLIP_REQUIRE_RSVG is set but rsvg-convert (librsvg2-bin) is missing"
        );
        eprintln!(
            "vector: no rsvg-convert here (Debian's librsvg2-bin): the {what} SVG check checked NOTHING"
        );
    }
    have
}

/// A run's final.svg drawn by rsvg-convert against its final.png: (mean, worst 8x8 block) in 1/255.
fn rsvg_differences(run: &Path) -> (f64, f64) {
    let png = run.join("rsvg.png");
    let o = std::process::Command::new("rsvg-convert")
        .arg(run.join("final.svg"))
        .arg("-o")
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    differences(&pixels(&run.join("final.png")), &pixels(&png))
}

/// `part` resumed to 6 steps ends with the same final.png and final.svg bytes as `straight`.
fn resume_matches(straight: &Path, part: &Path, what: &str) {
    ok(&vqclip()
        .args([
            "generate", "--quiet", "--device", "cpu", "--steps", "6", "--resume",
        ])
        .arg(part)
        .output()
        .unwrap());
    for f in ["final.png", "final.svg"] {
        assert!(
            std::fs::read(straight.join(f)).unwrap() == std::fs::read(part.join(f)).unwrap(),
            "{what}: {f} after resume"
        );
    }
}

#[test]
fn the_svg_is_the_png_for_an_independent_renderer() {
    if !have_rsvg("pixel") {
        return;
    }
    let dir = tmp_dir("rsvg");
    for (ty, size) in [
        ("rect", "17x11"),
        ("rectshift", "17x11"),
        ("hex", "15x11"),
        ("tri", "21x12"),
        ("diamond", "13x15"),
        ("knit", "16x10"),
        ("hex", "default"),
    ] {
        let out = dir.join(format!("{ty}-{size}"));
        let mut extra = vec!["--pixel-type", ty, "--steps", "3"];
        if size != "default" {
            extra.extend(["--pixel-size", size]);
        }
        pixel_run(&out, &extra);
        let (mean, block) = rsvg_differences(&out);
        eprintln!("rsvg {ty} {size}: mean {mean:.2}/255, worst 8x8 block {block:.2}/255");
        assert!(mean <= 2.0 && block <= 8.0, "{ty} {size}: {mean} {block}");
    }
}

#[test]
fn pixel_runs_resume_exactly_and_repeat_from_their_svg() {
    let dir = tmp_dir("pixel-runs");
    let straight = dir.join("straight");
    pixel_run(
        &straight,
        &["--pixel-type", "hex", "--steps", "6", "--save-every", "3"],
    );
    assert!(straight.join("frames/000003.svg").is_file());
    let part = dir.join("part");
    pixel_run(
        &part,
        &["--pixel-type", "hex", "--steps", "3", "--save-every", "3"],
    );
    resume_matches(&straight, &part, "pixel");
    // info reads the SVG; --config final.svg repeats the run
    let o = vqclip()
        .arg("info")
        .arg(straight.join("final.svg"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    ok(&o);
    assert!(
        out.contains("pixel-type = \"hex\"") && out.contains("# prompt: a red apple"),
        "{out}"
    );
    let again = dir.join("again");
    ok(&vqclip()
        .args(["generate", "--quiet", "--device", "cpu", "--config"])
        .arg(straight.join("final.svg"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap());
    assert!(
        std::fs::read(straight.join("final.svg")).unwrap()
            == std::fs::read(again.join("final.svg")).unwrap()
    );
    // a palette: the SVG's fills are palette colours
    let pal = dir.join("palette");
    pixel_run(
        &pal,
        &[
            "--steps",
            "2",
            "--pixel-size",
            "8x6",
            "--palette",
            "#ff0000,#00ff00,#0000ff",
        ],
    );
    let svg = std::fs::read_to_string(pal.join("final.svg")).unwrap();
    let fills: Vec<&str> = svg.split("fill=\"").skip(1).map(|s| &s[..7]).collect();
    assert_eq!(fills.len(), 1 + 48, "{svg}");
    assert!(
        fills[1..]
            .iter()
            .all(|f| ["#ff0000", "#00ff00", "#0000ff"].contains(f)),
        "{fills:?}"
    );
    // the pixel drawer's settings are refused elsewhere, and fast-pixel's grid is shared
    let o = vqclip()
        .args([
            "generate",
            "x",
            "--drawer",
            "fast-pixel",
            "--pixel-type",
            "hex",
            "--clip",
            CLIP,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--pixel-type applies to --drawer pixel, not to --drawer fast-pixel")
    );
}

/// A stroke of the fixture as the rasterizer takes it: cubics `[segments, 4, 2]` from its
/// control points (a leaf, for gradients), its width and its RGBA.
struct FixtureStroke {
    points: Tensor,
    width: f64,
    rgba: Vec<f64>,
}

fn fixture_stroke(v: &Value) -> FixtureStroke {
    let pts: Vec<f32> = floats(&v["points"]).iter().map(|&x| x as f32).collect();
    FixtureStroke {
        points: Tensor::from_slice(&pts)
            .view([-1, 2])
            .set_requires_grad(true),
        width: v["width"].as_f64().unwrap(),
        rgba: floats(&v["rgba"]),
    }
}

/// Renders fixture strokes: returns the image and the leaves (points per stroke, widths, colours).
fn render_strokes(
    strokes: &[FixtureStroke],
    size: (i64, i64),
    background: [f32; 3],
    white_opaque: bool,
) -> (Tensor, Tensor, Tensor) {
    let mut cubics = Vec::new();
    let mut seg_stroke = Vec::new();
    for (i, s) in strokes.iter().enumerate() {
        let n = (s.points.size()[0] - 1) / 3;
        for k in 0..n {
            cubics.push(s.points.narrow(0, 3 * k, 4));
            seg_stroke.push(i as i64);
        }
    }
    let cubics = Tensor::stack(&cubics, 0);
    let widths = Tensor::from_slice(&strokes.iter().map(|s| s.width as f32).collect::<Vec<_>>())
        .set_requires_grad(true);
    let colours: Vec<f32> = strokes
        .iter()
        .flat_map(|s| {
            if white_opaque {
                vec![1.0, 1.0, 1.0, 1.0]
            } else {
                s.rgba.iter().map(|&c| c as f32).collect()
            }
        })
        .collect();
    let colours = Tensor::from_slice(&colours)
        .view([-1, 4])
        .set_requires_grad(true);
    let img = raster::render(
        &raster::Strokes {
            cubics: &cubics,
            segment_stroke: &seg_stroke,
            widths: &widths,
            colours: &colours,
            background: Some(&Tensor::from_slice(&background)),
        },
        size,
    )
    .unwrap();
    (img, widths, colours)
}

/// `[1, 3, H, W]` as HWC f64s (the fixture's layout).
fn hwc(img: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(
        img.detach()
            .squeeze_dim(0)
            .permute([1, 2, 0])
            .to_kind(tch::Kind::Double)
            .reshape([-1]),
    )
    .unwrap()
}

#[test]
fn stroke_coverage_matches_point_sampling_for_three_widths_and_overlaps() {
    let f = json("strokes.json");
    let size = (
        f["size"][1].as_i64().unwrap(),
        f["size"][0].as_i64().unwrap(),
    );
    for single in f["singles"].as_array().unwrap() {
        let s = fixture_stroke(single);
        let (img, _, _) = render_strokes(std::slice::from_ref(&s), size, [0.0; 3], true);
        let have: Vec<f64> = hwc(&img).chunks(3).map(|c| c[0]).collect();
        let want = floats(&single["coverage"]);
        let (mut sum, mut worst) = (0.0, 0.0f64);
        for (a, b) in have.iter().zip(&want) {
            sum += (a - b).abs();
            worst = worst.max((a - b).abs());
        }
        let mean = sum / want.len() as f64;
        eprintln!(
            "stroke width {}: coverage error mean {mean:.5}, max {worst:.4}",
            s.width
        );
        assert!(
            mean <= 0.01 && worst <= 0.08,
            "width {}: {mean} {worst}",
            s.width
        );
    }
    let over: Vec<FixtureStroke> = f["over"]
        .as_array()
        .unwrap()
        .iter()
        .map(fixture_stroke)
        .collect();
    let (img, _, _) = render_strokes(&over, size, [1.0; 3], false);
    let have = hwc(&img);
    let want = floats(&f["over_image"]);
    let (mut sum, mut worst) = (0.0, 0.0f64);
    for (a, b) in have.iter().zip(&want) {
        sum += (a - b).abs();
        worst = worst.max((a - b).abs());
    }
    let mean = sum / want.len() as f64;
    eprintln!("8 overlapping strokes: image error mean {mean:.5}, max {worst:.4}");
    assert!(mean <= 0.01 && worst <= 0.08, "{mean} {worst}");
}

#[test]
fn stroke_gradients_match_finite_differences_of_the_sampled_reference() {
    let f = json("strokes.json");
    let size = (
        f["grad_size"][1].as_i64().unwrap(),
        f["grad_size"][0].as_i64().unwrap(),
    );
    let scene: Vec<FixtureStroke> = f["grad_scene"]
        .as_array()
        .unwrap()
        .iter()
        .map(fixture_stroke)
        .collect();
    let (img, widths, colours) = render_strokes(&scene, size, [1.0; 3], false);
    let r: Vec<f32> = floats(&f["grad_weights"])
        .iter()
        .map(|&x| x as f32)
        .collect();
    let r = Tensor::from_slice(&r)
        .view([size.0, size.1, 3])
        .permute([2, 0, 1])
        .unsqueeze(0);
    let loss = (&img * r).sum(tch::Kind::Float);
    let mut leaves: Vec<&Tensor> = scene.iter().map(|s| &s.points).collect();
    leaves.push(&widths);
    leaves.push(&colours);
    let grads = Tensor::run_backward(&[loss], &leaves, false, false);
    let (n, (gw, gc)) = (scene.len(), (&grads[scene.len()], &grads[scene.len() + 1]));
    let mut rels = Vec::new();
    for key in ["points", "width", "rgba"] {
        let (mut num, mut den) = (0.0, 0.0);
        for g in f["grads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["key"] == key)
        {
            let i = g["stroke"].as_u64().unwrap() as usize;
            let want = floats(&g["grad"]);
            let have: Vec<f64> = match key {
                "points" => {
                    Vec::<f64>::try_from(grads[i].to_kind(tch::Kind::Double).reshape([-1])).unwrap()
                }
                "width" => vec![gw.double_value(&[i as i64])],
                _ => Vec::<f64>::try_from(gc.get(i as i64).to_kind(tch::Kind::Double)).unwrap(),
            };
            assert_eq!(have.len(), want.len());
            if std::env::var("VQCLIP_DEBUG_GRAD").is_ok() {
                for (k, (a, b)) in have.iter().zip(&want).enumerate() {
                    eprintln!("{key} stroke {i} #{k}: ours {a:9.3} reference {b:9.3}");
                }
            }
            for (a, b) in have.iter().zip(&want) {
                num += (a - b).powi(2);
                den += b * b;
            }
        }
        let rel = (num / den).sqrt();
        eprintln!(
            "gradient of {key} ({n} strokes): relative error {:.2} %",
            rel * 100.0
        );
        rels.push((key, rel));
    }
    assert!(rels.iter().all(|(_, r)| *r < 0.05), "{rels:?}");
}

/// The rasterizer's gradients steer: 24 strokes from a random start, fitted to a picture of 12
/// other strokes by MSE alone (Adam on points, widths and colours, the step decaying to a tenth
/// over 1000 steps), reach PSNR >= 25 dB (28.0 dB measured).
#[test]
fn strokes_fitted_to_a_target_by_mse_reach_25_db() {
    use rand::{Rng, SeedableRng};
    let (h, w) = (32i64, 32i64);
    let scene = |seed: u64, n: usize| -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut v = Vec::new();
        for _ in 0..n {
            let mut p = [
                rng.random_range(4.0..28.0f32),
                rng.random_range(4.0..28.0f32),
            ];
            v.extend(p);
            for _ in 0..3 {
                p = [
                    (p[0] + rng.random_range(-8.0..8.0f32)).clamp(0.0, 32.0),
                    (p[1] + rng.random_range(-8.0..8.0f32)).clamp(0.0, 32.0),
                ];
                v.extend(p);
            }
        }
        for _ in 0..n {
            v.push(rng.random_range(1.5..4.0f32));
        }
        for _ in 0..n {
            v.extend([
                rng.random::<f32>(),
                rng.random::<f32>(),
                rng.random::<f32>(),
                1.0,
            ]);
        }
        v
    };
    let draw = |params: &Tensor, n: i64| -> Tensor {
        let points = params.narrow(0, 0, n * 8).view([n, 4, 2]);
        let widths = params.narrow(0, n * 8, n);
        let colours = params.narrow(0, n * 9, n * 4).view([n, 4]);
        let seg: Vec<i64> = (0..n).collect();
        raster::render(
            &raster::Strokes {
                cubics: &points,
                segment_stroke: &seg,
                widths: &widths,
                colours: &colours,
                background: Some(&Tensor::from_slice(&[1f32, 1.0, 1.0])),
            },
            (h, w),
        )
        .unwrap()
    };
    let target = tch::no_grad(|| draw(&Tensor::from_slice(&scene(1, 12)), 12));
    let n = 24i64;
    let mut x = Tensor::from_slice(&scene(2, n as usize)).set_requires_grad(true);
    // Adam by hand: points at 0.3 px, widths at 0.1, colours at 0.05 per step
    let opts = (tch::Kind::Float, tch::Device::Cpu);
    let lr = Tensor::cat(
        &[
            Tensor::full([n * 8], 0.3, opts),
            Tensor::full([n], 0.1, opts),
            Tensor::full([n * 4], 0.05, opts),
        ],
        0,
    );
    let (mut m, mut v) = (x.zeros_like(), x.zeros_like());
    let psnr = |img: &Tensor| -> f64 {
        let mse = (img - &target)
            .square()
            .mean(tch::Kind::Float)
            .double_value(&[]);
        10.0 * (1.0 / mse).log10()
    };
    let start = tch::no_grad(|| psnr(&draw(&x, n)));
    let steps = 1000;
    for step in 1..=steps {
        let loss = (draw(&x, n) - &target).square().mean(tch::Kind::Float);
        let g = Tensor::run_backward(&[loss], &[&x], false, false)
            .pop()
            .unwrap();
        let decay = 1.0 - 0.9 * (step - 1) as f64 / steps as f64;
        tch::no_grad(|| {
            m = &m * 0.9 + &g * 0.1;
            v = &v * 0.999 + g.square() * 0.001;
            let mh = &m / (1.0 - 0.9f64.powi(step));
            let vh = &v / (1.0 - 0.999f64.powi(step));
            let _ = x.g_sub_(&(&lr * mh / (vh.sqrt() + 1e-8) * decay));
            // widths and colours in range, as the drawers' clamps
            let _ = x.narrow(0, n * 8, n).clamp_(0.5, 6.0);
            let _ = x.narrow(0, n * 9, n * 4).clamp_(0.0, 1.0);
        });
    }
    let end = tch::no_grad(|| psnr(&draw(&x, n)));
    if let Ok(dir) = std::env::var("VQCLIP_DEBUG_FIT") {
        let both = Tensor::cat(&[&target, &tch::no_grad(|| draw(&x, n))], 3);
        tch::vision::image::save(
            &(both.squeeze_dim(0).clamp(0.0, 1.0) * 255.0),
            format!("{dir}/fit.png"),
        )
        .unwrap();
    }
    eprintln!("fit by MSE: PSNR {start:.1} dB -> {end:.1} dB in {steps} steps");
    assert!(end >= 25.0, "PSNR {end}");
}

fn stroke_run(out: &Path, drawer: &str, extra: &[&str]) -> std::process::Output {
    vqclip()
        .args([
            "generate",
            "a red apple",
            "--drawer",
            drawer,
            "--clip",
            CLIP,
        ])
        .args([
            "--size",
            "64x48",
            "--cutouts",
            "4",
            "--device",
            "cpu",
            "--quiet",
            "--seed",
            "9",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn stroke_runs_resume_exactly_and_their_svg_is_their_png() {
    let dir = tmp_dir("stroke-runs");
    let rsvg = have_rsvg("stroke");
    for (drawer, extra) in [
        ("clipdraw", vec!["--strokes", "64"]),
        ("line-sketch", vec!["--allow-paper-color", "true"]),
    ] {
        let straight = dir.join(format!("{drawer}-straight"));
        let mut a = extra.clone();
        a.extend(["--steps", "6", "--save-every", "3"]);
        ok(&stroke_run(&straight, drawer, &a));
        assert!(straight.join("frames/000003.svg").is_file());
        let part = dir.join(format!("{drawer}-part"));
        let mut a = extra.clone();
        a.extend(["--steps", "3", "--save-every", "3"]);
        ok(&stroke_run(&part, drawer, &a));
        resume_matches(&straight, &part, drawer);
        if rsvg {
            let (mean, block) = rsvg_differences(&straight);
            eprintln!("rsvg {drawer}: mean {mean:.2}/255, worst 8x8 block {block:.2}/255");
            assert!(mean <= 2.0 && block <= 8.0, "{drawer}: {mean} {block}");
        }
    }
    // clipdraw colours its strokes from an init image: a pure red picture gives red strokes
    let red = dir.join("red.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([255, 0, 0]))
        .save(&red)
        .unwrap();
    let out = dir.join("init");
    ok(&stroke_run(
        &out,
        "clipdraw",
        &[
            "--strokes",
            "16",
            "--steps",
            "1",
            "--lr",
            "0.0001",
            "--init-image",
            red.to_str().unwrap(),
        ],
    ));
    let svg = std::fs::read_to_string(out.join("final.svg")).unwrap();
    let strokes: Vec<&str> = svg.split("stroke=\"").skip(1).map(|s| &s[..7]).collect();
    assert_eq!(strokes.len(), 16);
    assert!(strokes.iter().all(|s| *s == "#ff0000"), "{strokes:?}");
    // refusals: zoom on strokes, an init for line-sketch, min above max
    for (drawer, args, needle) in [
        ("clipdraw", vec!["--zoom-every", "5"], "cannot zoom"),
        (
            "line-sketch",
            vec!["--init", "perlin"],
            "takes no --init-image or --init",
        ),
        (
            "clipdraw",
            vec!["--min-stroke-width", "6"],
            "is wider than --max-stroke-width",
        ),
        (
            "pixel",
            vec!["--strokes", "5"],
            "--strokes applies to --drawer clipdraw or line-sketch",
        ),
    ] {
        let o = stroke_run(&dir.join("refused"), drawer, &args);
        assert_eq!(o.status.code(), Some(2), "{drawer} {args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

fn rgba(png: &Path) -> image::RgbaImage {
    let img = image::open(png).unwrap();
    assert!(img.color().has_alpha(), "{} has no alpha", png.display());
    img.to_rgba8()
}

/// Premultiplied RGBA differences (colour under alpha 0 is nobody's): mean and worst 8x8 block
/// mean over the four channels, in 1/255.
fn rgba_differences(a: &image::RgbaImage, b: &image::RgbaImage) -> (f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = a.dimensions();
    let d = |x: u32, y: u32| -> f64 {
        let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
        let pre = |v: &image::Rgba<u8>, c: usize| {
            if c == 3 {
                v[3] as f64
            } else {
                v[c] as f64 * v[3] as f64 / 255.0
            }
        };
        (0..4).map(|c| (pre(p, c) - pre(q, c)).abs()).sum::<f64>() / 4.0
    };
    let mut total = 0.0;
    let mut worst = 0.0f64;
    for by in 0..h / 8 {
        for bx in 0..w / 8 {
            let mut s = 0.0;
            for y in 0..8 {
                for x in 0..8 {
                    s += d(bx * 8 + x, by * 8 + y);
                }
            }
            worst = worst.max(s / 64.0);
            total += s;
        }
    }
    (total / ((w / 8) * (h / 8) * 64) as f64, worst)
}

fn mean_alpha(img: &image::RgbaImage) -> f64 {
    img.pixels().map(|p| p[3] as f64 / 255.0).sum::<f64>() / img.pixels().len() as f64
}

#[test]
fn transparent_runs_keep_their_alpha_in_png_svg_log_and_resume() {
    let dir = tmp_dir("transparent");
    let rsvg = have_rsvg("transparent");
    // pixel: cells start opaque (pixray's alpha 1; 4x4-pixel cells cover every pixel whole), the
    // alpha term is W x the mean alpha, and steers: with W = 10 the picture empties at about the
    // learning rate per step
    let heavy = dir.join("pixel-heavy");
    pixel_run(
        &heavy,
        &[
            "--transparent",
            "--transparent-weight",
            "10",
            "--pixel-size",
            "24x16",
            "--steps",
            "6",
            "--save-every",
            "3",
        ],
    );
    let log = common::log(&heavy);
    let term = |i: usize| log[i]["transparent"].as_f64().unwrap();
    assert!(
        (term(0) - 10.0).abs() < 1e-5,
        "step 1 alpha term {}",
        term(0)
    );
    assert!((1..6).all(|i| term(i) < term(i - 1)), "{log:?}");
    let img = rgba(&heavy.join("final.png"));
    let frame = rgba(&heavy.join("frames/000003.png"));
    let (a_final, a_frame) = (mean_alpha(&img), mean_alpha(&frame));
    eprintln!("transparent pixel, W 10: mean alpha {a_frame:.3} at step 3, {a_final:.3} at step 6");
    assert!(a_final < 0.9 && a_final < a_frame, "{a_frame} {a_final}");
    // W = 0: no alpha term in the log; the PNG still has alpha
    let free = dir.join("pixel-free");
    pixel_run(
        &free,
        &["--transparent", "--pixel-size", "24x16", "--steps", "2"],
    );
    assert!(
        common::log(&free)
            .iter()
            .all(|r| r.get("transparent").is_none())
    );
    let a_free = mean_alpha(&rgba(&free.join("final.png")));
    assert!(a_free > 0.9, "{a_free}");
    // the SVG has no background, and an independent renderer draws the same RGBA
    for run in [&heavy, &free] {
        let svg = std::fs::read_to_string(run.join("final.svg")).unwrap();
        assert!(
            !svg.contains("<rect"),
            "a transparent SVG has no background"
        );
    }
    assert!(
        std::fs::read_to_string(heavy.join("final.svg"))
            .unwrap()
            .contains("fill-opacity")
    );
    // clipdraw and line-sketch: strokes on nothing, resumed byte for byte
    for (drawer, extra) in [
        ("clipdraw", vec!["--strokes", "48"]),
        ("line-sketch", vec![]),
    ] {
        let straight = dir.join(format!("{drawer}-straight"));
        let mut a = extra.clone();
        a.extend([
            "--transparent",
            "--transparent-weight",
            "0.5",
            "--steps",
            "6",
            "--save-every",
            "3",
        ]);
        ok(&stroke_run(&straight, drawer, &a));
        let part = dir.join(format!("{drawer}-part"));
        let mut a = extra.clone();
        a.extend([
            "--transparent",
            "--transparent-weight",
            "0.5",
            "--steps",
            "3",
            "--save-every",
            "3",
        ]);
        ok(&stroke_run(&part, drawer, &a));
        resume_matches(&straight, &part, drawer);
        let img = rgba(&straight.join("final.png"));
        let a = mean_alpha(&img);
        eprintln!("transparent {drawer}: mean alpha {a:.3}");
        assert!(a > 0.01 && a < 0.9, "{drawer}: mean alpha {a}");
        let corners_empty = img.pixels().filter(|p| p[3] == 0).count();
        assert!(corners_empty > 0, "{drawer}: no empty pixel");
        let svg = std::fs::read_to_string(straight.join("final.svg")).unwrap();
        assert!(
            !svg.contains("<rect"),
            "{drawer}: a transparent SVG has no background"
        );
    }
    if rsvg {
        for run in ["pixel-heavy", "clipdraw-straight", "line-sketch-straight"] {
            let run = dir.join(run);
            let png = run.join("rsvg.png");
            let o = std::process::Command::new("rsvg-convert")
                .arg(run.join("final.svg"))
                .arg("-o")
                .arg(&png)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let (mean, block) = rgba_differences(&rgba(&run.join("final.png")), &rgba(&png));
            eprintln!(
                "rsvg transparent {}: mean {mean:.2}/255, worst 8x8 block {block:.2}/255",
                run.display()
            );
            assert!(
                mean <= 2.0 && block <= 8.0,
                "{}: {mean} {block}",
                run.display()
            );
        }
    }
    // a video shows the frames over white, as a viewer does
    let on_white = vqclip::image_io::load_rgb_on_white(&heavy.join("final.png")).unwrap();
    for (p, q) in img.pixels().zip(on_white.pixels()).take(500) {
        let a = p[3] as f64 / 255.0;
        for c in 0..3 {
            let want = p[c] as f64 * a + 255.0 * (1.0 - a);
            assert!((q[c] as f64 - want).abs() <= 0.5 + 1e-9, "{p:?} -> {q:?}");
        }
    }
    // refusals
    for (drawer, args, needle) in [
        (
            "vqgan",
            vec!["--transparent"],
            "--transparent applies to --drawer pixel or clipdraw or line-sketch",
        ),
        (
            "clipdraw",
            vec!["--transparent-weight", "1"],
            "add --transparent",
        ),
        (
            "pixel",
            vec!["--transparent", "--zoom-every", "3"],
            "cannot enlarge a transparent drawing",
        ),
        (
            "line-sketch",
            vec!["--transparent", "--allow-paper-color", "true"],
            "has no paper",
        ),
        (
            "pixel",
            vec!["--transparent-weight", "-1"],
            "must be a number >= 0",
        ),
    ] {
        let o = stroke_run(&dir.join("refused"), drawer, &args);
        assert_eq!(o.status.code(), Some(2), "{drawer} {args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{err}");
    }
}
