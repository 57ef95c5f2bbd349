//! Generator features beyond the basic loop, end to end on the tiny fixtures (CPU): cutout
//! batches, story phases, seamless tiles, `--video`, and a non-finite loss.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, VQGAN, log, ok, pixels, resume, same_file, tmp_path, vqclip};
use std::path::{Path, PathBuf};
use std::process::Output;

fn run(prompt: &str, out: &Path, extra: &[&str]) -> Output {
    vqclip()
        .args(["generate", prompt, "--vqgan", VQGAN, "--clip", CLIP])
        .args(["--size", "32x32", "--cutouts", "4", "--device", "cpu"])
        .args(["--seed", "11", "--quiet", "--precision", "f32", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn column(log: &[serde_json::Value], key: &str, i: usize) -> Vec<f64> {
    log.iter().map(|r| r[key][i].as_f64().unwrap()).collect()
}

/// With pooled cutouts and no augments every cutout is the same view, so two batches of 4 must
/// give exactly the loss and the image of one batch of 4 (the mean of equal halves is exact).
/// With augments, two batches see different draws and the run differs.
#[test]
fn batches_average_and_match_one_batch_when_views_are_equal() {
    let same = [
        "--steps",
        "4",
        "--cut-method",
        "pooled",
        "--augments",
        "none",
    ];
    let (a, b) = (tmp_path("b1"), tmp_path("b2"));
    ok(&run("a red apple", &a, &same));
    ok(&run(
        "a red apple",
        &b,
        &[&same[..], &["--batches", "2"]].concat(),
    ));
    let (la, lb) = (log(&a), log(&b));
    assert_eq!(la.len(), 4);
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x["loss"], y["loss"], "step {}", x["step"]);
    }
    assert!(
        pixels(&a.join("final.png")) == pixels(&b.join("final.png")),
        "the images differ"
    );
    let run_toml = std::fs::read_to_string(b.join("run.toml")).unwrap();
    assert!(run_toml.contains("batches = 2"), "{run_toml}");

    let (c, d) = (tmp_path("b3"), tmp_path("b4"));
    ok(&run("a red apple", &c, &["--steps", "2"]));
    ok(&run("a red apple", &d, &["--steps", "2", "--batches", "3"]));
    assert_ne!(log(&c)[0]["loss"], log(&d)[0]["loss"]);
}

/// `a ^ b`: phase 0 for the first half of the steps, then phase 1; a prompt outside its phase
/// adds nothing to the loss (its logged term is 0), and the phases survive run.toml.
#[test]
fn story_phases_take_turns() {
    let out = tmp_path("story");
    ok(&run(
        "a red apple | a tree:0.5 ^ a blue sky",
        &out,
        &["--steps", "6", "--save-every", "0"],
    ));
    let l = log(&out);
    assert_eq!(l.len(), 6);
    let (apple, tree, sky) = (
        column(&l, "prompts", 0),
        column(&l, "prompts", 1),
        column(&l, "prompts", 2),
    );
    for s in 0..6 {
        let first_half = s < 3;
        assert_eq!(apple[s] != 0.0, first_half, "step {}: {apple:?}", s + 1);
        assert_eq!(tree[s] != 0.0, first_half, "step {}: {tree:?}", s + 1);
        assert_eq!(sky[s] != 0.0, !first_half, "step {}: {sky:?}", s + 1);
        let sum = apple[s] + tree[s] + sky[s];
        let total = l[s]["loss"].as_f64().unwrap();
        assert!(
            (sum - total).abs() < 1e-5,
            "step {}: {sum} vs {total}",
            s + 1
        );
    }
    let run_toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(
        run_toml.contains("prompts = \"a red apple | a tree:0.5 ^ a blue sky\""),
        "{run_toml}"
    );

    // --change-prompt-every 2: phases 0,0,1,1,0,0; repeating from the PNG gives the same run.
    let every = tmp_path("story-every");
    ok(&run(
        "a red apple ^ a blue sky",
        &every,
        &[
            "--steps",
            "6",
            "--save-every",
            "0",
            "--change-prompt-every",
            "2",
        ],
    ));
    let l = log(&every);
    let active: Vec<bool> = column(&l, "prompts", 0).iter().map(|v| *v != 0.0).collect();
    assert_eq!(active, [true, true, false, false, true, true]);
    let again = tmp_path("story-again");
    let png = every.join("final.png");
    let o = vqclip()
        .args(["generate", "--quiet", "--device", "cpu", "--config"])
        .arg(&png)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    ok(&o);
    assert!(same_file(&png, &again.join("final.png")), "repeat differs");
}

#[test]
fn story_and_batches_errors_exit_2() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("a ^ ", &[], "phase 2 is empty"),
        (
            "a cat",
            &["--change-prompt-every", "5"],
            "needs story phases",
        ),
        (
            "a ^ b",
            &["--change-prompt-every", "-1"],
            "--change-prompt-every",
        ),
        ("a cat", &["--batches", "0"], "--batches"),
    ];
    for (prompt, extra, needle) in cases {
        let out = tmp_path("bad");
        let o = run(prompt, &out, &[&["--steps", "1"], *extra].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{prompt} {extra:?}: {err}");
        assert!(err.contains(needle), "{prompt} {extra:?}: {err}");
        assert!(!out.exists(), "a refused run creates nothing");
    }
}

