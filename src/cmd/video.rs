//! `vqclip video RUN_DIR`: the run's frames as an MP4 (ffmpeg) or GIF.
use crate::cli::VideoArgs;
use crate::error::usage;
use crate::rundir::RunDir;
use crate::video::{self, Format};
use anyhow::Result;
use std::path::{Path, PathBuf};

pub fn run(a: &VideoArgs) -> Result<()> {
    let out = make(&a.run_dir, a.out.as_deref(), a.fps, a.force, false)?;
    crate::cmd::print_stdout(&format!("{}\n", out.display()))
}

/// Makes the video of `run_dir` and returns its path. Without `out`: `video.mp4` in the run
/// directory when ffmpeg is there, `video.gif` otherwise. An existing output is replaced only
/// with `force`.
pub fn make(
    run_dir: &Path,
    out: Option<&Path>,
    fps: Option<u32>,
    force: bool,
    quiet: bool,
) -> Result<PathBuf> {
    if !run_dir.is_dir() {
        return Err(usage(format!(
            "{}: not a directory (give a run directory made by vqclip generate)",
            run_dir.display()
        )));
    }
    let frames = video::run_frames(run_dir)?;
    let out = match out {
        Some(p) => p.to_path_buf(),
        None if video::ffmpeg_available() => RunDir::new(run_dir).video_mp4(),
        None => {
            if !quiet {
                eprintln!("vqclip: ffmpeg not found on PATH; writing a GIF instead of an MP4");
            }
            RunDir::new(run_dir).video_gif()
        }
    };
    let format = Format::from_path(&out)?;
    if out.exists() && !force {
        return Err(usage(format!(
            "{} already exists; use --force to replace it or -o to choose another name",
            out.display()
        )));
    }
    let fps = fps.unwrap_or_else(|| video::default_fps(frames.len()));
    video::write_video(&frames, &out, fps, format)?;
    Ok(out)
}
