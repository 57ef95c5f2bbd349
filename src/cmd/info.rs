//! `vqclip info IMAGE|RUN_DIR`: the prompt, seed and settings stored in a vqclip PNG, or the
//! state of a run directory (finished or where it stopped, last loss, how to continue).
use crate::cli::InfoArgs;
use crate::image_io::read_png_text;
use anyhow::{Context, Result, bail};

/// The PNG text keys vqclip writes.
pub const KEY_SETTINGS: &str = "vqclip:settings";
pub const KEY_PROMPT: &str = "vqclip:prompt";
pub const KEY_SEED: &str = "vqclip:seed";
pub const KEY_STEP: &str = "vqclip:step";
pub const KEY_SOFTWARE: &str = "Software";

pub fn run(args: &InfoArgs) -> Result<()> {
    if args.image.is_dir() {
        return run_dir_info(&args.image);
    }
    let chunks = read_png_text(&args.image)?;
    let get = |k: &str| {
        chunks
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let Some(settings) = get(KEY_SETTINGS) else {
        bail!(
            "{} has no vqclip metadata (was it written by vqclip generate?)",
            args.image.display()
        );
    };
    if let Some(s) = get(KEY_SOFTWARE) {
        println!("# software: {s}");
    }
    if let Some(p) = get(KEY_PROMPT) {
        println!("# prompt: {p}");
    }
    if let Some(s) = get(KEY_SEED) {
        println!("# seed: {s}");
    }
    if let Some(s) = get(KEY_STEP) {
        println!("# step: {s}");
    }
    println!(
        "# repeat with: vqclip generate --config {}",
        args.image.display()
    );
    print!("{settings}");
    if !settings.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// A run directory: its checkpoint's step against the planned steps, the last logged loss, and
/// the settings.
fn run_dir_info(dir: &std::path::Path) -> Result<()> {
    use crate::generate::checkpoint;
    let Some(ckpt) = checkpoint::find(dir) else {
        return Err(crate::error::usage(format!(
            "{}: not a vqclip run directory (no checkpoint/); give a run directory or a PNG",
            dir.display()
        )));
    };
    let meta = checkpoint::read_meta(&ckpt)?;
    let total = meta.settings.steps.unwrap_or(meta.step);
    let finished = dir.join("final.png").is_file() && meta.step >= total;
    let mut out = format!("# run: {}\n", dir.display());
    out.push_str(&format!("# vqclip: {}\n", meta.vqclip_version));
    if finished {
        out.push_str(&format!(
            "# state: finished, {} steps; more with: vqclip generate --resume {} --steps N\n",
            meta.step,
            dir.display()
        ));
    } else {
        out.push_str(&format!(
            "# state: stopped at step {} of {total}; continue with: vqclip generate --resume {}\n",
            meta.step,
            dir.display()
        ));
    }
    let last = std::fs::read_to_string(dir.join("log.jsonl"))
        .ok()
        .and_then(|t| t.lines().last().map(str::to_string))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok());
    if let Some(v) = last
        && let (Some(step), Some(loss)) = (v["step"].as_i64(), v["loss"].as_f64())
    {
        out.push_str(&format!("# last logged loss: {loss:.4} (step {step})\n"));
    }
    let frames = std::fs::read_dir(dir.join("frames"))
        .map(|rd| rd.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    out.push_str(&format!("# frames: {frames}\n"));
    out.push_str(&toml::to_string(&meta.settings).context("cannot print the settings")?);
    crate::cmd::print_stdout(&out)
}
