//! Image files -> CLIP image embeddings, in batches. A reader thread decodes and preprocesses the
//! next batch (on several threads) while this one runs CLIP on the current one, so decoding hides
//! behind the model on a GPU and the CPU cores stay busy on a CPU.
use crate::image_io::load_rgb;
use crate::models::clip::{Clip, preprocess_image};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use tch::{Device, Kind, Tensor};

/// What [`encode_files`] made of the paths it was given.
#[derive(Debug)]
pub struct Encoded {
    /// `[ok.len(), embed_dim]` f32 on the CPU (projected, not normalized), rows in `ok`'s order.
    pub embeds: Tensor,
    /// Indices (into the given paths) of the images that were encoded, ascending.
    pub ok: Vec<usize>,
    /// Indices of the images that could not be read, with the reason.
    pub failed: Vec<(usize, anyhow::Error)>,
}

/// One image file -> `[1, 3, res, res]` CLIP-normalized pixels on the CPU.
pub fn load_pixels(path: &Path, res: i64) -> Result<Tensor> {
    let img = load_rgb(path)?;
    if img.width() == 0 || img.height() == 0 {
        bail!("{} has no pixels", path.display());
    }
    Ok(preprocess_image(&img, res))
}

/// One decoded batch: (index, pixels or error) per image, in order.
type Batch = Vec<(usize, Result<Tensor>)>;

/// Encodes `paths` in batches of `batch` images; unreadable files are collected in
/// [`Encoded::failed`], not returned as errors. `progress(n)` is called with the number of images
/// finished so far (read or failed) after every batch. Errors are only what breaks the model.
pub fn encode_files(
    clip: &Clip,
    paths: &[PathBuf],
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Encoded> {
    let batch = batch.max(1);
    let res = clip.input_resolution();
    let dim = clip.config().embed_dim;
    let mut rows: Vec<Tensor> = Vec::new();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut done = 0usize;
    if !paths.is_empty() {
        progress(0);
    }
    std::thread::scope(|scope| -> Result<()> {
        // Capacity 1: at most one decoded batch waits while the model runs on another.
        let (tx, rx) = mpsc::sync_channel::<Batch>(1);
        scope.spawn(move || {
            for (b, chunk) in paths.chunks(batch).enumerate() {
                let decoded = decode_batch(chunk, b * batch, res);
                if tx.send(decoded).is_err() {
                    break; // the encoder stopped (an error); nothing more to do
                }
            }
        });
        for decoded in rx {
            let n = decoded.len();
            let mut pixels = Vec::with_capacity(n);
            for (i, px) in decoded {
                match px {
                    Ok(px) => {
                        pixels.push(px);
                        ok.push(i);
                    }
                    Err(e) => failed.push((i, e)),
                }
            }
            if !pixels.is_empty() {
                let embeds = tch::no_grad(|| clip.try_encode_image(&Tensor::cat(&pixels, 0)))
                    .context("CLIP image encoder failed")?;
                rows.push(embeds.to_device(Device::Cpu).to_kind(Kind::Float));
            }
            done += n;
            progress(done);
        }
        Ok(())
    })?;
    let embeds = if rows.is_empty() {
        Tensor::zeros([0, dim], (Kind::Float, Device::Cpu))
    } else {
        Tensor::cat(&rows, 0)
    };
    Ok(Encoded { embeds, ok, failed })
}

/// Decodes `chunk` on up to `available_parallelism` threads; `first` is the index of its first path.
fn decode_batch(chunk: &[PathBuf], first: usize, res: i64) -> Batch {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunk.len())
        .max(1);
    let per = chunk.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per.max(1))
            .enumerate()
            .map(|(t, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, p)| (first + t * per + j, load_pixels(p, res)))
                        .collect::<Batch>()
                })
            })
            .collect();
        let mut out = Batch::with_capacity(chunk.len());
        for (t, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(part) => out.extend(part),
                // A decoder panicked (a bug in an image codec): fail those files, not the run.
                Err(_) => {
                    let start = t * per;
                    let end = (start + per).min(chunk.len());
                    for (j, p) in chunk[start..end].iter().enumerate() {
                        out.push((
                            first + start + j,
                            Err(anyhow::anyhow!("decoding {} crashed", p.display())),
                        ));
                    }
                }
            }
        }
        out
    })
}
