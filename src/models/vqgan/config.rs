//! VQGAN architecture: taming's `model.params` (`ddconfig`, `embed_dim`, `n_embed`, target),
//! read from the `.yaml` beside a checkpoint or inferred from tensor names and shapes.
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/configs/imagenet_vqgan.yaml>
use crate::weights::TensorMap;
use anyhow::{Context, Result, bail};
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// Which quantizer sits between encoder and decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizerKind {
    /// `VQModel`: `VectorQuantizer2`, codebook `quantize.embedding.weight`.
    Vq,
    /// `GumbelVQ`: `GumbelQuantize`, codebook `quantize.embed.weight`, logits `quantize.proj`.
    Gumbel,
}

impl QuantizerKind {
    fn name(self) -> &'static str {
        match self {
            QuantizerKind::Vq => "VQModel",
            QuantizerKind::Gumbel => "GumbelVQ",
        }
    }
}

/// `model.params.ddconfig` plus `embed_dim`, `n_embed` and the model target.
#[derive(Debug, Clone, PartialEq)]
pub struct VqganConfig {
    pub ch: i64,
    pub ch_mult: Vec<i64>,
    pub num_res_blocks: i64,
    /// Feature-map sizes (at `resolution` input) that get attention blocks.
    pub attn_resolutions: Vec<i64>,
    pub z_channels: i64,
    /// Training resolution: only decides where attention sits.
    pub resolution: i64,
    pub in_channels: i64,
    pub out_ch: i64,
    pub double_z: bool,
    pub dropout: f64,
    pub embed_dim: i64,
    pub n_embed: i64,
    pub quantizer: QuantizerKind,
}

/// Resolution assumed when no yaml says otherwise (every released VQGAN was trained at 256).
pub const DEFAULT_RESOLUTION: i64 = 256;

impl VqganConfig {
    // https://github.com/CompVis/taming-transformers/blob/3ba01b2/configs/imagenet_vqgan.yaml
    // (n_embed 1024; the 16384 model differs only there)
    pub fn imagenet_f16_16384() -> Self {
        VqganConfig {
            ch: 128,
            ch_mult: vec![1, 1, 2, 2, 4],
            num_res_blocks: 2,
            attn_resolutions: vec![16],
            z_channels: 256,
            resolution: 256,
            in_channels: 3,
            out_ch: 3,
            double_z: false,
            dropout: 0.0,
            embed_dim: 256,
            n_embed: 16384,
            quantizer: QuantizerKind::Vq,
        }
    }

    pub fn imagenet_f16_1024() -> Self {
        VqganConfig {
            n_embed: 1024,
            ..Self::imagenet_f16_16384()
        }
    }

    // thegeniverse/taming configs/openimages-8192.yaml
    pub fn gumbel_f8_8192() -> Self {
        VqganConfig {
            ch_mult: vec![1, 1, 2, 4],
            attn_resolutions: vec![32],
            n_embed: 8192,
            quantizer: QuantizerKind::Gumbel,
            ..Self::imagenet_f16_16384()
        }
    }

    pub fn num_levels(&self) -> usize {
        self.ch_mult.len()
    }

    /// Pixels per latent cell along each side: `2^(levels-1)`.
    pub fn downsample_factor(&self) -> i64 {
        1 << (self.num_levels().saturating_sub(1))
    }

    /// Channels of each level, `ch * ch_mult[i]`.
    pub fn widths(&self) -> Vec<i64> {
        self.ch_mult.iter().map(|m| self.ch * m).collect()
    }

    /// Whether encoder level `i` has attention blocks (taming halves `curr_res` with `//`).
    pub fn encoder_attn_levels(&self) -> Vec<bool> {
        let mut res = self.resolution;
        (0..self.num_levels())
            .map(|_| {
                let has = self.attn_resolutions.contains(&res);
                res /= 2;
                has
            })
            .collect()
    }

    /// Whether decoder level `i` has attention blocks (taming starts at
    /// `resolution // 2^(levels-1)` and doubles).
    pub fn decoder_attn_levels(&self) -> Vec<bool> {
        let n = self.num_levels();
        let mut res = self.resolution >> (n.saturating_sub(1));
        let mut out = vec![false; n];
        for i in (0..n).rev() {
            out[i] = self.attn_resolutions.contains(&res);
            res *= 2;
        }
        out
    }

