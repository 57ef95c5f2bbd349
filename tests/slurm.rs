//! `vqclip batch` on a real Slurm: tests/slurm/single-node.sh brings up slurmctld and slurmd on
//! this machine (Debian's slurm-wlm and munge, as root), then deploy/vqclip-batch.sbatch runs as
//! a 4-task job array over 8 tiny jobs (`--steal false`); one task is killed -9 mid-job and
//! requeued at once (its dead claim is taken over by the requeued task), another is requeued the
//! usual way (SIGTERM, checkpoint, exit 130). Every job finishes once, with the image of its single
//! run. `.ci/run` installs the packages and sets VQCLIP_REQUIRE_SLURM=1; elsewhere, without them,
//! the test says it checked nothing.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{BIN, pixels, tmp_dir, vqclip};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(cmd).is_file())
    })
}

struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("tests/slurm/single-node.sh")
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

fn slurm(conf: &str, cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_slurm_job_array_runs_every_job_once_with_a_requeue() {
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let present = [
        "slurmctld",
        "slurmd",
        "munged",
        "sbatch",
        "squeue",
        "scontrol",
    ]
    .iter()
    .all(|c| have(c));
    if !(root_user && present) {
        assert!(
            std::env::var("VQCLIP_REQUIRE_SLURM").is_err(),
            "VQCLIP_REQUIRE_SLURM is set but Slurm (slurm-wlm, munge) is missing or this is not root"
        );
        eprintln!(
            "slurm: no single-node Slurm here (needs root and slurm-wlm + munge): this test checked NOTHING"
        );
        return;
    }
    let dir = tmp_dir("run");
    let out = Command::new("tests/slurm/single-node.sh")
        .args(["start", dir.join("cluster").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "single-node Slurm did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("SLURM_CONF=").map(str::to_string))
        .unwrap();
    let cluster = Cluster {
        dir: dir.join("cluster"),
        conf,
    };
    let clip = std::fs::canonicalize("tests/fixtures/clip_tiny.pt").unwrap();
    let jobs = dir.join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            "[defaults]\ndrawer = \"fast_pixel\"\nclip = [\"{}\"]\nsize = \"48x32\"\ncutouts = 4\n\
             steps = 40\nsave-every = 2\n\n[grid]\nprompts = [\"a red apple\", \"a blue sky\", \
             \"a green field\", \"a yellow sun\"]\nseeds = [1, 2]\n",
            clip.display()
        ),
    )
    .unwrap();
    let root = dir.join("root");
    let script = std::fs::canonicalize("deploy/vqclip-batch.sbatch").unwrap();
    // the deploy script as published; only the GPU/memory requests are overridden for this node
    let o = Command::new("sbatch")
        .env("SLURM_CONF", &cluster.conf)
        .env("VQCLIP_BIN", BIN)
        .env("VQCLIP_DEVICE", "cpu")
        .args([
            "--parsable",
            "--export=ALL",
            "--array=0-3",
            "--gres=none",
            "--mem=400M",
        ])
        .args(["--cpus-per-task=1", "--time=15", "--chdir"])
        .arg(&dir)
        .arg(&script)
        .arg(&jobs)
        .arg(&root)
        .args(["--steal", "false"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let job_id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    // Task 0 (jobs 0 and 4) is killed -9 mid-job and requeued at once; task 1 (jobs 1 and 5) is
    // requeued the usual way (SIGTERM, checkpoint, exit 130). With --steal false no other task
    // can finish their jobs: the requeued tasks must.
    let job_dir = |i: usize| -> Option<PathBuf> {
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("batch.json")).ok()?).ok()?;
        Some(root.join(m[i]["dir"].as_str()?))
    };
    let mid_job = |i: usize| {
        let t = Instant::now();
        loop {
            if let Some(d) = job_dir(i)
                && vqclip::generate::checkpoint::find(&d).is_some()
                && !d.join("final.png").exists()
            {
                return d;
            }
            assert!(
                t.elapsed() < Duration::from_secs(180),
                "no checkpoint in job {i}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let d0 = mid_job(0);
    let claim: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d0.join("claim.json")).unwrap()).unwrap();
    let pid = claim["pid"].as_u64().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    slurm(
        &cluster.conf,
        "scontrol",
        &["requeue", &format!("{job_id}_0")],
    );
    mid_job(1);
    slurm(
        &cluster.conf,
        "scontrol",
        &["requeue", &format!("{job_id}_1")],
    );
    let t = Instant::now();
    loop {
        let q = slurm(&cluster.conf, "squeue", &["-h", "-j", &job_id]);
        if q.trim().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(400),
            "the array did not finish: {q}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = vqclip()
        .args(["batch", "status", "--json"])
        .arg(&root)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["counts"]["done"], 8, "{v}");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 8);
    for d in &dirs {
        let lines = std::fs::read_to_string(d.join("log.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 40, "{}: each step once", d.display());
        let single = dir.join("single").join(d.file_name().unwrap());
        let o = vqclip()
            .args(["generate", "--quiet", "--device", "cpu", "--config"])
            .arg(d.join("job.toml"))
            .arg("--out")
            .arg(&single)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            pixels(&d.join("final.png")) == pixels(&single.join("final.png")),
            "{}: differs from its single run",
            d.display()
        );
    }
    // the requeued tasks left their traces: task 0 took its dead claim over, task 1 had stopped
    let out_of = |task: usize| -> String {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.to_string_lossy()
                    .ends_with(&format!("-{job_id}_{task}.out"))
            })
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    };
    let task0 = out_of(0);
    assert!(
        task0.contains(&format!("pid {pid} gone on this host"))
            && task0.contains("taken over from"),
        "{task0}"
    );
    let task1 = out_of(1);
    assert!(task1.contains("batch interrupted during job"), "{task1}");
    drop(cluster);
}
