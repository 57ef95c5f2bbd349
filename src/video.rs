//! A run's frames as a video: MP4 (or any container ffmpeg knows) through an `ffmpeg` found on
//! PATH, or an animated GIF written in Rust when there is no ffmpeg. Frames are piped to ffmpeg
//! as raw RGB, so the gaps in frame numbering (000050, 000100, ...) need no file-name pattern.
use crate::error::usage;
use anyhow::{Context, Result, bail};
use image::RgbImage;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The last frame is shown this long, so the result does not flash by (pixray holds it 1 s).
pub const HOLD_LAST_SECONDS: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Encoded by ffmpeg (H.264 in MP4 for `.mp4`; ffmpeg's default codec for the container
    /// otherwise).
    Ffmpeg,
    Gif,
}

impl Format {
    /// From the output's extension: `.gif` is written here, `.mp4`, `.webm`, `.mkv`, `.mov`
    /// need ffmpeg.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("gif") => Ok(Format::Gif),
            Some("mp4" | "webm" | "mkv" | "mov") => Ok(Format::Ffmpeg),
            _ => Err(usage(format!(
                "--out {}: unknown video type; use a .mp4, .webm, .mkv, .mov or .gif name",
                path.display()
            ))),
        }
    }
}

/// The frames of a run directory in step order: `frames/NNNNNN.png`, then `final.png` when it
/// shows a later state than the last frame.
pub fn run_frames(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let run = crate::rundir::RunDir::new(run_dir);
    let frames_dir = run.frames_dir();
    let mut numbered: Vec<(u64, PathBuf)> = match std::fs::read_dir(&frames_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter_map(|p| {
                let n = p
                    .file_stem()?
                    .to_str()?
                    .parse::<u64>()
                    .ok()
                    .filter(|_| p.extension().is_some_and(|e| e == "png"))?;
                Some((n, p))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", frames_dir.display())),
    };
    numbered.sort();
    let mut frames: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    let final_png = run.final_png();
    if final_png.is_file() {
        frames.push(final_png);
    }
    if frames.is_empty() {
        return Err(usage(format!(
            "{}: no frames ({}/*.png or {}); is it a vqclip run directory? \
             Runs save a frame every --save-every steps",
            run_dir.display(),
            crate::rundir::FRAMES,
            crate::rundir::FINAL_PNG
        )));
    }
    Ok(frames)
}

/// Frames per second when not given: about a 14-second video, between 10 and 60 (pixray's rule).
pub fn default_fps(frames: usize) -> u32 {
    ((frames as f64 / 14.0).round() as u32).clamp(10, 60)
}

/// Whether an `ffmpeg` runs from PATH.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Loads the frames, checking that they all have the first one's size.
fn load_frames(frames: &[PathBuf]) -> Result<Vec<RgbImage>> {
    let mut out: Vec<RgbImage> = Vec::with_capacity(frames.len());
    for p in frames {
        // A --transparent run's frames: over white, as a viewer shows them.
        let img = crate::image_io::load_rgb_on_white(p)?;
        if let Some(first) = out.first()
            && first.dimensions() != img.dimensions()
        {
            bail!(
                "{}: {}x{} differs from the first frame's {}x{}",
                p.display(),
                img.width(),
                img.height(),
                first.width(),
                first.height()
            );
        }
        out.push(img);
    }
    Ok(out)
}

/// Writes `frames` to `out` at `fps` (a last `final.png` held [`HOLD_LAST_SECONDS`]). The file
/// appears complete or not at all (written beside it, then renamed).
pub fn write_video(frames: &[PathBuf], out: &Path, fps: u32, format: Format) -> Result<()> {
    // The result of a run is held; a plain frame sequence (--style-frames) is not.
    let hold_last = frames
        .last()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == crate::rundir::FINAL_PNG);
    if !(1..=120).contains(&fps) {
        return Err(usage(format!(
            "--fps: invalid value {fps}: must be from 1 to 120"
        )));
    }
    if format == Format::Ffmpeg && !ffmpeg_available() {
        bail!(
            "ffmpeg was not found on PATH, and {} needs it: install ffmpeg (e.g. apt install ffmpeg), \
             or write a GIF instead (-o {})",
            out.display(),
            crate::rundir::VIDEO_GIF
        );
    }
    let images = load_frames(frames)?;
    let hold = if hold_last {
        ((HOLD_LAST_SECONDS * fps as f64).round() as usize).max(1)
    } else {
        1
    };
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .context("output path has no file name")?;
    let tmp = out.with_file_name(format!(".{name}.partial.{}", std::process::id()));
    let written = match format {
        Format::Gif => write_gif(&images, hold, fps, &tmp),
        Format::Ffmpeg => write_ffmpeg(&images, hold, fps, &tmp, out),
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
}

fn write_gif(images: &[RgbImage], hold: usize, fps: u32, path: &Path) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    // Speed 10: NeuQuant's usual quality/speed balance for the 256-colour palette of each frame.
    let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    enc.set_repeat(Repeat::Infinite)
        .context("cannot write the GIF header")?;
    let last = images.len() - 1;
    for (i, img) in images.iter().enumerate() {
        // GIF delays are in 1/100 s; the held last frame is one frame with a longer delay.
        let shown = if i == last { hold } else { 1 };
        let delay = Delay::from_numer_denom_ms(1000 * shown as u32, fps);
        let rgba = image::DynamicImage::ImageRgb8(img.clone()).into_rgba8();
        enc.encode_frame(Frame::from_parts(rgba, 0, 0, delay))
            .with_context(|| format!("cannot write GIF frame {}", i + 1))?;
    }
    Ok(())
}

fn write_ffmpeg(images: &[RgbImage], hold: usize, fps: u32, tmp: &Path, out: &Path) -> Result<()> {
    let (w, h) = images[0].dimensions();
    let container = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("mp4")
        .to_ascii_lowercase();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{w}x{h}"), "-r", &fps.to_string(), "-i", "-"]);
    if container == "mp4" || container == "mov" || container == "mkv" {
        // H.264 at high quality, in the pixel format every player reads.
        cmd.args(["-c:v", "libx264", "-crf", "17", "-pix_fmt", "yuv420p"]);
    }
    // The temporary name has no video extension, so name the container explicitly.
    let muxer = match container.as_str() {
        "mkv" => "matroska",
        other => other,
    };
    cmd.args(["-f", muxer]).arg(tmp);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start ffmpeg")?;
    let mut stdin = child.stdin.take().context("cannot write to ffmpeg")?;
    let last = images.len() - 1;
    let mut write_err = None;
    'frames: for (i, img) in images.iter().enumerate() {
        let copies = if i == last { hold } else { 1 };
        for _ in 0..copies {
            if let Err(e) = stdin.write_all(img.as_raw()) {
                write_err = Some(e);
                break 'frames;
            }
        }
    }
    drop(stdin);
    let output = child.wait_with_output().context("ffmpeg did not finish")?;
    if !output.status.success() {
        let msg = String::from_utf8_lossy(&output.stderr);
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!("ffmpeg failed ({}): {first}", output.status);
    }
    if let Some(e) = write_err {
        return Err(e).context("cannot send frames to ffmpeg");
    }
    Ok(())
}
