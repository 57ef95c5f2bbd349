//! A job's state from its files: done (final.png and a checkpoint at the last step), running (a
//! live claim), stale (a claim whose holder is dead, with the reason), failed (`failed.json`),
//! stopped (a checkpoint, no claim), or waiting.
use super::claim::Verdict;
use crate::generate::checkpoint;
use crate::rundir::RunDir;
use std::path::Path;

pub const FAILED: &str = "failed.json";

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Done,
    Failed(String),
    /// Held by a live worker (who).
    Running(String),
    /// Held by a dead worker: who, and why it counts as dead.
    Stale(String, String),
    Stopped(i64),
    Waiting,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Done => "done",
            State::Failed(_) => "failed",
            State::Running(_) => "running",
            State::Stale(..) => "stale",
            State::Stopped(_) => "stopped",
            State::Waiting => "waiting",
        }
    }
}

/// The step the job's checkpoint holds (None without one).
pub fn checkpoint_step(dir: &Path) -> Option<i64> {
    RunDir::new(dir)
        .checkpoint()
        .and_then(|c| checkpoint::read_meta(&c).ok())
        .map(|m| m.step)
}

pub fn is_done(dir: &Path, steps: i64) -> bool {
    RunDir::new(dir).final_png().is_file() && checkpoint_step(dir).is_some_and(|s| s >= steps)
}

/// The job's state, its claim judged by `judge` (asked only when the job is not done).
pub fn of(dir: &Path, steps: i64, judge: impl FnOnce(&Path) -> Verdict) -> State {
    if is_done(dir, steps) {
        return State::Done;
    }
    match judge(dir) {
        Verdict::Live(h) | Verdict::Unsure(h, _) => return State::Running(h.who),
        Verdict::Stale(h, why) => return State::Stale(h.who, why),
        Verdict::Free => {}
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(FAILED)) {
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return State::Failed(msg);
    }
    match checkpoint_step(dir) {
        Some(s) => State::Stopped(s),
        None => State::Waiting,
    }
}
