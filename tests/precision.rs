//! `--precision auto` on the CPU: on a CPU with native bf16 each tower kind is timed in f32 and
//! bf16 once per machine, the verdict is cached, doctor shows it, and runs follow it.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, VQGAN, ok, stderr, stdout, tmp_dir, vqclip};
use std::path::Path;
use std::process::Output;

const MESSAGE: &str = "timing f32 against bf16 on this CPU";

/// One step of the tiny models with `--precision auto` (unless `extra` says otherwise), measuring.
fn auto_run(cache: &Path, out: &Path, extra: &[&str]) -> Output {
    run_by(cache, out, "measure", extra)
}

/// [`auto_run`] with `VQCLIP_PRECISION_AUTO=rule`.
fn run_by(cache: &Path, out: &Path, rule: &str, extra: &[&str]) -> Output {
    vqclip()
        .env("VQCLIP_PRECISION_AUTO", rule)
        .env("XDG_CACHE_HOME", cache)
        .args(["generate", "a red apple", "--vqgan", VQGAN, "--clip", CLIP])
        .args([
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--device",
            "cpu",
            "--steps",
            "1",
        ])
        .args(["--seed", "3", "--force", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn doctor(cache: &Path) -> String {
    let o = vqclip()
        .env("VQCLIP_PRECISION_AUTO", "measure")
        .env("XDG_CACHE_HOME", cache)
        .arg("doctor")
        .output()
        .unwrap();
    ok(&o);
    stdout(&o)
}

/// The closing line's `[vqgan K, clip_tiny.pt K]`.
fn kinds(o: &Output) -> String {
    let err = stderr(o);
    let done = err.lines().rfind(|l| l.starts_with("done: ")).unwrap_or("");
    done.split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map_or_else(
            || panic!("no precisions in the closing line: {err}"),
            |(k, _)| k.to_string(),
        )
}

fn choice(cache: &toml::Value, tower: &str) -> &'static str {
    let t = &cache["machine"][0]["towers"][tower];
    let (f, b) = (
        t["f32_ms"].as_float().unwrap(),
        t["bf16_ms"].as_float().unwrap(),
    );
    assert!(f > 0.0 && b > 0.0, "{tower}: {t}");
    if b < f * 0.95 { "bf16" } else { "f32" }
}

#[test]
fn auto_precision_is_measured_once_cached_shown_and_followed() {
    let cache = tmp_dir("precision-cache");
    let file = cache.join("vqclip").join("precision.toml");
    let out = tmp_dir("precision-run");
    let first = auto_run(&cache, &out, &[]);
    ok(&first);
    if !vqclip::device::cpu_has_native_bf16() {
        assert!(!stderr(&first).contains(MESSAGE), "{}", stderr(&first));
        assert!(!file.exists(), "nothing to measure without native bf16");
        assert_eq!(kinds(&first), "vqgan f32, clip_tiny.pt f32");
        assert!(doctor(&cache).contains("bf16 would be emulated"));
        eprintln!(
            "precision: this CPU has no native bf16, so auto is f32 without measuring (checked); \
             the measurement itself was NOT checked on this machine"
        );
        return;
    }
    // First use: measured, said once, saved with all three towers.
    assert_eq!(
        stderr(&first).matches(MESSAGE).count(),
        1,
        "{}",
        stderr(&first)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let (vq, vit) = (choice(&v, "vqgan"), choice(&v, "vit"));
    choice(&v, "resnet");
    assert_eq!(kinds(&first), format!("vqgan {vq}, clip_tiny.pt {vit}"));
    eprintln!("precision: measured here: {text}");

    // Later runs read it: no message, the file unchanged, the same kinds.
    let second = auto_run(&cache, &out, &[]);
    ok(&second);
    assert!(!stderr(&second).contains(MESSAGE), "{}", stderr(&second));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    assert_eq!(kinds(&second), kinds(&first));

    // doctor shows the verdict per tower.
    let d = doctor(&cache);
    assert!(d.contains("--precision auto on CPU: measured ("), "{d}");
    for (tower, k) in [
        ("vqgan", vq),
        ("vit", vit),
        ("resnet", choice(&v, "resnet")),
    ] {
        assert!(
            d.lines()
                .any(|l| l.trim_start().starts_with(&format!("{tower:7} {k} ("))),
            "{tower} {k}: {d}"
        );
    }

    // Runs follow the cache, whatever it says: both verdicts, per tower.
    for (vq_ms, vit_ms, want) in [
        ((10.0, 5.0), (10.0, 50.0), "vqgan bf16, clip_tiny.pt f32"),
        ((10.0, 50.0), (10.0, 5.0), "vqgan f32, clip_tiny.pt bf16"),
    ] {
        let mut w = v.clone();
        let towers = w["machine"][0]["towers"].as_table_mut().unwrap();
        for (tower, (f, b)) in [("vqgan", vq_ms), ("vit", vit_ms)] {
            let t = towers[tower].as_table_mut().unwrap();
            t.insert("f32_ms".into(), toml::Value::Float(f));
            t.insert("bf16_ms".into(), toml::Value::Float(b));
        }
        std::fs::write(&file, toml::to_string(&w).unwrap()).unwrap();
        let o = auto_run(&cache, &out, &[]);
        ok(&o);
        assert!(!stderr(&o).contains(MESSAGE));
        assert_eq!(kinds(&o), want);
        // An explicit precision is not overridden.
        let o = auto_run(&cache, &out, &["--precision", "f32"]);
        assert_eq!(kinds(&o), "vqgan f32, clip_tiny.pt f32");
    }

    // The flag rule measures nothing.
    let flags = tmp_dir("precision-flags");
    let o = run_by(&flags, &out, "flags", &[]);
    ok(&o);
    assert!(!stderr(&o).contains(MESSAGE));
    assert!(!flags.join("vqclip").exists());
    assert_eq!(kinds(&o), "vqgan bf16, clip_tiny.pt bf16");

    // A damaged cache is measured again and replaced.
    std::fs::write(&file, "[[machine]\nkey = ").unwrap();
    let o = auto_run(&cache, &out, &[]);
    ok(&o);
    assert_eq!(stderr(&o).matches(MESSAGE).count(), 1, "{}", stderr(&o));
    let again: toml::Value = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again["machine"].as_array().unwrap().len(), 1);
}
