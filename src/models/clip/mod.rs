//! OpenAI CLIP (ViT and ResNet models): "Learning Transferable Visual Models From Natural
//! Language Supervision", Radford et al. 2021. Frozen weights; gradients flow to the input pixels.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py
//!
//! Module paths equal OpenAI's state-dict keys (`visual.transformer.resblocks.0.attn.in_proj_weight`,
//! `token_embedding.weight`, ...); other files are mapped to them by [`load`].
pub mod config;
pub mod load;
pub mod names;
pub mod preprocess;
pub mod resnet;
pub mod text;
pub mod transformer;
pub mod vision;

pub use config::ClipConfig;
pub use load::ClipFormat;
pub use names::{known_clip_models, resolve_clip};
pub use preprocess::preprocess_image;

use anyhow::{Context, Result, bail};
use resnet::ModifiedResNet;
use std::path::Path;
use tch::{Device, Kind, Tensor, nn};
use text::TextTransformer;
use vision::VisionTransformer;

/// The image tower.
#[derive(Debug)]
enum Visual {
    Vit(Box<VisionTransformer>),
    ResNet(Box<ModifiedResNet>),
}

/// CLIP's pixel mean and std (`clip/clip.py` `_transform`); the only copy in the crate.
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// `(x - mean) / std` per channel for `[3, H, W]` or `[N, 3, H, W]` in [0, 1], on any device/dtype.
pub fn normalize(pixels01: &Tensor) -> Tensor {
    // Built from scalar fills on the device itself: a host-to-device copy would stall a CUDA
    // stream once per call, i.e. every step.
    let opts = (pixels01.kind(), pixels01.device());
    let column = |v: [f64; 3]| Tensor::cat(&v.map(|c| Tensor::full([1, 1, 1], c, opts)), 0);
    (pixels01 - column(CLIP_MEAN)) / column(CLIP_STD)
}

/// A loaded, frozen CLIP model.
pub struct Clip {
    vs: nn::VarStore,
    config: ClipConfig,
    format: ClipFormat,
    visual: Visual,
    text: TextTransformer,
    logit_scale: f64,
    kind: Kind,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("config", &self.config)
            .field("format", &self.format)
            .finish()
    }
}

