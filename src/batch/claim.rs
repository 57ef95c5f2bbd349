//! Claim files: a worker owns a job while `JOB_DIR/claim.json` names it.
//!
//! - **Taking a claim** is NFS-safe: the worker writes a file of its own (`claim.json.new-TOKEN`),
//!   `link()`s it to `claim.json` and counts the links; `link()` is atomic on NFSv2/v3 where
//!   `O_EXCL` is not, and the link count settles a reply lost on the way back.
//! - **Liveness** never compares clocks of two hosts. A claim names its host, boot, pid namespace,
//!   pid and the process's start time (`/proc/PID/stat`): on this host a gone or reused pid is seen
//!   at once. A claim from elsewhere carries a heartbeat counter (`claim.beat-TOKEN`, rewritten in
//!   place every `stale_after`/6 s); a reader ([`Watch`]) calls it stale when the counter has not
//!   moved for `stale_after` seconds of the reader's own monotonic clock.
//! - `claim.json` is never rewritten while held, so a worker that was paused past `stale_after`
//!   cannot overwrite its successor's claim: its heartbeat sees the token change and gives up.
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const FILE: &str = "claim.json";
const BEAT: &str = "claim.beat-";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimInfo {
    pub host: String,
    pub pid: u32,
    pub worker: String,
    /// Unix seconds, for people only: no decision reads another host's clock.
    pub started: u64,
    /// Unix seconds at the claim (kept for readers of the first format).
    pub heartbeat: u64,
    /// The holder's shard, "I/N".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Unique per claim; names its heartbeat file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `/proc/PID/stat` field 22 (clock ticks since boot): tells a reused pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
}

impl ClaimInfo {
    fn who(&self) -> String {
        format!(
            "{} pid {} ({}{})",
            self.host,
            self.pid,
            self.worker,
            self.shard
                .as_ref()
                .map(|s| format!(", shard {s}"))
                .unwrap_or_default()
        )
    }

    fn beat_file(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("{BEAT}{t}"))
    }
}

/// Who holds a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// "host pid N (worker, shard I/N)", or what was wrong with the file.
    pub who: String,
    pub shard: Option<String>,
    /// Judged by its pid on this host (else by its heartbeat counter).
    pub local: bool,
    /// The claim file's bytes when judged (a takeover checks it moves this one).
    bytes: Vec<u8>,
    info: Option<Box<ClaimInfo>>,
}

/// What a job's claim says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Free,
    Live(Holder),
    /// A claim from another host whose counter has not moved yet while watched: stale after this
    /// much more of the reader's clock unless it beats.
    Unsure(Holder, Duration),
    /// Dead, with the reason ("pid 12 gone on this host", "no heartbeat for 300 s").
    Stale(Holder, String),
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

/// This process's place: a claim with the same host, boot and pid namespace is judged by its pid.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    host: String,
    boot_id: Option<String>,
    pid_ns: Option<String>,
}

fn place() -> Place {
    Place {
        host: hostname(),
        boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        pid_ns: std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
    }
}

/// A process's state letter and start time (clock ticks after boot), from `/proc/PID/stat`.
/// The command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
pub fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The claim file's bytes, parsed (None when there is no claim).
fn read_raw(dir: &Path) -> Option<(Vec<u8>, std::result::Result<ClaimInfo, String>)> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    let info = serde_json::from_slice(&bytes).map_err(|e| format!("unreadable claim file ({e})"));
    Some((bytes, info))
}

pub fn read(dir: &Path) -> Option<std::result::Result<ClaimInfo, String>> {
    read_raw(dir).map(|(_, i)| i)
}

/// The judgement that needs no watching: free, or a claim of this host's judged by its pid.
/// Err(holder) for a claim that must be judged by its heartbeat.
fn judge_by_pid(dir: &Path, here: &Place) -> std::result::Result<Verdict, Holder> {
    let Some((bytes, info)) = read_raw(dir) else {
        return Ok(Verdict::Free);
    };
    let holder = |local| {
        let (who, shard, info) = match &info {
            Ok(c) => (c.who(), c.shard.clone(), Some(Box::new(c.clone()))),
            Err(why) => (why.clone(), None, None),
        };
        Holder {
            who,
            shard,
            local,
            bytes: bytes.clone(),
            info,
        }
    };
    let Ok(c) = &info else {
        return Err(holder(false));
    };
    let same_place = c.host == here.host
        && c.boot_id.is_some()
        && c.boot_id == here.boot_id
        && c.pid_ns.is_some()
        && c.pid_ns == here.pid_ns;
    if !same_place {
        return Err(holder(false));
    }
    Ok(match (proc_stat(c.pid), c.proc_start) {
        (None, _) | (Some(('Z' | 'X', _)), _) => {
            Verdict::Stale(holder(true), format!("pid {} gone on this host", c.pid))
        }
        (Some((_, start)), Some(claimed)) if start != claimed => Verdict::Stale(
            holder(true),
            format!("pid {} now belongs to another process", c.pid),
        ),
        _ => Verdict::Live(holder(true)),
    })
}

