//! `vqclip batch FILE --out ROOT [generate flags]` and `vqclip batch status ROOT`.
//!
//! Every job is resolved before any work (exit 2 names the job); the list is written to
//! `ROOT/batch.json` for `status`. This worker runs its shard's jobs, then (with `--steal`) any
//! other job that is unclaimed or whose claim went stale. A job runs in its own directory as an
//! ordinary run (from `job.toml`, or `--resume` from its checkpoint). A failing job gets
//! `failed.json` and the others go on; Ctrl-C/SIGTERM saves the running job's checkpoint, frees
//! its claim and exits 130 so the engine requeues the task.
use crate::batch::claim;
use crate::batch::state::{self, State};
use crate::batch::{Job, load_jobs, shard};
use crate::cli::{BatchArgs, BatchCommand, GenerateArgs};
use crate::error::{Abandoned, Interrupted, usage};
use crate::rundir::{Locked, RunDir};
use crate::settings::PartialSettings;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "batch.json";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ManifestJob {
    index: usize,
    id: String,
    dir: String,
    origin: String,
    prompt: String,
    steps: i64,
}

pub fn run(args: &BatchArgs) -> Result<()> {
    if let Some(BatchCommand::Status {
        root,
        json,
        stale_after,
    }) = &args.command
    {
        return status(root, *json, *stale_after);
    }
    let g = &args.generate;
    // With --style-frames the one positional argument is the prompt for every frame.
    let (file, frames_prompt) = match (&args.file, &g.style_frames) {
        (Some(f), Some(_)) if g.settings.prompts.is_none() => {
            (None, Some(f.to_string_lossy().into_owned()))
        }
        (f, _) => (f.clone(), None),
    };
    for (set, flag) in [
        (
            g.settings.prompts.is_some(),
            "a PROMPT argument (prompts come from FILE)",
        ),
        (
            g.resume.is_some(),
            "--resume (a batch resumes its jobs by itself)",
        ),
        (g.count.is_some(), "--count (use a [grid] with seeds)"),
        (g.force, "--force"),
        (g.video, "--video (run vqclip video on a job's directory)"),
    ] {
        if set {
            return Err(usage(format!("batch does not take {flag}")));
        }
    }
    let root = g
        .out
        .clone()
        .ok_or_else(|| usage("batch needs --out ROOT: the folder for the jobs' run directories"))?;
    let mut cli = PartialSettings::default();
    if let Some(cfg) = &g.config {
        cli.merge(crate::runplan::read_config(cfg)?);
    }
    let mut flags = PartialSettings::from_args(&g.settings);
    if let Some(p) = frames_prompt {
        flags.prompts = Some(crate::settings::PromptList::One(p));
    }
    // The device is the worker's, not the job's: it is not part of a job's settings or id.
    flags.device = None;
    cli.merge(flags);
    let jobs = load_jobs(
        file.as_deref(),
        g.style_frames.as_deref(),
        &cli,
        &g.preset,
        &root,
    )?;
    let shard = shard::resolve(args.shard.as_deref(), args.shards, &|k| {
        std::env::var(k).ok()
    })?;
    if g.dry_run {
        let mut out = format!(
            "# vqclip batch --dry-run: {} jobs, shard {} of {} ({})\n",
            jobs.len(),
            shard.index + 1,
            shard.count,
            shard.source
        );
        for j in &jobs {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                j.id,
                if shard.owns(j.index) { "mine" } else { "other" },
                j.origin,
                j.dir.display()
            ));
        }
        return crate::cmd::print_stdout(&out);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    write_manifest(&root, &jobs)?;
    if let Some(devices) = &args.devices {
        return run_workers(devices);
    }
    crate::interrupt::requested(); // SIGTERM while waiting for a claim exits 130 too
    let shard_name = format!("{}/{}", shard.index + 1, shard.count);
    let worker = format!(
        "shard {shard_name} ({}){}",
        shard.source,
        g.settings
            .device
            .as_ref()
            .map(|d| format!(" on {d}"))
            .unwrap_or_default()
    );
    let say = |msg: String| {
        if !g.quiet {
            eprintln!("batch [{worker}]: {msg}");
        }
    };
    let stale_after = std::time::Duration::from_secs(args.stale_after.max(1));
    let mut w = Worker {
        g,
        shard: shard_name,
        watch: claim::Watch::new(stale_after),
    };
    let mut failed: Vec<String> = Vec::new();
    let (mine, others): (Vec<&Job>, Vec<&Job>) = jobs.iter().partition(|j| shard.owns(j.index));
    // This shard's jobs: run each, and wait for any held by a worker that is not known live (or
    // by a live one of this shard, which may still die) until it finishes or is taken over.
    let poll = (stale_after / 10).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(1),
    );
    let mut todo = mine;
    let mut told: std::collections::HashMap<String, String> = Default::default();
    loop {
        let mut again = Vec::new();
        for job in todo {
            let outcome = w.run_job(job)?;
            let wait_line = match &outcome {
                Outcome::AlreadyDone => {
                    say(format!("{} already done", job.id));
                    None
                }
                Outcome::Ran(took) => {
                    say(format!(
                        "{} done ({}){}",
                        job.id,
                        job.origin,
                        took.as_ref()
                            .map(|w| format!(", taken over from {w}"))
                            .unwrap_or_default()
                    ));
                    None
                }
                Outcome::Failed(e) => {
                    say(format!("{} FAILED: {e}", job.id));
                    failed.push(format!("{} ({}): {e}", job.id, job.origin));
                    None
                }
                Outcome::Held(claim::Verdict::Live(h))
                    if h.shard.as_ref().is_some_and(|s| *s != w.shard) =>
                {
                    say(format!(
                        "{} is held by a live worker of another shard: {}",
                        job.id, h.who
                    ));
                    None
                }
                Outcome::Held(claim::Verdict::Live(h)) => Some(format!(
                    "{} is held by {} (live): waiting; it is taken over if that worker dies",
                    job.id, h.who
                )),
                Outcome::Held(claim::Verdict::Unsure(h, left)) => Some(format!(
                    "{} is held by {}, no heartbeat seen yet: waiting; taken over in {} s unless it beats",
                    job.id,
                    h.who,
                    left.as_secs_f64().ceil()
                )),
                Outcome::Held(_) => Some(format!("{} is being claimed: waiting", job.id)),
                Outcome::Locked(pid) => Some(format!(
                    "{} is being written by another vqclip{}: waiting until it lets go",
                    job.id,
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                )),
                Outcome::Lost(why) => Some(format!("{} stopped: {why}", job.id)),
            };
            if let Some(line) = wait_line {
                // One line per holder, not one per look.
                let key = line.split(": waiting").next().unwrap_or(&line).to_string();
                if told.get(&job.id) != Some(&key) {
                    say(line);
                    told.insert(job.id.clone(), key);
                }
                again.push(job);
            }
        }
        if again.is_empty() {
            break;
        }
        let until = std::time::Instant::now() + poll;
        while std::time::Instant::now() < until {
            if crate::interrupt::requested() {
                return Err(anyhow::Error::new(Interrupted(format!(
                    "batch interrupted while waiting for {} job(s) of shard {}",
                    again.len(),
                    w.shard
                ))));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        todo = again;
    }
    // Then (with --steal) other shards' jobs that are free or whose holder is dead; no waiting.
    if args.steal {
        for job in others {
            match w.run_job(job)? {
                Outcome::Ran(took) => say(format!(
                    "stolen: {} done ({}){}",
                    job.id,
                    job.origin,
                    took.map(|w| format!(", taken over from {w}"))
                        .unwrap_or_default()
                )),
                Outcome::Failed(e) => {
                    say(format!("{} FAILED: {e}", job.id));
                    failed.push(format!("{} ({}): {e}", job.id, job.origin));
                }
                _ => {}
            }
        }
    }
    if !failed.is_empty() {
        bail!("{} job(s) failed:\n  {}", failed.len(), failed.join("\n  "));
    }
    Ok(())
}

enum Outcome {
    AlreadyDone,
    /// Claimed by another worker: live, or not judged yet.
    Held(claim::Verdict),
    /// Its directory is locked by another process (e.g. a `generate --resume` of it).
    Locked(Option<u32>),
    /// Ran to the end; Some(previous holder and why it was dead) when a claim was taken over.
    Ran(Option<String>),
    Failed(String),
    /// Another worker took the claim over mid-run (this worker was paused past --stale-after).
    Lost(String),
}

struct Worker<'a> {
    g: &'a GenerateArgs,
    /// "I/N", written in claims.
    shard: String,
    watch: claim::Watch,
}

