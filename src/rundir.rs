//! The run directory: the one place that knows its file names, the step log's record, the PNG
//! metadata keys, where a run's checkpoint is, how `--count` and `--style-frames` runs are laid
//! out, and the lock a process holds while it writes there.
//!
//! ```text
//! RUN_DIR/
//!   .lock              held (flock) by the one process writing here; holds its pid
//!   run.toml           the resolved settings and a [run] provenance table
//!   log.jsonl          one StepRecord per step
//!   frames/NNNNNN.png  a frame every --save-every steps (style frames: one per input frame)
//!   final.png          the result (tiled.png beside it with --tile)
//!   index.html         the run's page
//!   video.mp4|gif      `vqclip video` / --video
//!   checkpoint/        the resume state (checkpoint.tmp/, checkpoint.old/ while it is replaced)
//!   seed-<n>/          --count: one run directory per seed
//!   runs/NNNNNN-name/  --style-frames: one run directory per input frame
//! ```
use crate::error::usage;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FINAL_PNG: &str = "final.png";
pub const TILED_PNG: &str = "tiled.png";
pub const RUN_TOML: &str = "run.toml";
pub const LOG: &str = "log.jsonl";
pub const PAGE: &str = "index.html";
pub const FRAMES: &str = "frames";
pub const VIDEO_MP4: &str = "video.mp4";
pub const VIDEO_GIF: &str = "video.gif";
pub const LOCK: &str = ".lock";
pub const CHECKPOINT: &str = "checkpoint";
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
pub const CHECKPOINT_OLD: &str = "checkpoint.old";
/// `--count` members are `seed-<n>/`.
pub const SEED_PREFIX: &str = "seed-";
/// `--style-frames` sub-runs live under `runs/`.
pub const STYLE_RUNS: &str = "runs";

/// The PNG text keys vqclip writes into every image.
pub const KEY_SETTINGS: &str = "vqclip:settings";
pub const KEY_PROMPT: &str = "vqclip:prompt";
pub const KEY_SEED: &str = "vqclip:seed";
pub const KEY_STEP: &str = "vqclip:step";
pub const KEY_SOFTWARE: &str = "Software";

/// One line of log.jsonl. The field order is the file's: the log's bytes depend on it. Every
/// field but the step may be missing (older logs have no `palette` or `noise_prompts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(deserialize_with = "whole_number")]
    pub step: i64,
    /// The animation frame (`--animation-dir`), written only in animation runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<i64>,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub prompts: Vec<f64>,
    /// `--label` terms, written only when there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<f64>,
    #[serde(default)]
    pub image_prompts: Vec<f64>,
    /// `--target-image` terms: written only when there are some, so other logs keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_images: Vec<f64>,
    #[serde(default)]
    pub noise_prompts: Vec<f64>,
    /// `--vector-prompt` terms, written only when there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vector_prompts: Vec<f64>,
    /// `--spot` and `--spot-off` terms, written only when there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spot: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spot_off: Vec<f64>,
    #[serde(default)]
    pub extra: Vec<f64>,
    /// The palette pull term (0 without `--palette`).
    #[serde(default)]
    pub palette: f64,
    /// The alpha term (`--transparent-weight`): written only when not 0, so other runs' logs
    /// keep their bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transparent: f64,
    #[serde(default)]
    pub lr: f64,
    #[serde(default)]
    pub seconds: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// A step written as `3` or `3.0`: the run page read steps as floats, so a whole float is taken.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole step number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<i64, E> {
            i64::try_from(v).map_err(E::custom)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<i64, E> {
            // Beyond 2^53 a float no longer names one step.
            if v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("step {v} is not a whole number")))
            }
        }
    }
    d.deserialize_any(V)
}

impl StepRecord {
    /// A log line, `None` when it does not parse (a line cut off by a kill) or has no step.
    pub fn parse(line: &str) -> Option<StepRecord> {
        serde_json::from_str(line).ok()
    }

    /// The record as its log line (no newline).
    pub fn to_line(&self) -> Result<String> {
        serde_json::to_string(self).context("cannot serialize log line")
    }
}

/// The records of log text that parse, in file order.
pub fn parse_log(text: &str) -> Vec<StepRecord> {
    text.lines().filter_map(StepRecord::parse).collect()
}

