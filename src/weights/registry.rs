//! The standard models (registry.toml, compiled in) and how a `--vqgan`/`--clip` value becomes a file.
use crate::error::usage;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const REGISTRY_TOML: &str = include_str!("registry.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Vqgan,
    Clip,
    /// A small head on a CLIP model's image embeddings (pixray's aesthetic predictor).
    Head,
    /// torchvision's VGG16 (the style loss's features).
    Vgg,
    /// The ResMem memorability model (the resmem loss).
    Resmem,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Vqgan => "VQGAN",
            ModelKind::Clip => "CLIP",
            ModelKind::Head => "CLIP head",
            ModelKind::Vgg => "VGG16",
            ModelKind::Resmem => "ResMem",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileEntry {
    pub name: String,
    #[serde(default)]
    pub approx_mb: u64,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Download sources; empty for files that ship with vqclip.
    #[serde(default)]
    pub urls: Vec<String>,
    /// The sources serve a zip archive (e.g. a PyPI wheel) that holds the file as this member;
    /// `sha256` and the size are the member's.
    #[serde(default)]
    pub member: Option<String>,
    /// The archive's own sha256 (a `member` file's download, checked before unpacking).
    #[serde(default)]
    pub archive_sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub kind: ModelKind,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub description: String,
    /// The official files (checkpoint first, then its config).
    pub file: Vec<FileEntry>,
    /// Equivalent alternatives (safetensors mirrors), any one of which replaces `file[0]`.
    #[serde(default)]
    pub alt: Vec<FileEntry>,
    /// Ships with vqclip (the demo world in the repository's `weights/demo/`): never downloaded,
    /// found in the weights directory or, failing that, in the repository vqclip was built from.
    #[serde(default)]
    pub bundled: bool,
    /// A head's CLIP model (its name in this registry): the embeddings it was trained on.
    #[serde(default)]
    pub clip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    model: Vec<ModelEntry>,
}

/// All registry entries: those in `$VQCLIP_REGISTRY` (a TOML file of the same form, for models the
/// built-in list lacks or a local copy of one), then the built-in ones. A broken user file is reported
/// by [`check_user`] at start-up; here it adds nothing.
pub fn models() -> &'static [ModelEntry] {
    static CELL: OnceLock<Vec<ModelEntry>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut all = user_models().ok().flatten().unwrap_or_default();
        // The registry is compiled in and covered by a test; an empty list is the safe fallback.
        all.extend(parse(REGISTRY_TOML).unwrap_or_default());
        all
    })
}

/// Largest user registry file read.
const MAX_USER_REGISTRY: u64 = 4 << 20;

fn user_models() -> Result<Option<Vec<ModelEntry>>> {
    let Some(path) = std::env::var_os("VQCLIP_REGISTRY").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let len = std::fs::metadata(&path)
        .with_context(|| format!("VQCLIP_REGISTRY: cannot read {}", path.display()))?
        .len();
    if len > MAX_USER_REGISTRY {
        bail!(
            "VQCLIP_REGISTRY: {} is {len} bytes; a registry file is at most {MAX_USER_REGISTRY}",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "VQCLIP_REGISTRY: cannot read {} as UTF-8 text",
            path.display()
        )
    })?;
    parse(&text)
        .map(Some)
        .with_context(|| format!("VQCLIP_REGISTRY: {}", path.display()))
}

/// Checks the compiled-in registry parses (used by tests and `weights list`).
pub fn check() -> Result<()> {
    parse(REGISTRY_TOML).context("built-in model registry is invalid")?;
    Ok(())
}

/// Checks `$VQCLIP_REGISTRY`, if set, at start-up: a bad file is a usage error, not a silent gap.
pub fn check_user() -> Result<()> {
    user_models().map_err(|e| usage(format!("{e:#}")))?;
    Ok(())
}

