//! Run artefacts written by an older vqclip still work with this one. tests/fixtures/compat holds three tiny
//! runs (vqgan, fast_pixel and fft drawers) made by `tests/fixtures/compat/make.sh` with the binary of
//! commit 4eafb44, and a settings file in that version's spellings: `info` reads them, `--config` of their
//! run.toml and final.png resolves to the settings they recorded, and `--resume` of a copy continues them.
//!
//! Settings are compared as values, with `_` read as `-` in names and strings: the enum spellings move to
//! kebab-case (`fast-pixel`), the old ones staying accepted as aliases.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{fixture, ok, run, stdout, tmp_dir};
use std::path::{Path, PathBuf};

/// The run directories under tests/fixtures/compat, and the steps each ran.
const RUNS: [(&str, i64); 3] = [("vqgan", 3), ("fast_pixel", 3), ("fft", 3)];

fn compat(name: &str) -> PathBuf {
    fixture("compat").join(name)
}

/// `_` as `-` in every table key and string, recursively.
fn kebab(v: toml::Value) -> toml::Value {
    match v {
        toml::Value::String(s) => toml::Value::String(s.replace('_', "-")),
        toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(kebab).collect()),
        toml::Value::Table(t) => toml::Value::Table(
            t.into_iter()
                .map(|(k, v)| (k.replace('_', "-"), kebab(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The settings of a run.toml or a `--dry-run` output (comments and the `[run]` record dropped), kebab-cased.
fn settings(text: &str, what: &str) -> toml::Value {
    let mut t: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    t.remove("run");
    kebab(toml::Value::Table(t))
}

fn dry_run(config: &Path) -> toml::Value {
    let o = run(&[
        "generate",
        "--config",
        config.to_str().unwrap(),
        "--dry-run",
    ]);
    ok(&o);
    settings(&stdout(&o), &format!("--dry-run of {}", config.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_fixtures_are_what_this_test_expects() {
    for (name, steps) in RUNS {
        let dir = compat(name);
        for f in [
            "run.toml",
            "final.png",
            "log.jsonl",
            "checkpoint/meta.toml",
            "checkpoint/state.safetensors",
        ] {
            assert!(
                dir.join(f).is_file(),
                "{} is missing",
                dir.join(f).display()
            );
        }
        let recorded = settings(
            &std::fs::read_to_string(dir.join("run.toml")).unwrap(),
            name,
        );
        assert_eq!(recorded["steps"].as_integer(), Some(steps), "{name}");
        assert_eq!(
            recorded["drawer"].as_str(),
            Some(name.replace('_', "-").as_str())
        );
    }
}

#[test]
fn info_reads_old_pngs_and_run_dirs() {
    for (name, _) in RUNS {
        let dir = compat(name);
        for target in [dir.join("final.png"), dir.clone()] {
            let o = run(&["info", target.to_str().unwrap()]);
            ok(&o);
            assert!(
                !stdout(&o).trim().is_empty(),
                "info {} printed nothing",
                target.display()
            );
        }
    }
}

#[test]
fn old_run_toml_and_png_resolve_to_the_recorded_settings() {
    for (name, _) in RUNS {
        let dir = compat(name);
        let recorded = settings(
            &std::fs::read_to_string(dir.join("run.toml")).unwrap(),
            name,
        );
        for config in [dir.join("run.toml"), dir.join("final.png")] {
            assert_eq!(
                dry_run(&config),
                recorded,
                "--config {} resolves to other settings",
                config.display()
            );
        }
    }
}

#[test]
fn an_old_settings_file_resolves() {
    let file = compat("settings.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("drawer = \"fast_pixel\""), "{text}");
    let got = dry_run(&file);
    assert_eq!(got["drawer"].as_str(), Some("fast-pixel"), "{got}");
    assert_eq!(got["optimizer"].as_str(), Some("adamw-amsgrad"), "{got}");
    // Every setting the file gives comes out of --dry-run with that value.
    let given = settings(&text, "settings.toml");
    for (k, v) in given.as_table().unwrap() {
        assert_eq!(got.get(k), Some(v), "{k}: {got}");
    }
}

#[test]
fn old_checkpoints_resume_for_two_more_steps() {
    for (name, steps) in RUNS {
        let dir = tmp_dir(name);
        copy_dir(&compat(name), &dir);
        let more = (steps + 2).to_string();
        let o = run(&[
            "generate",
            "--quiet",
            "--resume",
            dir.to_str().unwrap(),
            "--steps",
            &more,
        ]);
        ok(&o);
        let rows = common::log(&dir);
        assert_eq!(
            rows.len() as i64,
            steps + 2,
            "{name}: log rows after resume"
        );
        assert_eq!(
            rows.last().unwrap()["step"].as_i64(),
            Some(steps + 2),
            "{name}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