/// The heartbeat as bytes: the claim file and its counter file. Any change is a beat.
fn fingerprint(dir: &Path, h: &Holder) -> Vec<u8> {
    let mut f = h.bytes.clone();
    if let Some(beat) = h.info.as_ref().and_then(|c| c.beat_file()) {
        f.push(0);
        f.extend(std::fs::read(dir.join(beat)).unwrap_or_default());
    }
    f
}

/// The reader's memory of other hosts' claims: each job's heartbeat and when, on this process's
/// monotonic clock, it last changed.
pub struct Watch {
    stale_after: Duration,
    here: Place,
    seen: HashMap<PathBuf, Seen>,
}

struct Seen {
    print: Vec<u8>,
    since: Instant,
    /// The heartbeat changed while watched (the holder is live).
    moved: bool,
}

impl Watch {
    pub fn new(stale_after: Duration) -> Watch {
        Watch {
            stale_after,
            here: place(),
            seen: HashMap::new(),
        }
    }

    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    pub fn judge(&mut self, dir: &Path) -> Verdict {
        let holder = match judge_by_pid(dir, &self.here) {
            Ok(v) => {
                self.seen.remove(dir);
                return v;
            }
            Err(h) => h,
        };
        let print = fingerprint(dir, &holder);
        let now = Instant::now();
        let seen = self.seen.entry(dir.to_path_buf()).or_insert(Seen {
            print: print.clone(),
            since: now,
            moved: false,
        });
        if seen.print != print {
            // A new claim (other bytes in claim.json) has not beaten yet; a new count has.
            let same_claim = seen.print.split(|b| *b == 0).next() == Some(&holder.bytes[..]);
            *seen = Seen {
                print,
                since: now,
                moved: same_claim,
            };
        }
        let quiet = now.duration_since(seen.since);
        if quiet >= self.stale_after {
            Verdict::Stale(
                holder,
                format!("no heartbeat for {} s", quiet.as_secs_f64().round()),
            )
        } else if seen.moved {
            Verdict::Live(holder)
        } else {
            Verdict::Unsure(holder, self.stale_after - quiet)
        }
    }
}

/// One look, for `batch status`: a claim of this host by its pid; one from elsewhere by the age
/// of its heartbeat on the file system's own clock (a file written now beside it), which is the
/// server's on NFS and so skew-free between clients.
pub fn inspect_once(dir: &Path, stale_after: u64) -> Verdict {
    let holder = match judge_by_pid(dir, &place()) {
        Ok(v) => return v,
        Err(h) => h,
    };
    let beat = holder
        .info
        .as_ref()
        .and_then(|c| c.beat_file())
        .map(|b| dir.join(b))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| dir.join(FILE));
    let written = std::fs::metadata(&beat).and_then(|m| m.modified()).ok();
    let probe = dir.join(format!(".clock-{}", std::process::id()));
    let fs_now = std::fs::write(&probe, b"")
        .and_then(|()| std::fs::metadata(&probe))
        .and_then(|m| m.modified())
        .ok();
    let _ = std::fs::remove_file(&probe);
    let now = fs_now.unwrap_or_else(SystemTime::now);
    let age = written
        .and_then(|w| now.duration_since(w).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if age > stale_after {
        Verdict::Stale(holder, format!("no heartbeat for {age} s"))
    } else {
        Verdict::Live(holder)
    }
}

/// A held claim; its heartbeat thread runs until [`Claim::release`] (or drop).
pub struct Claim {
    dir: PathBuf,
    info: ClaimInfo,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the claim was taken over from a dead worker: who, and why it was dead.
    pub took_over: Option<String>,
}

fn token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:x}-{:08x}",
        hostname().replace(['/', ' '], "_"),
        std::process::id(),
        rand::random::<u32>()
    )
}

fn write_beat(path: &Path, count: u64) -> std::io::Result<()> {
    // In place (not a renamed file): NFS readers revalidate an open file, not a cached name.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(format!("{count}\n").as_bytes())?;
    f.sync_data()
}

