//! Claim files: a worker owns a job while `JOB_DIR/claim.json` names it. The file is created
//! with `O_EXCL` (exactly one worker wins), its heartbeat is refreshed while the job runs, and a
//! claim whose heartbeat is older than `stale_after` (a killed or lost worker) is taken over by
//! renaming it away first, which also only one worker can do.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const FILE: &str = "claim.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimInfo {
    pub host: String,
    pub pid: u32,
    pub worker: String,
    /// Unix seconds.
    pub started: u64,
    pub heartbeat: u64,
}

/// What a job's claim file says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Free,
    Live(String),
    Stale(String),
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

pub fn read(dir: &Path) -> Option<std::result::Result<ClaimInfo, String>> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).map_err(|e| format!("unreadable claim file ({e})")))
}

/// Free, held by a live worker, or stale. A corrupt or foreign file counts by its age on disk.
pub fn inspect(dir: &Path, stale_after: u64) -> Verdict {
    let age_of_file = || {
        std::fs::metadata(dir.join(FILE))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    match read(dir) {
        None => Verdict::Free,
        Some(Ok(c)) => {
            let age = now().saturating_sub(c.heartbeat);
            let who = format!(
                "{} pid {} ({}), heartbeat {age} s ago",
                c.host, c.pid, c.worker
            );
            if age > stale_after {
                Verdict::Stale(who)
            } else {
                Verdict::Live(who)
            }
        }
        Some(Err(why)) => {
            let age = age_of_file();
            let who = format!("{why}, written {age} s ago");
            if age > stale_after {
                Verdict::Stale(who)
            } else {
                Verdict::Live(who)
            }
        }
    }
}

/// A held claim; its heartbeat thread runs until [`Claim::release`] (or drop).
pub struct Claim {
    dir: PathBuf,
    info: ClaimInfo,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the claim was taken over from a stale worker (for the log).
    pub took_over: Option<String>,
}

fn write_info(dir: &Path, info: &ClaimInfo) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp-{}", info.pid));
    std::fs::write(&tmp, serde_json::to_vec(info)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(FILE)).context("cannot refresh the claim")
}

/// Tries to own the job in `dir`: Ok(None) when another live worker has it (or won the race).
pub fn try_claim(dir: &Path, worker: &str, stale_after: u64) -> Result<Option<Claim>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut took_over = None;
    match inspect(dir, stale_after) {
        Verdict::Live(_) => return Ok(None),
        Verdict::Stale(who) => {
            // Only one renamer can succeed; the loser finds no file to move and stands back.
            let aside = dir.join(format!("{FILE}.stale-{}-{}", std::process::id(), now()));
            if std::fs::rename(dir.join(FILE), &aside).is_err() {
                return Ok(None);
            }
            took_over = Some(who);
        }
        Verdict::Free => {}
    }
    let info = ClaimInfo {
        host: hostname(),
        pid: std::process::id(),
        worker: worker.to_string(),
        started: now(),
        heartbeat: now(),
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(FILE));
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", dir.join(FILE).display()));
        }
    };
    file.write_all(&serde_json::to_vec(&info)?)
        .and_then(|()| file.sync_all())
        .context("cannot write the claim")?;
    let stop = Arc::new(AtomicBool::new(false));
    let beat = Duration::from_secs((stale_after / 4).clamp(1, 30));
    let thread = {
        let (stop, dir, info) = (stop.clone(), dir.to_path_buf(), info.clone());
        std::thread::spawn(move || {
            let mut info = info;
            let tick = Duration::from_millis(200);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(tick);
                waited += tick;
                if waited < beat {
                    continue;
                }
                waited = Duration::ZERO;
                // Still ours? (A worker paused past stale_after may have lost it.)
                match read(&dir) {
                    Some(Ok(c))
                        if c.pid == info.pid
                            && c.host == info.host
                            && c.started == info.started =>
                    {
                        info.heartbeat = now();
                        let _ = write_info(&dir, &info);
                    }
                    _ => break,
                }
            }
        })
    };
    Ok(Some(Claim {
        dir: dir.to_path_buf(),
        info,
        stop,
        thread: Some(thread),
        took_over,
    }))
}

impl Claim {
    fn stop_heartbeat(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the heartbeat and removes the claim file if it is still this worker's.
    pub fn release(mut self) {
        self.stop_heartbeat();
        if let Some(Ok(c)) = read(&self.dir)
            && c.pid == self.info.pid
            && c.host == self.info.host
            && c.started == self.info.started
        {
            let _ = std::fs::remove_file(self.dir.join(FILE));
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}
