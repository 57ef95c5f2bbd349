//! The residual attention blocks shared by CLIP's text and vision towers: pre-norm
//! `x + attn(ln_1(x))`, `x + mlp(ln_2(x))`, with a QuickGELU MLP.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py
//! (`LayerNorm`, `QuickGELU`, `ResidualAttentionBlock`, `Transformer`).
use tch::{Kind, Tensor, nn, nn::Module};

/// torch LayerNorm (eps 1e-5) computed in f32 whatever the activations' dtype, as OpenAI's
/// subclass does, so half/bf16 models keep full-precision statistics.
#[derive(Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    width: i64,
}

impl LayerNorm {
    pub fn new(vs: nn::Path, width: i64) -> LayerNorm {
        LayerNorm {
            weight: vs.var("weight", &[width], nn::Init::Const(1.0)),
            bias: vs.var("bias", &[width], nn::Init::Const(0.0)),
            width,
        }
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        xs.to_kind(Kind::Float)
            .layer_norm(
                [self.width],
                Some(&self.weight.to_kind(Kind::Float)),
                Some(&self.bias.to_kind(Kind::Float)),
                1e-5,
                true,
            )
            .to_kind(kind)
    }
}

/// `nn.MultiheadAttention(width, heads)` with batch-first inputs: one fused `in_proj`
/// (rows q, k, v) and `out_proj`.
#[derive(Debug)]
pub struct MultiheadAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    heads: i64,
}

impl MultiheadAttention {
    pub fn new(vs: nn::Path, width: i64, heads: i64) -> MultiheadAttention {
        MultiheadAttention {
            in_proj_weight: vs.var("in_proj_weight", &[3 * width, width], nn::Init::Const(0.0)),
            in_proj_bias: vs.var("in_proj_bias", &[3 * width], nn::Init::Const(0.0)),
            out_proj: nn::linear(&vs / "out_proj", width, width, frozen_linear()),
            heads,
        }
    }

    /// `causal` applies the text tower's mask (`-inf` above the diagonal).
    pub fn forward(&self, xs: &Tensor, causal: bool) -> Tensor {
        let (b, n, w) = xs.size3().unwrap_or_default();
        let hd = w / self.heads;
        // [b, n, 3w] -> [b, n, 3, heads, hd] -> [3, b, heads, n, hd]
        let qkv = xs
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .view([b, n, 3, self.heads, hd])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        // softmax(q k^T / sqrt(hd) + mask) v, per head
        let out = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        );
        // [b, heads, n, hd] -> [b, n, w]
        let out = out.transpose(1, 2).reshape([b, n, w]);
        self.out_proj.forward(&out)
    }
}

/// `c_fc -> QuickGELU -> c_proj`.
#[derive(Debug)]
pub struct Mlp {
    c_fc: nn::Linear,
    c_proj: nn::Linear,
}

impl Mlp {
    pub fn new(vs: nn::Path, width: i64) -> Mlp {
        Mlp {
            c_fc: nn::linear(&vs / "c_fc", width, 4 * width, frozen_linear()),
            c_proj: nn::linear(&vs / "c_proj", 4 * width, width, frozen_linear()),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let h = self.c_fc.forward(xs);
        // QuickGELU: x * sigmoid(1.702 x)
        let h = &h * (&h * 1.702).sigmoid();
        self.c_proj.forward(&h)
    }
}

#[derive(Debug)]
pub struct ResidualAttentionBlock {
    attn: MultiheadAttention,
    ln_1: LayerNorm,
    mlp: Mlp,
    ln_2: LayerNorm,
}

impl ResidualAttentionBlock {
    pub fn new(vs: nn::Path, width: i64, heads: i64) -> ResidualAttentionBlock {
        ResidualAttentionBlock {
            attn: MultiheadAttention::new(&vs / "attn", width, heads),
            ln_1: LayerNorm::new(&vs / "ln_1", width),
            mlp: Mlp::new(&vs / "mlp", width),
            ln_2: LayerNorm::new(&vs / "ln_2", width),
        }
    }

    pub fn forward(&self, xs: &Tensor, causal: bool) -> Tensor {
        let xs = xs + self.attn.forward(&self.ln_1.forward(xs), causal);
        &xs + self.mlp.forward(&self.ln_2.forward(&xs))
    }
}

/// `transformer.resblocks.N` (text) or `visual.transformer.resblocks.N` (vision).
#[derive(Debug)]
pub struct Transformer {
    resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    pub fn new(vs: nn::Path, width: i64, layers: i64, heads: i64) -> Transformer {
        let blocks = &vs / "resblocks";
        Transformer {
            resblocks: (0..layers)
                .map(|i| ResidualAttentionBlock::new(&blocks / i, width, heads))
                .collect(),
        }
    }

    /// `xs`: [b, n, width], batch first.
    pub fn forward(&self, xs: &Tensor, causal: bool) -> Tensor {
        self.resblocks
            .iter()
            .fold(xs.shallow_clone(), |xs, block| block.forward(&xs, causal))
    }
}

/// Weights are overwritten from the checkpoint right after construction: constant init costs a
/// memset where the default Kaiming init costs seconds of random numbers for a ViT-L.
pub fn frozen_linear() -> nn::LinearConfig {
    nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    }
}
