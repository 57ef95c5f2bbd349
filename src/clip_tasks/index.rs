//! The on-disk embedding index of one folder for one CLIP model (format described in
//! [`crate::clip_tasks`]): load with every check, save atomically.
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The index folder inside the searched folder.
pub const INDEX_DIR: &str = ".vqclip-index";
/// Bumped when the file layout or the meaning of a field changes; other versions are rebuilt.
pub const FORMAT_VERSION: u32 = 1;
/// The `__metadata__` key that holds the manifest.
const MANIFEST_KEY: &str = "vqclip.index";
const TENSOR_NAME: &str = "embeddings";
/// Bytes read from each end of the weight file for the model id.
const ID_SPAN: u64 = 1 << 20;

/// One indexed image: the key that decides reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the searched folder.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format_version: u32,
    model: String,
    dim: usize,
    embeddings_sha256: String,
    entries: Vec<Entry>,
}

/// Rows of image embeddings and their keys.
#[derive(Debug)]
pub struct Index {
    pub entries: Vec<Entry>,
    /// `[entries.len(), dim]` f32 on the CPU, projected (not normalized).
    pub embeds: Tensor,
}

/// The model id of a weight file (see the module docs): `<stem>-<size>-<12 hex>`.
pub fn model_id(weights: &Path) -> Result<String> {
    let mut f = std::fs::File::open(weights)
        .with_context(|| format!("cannot open {}", weights.display()))?;
    let size = f
        .metadata()
        .with_context(|| format!("cannot read {}", weights.display()))?
        .len();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let mut buf = Vec::new();
    (&mut f)
        .take(ID_SPAN)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", weights.display()))?;
    hasher.update(&buf);
    if size > ID_SPAN {
        buf.clear();
        f.seek(SeekFrom::Start(size.saturating_sub(ID_SPAN).max(ID_SPAN)))
            .and_then(|_| f.take(ID_SPAN).read_to_end(&mut buf))
            .with_context(|| format!("cannot read {}", weights.display()))?;
        hasher.update(&buf);
    }
    let hash: String = hasher.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stem = weights
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    Ok(format!("{stem}-{size}-{hash}"))
}

