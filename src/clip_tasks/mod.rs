//! What CLIP does without VQGAN: zero-shot classification (`vqclip classify`) and text or image
//! search over a folder (`vqclip search`).
//!
//! **Classification** follows OpenAI's notebooks: each label's text embedding is L2-normalized
//! (with templates: every prompt's embedding is normalized, the prompts of one label are averaged
//! and the mean is normalized again, as `zeroshot_classifier` does), and the probabilities are
//! `softmax(logit_scale.exp() * cos(image, label))` over the labels. Labels are trimmed, blank ones
//! dropped and duplicates kept once, first occurrence first; no label at all is a usage error.
//!
//! **Search** ranks images by the cosine similarity of their embeddings to the query's and keeps
//! the image embeddings in `DIR/.vqclip-index/`, one file per CLIP model ([`index`]):
//!
//! - *Model id*: `<file stem>-<byte size>-<12 hex of sha256(size, first MiB, last MiB)>`. Head and
//!   tail cover the safetensors header, the last tensors and a zip's central directory (which
//!   holds every record's CRC), so a different model gets a different file, while copying or
//!   touching a weight file keeps its index. Reading 2 MiB costs milliseconds, not a full hash.
//! - *File*: `<model-id>.safetensors` holding one f32 tensor `embeddings` `[n, d]` (projected, not
//!   normalized) and, in the header's `__metadata__` under `vqclip.index`, a JSON manifest:
//!   format version, model id, `d`, the sha256 of the embedding bytes, and per row the path
//!   relative to DIR, the byte size and the mtime in nanoseconds. One file means one atomic write:
//!   it is written to `<model-id>.safetensors.tmp-<pid>`, synced and renamed over the old one.
//! - *Trust*: a row is reused only when path, size and mtime all match the file found now.
//!   An index whose header, version, model id, shapes, checksum or values do not check out is
//!   reported and rebuilt (never partly trusted). Files that are gone drop out; new or changed
//!   ones are encoded. Paths that are not UTF-8 are encoded on every run and never stored.
//! - *Stats*: [`search::IndexStats`] says how many images were encoded, reused and unreadable;
//!   `vqclip search` prints it to stderr as `indexed: N encoded, M reused, K unreadable`.
//!
//! Unreadable images (not an image, truncated, permission denied) are skipped and counted, in
//! search, or reported one by one and turned into exit status 1 at the end, in classify.
pub mod classify;
pub mod encode;
pub mod index;
pub mod scan;
pub mod search;
pub mod templates;

use tch::Tensor;

/// Rows scaled to unit L2 norm (`x / ||x||`, as OpenAI's `features /= features.norm(...)`).
pub fn normalize_rows(xs: &Tensor) -> Tensor {
    xs / xs.norm_scalaropt_dim(2, [-1], true)
}

/// `[n, d]` x `[m, d]` -> `[n, m]` cosine similarities.
pub fn cosine(a: &Tensor, b: &Tensor) -> Tensor {
    normalize_rows(a).matmul(&normalize_rows(b).tr())
}
