//! ResMem (Needell & Bainbridge's image memorability model, PyPI `resmem` 1.1.6), as pixray's
//! `--loss resmem` uses it: torchvision's resnet152 (`features.*`) beside an AlexNet-like branch
//! (`conv1`..`conv5`), concatenated into `fc6`..`fc12` and a sigmoid: a memorability score in (0, 1)
//! per 227x227 picture. Read natively from its `model.pt` (a zip torch.save of the state dict).
use super::resnet::ResNet;
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub struct ResMem {
    features: ResNet,
    /// conv1..conv5: (weight, bias).
    convs: Vec<(Tensor, Tensor)>,
    /// fc6..fc12: (weight, bias).
    fcs: Vec<(Tensor, Tensor)>,
}

/// `nn.LocalResponseNorm(5)` (alpha 1e-4, beta 0.75, k 1), as `F.local_response_norm` computes it.
fn local_response_norm(x: &Tensor) -> Tensor {
    let s = x.size();
    let div = (x * x).view([s[0], 1, s[1], s[2], -1]);
    let div = div.constant_pad_nd([0, 0, 0, 0, 2, 2]);
    let div = div
        .avg_pool3d([5, 1, 1], [1, 1, 1], [0, 0, 0], false, true, None)
        .squeeze_dim(1)
        .view(s.as_slice());
    x / (div * 1e-4 + 1.0).pow_tensor_scalar(0.75)
}

impl ResMem {
    pub fn load(path: &Path, device: Device) -> Result<ResMem> {
        let map = crate::weights::load_tensors(path, &|_| true)
            .with_context(|| format!("cannot read ResMem weights from {}", path.display()))?;
        let mut tensors = map.tensors;
        let what = || format!("{} is not a ResMem model", path.display());
        let features =
            ResNet::from_tensors(&mut tensors, "features.", device).with_context(what)?;
        let mut take = |name: String| -> Result<Tensor> {
            match tensors.remove(&name) {
                Some(t) => Ok(t.to_kind(Kind::Float).to_device(device)),
                None => bail!("{}: {name} is missing", what()),
            }
        };
        let mut pair = |name: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                take(format!("{name}.weight"))?,
                take(format!("{name}.bias"))?,
            ))
        };
        let convs = (1..=5)
            .map(|i| pair(&format!("conv{i}")))
            .collect::<Result<Vec<_>>>()?;
        let fcs = (6..=12)
            .map(|i| pair(&format!("fc{i}")))
            .collect::<Result<Vec<_>>>()?;
        let classes = features.fc_out();
        let fc6_in = fcs[0].0.size()[1];
        if fc6_in != 9216 + classes {
            bail!(
                "{}: fc6 reads {fc6_in} numbers, expected 9216 + {classes} (the AlexNet branch and the ResNet's)",
                path.display()
            );
        }
        Ok(ResMem {
            features,
            convs,
            fcs,
        })
    }

    /// The bytes of its weights.
    pub fn bytes(&self) -> i64 {
        let pairs: i64 = self
            .convs
            .iter()
            .chain(&self.fcs)
            .map(|(w, b)| (w.numel() + b.numel()) as i64)
            .sum();
        (pairs + self.features.numel()) * 4
    }

    /// The ResNet's blocks per layer (resnet152: 3, 8, 36, 3).
    pub fn blocks(&self) -> Vec<usize> {
        self.features.blocks()
    }

    /// Memorability `[n, 1]` of `x` `[n, 3, 227, 227]` in [0, 1] (ResMem.forward, no normalization).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let conv = |x: &Tensor, i: usize, stride: i64, pad: i64, groups: i64| {
            let (w, b) = &self.convs[i];
            x.conv2d(w, Some(b), [stride, stride], [pad, pad], [1, 1], groups)
        };
        let pool = |x: &Tensor| x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        let c = pool(&conv(x, 0, 4, 0, 1).relu());
        let c = local_response_norm(&c);
        let c = pool(&conv(&c, 1, 1, 2, 2).relu());
        let c = local_response_norm(&c);
        let c = conv(&c, 2, 1, 1, 2).relu();
        let c = conv(&c, 3, 1, 1, 2).relu();
        let c = pool(&conv(&c, 4, 1, 1, 2).relu());
        let feat = c.reshape([-1, 9216]);
        let resfeat = self.features.forward(x);
        let mut h = Tensor::cat(&[feat, resfeat], 1);
        for (i, (w, b)) in self.fcs.iter().enumerate() {
            h = h.linear(w, Some(b));
            // ReLU after fc6..fc11 (dropout is off in eval), the sigmoid after fc12
            h = if i + 1 < self.fcs.len() {
                h.relu()
            } else {
                h.sigmoid()
            };
        }
        h
    }

    /// pixray's ResmemLoss on cutouts `[n, 3, s, s]` in [0, 1]: its `recenter` (Resize((256, 256)),
    /// bilinear and antialiased, then CenterCrop(227)), the model, and
    /// `0.05 x map(mean, 0.4..1 -> 0..1)`.
    pub fn loss(&self, cutouts: &Tensor) -> Tensor {
        let r = cutouts.internal_upsample_bilinear2d_aa([256, 256], false, None, None);
        // torchvision's crop offset: int(round((256 - 227) / 2)) = 14 (round half to even)
        let r = r.narrow(2, 14, 227).narrow(3, 14, 227);
        let mean = self.forward(&r).mean(Kind::Float);
        (mean - 0.4) / 0.6 * 0.05
    }
}
