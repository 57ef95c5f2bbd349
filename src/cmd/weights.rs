//! `vqclip weights list | fetch | verify | path | convert`: the standard models, so nobody hunts for files.
use crate::cli::WeightsCommand;
use crate::weights::convert;
use crate::weights::fetch::{self, FetchOptions};
use crate::weights::registry::{self, FileEntry, ModelEntry, ModelKind};
use crate::weights::verify::{self, Verdict, human_bytes, quote_name};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

pub fn run(cmd: &WeightsCommand) -> Result<()> {
    match cmd {
        WeightsCommand::List => list(),
        WeightsCommand::Fetch { names, safetensors } => fetch(names, *safetensors),
        WeightsCommand::Verify { names } => verify(names),
        WeightsCommand::Path => {
            println!("{}", registry::weights_dir().display());
            Ok(())
        }
        WeightsCommand::Convert { name, out, force } => convert(name, out.as_deref(), *force),
    }
}

/// Registry entries for the names given, in order, without repeats; an unknown name is a usage error.
fn resolve_names(names: &[String]) -> Result<Vec<&'static ModelEntry>> {
    let mut out: Vec<&'static ModelEntry> = Vec::new();
    for n in names {
        let m = registry::find_any(n).ok_or_else(|| registry::unknown_model_error(n))?;
        if !out.iter().any(|x| std::ptr::eq(*x, m)) {
            out.push(m);
        }
    }
    Ok(out)
}

