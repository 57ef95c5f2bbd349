//! Is a weight file what it claims to be? Content sniffing (shared with the downloader, which must
//! reject HTML error pages before writing them), size, sha256, and loading as the right kind of model.
use super::registry::{self, FileEntry, ModelEntry, ModelKind};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a registry file name promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `.ckpt`, `.pt`, `.pth`, `.bin`, `.safetensors`: torch zip, legacy torch or safetensors bytes.
    Checkpoint,
    /// `.yaml`/`.yml`: a YAML mapping.
    Yaml,
    /// Anything else: only "not an HTML page".
    Other,
}

pub fn expect_for(file_name: &str) -> Expect {
    let lower = file_name.to_ascii_lowercase();
    if [".ckpt", ".pt", ".pth", ".bin", ".safetensors"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        Expect::Checkpoint
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Expect::Yaml
    } else {
        Expect::Other
    }
}

/// Bytes needed by [`check_head`] to decide.
pub const HEAD_LEN: usize = 64;

/// An HTML (or XML) page: an error page, a login wall, "link does not exist". Judged by the first bytes.
pub fn looks_like_html(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let text = String::from_utf8_lossy(&head[start..]).to_ascii_lowercase();
    text.starts_with("<!doctype")
        || text.starts_with("<html")
        || text.starts_with("<head")
        || text.starts_with("<?xml")
}

/// Checks the first bytes of a file against what its name promises; the error says what was found.
pub fn check_head(file_name: &str, head: &[u8]) -> std::result::Result<(), String> {
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    if looks_like_html(head) {
        return Err("it is an HTML page, not the file (a dead link or an error page)".into());
    }
    match expect_for(file_name) {
        Expect::Checkpoint => {
            let zip = head.starts_with(b"PK\x03\x04");
            let legacy =
                head.starts_with(&[0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]);
            let safetensors = head.len() > 8 && head[8] == b'{' && {
                let mut n = [0u8; 8];
                n.copy_from_slice(&head[..8]);
                u64::from_le_bytes(n) < (1 << 30)
            };
            if zip || legacy || safetensors {
                Ok(())
            } else {
                Err(format!(
                    "it is not a checkpoint (starts with {})",
                    describe_head(head)
                ))
            }
        }
        Expect::Yaml => {
            // A multi-byte character cut at the end of the head is fine; invalid bytes are not.
            let bad_utf8 = matches!(std::str::from_utf8(head), Err(e) if e.error_len().is_some());
            if head.contains(&0) || bad_utf8 {
                Err(format!(
                    "it is not a text file (starts with {})",
                    describe_head(head)
                ))
            } else {
                Ok(())
            }
        }
        Expect::Other => Ok(()),
    }
}