    /// Checks the values a model can be built from.
    pub fn validate(&self, what: &str) -> Result<()> {
        let positive = [
            ("ch", self.ch),
            ("num_res_blocks", self.num_res_blocks),
            ("z_channels", self.z_channels),
            ("resolution", self.resolution),
            ("in_channels", self.in_channels),
            ("out_ch", self.out_ch),
            ("embed_dim", self.embed_dim),
            ("n_embed", self.n_embed),
        ];
        for (name, v) in positive {
            if v <= 0 {
                bail!("{what}: {name} must be positive, got {v}");
            }
        }
        if self.ch_mult.is_empty() || self.ch_mult.iter().any(|&m| m <= 0) {
            bail!(
                "{what}: ch_mult must be a non-empty list of positive integers, got {:?}",
                self.ch_mult
            );
        }
        if self.ch_mult.len() > 10 {
            bail!(
                "{what}: ch_mult has {} levels (at most 10 supported)",
                self.ch_mult.len()
            );
        }
        // GroupNorm(32 groups) on every width.
        for w in self.widths() {
            if w % 32 != 0 {
                bail!(
                    "{what}: channel width {w} (ch * ch_mult) is not a multiple of 32 (GroupNorm groups)"
                );
            }
        }
        Ok(())
    }

    /// Parses a taming yaml (`VQModel`, `GumbelVQ`, or a `Net2NetTransformer` whose
    /// `first_stage_config` is the VQGAN).
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read VQGAN config {}", path.display()))?;
        Self::from_yaml_str(&text)
            .with_context(|| format!("invalid VQGAN config {}", path.display()))
    }

    pub fn from_yaml_str(text: &str) -> Result<Self> {
        let docs =
            YamlLoader::load_from_str(text).map_err(|e| anyhow::anyhow!("not valid YAML: {e}"))?;
        let doc = docs.first().context("the file is empty")?;
        let model = &doc["model"];
        if model.is_badvalue() {
            bail!("no `model:` section (is this a taming-transformers config?)");
        }
        let mut target = model["target"].as_str().unwrap_or("");
        let mut params = &model["params"];
        let mut at = "model.params";
        if target.ends_with("Net2NetTransformer") || !params["first_stage_config"].is_badvalue() {
            let first = &params["first_stage_config"];
            target = first["target"].as_str().unwrap_or("");
            params = &first["params"];
            at = "model.params.first_stage_config.params";
        }
        let quantizer = if target.contains("Gumbel") {
            QuantizerKind::Gumbel
        } else if target.is_empty() || target.ends_with("VQModel") {
            QuantizerKind::Vq
        } else {
            bail!("model target {target} is not a VQGAN (expected VQModel or GumbelVQ)");
        };
        let dd = &params["ddconfig"];
        if dd.is_badvalue() {
            bail!("no `{at}.ddconfig` section");
        }
        let dd_at = format!("{at}.ddconfig");
        let cfg = VqganConfig {
            ch: int(dd, "ch", &dd_at)?,
            ch_mult: int_list(dd, "ch_mult", &dd_at)?,
            num_res_blocks: int(dd, "num_res_blocks", &dd_at)?,
            attn_resolutions: int_list(dd, "attn_resolutions", &dd_at)?,
            z_channels: int(dd, "z_channels", &dd_at)?,
            resolution: int(dd, "resolution", &dd_at)?,
            in_channels: int(dd, "in_channels", &dd_at)?,
            out_ch: int(dd, "out_ch", &dd_at)?,
            double_z: match &dd["double_z"] {
                Yaml::BadValue | Yaml::Null => false,
                v => v
                    .as_bool()
                    .with_context(|| format!("{dd_at}.double_z must be true or false"))?,
            },
            dropout: match &dd["dropout"] {
                Yaml::BadValue | Yaml::Null => 0.0,
                Yaml::Integer(i) => *i as f64,
                v => v
                    .as_f64()
                    .with_context(|| format!("{dd_at}.dropout must be a number"))?,
            },
            embed_dim: int(params, "embed_dim", at)?,
            n_embed: int(params, "n_embed", at)?,
            quantizer,
        };
        cfg.validate("config")?;
        Ok(cfg)
    }

    /// Infers the architecture from the tensors of a (prefix-stripped) VQGAN state dict.
    /// `resolution` maps per-level attention back to `attn_resolutions`. Without encoder tensors
    /// `ch` is the gcd of the level widths, `in_channels` 3 and `double_z` false.
    pub fn infer(map: &TensorMap, resolution: i64) -> Result<Self> {
        let src = map.source.display().to_string();
        let shape = |key: &str| -> Result<Vec<i64>> {
            map.shape(key).with_context(|| {
                format!("{src} has no tensor {key} (is it a taming-transformers VQGAN?)")
            })
        };
        let levels = count_indices(map, "decoder.up.");
        if levels == 0 {
            bail!("{src} has no decoder.up.* tensors (is it a taming-transformers VQGAN?)");
        }
        let mut widths = Vec::with_capacity(levels);
        for i in 0..levels {
            widths.push(dim(
                &shape(&format!("decoder.up.{i}.block.0.conv1.weight"))?,
                0,
                &src,
            )?);
        }
        let blocks = count_indices(map, "decoder.up.0.block.");
        let attn: Vec<bool> = (0..levels)
            .map(|i| count_indices(map, &format!("decoder.up.{i}.attn.")) > 0)
            .collect();
        let z_channels = dim(&shape("decoder.conv_in.weight")?, 1, &src)?;
        let out_ch = dim(&shape("decoder.conv_out.weight")?, 0, &src)?;
        let pq = shape("post_quant_conv.weight")?;
        let embed_dim = dim(&pq, 1, &src)?;
        let (codebook_key, quantizer) = if map.contains("quantize.embedding.weight") {
            ("quantize.embedding.weight", QuantizerKind::Vq)
        } else if map.contains("quantize.embed.weight") {
            ("quantize.embed.weight", QuantizerKind::Gumbel)
        } else {
            bail!(
                "{src} has no codebook (quantize.embedding.weight or quantize.embed.weight): \
                 is it a taming-transformers VQGAN?"
            );
        };
        let cb = shape(codebook_key)?;
        let n_embed = dim(&cb, 0, &src)?;
        if dim(&cb, 1, &src)? != embed_dim {
            bail!(
                "{src}: codebook {codebook_key} is {cb:?} but post_quant_conv takes {embed_dim} channels"
            );
        }
        let (ch, in_channels, double_z) = if map.contains("encoder.conv_in.weight") {
            let ci = shape("encoder.conv_in.weight")?;
            let co = shape("encoder.conv_out.weight")?;
            (
                dim(&ci, 0, &src)?,
                dim(&ci, 1, &src)?,
                dim(&co, 0, &src)? == 2 * z_channels,
            )
        } else {
            (widths.iter().fold(0, |g, &w| gcd(g, w)), 3, false)
        };
        if ch <= 0 || widths.iter().any(|w| w % ch != 0) {
            bail!("{src}: level widths {widths:?} are not multiples of ch {ch}");
        }
        let mut cfg = VqganConfig {
            ch,
            ch_mult: widths.iter().map(|w| w / ch).collect(),
            num_res_blocks: blocks as i64 - 1,
            attn_resolutions: Vec::new(),
            z_channels,
            resolution,
            in_channels,
            out_ch,
            double_z,
            dropout: 0.0,
            embed_dim,
            n_embed,
            quantizer,
        };
        // Level i of the decoder runs at resolution / 2^i.
        cfg.attn_resolutions = (0..levels)
            .filter(|&i| attn[i])
            .map(|i| resolution >> i)
            .rev()
            .collect();
        cfg.validate(&src)?;
        Ok(cfg)
    }

    /// Checks that a yaml config (`self`) describes the same network as the one inferred from the
    /// weights, naming the first field that differs with both values. `ch` is compared only when
    /// the file has an encoder (otherwise only the level widths are known).
    pub fn check_matches(
        &self,
        inferred: &VqganConfig,
        has_encoder: bool,
        yaml: &str,
        weights: &str,
    ) -> Result<()> {
        let differ = |field: &str, a: String, b: String| -> Result<()> {
            bail!("{yaml} says {field} {a} but {weights} has {b}")
        };
        if self.quantizer != inferred.quantizer {
            return differ(
                "target",
                self.quantizer.name().into(),
                format!("a {} codebook", inferred.quantizer.name()),
            );
        }
        if self.ch_mult.len() != inferred.ch_mult.len() {
            return differ(
                "ch_mult",
                format!("{:?}", self.ch_mult),
                format!("{:?}", inferred.ch_mult),
            );
        }
        if has_encoder {
            if self.ch != inferred.ch {
                return differ("ch", self.ch.to_string(), inferred.ch.to_string());
            }
            if self.ch_mult != inferred.ch_mult {
                return differ(
                    "ch_mult",
                    format!("{:?}", self.ch_mult),
                    format!("{:?}", inferred.ch_mult),
                );
            }
        } else if self.widths() != inferred.widths() {
            return differ(
                "ch * ch_mult",
                format!("{:?}", self.widths()),
                format!("{:?}", inferred.widths()),
            );
        }
        let ints = [
            (
                "num_res_blocks",
                self.num_res_blocks,
                inferred.num_res_blocks,
            ),
            ("z_channels", self.z_channels, inferred.z_channels),
            ("embed_dim", self.embed_dim, inferred.embed_dim),
            ("n_embed", self.n_embed, inferred.n_embed),
            ("out_ch", self.out_ch, inferred.out_ch),
        ];
        for (field, a, b) in ints {
            if a != b {
                return differ(field, a.to_string(), b.to_string());
            }
        }
        if self.decoder_attn_levels() != inferred.decoder_attn_levels() {
            return differ(
                "attn_resolutions",
                format!(
                    "{:?} (at resolution {})",
                    self.attn_resolutions, self.resolution
                ),
                format!("{:?}", inferred.attn_resolutions),
            );
        }
        if has_encoder {
            if self.in_channels != inferred.in_channels {
                return differ(
                    "in_channels",
                    self.in_channels.to_string(),
                    inferred.in_channels.to_string(),
                );
            }
            if self.double_z != inferred.double_z {
                return differ(
                    "double_z",
                    self.double_z.to_string(),
                    inferred.double_z.to_string(),
                );
            }
        }
        Ok(())
    }
}