/// The batch job's observer: it stops the run when the claim is lost.
struct ClaimWatch(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl crate::generate::session::Observer for ClaimWatch {
    fn abandon(&self) -> Option<String> {
        self.0.lock().ok().and_then(|l| l.clone())
    }
}

impl Worker<'_> {
    fn run_job(&mut self, job: &Job) -> Result<Outcome> {
        if state::is_done(&job.dir, job.settings.steps) {
            return Ok(Outcome::AlreadyDone);
        }
        let verdict = self.watch.judge(&job.dir);
        if matches!(
            verdict,
            claim::Verdict::Live(_) | claim::Verdict::Unsure(..)
        ) {
            return Ok(Outcome::Held(verdict));
        }
        let Some(claim) = claim::try_claim(
            &job.dir,
            &format!("batch job {}", job.id),
            &self.shard,
            self.watch.stale_after(),
            verdict,
        )?
        else {
            return Ok(Outcome::Held(claim::Verdict::Free));
        };
        // Claimed: it may have finished between the look and the claim.
        if state::is_done(&job.dir, job.settings.steps) {
            claim.release();
            return Ok(Outcome::AlreadyDone);
        }
        // The claim keeps other batch workers out; the run directory's lock keeps out everything
        // else, and is held from the clean-up below to the end of the run.
        let lock = match RunDir::new(&job.dir).try_lock() {
            Ok(Ok(lock)) => lock,
            Ok(Err(Locked { pid })) => {
                claim.release();
                return Ok(Outcome::Locked(pid));
            }
            Err(e) => {
                claim.release();
                return Err(e);
            }
        };
        let took = claim.took_over.clone();
        let _ = std::fs::remove_file(job.dir.join(state::FAILED));
        let g = self.g;
        let mut observer = ClaimWatch(claim.lost_flag());
        let result = (|| -> Result<()> {
            let toml = job.dir.join("job.toml");
            std::fs::write(&toml, job.settings.to_toml()?)
                .with_context(|| format!("cannot write {}", toml.display()))?;
            // The device is the worker's; everything else is the job's.
            let mut req = crate::runplan::Request::default();
            req.flags.device = g.settings.device.clone();
            let run = RunDir::new(&job.dir);
            if run.checkpoint().is_some() {
                req.resume = Some(job.dir.clone());
            } else {
                req.config = Some(toml);
                req.out = Some(job.dir.clone());
            }
            let plan = crate::runplan::plan(&req)?;
            let options = crate::generate::session::Options {
                fetch: g.fetch || std::env::var("VQCLIP_FETCH").is_ok_and(|v| v == "1"),
                quiet: true,
                profile: false,
            };
            crate::generate::session::run(&plan, options, Some(lock), &mut observer).map(|_| ())
        })();
        match result {
            Ok(()) => {
                claim.release();
                Ok(Outcome::Ran(took))
            }
            Err(e) if e.downcast_ref::<Abandoned>().is_some() || claim.lost().is_some() => {
                // Not ours any more: leave the claim and the files to the new holder.
                let why = claim.lost().unwrap_or_else(|| format!("{e:#}"));
                drop(claim);
                Ok(Outcome::Lost(why))
            }
            Err(e) if crate::error::exit_code(&e) == 130 => {
                claim.release();
                Err(anyhow::Error::new(Interrupted(format!(
                    "batch interrupted during job {} (its checkpoint is saved; run the same command to go on)",
                    job.id
                ))))
            }
            Err(e) => {
                let msg = format!("{e:#}");
                let record = serde_json::json!({ "error": msg, "host": claim::hostname(), "time": claim::now() });
                let _ = std::fs::write(job.dir.join(state::FAILED), record.to_string());
                claim.release();
                Ok(Outcome::Failed(msg))
            }
        }
    }
}