impl Clip {
    /// Loads any supported file (OpenAI TorchScript `.pt`, open_clip or Hugging Face state dicts);
    /// sizes come from the tensor shapes. Weights become f32 on `device`.
    pub fn load(path: &Path, device: Device) -> Result<Clip> {
        let (map, format) = load::read_clip_tensors(path)?;
        let config = ClipConfig::from_tensors(&map)?;
        let logit_scale = match map.get("logit_scale") {
            Some(t) if t.numel() == 1 => t.to_kind(Kind::Double).reshape([1]).double_value(&[0]),
            Some(t) => bail!(
                "{}: logit_scale has shape {:?}, expected a scalar",
                path.display(),
                t.size()
            ),
            None => bail!("{}: no logit_scale tensor", path.display()),
        };
        let mut vs = nn::VarStore::new(device);
        let mut visual = match config.vision_resnet_layers {
            Some(layers) => Visual::ResNet(Box::new(ModifiedResNet::new(
                vs.root() / "visual",
                &config,
                layers,
            ))),
            None => Visual::Vit(Box::new(VisionTransformer::new(
                vs.root() / "visual",
                &config,
            ))),
        };
        let text = TextTransformer::new(vs.root(), &config);
        crate::weights::fill_var_store(&vs, &map, "CLIP").context("cannot load CLIP weights")?;
        vs.freeze();
        if let Visual::ResNet(r) = &mut visual {
            r.fold(&vs);
        }
        Ok(Clip {
            vs,
            config,
            format,
            visual,
            text,
            logit_scale,
            kind: Kind::Float,
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The key-naming convention of the loaded file.
    pub fn format(&self) -> ClipFormat {
        self.format
    }

    /// The frozen parameters (OpenAI names), e.g. to check that no gradient reaches them.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The dtype of the weights and activations (LayerNorm always runs in f32).
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Casts the weights to `kind` (f16/bf16 for CUDA); LayerNorm parameters stay f32 as in OpenAI's
    /// mixed-precision models. Outputs of `encode_*` stay f32.
    pub fn to_kind(&mut self, kind: Kind) {
        tch::no_grad(|| {
            for (name, mut var) in self.vs.variables() {
                let is_norm = name.contains("ln_");
                if !is_norm && var.is_floating_point() {
                    var.set_data(&var.to_kind(kind));
                }
            }
        });
        self.kind = kind;
    }

    /// Side of the square input image in pixels (`patch * grid`).
    pub fn input_resolution(&self) -> i64 {
        self.config.image_resolution
    }

    /// The learned temperature, as stored (take `exp()` for the logit multiplier).
    pub fn logit_scale(&self) -> f64 {
        self.logit_scale
    }

    /// `[n, ctx]` i64 token ids -> `[n, embed_dim]` f32 features (projected, not normalized).
    pub fn encode_text(&self, tokens: &Tensor) -> Tensor {
        self.text
            .forward(&tokens.to_device(self.device()))
            .to_kind(Kind::Float)
    }

    /// `[n, 3, R, R]` CLIP-normalized pixels -> `[n, embed_dim]` f32 features (projected, not
    /// normalized). Differentiable with respect to `pixels`.
    pub fn encode_image(&self, pixels: &Tensor) -> Tensor {
        let pixels = pixels.to_device(self.device()).to_kind(self.kind);
        match &self.visual {
            Visual::Vit(v) => v.forward(&pixels),
            Visual::ResNet(r) => r.forward(&pixels),
        }
        .to_kind(Kind::Float)
    }

    /// The ResNet tower's intermediate maps (stem = stage 0, then stages 1..=4), for parity
    /// checks against the reference; None for a ViT.
    pub fn resnet_features(&self, pixels: &Tensor, stage: usize) -> Option<Tensor> {
        let pixels = pixels.to_device(self.device()).to_kind(self.kind);
        match &self.visual {
            Visual::ResNet(r) if stage == 0 => Some(r.stem(&pixels).to_kind(Kind::Float)),
            Visual::ResNet(r) => Some(r.features(&pixels, stage).to_kind(Kind::Float)),
            Visual::Vit(_) => None,
        }
    }

    /// [`Clip::encode_text`] after checking the shape, dtype and id range.
    pub fn try_encode_text(&self, tokens: &Tensor) -> Result<Tensor> {
        let size = tokens.size();
        if size.len() != 2 || size[1] > self.config.context_length || size[1] == 0 {
            bail!(
                "text tokens must be [n, <= {}], got {size:?}",
                self.config.context_length
            );
        }
        if tokens.kind() != Kind::Int64 {
            bail!("text tokens must be i64, got {:?}", tokens.kind());
        }
        if size[0] > 0 {
            let (lo, hi) = (tokens.min().int64_value(&[]), tokens.max().int64_value(&[]));
            if lo < 0 || hi >= self.config.vocab_size {
                bail!(
                    "token ids must lie in 0..{}, got {lo}..={hi}",
                    self.config.vocab_size
                );
            }
        }
        Ok(self.encode_text(tokens))
    }

    /// [`Clip::encode_image`] after checking the shape.
    pub fn try_encode_image(&self, pixels: &Tensor) -> Result<Tensor> {
        let r = self.input_resolution();
        let size = pixels.size();
        if size.len() != 4 || size[1..] != [3, r, r] {
            bail!("image pixels must be [n, 3, {r}, {r}], got {size:?}");
        }
        if !pixels.is_floating_point() {
            bail!(
                "image pixels must be floating point, got {:?}",
                pixels.kind()
            );
        }
        Ok(self.encode_image(pixels))
    }

    /// See [`normalize`].
    pub fn normalize(pixels01: &Tensor) -> Tensor {
        normalize(pixels01)
    }

    /// See [`preprocess_image`].
    pub fn preprocess_image(img: &image::RgbImage, res: i64) -> Tensor {
        preprocess_image(img, res)
    }
}