/// Links a file of our own to `claim.json`: true when ours is the claim.
fn link_claim(dir: &Path, info: &ClaimInfo, token: &str) -> Result<bool> {
    let mine = dir.join(format!("{FILE}.new-{token}"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&mine)
            .with_context(|| format!("cannot create {}", mine.display()))?;
        f.write_all(&serde_json::to_vec(info)?)
            .and_then(|()| f.sync_all())
            .context("cannot write the claim")?;
    }
    let linked = std::fs::hard_link(&mine, dir.join(FILE));
    // The link count decides, not link()'s answer: over NFS a lost reply can report a failure
    // for a link that was made.
    let links = std::fs::metadata(&mine).map(|m| m.nlink()).unwrap_or(1);
    // (A finishing worker may have swept our file away: then the claim itself says whose it is.)
    let ours = links >= 2 || matches!(read(dir), Some(Ok(c)) if c.token.as_deref() == Some(token));
    let _ = std::fs::remove_file(&mine);
    match linked {
        Err(e)
            if !ours
                && !matches!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                ) =>
        {
            bail!(
                "cannot claim a job in {} ({e}): batch claims jobs with hard links, which this file system must support (local disks, NFS, CephFS, Lustre and GPFS do)",
                dir.display()
            )
        }
        _ => Ok(ours),
    }
}

/// Tries to own the job in `dir` after `verdict` (from [`Watch::judge`]): Ok(None) when it is
/// held by a live or not yet judged worker, or another worker won the race.
pub fn try_claim(
    dir: &Path,
    worker: &str,
    shard: &str,
    stale_after: Duration,
    verdict: Verdict,
) -> Result<Option<Claim>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut took_over = None;
    match verdict {
        Verdict::Live(_) | Verdict::Unsure(..) => return Ok(None),
        Verdict::Stale(holder, why) => {
            // Only one renamer can move a given file; the claim moved must be the one judged dead,
            // else a fresh claim was moved by mistake and is put back.
            let aside = dir.join(format!("{FILE}.stale-{}", token()));
            if std::fs::rename(dir.join(FILE), &aside).is_err() {
                return Ok(None);
            }
            let moved = std::fs::read(&aside).unwrap_or_default();
            if moved != holder.bytes {
                let _ = std::fs::hard_link(&aside, dir.join(FILE));
                let _ = std::fs::remove_file(&aside);
                return Ok(None);
            }
            let _ = std::fs::remove_file(&aside);
            if let Some(t) = holder.info.as_ref().and_then(|c| c.token.as_ref()) {
                let _ = std::fs::remove_file(dir.join(format!("{BEAT}{t}")));
                let _ = std::fs::remove_file(dir.join(format!("{FILE}.new-{t}")));
            }
            took_over = Some(format!("{} ({why})", holder.who));
        }
        Verdict::Free => {}
    }
    let here = place();
    let pid = std::process::id();
    let token = token();
    let info = ClaimInfo {
        host: here.host,
        pid,
        worker: worker.to_string(),
        started: now(),
        heartbeat: now(),
        shard: Some(shard.to_string()),
        token: Some(token.clone()),
        proc_start: proc_stat(pid).map(|(_, s)| s),
        boot_id: here.boot_id,
        pid_ns: here.pid_ns,
    };
    let beat_path = dir.join(format!("{BEAT}{token}"));
    write_beat(&beat_path, 0).with_context(|| format!("cannot write {}", beat_path.display()))?;
    if !link_claim(dir, &info, &token)? {
        let _ = std::fs::remove_file(&beat_path);
        return Ok(None);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(Mutex::new(None));
    let every = beat_interval(stale_after);
    let thread = {
        let (stop, lost, dir) = (stop.clone(), lost.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            let tick = Duration::from_millis(50).min(every);
            let (mut waited, mut count) = (Duration::ZERO, 0u64);
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(tick);
                waited += tick;
                if waited < every {
                    continue;
                }
                waited = Duration::ZERO;
                // Still ours? (A worker paused past stale_after may have been taken over.)
                match read(&dir) {
                    Some(Ok(c)) if c.token.as_deref() == Some(token.as_str()) => {
                        count += 1;
                        let _ = write_beat(&beat_path, count);
                    }
                    other => {
                        let by = match other {
                            Some(Ok(c)) => format!("taken over by {}", c.who()),
                            Some(Err(e)) => format!("replaced by an {e}"),
                            None => "removed".to_string(),
                        };
                        if let Ok(mut l) = lost.lock() {
                            *l = Some(format!("its claim was {by}"));
                        }
                        break;
                    }
                }
            }
        })
    };
    Ok(Some(Claim {
        dir: dir.to_path_buf(),
        info,
        stop,
        lost,
        thread: Some(thread),
        took_over,
    }))
}

/// How often a holder beats: six times per `stale_after`, between 0.2 and 10 s.
pub fn beat_interval(stale_after: Duration) -> Duration {
    (stale_after / 6).clamp(Duration::from_millis(200), Duration::from_secs(10))
}

