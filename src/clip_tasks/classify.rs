//! Zero-shot classification as in OpenAI's README and `Prompt_Engineering_for_ImageNet` notebook:
//! label embeddings (optionally a template ensemble), then
//! `softmax(logit_scale.exp() * cos(image, label))` over the labels.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py (`CLIP.forward`).
use super::{normalize_rows, templates};
use crate::models::clip::Clip;
use crate::tokenizer::{Tokenizer, truncation_warning};
use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

/// Texts per text-encoder batch (80 templates x many labels stays bounded in memory).
const TEXT_BATCH: usize = 256;

/// Labels from `--labels a|b|c` and a labels file (one per line), in that order: trimmed, blank
/// ones dropped, each kept once (first occurrence).
pub fn collect_labels(inline: Option<&str>, file_text: Option<&str>) -> Vec<String> {
    let from_inline = inline.into_iter().flat_map(|s| s.split('|'));
    let from_file = file_text.into_iter().flat_map(str::lines);
    let mut out: Vec<String> = Vec::new();
    for label in from_inline.chain(from_file).map(str::trim) {
        if !label.is_empty() && !out.iter().any(|l| l == label) {
            out.push(label.to_string());
        }
    }
    out
}

/// Label embeddings, L2-normalized, and the warnings for prompts cut at 77 tokens.
#[derive(Debug)]
pub struct LabelEmbeddings {
    /// `[labels, dim]` f32 on the CPU, rows of unit norm.
    pub embeds: Tensor,
    pub warnings: Vec<String>,
}

/// Without templates each label is one prompt; with templates each label's embedding is the
/// normalized mean of its normalized prompt embeddings (OpenAI's `zeroshot_classifier`).
pub fn label_embeddings(
    clip: &Clip,
    tokenizer: &Tokenizer,
    labels: &[String],
    template_list: &[String],
) -> Result<LabelEmbeddings> {
    let prompts: Vec<String> = if template_list.is_empty() {
        labels.to_vec()
    } else {
        labels
            .iter()
            .flat_map(|l| template_list.iter().map(|t| templates::fill(t, l)))
            .collect()
    };
    let mut warnings = Vec::new();
    let mut rows = Vec::new();
    for chunk in prompts.chunks(TEXT_BATCH) {
        let (tokens, dropped) = tokenizer.tokenize_batch(chunk)?;
        for (text, &n) in chunk.iter().zip(&dropped) {
            warnings.extend(truncation_warning(text, n));
        }
        let e = tch::no_grad(|| clip.try_encode_text(&tokens)).context("CLIP text encoder")?;
        rows.push(normalize_rows(
            &e.to_device(Device::Cpu).to_kind(Kind::Float),
        ));
    }
    let dim = clip.config().embed_dim;
    let per_prompt = if rows.is_empty() {
        Tensor::zeros([0, dim], (Kind::Float, Device::Cpu))
    } else {
        Tensor::cat(&rows, 0)
    };
    let embeds = if template_list.is_empty() {
        per_prompt
    } else {
        let t = template_list.len() as i64;
        // [labels * templates, d] -> [labels, templates, d] -> mean over templates
        let mean = per_prompt
            .view([labels.len() as i64, t, dim])
            .mean_dim(1, false, Kind::Float);
        normalize_rows(&mean)
    };
    Ok(LabelEmbeddings { embeds, warnings })
}

/// `[n, labels]` probabilities: `softmax(exp(logit_scale) * cos(image, label))` per image.
/// `logit_scale` is the stored (log) value, [`Clip::logit_scale`].
pub fn probabilities(image_emb: &Tensor, label_emb: &Tensor, logit_scale: f64) -> Tensor {
    let logits = super::cosine(
        &image_emb.to_kind(Kind::Float),
        &label_emb.to_kind(Kind::Float),
    ) * logit_scale.exp();
    logits.softmax(-1, Kind::Float)
}

/// `(label index, probability)` best first (ties keep label order), at most `top`.
pub fn ranked(probs: &[f32], top: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(top);
    order.into_iter().map(|i| (i, probs[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_deduplicated() {
        let got = collect_labels(Some(" cat|dog||cat | "), Some("person\r\n\n  dog\nbird\n"));
        assert_eq!(got, ["cat", "dog", "person", "bird"]);
        assert!(collect_labels(Some("| |"), None).is_empty());
        assert!(collect_labels(None, None).is_empty());
    }

    #[test]
    fn probabilities_are_a_scaled_softmax_of_cosines() {
        let img = Tensor::from_slice(&[1.0f32, 0.0, 3.0, 4.0]).view([2, 2]);
        let lab = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 5.0]).view([2, 2]);
        let p = probabilities(&img, &lab, 100f64.ln());
        let p = Vec::<f32>::try_from(p.view([-1])).unwrap();
        let s = (100.0f64 * (1.0 - 0.0)).exp();
        assert!((f64::from(p[0]) - s / (s + 1.0)).abs() < 1e-6, "{p:?}");
        // second image: cos 0.6 and 0.8 -> softmax(60, 80)
        let want = 1.0 / (1.0 + (20.0f64).exp());
        assert!((f64::from(p[2]) - want).abs() < 1e-6, "{p:?}");
        assert_eq!(
            ranked(&[0.2, 0.5, 0.2, 0.1], 3),
            [(1, 0.5), (0, 0.2), (2, 0.2)]
        );
    }
}
