//! The vector drawers' parts against references made by tests/fixtures/vector/make_vector.py:
//! the pixel drawer's grids and cell polygons against pixray's own rules (transcribed), coverage
//! against 32x32 point sampling, the init-image colours against pixray's encode_image; then runs:
//! the SVG against an independent renderer (rsvg-convert), resume, `--config final.svg`, `info`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, ok, pixels, tmp_dir, vqclip};
use serde_json::Value;
use std::path::Path;
use vqclip::generate::drawers::Drawer;
use vqclip::generate::drawers::pixel::Pixel;
use vqclip::generate::drawers::vector::{coverage, grid};
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

#[test]
fn the_svg_is_the_png_for_an_independent_renderer() {
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
            "vector: no rsvg-convert here (Debian's librsvg2-bin): the SVG check checked NOTHING"
        );
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
        let png = out.join("rsvg.png");
        let o = std::process::Command::new("rsvg-convert")
            .arg(out.join("final.svg"))
            .arg("-o")
            .arg(&png)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (mean, block) = differences(&pixels(&out.join("final.png")), &pixels(&png));
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
    ok(&vqclip()
        .args([
            "generate", "--quiet", "--device", "cpu", "--steps", "6", "--resume",
        ])
        .arg(&part)
        .output()
        .unwrap());
    for f in ["final.png", "final.svg"] {
        assert!(
            std::fs::read(straight.join(f)).unwrap() == std::fs::read(part.join(f)).unwrap(),
            "{f} after resume"
        );
    }
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
