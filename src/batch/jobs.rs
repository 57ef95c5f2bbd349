//! The job list: a text file (one prompt per line, `#` comments) or a TOML file with `[defaults]`,
//! `[[job]]` tables and a `[grid]` (prompts x seeds x presets), or one job per frame of
//! `--style-frames DIR`. Every job is resolved and validated before any work, and named by a
//! hash of its resolved settings, so every shard derives the same list on its own.
use crate::error::usage;
use crate::settings::{PartialSettings, SeedValue, Settings, slug};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Job {
    /// Position in the list (0-based): decides the shard.
    pub index: usize,
    /// 10 hex digits of the SHA-256 of the resolved settings.
    pub id: String,
    pub dir: PathBuf,
    pub settings: Settings,
    /// Where it came from, for messages ("line 3", "job 2", "grid 5", "frame 0007.png").
    pub origin: String,
}

/// One entry before resolution: its presets and its own settings layer.
struct Entry {
    origin: String,
    presets: Vec<String>,
    layer: PartialSettings,
}

/// A TOML table as settings plus `presets` (the presets to apply, unlike run.toml's record).
fn entry_of(table: toml::Table, origin: &str, file: &Path) -> Result<Entry> {
    let mut table = table;
    let presets = match table.remove("presets") {
        None => Vec::new(),
        Some(toml::Value::String(s)) => vec![s],
        Some(toml::Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                other => Err(usage(format!(
                    "{}: {origin}: presets must be names, got {other}",
                    file.display()
                ))),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(usage(format!(
                "{}: {origin}: presets must be a name or a list of names, got {other}",
                file.display()
            )));
        }
    };
    let text = toml::to_string(&table).context("cannot re-serialize a job")?;
    let layer =
        PartialSettings::from_toml(&text, file).map_err(|e| usage(format!("{origin}: {e:#}")))?;
    Ok(Entry {
        origin: origin.to_string(),
        presets,
        layer,
    })
}

fn read_entries(file: &Path) -> Result<(Entry, Vec<Entry>)> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("{}: cannot read the job file: {e}", file.display())))?;
    let is_toml = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let empty = || Entry {
        origin: "defaults".into(),
        presets: Vec::new(),
        layer: PartialSettings::default(),
    };
    if !is_toml {
        let jobs = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| Entry {
                origin: format!("line {}", i + 1),
                presets: Vec::new(),
                layer: PartialSettings {
                    prompts: Some(crate::settings::PromptList::One(l.trim().to_string())),
                    ..Default::default()
                },
            })
            .collect();
        return Ok((empty(), jobs));
    }
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        usage(format!("{}: {}", file.display(), e.message().trim()))
    })?;
    let defaults = match table.remove("defaults") {
        Some(toml::Value::Table(t)) => entry_of(t, "[defaults]", file)?,
        None => empty(),
        Some(_) => {
            return Err(usage(format!(
                "{}: [defaults] must be a table",
                file.display()
            )));
        }
    };
    let mut jobs = Vec::new();
    match table.remove("job") {
        Some(toml::Value::Array(a)) => {
            for (i, v) in a.into_iter().enumerate() {
                let toml::Value::Table(t) = v else {
                    return Err(usage(format!(
                        "{}: [[job]] {} is not a table",
                        file.display(),
                        i + 1
                    )));
                };
                jobs.push(entry_of(t, &format!("job {}", i + 1), file)?);
            }
        }
        None => {}
        Some(_) => {
            return Err(usage(format!(
                "{}: job must be [[job]] tables",
                file.display()
            )));
        }
    }
    if let Some(grid) = table.remove("grid") {
        jobs.extend(grid_entries(grid, file)?);
    }
    if let Some(k) = table.keys().next() {
        return Err(usage(format!(
            "{}: unknown key '{k}' (expected [defaults], [[job]] and [grid])",
            file.display()
        )));
    }
    Ok((defaults, jobs))
}

/// `[grid]`: `prompts`, `seeds` and `presets` lists, expanded as their product (prompts outermost).
fn grid_entries(grid: toml::Value, file: &Path) -> Result<Vec<Entry>> {
    let toml::Value::Table(mut g) = grid else {
        return Err(usage(format!("{}: [grid] must be a table", file.display())));
    };
    let list = |g: &mut toml::Table, key: &str| -> Result<Vec<toml::Value>> {
        match g.remove(key) {
            None => Ok(vec![toml::Value::Boolean(false)]),
            Some(toml::Value::Array(a)) if !a.is_empty() => Ok(a),
            Some(_) => Err(usage(format!(
                "{}: [grid] {key} must be a non-empty list",
                file.display()
            ))),
        }
    };
    let (prompts, seeds, presets) = (
        list(&mut g, "prompts")?,
        list(&mut g, "seeds")?,
        list(&mut g, "presets")?,
    );
    if let Some(k) = g.keys().next() {
        return Err(usage(format!(
            "{}: [grid] knows prompts, seeds and presets, not '{k}'",
            file.display()
        )));
    }
    let mut out = Vec::new();
    for p in &prompts {
        for s in &seeds {
            for pr in &presets {
                let mut t = toml::Table::new();
                if !matches!(p, toml::Value::Boolean(false)) {
                    t.insert("prompts".into(), p.clone());
                }
                if !matches!(s, toml::Value::Boolean(false)) {
                    t.insert("seed".into(), s.clone());
                }
                if !matches!(pr, toml::Value::Boolean(false)) {
                    t.insert("presets".into(), pr.clone());
                }
                out.push(entry_of(t, &format!("grid {}", out.len() + 1), file)?);
            }
        }
    }
    Ok(out)
}

