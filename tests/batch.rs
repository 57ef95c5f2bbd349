//! `vqclip batch` on the tiny CLIP (fast_pixel, 48x32): shards at the same time run every job
//! exactly once with the images of single runs; kill -9 and SIGTERM mid-job, dead, reused, skewed and corrupt
//! claims, stealing, failures, validation and `batch status`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, ok, pixels, tmp_dir, vqclip};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generate flags for a 3-step job on the tiny CLIP.
const TINY_JOB: &[&str] = &[
    "--drawer",
    "fast_pixel",
    "--clip",
    CLIP,
    "--size",
    "48x32",
    "--cutouts",
    "4",
    "--steps",
    "3",
];

/// 4 prompts x 2 seeds = 8 jobs.
fn job_file(dir: &Path, steps: i64) -> PathBuf {
    let f = dir.join("jobs.toml");
    std::fs::write(
        &f,
        format!(
            "[defaults]\ndrawer = \"fast_pixel\"\nclip = [\"{CLIP}\"]\nsize = \"48x32\"\ncutouts = 4\n\
             steps = {steps}\nsave-every = 2\n\n[grid]\nprompts = [\"a red apple\", \"a blue sky\", \
             \"a green field\", \"a yellow sun\"]\nseeds = [1, 2]\n"
        ),
    )
    .unwrap();
    f
}

fn batch_cmd(file: &Path, root: &Path, extra: &[&str]) -> Command {
    let mut c = vqclip();
    c.arg("batch")
        .arg(file)
        .args(["--out", root.to_str().unwrap(), "--device", "cpu"])
        .args(extra);
    c
}

