//! `vqclip video`: frames of a run directory to a GIF (always) or MP4 (ffmpeg), its errors, and
//! that an existing file is never replaced without --force.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{stderr, tmp_dir};
use image::AnimationDecoder;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A run directory with solid-colour frames 2 and 10 (numeric, not text, order) and a final image,
/// plus a file that is not a frame.
fn fake_run(name: &str) -> PathBuf {
    let dir = tmp_dir(name);
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let solid = |rgb: [u8; 3]| image::RgbImage::from_pixel(32, 16, image::Rgb(rgb));
    solid([0, 255, 0]).save(frames.join("000010.png")).unwrap();
    solid([255, 0, 0]).save(frames.join("000002.png")).unwrap();
    std::fs::write(frames.join("notes.txt"), "not a frame").unwrap();
    solid([0, 0, 255]).save(dir.join("final.png")).unwrap();
    dir
}

/// `vqclip video ARGS`, with `PATH` set to `path_env` when given.
fn video(args: &[&str], path_env: Option<&Path>) -> Output {
    let mut c = common::vqclip();
    c.arg("video").args(args);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    c.output().unwrap()
}

fn gif_frames(path: &Path) -> Vec<image::Frame> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap()
}

fn ms(f: &image::Frame) -> f64 {
    let (n, d) = f.delay().numer_denom_ms();
    n as f64 / d as f64
}

#[test]
fn gif_has_the_frames_in_step_order_and_holds_the_last() {
    let dir = fake_run("gif");
    let out = dir.join("clip.gif");
    let o = video(
        &[
            dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--fps",
            "20",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        out.to_str().unwrap()
    );
    let frames = gif_frames(&out);
    assert_eq!(frames.len(), 3);
    let colours: Vec<[u8; 4]> = frames
        .iter()
        .map(|f| f.buffer().get_pixel(5, 5).0)
        .collect();
    assert_eq!(
        colours,
        vec![[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]],
        "frame 2, frame 10, final"
    );
    for f in &frames {
        assert_eq!(f.buffer().dimensions(), (32, 16));
    }
    // 20 fps = 50 ms a frame; the last one is held 1 s.
    assert_eq!(ms(&frames[0]), 50.0);
    assert_eq!(ms(&frames[1]), 50.0);
    assert_eq!(ms(&frames[2]), 1000.0);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn existing_output_needs_force() {
    let dir = fake_run("force");
    let out = dir.join("v.gif");
    std::fs::write(&out, "mine").unwrap();
    let o = video(&[dir.to_str().unwrap(), "-o", out.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
    let o = video(
        &[
            dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--force",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(gif_frames(&out).len(), 3);
}

#[test]
fn without_ffmpeg_mp4_is_a_clear_error_and_the_default_is_a_gif() {
    let dir = fake_run("noffmpeg");
    let empty_path = tmp_dir("empty-path");
    let out = dir.join("v.mp4");
    let o = video(
        &[dir.to_str().unwrap(), "-o", out.to_str().unwrap()],
        Some(&empty_path),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("ffmpeg was not found") && err.contains(".gif"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.exists());

    let o = video(&[dir.to_str().unwrap()], Some(&empty_path));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("writing a GIF"), "{}", stderr(&o));
    assert_eq!(gif_frames(&dir.join("video.gif")).len(), 3);
}

#[test]
fn usage_errors_exit_2() {
    let dir = fake_run("usage");
    let d = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[d, "-o", "x.avi2"], "unknown video type"),
        (&[d, "-o", "x.gif", "--fps", "0"], "--fps"),
        (&["/nonexistent/run"], "not a directory"),
    ];
    for (args, needle) in cases {
        let o = video(args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let empty = tmp_dir("no-frames");
    let o = video(&[empty.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no frames"), "{}", stderr(&o));
}

#[test]
fn frames_of_different_sizes_are_refused() {
    let dir = fake_run("sizes");
    image::RgbImage::new(16, 16)
        .save(dir.join("frames").join("000020.png"))
        .unwrap();
    let out = dir.join("v.gif");
    let o = video(&[dir.to_str().unwrap(), "-o", out.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("differs from the first frame"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

/// MP4 through ffmpeg. `.ci/run` installs ffmpeg; where it cannot be had the test says so and
/// checks nothing (the GIF tests above cover the frame handling).
#[test]
fn mp4_through_ffmpeg() {
    if !vqclip::video::ffmpeg_available() {
        eprintln!("mp4_through_ffmpeg: ffmpeg is not on PATH, not checked");
        return;
    }
    let dir = fake_run("mp4");
    let out = dir.join("v.mp4");
    let o = video(
        &[
            dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--fps",
            "10",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // ffprobe: the stream's size, frame rate and frame count (2 frames + the final held 1 s).
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert_eq!(text, "h264,32,16,10/1,12", "ffprobe: {text}");
}
