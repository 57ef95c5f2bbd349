//! torchvision's ResNet with bottleneck blocks (resnet50/101/152), inference only: the block
//! counts and widths come from the tensors (`{prefix}conv1`, `bn1`, `layer{1..4}.{i}.conv{1..3}`,
//! `bn{1..3}`, `downsample.{0,1}`, `fc`), BatchNorm uses its running statistics.
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

type Tensors = BTreeMap<String, Tensor>;

/// A frozen BatchNorm2d.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.mean),
            Some(&self.var),
            false,
            0.1,
            1e-5,
            true,
        )
    }
}

struct Bottleneck {
    conv1: Tensor,
    bn1: Norm,
    conv2: Tensor,
    bn2: Norm,
    conv3: Tensor,
    bn3: Norm,
    stride: i64,
    downsample: Option<(Tensor, Norm)>,
}

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> Tensor {
        let conv = |x: &Tensor, w: &Tensor, stride: i64, pad: i64| {
            x.conv2d(w, None::<Tensor>, [stride, stride], [pad, pad], [1, 1], 1)
        };
        let out = self.bn1.forward(&conv(x, &self.conv1, 1, 0)).relu();
        let out = self
            .bn2
            .forward(&conv(&out, &self.conv2, self.stride, 1))
            .relu();
        let out = self.bn3.forward(&conv(&out, &self.conv3, 1, 0));
        let identity = match &self.downsample {
            Some((w, bn)) => bn.forward(&conv(x, w, self.stride, 0)),
            None => x.shallow_clone(),
        };
        (out + identity).relu()
    }
}

pub struct ResNet {
    conv1: Tensor,
    bn1: Norm,
    layers: Vec<Vec<Bottleneck>>,
    fc: (Tensor, Tensor),
}

/// Takes `name` out of `map` as f32 on `device`, or says which file lacks it.
fn take(map: &mut Tensors, name: &str, device: Device) -> Result<Tensor> {
    match map.remove(name) {
        Some(t) => Ok(t.to_kind(Kind::Float).to_device(device)),
        None => bail!("{name} is missing"),
    }
}

fn norm(map: &mut Tensors, prefix: &str, device: Device) -> Result<Norm> {
    Ok(Norm {
        weight: take(map, &format!("{prefix}.weight"), device)?,
        bias: take(map, &format!("{prefix}.bias"), device)?,
        mean: take(map, &format!("{prefix}.running_mean"), device)?,
        var: take(map, &format!("{prefix}.running_var"), device)?,
    })
}

impl ResNet {
    /// The network whose tensors are named `{prefix}conv1.weight` … in `map` (taken out of it).
    pub fn from_tensors(map: &mut Tensors, prefix: &str, device: Device) -> Result<ResNet> {
        let conv1 = take(map, &format!("{prefix}conv1.weight"), device)?;
        let bn1 = norm(map, &format!("{prefix}bn1"), device)?;
        let mut layers = Vec::new();
        for l in 1..=4 {
            let mut blocks = Vec::new();
            for i in 0.. {
                let p = format!("{prefix}layer{l}.{i}");
                if !map.contains_key(&format!("{p}.conv1.weight")) {
                    break;
                }
                let downsample = if map.contains_key(&format!("{p}.downsample.0.weight")) {
                    Some((
                        take(map, &format!("{p}.downsample.0.weight"), device)?,
                        norm(map, &format!("{p}.downsample.1"), device)?,
                    ))
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    conv1: take(map, &format!("{p}.conv1.weight"), device)?,
                    bn1: norm(map, &format!("{p}.bn1"), device)?,
                    conv2: take(map, &format!("{p}.conv2.weight"), device)?,
                    bn2: norm(map, &format!("{p}.bn2"), device)?,
                    conv3: take(map, &format!("{p}.conv3.weight"), device)?,
                    bn3: norm(map, &format!("{p}.bn3"), device)?,
                    // torchvision: the first block of layers 2-4 halves the size (in conv2)
                    stride: if l > 1 && i == 0 { 2 } else { 1 },
                    downsample,
                });
            }
            if blocks.is_empty() {
                bail!("{prefix}layer{l}.0.conv1.weight is missing (not a bottleneck ResNet)");
            }
            layers.push(blocks);
        }
        let fc = (
            take(map, &format!("{prefix}fc.weight"), device)?,
            take(map, &format!("{prefix}fc.bias"), device)?,
        );
        Ok(ResNet {
            conv1,
            bn1,
            layers,
            fc,
        })
    }

    /// The number of numbers in its tensors.
    pub fn numel(&self) -> i64 {
        let norm = |n: &Norm| (n.weight.numel() * 4) as i64;
        let blocks: i64 = self
            .layers
            .iter()
            .flatten()
            .map(|b| {
                (b.conv1.numel() + b.conv2.numel() + b.conv3.numel()) as i64
                    + norm(&b.bn1)
                    + norm(&b.bn2)
                    + norm(&b.bn3)
                    + b.downsample
                        .as_ref()
                        .map_or(0, |(w, n)| w.numel() as i64 + norm(n))
            })
            .sum();
        self.conv1.numel() as i64
            + norm(&self.bn1)
            + blocks
            + (self.fc.0.numel() + self.fc.1.numel()) as i64
    }

    /// The number of classes `fc` scores (ImageNet's 1000).
    pub fn fc_out(&self) -> i64 {
        self.fc.0.size()[0]
    }

    /// Blocks per layer (resnet152: 3, 8, 36, 3).
    pub fn blocks(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.len()).collect()
    }

    /// The logits `[n, classes]` of `x` `[n, 3, h, w]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = x.conv2d(&self.conv1, None::<Tensor>, [2, 2], [3, 3], [1, 1], 1);
        let mut h = self
            .bn1
            .forward(&h)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in self.layers.iter().flatten() {
            h = block.forward(&h);
        }
        let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        h.linear(&self.fc.0, Some(&self.fc.1))
    }
}
