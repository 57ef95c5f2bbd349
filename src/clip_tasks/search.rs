//! Bringing a folder's index up to date and ranking its images against a query.
use super::encode::{encode_files, load_pixels};
use super::index::{Entry, Index, index_path, model_id};
use super::scan::{Found, scan};
use crate::models::clip::Clip;
use crate::tokenizer::{Tokenizer, truncation_warning};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// How an index update went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// Images run through CLIP this time.
    pub encoded: usize,
    /// Images whose stored embedding was still valid.
    pub reused: usize,
    /// Image files (and folders) that could not be read; they are not in the index.
    pub unreadable: usize,
}

/// What the caller may want to tell the user besides [`IndexStats`].
#[derive(Debug, Default)]
pub struct IndexReport {
    pub stats: IndexStats,
    /// Unreadable paths with the reason, sorted by path.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Why a saved index was thrown away, if one was.
    pub rebuilt_because: Option<String>,
    /// Why the updated index could not be saved, if it could not (the search still works).
    pub not_saved_because: Option<String>,
}

/// The images of a folder with their embeddings, ready to rank.
#[derive(Debug)]
pub struct Indexed {
    /// Paths as `dir.join(relative path)`, in the order of [`Indexed::embeds`]' rows.
    pub paths: Vec<PathBuf>,
    /// `[paths.len(), dim]` f32 on the CPU.
    pub embeds: Tensor,
}

/// How [`update_index`] runs.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Images per CLIP batch.
    pub batch: usize,
    /// Ignore any saved index and encode everything.
    pub reindex: bool,
    /// The weight file the model was loaded from (names the index file).
    pub weights: PathBuf,
}

/// Progress callbacks: `(done, total)` images to encode.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Scans `dir`, reuses what the saved index still covers, encodes the rest and saves the index
/// again when anything changed. Only a `dir` that cannot be listed, an unreadable weight file or
/// a failing model are errors; unreadable images and an unwritable index are reported.
pub fn update_index(
    clip: &Clip,
    dir: &Path,
    opts: &UpdateOptions,
    progress: Progress,
) -> Result<(Indexed, IndexReport)> {
    // A bf16 model's embeddings differ from f32's in the last digits: each kind has its own index.
    let id = match clip.kind() {
        tch::Kind::Float => model_id(&opts.weights)?,
        _ => format!("{}-bf16", model_id(&opts.weights)?),
    };
    let dim = clip.config().embed_dim;
    let path = index_path(dir, &id);
    let mut report = IndexReport::default();
    let found = scan(dir)?;
    report.unreadable = found.unreadable;

    let old = if opts.reindex {
        None
    } else {
        match Index::load(&path, &id, dim) {
            Ok(old) => old,
            Err(e) => {
                report.rebuilt_because = Some(format!("{e:#}"));
                None
            }
        }
    };
    let old_rows: HashMap<&str, (usize, &Entry)> = old
        .as_ref()
        .map(|o| {
            o.entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.path.as_str(), (i, e)))
                .collect()
        })
        .unwrap_or_default();

    // Per found image: the old row to reuse, or None to encode.
    let reuse: Vec<Option<usize>> = found
        .images
        .iter()
        .map(|f| {
            let key = f.rel.to_str()?;
            let &(row, e) = old_rows.get(key)?;
            (e.size == f.size && e.mtime_ns == f.mtime_ns).then_some(row)
        })
        .collect();
    let to_encode: Vec<usize> = (0..found.images.len())
        .filter(|&i| reuse[i].is_none())
        .collect();
    let abs: Vec<PathBuf> = to_encode
        .iter()
        .map(|&i| dir.join(&found.images[i].rel))
        .collect();
    let total = abs.len();
    let encoded = encode_files(clip, &abs, opts.batch, &mut |done| progress(done, total))?;

    // Assemble the rows in scan order: reused rows from the old index, new ones from `encoded`.
    let mut new_row: Vec<Option<i64>> = vec![None; found.images.len()];
    for (row, &k) in encoded.ok.iter().enumerate() {
        new_row[to_encode[k]] = Some(row as i64);
    }
    for (k, err) in &encoded.failed {
        report
            .unreadable
            .push((abs[*k].clone(), format!("{err:#}")));
    }
    report.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<&Found> = Vec::new();
    let mut pick_old = Vec::new(); // (position in kept, old row)
    let mut pick_new = Vec::new(); // (position in kept, new row)
    for (i, f) in found.images.iter().enumerate() {
        match (reuse[i], new_row[i]) {
            (Some(r), _) => pick_old.push((kept.len() as i64, r as i64)),
            (None, Some(r)) => pick_new.push((kept.len() as i64, r)),
            (None, None) => continue, // unreadable
        }
        kept.push(f);
    }
    let embeds = gather_rows(
        kept.len(),
        dim,
        old.as_ref().map(|o| &o.embeds),
        &pick_old,
        &encoded.embeds,
        &pick_new,
    );
    report.stats = IndexStats {
        encoded: encoded.ok.len(),
        reused: pick_old.len(),
        unreadable: report.unreadable.len(),
    };

    // Save what can be stored (UTF-8 paths) if anything differs from the saved index.
    let storable: Vec<usize> = (0..kept.len())
        .filter(|&i| kept[i].rel.to_str().is_some())
        .collect();
    let entries: Vec<Entry> = storable
        .iter()
        .map(|&i| Entry {
            path: kept[i].rel.to_str().unwrap_or_default().to_string(),
            size: kept[i].size,
            mtime_ns: kept[i].mtime_ns,
        })
        .collect();
    let unchanged = old.as_ref().is_some_and(|o| o.entries == entries);
    if !unchanged {
        let rows = Tensor::from_slice(&storable.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let index = Index {
            entries,
            embeds: embeds.index_select(0, &rows),
        };
        if let Err(e) = index.save(&path, &id) {
            report.not_saved_because = Some(format!("{e:#}"));
        }
    }
    let paths = kept.iter().map(|f| dir.join(&f.rel)).collect();
    Ok((Indexed { paths, embeds }, report))
}