fn int(y: &Yaml, key: &str, at: &str) -> Result<i64> {
    match &y[key] {
        Yaml::Integer(i) => Ok(*i),
        Yaml::BadValue => bail!("{at}.{key} is missing"),
        other => bail!("{at}.{key} must be an integer, got {}", describe(other)),
    }
}

fn int_list(y: &Yaml, key: &str, at: &str) -> Result<Vec<i64>> {
    match &y[key] {
        Yaml::Array(items) => items
            .iter()
            .map(|v| {
                v.as_i64()
                    .with_context(|| format!("{at}.{key} must be a list of integers"))
            })
            .collect(),
        Yaml::BadValue => bail!("{at}.{key} is missing"),
        other => bail!(
            "{at}.{key} must be a list of integers, got {}",
            describe(other)
        ),
    }
}

fn describe(y: &Yaml) -> String {
    match y {
        Yaml::Real(s) | Yaml::String(s) => format!("'{s}'"),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Array(_) => "a list".into(),
        Yaml::Hash(_) => "a mapping".into(),
        _ => "nothing".into(),
    }
}

fn dim(shape: &[i64], i: usize, src: &str) -> Result<i64> {
    shape
        .get(i)
        .copied()
        .with_context(|| format!("{src}: unexpected tensor shape {shape:?}"))
}