impl Claim {
    fn stop_heartbeat(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Why this worker no longer holds the claim (another worker took it over), if so.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// A handle the generate loop can poll for [`Claim::lost`].
    pub fn lost_flag(&self) -> Arc<Mutex<Option<String>>> {
        self.lost.clone()
    }

    /// Stops the heartbeat and removes the claim if it is still this worker's.
    pub fn release(mut self) {
        self.stop_heartbeat();
        if let Some(Ok(c)) = read(&self.dir)
            && c.token == self.info.token
        {
            let _ = std::fs::remove_file(self.dir.join(FILE));
        }
        if let Some(beat) = self.info.beat_file() {
            let _ = std::fs::remove_file(self.dir.join(beat));
        }
        // What workers killed mid-claim left (a counter, a file not yet linked), once the job
        // has no holder.
        if !self.dir.join(FILE).exists()
            && let Ok(entries) = std::fs::read_dir(&self.dir)
        {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(BEAT)
                    || name.starts_with(&format!("{FILE}.new-"))
                    || name.starts_with(&format!("{FILE}.stale-"))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vqclip-claim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn proc_stat_reads_this_process() {
        let (state, start) = proc_stat(std::process::id()).unwrap();
        assert!(state != 'Z' && state != 'X', "{state}");
        assert!(start > 0);
        assert_eq!(proc_stat(u32::MAX), None);
    }

    #[test]
    fn one_claimer_wins_and_the_claim_is_judged_by_its_pid() {
        let d = tmp("one");
        let s = Duration::from_secs(60);
        let mut w = Watch::new(s);
        assert_eq!(w.judge(&d), Verdict::Free);
        let c = try_claim(&d, "test", "1/1", s, Verdict::Free)
            .unwrap()
            .unwrap();
        // link() leaves only the claim and its counter
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[1], FILE);
        assert!(names[0].starts_with(BEAT));
        assert!(matches!(w.judge(&d), Verdict::Live(h) if h.local));
        // a second claimer (as after a stale verdict on the same file) loses
        assert!(
            try_claim(&d, "test", "1/1", s, Verdict::Free)
                .unwrap()
                .is_none()
        );
        c.release();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        assert_eq!(w.judge(&d), Verdict::Free);
    }

    #[test]
    fn many_threads_racing_for_one_job_give_one_winner() {
        let d = tmp("race");
        for _ in 0..20 {
            let (go, tried) = (std::sync::Barrier::new(6), std::sync::Barrier::new(6));
            let winners: usize = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..6)
                    .map(|_| {
                        sc.spawn(|| {
                            go.wait();
                            let c =
                                try_claim(&d, "t", "1/1", Duration::from_secs(60), Verdict::Free)
                                    .unwrap();
                            // the winner holds the claim until every racer has tried
                            tried.wait();
                            c.map(Claim::release).is_some() as usize
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(winners, 1);
        }
    }

    #[test]
    fn a_foreign_claim_is_judged_by_its_counter_on_the_readers_clock() {
        let d = tmp("foreign");
        let claim = |token: &str, skew: i64| {
            let info = ClaimInfo {
                host: "elsewhere".into(),
                pid: 1,
                worker: "w".into(),
                started: (now() as i64 + skew) as u64,
                heartbeat: (now() as i64 + skew) as u64,
                shard: Some("1/1".into()),
                token: Some(token.into()),
                proc_start: Some(1),
                boot_id: Some("b".into()),
                pid_ns: Some("p".into()),
            };
            std::fs::write(d.join(FILE), serde_json::to_vec(&info).unwrap()).unwrap();
        };
        let beat = |token: &str, count: u64| {
            std::fs::write(d.join(format!("{BEAT}{token}")), format!("{count}\n")).unwrap()
        };
        let s = Duration::from_millis(400);
        let mut w = Watch::new(s);
        // a host whose clock is an hour behind, beating: live however old its wall times look
        claim("a", -3600);
        beat("a", 0);
        assert!(matches!(w.judge(&d), Verdict::Unsure(..)));
        for count in 1..5 {
            beat("a", count);
            assert!(matches!(w.judge(&d), Verdict::Live(ref h) if !h.local));
            std::thread::sleep(Duration::from_millis(250));
        }
        // a new claim from a host an hour ahead, never beating: stale after 400 ms of this clock
        claim("b", 3600);
        beat("b", 0);
        let t = Instant::now();
        assert!(matches!(w.judge(&d), Verdict::Unsure(..)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(w.judge(&d), Verdict::Unsure(..)));
        std::thread::sleep(Duration::from_millis(250));
        match w.judge(&d) {
            Verdict::Stale(h, why) => {
                assert!(t.elapsed() >= s);
                assert!(why.starts_with("no heartbeat for"), "{why}");
                assert!(h.who.contains("elsewhere pid 1"), "{}", h.who);
            }
            v => panic!("{v:?}"),
        }
    }
}
