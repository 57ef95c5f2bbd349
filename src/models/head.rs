//! A linear head on a CLIP model's normalized image embeddings: pixray's aesthetic predictor
//! (`ava_vit_b_16_linear.pth`, a `torch.save` of `{"weight": [1, d], "bias": [1]}`, read natively).
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub struct Head {
    /// `[1, d]`.
    weight: Tensor,
    /// `[1]`.
    bias: Tensor,
}

impl Head {
    pub fn load(path: &Path, device: Device) -> Result<Head> {
        let map = crate::weights::load_tensors(path, &|n| n == "weight" || n == "bias")
            .with_context(|| format!("cannot read the head {}", path.display()))?;
        let (Some(w), Some(b)) = (map.get("weight"), map.get("bias")) else {
            bail!(
                "{} is not a linear head: expected tensors weight [1, d] and bias [1]",
                path.display()
            );
        };
        let (ws, bs) = (w.size(), b.size());
        if ws.len() != 2 || ws[0] != 1 || bs != [1] {
            bail!(
                "{} is not a linear head to one rating: weight {ws:?}, bias {bs:?} (expected [1, d] and [1])",
                path.display()
            );
        }
        Ok(Head {
            weight: w.to_kind(Kind::Float).to_device(device),
            bias: b.to_kind(Kind::Float).to_device(device),
        })
    }

    /// The embedding size it reads.
    pub fn dim(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Ratings `[n, 1]` of normalized embeddings `[n, d]` (nn.Linear).
    pub fn rate(&self, embeds: &Tensor) -> Tensor {
        embeds.matmul(&self.weight.tr()) + &self.bias
    }
}
