//! The demo world end to end: `generate --preset demo` on the 16 captions whose (colour, shape,
//! background) combination the demo CLIP never saw in training must draw that caption.
//!
//! Two judges, neither of them the model that steered the picture:
//! - geometry (model-free, tests/shape_judge): the colours' shares, and whether the largest blob of
//!   the foreground colour is one solid shape whose roundness is nearest the caption's shape;
//! - a second CLIP (tests/fixtures/demo_judge_clip.pt: other seed, other widths, never used to
//!   generate) must pick the right colour words out of captions that differ in one of them,
//!   through `vqclip classify`.
//!
//! Two of the runs, stopped halfway and resumed, must end in the same image (byte-exact on CPU).
//! The table goes to stderr and to target/demo-world-report.md.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;
mod shape_judge;

use common::{ok, stderr, tmp_path};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const WORLD: &str = "weights/demo/world.json";
const JUDGE: &str = "tests/fixtures/demo_judge_clip.pt";
/// Seed of every demo run here (one seed; the table reports what it gives).
const SEED: &str = "1";

/// The binary, with the weights directory of the repository.
fn demo_vqclip() -> Command {
    let mut c = common::vqclip();
    // The bundled models are found in the repository's weights/ (as scripts/vqclip sets it).
    c.env(
        "VQCLIP_WEIGHTS",
        concat!(env!("CARGO_MANIFEST_DIR"), "/weights"),
    );
    c
}

struct World {
    colours: Vec<(String, [f64; 3])>,
    shapes: Vec<String>,
    held_out: Vec<(String, String, String)>,
}

fn world() -> World {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(WORLD).unwrap()).unwrap();
    let colours = v["colours"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| {
            let c: Vec<f64> = c
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (k.clone(), [c[0], c[1], c[2]])
        })
        .collect();
    let shapes = v["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let held_out = v["held_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap().to_string();
            (s("fg"), s("shape"), s("bg"))
        })
        .collect();
    World {
        colours,
        shapes,
        held_out,
    }
}

fn caption(fg: &str, shape: &str, bg: &str) -> String {
    format!("a {fg} {shape} on a {bg} background")
}

/// The judge's pick among `labels` for one image (`vqclip classify`, raw captions as labels).
fn judge(png: &Path, labels: &[String]) -> String {
    let o = demo_vqclip()
        .args(["classify", "--json", "--device", "cpu", "--template", "{}"])
        .args(["--clip", JUDGE, "--labels"])
        .arg(labels.join("|"))
        .arg(png)
        .output()
        .unwrap();
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["top"].as_str().unwrap().to_string()
}