/// Number of consecutive numbered children `prefix0.`, `prefix1.`, ... present in the map.
fn count_indices(map: &TensorMap, prefix: &str) -> usize {
    let mut max: Option<usize> = None;
    for name in map.names() {
        if let Some(rest) = name.strip_prefix(prefix)
            && let Some((idx, _)) = rest.split_once('.')
            && let Ok(i) = idx.parse::<usize>()
        {
            max = Some(max.map_or(i, |m| m.max(i)));
        }
    }
    max.map_or(0, |m| m + 1)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_levels_follow_resolution() {
        let c = VqganConfig::imagenet_f16_16384();
        assert_eq!(c.downsample_factor(), 16);
        assert_eq!(
            c.decoder_attn_levels(),
            vec![false, false, false, false, true]
        );
        assert_eq!(
            c.encoder_attn_levels(),
            vec![false, false, false, false, true]
        );
        let g = VqganConfig::gumbel_f8_8192();
        assert_eq!(g.downsample_factor(), 8);
        assert_eq!(g.decoder_attn_levels(), vec![false, false, false, true]);
    }

    #[test]
    fn parses_net2net_yaml() {
        let text = "model:\n  target: taming.models.cond_transformer.Net2NetTransformer\n  params:\n    \
                    first_stage_config:\n      target: taming.models.vqgan.VQModel\n      params:\n        \
                    embed_dim: 256\n        n_embed: 1024\n        ddconfig:\n          double_z: false\n          \
                    z_channels: 256\n          resolution: 256\n          in_channels: 3\n          out_ch: 3\n          \
                    ch: 128\n          ch_mult: [1,1,2,2,4]\n          num_res_blocks: 2\n          \
                    attn_resolutions: [16]\n          dropout: 0.0\n";
        let c = VqganConfig::from_yaml_str(text).unwrap();
        assert_eq!(c, VqganConfig::imagenet_f16_1024());
    }

    #[test]
    fn yaml_errors_name_the_key() {
        let text = "model:\n  target: taming.models.vqgan.VQModel\n  params:\n    embed_dim: 256\n    \
                    ddconfig:\n      ch: 128\n";
        let e = format!("{:#}", VqganConfig::from_yaml_str(text).unwrap_err());
        assert!(
            e.contains("model.params.ddconfig.ch_mult is missing"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            VqganConfig::from_yaml_str("<html>Link does not exist</html>").unwrap_err()
        );
        assert!(e.contains("model"), "{e}");
    }
}
