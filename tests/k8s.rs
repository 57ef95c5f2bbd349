//! deploy/vqclip-batch-k8s.yaml, which no cluster here can run: it must be a valid batch/v1 Job
//! (the Kubernetes 1.37 schema, strict: unknown keys are errors; bundled from PyPI's
//! kubernetes-validate by tests/fixtures/k8s/make_schema.py), and the environment and volumes it
//! sets must be the ones the worker reads: its command, run here with the mounts mapped to
//! folders, finds its shard, its jobs, its outputs and its weights.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{BIN, ok, tmp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

const MANIFEST: &str = "deploy/vqclip-batch-k8s.yaml";

fn json_of(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => Value::from(s.parse::<f64>().unwrap()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(json_of).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), json_of(v)))
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(MANIFEST).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "one document");
    json_of(&docs[0])
}

fn errors(validator: &jsonschema::Validator, v: &Value) -> Vec<String> {
    validator
        .iter_errors(v)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_manifest_is_a_valid_kubernetes_job() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/k8s/job-batch-v1.schema.json").unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let job = manifest();
    assert_eq!(errors(&validator, &job), Vec::<String>::new());
    // the schema has teeth: a misspelt key, a wrong type and a missing field are refused
    let mut bad = job.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = Value::Array(vec![]);
    assert!(
        errors(&validator, &bad)
            .iter()
            .any(|e| e.contains("volumeMount")),
        "{:?}",
        errors(&validator, &bad)
    );
    let mut bad = job.clone();
    bad["spec"]["completions"] = Value::from("four");
    assert!(!errors(&validator, &bad).is_empty());
    let mut bad = job.clone();
    bad["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(!errors(&validator, &bad).is_empty());
}

#[test]
fn its_environment_and_volumes_are_what_the_worker_reads() {
    let job = manifest();
    let spec = &job["spec"];
    let pod = &spec["template"]["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let container = &pod["containers"][0];
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let var = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let shards = var("VQCLIP_SHARDS").expect("VQCLIP_SHARDS is set");
    assert_eq!(
        shards,
        spec["completions"].to_string(),
        "VQCLIP_SHARDS = completions"
    );
    assert_eq!(spec["parallelism"], spec["completions"]);
    // Every mount names a declared volume; the mounts map onto folders here.
    let dir = tmp_dir("k8s");
    let volumes = pod["volumes"].as_array().unwrap();
    let mounts: Vec<(String, PathBuf, bool, Value)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap();
            let vol = volumes
                .iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("mount {name} has no volume"))
                .clone();
            let local = dir.join(name);
            std::fs::create_dir_all(&local).unwrap();
            (
                m["mountPath"].as_str().unwrap().to_string(),
                local,
                m["readOnly"].as_bool().unwrap_or(false),
                vol,
            )
        })
        .collect();
    let map = |p: &str| -> (PathBuf, bool, Value) {
        let (mount, local, ro, vol) = mounts
            .iter()
            .find(|(m, ..)| Path::new(p).starts_with(m))
            .unwrap_or_else(|| panic!("{p} is on no mounted volume"));
        (
            local.join(Path::new(p).strip_prefix(mount).unwrap()),
            *ro,
            vol.clone(),
        )
    };
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[..2], ["vqclip", "batch"]);
    let out_at = command.iter().position(|c| c == "--out").unwrap() + 1;
    // the jobs file comes from the configmap the header comment creates (--from-file=jobs.toml)
    let (jobs_file, _, vol) = map(&command[2]);
    assert_eq!(vol["configMap"]["name"], "vqclip-jobs");
    assert_eq!(Path::new(&command[2]).file_name().unwrap(), "jobs.toml");
    let (out_root, out_ro, vol) = map(&command[out_at]);
    assert!(!out_ro, "the outputs must be writable");
    assert!(vol["persistentVolumeClaim"]["claimName"].is_string());
    let weights = var("VQCLIP_WEIGHTS").expect("VQCLIP_WEIGHTS is set");
    let (weights_dir, weights_ro, _) = map(&weights);
    assert!(weights_ro, "weights are mounted read-only");
    // Each other variable set must be one the binary reads (its source names it).
    let src: String = walk(Path::new("src"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (name, _) in &env {
        assert!(
            src.contains(&format!("\"{name}\"")),
            "{name} is set by the manifest but vqclip never reads it"
        );
    }
    // Run the pod's command (dry run, mapped paths) for every index Kubernetes gives.
    std::fs::write(
        &jobs_file,
        "[grid]\nprompts = [\"a fox\", \"an owl\", \"a cat\"]\nseeds = [1, 2, 3]\n",
    )
    .unwrap();
    let args: Vec<String> = command[2..]
        .iter()
        .enumerate()
        .map(|(i, a)| match i + 2 {
            2 => jobs_file.to_string_lossy().into_owned(),
            i if i == out_at => out_root.to_string_lossy().into_owned(),
            _ => a.clone(),
        })
        .collect();
    let count: usize = shards.parse().unwrap();
    let mut mine = Vec::new();
    for index in 0..count {
        let o = Command::new(BIN)
            .arg("batch")
            .args(&args)
            .arg("--dry-run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .envs(env.iter().map(|(k, v)| {
                if k == "VQCLIP_WEIGHTS" {
                    (k.clone(), weights_dir.to_string_lossy().into_owned())
                } else {
                    (k.clone(), v.clone())
                }
            }))
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        ok(&o);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            out.contains(&format!(
                "9 jobs, shard {} of {count} (Kubernetes Indexed Job)",
                index + 1
            )),
            "{out}"
        );
        mine.extend(
            out.lines()
                .filter(|l| l.split('\t').nth(1) == Some("mine"))
                .map(|l| l.split('\t').next().unwrap().to_string()),
        );
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                Path::new(l.split('\t').nth(3).unwrap()).starts_with(&out_root),
                "{l}"
            );
        }
    }
    mine.sort();
    let n = mine.len();
    mine.dedup();
    assert_eq!((n, mine.len()), (9, 9), "each job in exactly one shard");
    // and the weights folder the worker loads from is the mounted one
    let o = Command::new(BIN)
        .args(["weights", "list"])
        .env("VQCLIP_WEIGHTS", &weights_dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(&format!("weights directory: {}", weights_dir.display())),
        "{out}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
