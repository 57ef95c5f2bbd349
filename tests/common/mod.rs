//! Helpers shared by the integration tests. Every `tests/*.rs` is a crate of its own and takes this
//! file with `mod common;`; no file uses every helper, hence the `allow(dead_code)`.
//!
//! What differs between test files (a weights directory, a `PATH`, a file's usual size and seed) stays
//! in that file as a small wrapper around these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The vqclip binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_vqclip");
/// The repository root; tests run from here and the relative fixture paths below start here.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The tiny random VQGAN and CLIP of tests/fixtures (see tests/fixtures/README.md).
pub const VQGAN: &str = "tests/fixtures/vqgan_tiny.ckpt";
pub const CLIP: &str = "tests/fixtures/clip_tiny.pt";

/// The repository root, or `$VQCLIP_TEST_ROOT` (scripts/gpu-check's bundle runs these tests on
/// another machine, from another directory).
pub fn root() -> PathBuf {
    std::env::var_os("VQCLIP_TEST_ROOT").map_or_else(|| PathBuf::from(ROOT), PathBuf::from)
}

/// The vqclip binary: cargo's, or `$VQCLIP_TEST_BIN` (the bundle's).
pub fn bin() -> PathBuf {
    std::env::var_os("VQCLIP_TEST_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

/// The device the model, drawer and loop tests run on: `$VQCLIP_TEST_DEVICE` (cpu, cuda or
/// cuda:N; default cpu). On CUDA, TF32 is switched off, so f32 stays f32.
pub fn device() -> tch::Device {
    let spec = std::env::var("VQCLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".to_string());
    let d = vqclip::device::parse_device(&spec)
        .unwrap_or_else(|e| panic!("VQCLIP_TEST_DEVICE={spec}: {e:#}"));
    if d.is_cuda() {
        vqclip::aten::set_tf32(false).unwrap();
    }
    d
}

/// A parity bar: `cpu` on the CPU, `cuda` on a CUDA test device (other kernels, other sums).
pub fn tol(cpu: f64, cuda: f64) -> f64 {
    if device().is_cuda() { cuda } else { cpu }
}

/// `tests/fixtures/NAME`, as an absolute path.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// `vqclip-<test file>-<pid>-<name>` in the system temp directory: one name per test binary and process.
fn tmp_name(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "vqclip-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ))
}

/// A fresh, empty temporary directory (whatever an earlier run left there is removed).
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = tmp_name(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A temporary path that does not exist (a leftover is removed): for `--out` run directories, which
/// vqclip creates itself.
pub fn tmp_path(name: &str) -> PathBuf {
    let d = tmp_name(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A temporary directory that is created if missing and never cleared: for one directory that several
/// tests of a binary use at the same time (clearing it would pull it from under a running test).
pub fn shared_dir(name: &str) -> PathBuf {
    let d = tmp_name(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The binary as a `Command`, run from the repository root.
pub fn vqclip() -> Command {
    let mut c = Command::new(bin());
    c.current_dir(root());
    // `--precision auto` by the CPU-flag rule, not by this machine's timings (tests/precision.rs
    // checks the measurement itself).
    c.env("VQCLIP_PRECISION_AUTO", "flags");
    c
}

/// Runs the binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Output {
    vqclip().args(args).output().unwrap()
}

/// `vqclip generate --quiet --resume DIR EXTRA...`.
pub fn resume(dir: &Path, extra: &[&str]) -> Output {
    vqclip()
        .args(["generate", "--quiet", "--resume"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts exit 0 (showing stderr if not) and returns stderr.
pub fn ok(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    err
}

/// Asserts exit `code` and that stderr contains `needle`.
pub fn fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// The decoded RGB pixels of an image file (PNGs of equal pictures differ in their text chunks).
pub fn pixels(png: &Path) -> image::RgbImage {
    vqclip::image_io::load_rgb(png).unwrap()
}

/// Byte-identical files (compared without printing megabytes on failure).
pub fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// The rows of a run's log.jsonl.
pub fn log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The rows of a run's log.jsonl without `seconds` (the only field that changes between equal runs).
pub fn log_values(dir: &Path) -> Vec<serde_json::Value> {
    let mut rows = log(dir);
    for r in &mut rows {
        r.as_object_mut().unwrap().remove("seconds");
    }
    rows
}

/// The `loss` column of a run's log.jsonl.
pub fn losses(dir: &Path) -> Vec<f64> {
    log(dir)
        .iter()
        .map(|r| r["loss"].as_f64().unwrap())
        .collect()
}
