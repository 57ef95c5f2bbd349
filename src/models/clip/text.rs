//! CLIP's text tower: token + positional embedding, causal transformer, `ln_final`, the
//! features at the end-of-text token (the highest id, so `argmax`), `@ text_projection`.
//! Its tensors sit at the root of OpenAI's state dict (`token_embedding.weight`, `transformer.*`).
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py (`CLIP.encode_text`).
use super::config::ClipConfig;
use super::transformer::{LayerNorm, Transformer};
use tch::{Kind, Tensor, nn, nn::Module};

#[derive(Debug)]
pub struct TextTransformer {
    token_embedding: nn::Embedding,
    positional_embedding: Tensor,
    transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Tensor,
}

impl TextTransformer {
    pub fn new(vs: nn::Path, c: &ClipConfig) -> TextTransformer {
        let w = c.transformer_width;
        TextTransformer {
            token_embedding: nn::embedding(
                &vs / "token_embedding",
                c.vocab_size,
                w,
                nn::EmbeddingConfig {
                    ws_init: nn::Init::Const(0.0),
                    ..Default::default()
                },
            ),
            positional_embedding: vs.var(
                "positional_embedding",
                &[c.context_length, w],
                nn::Init::Const(0.0),
            ),
            transformer: Transformer::new(
                &vs / "transformer",
                w,
                c.transformer_layers,
                c.transformer_heads,
            ),
            ln_final: LayerNorm::new(&vs / "ln_final", w),
            text_projection: vs.var("text_projection", &[w, c.embed_dim], nn::Init::Const(0.0)),
        }
    }

    /// `tokens`: [b, n] i64 with n <= context_length -> [b, embed_dim].
    pub fn forward(&self, tokens: &Tensor) -> Tensor {
        let n = tokens.size().last().copied().unwrap_or(0);
        let xs = self.token_embedding.forward(tokens) + self.positional_embedding.narrow(0, 0, n);
        let xs = self.transformer.forward(&xs, true);
        let xs = self.ln_final.forward(&xs);
        // features at the first maximum id (EOT) of each row: [b, n, w] -> [b, w]
        let eot = tokens.argmax(-1, false);
        let b = xs.size()[0];
        let rows = Tensor::arange(b, (Kind::Int64, xs.device()));
        let xs = xs.index(&[Some(rows), Some(eot)]);
        xs.matmul(&self.text_projection)
    }
}
