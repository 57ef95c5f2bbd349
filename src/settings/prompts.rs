//! Prompts: text (`text:weight:stop`, `|` and `^` lists), image and noise prompts, and their limits.
use super::values::seed_from_text;
use crate::error::usage;
use anyhow::Result;
use std::fmt;
use std::path::{Path, PathBuf};

/// One text prompt: `text[:weight[:stop]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub weight: f64,
    /// Gradient flows only while the signed distance is above this (−∞: always).
    pub stop: f64,
    /// Story phase (0-based): prompts separated by `^` take turns (see `--change-prompt-every`).
    pub phase: usize,
}

impl Prompt {
    /// Parses `text`, `text:weight` or `text:weight:stop`. Up to two numeric suffixes are peeled
    /// from the right (pixray's rule), so `a photo: sunset` keeps its colon.
    pub fn parse(spec: &str) -> Result<Prompt> {
        let spec = spec.trim();
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut nums = Vec::new();
        while nums.len() < 2 && parts.len() > 1 {
            let last = parts[parts.len() - 1].trim();
            match last.parse::<f64>() {
                Ok(v) => {
                    nums.push((last, v));
                    parts.pop();
                }
                Err(_) => break,
            }
        }
        nums.reverse();
        let text = parts.join(":").trim().to_string();
        if text.is_empty() {
            return Err(usage(format!("prompt '{spec}': the text is empty")));
        }
        let weight = nums.first().map(|n| n.1).unwrap_or(1.0);
        let stop = nums.get(1).map(|n| n.1).unwrap_or(f64::NEG_INFINITY);
        if !weight.is_finite() {
            return Err(usage(format!(
                "prompt '{spec}': weight must be a finite number"
            )));
        }
        if weight == 0.0 {
            return Err(usage(format!(
                "prompt '{spec}': weight 0 does nothing; remove the prompt"
            )));
        }
        if stop.is_nan() {
            return Err(usage(format!("prompt '{spec}': stop must be a number")));
        }
        Ok(Prompt {
            text,
            weight,
            stop,
            phase: 0,
        })
    }

    /// Splits a prompt argument: `^` separates story phases, `|` prompts within a phase
    /// (nerdyrodent's syntax: `"a | b:-1 ^ c"` is phase 0 = [a, b:-1], phase 1 = [c]).
    pub fn parse_list(arg: &str) -> Result<Vec<Prompt>> {
        let phases: Vec<&str> = arg.split('^').collect();
        let mut out = Vec::new();
        for (phase, part) in phases.iter().enumerate() {
            let before = out.len();
            for spec in part.split('|').filter(|s| !s.trim().is_empty()) {
                let mut p = Prompt::parse(spec)?;
                p.phase = phase;
                out.push(p);
            }
            if phases.len() > 1 && out.len() == before {
                return Err(usage(format!(
                    "prompt '{}': story phase {} is empty (phases are separated by ^)",
                    arg.trim(),
                    phase + 1
                )));
            }
        }
        Ok(out)
    }

    /// The inverse of [`Prompt::parse_list`] for prompts ordered by phase.
    pub fn join_list(prompts: &[Prompt]) -> String {
        let phases = prompts.iter().map(|p| p.phase + 1).max().unwrap_or(1);
        (0..phases)
            .map(|ph| {
                prompts
                    .iter()
                    .filter(|p| p.phase == ph)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join(" ^ ")
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)?;
        if self.weight != 1.0 || self.stop.is_finite() {
            write!(f, ":{}", self.weight)?;
        }
        if self.stop.is_finite() {
            write!(f, ":{}", self.stop)?;
        }
        Ok(())
    }
}

/// An image prompt `PATH[:weight]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePrompt {
    pub path: PathBuf,
    pub weight: f64,
}