/// Parses registry TOML text into its entries and checks what a file could abuse: file names stay inside
/// the weights folder, checksums are sha256 hex, sources are http(s) URLs.
pub fn parse(text: &str) -> Result<Vec<ModelEntry>> {
    let models = toml::from_str::<Registry>(text)
        .map_err(|e| anyhow::anyhow!("{}", e.message().trim()))?
        .model;
    for m in &models {
        if m.name.trim().is_empty() {
            bail!("a model has an empty name");
        }
        if m.file.is_empty() {
            bail!("model {} lists no file", m.name);
        }
        for f in m.file.iter().chain(&m.alt) {
            let p = Path::new(&f.name);
            let plain = !f.name.is_empty()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                bail!(
                    "model {}: file name {:?} must be a relative path inside the weights folder",
                    m.name,
                    f.name
                );
            }
            for h in f.sha256.iter().chain(&f.archive_sha256) {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!("model {}: {}: sha256 must be 64 hex digits", m.name, f.name);
                }
            }
            if let Some(member) = &f.member
                && (member.is_empty()
                    || member.starts_with('/')
                    || member
                        .split('/')
                        .any(|c| c.is_empty() || c == "." || c == ".."))
            {
                bail!(
                    "model {}: {}: member {member:?} must be a relative path inside the archive",
                    m.name,
                    f.name
                );
            }
            if let Some(u) = f
                .urls
                .iter()
                .find(|u| !(u.starts_with("https://") || u.starts_with("http://")))
            {
                bail!("model {}: {}: {u:?} is not an http(s) URL", m.name, f.name);
            }
        }
    }
    Ok(models)
}

/// Finds an entry by name or alias (case-insensitive).
pub fn find(name: &str, kind: ModelKind) -> Option<&'static ModelEntry> {
    let n = name.trim();
    models().iter().filter(|m| m.kind == kind).find(|m| {
        m.name.eq_ignore_ascii_case(n) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(n))
    })
}

/// `$VQCLIP_WEIGHTS`, else `weights/` in the current directory (the pip package: the per-user
/// cache, `$XDG_CACHE_HOME/vqclip/weights`, by default `~/.cache/vqclip/weights`).
pub fn weights_dir() -> PathBuf {
    match std::env::var_os("VQCLIP_WEIGHTS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => default_weights_dir(),
    }
}

#[cfg(not(vqclip_wheel))]
fn default_weights_dir() -> PathBuf {
    PathBuf::from("weights")
}

#[cfg(vqclip_wheel)]
fn default_weights_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("vqclip").join("weights")
}

/// Where bundled models live: the package's `weights/` beside the binary's `bin/` (the pip
/// package), else the repository's `weights/` (the tree vqclip was built from).
pub fn bundled_dir() -> PathBuf {
    let packaged = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(|p| p.join("weights")));
    match packaged {
        Some(d) if d.join("demo").is_dir() => d,
        _ => source_weights_dir(),
    }
}

#[cfg(not(vqclip_wheel))]
fn source_weights_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/weights"))
}

/// The pip package's binary holds no path of the machine that built it.
#[cfg(vqclip_wheel)]
fn source_weights_dir() -> PathBuf {
    PathBuf::from("weights")
}

/// The directory a model's files are looked up in: the weights directory, except for a bundled
/// model that is not there (a user's own `$VQCLIP_WEIGHTS`), which is read from [`bundled_dir`].
pub fn model_dir(m: &ModelEntry, dir: &Path) -> PathBuf {
    if m.bundled
        && let Some(main) = m.file.first()
        && !dir.join(&main.name).is_file()
        && bundled_dir().join(&main.name).is_file()
    {
        return bundled_dir();
    }
    dir.to_path_buf()
}

/// `weights directory: DIR` with a note when it does not exist yet (doctor, weights list).
pub fn describe_dir(dir: &Path) -> String {
    let note = if dir.is_dir() {
        ""
    } else {
        " (does not exist yet)"
    };
    format!("weights directory: {}{note}", dir.display())
}

/// The file names that satisfy an entry, most preferred first: the fast-load cache
/// (`<stem>.safetensors`), the official checkpoint, then the alternative mirrors.
fn candidates(m: &ModelEntry) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(main) = m.file.first() {
        out.extend(cache_name(m));
        out.push(main.name.clone());
    }
    for a in &m.alt {
        if !out.contains(&a.name) {
            out.push(a.name.clone());
        }
    }
    // Names the anchors use for the same files (pixray/nerdyrodent: vqgan_<name>.ckpt).
    for alias in &m.aliases {
        out.push(format!("{alias}.ckpt"));
    }
    out
}

/// The present file for an entry in `dir`, if any. A safetensors cache older than the
/// official checkpoint beside it is skipped (it may be stale).
pub fn find_present(m: &ModelEntry, dir: &Path) -> Option<PathBuf> {
    let dir = &model_dir(m, dir);
    let cands = candidates(m);
    let official = m.file.first().map(|f| dir.join(&f.name));
    for c in cands {
        let p = dir.join(&c);
        if !p.is_file() {
            continue;
        }
        if c.ends_with(".safetensors")
            && let Some(off) = &official
            && is_older(&p, off)
        {
            continue;
        }
        return Some(p);
    }
    None
}

fn is_older(a: &Path, b: &Path) -> bool {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((m(a), m(b)), (Some(x), Some(y)) if x < y)
}

