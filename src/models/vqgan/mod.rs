//! taming-transformers VQGAN (`VQModel` and `GumbelVQ`): encoder, quant_conv, codebook,
//! post_quant_conv and decoder, with module paths equal to the checkpoint keys.
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/taming/models/vqgan.py>
pub mod blocks;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod quantize;

pub use config::{QuantizerKind, VqganConfig};

use crate::weights::{TensorMap, fill_var_store, load_tensors};
use anyhow::{Context, Result, bail};
use decoder::Decoder;
use encoder::Encoder;
use quantize::Quantizer;
use std::path::{Path, PathBuf};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Net2NetTransformer checkpoints (sflckr, coco) keep the VQGAN under this attribute.
const NET2NET_PREFIX: &str = "first_stage_model.";

/// The parts of a state dict the autoencoder uses (skips `loss.*`, transformer, cond stage).
fn is_vqgan_key(name: &str) -> bool {
    let name = name.strip_prefix(NET2NET_PREFIX).unwrap_or(name);
    [
        "encoder.",
        "decoder.",
        "quantize.",
        "quant_conv.",
        "post_quant_conv.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// A frozen VQGAN. The encoder (and gumbel `proj`) are optional so that decoder-only files load.
#[derive(Debug)]
pub struct Vqgan {
    vs: nn::VarStore,
    config: VqganConfig,
    source: PathBuf,
    encoder: Option<Encoder>,
    quant_conv: Option<blocks::Conv>,
    quantize: Quantizer,
    post_quant_conv: blocks::Conv,
    decoder: Decoder,
    channels_last: bool,
}

impl Vqgan {
    /// Loads a checkpoint (`.ckpt`, `.safetensors`, ...) with the taming `.yaml` of the same stem
    /// beside it when there is one; otherwise the architecture comes from the tensors alone.
    pub fn load(path: &Path, device: Device) -> Result<Vqgan> {
        let yaml = path.with_extension("yaml");
        let yaml = (yaml != path && yaml.is_file()).then_some(yaml);
        Self::load_with_yaml(path, yaml.as_deref(), device)
    }

    /// Like [`Vqgan::load`] with an explicit yaml (or none), which must agree with the tensors.
    pub fn load_with_yaml(path: &Path, yaml: Option<&Path>, device: Device) -> Result<Vqgan> {
        let mut map = load_tensors(path, &is_vqgan_key)
            .with_context(|| format!("cannot load VQGAN weights {}", path.display()))?;
        if map.names().any(|n| n.starts_with(NET2NET_PREFIX)) {
            map.strip_prefix(NET2NET_PREFIX);
        }
        if map.is_empty() {
            bail!(
                "{} holds no VQGAN tensors (encoder.*, decoder.*, quantize.*): \
                 is it a taming-transformers checkpoint?",
                path.display()
            );
        }
        let has_encoder = map.contains("encoder.conv_in.weight");
        let config = match yaml {
            Some(yaml) => {
                let from_yaml = VqganConfig::from_yaml_file(yaml)?;
                let inferred = VqganConfig::infer(&map, from_yaml.resolution)?;
                from_yaml.check_matches(
                    &inferred,
                    has_encoder,
                    &file_name(yaml),
                    &file_name(path),
                )?;
                from_yaml
            }
            None => VqganConfig::infer(&map, config::DEFAULT_RESOLUTION)?,
        };
        Self::from_tensors(&map, config, device)
    }

    /// Builds the model for `config` and copies `map` into it (every variable must be present).
    pub fn from_tensors(map: &TensorMap, config: VqganConfig, device: Device) -> Result<Vqgan> {
        config.validate("VQGAN config")?;
        let has_encoder = map.contains("encoder.conv_in.weight");
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = has_encoder.then(|| Encoder::new(&root / "encoder", &config));
        let quant_conv = has_encoder.then(|| {
            blocks::conv(
                &root / "quant_conv",
                config.z_channels,
                config.embed_dim,
                1,
                1,
                0,
            )
        });
        let with_proj = map.contains("quantize.proj.weight");
        let quantize = Quantizer::new(&root / "quantize", &config, with_proj);
        let post_quant_conv = blocks::conv(
            &root / "post_quant_conv",
            config.embed_dim,
            config.z_channels,
            1,
            1,
            0,
        );
        let decoder = Decoder::new(&root / "decoder", &config);
        fill_var_store(&vs, map, "VQGAN")?;
        vs.freeze();
        Ok(Vqgan {
            vs,
            config,
            source: map.source.clone(),
            encoder,
            quant_conv,
            quantize,
            post_quant_conv,
            decoder,
            channels_last: false,
        })
    }

    pub fn config(&self) -> &VqganConfig {
        &self.config
    }

    /// The weight file this model came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether images can be encoded (decoder-only files cannot).
    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Kind of the weights (computations run in it; outputs come back in the input's kind).
    pub fn kind(&self) -> Kind {
        self.quantize.codebook().kind()
    }

    /// Casts the weights (e.g. to `Kind::BFloat16`); they stay frozen.
    pub fn set_kind(&mut self, kind: Kind) {
        self.vs.set_kind(kind);
    }

    /// Stores every 4-d weight in channels-last (NHWC) layout; `decode` then runs its convolutions
    /// channels-last, which oneDNN (CPU) and cuDNN run faster (measured on the f16 decoder,
    /// forward+backward at 256x256 on 2 cores: f32 -5%, bf16 -18%).
    pub fn set_channels_last(&mut self) {
        weights_channels_last(&self.vs);
        self.channels_last = true;
    }

    /// Circular instead of zero padding in the decoder's convolutions, so decoded images tile
    /// seamlessly (the encoder keeps zero padding, as trained).
    pub fn set_circular_padding(&mut self, on: bool) {
        self.decoder.set_circular(on);
    }

    /// Pixels per latent cell along each side (16 for f16 models, 8 for gumbel f8).
    pub fn downsample_factor(&self) -> i64 {
        self.config.downsample_factor()
    }

    pub fn embed_dim(&self) -> i64 {
        self.config.embed_dim
    }

    pub fn n_embed(&self) -> i64 {
        self.config.n_embed
    }

    /// The codebook `[n_embed, embed_dim]` (frozen; shares storage with the model).
    pub fn codebook(&self) -> Tensor {
        self.quantize.codebook().shallow_clone()
    }

    /// Codebook rows for `indices` `[b*h*w]` as a latent `[b, embed_dim, h, w]`
    /// (taming's `get_codebook_entry`), e.g. to start from random codes.
    pub fn codebook_entry(&self, indices: &Tensor, shape: [i64; 3]) -> Result<Tensor> {
        let [b, h, w] = shape;
        if b <= 0 || h <= 0 || w <= 0 || indices.size() != [b * h * w] {
            bail!(
                "codebook_entry: expected {} indices for {b}x{h}x{w}, got shape {:?}",
                b * h * w,
                indices.size()
            );
        }
        let indices = indices.to_kind(Kind::Int64).to_device(self.device());
        let (lo, hi) = (
            indices.min().int64_value(&[]),
            indices.max().int64_value(&[]),
        );
        if lo < 0 || hi >= self.n_embed() {
            bail!(
                "codebook_entry: indices must lie in 0..{}, got {lo}..={hi}",
                self.n_embed()
            );
        }
        Ok(self.quantize.lookup(&indices, shape))
    }

    /// The frozen weights (for inspection: parameter counts, gradient checks).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Image in [-1, 1] `[b, 3, H, W]` (H, W multiples of the downsampling factor) to the latent
    /// `[b, embed_dim, H/f, W/f]` after `quant_conv`, before quantization.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let (Some(encoder), Some(quant_conv)) = (&self.encoder, &self.quant_conv) else {
            bail!(
                "{} has no encoder weights (a decoder-only file): it can decode latents but not \
                 encode images; use the full checkpoint",
                self.source.display()
            );
        };
        let (_, c, h, w) = x
            .size4()
            .with_context(|| format!("encode expects [b, 3, H, W], got {:?}", x.size()))?;
        let f = self.downsample_factor();
        if c != self.config.in_channels {
            bail!(
                "encode expects {} channels, got {c}",
                self.config.in_channels
            );
        }
        if h % f != 0 || w % f != 0 || h == 0 || w == 0 {
            bail!(
                "encode: image size {w}x{h} is not a positive multiple of the downsampling factor {f}"
            );
        }
        let z = x.to_kind(self.kind()).apply(encoder).apply(quant_conv);
        Ok(z.to_kind(x.kind()))
    }

    /// Nearest codebook entry per latent position (what VQGAN-CLIP's `vector_quantize` does, for
    /// both model kinds). `z` `[b, embed_dim, h, w]` to `(z_q [b, embed_dim, h, w], indices [b*h*w])`;
    /// no straight-through gradient here.
    pub fn quantize(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (z_q, indices) = self.quantize.nearest(z);
        (z_q.to_kind(z.kind()), indices)
    }

    /// The model's own quantizer on an [`Vqgan::encode`] output: the same as [`Vqgan::quantize`]
    /// for `VQModel`, argmax of the `proj` logits for `GumbelVQ`.
    pub fn quantize_encoded(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        let (z_q, indices) = self.quantize.encoded(z).with_context(|| {
            format!(
                "{} has no quantize.proj weights: it cannot quantize encoder outputs",
                self.source.display()
            )
        })?;
        Ok((z_q.to_kind(z.kind()), indices))
    }

    /// `post_quant_conv` then the decoder: `[b, embed_dim, h, w]` to an image `[b, 3, h*f, w*f]` in
    /// about [-1, 1]. Gradients flow to `z_q`, never to the weights.
    pub fn decode(&self, z_q: &Tensor) -> Tensor {
        let z = if self.channels_last {
            to_channels_last(z_q)
        } else {
            z_q.shallow_clone()
        };
        z.to_kind(self.kind())
            .apply(&self.post_quant_conv)
            .apply(&self.decoder)
            .to_kind(z_q.kind())
    }
}

/// Every 4-d weight of `vs` stored channels-last (see [`Vqgan::set_channels_last`]).
pub(crate) fn weights_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                var.set_data(&to_channels_last(&var));
            }
        }
    });
}

/// The same NCHW tensor with NHWC strides (tch 0.24 has no memory-format argument).
pub(crate) fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `--vqgan NAME|PATH` to a weight file, through the shared model registry.
pub fn resolve_vqgan(spec: &str) -> Result<PathBuf> {
    crate::weights::registry::resolve(spec, crate::weights::registry::ModelKind::Vqgan)
}
