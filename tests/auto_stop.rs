//! `--auto-stop` (pixray's): a flat loss ends the run after 12 steps without a new best, each
//! `--lr-drops` entry buys one more plateau at a tenth of the lr, and a resumed run stops exactly
//! where the straight run does.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, VQGAN, log, log_values, ok, resume, run, same_file, stdout, tmp_path};
use std::path::Path;

/// `generate` on the tiny fixtures with auto-stop, seed `seed`, into `out`, then `extra`.
fn auto_stop_run(out: &Path, seed: &str, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "generate",
        "a red apple",
        "--vqgan",
        VQGAN,
        "--clip",
        CLIP,
        "--size",
        "48x32",
        "--cutouts",
        "2",
        "--seed",
        seed,
        "--device",
        "cpu",
        "--quiet",
        "--auto-stop",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    run(&a)
}

/// A run whose loss cannot move: lr 1e-30 is below the latents' last bit, and whole-image cutouts
/// without augments see the same picture every step.
fn flat(out: &Path, extra: &[&str]) -> std::process::Output {
    let fixed = [
        "--cut-method",
        "pooled",
        "--augments",
        "none",
        "--lr",
        "1e-30",
    ];
    auto_stop_run(out, "3", &[&fixed[..], extra].concat())
}

#[test]
fn a_flat_loss_ends_the_run_at_the_first_plateau() {
    let out = tmp_path("auto-stop-flat");
    ok(&flat(&out, &["--steps", "40"]));
    let rows = log(&out);
    // Best at step 1, then 12 steps without a better one: the run ends after step 13.
    assert_eq!(rows.len(), 13);
    assert_eq!(rows.last().unwrap()["step"].as_i64(), Some(13));
    assert!(out.join("final.png").is_file());
    let o = run(&["info", out.to_str().unwrap()]);
    ok(&o);
    assert!(
        stdout(&o).contains("finished early by --auto-stop at step 13 of 40"),
        "{}",
        stdout(&o)
    );
    assert!(
        std::fs::read_to_string(out.join("run.toml"))
            .unwrap()
            .contains("auto-stop = true")
    );
}

#[test]
fn each_lr_drop_buys_one_more_plateau_at_a_tenth_of_the_lr() {
    let out = tmp_path("auto-stop-drops");
    // --lr-drops 90 of 40 steps would drop at step 36; the plateaus come first.
    ok(&flat(&out, &["--steps", "40", "--lr-drops", "90"]));
    let rows = log(&out);
    assert_eq!(rows.len(), 26);
    let lr = |step: usize| rows[step - 1]["lr"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b;
    assert!(
        close(lr(13), 1e-30) && close(lr(14), 1e-31) && close(lr(26), 1e-31),
        "{} {} {}",
        lr(13),
        lr(14),
        lr(26)
    );
}

#[test]
fn a_resumed_run_stops_where_the_straight_run_does() {
    // The flat run, cut at step 10 (before the plateau ends) and resumed.
    let straight = tmp_path("auto-stop-straight");
    ok(&flat(&straight, &["--steps", "40"]));
    let cut = tmp_path("auto-stop-cut");
    ok(&flat(&cut, &["--steps", "10"]));
    ok(&resume(&cut, &["--steps", "40"]));
    assert_eq!(log_values(&cut), log_values(&straight));
    assert!(same_file(
        &cut.join("final.png"),
        &straight.join("final.png")
    ));
    // A moving run (real lr, random cutouts), cut at step 20: the same, whether it stops early or
    // not.
    let moving =
        |out: &Path, steps: &str| auto_stop_run(out, "5", &["--steps", steps, "--save-every", "7"]);
    let straight = tmp_path("auto-stop-moving");
    ok(&moving(&straight, "60"));
    let cut = tmp_path("auto-stop-moving-cut");
    ok(&moving(&cut, "20"));
    ok(&resume(&cut, &["--steps", "60"]));
    assert_eq!(log_values(&cut), log_values(&straight));
    assert!(same_file(
        &cut.join("final.png"),
        &straight.join("final.png")
    ));
}
