//! Foundation: settings parsing and precedence, presets, validation messages and exit codes,
//! the run-directory rule, and `doctor`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{shared_dir, stderr, tmp_dir};
use std::path::Path;
use std::process::{Command, Output};
use vqclip::presets;
use vqclip::runplan::Request;
use vqclip::runplan::plan;
use vqclip::settings::{
    Augment, CutMethod, NumberList, PartialSettings, PromptList, SeedValue, StringList,
};

fn bin() -> Command {
    let mut c = common::vqclip();
    // Keep tests independent of a developer's weights directory.
    c.env("VQCLIP_WEIGHTS", shared_dir("no-weights"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn args(prompt: &str) -> Request {
    Request {
        flags: PartialSettings {
            prompts: Some(PromptList::One(prompt.into())),
            ..Default::default()
        },
        out: Some(shared_dir("plan")),
        ..Default::default()
    }
}

#[test]
fn defaults_resolve() {
    let p = plan(&args("a lighthouse at dusk")).unwrap();
    let s = p.settings;
    assert_eq!(
        (s.size.width, s.size.height, s.steps, s.cutouts),
        (256, 256, 300, 32)
    );
    assert_eq!(s.lr, 0.1);
    assert_eq!(s.cut_method, CutMethod::Pooled);
    assert_eq!(s.clip, vec!["ViT-B/32".to_string()]);
    assert_eq!(s.vqgan, "imagenet_f16_16384");
    assert_eq!(s.prompts.len(), 1);
    assert_eq!(s.prompts[0].weight, 1.0);
}

#[test]
fn precedence_defaults_presets_config_flags() {
    let dir = tmp_dir("prec");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "steps = 77\ncutouts = 5\nseed = \"hello\"\naugments = \"flip,noise\"\n",
    )
    .unwrap();
    // draft preset sets size 128x128, steps 60, cutouts 8; config overrides steps and cutouts;
    // flags override cutouts again.
    let mut a = args("a fox");
    a.presets = vec!["draft".into()];
    a.config = Some(cfg.clone());
    a.flags.cutouts = Some(3);
    let s = plan(&a).unwrap().settings;
    assert_eq!((s.size.width, s.steps, s.cutouts), (128, 77, 3));
    assert_eq!(s.seed, vqclip::settings::seed_from_text("hello").unwrap());
    assert_eq!(s.augments, vec![Augment::Flip, Augment::Noise]);
    assert_eq!(s.presets, vec!["draft".to_string()]);
}

#[test]
fn style_and_quality_presets_combine() {
    let mut a = args("a fox");
    a.presets = vec!["watercolor-portrait".into(), "draft".into()];
    let s = plan(&a).unwrap().settings;
    assert!(
        s.prompts[0]
            .text
            .starts_with("a closeup watercolor portrait of a fox"),
        "{}",
        s.prompts[0].text
    );
    assert!(s.prompts.iter().any(|p| p.weight < 0.0 && p.stop == -0.9));
    assert_eq!(s.steps, 60); // from draft
    assert_eq!((s.size.width, s.size.height), (128, 128)); // draft came last
}

#[test]
fn every_preset_parses_validates_and_round_trips() {
    let all = presets::all().unwrap();
    assert!(all.len() >= 14);
    for name in [
        "watercolor-portrait",
        "ukiyo-e",
        "stained-glass",
        "draft",
        "normal",
        "better",
        "best",
    ] {
        assert!(all.iter().any(|p| p.name == name), "{name}");
    }
    for p in all {
        let text = toml::to_string(&p.preset).unwrap();
        let back = presets::Preset::parse(&text, &p.name).unwrap();
        assert_eq!(back, p.preset, "{}", p.name);
    }
}

#[test]
fn settings_round_trip_through_toml() {
    let mut a = args("a:2|b c:-1:-0.5");
    a.flags.lr_drops = Some(NumberList::Text("50,80".into()));
    a.flags.loss = Some(StringList::One("tv:0.5,symmetry:1".into()));
    a.flags.seed = Some(SeedValue::Text("12345".into()));
    let s = plan(&a).unwrap().settings;
    let text = s.to_toml().unwrap();
    let back = PartialSettings::from_toml(&text, Path::new("x.toml"))
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(back, s);
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dir = tmp_dir("badkey");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "stepz = 3\n").unwrap();
    let o = run(&["generate", "x", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("stepz") && e.contains("bad.toml"), "{e}");
}

#[test]
fn invalid_values_exit_2_with_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--size", "250x256"], "--size"),
        (&["--size", "8x8"], "--size"),
        (&["--size", "8192x256"], "--size"),
        (&["--size", "big"], "--size"),
        (&["--steps", "0"], "--steps"),
        (&["--cutouts", "0"], "--cutouts"),
        (&["--cut-pow", "0"], "--cut-pow"),
        (&["--cut-method", "zoom"], "--cut-method"),
        (&["--augments", "flip,warp"], "--augments"),
        (&["--lr", "0"], "--lr"),
        (&["--lr", "-1"], "--lr"),
        (&["--optimizer", "sgd"], "--optimizer"),
        (&["--lr-drops", "150"], "--lr-drops"),
        (&["--lr-drops", "x"], "--lr-drops"),
        (&["--save-every", "-1"], "--save-every"),
        (&["--init", "plasma"], "--init"),
        (&["--init-weight", "-2"], "--init-weight"),
        (&["--init-image", "/nonexistent/x.png"], "--init-image"),
        (
            &["--image-prompt", "/nonexistent/y.png:2"],
            "--image-prompt",
        ),
        (&["--loss", "blur:1"], "--loss"),
        (&["--loss", "tv:x"], "--loss"),
        (&["--device", "tpu"], "--device"),
        (&["--precision", "f8"], "--precision"),
        (&["--seed", "-4"], "--seed"),
        (&["--preset", "nope"], "--preset"),
        (&["--vqgan", "not_a_model"], "--vqgan"),
        (&["--clip", "ViT-X/99"], "--clip"),
    ];
    for (flags, name) in cases {
        let mut a = vec!["generate", "a cat", "--out"];
        let out = tmp_dir("invalid");
        let out = out.to_str().unwrap().to_string();
        a.push(&out);
        a.extend_from_slice(flags);
        let o = run(&a);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {e}");
        assert!(
            e.starts_with("vqclip: error: ") && e.contains(name),
            "{flags:?}: {e}"
        );
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn empty_prompt_and_bad_prompt_syntax() {
    let o = run(&["generate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no prompt"));
    let o = run(&["generate", "a cat:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["generate", "--bogus-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_dir_with_result_is_not_overwritten() {
    let dir = tmp_dir("rundir");
    std::fs::write(dir.join("final.png"), b"x").unwrap();
    let o = run(&["generate", "a cat", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("final.png")).unwrap(), b"x");
    // --force passes the rule (and then fails later, on the missing weights: exit 1, not 2).
    let o = run(&[
        "generate",
        "a cat",
        "--out",
        dir.to_str().unwrap(),
        "--force",
        "--device",
        "cpu",
    ]);
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn missing_known_weights_exit_1_with_fetch_hint() {
    let out = tmp_dir("missing");
    let o = run(&[
        "generate",
        "a cat",
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("vqclip weights fetch imagenet_f16_16384"), "{e}");
}

#[test]
fn doctor_runs() {
    let o = run(&["doctor"]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("vqclip ") && s.contains("cuda:") && s.contains("imagenet_f16_16384"),
        "{s}"
    );
    // ffmpeg is looked up on PATH: with an empty PATH doctor says GIFs.
    let empty = tmp_dir("doctor-path");
    let o = bin().arg("doctor").env("PATH", &empty).output().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ffmpeg: not found (vqclip video writes GIFs"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn presets_list_and_show() {
    let o = run(&["presets", "list"]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.lines().count() >= 14 && s.contains("watercolor-portrait"));
    let o = run(&["presets", "show", "draft"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("steps = 60"));
    let o = run(&["presets", "show", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn user_preset_file() {
    let dir = tmp_dir("userpreset");
    let p = dir.join("mine.toml");
    std::fs::write(
        &p,
        "description = \"mine\"\ntemplate = \"a drawing of {prompt}\"\n[settings]\nsteps = 9\n",
    )
    .unwrap();
    let mut a = args("a cow");
    a.presets = vec![p.to_str().unwrap().into()];
    let s = plan(&a).unwrap().settings;
    assert_eq!(s.steps, 9);
    assert_eq!(s.prompts[0].text, "a drawing of a cow");
    std::fs::write(&p, "description = \"bad\"\ntemplate = \"no placeholder\"\n").unwrap();
    assert!(plan(&a).is_err());
}

/// A style preset applies to every story phase: each phase's first prompt is templated and each
/// phase gets the extra prompts, in phase order (so run.toml parses back to the same list).
#[test]
fn style_preset_applies_to_every_story_phase() {
    let mut a = args("a cow ^ a barn:2");
    a.presets = vec!["charcoal-sketch".into()];
    let s = plan(&a).unwrap().settings;
    let got: Vec<(String, usize)> = s.prompts.iter().map(|p| (p.to_string(), p.phase)).collect();
    let sketch =
        |x: &str| format!("a charcoal sketch of {x}, rough paper, smudged shading, monochrome");
    assert_eq!(
        got,
        [
            (sketch("a cow"), 0),
            ("black and white drawing:0.5".to_string(), 0),
            ("color:-0.3:-0.9".to_string(), 0),
            (format!("{}:2", sketch("a barn")), 1),
            ("black and white drawing:0.5".to_string(), 1),
            ("color:-0.3:-0.9".to_string(), 1),
        ]
    );
    let back = vqclip::settings::PartialSettings::from_toml(
        &s.to_toml().unwrap(),
        std::path::Path::new("run.toml"),
    )
    .unwrap()
    .resolve()
    .unwrap();
    assert_eq!(back.prompts, s.prompts);
}

/// Every long flag of every subcommand is documented in README.md (keeps the docs in step).
#[test]
fn readme_documents_every_flag() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string("README.md").unwrap();
    let mut missing = Vec::new();
    fn walk(cmd: &clap::Command, path: &str, readme: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long()
                && !["help", "version"].contains(&long)
                && !readme.contains(&format!("--{long}"))
            {
                missing.push(format!("{path} --{long}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), readme, missing);
        }
    }
    walk(
        &vqclip::cli::Cli::command(),
        "vqclip",
        &readme,
        &mut missing,
    );
    assert!(missing.is_empty(), "not in README.md: {missing:?}");
}

/// `--dry-run`: the resolved settings as TOML (a valid `--config` file: the header lines are
/// comments), the run directory and the model files, exit 0 even with the weights missing;
/// nothing is created; invalid settings are still exit 2.
#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = tmp_dir("dry");
    let out = dir.join("never-made");
    let o = run(&[
        "generate",
        "a fox ^ a hen",
        "--preset",
        "draft",
        "--seed",
        "9",
        "--vqgan",
        "/nonexistent/v.ckpt",
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains(&format!("# run directory: {}", out.display())),
        "{text}"
    );
    assert!(
        text.contains("# vqgan: /nonexistent/v.ckpt -> MISSING"),
        "{text}"
    );
    assert!(
        text.contains("steps = 60") && text.contains("seed = 9"),
        "{text}"
    );
    assert!(!out.exists());
    // The printed plan is a settings file that resolves to the same settings.
    let cfg = dir.join("plan.toml");
    std::fs::write(&cfg, &text).unwrap();
    let o2 = run(&[
        "generate",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o2.status.code(), Some(0), "{}", stderr(&o2));
    let settings = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("presets"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        settings(&text),
        settings(&String::from_utf8_lossy(&o2.stdout))
    );
    let o = run(&["generate", "a cat", "--steps", "0", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
}
