//! The demo world end to end: `generate --preset demo` on captions whose (colour, shape,
//! background) combination the demo CLIP never saw in training must draw that caption.
//!
//! Two judges, neither of them the model that steered the picture:
//! - colour statistics (model-free): every pixel goes to its nearest named colour; the background
//!   colour must be the most common one and cover a clear share, the foreground colour the most
//!   common of the rest and at least 4 % of the image;
//! - a second CLIP (tests/fixtures/demo_judge_clip.pt: other seed, other widths, never used to
//!   generate) must pick the right caption out of those that differ in one word (foreground colour,
//!   shape, background colour), through `vqclip classify`.
//!
//! The same runs, stopped halfway and resumed, must end in the same image (byte-exact on CPU).
//! The table goes to stderr and to target/demo-world-report.md.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{ok, stderr, tmp_path};
use serde_json::Value;
use std::collections::BTreeMap;
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

/// Share of the image's pixels nearest to each named colour.
fn colour_shares(png: &Path, colours: &[(String, [f64; 3])]) -> BTreeMap<String, f64> {
    let img = image::open(png).unwrap().to_rgb8();
    let mut counts = vec![0usize; colours.len()];
    for p in img.pixels() {
        let d = |c: &[f64; 3]| (0..3).map(|i| (p.0[i] as f64 - c[i]).powi(2)).sum::<f64>();
        let best = (0..colours.len())
            .min_by(|&a, &b| d(&colours[a].1).total_cmp(&d(&colours[b].1)))
            .unwrap();
        counts[best] += 1;
    }
    let n = (img.width() * img.height()) as f64;
    colours
        .iter()
        .zip(counts)
        .map(|((name, _), k)| (name.clone(), k as f64 / n))
        .collect()
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
    // Every other held-out combination (8 of 16) keeps the test near 6 minutes on 2 cores.
    let held: Vec<_> = w.held_out.iter().step_by(2).collect();
    let n = held.len();
    assert!(
        n >= 8,
        "world.json holds out {} combinations",
        w.held_out.len()
    );
    let (mut fg_ok, mut bg_ok, mut shape_ok, mut all_ok) = (0, 0, 0, 0);
    let (mut judge_fg_ok, mut judge_bg_ok) = (0, 0);
    let mut rows = Vec::new();
    for (i, (fg, shape, bg)) in held.into_iter().enumerate() {
        let cap = caption(fg, shape, bg);
        let straight = tmp_path(&format!("{i}-straight"));
        ok(&generate(&cap, &straight, &[]));
        let png = straight.join("final.png");

        // Colour statistics.
        let shares = colour_shares(&png, &w.colours);
        let mut ranked: Vec<(&String, f64)> = shares.iter().map(|(k, v)| (k, *v)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let bg_share = shares[bg];
        let fg_share = shares[fg];
        let top_other = ranked
            .iter()
            .find(|(k, _)| *k != bg)
            .map(|(k, _)| k.as_str());
        let bg_right = ranked[0].0 == bg && bg_share >= 0.35;
        let fg_right = top_other == Some(fg.as_str()) && fg_share >= 0.04;

        // The independent judge: one word changed at a time.
        let alts = |f: &dyn Fn(&str) -> String, options: &[String], skip: &str| -> Vec<String> {
            options
                .iter()
                .filter(|o| o.as_str() != skip)
                .map(|o| f(o))
                .collect()
        };
        let shape_pick = judge(&png, &alts(&|s| caption(fg, s, bg), &w.shapes, ""));
        let judge_fg = judge(&png, &alts(&|c| caption(c, shape, bg), &names, bg));
        let judge_bg = judge(&png, &alts(&|c| caption(fg, shape, c), &names, fg));
        let shape_right = shape_pick == cap;

        // Stopped halfway, resumed: the same image.
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

        fg_ok += fg_right as usize;
        bg_ok += bg_right as usize;
        shape_ok += shape_right as usize;
        judge_fg_ok += (judge_fg == cap) as usize;
        judge_bg_ok += (judge_bg == cap) as usize;
        all_ok += (fg_right && bg_right && shape_right) as usize;
        let mark = |b: bool| if b { "yes" } else { "no" };
        rows.push(format!(
            "| {cap} | {:.0} % {} | {:.0} % {} | {} {} | {} / {} |",
            fg_share * 100.0,
            mark(fg_right),
            bg_share * 100.0,
            mark(bg_right),
            shape_pick.split(' ').nth(2).unwrap_or("?"),
            mark(shape_right),
            mark(judge_fg == cap),
            mark(judge_bg == cap),
        ));
        let _ = std::fs::remove_dir_all(&part);
        let _ = std::fs::remove_dir_all(&straight);
    }
    let report = format!(
        "Held-out captions, `generate --preset demo --seed {SEED}` (CPU):\n\n\
         | caption | foreground colour share, right | background colour share, right | judge's shape, right | judge: colour words right (fg / bg) |\n\
         |---|---|---|---|---|\n{}\n\n\
         foreground colour right {fg_ok}/{n}, background colour right {bg_ok}/{n}, shape right {shape_ok}/{n} (judge), all three {all_ok}/{n}; \
         the judge's colour words: foreground {judge_fg_ok}/{n}, background {judge_bg_ok}/{n}\n",
        rows.join("\n")
    );
    eprintln!("{report}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/demo-world-report.md", &report);
    // The bars: colours right on nearly all, by both judges. The shape is reported, not asserted:
    // the demo CLIPs (the steering one and the judge alike) tell held-out shapes apart only at
    // chance level (weights/demo/training.json: 26/64 and 27/64 on clean renders), so neither
    // the loop nor the judge can be held to a shape bar yet (see weights/demo/README.md).
    assert!(
        fg_ok + 1 >= n,
        "foreground colour right on {fg_ok}/{n}\n{report}"
    );
    assert!(
        bg_ok + 1 >= n,
        "background colour right on {bg_ok}/{n}\n{report}"
    );
    assert!(
        judge_fg_ok + 1 >= n,
        "judge: foreground colour right on {judge_fg_ok}/{n}\n{report}"
    );
    assert!(
        judge_bg_ok + 1 >= n,
        "judge: background colour right on {judge_bg_ok}/{n}\n{report}"
    );
}

/// A world picture drawn here (the training renders' geometry, without anti-aliasing): one shape
/// of radius `r` (fraction of the side) at the centre.
fn draw(path: &Path, fg: [u8; 3], shape: &str, bg: [u8; 3], r: f64) {
    let n = 64u32;
    let img = image::RgbImage::from_fn(n, n, |x, y| {
        let u = (x as f64 + 0.5) / n as f64 - 0.5;
        let v = (y as f64 + 0.5) / n as f64 - 0.5;
        let inside = match shape {
            "circle" => u * u + v * v < r * r,
            "square" => u.abs() < 0.85 * r && v.abs() < 0.85 * r,
            _ => {
                // equilateral, apex up, circumradius 1.25 r (image y points down)
                let big_r = 1.25 * r;
                (0..3).all(|k| {
                    let a = (90.0 + 120.0 * k as f64).to_radians();
                    u * a.cos() + v * a.sin() < 0.5 * big_r
                })
            }
        };
        image::Rgb(if inside { fg } else { bg })
    });
    img.save(path).unwrap();
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
