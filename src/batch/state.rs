//! A job's state from its files: done (final.png and a checkpoint at the last step), failed
//! (`failed.json`), running (a live claim), stopped (a checkpoint, no live claim), or waiting.
use super::claim::{self, Verdict};
use crate::generate::checkpoint;
use crate::rundir::RunDir;
use std::path::Path;

pub const FAILED: &str = "failed.json";

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Done,
    Failed(String),
    Running(String),
    Stopped(i64),
    Waiting,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Done => "done",
            State::Failed(_) => "failed",
            State::Running(_) => "running",
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

pub fn of(dir: &Path, steps: i64, stale_after: u64) -> State {
    let step = checkpoint_step(dir);
    if RunDir::new(dir).final_png().is_file() && step.is_some_and(|s| s >= steps) {
        return State::Done;
    }
    if let Verdict::Live(who) = claim::inspect(dir, stale_after) {
        return State::Running(who);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(FAILED)) {
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return State::Failed(msg);
    }
    match step {
        Some(s) => State::Stopped(s),
        None => State::Waiting,
    }
}