fn describe_head(head: &[u8]) -> String {
    let shown = &head[..head.len().min(8)];
    if shown.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(shown))
    } else {
        shown
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The first [`HEAD_LEN`] bytes of a file (fewer if it is shorter).
pub fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = vec![0u8; HEAD_LEN];
    let mut n = 0;
    while n < head.len() {
        let k = f
            .read(&mut head[n..])
            .with_context(|| format!("cannot read {}", path.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    Ok(head)
}

/// The lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A file whose size is far from the registry's approximate size is not the published file
/// (an error page, a truncated transfer, a different model). Exact sizes are checked separately.
pub fn plausible_size(file: &FileEntry, len: u64) -> std::result::Result<(), String> {
    if let Some(size) = file.size {
        if len != size {
            return Err(format!("its size is {len} bytes, expected {size}"));
        }
        return Ok(());
    }
    if file.approx_mb >= 1 {
        let approx = file.approx_mb * 1_000_000;
        // Loose bounds: a converted fp16 cache of a model whose mirror is f32 is about half the size.
        if len < approx * 2 / 5 || len > approx * 5 / 2 {
            return Err(format!(
                "its size is {}, expected about {} MB",
                human_bytes(len),
                file.approx_mb
            ));
        }
    }
    Ok(())
}

/// Whether a tensor name marks a VQGAN or a CLIP state dict (any prefix such as `first_stage_model.`).
pub fn characteristic_key(kind: ModelKind, name: &str) -> bool {
    match kind {
        ModelKind::Vqgan => name.ends_with("decoder.conv_in.weight"),
        ModelKind::Clip => {
            name.ends_with("visual.conv1.weight")
                || name.ends_with("vision_model.embeddings.patch_embedding.weight")
        }
        ModelKind::Head => name == "weight",
        ModelKind::Vgg => {
            name == "features.0.weight" || name.ends_with("perceptual_loss.net.slice1.0.weight")
        }
        ModelKind::Resmem => name == "fc12.weight",
    }
}

/// Which kind of model a set of tensor names belongs to, if any.
pub fn detect_kind<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<ModelKind> {
    let mut found = None;
    for n in names {
        if characteristic_key(ModelKind::Clip, n) {
            return Some(ModelKind::Clip);
        }
        if characteristic_key(ModelKind::Vqgan, n) {
            found = Some(ModelKind::Vqgan);
        }
    }
    found
}

/// Cheap "opens as this kind": reads the file's structure and only the characteristic tensor.
pub fn check_kind_light(path: &Path, kind: ModelKind) -> Result<()> {
    let map = super::load_tensors(path, &|n| characteristic_key(kind, n))?;
    if map.is_empty() {
        bail!(
            "{} loads, but holds no {} weights ({})",
            path.display(),
            kind.as_str(),
            expected_keys(kind)
        );
    }
    Ok(())
}

pub fn expected_keys(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Vqgan => "no decoder.conv_in.weight",
        ModelKind::Clip => {
            "no visual.conv1.weight or vision_model.embeddings.patch_embedding.weight"
        }
        ModelKind::Head => "no weight tensor",
        ModelKind::Vgg => "no features.0.weight (nor an LPIPS network's slice1.0.weight)",
        ModelKind::Resmem => "no fc12.weight",
    }
}

/// The full check's model builder (`cmd::weights::load_model`): it lives above this module,
/// since building a model needs `models`, which reads files through `weights`.
pub type Loader<'a> = &'a dyn Fn(&Path, ModelKind) -> Result<()>;

/// A taming config must be YAML with a `model` section.
pub fn check_yaml(path: &Path) -> Result<()> {
    let head = read_head(path)?;
    if let Err(why) = check_head(&path.to_string_lossy(), &head) {
        bail!("{}: {why}", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not valid YAML: {e}", path.display()))?;
    match docs.first() {
        Some(doc) if !doc["model"].is_badvalue() => Ok(()),
        _ => bail!(
            "{} has no `model:` section: it is not a taming-transformers config",
            path.display()
        ),
    }
}

/// Outcome for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Bad { problem: String, fix: String },
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub model: String,
    pub path: PathBuf,
    pub verdict: Verdict,
    /// Extra remarks that do not make the file bad (a stale cache, a leftover partial download).
    pub notes: Vec<String>,
}

/// Checks every present file of a model. With `load` each is also built into the model (slower);
/// otherwise only the characteristic tensor is read.
pub fn verify_model(m: &ModelEntry, dir: &Path, load: Option<Loader>) -> Vec<FileReport> {
    let mut out = Vec::new();
    let fetch = format!("vqclip weights fetch {}", quote_name(&m.name));
    let official = m.file.first().map(|f| dir.join(&f.name));
    let mut seen: Vec<String> = Vec::new();
    // Registry files first (they carry sizes and checksums), then the cache and the anchors' names.
    let mut entries: Vec<(String, Option<&FileEntry>)> = Vec::new();
    for f in m.file.iter().chain(m.alt.iter()) {
        entries.push((f.name.clone(), Some(f)));
    }
    if let Some(c) = registry::cache_name(m) {
        entries.push((c, None));
    }
    for a in registry::alias_names(m) {
        entries.push((a, None));
    }
    for (name, entry) in entries {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let path = dir.join(&name);
        if !path.is_file() {
            continue;
        }
        let is_cache =
            Some(&name) == registry::cache_name(m).as_ref() && official.as_ref() != Some(&path);
        let mut notes = Vec::new();
        let verdict = match verify_file(&path, entry, m.kind, load) {
            Ok((detail, remarks)) => {
                notes = remarks;
                Verdict::Ok(detail)
            }
            Err(problem) => {
                let fix = if is_cache && entry.is_none() {
                    format!(
                        "delete it, then run `vqclip weights convert {}` (or `{fetch}`)",
                        quote_name(&m.name)
                    )
                } else if entry.is_some() {
                    format!("delete it and run `{fetch}`")
                } else {
                    format!("delete it, or replace it with a good copy (`{fetch}`)")
                };
                Verdict::Bad { problem, fix }
            }
        };
        if is_cache
            && let Some(off) = &official
            && off.is_file()
            && older(&path, off)
        {
            notes.push(format!(
                "older than {}, so that file is loaded instead; rebuild with `vqclip weights convert {} --force`",
                off.display(),
                quote_name(&m.name)
            ));
        }
        out.push(FileReport {
            model: m.name.clone(),
            path,
            verdict,
            notes,
        });
    }
    out
}

fn older(a: &Path, b: &Path) -> bool {
    let t = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((t(a), t(b)), (Some(x), Some(y)) if x < y)
}

/// Checks one file: content, exact size and sha256 from its registry entry (if any), then loading.
/// Ok gives a short summary and remarks that do not make the file bad; the error describes the problem.
pub fn verify_file(
    path: &Path,
    entry: Option<&FileEntry>,
    kind: ModelKind,
    load: Option<Loader>,
) -> std::result::Result<(String, Vec<String>), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let head = read_head(path).map_err(|e| format!("{e:#}"))?;
    check_head(&name, &head)?;
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot stat it: {e}"))?
        .len();
    let mut detail = vec![human_bytes(len)];
    let mut notes = Vec::new();
    if let Some(f) = entry {
        if f.size.is_some() {
            plausible_size(f, len)?;
        } else if let Err(why) = plausible_size(f, len) {
            // Without a published size the load check decides; the mismatch is worth a remark.
            notes.push(format!("{why}: not the published file?"));
        }
        if let Some(want) = &f.sha256 {
            let got = sha256_file(path).map_err(|e| format!("{e:#}"))?;
            if !got.eq_ignore_ascii_case(want) {
                return Err(format!(
                    "sha256 mismatch: got {got}, expected {want} (corrupt or a different file)"
                ));
            }
            detail.push("sha256 ok".into());
        }
    }
    match expect_for(&name) {
        Expect::Yaml => {
            check_yaml(path).map_err(|e| format!("{e:#}"))?;
            detail.push("taming config".into());
        }
        Expect::Checkpoint => {
            let check = check_kind_light(path, kind).and_then(|()| match load {
                Some(load) => load(path, kind),
                None => Ok(()),
            });
            check.map_err(|e| format!("does not open as a {} model: {e:#}", kind.as_str()))?;
            detail.push(format!("loads as {}", kind.as_str()));
        }
        Expect::Other => {}
    }
    Ok((detail.join(", "), notes))
}

/// `ViT-L/14@336px` needs no quoting in a shell, but a name with spaces would.
pub fn quote_name(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
    {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

/// `980.4 MB`, `12.0 kB`, `512 B` (decimal units, as download sizes are usually quoted).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// Leftover partial downloads in `dir` for a model's files (name, bytes).
pub fn partials(m: &ModelEntry, dir: &Path) -> Vec<(PathBuf, u64)> {
    m.file
        .iter()
        .chain(m.alt.iter())
        .filter_map(|f| {
            let p = dir.join(format!("{}.part", f.name));
            std::fs::metadata(&p)
                .ok()
                .filter(|md| md.is_file())
                .map(|md| (p, md.len()))
        })
        .collect()
}
