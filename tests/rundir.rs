//! The run directory's owner: the step log's record and trimming, the layout names, and the lock
//! that keeps two processes out of one run directory (real processes of the binary, tiny fixture
//! models on the CPU).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, VQGAN, losses, stderr, tmp_path as tmp_dir};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vqclip::rundir::{
    KEY_SEED, Locked, RunDir, StepRecord, is_seed_member, parse_log, trim_log_text,
};

/// `vqclip generate` on the fixtures into `out`.
fn generate(out: &Path, seed: u64, extra: &[&str]) -> Command {
    let mut c = common::vqclip();
    c.args(["generate", "a red apple", "--vqgan", VQGAN, "--clip", CLIP])
        .args(["--size", "32x32", "--cutouts", "4", "--device", "cpu"])
        .args(["--seed", &seed.to_string(), "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(180), "{what}: timed out");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until `child` holds `out`'s lock (its pid in the lock file).
fn wait_for_lock(out: &Path, child: &Child) {
    let lock = RunDir::new(out).lock_file();
    let pid = format!("{}\n", child.id());
    wait_for("the first run to take the lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t == pid)
    });
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig}");
}

fn png_seed(p: &Path) -> String {
    vqclip::image_io::read_png_text(p)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == KEY_SEED)
        .map(|(_, v)| v)
        .unwrap()
}

fn toml_seed(out: &Path) -> String {
    let t: toml::Table = std::fs::read_to_string(RunDir::new(out).run_toml())
        .unwrap()
        .parse()
        .unwrap();
    t["seed"].to_string()
}

fn record(step: i64) -> StepRecord {
    StepRecord {
        step,
        frame: None,
        loss: 1.5,
        prompts: vec![0.25, -0.5],
        labels: vec![],
        image_prompts: vec![],
        target_images: vec![],
        noise_prompts: vec![0.125],
        vector_prompts: vec![],
        spot: vec![],
        spot_off: vec![],
        extra: vec![],
        palette: 0.0,
        transparent: 0.0,
        lr: 0.1,
        seconds: 0.75,
    }
}

#[test]
fn step_record_round_trips_in_the_logs_field_order() {
    let r = record(3);
    let line = r.to_line().unwrap();
    // The bytes the engine has always written: tests compare logs.
    assert_eq!(
        line,
        r#"{"step":3,"loss":1.5,"prompts":[0.25,-0.5],"image_prompts":[],"noise_prompts":[0.125],"extra":[],"palette":0.0,"lr":0.1,"seconds":0.75}"#
    );
    assert_eq!(StepRecord::parse(&line), Some(r));
}