fn spawn(file: &Path, root: &Path, extra: &[&str]) -> Child {
    batch_cmd(file, root, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn job_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// The single run of a job's settings (its job.toml), elsewhere.
fn single_run(job_dir: &Path, out: &Path) -> image::RgbImage {
    let o = vqclip()
        .args(["generate", "--quiet", "--device", "cpu", "--config"])
        .arg(job_dir.join("job.toml"))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    ok(&o);
    pixels(&out.join("final.png"))
}

/// Every job is done once: its log has one line per step, and the single run gives its image.
fn check_all_done_once(root: &Path, steps: usize, refs: &Path) {
    let dirs = job_dirs(root);
    assert_eq!(dirs.len(), 8, "{dirs:?}");
    for d in &dirs {
        let lines = std::fs::read_to_string(d.join("log.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert_eq!(
            lines,
            steps,
            "{}: {lines} log lines (a job ran more than once?)",
            d.display()
        );
        assert!(
            !d.join("claim.json").exists(),
            "claim left in {}",
            d.display()
        );
        let name = d.file_name().unwrap();
        assert!(
            pixels(&d.join("final.png")) == single_run(d, &refs.join(name)),
            "{}: differs from the single run",
            d.display()
        );
    }
    let o = vqclip()
        .args(["batch", "status", "--json"])
        .arg(root)
        .output()
        .unwrap();
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counts"]["done"], 8, "{v}");
}

#[test]
fn two_and_three_shards_at_once_run_every_job_exactly_once() {
    for n in [2, 3] {
        let dir = tmp_dir(&format!("shards{n}"));
        let file = job_file(&dir, 6);
        let root = dir.join("root");
        let children: Vec<Child> = (1..=n)
            .map(|i| spawn(&file, &root, &["--shard", &format!("{i}/{n}")]))
            .collect();
        let mut done_lines = Vec::new();
        for c in children {
            let o = c.wait_with_output().unwrap();
            let err = ok(&o);
            done_lines.extend(
                err.lines()
                    .filter(|l| l.contains(" done ("))
                    .map(str::to_string),
            );
        }
        assert_eq!(
            done_lines.len(),
            8,
            "each job reported done once: {done_lines:#?}"
        );
        check_all_done_once(&root, 6, &dir.join("refs"));
        // Running again finds everything done.
        let o = batch_cmd(&file, &root, &[]).output().unwrap();
        let err = ok(&o);
        assert_eq!(err.matches("already done").count(), 8, "{err}");
    }
}

fn wait_for(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn any_checkpoint(root: &Path) -> bool {
    root.is_dir()
        && job_dirs(root).iter().any(|d| {
            vqclip::generate::checkpoint::find(d).is_some() && !d.join("final.png").exists()
        })
}

/// Each job's log has one row per step, and its image is the single run's (8 jobs).
fn check_images_and_logs(root: &Path, steps: usize, refs: &Path) {
    for d in &job_dirs(root) {
        let name = d.file_name().unwrap();
        assert!(
            pixels(&d.join("final.png")) == single_run(d, &refs.join(name)),
            "{}: differs from the single run",
            d.display()
        );
        let lines = std::fs::read_to_string(d.join("log.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, steps, "{}: one row per step", d.display());
        let left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("claim"))
            .collect();
        assert!(
            left.is_empty(),
            "{}: claim files left: {left:?}",
            d.display()
        );
    }
}

#[test]
fn kill_9_mid_job_then_the_same_command_at_once_finishes_every_job() {
    let dir = tmp_dir("kill");
    let file = job_file(&dir, 40);
    let root = dir.join("root");
    // --stale-after stays at its 300 s: a dead pid on this host is seen at once
    let mut c = spawn(&file, &root, &[]);
    wait_for("a checkpoint", Duration::from_secs(120), || {
        any_checkpoint(&root)
    });
    let pid = c.id();
    c.kill().unwrap();
    let _ = c.wait();
    let o = vqclip()
        .args(["batch", "status", "--json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stale: Vec<&serde_json::Value> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "stale")
        .collect();
    assert_eq!(stale.len(), 1, "{v}");
    assert_eq!(
        stale[0]["claim"]["reason"],
        format!("pid {pid} gone on this host"),
        "{v}"
    );
    let o = batch_cmd(&file, &root, &[]).output().unwrap();
    let err = ok(&o);
    assert!(
        err.contains("taken over from") && err.contains("gone on this host"),
        "{err}"
    );
    assert_eq!(err.matches(" done (").count(), 8, "{err}");
    check_images_and_logs(&root, 40, &dir.join("refs"));
}

/// A claim as another host writes it (its wall clock `skew` s off), with its heartbeat file.
fn foreign_claim(job: &Path, token: &str, skew: i64, shard: &str) {
    std::fs::create_dir_all(job).unwrap();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + skew;
    let claim = serde_json::json!({"host": "node-elsewhere", "pid": 4242, "worker": "batch job x",
        "started": t, "heartbeat": t, "shard": shard, "token": token, "proc_start": 777,
        "boot_id": "00000000-0000-0000-0000-000000000000", "pid_ns": "pid:[1]"});
    std::fs::write(job.join("claim.json"), claim.to_string()).unwrap();
    beat(job, token, 0);
}

fn beat(job: &Path, token: &str, count: u64) {
    std::fs::write(
        job.join(format!("claim.beat-{token}")),
        format!("{count}\n"),
    )
    .unwrap();
}

/// The directory of the only job of `file`, from --dry-run.
fn only_job_dir(file: &Path, root: &Path, common: &[&str]) -> PathBuf {
    let o = batch_cmd(file, root, &[common, &["--dry-run"]].concat())
        .output()
        .unwrap();
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    PathBuf::from(
        out.lines()
            .find(|l| !l.starts_with('#') && l.contains('\t'))
            .unwrap()
            .split('\t')
            .nth(3)
            .unwrap(),
    )
}

#[test]
fn claims_of_other_hosts_are_judged_by_their_counter_not_their_clock() {
    let dir = tmp_dir("skew");
    let common = [TINY_JOB, &["--stale-after", "2"]].concat();
    // Four holders at once: clocks an hour behind and ahead, beating (then letting go after 6 s)
    // or stopping after two beats.
    std::thread::scope(|sc| {
        for (skew, beats) in [
            (-3600i64, true),
            (3600, true),
            (-3600, false),
            (3600, false),
        ] {
            let dir = &dir;
            let common = &common;
            sc.spawn(move || {
                let name = format!("{}{}", if skew < 0 { "behind" } else { "ahead" }, beats);
                let file = dir.join(format!("{name}.txt"));
                std::fs::write(&file, "a red apple\n").unwrap();
                let root = dir.join(&name);
                let job = only_job_dir(&file, &root, common);
                foreign_claim(&job, "tok", skew, "1/1");
                let t0 = Instant::now();
                let child = batch_cmd(&file, &root, common)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut last_beat = Instant::now();
                for count in 1..=if beats { 20 } else { 2 } {
                    std::thread::sleep(Duration::from_millis(300));
                    assert!(
                        job.join("claim.beat-tok").exists(),
                        "{name}: a beating claim was taken over after {:?}",
                        t0.elapsed()
                    );
                    beat(&job, "tok", count);
                    last_beat = Instant::now();
                }
                if beats {
                    // the holder finishes without the job: its claim goes, the worker runs it
                    std::fs::remove_file(job.join("claim.json")).unwrap();
                    std::fs::remove_file(job.join("claim.beat-tok")).unwrap();
                } else {
                    // stopped: not taken over before 2 s of silence on the reader's clock
                    while last_beat.elapsed() < Duration::from_millis(1700) {
                        assert!(
                            job.join("claim.beat-tok").exists(),
                            "{name}: taken over {:?} after the last beat",
                            last_beat.elapsed()
                        );
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                let o = child.wait_with_output().unwrap();
                let err = ok(&o);
                assert!(job.join("final.png").is_file(), "{name}: {err}");
                if beats {
                    assert!(t0.elapsed() >= Duration::from_secs(6));
                    assert!(!err.contains("taken over from"), "{name}: {err}");
                    assert!(
                        err.contains("is held by node-elsewhere pid 4242 (batch job x, shard 1/1) (live): waiting"),
                        "{name}: {err}"
                    );
                } else {
                    assert!(
                        err.contains("no heartbeat seen yet: waiting; taken over in 2 s unless it beats"),
                        "{name}: {err}"
                    );
                    assert!(
                        err.contains("taken over from node-elsewhere pid 4242 (batch job x, shard 1/1) (no heartbeat for 2 s)"),
                        "{name}: {err}"
                    );
                }
            });
        }
    });
}

/// /proc/PID/stat's start time (field 22).
fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s[s.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_reused_pid_is_taken_over_at_once_a_live_one_is_waited_for() {
    let dir = tmp_dir("pids");
    let file = dir.join("jobs.txt");
    std::fs::write(&file, "a red apple\na blue sky\n").unwrap();
    let root = dir.join("root");
    let common = TINY_JOB;
    let o = batch_cmd(&file, &root, &[common, &["--dry-run"]].concat())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let dirs: Vec<PathBuf> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| PathBuf::from(l.split('\t').nth(3).unwrap()))
        .collect();
    assert_eq!(dirs.len(), 2, "{out}");
    let here = |f: &str| std::fs::read_to_string(f).unwrap().trim().to_string();
    let boot = here("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let host = here("/proc/sys/kernel/hostname");
    // Two live processes stand in for holders: the first claim names the pid of one with another
    // start time (the pid was reused), the second names the other exactly (a live holder).
    let mut reused = Command::new("sleep").arg("60").spawn().unwrap();
    let mut holder = Command::new("sleep").arg("60").spawn().unwrap();
    for (d, pid, start) in [
        (&dirs[0], reused.id(), start_time(reused.id()) + 1),
        (&dirs[1], holder.id(), start_time(holder.id())),
    ] {
        std::fs::create_dir_all(d).unwrap();
        let claim = serde_json::json!({"host": host, "pid": pid, "worker": "batch job y",
            "started": 0, "heartbeat": 0, "shard": "1/1", "token": format!("t{pid}"),
            "proc_start": start, "boot_id": boot, "pid_ns": ns});
        std::fs::write(d.join("claim.json"), claim.to_string()).unwrap();
    }
    let child = batch_cmd(&file, &root, common)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the reused pid's job", Duration::from_secs(60), || {
        dirs[0].join("final.png").is_file()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !dirs[1].join("final.png").exists(),
        "a live holder's job was run"
    );
    let status = vqclip()
        .args(["batch", "status"])
        .arg(&root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "running  step 0 of 3  a blue sky  [live: {host} pid {}",
            holder.id()
        )),
        "{text}"
    );
    let gone = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = ok(&o);
    reused.kill().unwrap();
    reused.wait().unwrap();
    assert!(
        err.contains(&format!(
            "pid {} now belongs to another process",
            reused.id()
        )),
        "{err}"
    );
    assert!(
        err.contains("(live): waiting; it is taken over if that worker dies"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "(batch job y, shard 1/1) (pid {gone} gone on this host)"
        )),
        "{err}"
    );
    assert!(dirs[1].join("final.png").is_file());
}

#[test]
fn sigterm_saves_frees_the_claim_and_exits_130() {
    let dir = tmp_dir("term");
    let file = job_file(&dir, 60);
    let root = dir.join("root");
    let c = spawn(&file, &root, &[]);
    wait_for("a checkpoint", Duration::from_secs(120), || {
        any_checkpoint(&root)
    });
    let pid = c.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = c.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        job_dirs(&root)
            .iter()
            .all(|d| !d.join("claim.json").exists()),
        "claims freed"
    );
    let o = vqclip()
        .args(["batch", "status"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("stopped"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    ok(&batch_cmd(&file, &root, &[]).output().unwrap());
    let first = job_dirs(&root)[0].clone();
    assert!(pixels(&first.join("final.png")) == single_run(&first, &dir.join("ref")));
}

#[test]
fn corrupt_claims_wait_until_stale_failures_are_reported() {
    let dir = tmp_dir("claims");
    let file = dir.join("jobs.txt");
    std::fs::write(&file, "# two prompts\na red apple\na blue sky\n").unwrap();
    let not_png = dir.join("not.png");
    std::fs::write(&not_png, "this is not an image").unwrap();
    let root = dir.join("root");
    let common = [TINY_JOB, &["--stale-after", "2"]].concat();
    // dry run: the ids and directories, nothing written
    let o = batch_cmd(&file, &root, &[&common[..], &["--dry-run"]].concat())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        out.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{out}"
    );
    assert!(!root.exists());
    let apple = out
        .lines()
        .find(|l| l.contains("line 2"))
        .unwrap()
        .split('\t')
        .nth(3)
        .unwrap()
        .to_string();
    std::fs::create_dir_all(&apple).unwrap();
    std::fs::write(Path::new(&apple).join("claim.json"), "{garbage").unwrap();
    // a claim nobody can read is judged by its bytes: unchanged for --stale-after, it is dead
    let t = Instant::now();
    let err = ok(&batch_cmd(&file, &root, &common).output().unwrap());
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert!(
        err.contains("is held by unreadable claim file") && err.contains("taken over in 2 s"),
        "{err}"
    );
    assert!(
        err.contains("taken over from unreadable claim file"),
        "{err}"
    );
    assert!(Path::new(&apple).join("final.png").exists());
    // a job that fails at run time is marked failed; the others run; exit 1 names it
    let file2 = dir.join("jobs2.toml");
    std::fs::write(
        &file2,
        format!(
            "[[job]]\nprompts = \"a cat\"\ninit-image = \"{}\"\n\n[[job]]\nprompts = \"a dog\"\n",
            not_png.display()
        ),
    )
    .unwrap();
    let root2 = dir.join("root2");
    let o = batch_cmd(&file2, &root2, &common).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 job(s) failed") && err.contains("(job 1)"),
        "{err}"
    );
    let o = vqclip()
        .args(["batch", "status", "--json"])
        .arg(&root2)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["counts"]["done"].as_i64(), v["counts"]["failed"].as_i64()),
        (Some(1), Some(1)),
        "{v}"
    );
    // validation before any work: exit 2 naming the job
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[job]]\nprompts = \"ok\"\n[[job]]\nprompts = \"x\"\nsteps = -3\n",
    )
    .unwrap();
    let o = batch_cmd(&bad, &dir.join("root3"), &common)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("job 2: --steps: invalid value -3"), "{err}");
    assert!(
        !dir.join("root3").exists(),
        "nothing written before validation"
    );
    let dup = dir.join("dup.txt");
    std::fs::write(&dup, "same\nsame\n").unwrap();
    let o = batch_cmd(&dup, &dir.join("root4"), &common)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1 and line 2 are the same job"));
}

#[test]
fn devices_start_one_worker_each_over_the_same_claims() {
    let dir = tmp_dir("devices");
    let file = job_file(&dir, 6);
    let root = dir.join("root");
    let mut c = vqclip();
    c.arg("batch")
        .arg(&file)
        .args(["--out", root.to_str().unwrap(), "--devices", "cpu,cpu"]);
    let o = c.output().unwrap();
    let err = ok(&o);
    assert_eq!(err.matches(" done (").count(), 8, "{err}");
    check_all_done_once(&root, 6, &dir.join("refs"));
}

#[test]
fn style_frames_become_one_job_per_frame() {
    let dir = tmp_dir("frames");
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for (i, f) in ["recon_input.png", "clip_input.png"].iter().enumerate() {
        std::fs::copy(
            Path::new("tests/fixtures").join(f),
            frames.join(format!("{i:04}.png")),
        )
        .unwrap();
    }
    let root = dir.join("root");
    let o = vqclip()
        .args(["batch", "--style-frames"])
        .arg(&frames)
        .args([
            "--out",
            root.to_str().unwrap(),
            "--device",
            "cpu",
            "--drawer",
            "fast_pixel",
        ])
        .args([
            "--clip",
            CLIP,
            "--size",
            "48x32",
            "--cutouts",
            "4",
            "--steps",
            "3",
        ])
        .arg("a watercolor painting")
        .output()
        .unwrap();
    // with --style-frames the positional argument is every frame's prompt
    ok(&o);
    let dirs = job_dirs(&root);
    assert_eq!(dirs.len(), 2);
    let mut frames_used = Vec::new();
    for d in &dirs {
        assert!(d.join("final.png").is_file());
        let toml = std::fs::read_to_string(d.join("job.toml")).unwrap();
        assert!(toml.contains("a watercolor painting"), "{toml}");
        frames_used.extend(
            ["0000.png", "0001.png"]
                .into_iter()
                .filter(|f| toml.contains(*f)),
        );
    }
    frames_used.sort();
    assert_eq!(frames_used, vec!["0000.png", "0001.png"]);
}

#[test]
fn three_shards_killed_at_random_and_restarted_finish_every_job_once() {
    use rand::{Rng, SeedableRng};
    let dir = tmp_dir("chaos");
    let file = job_file(&dir, 20);
    let root = dir.join("root");
    let start = |i: usize| spawn(&file, &root, &["--shard", &format!("{}/3", i + 1)]);
    let mut shards: Vec<Option<Child>> = (0..3).map(|i| Some(start(i))).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (mut kills, t, mut said) = (0, Instant::now(), String::new());
    while kills < 6 {
        assert!(t.elapsed() < Duration::from_secs(300), "{kills} kills");
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1200)));
        let i = rng.random_range(0..3);
        let Some(c) = shards[i].as_mut() else {
            continue;
        };
        if c.try_wait().unwrap().is_some() {
            continue; // finished: nothing to kill
        }
        c.kill().unwrap();
        let o = shards[i].take().unwrap().wait_with_output().unwrap();
        said.push_str(&String::from_utf8_lossy(&o.stderr));
        kills += 1;
        shards[i] = Some(start(i));
    }
    for c in shards.into_iter().flatten() {
        said.push_str(&ok(&c.wait_with_output().unwrap()));
    }
    // the kills hit running jobs, whose claims were taken over at once
    assert!(said.contains("gone on this host"), "{said}");
    check_images_and_logs(&root, 20, &dir.join("refs"));
    let o = vqclip()
        .args(["batch", "status", "--json"])
        .arg(&root)
        .output()
        .unwrap();
    ok(&o);
}

#[test]
fn sigterm_while_waiting_for_a_held_job_exits_130() {
    let dir = tmp_dir("termwait");
    let file = dir.join("jobs.txt");
    std::fs::write(&file, "a red apple\n").unwrap();
    let root = dir.join("root");
    let common = ["--drawer", "fast_pixel", "--clip", CLIP, "--size", "48x32"];
    let job = only_job_dir(&file, &root, &common);
    foreign_claim(&job, "tok", 0, "1/1");
    let c = spawn(&file, &root, &common);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("no heartbeat seen yet: waiting; taken over in 300 s unless it beats")
            && err.contains("interrupted while waiting for 1 job(s) of shard 1/1"),
        "{err}"
    );
    // the holder's claim is untouched
    assert!(job.join("claim.json").is_file() && !job.join("final.png").exists());
}