/// `--tile` runs, is recorded, cannot be switched on resume, and resumes byte-identically.
#[test]
fn tile_runs_records_and_resumes_exactly() {
    let straight = tmp_path("tile");
    ok(&run("a brick wall", &straight, &["--steps", "4", "--tile"]));
    let run_toml = std::fs::read_to_string(straight.join("run.toml")).unwrap();
    assert!(run_toml.contains("tile = true"), "{run_toml}");
    // tiled.png: the final image 2x2.
    let fin = image::open(straight.join("final.png")).unwrap().to_rgb8();
    let tiled = image::open(straight.join("tiled.png")).unwrap().to_rgb8();
    assert_eq!(tiled.dimensions(), (64, 64));
    for (x, y) in [(0, 0), (31, 5), (40, 40), (63, 63)] {
        assert_eq!(tiled.get_pixel(x, y), fin.get_pixel(x % 32, y % 32));
    }

    let plain = tmp_path("tile-off");
    ok(&run("a brick wall", &plain, &["--steps", "4"]));
    assert!(pixels(&straight.join("final.png")) != pixels(&plain.join("final.png")));

    let split = tmp_path("tile-split");
    ok(&run("a brick wall", &split, &["--steps", "2", "--tile"]));
    let o = resume(&split, &["--steps", "4", "--tile"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot change --tile"));
    ok(&resume(&split, &["--steps", "4"]));
    assert!(
        same_file(&straight.join("final.png"), &split.join("final.png")),
        "resumed tile run differs from the straight run"
    );
}

/// `generate --video` ends with a video of the frames beside them (a GIF when ffmpeg is absent).
#[test]
fn generate_video_flag() {
    let out = tmp_path("video");
    let empty_path = tmp_path("video-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let o = vqclip()
        .env("PATH", &empty_path)
        .args(["generate", "a red apple", "--vqgan", VQGAN, "--clip", CLIP])
        .args([
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--device",
            "cpu",
            "--steps",
            "4",
        ])
        .args(["--save-every", "2", "--quiet", "--video", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].ends_with("video.gif"), "{stdout}");
    let file = std::io::BufReader::new(std::fs::File::open(out.join("video.gif")).unwrap());
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    // frames/000002.png and final.png (step 4 is the final image, not also a frame).
    assert_eq!(frames.len(), 2);
}

/// A loss that overflows f32 stops the run with exit 1 and a one-line message naming the step,
/// and no image of the broken state is written.
#[test]
fn non_finite_loss_stops_with_exit_1() {
    let out = tmp_path("nan");
    let o = run(
        "a red apple:1e39",
        &out,
        &["--steps", "3", "--save-every", "1"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("NaN/infinite at step 1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.join("final.png").exists());
    assert!(!out.join("frames").join("000001.png").exists());
}

/// Zoom video: a frame before each move, the move changes the run, and a run stopped exactly at a
/// zoom step and resumed ends byte-identical to the straight run (the checkpoint holds the moved
/// state and a fresh optimizer).
#[test]
fn zoom_moves_saves_frames_and_resumes_exactly() {
    let zoom = [
        "--zoom-every",
        "2",
        "--zoom-scale",
        "1.25",
        "--zoom-shift",
        "2,-1",
        "--zoom-rotate",
        "5",
        "--save-every",
        "0",
    ];
    let straight = tmp_path("zoom");
    ok(&run(
        "a spiral galaxy",
        &straight,
        &[&["--steps", "6"], &zoom[..]].concat(),
    ));
    let frames: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(straight.join("frames"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(frames, ["000002.png", "000004.png"]);
    let run_toml = std::fs::read_to_string(straight.join("run.toml")).unwrap();
    assert!(
        run_toml.contains("zoom-every = 2") && run_toml.contains("zoom-shift = [2.0, -1.0]"),
        "{run_toml}"
    );

    let still = tmp_path("zoom-off");
    ok(&run(
        "a spiral galaxy",
        &still,
        &["--steps", "6", "--save-every", "0"],
    ));
    assert!(pixels(&straight.join("final.png")) != pixels(&still.join("final.png")));

    let split = tmp_path("zoom-split");
    ok(&run(
        "a spiral galaxy",
        &split,
        &[&["--steps", "4"], &zoom[..]].concat(),
    ));
    let o = resume(&split, &["--steps", "6"]);
    ok(&o);
    assert!(
        same_file(&straight.join("final.png"), &split.join("final.png")),
        "resumed zoom run differs from the straight run"
    );
}

#[test]
fn zoom_settings_are_validated() {
    let cases: &[(&[&str], &str)] = &[
        (&["--zoom-every", "-1"], "--zoom-every"),
        (&["--zoom-every", "2", "--zoom-scale", "3"], "--zoom-scale"),
        (&["--zoom-every", "2", "--zoom-shift", "1"], "--zoom-shift"),
        (
            &["--zoom-every", "2", "--zoom-shift", "40,0"],
            "--zoom-shift",
        ),
        (
            &["--zoom-every", "2", "--zoom-rotate", "400"],
            "--zoom-rotate",
        ),
        (&["--zoom-every", "2", "--zoom-start", "-3"], "--zoom-start"),
    ];
    for (extra, needle) in cases {
        let out = tmp_path("zoom-bad");
        let o = run("a cat", &out, &[&["--steps", "1"], *extra].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

/// A decoder-only VQGAN file can generate but not zoom (the move needs the encoder): exit 2
/// before any work, naming the file.
#[test]
fn zoom_needs_the_encoder() {
    let dir = tmp_path("zoom-dec");
    std::fs::create_dir_all(&dir).unwrap();
    let dec = dir.join("dec.safetensors");
    let kept: Vec<(String, tch::Tensor)> =
        tch::Tensor::read_safetensors("tests/fixtures/vqgan_tiny.safetensors")
            .unwrap()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("encoder.") && !k.starts_with("quant_conv."))
            .collect();
    tch::Tensor::write_safetensors(&kept, &dec).unwrap();
    let out = dir.join("run");
    let o = vqclip()
        .args(["generate", "a cat", "--clip", CLIP, "--vqgan"])
        .arg(&dec)
        .args([
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--device",
            "cpu",
            "--steps",
            "2",
        ])
        .args([
            "--quiet",
            "--init",
            "gradient",
            "--zoom-every",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("needs a VQGAN with its encoder") && err.contains("dec.safetensors"),
        "{err}"
    );
}

/// Noise prompts: alone they are a valid run; the logged term scales with the weight (same seed,
/// same cutouts at step 1, so exactly 2x and -1x); a word seed works and is recorded as a number.
#[test]
fn noise_prompts_weight_and_record() {
    let first_term = |spec: &str| -> (f64, PathBuf) {
        let out = tmp_path(&format!("noise-{}", spec.replace(':', "_")));
        let o = vqclip()
            .args([
                "generate",
                "--vqgan",
                VQGAN,
                "--clip",
                CLIP,
                "--noise-prompt",
                spec,
            ])
            .args([
                "--size",
                "32x32",
                "--cutouts",
                "4",
                "--device",
                "cpu",
                "--steps",
                "1",
            ])
            .args(["--seed", "3", "--quiet", "--precision", "f32", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        ok(&o);
        let l = log(&out);
        assert_eq!(l[0]["prompts"].as_array().unwrap().len(), 0);
        (column(&l, "noise_prompts", 0)[0], out)
    };
    let (one, out) = first_term("42");
    let (two, _) = first_term("42:2");
    let (neg, _) = first_term("42:-1");
    let (other, _) = first_term("43");
    assert!(one > 0.0);
    assert_eq!(two, 2.0 * one);
    assert_eq!(neg, -one);
    assert_ne!(other, one, "another seed is another direction");
    let run_toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(
        run_toml.contains("noise-prompts = [\"42:1\"]"),
        "{run_toml}"
    );
    let (_, word) = first_term("sunrise:0.5");
    let run_toml = std::fs::read_to_string(word.join("run.toml")).unwrap();
    let seed = vqclip::settings::seed_from_text("sunrise").unwrap();
    assert!(
        run_toml.contains(&format!("noise-prompts = [\"{seed}:0.5\"]")),
        "{run_toml}"
    );

    let bad = tmp_path("noise-bad");
    let o = run("a cat", &bad, &["--noise-prompt", "7:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--noise-prompt"));
}

/// `--count 2 --seed 5`: seed-5/ and seed-6/ inside the run directory, each exactly the single run
/// with that seed; refused with --resume or a bad count, and nothing starts when one variant's
/// directory already holds a result.
#[test]
fn count_makes_one_run_per_seed() {
    // `run` passes --seed 11; a later --seed wins (a flag given twice takes its last value).
    let out = tmp_path("count");
    let o = run(
        "a red apple",
        &out,
        &["--steps", "2", "--seed", "5", "--count", "2"],
    );
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 2, "{stdout}");
    assert!(printed[1].ends_with("seed-6/final.png"), "{stdout}");
    let single = tmp_path("count-single");
    ok(&run(
        "a red apple",
        &single,
        &["--steps", "2", "--seed", "6"],
    ));
    assert!(same_file(
        &out.join("seed-6").join("final.png"),
        &single.join("final.png")
    ));
    assert!(pixels(&out.join("seed-5").join("final.png")) != pixels(&single.join("final.png")));

    // Again into the same directory: seed-5 holds a result, so nothing runs (exit 2).
    let modified = || {
        std::fs::metadata(out.join("seed-6").join("final.png"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = modified();
    let o = run(
        "a red apple",
        &out,
        &["--steps", "2", "--seed", "4", "--count", "3"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.join("seed-4").join("final.png").exists());
    assert_eq!(before, modified());

    for extra in [
        &["--count", "0"][..],
        &["--count", "2", "--resume", "x"][..],
    ] {
        let o = run("a cat", &tmp_path("count-bad"), extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--count"),
            "{extra:?}"
        );
    }
}

/// Without --quiet a run ends with one summary line on stderr (steps of this invocation, time,
/// speed, device, peak memory); with --quiet stderr stays empty.
#[test]
fn summary_line_unless_quiet() {
    let loud = |out: &Path, extra: &[&str]| {
        vqclip()
            .args(["generate", "a red apple", "--vqgan", VQGAN, "--clip", CLIP])
            .args(["--size", "32x32", "--cutouts", "2", "--device", "cpu"])
            .args(["--precision", "f32"])
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = tmp_path("summary");
    let o = loud(&out, &["--steps", "3"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with("done: 3 steps in ")
            && last.contains(" it/s) on cpu [vqgan f32, clip_tiny.pt f32], peak memory "),
        "{err}"
    );
    let o = vqclip()
        .args(["generate", "--steps", "5", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("done: 2 steps in "), "{err}");
    let quiet = tmp_path("summary-quiet");
    let o = loud(&quiet, &["--steps", "2", "--quiet"]);
    ok(&o);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The other optimizers keep their whole state in the checkpoint: stopped at step 2 and resumed,
/// a run ends byte-identical to the straight run, and the loss moves.
#[test]
fn other_optimizers_resume_exactly() {
    for opt in ["adamax", "adagrad", "rmsprop"] {
        let straight = tmp_path(&format!("opt-{opt}"));
        ok(&run(
            "a red apple",
            &straight,
            &["--steps", "4", "--optimizer", opt],
        ));
        let l = log(&straight);
        assert!(l[0]["loss"] != l[3]["loss"], "{opt}: loss did not move");
        let split = tmp_path(&format!("opt-{opt}-split"));
        ok(&run(
            "a red apple",
            &split,
            &["--steps", "2", "--optimizer", opt],
        ));
        let o = resume(&split, &["--steps", "4"]);
        ok(&o);
        assert!(
            same_file(&straight.join("final.png"), &split.join("final.png")),
            "{opt}: resumed run differs"
        );
    }
}

/// `--palette gameboy`: the saved images use only the four Game Boy greens, the pull toward them is
/// logged, the spec is recorded; an unknown colour is a usage error.
#[test]
fn palette_limits_the_colours() {
    let out = tmp_path("palette");
    ok(&run(
        "a red apple",
        &out,
        &["--steps", "4", "--save-every", "2", "--palette", "gameboy"],
    ));
    let greens: Vec<[u8; 3]> = vec![[15, 56, 15], [48, 98, 48], [139, 172, 15], [155, 188, 15]];
    for png in [out.join("final.png"), out.join("frames").join("000002.png")] {
        let img = image::open(&png).unwrap().to_rgb8();
        let mut seen: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        seen.sort();
        seen.dedup();
        assert!(
            seen.iter().all(|c| greens.contains(c)),
            "{}: {seen:?}",
            png.display()
        );
    }
    let l = log(&out);
    assert!(l.iter().all(|r| r["palette"].as_f64().unwrap() > 0.0));
    let total: f64 = l[0]["loss"].as_f64().unwrap();
    let parts: f64 = column(&l, "prompts", 0)[0] + l[0]["palette"].as_f64().unwrap();
    assert!((total - parts).abs() < 1e-5, "{total} vs {parts}");
    let run_toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(run_toml.contains("palette = \"gameboy\""), "{run_toml}");

    let bad = tmp_path("palette-bad");
    let o = run("a cat", &bad, &["--palette", "red, mauve"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--palette") && err.contains("mauve"), "{err}");
}

/// `--style-frames DIR`: one run per image in name order, same seed, results numbered in
/// RUN_DIR/frames/; a second invocation skips finished frames; --video makes the sequence into a
/// video without holding the last frame; bad combinations and unreadable frames fail first.
#[test]
fn style_frames_restyles_a_sequence() {
    let src = tmp_path("style-src");
    std::fs::create_dir_all(&src).unwrap();
    let solid = |rgb: [u8; 3]| image::RgbImage::from_pixel(40, 36, image::Rgb(rgb));
    solid([200, 30, 30]).save(src.join("b.png")).unwrap();
    solid([30, 200, 30]).save(src.join("a.png")).unwrap();
    solid([30, 30, 200]).save(src.join("c.jpg")).unwrap();
    std::fs::write(src.join("notes.txt"), "not a frame").unwrap();
    let out = tmp_path("style-out");
    let style = |extra: &[&str], path: Option<&Path>| {
        let mut c = vqclip();
        if let Some(p) = path {
            c.env("PATH", p);
        }
        c.args([
            "generate",
            "an oil painting",
            "--vqgan",
            VQGAN,
            "--clip",
            CLIP,
        ])
        .args([
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--device",
            "cpu",
            "--steps",
            "2",
        ])
        .args(["--quiet", "--style-frames"])
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap()
    };
    ok(&style(&[], None));
    let frames = out.join("frames");
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&frames)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names, ["000001.png", "000002.png", "000003.png"]);
    let runs = out.join("runs");
    let mut seeds = Vec::new();
    for (i, name) in ["000001-a", "000002-b", "000003-c"].iter().enumerate() {
        let toml = std::fs::read_to_string(runs.join(name).join("run.toml")).unwrap();
        let src_name = ["a.png", "b.png", "c.jpg"][i];
        assert!(toml.contains(src_name), "{name}: {toml}");
        let seed_line = toml
            .lines()
            .find(|l| l.starts_with("seed = "))
            .unwrap()
            .to_string();
        seeds.push(seed_line);
        assert!(same_file(
            &runs.join(name).join("final.png"),
            &frames.join(format!("{:06}.png", i + 1))
        ));
    }
    assert!(seeds.windows(2).all(|w| w[0] == w[1]), "{seeds:?}");

    // Again: nothing to do. Then with frame 2 removed: only frame 2 is made again.
    let mtime = |n: &str| {
        std::fs::metadata(frames.join(n))
            .unwrap()
            .modified()
            .unwrap()
    };
    let (t1, t3) = (mtime("000001.png"), mtime("000003.png"));
    ok(&style(&[], None));
    assert_eq!((t1, t3), (mtime("000001.png"), mtime("000003.png")));
    std::fs::remove_file(frames.join("000002.png")).unwrap();
    let empty_path = tmp_path("style-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    ok(&style(&["--video"], Some(&empty_path)));
    assert!(frames.join("000002.png").exists());
    assert_eq!((t1, t3), (mtime("000001.png"), mtime("000003.png")));
    let file = std::io::BufReader::new(std::fs::File::open(out.join("video.gif")).unwrap());
    use image::AnimationDecoder;
    let gif = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(gif.len(), 3);
    let delays: Vec<_> = gif.iter().map(|f| f.delay().numer_denom_ms()).collect();
    assert!(delays.windows(2).all(|w| w[0] == w[1]), "{delays:?}");

    // Refusals.
    let o = style(&["--init-image", "x.png"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--style-frames cannot be combined with --init-image")
    );
    std::fs::write(src.join("d.png"), "not a png").unwrap();
    let fresh = tmp_path("style-bad");
    let o = vqclip()
        .args([
            "generate",
            "x",
            "--vqgan",
            VQGAN,
            "--clip",
            CLIP,
            "--quiet",
            "--style-frames",
        ])
        .arg(&src)
        .arg("--out")
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("d.png"));
    assert!(
        !fresh.exists(),
        "nothing is started before every frame is readable"
    );
    let empty = tmp_path("style-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = vqclip()
        .args(["generate", "x", "--quiet", "--style-frames"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no images"));
}

/// CLIP models of the same input resolution share one cutout batch (pixray's cutoutsTable): the
/// same model listed twice scores the same cutouts, so its step-1 prompt term is twice the single
/// model's (separate cutouts would give two different terms).
#[test]
fn models_of_one_resolution_share_cutouts() {
    let first_term = |clip: &str, name: &str| {
        let out = tmp_path(name);
        ok(&run(
            "a red apple",
            &out,
            &[
                "--steps",
                "1",
                "--clip",
                clip,
                "--image-prompt",
                "tests/fixtures/recon_input.png",
            ],
        ));
        let l = log(&out);
        (
            column(&l, "prompts", 0)[0],
            column(&l, "image_prompts", 0)[0],
        )
    };
    let (one, one_ip) = first_term(CLIP, "share-1");
    let (two, two_ip) = first_term(&format!("{CLIP},{CLIP}"), "share-2");
    // Equal up to the f32 rounding of the sum and the log's decimal form; two different cutout
    // batches differ by far more (the augments move each term by ~1e-3 or more).
    assert!((two / (2.0 * one) - 1.0).abs() < 1e-6, "{two} vs 2 x {one}");
    assert!(
        (two_ip / (2.0 * one_ip) - 1.0).abs() < 1e-6,
        "{two_ip} vs 2 x {one_ip}"
    );
}