#[test]
fn old_and_damaged_log_lines() {
    // Before --palette and --noise-prompt, and a whole float step as the run page accepted.
    let r = StepRecord::parse(r#"{"step":4.0,"loss":2.0,"prompts":[1.0],"lr":0.1}"#).unwrap();
    assert_eq!((r.step, r.loss, r.palette), (4, 2.0, 0.0));
    assert!(r.noise_prompts.is_empty() && r.extra.is_empty());
    // A later field the reader does not know is ignored.
    assert_eq!(
        StepRecord::parse(r#"{"step":2,"loss":1.0,"new":[1]}"#).map(|r| r.step),
        Some(2)
    );
    for bad in [
        r#"{"step":4.5,"loss":2.0}"#,
        r#"{"loss":2.0}"#,
        r#"{"step":"3","loss":2.0}"#,
        r#"{"step":5,"lo"#,
        "",
    ] {
        assert_eq!(StepRecord::parse(bad), None, "{bad}");
    }
    let text = format!("{}\n{{\"step\":2,\"lo", record(1).to_line().unwrap());
    assert_eq!(parse_log(&text), vec![record(1)]);
}

#[test]
fn trim_keeps_the_lines_up_to_the_step_byte_for_byte() {
    let lines: Vec<String> = (1..=5).map(|s| record(s).to_line().unwrap()).collect();
    let text = format!("{}\n", lines.join("\n"));
    assert_eq!(trim_log_text(&text, 5), None, "nothing to drop: untouched");
    assert_eq!(trim_log_text(&text, 9), None);
    assert_eq!(
        trim_log_text(&text, 3).unwrap(),
        format!("{}\n", lines[..3].join("\n"))
    );
    assert_eq!(trim_log_text(&text, 0).unwrap(), "");
    // A line cut off by a kill goes, so the next append starts on a line of its own.
    let cut = format!("{text}{{\"step\":6,\"lo");
    assert_eq!(trim_log_text(&cut, 5).unwrap(), text);
    // On disk: the same through RunDir.
    let dir = tmp_dir("trim");
    std::fs::create_dir_all(&dir).unwrap();
    let run = RunDir::new(&dir);
    std::fs::write(run.log(), &cut).unwrap();
    run.trim_log(2).unwrap();
    assert_eq!(
        std::fs::read_to_string(run.log()).unwrap(),
        format!("{}\n", lines[..2].join("\n"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn layout_names() {
    let d = RunDir::new("out");
    assert_eq!(d.final_png(), Path::new("out/final.png"));
    assert_eq!(d.log(), Path::new("out/log.jsonl"));
    assert_eq!(d.frame(50), Path::new("out/frames/000050.png"));
    assert_eq!(d.seed_member(7).path(), Path::new("out/seed-7"));
    assert_eq!(d.style_run(2, "b").path(), Path::new("out/runs/000002-b"));
    assert!(is_seed_member("seed-12"));
    assert!(!is_seed_member("seed-") && !is_seed_member("seedling"));
}

#[test]
fn lock_is_exclusive_names_its_holder_and_goes_with_it() {
    let dir = tmp_dir("lock");
    let run = RunDir::new(&dir);
    // A lock file left by a killed process does not block.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(run.lock_file(), "999999\n").unwrap();
    let held = run.lock("--out").unwrap();
    let me = std::process::id();
    assert_eq!(
        std::fs::read_to_string(run.lock_file()).unwrap(),
        format!("{me}\n")
    );
    // flock is per open file: a second open in this process is refused like another process.
    match run.try_lock().unwrap() {
        Err(Locked { pid }) => assert_eq!(pid, Some(me)),
        Ok(_) => panic!("locked twice"),
    }
    let err = run.lock("--out").unwrap_err();
    assert_eq!(vqclip::error::exit_code(&err), 2);
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("another vqclip (pid {me})")), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    drop(held);
    assert!(!run.lock_file().exists(), "a released lock leaves no file");
    drop(run.lock("--resume").unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The found bug: two runs started on one --out both exited 0 and interleaved the directory.
/// The first holds the lock (stopped with SIGSTOP so it holds it as long as the test needs);
/// the second is refused with exit 2 naming it; the first then finishes alone.
#[test]
fn second_run_on_a_locked_out_is_refused_naming_the_holder() {
    let root = tmp_dir("race");
    let out = root.join("run");
    let steps = 20;
    let steps_arg = steps.to_string();
    let first = generate(&out, 1, &["--steps", &steps_arg]).spawn().unwrap();
    let first_id = first.id();
    wait_for_lock(&out, &first);
    signal(&first, "-STOP");
    // While it holds the directory, the gallery reads it as a run like any other.
    let gallery = Command::new(env!("CARGO_BIN_EXE_vqclip"))
        .arg("gallery")
        .arg(&root)
        .output()
        .unwrap();
    let second = generate(&out, 2, &["--steps", &steps_arg])
        .output()
        .unwrap();
    signal(&first, "-CONT");
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "first: {}", stderr(&first));
    let e = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "second: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains(&format!(
            "--out {}: another vqclip (pid {first_id}) is writing this run directory; \
             wait for it or choose another --out",
            out.display()
        )),
        "{e}"
    );
    assert!(gallery.status.success(), "{}", stderr(&gallery));
    // One run's files: its steps once each, its seed in run.toml and in the image.
    let run = RunDir::new(&out);
    let log = run.read_log();
    assert_eq!(
        log.iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=steps).collect::<Vec<i64>>()
    );
    assert_eq!(toml_seed(&out), "1");
    assert_eq!(png_seed(&run.final_png()), "1");
    assert!(
        !run.lock_file().exists(),
        "the finished run let go of the lock"
    );
    // The log is the seed-1 run's alone: a solo run logs the same losses.
    let solo = tmp_dir("race-solo");
    let o = generate(&solo, 1, &["--steps", &steps_arg])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(losses(&out), losses(&solo));
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&solo);
}

/// Both started at once, as in the bug report: exactly one writes the directory. The loser is
/// refused by the lock, or, if the winner was already done, by the never-overwrite rule.
#[test]
fn two_runs_started_together_do_not_mix() {
    let out = tmp_dir("together");
    let steps = 20;
    let steps_arg = steps.to_string();
    let a = generate(&out, 1, &["--steps", &steps_arg]).spawn().unwrap();
    let b = generate(&out, 2, &["--steps", &steps_arg]).spawn().unwrap();
    let pids = [a.id(), b.id()];
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert!(
        codes == [Some(0), Some(2)] || codes == [Some(2), Some(0)],
        "{codes:?}: {} / {}",
        stderr(&outs[0]),
        stderr(&outs[1])
    );
    let (win, lose) = if codes[0] == Some(0) { (0, 1) } else { (1, 0) };
    let e = stderr(&outs[lose]);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains(&format!("another vqclip (pid {})", pids[win]))
            || e.contains("already holds a run"),
        "{e}"
    );
    let run = RunDir::new(&out);
    let seed = (win + 1).to_string();
    assert_eq!(
        run.read_log().iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=steps).collect::<Vec<i64>>()
    );
    assert_eq!(toml_seed(&out), seed);
    assert_eq!(png_seed(&run.final_png()), seed);
    let _ = std::fs::remove_dir_all(&out);
}