/// `text` without the records past `step` (and without lines that do not parse), the kept lines
/// byte for byte; `None` when every line is kept.
pub fn trim_log_text(text: &str, step: i64) -> Option<String> {
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| StepRecord::parse(l).is_some_and(|r| r.step <= step))
        .collect();
    if keep.len() == text.lines().count() {
        return None;
    }
    let mut body = keep.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    Some(body)
}

/// Writes `body` beside `path` and renames it into place (a kill leaves the old file or the new).
fn replace_file(path: &Path, body: &str) -> Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, body).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a directory name is a `--count` member's (`seed-<n>`).
pub fn is_seed_member(name: &str) -> bool {
    name.strip_prefix(SEED_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The file name of frame `n` (a step, or a style-frames index): zero-padded so names sort.
pub fn frame_name(n: i64) -> String {
    format!("{n:06}.png")
}

/// A run directory (which need not exist yet).
#[derive(Debug, Clone, PartialEq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn final_png(&self) -> PathBuf {
        self.path.join(FINAL_PNG)
    }

    pub fn tiled_png(&self) -> PathBuf {
        self.path.join(TILED_PNG)
    }

    pub fn run_toml(&self) -> PathBuf {
        self.path.join(RUN_TOML)
    }

    pub fn log(&self) -> PathBuf {
        self.path.join(LOG)
    }

    pub fn page(&self) -> PathBuf {
        self.path.join(PAGE)
    }

    pub fn frames_dir(&self) -> PathBuf {
        self.path.join(FRAMES)
    }

    /// `frames/NNNNNN.png` for step (or style-frames index) `n`.
    pub fn frame(&self, n: i64) -> PathBuf {
        self.frames_dir().join(frame_name(n))
    }

    pub fn video_mp4(&self) -> PathBuf {
        self.path.join(VIDEO_MP4)
    }

    pub fn video_gif(&self) -> PathBuf {
        self.path.join(VIDEO_GIF)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.path.join(LOCK)
    }

    /// The checkpoint directory, when there is a complete one (see `checkpoint::find`).
    pub fn checkpoint(&self) -> Option<PathBuf> {
        crate::generate::checkpoint::find(&self.path)
    }

    /// A result that is never overwritten silently: a final image or a checkpoint.
    pub fn has_result(&self) -> bool {
        self.final_png().exists() || self.checkpoint().is_some()
    }

    /// `--count`: the run directory of the member with `seed`.
    pub fn seed_member(&self, seed: u64) -> RunDir {
        RunDir::new(self.path.join(format!("{SEED_PREFIX}{seed}")))
    }

    /// `--count` members present: `seed-<n>/` subdirectories, sorted by name.
    pub fn seed_members(&self) -> Vec<RunDir> {
        subdirs(&self.path)
            .into_iter()
            .filter(|d| {
                d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_seed_member)
            })
            .map(RunDir::new)
            .collect()
    }

    pub fn style_runs_dir(&self) -> PathBuf {
        self.path.join(STYLE_RUNS)
    }

    /// `--style-frames`: the run directory of input frame `index` (from 1) named `name`.
    pub fn style_run(&self, index: usize, name: &str) -> RunDir {
        RunDir::new(self.style_runs_dir().join(format!("{index:06}-{name}")))
    }

    /// `--style-frames` sub-run directories present, sorted by name.
    pub fn style_runs(&self) -> Vec<RunDir> {
        subdirs(&self.style_runs_dir())
            .into_iter()
            .map(RunDir::new)
            .collect()
    }

    /// `frames/*.png`, in step order (the names are zero-padded steps).
    pub fn frames(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.frames_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "png"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The log's records that parse (a line being written may be cut off); none without a log.
    pub fn read_log(&self) -> Vec<StepRecord> {
        std::fs::read_to_string(self.log())
            .map(|t| parse_log(&t))
            .unwrap_or_default()
    }

    /// Opens the log for appending (created when missing).
    pub fn open_log(&self) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .with_context(|| format!("cannot open {}", self.log().display()))?;
        Ok(LogWriter { file })
    }

    /// Drops log lines past `step` (a kill -9 after the last save logged steps that the resumed
    /// run does again), so the log holds each step once. An untouched log is not rewritten.
    pub fn trim_log(&self, step: i64) -> Result<()> {
        let path = self.log();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        match trim_log_text(&text, step) {
            Some(body) => replace_file(&path, &body),
            None => Ok(()),
        }
    }

    /// Keeps the log's first `n` records (an animation's checkpoint counts records, not steps:
    /// its frames log the same step numbers in turn).
    pub fn trim_log_records(&self, n: usize) -> Result<()> {
        let path = self.log();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let keep: Vec<&str> = text
            .lines()
            .filter(|l| StepRecord::parse(l).is_some())
            .take(n)
            .collect();
        if keep.len() == text.lines().count() {
            return Ok(());
        }
        let mut body = keep.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        replace_file(&path, &body)
    }

    /// Removes what an earlier run left here (log, images, frames, checkpoints, page, videos): a new
    /// run in this directory (over a finished one with `--force`, or after a start that died before
    /// its first checkpoint) must not mix its log and frames with the old ones. Only our own names
    /// are touched; the caller holds the lock.
    pub fn clear_run(&self) -> Result<()> {
        let files = [
            self.log(),
            self.final_png(),
            self.tiled_png(),
            self.page(),
            self.video_mp4(),
            self.video_gif(),
        ];
        for f in files {
            match std::fs::remove_file(&f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", f.display()));
                }
                _ => {}
            }
        }
        for d in [CHECKPOINT, CHECKPOINT_TMP, CHECKPOINT_OLD, FRAMES] {
            let d = self.path.join(d);
            if d.is_dir() {
                std::fs::remove_dir_all(&d)
                    .with_context(|| format!("cannot remove {}", d.display()))?;
            }
        }
        Ok(())
    }

    /// Takes the run directory for this process (creating it), or says who has it. `flag` is the
    /// option that named the directory (`--out`, `--resume`), for the refusal.
    pub fn lock(&self, flag: &str) -> Result<RunLock> {
        match self.try_lock()? {
            Ok(lock) => Ok(lock),
            Err(Locked { pid }) => {
                let who = pid.map_or("another vqclip".to_string(), |p| {
                    format!("another vqclip (pid {p})")
                });
                let advice = if flag == "--resume" {
                    "wait for it to finish"
                } else {
                    "wait for it or choose another --out"
                };
                Err(usage(format!(
                    "{flag} {}: {who} is writing this run directory; {advice}",
                    self.path.display()
                )))
            }
        }
    }

    /// Like [`RunDir::lock`], with a held directory as a value rather than an error (IO errors
    /// stay errors).
    pub fn try_lock(&self) -> Result<std::result::Result<RunLock, Locked>> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        let path = self.lock_file();
        // A holder unlinks the file as it lets go: a lock taken on the unlinked file guards
        // nothing, so take it again on the file now at the path.
        for _ in 0..16 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            // flock(LOCK_EX | LOCK_NB): it dies with the process, so a stale file never blocks.
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Ok(Err(Locked {
                        pid: read_holder(&path),
                    }));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0)
                .and_then(|_| writeln!(file, "{}", std::process::id()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(Ok(RunLock { file, path }));
        }
        bail!("cannot lock {}: it keeps being replaced", path.display())
    }
}

/// The run directory is held by another process.
#[derive(Debug, Clone, PartialEq)]
pub struct Locked {
    /// The holder's pid, when its lock file says.
    pub pid: Option<u32>,
}

/// The holder's pid from its lock file. The holder writes it just after locking, so an empty
/// file is read again for a moment.
fn read_holder(path: &Path) -> Option<u32> {
    for _ in 0..10 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// This process writes the run directory while this lives. Dropped, the lock file is removed
/// (then closed, which lets go of the lock).
#[derive(Debug)]
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlinked while still held, so no one else can lock this file and then lose it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The open log of a run.
pub struct LogWriter {
    file: std::fs::File,
}

impl LogWriter {
    /// One line per record, as they are.
    pub fn append(&mut self, records: &[StepRecord]) -> Result<()> {
        for r in records {
            let line = r.to_line()?;
            writeln!(self.file, "{line}").context("cannot write log.jsonl")?;
        }
        Ok(())
    }
}

/// The folders in `dir`, sorted (none when it cannot be read).
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