/// `[n, dim]`: row `p` is `old[r]` for each `(p, r)` in `pick_old`, `new[r]` for `pick_new`.
fn gather_rows(
    n: usize,
    dim: i64,
    old: Option<&Tensor>,
    pick_old: &[(i64, i64)],
    new: &Tensor,
    pick_new: &[(i64, i64)],
) -> Tensor {
    let mut out = Tensor::zeros([n as i64, dim], (Kind::Float, Device::Cpu));
    let mut put = |picks: &[(i64, i64)], src: &Tensor| {
        if picks.is_empty() {
            return;
        }
        let dst = Tensor::from_slice(&picks.iter().map(|p| p.0).collect::<Vec<_>>());
        let from = Tensor::from_slice(&picks.iter().map(|p| p.1).collect::<Vec<_>>());
        let _ = out.index_copy_(0, &dst, &src.index_select(0, &from));
    };
    if let Some(old) = old {
        put(pick_old, old);
    }
    put(pick_new, new);
    out
}

/// The query's embedding `[1, dim]` and any warning (a text cut at 77 tokens).
pub fn encode_text_query(clip: &Clip, text: &str) -> Result<(Tensor, Option<String>)> {
    let tokenizer = Tokenizer::new()?;
    let (tokens, dropped) = tokenizer.tokenize_batch(&[text])?;
    let warning = truncation_warning(text, dropped.first().copied().unwrap_or(0));
    let emb = tch::no_grad(|| clip.try_encode_text(&tokens))?;
    Ok((emb.to_device(Device::Cpu), warning))
}

/// An image query's embedding `[1, dim]`.
pub fn encode_image_query(clip: &Clip, path: &Path) -> Result<Tensor> {
    let pixels = load_pixels(path, clip.input_resolution())
        .with_context(|| format!("--image-query {}", path.display()))?;
    let emb = tch::no_grad(|| clip.try_encode_image(&pixels))?;
    Ok(emb.to_device(Device::Cpu))
}

/// The `top` best rows of `embeds` by cosine similarity to `query` (`[1, dim]` or `[dim]`):
/// `(row, score)` best first; equal scores keep row order.
pub fn rank(embeds: &Tensor, query: &Tensor, top: usize) -> Result<Vec<(usize, f32)>> {
    let (n, _) = embeds.size2().context("embeddings must be [n, d]")?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let q = query.reshape([1, -1]).to_kind(Kind::Float);
    let scores = super::cosine(&embeds.to_kind(Kind::Float), &q).view([-1]);
    let scores = Vec::<f32>::try_from(scores.contiguous()).context("reading the scores")?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // total_cmp puts NaN above everything; a NaN score would need a NaN embedding, which the
    // index refuses and CLIP does not make.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(top);
    Ok(order.into_iter().map(|i| (i, scores[i])).collect())
}
