//! Pixray's units (`20i`, `20 iterations`, `50%`, `50 percent`) on the settings that count steps:
//! the same run.toml as the bare numbers they stand for, and runs that save and drop where they
//! say.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, fails, log, ok, tmp_dir, vqclip};
use vqclip::settings::{PartialSettings, Settings};

fn resolve(extra: &str) -> Settings {
    PartialSettings::from_toml(
        &format!("prompts = [\"x\"]\nseed = 1\nsteps = 200\n{extra}\n"),
        std::path::Path::new("test.toml"),
    )
    .unwrap()
    .resolve()
    .unwrap()
}

#[test]
fn units_resolve_to_the_bare_numbers() {
    let bare = resolve("save-every = 25\nlr-drops = \"50\"");
    for (save, drops) in [
        ("\"25i\"", "\"50%\""),
        ("\"25 iterations\"", "\"50 percent\""),
        ("\"12.5%\"", "\"100i\""),
        ("\"25 iter\"", "\"50p\""),
        ("\"25\"", "50"),
    ] {
        let s = resolve(&format!("save-every = {save}\nlr-drops = {drops}"));
        assert_eq!(s.save_every, 25, "{save}");
        assert_eq!(s.lr_drops, vec![50.0], "{drops}");
        assert_eq!(s.lr_drop_steps(), vec![100]);
        // the run.toml is byte for byte the bare numbers'
        assert_eq!(
            s.to_toml().unwrap(),
            bare.to_toml().unwrap(),
            "{save} {drops}"
        );
    }
    let s = resolve("lr-drops = \"30i, 75%\"");
    assert_eq!(s.lr_drop_steps(), vec![30, 150]);
}

fn run(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    vqclip()
        .args([
            "generate",
            "a red apple",
            "--drawer",
            "fast-pixel",
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
            "--quiet",
        ])
        .args(["--seed", "3", "--steps", "8", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn runs_save_and_drop_where_the_units_say() {
    let dir = tmp_dir("units");
    let a = dir.join("a");
    ok(&run(&a, &["--save-every", "25%", "--lr-drops", "6i"]));
    let frames: Vec<String> = std::fs::read_dir(a.join("frames"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    let mut frames = frames;
    frames.sort();
    assert_eq!(frames, ["000002.png", "000004.png", "000006.png"]); // step 8 is final.png
    let lr: Vec<f64> = log(&a).iter().map(|r| r["lr"].as_f64().unwrap()).collect();
    assert_eq!(lr[4], 0.2);
    assert!((lr[5] - 0.02).abs() < 1e-12, "{lr:?}");
    // the same run with bare numbers: the same image
    let b = dir.join("b");
    ok(&run(&b, &["--save-every", "2", "--lr-drops", "75"]));
    assert!(common::same_file(
        &a.join("final.png"),
        &b.join("final.png")
    ));
    for (args, needle) in [
        (
            vec!["--save-every", "2 steps"],
            "--save-every: invalid value '2 steps'",
        ),
        (vec!["--lr-drops", "50%,x"], "--lr-drops: invalid value 'x'"),
        (vec!["--lr-drops", "9i"], "before --steps"),
        (vec!["--save-every", "-1"], "--save-every"),
    ] {
        fails(&run(&dir.join("bad"), &args), 2, needle);
    }
}

/// pixray's size tables: --aspect with --ezsize or --scale, trimmed to multiples of 16 for the
/// vqgan drawer (pixray's VQGAN trims the same way).
#[test]
fn pixrays_aspect_and_size_tables() {
    let size = |extra: &str| {
        let s = resolve(extra);
        (s.size.width, s.size.height)
    };
    assert_eq!(size("aspect = \"widescreen\""), (384, 208));
    assert_eq!(
        size("aspect = \"widescreen\"\ndrawer = \"fft\""),
        (384, 216)
    );
    assert_eq!(size("aspect = \"square\"\nezsize = \"small\""), (144, 144));
    assert_eq!(
        size("aspect = \"portrait\"\nezsize = \"large\""),
        (512, 640)
    );
    assert_eq!(
        size("aspect = \"square\"\nscale = 2.5\ndrawer = \"pixel\""),
        (360, 360)
    );
    assert_eq!(size("ezsize = \"medium\"\ndrawer = \"pixel\""), (384, 216));
    let dir = tmp_dir("aspect");
    let init = dir.join("tall.png");
    image::RgbImage::new(100, 250).save(&init).unwrap();
    assert_eq!(
        size(&format!(
            "aspect = \"retain\"\ninit-image = \"{}\"\ndrawer = \"fft\"",
            init.display()
        )),
        (288, 720)
    );
    // no size and the pixray tables: the size is recorded, not the aspect
    let toml = resolve("aspect = \"square\"").to_toml().unwrap();
    assert!(
        toml.contains("size = \"288x288\"") && !toml.contains("aspect"),
        "{toml}"
    );
    for (extra, needle) in [
        ("aspect = \"wide\"", "--aspect: invalid value 'wide'"),
        ("ezsize = \"huge\"", "--ezsize: invalid value 'huge'"),
        ("size = \"64x64\"\naspect = \"square\"", "both set"),
        ("aspect = \"retain\"", "add one"),
        ("scale = 0", "--scale"),
    ] {
        let e = PartialSettings::from_toml(
            &format!("prompts = [\"x\"]\nseed = 1\n{extra}\n"),
            std::path::Path::new("t.toml"),
        )
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains(needle), "{extra}: {e}");
    }
}