/// `DIR/.vqclip-index/<model-id>.safetensors`.
pub fn index_path(dir: &Path, model_id: &str) -> PathBuf {
    dir.join(INDEX_DIR).join(format!("{model_id}.safetensors"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Index {
    pub fn empty(dim: i64) -> Index {
        Index {
            entries: Vec::new(),
            embeds: Tensor::zeros([0, dim], (Kind::Float, Device::Cpu)),
        }
    }

    /// Reads the index at `path`: `Ok(None)` when there is none, an error saying what is wrong
    /// when it exists but is not a complete, consistent index for `model_id` with rows of `dim`.
    pub fn load(path: &Path, model_id: &str, dim: i64) -> Result<Option<Index>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(&bytes, model_id, dim)
            .with_context(|| format!("{} is not a valid index", path.display()))
            .map(Some)
    }

    /// Parses index bytes (public for the fuzz target).
    pub fn parse(bytes: &[u8], model_id: &str, dim: i64) -> Result<Index> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("corrupt safetensors: {e}"))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow::anyhow!("corrupt safetensors header: {e}"))?;
        let text = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(MANIFEST_KEY))
            .context("no manifest in the header")?;
        let manifest: Manifest = serde_json::from_str(text).context("unreadable manifest")?;
        ensure!(
            manifest.format_version == FORMAT_VERSION,
            "format version {} (this vqclip writes {FORMAT_VERSION})",
            manifest.format_version
        );
        ensure!(
            manifest.model == model_id,
            "made for model {}, not {model_id}",
            manifest.model
        );
        ensure!(
            i64::try_from(manifest.dim).ok() == Some(dim),
            "rows of {} values, the model gives {dim}",
            manifest.dim
        );
        ensure!(st.len() == 1, "{} tensors, expected 1", st.len());
        let view = st
            .tensor(TENSOR_NAME)
            .map_err(|e| anyhow::anyhow!("no {TENSOR_NAME} tensor: {e}"))?;
        let n = manifest.entries.len();
        ensure!(
            view.dtype() == safetensors::Dtype::F32 && view.shape() == [n, manifest.dim],
            "{TENSOR_NAME} is {:?} {:?}, expected F32 [{n}, {}]",
            view.dtype(),
            view.shape(),
            manifest.dim
        );
        ensure!(
            sha256_hex(view.data()) == manifest.embeddings_sha256,
            "checksum mismatch in the embeddings"
        );
        let mut seen = HashSet::with_capacity(n);
        for e in &manifest.entries {
            ensure!(seen.insert(e.path.as_str()), "{} listed twice", e.path);
        }
        let embeds = Tensor::f_from_data_size(view.data(), &[n as i64, dim], Kind::Float)
            .context("cannot build the embeddings tensor")?;
        if n > 0 {
            let finite = embeds.isfinite().all().int64_value(&[]) == 1;
            ensure!(finite, "non-finite embeddings");
        }
        Ok(Index {
            entries: manifest.entries,
            embeds,
        })
    }

    /// Writes the index to `path` through a temporary file in the same folder and a rename, so a
    /// reader sees the old index or the new one, never a part.
    pub fn save(&self, path: &Path, model_id: &str) -> Result<()> {
        let (n, dim) = self
            .embeds
            .size2()
            .context("index embeddings must be [n, d]")?;
        if n as usize != self.entries.len() {
            bail!("{} index rows for {} entries", n, self.entries.len());
        }
        let embeds = self
            .embeds
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let values = Vec::<f32>::try_from(embeds.view([-1])).context("reading the embeddings")?;
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            model: model_id.to_string(),
            dim: dim as usize,
            embeddings_sha256: sha256_hex(&data),
            entries: self.entries.clone(),
        };
        let meta = HashMap::from([(
            MANIFEST_KEY.to_string(),
            serde_json::to_string(&manifest).context("serializing the index manifest")?,
        )]);
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![n as usize, dim as usize],
            &data,
        )
        .map_err(|e| anyhow::anyhow!("index tensor: {e}"))?;
        let bytes = safetensors::serialize([(TENSOR_NAME, view)], Some(meta))
            .map_err(|e| anyhow::anyhow!("serializing the index: {e}"))?;

        let folder = path.parent().context("index path has no folder")?;
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let file_name = path
            .file_name()
            .context("index path has no file name")?
            .to_string_lossy();
        let tmp = folder.join(format!("{file_name}.tmp-{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vqclip-index-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_and_checks() {
        let dir = tmp("rt");
        let path = index_path(&dir, "m-1-abc");
        assert!(Index::load(&path, "m-1-abc", 4).unwrap().is_none());
        let index = Index {
            entries: vec![
                Entry {
                    path: "a.png".into(),
                    size: 10,
                    mtime_ns: -5,
                },
                Entry {
                    path: "sub/b.jpg".into(),
                    size: 11,
                    mtime_ns: 1_700_000_000_123_456_789,
                },
            ],
            embeds: Tensor::arange(8, (Kind::Float, Device::Cpu)).view([2, 4]),
        };
        index.save(&path, "m-1-abc").unwrap();
        let back = Index::load(&path, "m-1-abc", 4).unwrap().unwrap();
        assert_eq!(back.entries, index.entries);
        assert!(back.embeds.equal(&index.embeds));
        // wrong model or size: refused
        assert!(Index::load(&path, "m-2-abc", 4).is_err());
        assert!(Index::load(&path, "m-1-abc", 8).is_err());
        // one flipped byte in the data: refused
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Index::load(&path, "m-1-abc", 4).unwrap_err();
        assert!(format!("{err:#}").contains("checksum"), "{err:#}");
        // truncated: refused
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Index::load(&path, "m-1-abc", 4).is_err());
        // no temporary files left behind
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn model_id_names_size_and_content() {
        let dir = tmp("id");
        let a = dir.join("ViT B+32.pt");
        std::fs::write(&a, vec![7u8; 3 << 20]).unwrap();
        let id = model_id(&a).unwrap();
        assert!(id.starts_with(&format!("ViT_B_32-{}-", 3 << 20)), "{id}");
        let mut bytes = vec![7u8; 3 << 20];
        *bytes.last_mut().unwrap() = 8;
        std::fs::write(&a, &bytes).unwrap();
        assert_ne!(model_id(&a).unwrap(), id);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
