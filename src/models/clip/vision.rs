//! CLIP's image tower: patchify conv, class token, positional embedding, `ln_pre`, transformer,
//! `ln_post` on the class token, `@ proj`. Gradients flow through it to the pixels.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py (`VisionTransformer`).
use super::config::ClipConfig;
use super::transformer::{LayerNorm, Transformer};
use tch::{Tensor, nn, nn::Module};

/// Module paths under `visual.` equal OpenAI's state-dict keys.
#[derive(Debug)]
pub struct VisionTransformer {
    conv1: nn::Conv2D,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: LayerNorm,
    transformer: Transformer,
    ln_post: LayerNorm,
    proj: Tensor,
}

impl VisionTransformer {
    pub fn new(vs: nn::Path, c: &ClipConfig) -> VisionTransformer {
        let w = c.vision_width;
        let conv = nn::ConvConfig {
            stride: c.vision_patch_size,
            bias: false,
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let tokens = c.grid() * c.grid() + 1;
        VisionTransformer {
            conv1: nn::conv2d(&vs / "conv1", 3, w, c.vision_patch_size, conv),
            class_embedding: vs.var("class_embedding", &[w], nn::Init::Const(0.0)),
            positional_embedding: vs.var(
                "positional_embedding",
                &[tokens, w],
                nn::Init::Const(0.0),
            ),
            ln_pre: LayerNorm::new(&vs / "ln_pre", w),
            transformer: Transformer::new(&vs / "transformer", w, c.vision_layers, c.vision_heads),
            ln_post: LayerNorm::new(&vs / "ln_post", w),
            proj: vs.var("proj", &[w, c.embed_dim], nn::Init::Const(0.0)),
        }
    }

    /// The patch embedding `conv1` (kernel = stride = patch, no bias) as one matmul:
    /// [b, c, H, W] -> [b, gh*gw, width]. The same sums, but its backward is a matmul too:
    /// libtorch's backward of ViT-B/32's 32x32 stride-32 convolution took 165 ms for 8 cutouts on
    /// 2 cores, the matmul's 20 ms. Rows and columns past the last whole patch are dropped, as
    /// the convolution drops them.
    fn patches(&self, pixels: &Tensor) -> Tensor {
        let (b, c, h, w) = pixels.size4().unwrap_or_default();
        let weight = &self.conv1.ws;
        let (width, p) = (weight.size()[0], weight.size()[3]);
        let (gh, gw) = (h / p, w / p);
        pixels
            .narrow(2, 0, gh * p)
            .narrow(3, 0, gw * p)
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p])
            .matmul(&weight.reshape([width, c * p * p]).tr())
    }

    /// `pixels`: [b, 3, R, R], CLIP-normalized, in the model's dtype -> [b, embed_dim].
    pub fn forward(&self, pixels: &Tensor) -> Tensor {
        // [b, g*g, w]
        let xs = self.patches(pixels);
        let (b, w) = (xs.size()[0], xs.size()[2]);
        // class token first: [b, 1 + g*g, w]
        let cls = self
            .class_embedding
            .to_kind(xs.kind())
            .view([1, 1, w])
            .expand([b, 1, w], false);
        let xs = Tensor::cat(&[cls, xs], 1) + self.positional_embedding.to_kind(pixels.kind());
        let xs = self.ln_pre.forward(&xs);
        let xs = self.transformer.forward(&xs, false);
        // [b, 1 + g*g, w] -> class token [b, w]
        let xs = self.ln_post.forward(&xs.select(1, 0));
        xs.matmul(&self.proj)
    }
}