/// Every model with the file found for it (for `doctor` and `weights list`).
pub fn presence(dir: &Path) -> Vec<(String, Option<PathBuf>)> {
    models()
        .iter()
        .map(|m| (m.name.clone(), find_present(m, dir)))
        .collect()
}

/// Error for a known model that is not in the weights directory (exit 1).
pub fn missing_error(m: &ModelEntry, dir: &Path) -> anyhow::Error {
    let main = m.file.first().map(|f| f.name.as_str()).unwrap_or("?");
    if m.bundled {
        return anyhow::anyhow!(
            "{} model '{}' not found: expected {} (it ships with vqclip; restore it with `git checkout -- weights/demo` in the vqclip repository)",
            m.kind.as_str(),
            m.name,
            bundled_dir().join(main).display()
        );
    }
    let url = m
        .file
        .first()
        .and_then(|f| f.urls.first())
        .map(|s| s.as_str())
        .unwrap_or("?");
    anyhow::anyhow!(
        "{} model '{}' not found: expected {} (run `vqclip weights fetch {}`, add --fetch to generate, or download {} and save it as that file)",
        m.kind.as_str(),
        m.name,
        dir.join(main).display(),
        m.name,
        url
    )
}

/// Resolves a `--vqgan`/`--clip` value: an existing path is used as is; a known name is looked up
/// in the weights directory; anything else is a usage error listing the known names.
pub fn resolve(spec: &str, kind: ModelKind) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let flag = match kind {
        ModelKind::Vqgan => "--vqgan",
        ModelKind::Clip => "--clip",
        ModelKind::Head => "--aesthetic-model",
        ModelKind::Vgg => "--style-model",
        ModelKind::Resmem => "--resmem-model",
    };
    if let Some(m) = find(spec, kind) {
        let dir = weights_dir();
        return find_present(m, &dir).ok_or_else(|| missing_error(m, &dir));
    }
    if path.is_dir() {
        return Err(usage(format!(
            "{flag} {spec}: is a directory, expected a weight file"
        )));
    }
    // A weight-file extension means the user meant a path; anything else was meant as a name.
    let looks_like_path = [".ckpt", ".pt", ".pth", ".bin", ".safetensors"]
        .iter()
        .any(|e| spec.to_ascii_lowercase().ends_with(e));
    if looks_like_path {
        anyhow::bail!("{flag} {spec}: file not found");
    }
    let names: Vec<&str> = models()
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.name.as_str())
        .collect();
    Err(usage(format!(
        "{flag}: unknown model '{spec}': give a file path or one of {}",
        names.join(", ")
    )))
}

/// Finds an entry of any kind by name or alias (case-insensitive).
pub fn find_any(name: &str) -> Option<&'static ModelEntry> {
    let n = name.trim();
    models().iter().find(|m| {
        m.name.eq_ignore_ascii_case(n) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(n))
    })
}

/// Usage error for a name that is not in the registry, listing the known names.
pub fn unknown_model_error(name: &str) -> anyhow::Error {
    let names: Vec<&str> = models().iter().map(|m| m.name.as_str()).collect();
    usage(format!(
        "unknown model '{name}': known models are {} (see `vqclip weights list`)",
        names.join(", ")
    ))
}

/// The fast-load cache name for an entry: `<stem of the official checkpoint>.safetensors`.
pub fn cache_name(m: &ModelEntry) -> Option<String> {
    let main = m.file.first()?;
    let p = Path::new(&main.name);
    let stem = p.file_stem()?.to_string_lossy().to_string();
    // Beside the checkpoint, in its sub-directory if it has one (`demo/demo_clip.safetensors`).
    Some(match p.parent().map(|d| d.to_string_lossy().to_string()) {
        Some(d) if !d.is_empty() => format!("{d}/{stem}.safetensors"),
        _ => format!("{stem}.safetensors"),
    })
}

/// File names the anchors' scripts use for the official checkpoint (`vqgan_<name>.ckpt`).
pub fn alias_names(m: &ModelEntry) -> Vec<String> {
    m.aliases.iter().map(|a| format!("{a}.ckpt")).collect()
}

/// Settings-time check of a `--vqgan`/`--clip` value (no file is opened): an existing path or a
/// weight-file name passes (resolved later), a known name passes, anything else is a usage error.
pub fn check_spec(spec: &str, kind: ModelKind) -> Result<()> {
    match resolve(spec, kind) {
        Err(e) if crate::error::exit_code(&e) == 2 => Err(e),
        _ => Ok(()),
    }
}