/// kill -9 leaves the lock file behind but not the lock: --resume goes on at once, and the steps
/// logged after the last checkpoint are logged once.
#[test]
fn resume_right_after_kill_9() {
    let out = tmp_dir("kill9");
    let mut child = generate(&out, 3, &["--steps", "100000", "--save-every", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = RunDir::new(&out);
    wait_for("a checkpoint", || run.checkpoint().is_some());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(run.lock_file().exists(), "kill -9 runs no clean-up");
    let meta = vqclip::generate::checkpoint::read_meta(&run.checkpoint().unwrap()).unwrap();
    let steps = meta.step + 3;
    let o = Command::new(env!("CARGO_BIN_EXE_vqclip"))
        .args([
            "generate",
            "--quiet",
            "--steps",
            &steps.to_string(),
            "--resume",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        run.read_log().iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=steps).collect::<Vec<i64>>()
    );
    assert!(run.final_png().is_file());
    assert!(!run.lock_file().exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_new_run_over_an_old_one_starts_clean() {
    // --force over a finished run: the log, frames and images are the new run's alone.
    let out = tmp_dir("force");
    let first = generate(&out, 1, &["--steps", "6", "--save-every", "2"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let again = generate(&out, 2, &["--steps", "3", "--save-every", "0", "--force"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let run = RunDir::new(&out);
    let steps: Vec<i64> = run.read_log().iter().map(|r| r.step).collect();
    assert_eq!(steps, [1, 2, 3]);
    assert!(run.frames().is_empty(), "{:?}", run.frames());
    assert_eq!(png_seed(&run.final_png()), "2");
    // A start that died before its first checkpoint left run.toml and a log: the next run does not
    // append to it.
    let dead = tmp_dir("dead-start");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(RunDir::new(&dead).run_toml(), "steps = 9\n").unwrap();
    std::fs::write(
        RunDir::new(&dead).log(),
        record(1).to_line().unwrap() + "\n",
    )
    .unwrap();
    let o = generate(&dead, 1, &["--steps", "2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(losses(&dead).len(), 2);
    // A folder vqclip never ran in keeps what it holds, even under our names.
    let mine = tmp_dir("users-folder");
    std::fs::create_dir_all(mine.join("frames")).unwrap();
    std::fs::write(mine.join("frames").join("keep.txt"), "mine").unwrap();
    let o = generate(&mine, 1, &["--steps", "2", "--save-every", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(mine.join("frames").join("keep.txt").is_file());
}
