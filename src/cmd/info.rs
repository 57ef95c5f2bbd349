//! `vqclip info IMAGE|RUN_DIR`: the prompt, seed and settings stored in a vqclip PNG or SVG, or the
//! state of a run directory (finished or where it stopped, last loss, how to continue).
use crate::cli::InfoArgs;
use crate::image_io::read_image_text;
use crate::rundir::{KEY_PROMPT, KEY_SEED, KEY_SETTINGS, KEY_SOFTWARE, KEY_STEP, RunDir};
use anyhow::{Context, Result, bail};

pub fn run(args: &InfoArgs) -> Result<()> {
    if args.image.is_dir() {
        return run_dir_info(&args.image);
    }
    let chunks = read_image_text(&args.image)?;
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
    let run = RunDir::new(dir);
    let Some(ckpt) = run.checkpoint() else {
        return Err(crate::error::usage(format!(
            "{}: not a vqclip run directory (no checkpoint/); give a run directory or a PNG",
            dir.display()
        )));
    };
    let meta = checkpoint::read_meta(&ckpt)?;
    let total = meta.settings.steps.unwrap_or(meta.step);
    let finished = run.final_png().is_file() && meta.step >= total;
    let mut out = format!("# run: {}\n", dir.display());
    out.push_str(&format!("# vqclip: {}\n", meta.vqclip_version));
    let auto_stopped = meta.auto_stop.as_ref().is_some_and(|a| a.stopped);
    if auto_stopped && run.final_png().is_file() {
        out.push_str(&format!(
            "# state: finished early by --auto-stop at step {} of {total} (no new best loss)\n",
            meta.step
        ));
    } else if finished {
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
    if let Some(last) = run.read_log().last() {
        out.push_str(&format!(
            "# last logged loss: {:.4} (step {})\n",
            last.loss, last.step
        ));
    }
    let frames = std::fs::read_dir(run.frames_dir())
        .map(|rd| rd.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    out.push_str(&format!("# frames: {frames}\n"));
    if let (Some(steps), Some(adir)) = (&meta.animation, &meta.settings.animation_dir) {
        let adir = dir.join(adir);
        let at: Vec<String> = steps.iter().map(|f| f.step.to_string()).collect();
        out.push_str(&format!(
            "# animation: {} frames in {}, at steps {}\n",
            steps.len(),
            adir.display(),
            at.join(", ")
        ));
    }
    out.push_str(&toml::to_string(&meta.settings).context("cannot print the settings")?);
    crate::cmd::print_stdout(&out)
}