impl ImagePrompt {
    pub fn parse(spec: &str) -> Result<ImagePrompt> {
        // A trailing `:number` is a weight unless the whole thing is an existing file.
        if let Some((p, w)) = spec.rsplit_once(':')
            && let Ok(weight) = w.trim().parse::<f64>()
            && !Path::new(spec).exists()
        {
            if !weight.is_finite() || weight == 0.0 {
                return Err(usage(format!(
                    "--image-prompt '{spec}': weight must be a finite non-zero number"
                )));
            }
            return Ok(ImagePrompt {
                path: PathBuf::from(p),
                weight,
            });
        }
        if spec.trim().is_empty() {
            return Err(usage("--image-prompt: empty path"));
        }
        Ok(ImagePrompt {
            path: PathBuf::from(spec),
            weight: 1.0,
        })
    }
}

impl fmt::Display for ImagePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weight == 1.0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}:{}", self.path.display(), self.weight)
        }
    }
}

/// A target image `PATH|GLOB[:weight[:stop]]` (pixray's `-ti`): every file it names is encoded
/// once, whole, with CLIP's own preprocessing (resize, centre crop), and each step's cutouts are
/// pulled toward those embeddings. (`--image-prompt` instead cuts the image with each step's
/// cutouts and augments.)
#[derive(Debug, Clone, PartialEq)]
pub struct TargetImage {
    pub pattern: String,
    pub weight: f64,
    pub stop: f64,
}

impl TargetImage {
    pub fn parse(spec: &str) -> Result<TargetImage> {
        if Path::new(spec).is_file() {
            return Ok(TargetImage {
                pattern: spec.to_string(),
                weight: 1.0,
                stop: f64::NEG_INFINITY,
            });
        }
        // The suffix rule of text prompts: up to two numbers peeled from the right.
        let p = Prompt::parse(spec).map_err(|_| {
            usage(format!(
                "--target-image '{spec}': expected PATH, PATH:WEIGHT or PATH:WEIGHT:STOP (PATH may be a glob)"
            ))
        })?;
        Ok(TargetImage {
            pattern: p.text,
            weight: p.weight,
            stop: p.stop,
        })
    }

    /// The files it names, sorted (a glob's matches; a plain path itself). A glob that matches
    /// nothing, or a missing file, is a usage error naming it.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        expand_glob(&self.pattern, "--target-image")
    }
}

/// `pattern`'s files: a plain path (it must exist), or a glob's matches in sorted order (at least
/// one). `flag` names the setting in errors.
pub fn expand_glob(pattern: &str, flag: &str) -> Result<Vec<PathBuf>> {
    if !pattern.contains(['*', '?', '[']) || Path::new(pattern).is_file() {
        let p = PathBuf::from(pattern);
        if !p.is_file() {
            return Err(usage(format!("{flag} {pattern}: file not found")));
        }
        return Ok(vec![p]);
    }
    let paths = glob::glob(pattern)
        .map_err(|e| usage(format!("{flag} '{pattern}': not a valid glob ({e})")))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(usage(format!(
            "{flag} '{pattern}': the glob matches no file"
        )));
    }
    Ok(files)
}

impl fmt::Display for TargetImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pattern)?;
        if self.weight != 1.0 || self.stop.is_finite() {
            write!(f, ":{}", self.weight)?;
        }
        if self.stop.is_finite() {
            write!(f, ":{}", self.stop)?;
        }
        Ok(())
    }
}

/// A vector prompt `FILE.json[:weight[:stop]]` (pixray's `--vector_prompts`): a JSON table of
/// CLIP-space directions by model name (`{"ViT-B/32": [...], ...}`), scored as a text prompt at a
/// tenth of its weight, as pixray does.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPrompt {
    pub path: String,
    pub weight: f64,
    pub stop: f64,
}

impl VectorPrompt {
    pub fn parse(spec: &str) -> Result<VectorPrompt> {
        let t = TargetImage::parse(spec).map_err(|_| {
            usage(format!(
                "--vector-prompt '{spec}': expected FILE.json, FILE.json:WEIGHT or FILE.json:WEIGHT:STOP"
            ))
        })?;
        Ok(VectorPrompt {
            path: t.pattern,
            weight: t.weight,
            stop: t.stop,
        })
    }