fn write_manifest(root: &Path, jobs: &[Job]) -> Result<()> {
    let list: Vec<ManifestJob> = jobs
        .iter()
        .map(|j| ManifestJob {
            index: j.index,
            id: j.id.clone(),
            dir: j
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: j.origin.clone(),
            prompt: j.settings.prompt_line(),
            steps: j.settings.steps,
        })
        .collect();
    let path = root.join(MANIFEST);
    let tmp = root.join(format!("{MANIFEST}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&list)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// `--devices a,b,...`: this command again once per device (without `--devices`), all at once.
fn run_workers(devices: &str) -> Result<()> {
    let devices: Vec<&str> = devices
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if devices.is_empty() {
        return Err(usage(
            "--devices: expected a comma list such as cuda:0,cuda:1",
        ));
    }
    for d in &devices {
        crate::device::check_device_syntax(d)?;
    }
    let exe = std::env::current_exe().context("cannot find the vqclip executable")?;
    let mut own: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1).peekable();
    while let Some(a) = it.next() {
        if a == "--devices" || a == "--device" {
            it.next();
        } else if !(a.starts_with("--devices=") || a.starts_with("--device=")) {
            own.push(a);
        }
    }
    // CPU workers share the cores: each gets its part (measured with scripts/bench batch: two
    // 2-thread workers on 2 cores ran slower than one; two 1-thread workers 1.56x faster).
    let cpu_workers = devices
        .iter()
        .filter(|d| d.starts_with("cpu"))
        .count()
        .max(1);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = (cores / cpu_workers).max(1).to_string();
    let children: Vec<(String, std::process::Child)> = devices
        .iter()
        .map(|d| {
            let mut c = std::process::Command::new(&exe);
            c.args(&own).args(["--device", d]);
            if d.starts_with("cpu") && std::env::var_os("OMP_NUM_THREADS").is_none() {
                c.env("OMP_NUM_THREADS", &threads);
            }
            c.spawn()
                .map(|c| (d.to_string(), c))
                .with_context(|| format!("cannot start the worker for {d}"))
        })
        .collect::<Result<_>>()?;
    let mut worst = 0;
    for (d, mut c) in children {
        let code = c.wait().map(|s| s.code().unwrap_or(1)).unwrap_or(1);
        if code != 0 {
            eprintln!("batch: the worker on {d} exited with {code}");
        }
        worst = worst.max(code);
    }
    match worst {
        0 => Ok(()),
        130 => Err(anyhow::Error::new(Interrupted(
            "batch workers interrupted".into(),
        ))),
        2 => Err(usage("a batch worker refused its settings")),
        _ => bail!("a batch worker failed"),
    }
}

fn status(root: &Path, json: bool, stale_after: u64) -> Result<()> {
    let path = root.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        usage(format!(
            "{}: no batch here ({e}); give the --out directory of a vqclip batch",
            path.display()
        ))
    })?;
    let jobs: Vec<ManifestJob> =
        serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut rows = Vec::new();
    for j in &jobs {
        let dir: PathBuf = root.join(&j.dir);
        let st = state::of(&dir, j.steps, |d| claim::inspect_once(d, stale_after));
        *counts.entry(st.name()).or_default() += 1;
        let step = state::checkpoint_step(&dir).unwrap_or(0);
        let detail = match &st {
            State::Failed(e) => e.clone(),
            State::Running(who) => format!("live: {who}"),
            State::Stale(who, why) => format!("stale: {who}: {why}"),
            _ => String::new(),
        };
        rows.push((j, st, step, detail));
    }
    let all_done = counts.get("done").copied().unwrap_or(0) == jobs.len();
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(j, st, step, detail)| {
                let claim = match st {
                    State::Running(who) => serde_json::json!({"verdict": "live", "holder": who}),
                    State::Stale(who, why) => {
                        serde_json::json!({"verdict": "stale", "holder": who, "reason": why})
                    }
                    _ => serde_json::Value::Null,
                };
                serde_json::json!({"id": j.id, "dir": j.dir, "state": st.name(), "step": step,
                                   "steps": j.steps, "prompt": j.prompt, "detail": detail,
                                   "claim": claim})
            })
            .collect();
        let v = serde_json::json!({"jobs": list, "counts": counts, "total": jobs.len()});
        crate::cmd::print_stdout(&format!("{v}\n"))?;
    } else {
        let mut out = format!("{} jobs:", jobs.len());
        for name in ["done", "running", "stale", "stopped", "failed", "waiting"] {
            out.push_str(&format!(
                " {} {name},",
                counts.get(name).copied().unwrap_or(0)
            ));
        }
        out.pop();
        out.push('\n');
        for (j, st, step, detail) in &rows {
            out.push_str(&format!(
                "{}  {:8} step {step} of {}  {}{}\n",
                j.id,
                st.name(),
                j.steps,
                j.prompt,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("  [{detail}]")
                }
            ));
        }
        crate::cmd::print_stdout(&out)?;
    }
    if all_done {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} of {} jobs are not done yet",
            jobs.len() - counts.get("done").copied().unwrap_or(0),
            jobs.len()
        ))
    }
}