fn list() -> Result<()> {
    registry::check()?;
    let dir = registry::weights_dir();
    let mut rows: Vec<[String; 6]> = Vec::new();
    rows.push(["MODEL", "KIND", "FILE", "SIZE", "STATUS", "SHA256"].map(String::from));
    for m in registry::models() {
        let mut first = true;
        let mut listed: Vec<String> = Vec::new();
        let mdir = registry::model_dir(m, &dir);
        let mut push =
            |name: String, size: String, status: String, sha: String, first: &mut bool| {
                let (model, kind) = if *first {
                    (m.name.clone(), m.kind.as_str().to_string())
                } else {
                    (String::new(), String::new())
                };
                *first = false;
                rows.push([model, kind, name, size, status, sha]);
            };
        for (f, alt) in m
            .file
            .iter()
            .map(|f| (f, false))
            .chain(m.alt.iter().map(|f| (f, true)))
        {
            if listed.contains(&f.name) {
                continue;
            }
            listed.push(f.name.clone());
            let label = if alt {
                format!("{} (mirror)", f.name)
            } else {
                f.name.clone()
            };
            let sha = match &f.sha256 {
                Some(s) => s.clone(),
                None if verify::expect_for(&f.name) == verify::Expect::Yaml => {
                    "none (checked as YAML)".into()
                }
                None if f.size.is_some() || f.approx_mb > 0 => "size only".into(),
                None => "none (checked by loading)".into(),
            };
            let status = if m.bundled {
                format!("{} (bundled)", status(&mdir, &f.name))
            } else {
                status(&mdir, &f.name)
            };
            push(label, size_text(f), status, sha, &mut first);
        }
        // Files that are not registry downloads but satisfy the entry: the cache, the anchors' names.
        let extra = registry::cache_name(m)
            .into_iter()
            .map(|c| (c, "cache"))
            .chain(
                registry::alias_names(m)
                    .into_iter()
                    .map(|a| (a, "other name")),
            );
        for (name, what) in extra {
            if listed.contains(&name) || !mdir.join(&name).is_file() {
                continue;
            }
            listed.push(name.clone());
            let len = std::fs::metadata(mdir.join(&name))
                .map(|m| m.len())
                .unwrap_or(0);
            push(
                format!("{name} ({what})"),
                human_bytes(len),
                "present".into(),
                "-".into(),
                &mut first,
            );
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    println!("{}", registry::describe_dir(&dir));
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(())
}

fn size_text(f: &FileEntry) -> String {
    match f.size {
        Some(n) => human_bytes(n),
        None if f.approx_mb > 0 => format!("~{} MB", f.approx_mb),
        None if verify::expect_for(&f.name) == verify::Expect::Yaml => "< 1 MB".into(),
        None => "unknown".into(),
    }
}

fn status(dir: &Path, name: &str) -> String {
    if dir.join(name).is_file() {
        return "present".into();
    }
    match std::fs::metadata(dir.join(format!("{name}.part"))) {
        Ok(m) if m.is_file() => format!("partial ({})", human_bytes(m.len())),
        _ => "missing".into(),
    }
}

fn fetch(names: &[String], safetensors: bool) -> Result<()> {
    let models = resolve_names(names)?;
    let dir = registry::weights_dir();
    let opts = FetchOptions {
        prefer_safetensors: safetensors,
        ..FetchOptions::default()
    };
    for m in models {
        let path = fetch::fetch_model_with(m, &dir, &opts)?;
        println!("{}", path.display());
    }
    Ok(())
}

fn verify(names: &[String]) -> Result<()> {
    let dir = registry::weights_dir();
    let explicit = !names.is_empty();
    let models: Vec<&ModelEntry> = if explicit {
        resolve_names(names)?
    } else {
        registry::models().iter().collect()
    };
    let mut bad: Vec<String> = Vec::new();
    let mut checked = 0;
    for m in models {
        let mdir = registry::model_dir(m, &dir);
        let reports = verify::verify_model(m, &mdir, Some(&load_model));
        let fetch_cmd = format!("vqclip weights fetch {}", quote_name(&m.name));
        if reports.is_empty() && explicit {
            println!(
                "BAD  {}: no files in {}; fix: run `{fetch_cmd}`",
                m.name,
                dir.display()
            );
            bad.push(m.name.clone());
        }
        for r in &reports {
            checked += 1;
            match &r.verdict {
                Verdict::Ok(detail) => println!("ok   {}: {detail}", r.path.display()),
                Verdict::Bad { problem, fix } => {
                    println!("BAD  {}: {problem}; fix: {fix}", r.path.display());
                    bad.push(r.path.display().to_string());
                }
            }
            for n in &r.notes {
                println!("     note: {n}");
            }
        }
        if !reports.is_empty() && !reports.iter().any(|r| is_checkpoint(&r.path)) {
            // Only configs are present (a yaml without its checkpoint).
            println!(
                "BAD  {}: the checkpoint is missing; fix: run `{fetch_cmd}`",
                m.name
            );
            bad.push(m.name.clone());
        }
        for (p, len) in verify::partials(m, &mdir) {
            println!(
                "part {}: a partial download ({}); `{fetch_cmd}` resumes it",
                p.display(),
                human_bytes(len)
            );
        }
    }
    if checked == 0 && bad.is_empty() {
        eprintln!(
            "no model files in {} (see `vqclip weights list`)",
            dir.display()
        );
        return Ok(());
    }
    if !bad.is_empty() {
        bail!(
            "{} problem(s) found: {} (see the lines above for the fix)",
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(())
}

/// Whether a reported file is a weight file (not the yaml).
fn is_checkpoint(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    verify::expect_for(&name) == verify::Expect::Checkpoint
}

fn convert(name: &str, out: Option<&Path>, force: bool) -> Result<()> {
    let (src, kind) = convert_source(name)?;
    let out: PathBuf = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| convert::default_output(&src));
    let report = convert::convert_file(&src, kind, &out, force)?;
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    eprintln!("{}", convert::summary(&report));
    println!("{}", report.out.display());
    Ok(())
}

/// A weight file path as given, or the official checkpoint of a known model in the weights directory.
fn convert_source(name: &str) -> Result<(PathBuf, Option<registry::ModelKind>)> {
    let path = Path::new(name);
    if path.is_file() {
        return Ok((path.to_path_buf(), None));
    }
    if let Some(m) = registry::find_any(name) {
        let dir = registry::model_dir(m, &registry::weights_dir());
        let sources = m
            .file
            .first()
            .map(|f| f.name.clone())
            .into_iter()
            .chain(registry::alias_names(m));
        for s in sources {
            let p = dir.join(&s);
            if p.is_file() {
                return Ok((p, Some(m.kind)));
            }
        }
        if let Some(p) = registry::find_present(m, &dir) {
            bail!(
                "nothing to convert for {}: its official checkpoint is not in {}, and {} is already a safetensors file",
                m.name,
                dir.display(),
                p.display()
            );
        }
        return Err(registry::missing_error(m, &dir));
    }
    if path.is_dir() {
        return Err(crate::error::usage(format!(
            "{name}: is a directory, expected a weight file"
        )));
    }
    let looks_like_path = name.contains(std::path::MAIN_SEPARATOR)
        || [".ckpt", ".pt", ".pth", ".bin", ".safetensors"]
            .iter()
            .any(|e| name.ends_with(e));
    if looks_like_path {
        bail!("{name}: file not found");
    }
    Err(registry::unknown_model_error(name))
}

/// The full check of `weights verify`: builds the model on the CPU from the file (and its yaml,
/// for a VQGAN).
pub fn load_model(path: &Path, kind: ModelKind) -> Result<()> {
    match kind {
        ModelKind::Vqgan => crate::models::vqgan::Vqgan::load(path, tch::Device::Cpu).map(|_| ()),
        ModelKind::Clip => crate::models::clip::Clip::load(path, tch::Device::Cpu).map(|_| ()),
        ModelKind::Head => crate::models::head::Head::load(path, tch::Device::Cpu).map(|_| ()),
        ModelKind::Vgg => crate::models::vgg::Vgg16::load(path, tch::Device::Cpu).map(|_| ()),
        ModelKind::Resmem => {
            crate::models::resmem::ResMem::load(path, tch::Device::Cpu).map(|_| ())
        }
    }
}