/// Every job of `file` (or of `style_frames`), resolved over `cli` (the generate flags given to
/// batch) with `cli_presets` first, each in `root/<id>-<slug>/`.
pub fn load_jobs(
    file: Option<&Path>,
    style_frames: Option<&Path>,
    cli: &PartialSettings,
    cli_presets: &[String],
    root: &Path,
) -> Result<Vec<Job>> {
    let (defaults, entries) = match (file, style_frames) {
        (Some(f), None) => read_entries(f)?,
        (None, Some(dir)) => {
            let frames = crate::image_io::list_frames(dir)?;
            let entries = frames
                .into_iter()
                .map(|f| Entry {
                    origin: format!("frame {}", f.display()),
                    presets: Vec::new(),
                    layer: PartialSettings {
                        init_image: Some(f),
                        ..Default::default()
                    },
                })
                .collect();
            (
                Entry {
                    origin: "defaults".into(),
                    presets: Vec::new(),
                    layer: PartialSettings::default(),
                },
                entries,
            )
        }
        _ => {
            return Err(usage(
                "batch needs one job source: a FILE (prompts or TOML) or --style-frames DIR",
            ));
        }
    };
    if entries.is_empty() {
        return Err(usage("the job file holds no jobs"));
    }
    let mut jobs: Vec<Job> = Vec::new();
    for (index, e) in entries.into_iter().enumerate() {
        let mut layer = cli.clone();
        layer.merge(defaults.layer.clone());
        layer.merge(e.layer);
        // A batch never draws a random seed: the job's own text decides it, so every shard
        // (and every rerun) resolves the same job to the same settings.
        if layer.seed.is_none() {
            let text = legacy_text(&toml::to_string(&layer).unwrap_or_default());
            layer.seed = Some(SeedValue::Text(format!("{text}{}", e.presets.join(","))));
        }
        let mut presets = cli_presets.to_vec();
        presets.extend(defaults.presets.iter().cloned());
        presets.extend(e.presets);
        let settings = crate::runplan::resolve_layers(&presets, vec![layer]).map_err(|err| {
            let code = crate::error::exit_code(&err);
            let msg = format!("{}: {err:#}", e.origin);
            if code == 2 {
                usage(msg)
            } else {
                anyhow::anyhow!(msg)
            }
        })?;
        let toml = legacy_text(&settings.to_toml()?);
        let digest = Sha256::digest(toml.as_bytes());
        let id: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        let name = settings
            .prompts
            .first()
            .map(|p| slug(&p.text))
            .unwrap_or_else(|| "image".into());
        let dir = root.join(format!("{id}-{name}"));
        if let Some(same) = jobs.iter().find(|j| j.id == id) {
            return Err(usage(format!(
                "{} and {} are the same job (identical settings); give them different seeds",
                same.origin, e.origin
            )));
        }
        jobs.push(Job {
            index,
            id,
            dir,
            settings,
            origin: e.origin,
        });
    }
    Ok(jobs)
}

/// Settings text as the first vqclip wrote it, for the two hashes that name a job and draw an
/// unseeded job's seed: the drawer was spelled `fast_pixel` then. So a job file keeps its seeds
/// and directories (and a batch started by that vqclip resumes) across the kebab-case spelling.
fn legacy_text(toml: &str) -> String {
    let mut out = String::with_capacity(toml.len());
    for line in toml.split_inclusive('\n') {
        match line.strip_prefix("drawer = \"fast-pixel\"") {
            Some(rest) if rest.trim().is_empty() => {
                out.push_str("drawer = \"fast_pixel\"");
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod legacy_tests {
    #[test]
    fn legacy_text_spells_the_drawer_as_before() {
        let t = "drawer = \"fast-pixel\"\nprompts = [\"drawer = \\\"fast-pixel\\\"\"]\n";
        assert_eq!(
            super::legacy_text(t),
            "drawer = \"fast_pixel\"\nprompts = [\"drawer = \\\"fast-pixel\\\"\"]\n"
        );
        assert_eq!(
            super::legacy_text("drawer = \"fft\"\n"),
            "drawer = \"fft\"\n"
        );
    }
}