    /// The table's row for CLIP model `model` (its name as given to --clip), None when the table
    /// has none; an unreadable file or a row that is not `dim` numbers is a usage error.
    pub fn vector(&self, model: &str, dim: i64) -> Result<Option<Vec<f32>>> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| usage(format!("--vector-prompt {}: cannot read: {e}", self.path)))?;
        let table: std::collections::BTreeMap<String, Vec<f32>> = serde_json::from_str(&text)
            .map_err(|e| {
                usage(format!(
                    "--vector-prompt {}: expected a JSON table of model name to a list of numbers: {e}",
                    self.path
                ))
            })?;
        match table.get(model) {
            None => Ok(None),
            Some(v) if v.len() as i64 == dim => Ok(Some(v.clone())),
            Some(v) => Err(usage(format!(
                "--vector-prompt {}: the {model} row has {} numbers, the model's embeddings {dim}",
                self.path,
                v.len()
            ))),
        }
    }
}

impl fmt::Display for VectorPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TargetImage {
            pattern: self.path.clone(),
            weight: self.weight,
            stop: self.stop,
        }
        .fmt(f)
    }
}

/// A noise prompt `SEED[:weight]`: a random direction in CLIP's embedding space, the same for
/// the same seed (nerdyrodent's and pixray's `--noise_prompt_seeds/weights`). Adds variety.
#[derive(Debug, Clone, PartialEq)]
pub struct NoisePrompt {
    pub seed: u64,
    pub weight: f64,
}

impl NoisePrompt {
    pub fn parse(spec: &str) -> Result<NoisePrompt> {
        let (seed, weight) = match spec.rsplit_once(':') {
            Some((s, w)) => {
                let w: f64 = w.trim().parse().map_err(|_| {
                    usage(format!(
                        "--noise-prompt '{spec}': expected SEED or SEED:WEIGHT (e.g. 42:0.5)"
                    ))
                })?;
                (s, w)
            }
            None => (spec, 1.0),
        };
        if !weight.is_finite() || weight == 0.0 {
            return Err(usage(format!(
                "--noise-prompt '{spec}': weight must be a finite non-zero number"
            )));
        }
        let seed = seed_from_text(seed).map_err(|_| {
            usage(format!(
                "--noise-prompt '{spec}': the seed must be a non-negative integer or a word"
            ))
        })?;
        Ok(NoisePrompt { seed, weight })
    }
}

impl fmt::Display for NoisePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seed, self.weight)
    }
}

/// Longest text prompt, in bytes. CLIP reads 77 tokens (a few hundred characters); the text is also written
/// into run.toml, every PNG and the log, so a megabyte of it is refused rather than copied everywhere.
pub const MAX_PROMPT_BYTES: usize = 10_000;
/// Most prompts of one run (text, image and noise together): each is a loss term at every step.
pub const MAX_PROMPTS: usize = 1_000;

pub(super) fn check_prompt_limits(prompts: &[Prompt], others: usize) -> Result<()> {
    if let Some((i, p)) = prompts
        .iter()
        .enumerate()
        .find(|(_, p)| p.text.len() > MAX_PROMPT_BYTES)
    {
        return Err(usage(format!(
            "prompt {} is {} bytes long; the limit is {MAX_PROMPT_BYTES} (CLIP reads only its first 77 tokens, \
             a few hundred characters): shorten it",
            i + 1,
            p.text.len()
        )));
    }
    let n = prompts.len() + others;
    if n > MAX_PROMPTS {
        return Err(usage(format!(
            "{n} prompts given; one run takes at most {MAX_PROMPTS} (each adds a loss term to every step): \
             for many separate images use `vqclip batch` with a jobs file"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_suffixes() {
        let p = Prompt::parse("a cat:2:-0.5").unwrap();
        assert_eq!((p.text.as_str(), p.weight, p.stop), ("a cat", 2.0, -0.5));
        let p = Prompt::parse("ratio 16:9 poster").unwrap();
        assert_eq!(p.text, "ratio 16:9 poster");
        let p = Prompt::parse("title: dawn:-1").unwrap();
        assert_eq!((p.text.as_str(), p.weight), ("title: dawn", -1.0));
        assert!(Prompt::parse(":2").is_err());
    }
}
