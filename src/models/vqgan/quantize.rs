//! The codebook: `VectorQuantizer2` (`quantize.embedding.weight`) or `GumbelQuantize`
//! (`quantize.embed.weight` plus the `quantize.proj` logits used when encoding).
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/taming/modules/vqvae/quantize.py>
use super::blocks::conv;
use super::config::{QuantizerKind, VqganConfig};
use tch::nn;
use tch::{Kind, Tensor};

#[derive(Debug)]
pub struct Quantizer {
    kind: QuantizerKind,
    /// `[n_embed, embed_dim]`.
    codebook: Tensor,
    /// Gumbel only, and only when the file has it (encoding).
    proj: Option<super::blocks::Conv>,
}

impl Quantizer {
    pub fn new(vs: nn::Path, c: &VqganConfig, with_proj: bool) -> Self {
        let zero = nn::Init::Const(0.0);
        match c.quantizer {
            QuantizerKind::Vq => Quantizer {
                kind: c.quantizer,
                codebook: (&vs / "embedding").var("weight", &[c.n_embed, c.embed_dim], zero),
                proj: None,
            },
            QuantizerKind::Gumbel => Quantizer {
                kind: c.quantizer,
                codebook: (&vs / "embed").var("weight", &[c.n_embed, c.embed_dim], zero),
                // GumbelQuantize(num_hiddens=z_channels, ...) reads the quant_conv output.
                proj: with_proj.then(|| conv(&vs / "proj", c.z_channels, c.n_embed, 1, 1, 0)),
            },
        }
    }

    pub fn kind(&self) -> QuantizerKind {
        self.kind
    }

    pub fn codebook(&self) -> &Tensor {
        &self.codebook
    }

    pub fn has_proj(&self) -> bool {
        self.proj.is_some()
    }

    /// Nearest codebook entry per position of `z` `[b, d, h, w]`: argmin of
    /// `|z|^2 + |e|^2 - 2 z.e`, summed in the reference's order so ties break the same way.
    /// Returns `(z_q [b, d, h, w], indices [b*h*w])`; no gradient reaches `z`.
    pub fn nearest(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (b, d, h, w) = z.size4().unwrap_or_default();
        let e = &self.codebook;
        let zf = z.to_kind(e.kind()).permute([0, 2, 3, 1]).reshape([-1, d]);
        let z2 = zf.square().sum_dim_intlist(1, true, None::<Kind>);
        let e2 = e.square().sum_dim_intlist(1, false, None::<Kind>);
        let dist = (z2 + e2) - zf.mm(&e.transpose(0, 1)) * 2.0;
        let indices = dist.argmin(1, false);
        (self.lookup(&indices, [b, h, w]), indices)
    }

    /// The model's own quantizer on an encoder output: nearest code for `VQModel`, argmax of the
    /// `proj` logits for `GumbelVQ` (the deterministic, noise-free form of its hard gumbel-softmax).
    /// `None` when a gumbel file has no `proj` (decoder-only).
    pub fn encoded(&self, z: &Tensor) -> Option<(Tensor, Tensor)> {
        match (self.kind, &self.proj) {
            (QuantizerKind::Vq, _) => Some(self.nearest(z)),
            (QuantizerKind::Gumbel, Some(proj)) => {
                let (b, _, h, w) = z.size4().unwrap_or_default();
                let logits = z.to_kind(self.codebook.kind()).apply(proj);
                let indices = logits.argmax(1, false).reshape([-1]);
                Some((self.lookup(&indices, [b, h, w]), indices))
            }
            (QuantizerKind::Gumbel, None) => None,
        }
    }

    /// Codebook rows for `indices` `[b*h*w]`, as `[b, d, h, w]`.
    pub fn lookup(&self, indices: &Tensor, [b, h, w]: [i64; 3]) -> Tensor {
        let d = self.codebook.size()[1];
        self.codebook
            .index_select(0, indices)
            .reshape([b, h, w, d])
            .permute([0, 3, 1, 2])
            .contiguous()
    }
}
