//! `generate --style-frames DIR`: restyle a sequence of images (video frames) with the prompt,
//! nerdyrodent's `--video_style_dir` done in name order (the anchor's order is the file system's).
//!
//! Each frame is one ordinary run started from that frame (`--init-image`), with the same seed
//! and settings, so every frame gets the same augment draws step by step, which keeps the
//! sequence steady. The runs live in `RUN_DIR/runs/<frame name>/`; each result is copied to
//! `RUN_DIR/frames/NNNNNN.png` in order, so `vqclip video RUN_DIR` makes the styled video.
//! Running the same command again skips the frames already done.
use crate::cli::GenerateArgs;
use crate::error::usage;
use crate::image_io::list_frames;
use crate::rundir::RunDir;
use anyhow::{Context, Result};
use std::path::Path;

/// Runs every frame with `run_one` (`generate`'s single run, passed in so this module needs
/// nothing from its caller).
pub fn run(
    args: &GenerateArgs,
    dir: &Path,
    run_one: &dyn Fn(&GenerateArgs) -> Result<()>,
) -> Result<()> {
    for (set, flag) in [
        (args.settings.init_image.is_some(), "--init-image"),
        (args.settings.animation_dir.is_some(), "--animation-dir"),
        (args.resume.is_some(), "--resume"),
        (args.count.is_some_and(|c| c != 1), "--count"),
    ] {
        if set {
            return Err(usage(format!(
                "--style-frames cannot be combined with {flag} (each frame is the init image of its own run)"
            )));
        }
    }
    let frames = list_frames(dir)?;
    // Unreadable frames fail now, not an hour in.
    for f in &frames {
        image::image_dimensions(f)
            .with_context(|| format!("--style-frames: cannot read {}", f.display()))?;
    }
    let mut base_args = args.clone();
    base_args.style_frames = None;
    base_args.video = false;
    base_args.settings.init_image = Some(frames[0].clone());
    let base = crate::runplan::plan(&base_args.request())?;
    // Same seed for every frame (drawn once when not given).
    base_args.settings.seed = Some(base.settings.seed.to_string());
    let run = RunDir::new(&base.run_dir);
    let out_frames = run.frames_dir();
    let mut jobs = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let target = run.frame(i as i64 + 1);
        let name = frame
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{i}"));
        let mut a = base_args.clone();
        a.settings.init_image = Some(frame.clone());
        a.out = Some(run.style_run(i + 1, &name).path().to_path_buf());
        // The sub-run directories are this command's own: an interrupted one starts again.
        a.force = true;
        crate::runplan::plan(&a.request())?;
        jobs.push((a, target));
    }
    // Every frame is planned (nothing written yet); from here this process alone writes the
    // folder, so which frames are done is decided under the lock. Each sub-run locks its own.
    let _lock = run.lock("--out")?;
    // done in an earlier invocation
    jobs.retain(|(_, target)| !target.exists());
    std::fs::create_dir_all(&out_frames)
        .with_context(|| format!("cannot create {}", out_frames.display()))?;
    let total = frames.len();
    for (a, target) in &jobs {
        if !args.quiet {
            eprintln!(
                "frame {} of {total}: {}",
                target
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0),
                a.settings
                    .init_image
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display()
            );
        }
        run_one(a)?;
        let result = a
            .out
            .as_ref()
            .map(|d| RunDir::new(d).final_png())
            .context("sub-run without a directory")?;
        let tmp = target.with_extension("png.tmp");
        std::fs::copy(&result, &tmp)
            .and_then(|_| std::fs::rename(&tmp, target))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    println!("{}", out_frames.display());
    if args.video {
        let video = super::video::make(run.path(), None, None, true, args.quiet)?;
        println!("{}", video.display());
    }
    Ok(())
}
