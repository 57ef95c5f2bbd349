//! Which jobs are this worker's: `--shard I/N`, or the engine's environment (a Slurm job array's
//! `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_MIN` and `_COUNT` or `_MAX`; a Kubernetes Indexed
//! Job's `JOB_COMPLETION_INDEX` with `--shards N` or `VQCLIP_SHARDS`). Job `i` belongs to shard
//! `i mod N`, so every shard knows its jobs without talking to the others.
use crate::error::usage;
use anyhow::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
    /// Where it came from, for the log line.
    pub source: &'static str,
}

impl Shard {
    pub fn owns(&self, job_index: usize) -> bool {
        job_index % self.count == self.index
    }
}

fn parse_usize(name: &str, v: &str) -> Result<usize> {
    v.trim()
        .parse()
        .map_err(|_| usage(format!("{name}={v}: expected a non-negative integer")))
}

/// From `--shard I/N` (1-based I), else the environment `env`, else the single shard.
pub fn resolve(
    flag: Option<&str>,
    shards_flag: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Shard> {
    let check = |index: usize, count: usize, source: &'static str| {
        if count == 0 || index >= count {
            Err(usage(format!(
                "shard {} of {count} ({source}) does not exist",
                index + 1
            )))
        } else {
            Ok(Shard {
                index,
                count,
                source,
            })
        }
    };
    if let Some(f) = flag {
        let bad = || {
            usage(format!(
                "--shard {f}: expected I/N with 1 <= I <= N (e.g. 2/4)"
            ))
        };
        let (i, n) = f.split_once('/').ok_or_else(bad)?;
        let i: usize = i.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if i == 0 {
            return Err(bad());
        }
        return check(i - 1, n, "--shard");
    }
    if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        let id = parse_usize("SLURM_ARRAY_TASK_ID", &id)?;
        let min = env("SLURM_ARRAY_TASK_MIN")
            .map(|v| parse_usize("SLURM_ARRAY_TASK_MIN", &v))
            .transpose()?
            .unwrap_or(0);
        let count = match (env("SLURM_ARRAY_TASK_COUNT"), env("SLURM_ARRAY_TASK_MAX")) {
            (Some(c), _) => parse_usize("SLURM_ARRAY_TASK_COUNT", &c)?,
            (None, Some(m)) => parse_usize("SLURM_ARRAY_TASK_MAX", &m)? + 1 - min,
            (None, None) => {
                return Err(usage(
                    "SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT or _MAX: run batch as a job array (sbatch --array=0-N)",
                ));
            }
        };
        return check(id.saturating_sub(min), count, "Slurm job array");
    }
    if let Some(idx) = env("JOB_COMPLETION_INDEX") {
        let idx = parse_usize("JOB_COMPLETION_INDEX", &idx)?;
        let count = match shards_flag {
            Some(n) => n,
            None => match env("VQCLIP_SHARDS") {
                Some(v) => parse_usize("VQCLIP_SHARDS", &v)?,
                None => {
                    return Err(usage(
                        "JOB_COMPLETION_INDEX is set: give the shard count with --shards N or VQCLIP_SHARDS (the Job's completions)",
                    ));
                }
            },
        };
        return check(idx, count, "Kubernetes Indexed Job");
    }
    match shards_flag {
        Some(n) if n != 1 => Err(usage(
            "--shards needs an index: use --shard I/N, or run under a Kubernetes Indexed Job",
        )),
        _ => Ok(Shard {
            index: 0,
            count: 1,
            source: "single shard",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_from_flags_and_engines() {
        let none = env(&[]);
        assert_eq!(resolve(Some("2/4"), None, &none).unwrap().index, 1);
        assert!(resolve(Some("0/4"), None, &none).is_err());
        assert!(resolve(Some("5/4"), None, &none).is_err());
        assert_eq!(resolve(None, None, &none).unwrap().count, 1);
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
        ]);
        let s = resolve(None, None, &slurm).unwrap();
        assert_eq!((s.index, s.count), (3, 4));
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(resolve(None, None, &slurm).unwrap().count, 3);
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("VQCLIP_SHARDS", "3")]);
        let s = resolve(None, None, &k8s).unwrap();
        assert_eq!((s.index, s.count), (2, 3));
        assert!(resolve(None, None, &env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
        assert_eq!(
            resolve(None, Some(5), &env(&[("JOB_COMPLETION_INDEX", "4")]))
                .unwrap()
                .count,
            5
        );
        let s = Shard {
            index: 1,
            count: 3,
            source: "",
        };
        assert_eq!(
            (0..8).filter(|&i| s.owns(i)).collect::<Vec<_>>(),
            vec![1, 4, 7]
        );
    }
}