fn generate(caption: &str, out: &Path, extra: &[&str]) -> Output {
    demo_vqclip()
        .args(["generate", caption, "--preset", "demo", "--seed", SEED])
        .args(["--device", "cpu", "--quiet", "--save-every", "0", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn demo_world_draws_held_out_captions_and_resumes_exactly() {
    let w = world();
    let names: Vec<String> = w.colours.iter().map(|c| c.0.clone()).collect();
    let n = w.held_out.len();
    assert!(n >= 16, "world.json holds out {n} combinations");
    let (mut colours_ok, mut shape_ok, mut all_ok) = (0, 0, 0);
    let (mut judge_fg_ok, mut judge_bg_ok) = (0, 0);
    let mut rows = Vec::new();
    for (i, (fg, shape, bg)) in w.held_out.iter().enumerate() {
        let cap = caption(fg, shape, bg);
        let straight = tmp_path(&format!("{i}-straight"));
        ok(&generate(&cap, &straight, &[]));
        let png = straight.join("final.png");

        // The geometric judge: colour shares, and the largest blob of the foreground colour.
        let v = shape_judge::judge(&png, fg, shape, bg);

        // The independent CLIP judge, one colour word changed at a time (it cannot tell shapes:
        // weights/demo/training.json).
        let alts = |f: &dyn Fn(&str) -> String, skip: &str| -> Vec<String> {
            names
                .iter()
                .filter(|o| o.as_str() != skip)
                .map(|o| f(o))
                .collect()
        };
        let judge_fg = judge(&png, &alts(&|c| caption(c, shape, bg), bg));
        let judge_bg = judge(&png, &alts(&|c| caption(fg, shape, c), fg));

        // Stopped halfway, resumed: the same image (on two captions; resume has its own tests).
        if i < 2 {
            let part = tmp_path(&format!("{i}-part"));
            ok(&generate(&cap, &part, &["--steps", "50"]));
            ok(&demo_vqclip()
                .args(["generate", "--quiet", "--resume"])
                .arg(&part)
                .args(["--steps", "100"])
                .output()
                .unwrap());
            assert_eq!(
                std::fs::read(&png).unwrap(),
                std::fs::read(part.join("final.png")).unwrap(),
                "{cap}: the resumed run's final.png differs from the straight run's"
            );
            let _ = std::fs::remove_dir_all(&part);
        }

        colours_ok += v.colours_right as usize;
        shape_ok += v.shape_drawn as usize;
        all_ok += (v.colours_right && v.shape_drawn) as usize;
        judge_fg_ok += (judge_fg == cap) as usize;
        judge_bg_ok += (judge_bg == cap) as usize;
        let mark = |b: bool| if b { "yes" } else { "no" };
        rows.push(format!(
            "| {cap} | {:.0} % | {:.0} % | {:.0} % | {:.2} | {:.2} | {} | {} | {} / {} |",
            v.fg_share * 100.0,
            v.bg_share * 100.0,
            v.blob_share * 100.0,
            v.solidity,
            v.roundness,
            v.seen,
            mark(v.colours_right && v.shape_drawn),
            mark(judge_fg == cap),
            mark(judge_bg == cap),
        ));
        let _ = std::fs::remove_dir_all(&straight);
    }
    let report = format!(
        "Held-out captions, `generate --preset demo --seed {SEED}` (CPU):\n\n\
         | caption | fg colour | bg colour | largest blob's share | solidity | roundness | shape read | drawn | CLIP judge: colour words (fg / bg) |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n\n\
         colours right {colours_ok}/{n}, shape drawn {shape_ok}/{n}, both {all_ok}/{n}; \
         the CLIP judge's colour words: foreground {judge_fg_ok}/{n}, background {judge_bg_ok}/{n}\n",
        rows.join("\n")
    );
    eprintln!("{report}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/demo-world-report.md", &report);
    // Colours: at most one miss per eight captions, by each judge. Shapes: the floor of what the
    // shipped models draw: 2 to 4 of 16 at seeds 1-3 (9 of 48, the same before and after a change
    // of rounding that moved seed 1 from 4 to 2; weights/demo/README.md); the goal of issue #25 is
    // 14/16 (then this bar becomes `bar`).
    let bar = n - n / 8;
    assert!(
        colours_ok >= bar,
        "colours right on {colours_ok}/{n}\n{report}"
    );
    assert!(shape_ok >= 2, "shape drawn on {shape_ok}/{n}\n{report}");
    assert!(
        judge_fg_ok >= bar,
        "judge: foreground colour right on {judge_fg_ok}/{n}\n{report}"
    );
    assert!(
        judge_bg_ok >= bar,
        "judge: background colour right on {judge_bg_ok}/{n}\n{report}"
    );
}

/// The geometric judge itself: it names the shape of clean world pictures (random colours,
/// shapes, sizes, places and tilts, as the training renders), and refuses copies, scattered
/// specks, an elongated blob and a picture without the foreground colour.
#[test]
fn the_geometric_judge_names_clean_shapes_and_refuses_blobs() {
    let w = world();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        // xorshift64*: a fixed sequence, no dependency
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut wrong = Vec::new();
    for i in 0..60 {
        let f = (rand() * 8.0) as usize;
        let b = (f + 1 + (rand() * 7.0) as usize) % 8;
        let shape = &w.shapes[i % 3];
        let r = 0.17 + rand() * 0.19;
        let at = |u: f64| u * (1.0 - 2.0 * r - 0.04) + r + 0.02;
        let (cx, cy) = (at(rand()), at(rand()));
        let tilt = (rand() * 2.0 - 1.0) * 20f64.to_radians();
        let (fg, bg) = (&w.colours[f], &w.colours[b]);
        let img = shape_judge::render(
            128,
            rgb(&w, &fg.0),
            shape,
            rgb(&w, &bg.0),
            r,
            (cx, cy),
            tilt,
        );
        let v = shape_judge::judge_pixels(&img, &fg.0, shape, &bg.0);
        if !(v.shape_drawn && v.colours_right) {
            wrong.push(format!("{} {shape} on {} (r {r:.2}): {v:?}", fg.0, bg.0));
        }
        // the same picture judged against the other shapes' captions: not drawn
        for other in w.shapes.iter().filter(|s| *s != shape) {
            let v = shape_judge::judge_pixels(&img, &fg.0, other, &bg.0);
            assert!(!v.shape_drawn, "{} {shape} read as {other}: {v:?}", fg.0);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let (red, blue) = (rgb(&w, "red"), rgb(&w, "blue"));
    let overlay = |a: &image::RgbImage, b: &image::RgbImage| {
        image::RgbImage::from_fn(128, 128, |x, y| {
            if *b.get_pixel(x, y) != image::Rgb(blue) {
                *b.get_pixel(x, y)
            } else {
                *a.get_pixel(x, y)
            }
        })
    };
    let circle = |r, at| shape_judge::render(128, red, "circle", blue, r, at, 0.0);
    // three equal circles: the largest blob holds a third of the red
    let two = overlay(&circle(0.13, (0.25, 0.3)), &circle(0.13, (0.72, 0.7)));
    let three = overlay(&two, &circle(0.13, (0.25, 0.75)));
    let v = shape_judge::judge_pixels(&three, "red", "circle", "blue");
    assert!(
        !v.shape_drawn && (0.3..0.36).contains(&v.blob_share),
        "{v:?}"
    );
    // scattered specks
    let mut specks = circle(0.04, (0.1, 0.1));
    for k in 1..9 {
        specks = overlay(
            &specks,
            &circle(0.04, (0.1 + 0.1 * k as f64, 0.15 + 0.08 * k as f64)),
        );
    }
    let v = shape_judge::judge_pixels(&specks, "red", "circle", "blue");
    assert!(!v.shape_drawn, "{v:?}");
    // a long, thin bar (roundness far below any shape's), a hollow ring (solidity)
    let bar = image::RgbImage::from_fn(128, 128, |x, y| {
        image::Rgb(if (20..108).contains(&x) && (60..68).contains(&y) {
            red
        } else {
            blue
        })
    });
    let v = shape_judge::judge_pixels(&bar, "red", "triangle", "blue");
    assert!(v.roundness < 0.15 && v.solidity > 0.9, "{v:?}");
    let ring = image::RgbImage::from_fn(128, 128, |x, y| {
        let d = ((x as f64 - 64.0).powi(2) + (y as f64 - 64.0).powi(2)).sqrt();
        image::Rgb(if (30.0..38.0).contains(&d) { red } else { blue })
    });
    let v = shape_judge::judge_pixels(&ring, "red", "circle", "blue");
    assert!(!v.shape_drawn && v.solidity < 0.5, "{v:?}");
    // no red at all
    let v = shape_judge::judge_pixels(&circle(0.3, (0.5, 0.5)), "green", "circle", "blue");
    assert!(
        !v.shape_drawn && !v.colours_right && v.seen == "none",
        "{v:?}"
    );
}

/// A world picture: one shape of radius `r` (fraction of the side) at the centre, 64x64.
fn draw(path: &Path, fg: [u8; 3], shape: &str, bg: [u8; 3], r: f64) {
    shape_judge::render(64, fg, shape, bg, r, (0.5, 0.5), 0.0)
        .save(path)
        .unwrap();
}

fn rgb(w: &World, name: &str) -> [u8; 3] {
    let c = w.colours.iter().find(|c| c.0 == name).unwrap().1;
    [c[0] as u8, c[1] as u8, c[2] as u8]
}

#[test]
fn demo_clip_classifies_and_searches_world_pictures() {
    let w = world();
    let dir = tmp_path("pictures");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("red", "circle", "blue"),
        ("yellow", "square", "black"),
        ("white", "triangle", "green"),
        ("purple", "circle", "orange"),
    ];
    let mut files = Vec::new();
    for (i, (fg, shape, bg)) in cases.iter().enumerate() {
        let p = dir.join(format!("{i}-{fg}-{shape}-{bg}.png"));
        draw(&p, rgb(&w, fg), shape, rgb(&w, bg), 0.3);
        files.push(p);
    }
    // classify: each picture against every caption of the pictures, plus one-word changes
    let mut labels: Vec<String> = cases.iter().map(|(f, s, b)| caption(f, s, b)).collect();
    // swapped colours: the model must bind colour to shape vs background, not just see two colours
    labels.push(caption("blue", "circle", "red"));
    labels.push(caption("black", "square", "yellow"));
    let o = demo_vqclip()
        .args([
            "classify",
            "--json",
            "--clip",
            "demo-clip",
            "--device",
            "cpu",
        ])
        .args(["--template", "{}", "--labels"])
        .arg(labels.join("|"))
        .args(&files)
        .output()
        .unwrap();
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for (i, (f, s, b)) in cases.iter().enumerate() {
        assert_eq!(v[i]["top"].as_str().unwrap(), caption(f, s, b), "{v}");
    }
    // search: the text query finds its picture first
    for (f, s, b) in &cases {
        let o = demo_vqclip()
            .arg("search")
            .arg(&dir)
            .args([
                "--clip",
                "demo-clip",
                "--device",
                "cpu",
                "--json",
                "--top",
                "1",
            ])
            .args(["--query", &caption(f, s, b)])
            .output()
            .unwrap();
        ok(&o);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let top = v[0]["path"].as_str().unwrap();
        assert!(
            top.ends_with(&format!("-{f}-{s}-{b}.png")),
            "{f} {s} {b}: {v}"
        );
    }
}

#[test]
fn demo_preset_is_listed_and_uses_the_bundled_models() {
    let o = demo_vqclip().args(["presets", "list"]).output().unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("demo"));
    let out = tmp_path("dry");
    let o = demo_vqclip()
        .args([
            "generate",
            "a red circle on a blue background",
            "--preset",
            "demo",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--dry-run")
        .output()
        .unwrap();
    ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("weights/demo/demo_vqgan.ckpt"), "{text}");
    assert!(text.contains("weights/demo/demo_clip.pt"), "{text}");
    assert!(!out.exists(), "--dry-run wrote {}", out.display());
    // weights: verified by sha256 and size, "fetched" without a network
    let o = demo_vqclip()
        .args(["weights", "verify", "demo-vqgan", "demo-clip"])
        .output()
        .unwrap();
    ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("sha256 ok").count(), 2, "{text}");
    let o = demo_vqclip()
        .args(["weights", "fetch", "demo-clip"])
        .output()
        .unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("demo_clip.pt"));
    // Found from anywhere: a weights directory of the user's own falls back to the bundled files.
    let elsewhere = tmp_path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let o = demo_vqclip()
        .env("VQCLIP_WEIGHTS", &elsewhere)
        .current_dir(&elsewhere)
        .args([
            "generate",
            "a red circle on a blue background",
            "--preset",
            "demo",
        ])
        .args(["--out", "x", "--dry-run"])
        .output()
        .unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("weights/demo/demo_clip.pt"));
}

#[test]
fn damaged_demo_files_and_missing_weights_give_clear_errors() {
    let dir = tmp_path("damaged");
    std::fs::create_dir_all(dir.join("demo")).unwrap();
    let good = std::fs::read("weights/demo/demo_clip.pt").unwrap();
    for name in ["demo_vqgan.ckpt", "demo_vqgan.yaml"] {
        std::fs::copy(
            Path::new("weights/demo").join(name),
            dir.join("demo").join(name),
        )
        .unwrap();
    }
    // Truncated: verify says so, generate fails with exit 1 and one line.
    std::fs::write(dir.join("demo/demo_clip.pt"), &good[..good.len() * 6 / 10]).unwrap();
    let o = demo_vqclip()
        .env("VQCLIP_WEIGHTS", &dir)
        .args(["weights", "verify", "demo-clip"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("BAD"));
    let o = demo_vqclip()
        .env("VQCLIP_WEIGHTS", &dir)
        .args([
            "generate",
            "a red circle on a blue background",
            "--preset",
            "demo",
        ])
        .args(["--quiet", "--out"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("demo_clip.pt"), "{e}");
    // Same size, one byte changed: only the checksum can tell, and verify does.
    let mut flipped = good.clone();
    let k = flipped.len() / 2;
    flipped[k] ^= 0x40;
    std::fs::write(dir.join("demo/demo_clip.pt"), &flipped).unwrap();
    let o = demo_vqclip()
        .env("VQCLIP_WEIGHTS", &dir)
        .args(["weights", "verify", "demo-clip"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sha256 mismatch"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The default models missing: exit 1, the usual line, and the demo preset as a hint.
    let empty = tmp_path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = demo_vqclip()
        .env("VQCLIP_WEIGHTS", &empty)
        .args(["generate", "a lighthouse at dusk", "--quiet", "--out"])
        .arg(empty.join("run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.lines().next().unwrap().contains("not found"), "{e}");
    assert!(e.contains("--preset demo"), "{e}");
}

#[test]
fn every_generate_feature_works_with_the_demo_preset() {
    let out = tmp_path("features");
    // story phases, palette, frames, two variations, a video
    let o = demo_vqclip()
        .args([
            "generate",
            "a red circle on a blue background ^ a yellow square on a black background",
        ])
        .args(["--preset", "demo", "--steps", "6", "--save-every", "3"])
        .args([
            "--size",
            "64x64",
            "--palette",
            "pico8",
            "--count",
            "2",
            "--seed",
            "5",
        ])
        .args(["--device", "cpu", "--quiet", "--video", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    for seed in ["seed-5", "seed-6"] {
        let d = out.join(seed);
        assert!(d.join("final.png").is_file(), "{}", d.display());
        assert!(d.join("frames/000003.png").is_file());
        assert!(
            d.join("video.mp4").is_file() || d.join("video.gif").is_file(),
            "no video in {}",
            d.display()
        );
    }
    // resume with the preset's run: continue seed-5 to 8 steps
    let o = demo_vqclip()
        .args(["generate", "--quiet", "--steps", "8", "--resume"])
        .arg(out.join("seed-5"))
        .output()
        .unwrap();
    ok(&o);
    let log = std::fs::read_to_string(out.join("seed-5/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 8);
}
