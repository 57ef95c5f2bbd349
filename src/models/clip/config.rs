//! CLIP sizes inferred from tensor shapes, as OpenAI's `build_model` does, so every CLIP (ViT
//! B/32, B/16, L/14, L/14@336px, ResNet RN50 ... RN50x64, or a tiny test model) loads without a
//! table of sizes.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py (`build_model`).
use crate::weights::TensorMap;
use anyhow::{Context, Result, bail};

/// Attention head width of every OpenAI CLIP transformer (`heads = width // 64`).
const HEAD_WIDTH: i64 = 64;
/// The first weight of a ResNet image tower (its presence tells `build_model` it is one).
pub const RESNET_ANCHOR: &str = "visual.layer1.0.conv1.weight";
/// A ModifiedResNet's total downsampling (stem 4, stages 2, 2, 2).
const RESNET_STRIDE: i64 = 32;

/// The hyperparameters of a CLIP (field names follow `build_model`'s variables). For a ResNet
/// tower `vision_resnet_layers` holds the blocks per stage, `vision_width` the stem's width,
/// `vision_heads` the attention pool's heads (`width * 32 // 64`) and `vision_patch_size` the
/// tower's total stride 32, so [`ClipConfig::grid`] is the attention pool's map side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipConfig {
    /// Joint embedding size (`text_projection.shape[1]`).
    pub embed_dim: i64,
    /// Image side in pixels (`patch * grid`).
    pub image_resolution: i64,
    pub vision_layers: i64,
    pub vision_width: i64,
    pub vision_heads: i64,
    pub vision_patch_size: i64,
    /// Blocks per stage of a ResNet image tower (None: a ViT).
    pub vision_resnet_layers: Option<[i64; 4]>,
    /// Tokens per text (77 for OpenAI's models).
    pub context_length: i64,
    pub vocab_size: i64,
    pub transformer_width: i64,
    pub transformer_heads: i64,
    pub transformer_layers: i64,
}

impl ClipConfig {
    /// Grid side of the vision patches.
    pub fn grid(&self) -> i64 {
        self.image_resolution / self.vision_patch_size
    }

    /// Reads the sizes from the shapes of a canonical (OpenAI-named) state dict.
    pub fn from_tensors(map: &TensorMap) -> Result<ClipConfig> {
        let shape = |name: &str| -> Result<Vec<i64>> {
            map.shape(name)
                .with_context(|| format!("{} has no tensor {name}", map.source.display()))
        };
        let dims = |name: &str, n: usize| -> Result<Vec<i64>> {
            let s = shape(name)?;
            if s.len() != n {
                bail!(
                    "{}: {name} has shape {s:?}, expected {n} dimensions",
                    map.source.display()
                );
            }
            Ok(s)
        };

        let resnet = map.get(RESNET_ANCHOR).is_some();
        let (vision_width, vision_patch_size, pos_name) = if resnet {
            (
                dims(RESNET_ANCHOR, 4)?[0],
                RESNET_STRIDE,
                "visual.attnpool.positional_embedding",
            )
        } else {
            let conv1 = dims("visual.conv1.weight", 4)?;
            if conv1[1] != 3 || conv1[2] != conv1[3] {
                bail!(
                    "{}: visual.conv1.weight has shape {conv1:?}, expected [W, 3, P, P]",
                    map.source.display()
                );
            }
            (conv1[0], conv1[3], "visual.positional_embedding")
        };
        let pos = dims(pos_name, 2)?;
        let grid = integer_sqrt(pos[0] - 1).with_context(|| {
            format!(
                "{}: {pos_name} has {} rows, expected grid*grid + 1",
                map.source.display(),
                pos[0]
            )
        })?;
        let resnet_layers =
            resnet.then(|| [1, 2, 3, 4].map(|i| count_blocks(map, &format!("visual.layer{i}."))));
        let text_projection = dims("text_projection", 2)?;
        let embed_dim = text_projection[1];
        let transformer_width = dims("ln_final.weight", 1)?[0];
        let context_length = dims("positional_embedding", 2)?[0];
        let vocab_size = dims("token_embedding.weight", 2)?[0];

        let config = ClipConfig {
            embed_dim,
            image_resolution: vision_patch_size * grid,
            vision_layers: match resnet_layers {
                Some(l) => l.iter().sum(),
                None => count_blocks(map, "visual.transformer.resblocks."),
            },
            vision_width,
            // ModifiedResNet's attention pool works at width * 32.
            vision_heads: match resnet_layers {
                Some(_) => vision_width * 32 / HEAD_WIDTH,
                None => vision_width / HEAD_WIDTH,
            },
            vision_patch_size,
            vision_resnet_layers: resnet_layers,
            context_length,
            vocab_size,
            transformer_width,
            transformer_heads: transformer_width / HEAD_WIDTH,
            transformer_layers: count_blocks(map, "transformer.resblocks."),
        };
        config
            .validate()
            .with_context(|| format!("{}: unsupported CLIP sizes", map.source.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let vision = match self.vision_resnet_layers {
            // The stem halves the width; the attention pool runs at width * 32.
            Some(layers) => {
                if self.vision_width < 2 || self.vision_width % 2 != 0 {
                    bail!("ResNet width {} must be even", self.vision_width);
                }
                if layers.contains(&0) {
                    bail!("a ResNet stage has no blocks ({layers:?})");
                }
                self.vision_width * 32
            }
            None => self.vision_width,
        };
        for (what, width) in [("vision", vision), ("text", self.transformer_width)] {
            // OpenAI's rule: heads = width // 64 (build_model and VisionTransformer), so any width of
            // at least 64 that those heads divide (96 -> 1 head of 96, 768 -> 12 of 64).
            if width < HEAD_WIDTH || width % (width / HEAD_WIDTH) != 0 {
                bail!(
                    "{what} width {width} cannot be split into width // {HEAD_WIDTH} attention heads"
                );
            }
        }
        if self.vision_layers == 0 || self.transformer_layers == 0 {
            bail!(
                "no residual blocks found ({} vision, {} text)",
                self.vision_layers,
                self.transformer_layers
            );
        }
        if self.embed_dim <= 0 || self.context_length <= 0 || self.vocab_size <= 0 {
            bail!("empty embedding, context or vocabulary");
        }
        Ok(())
    }
}

/// `len(set(k.split(".")[N] for k in sd if k.startswith(prefix)))`, as `build_model` counts layers.
fn count_blocks(map: &TensorMap, prefix: &str) -> i64 {
    let mut ids: Vec<&str> = map
        .names()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len() as i64
}

fn integer_sqrt(n: i64) -> Option<i64> {
    if n <= 0 {
        return None;
    }
    let r = (n as f64).sqrt().round() as i64;
    (r * r == n).then_some(r)
}
