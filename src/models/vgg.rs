//! torchvision's VGG16 `features` (configuration "D") as pixray's style loss uses it: 13 3x3
//! convolutions with ReLU and four 2x2 max pools, returning the picture and the nine ReLU outputs
//! STROTSS reads (layers 1, 3, 6, 8, 11, 13, 15, 22, 29: relu1_1 … relu5_3).
//!
//! Read natively from torchvision's `vgg16-397923af.pth` (`features.{i}.{weight,bias}`, the
//! classifier skipped) or from a taming VQGAN checkpoint, whose LPIPS keeps the same ImageNet
//! tensors as `loss.perceptual_loss.net.slice{1..5}.{i}.{weight,bias}`.
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The layer indices of VGG16's convolutions in `features` (ReLU at i + 1, pools at 4, 9, 16, 23).
const CONVS: [i64; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
/// Max pools that come before a captured layer (the last, 30, is never reached).
const POOLS: [i64; 4] = [4, 9, 16, 23];
/// The ReLU outputs STROTSS reads.
pub const CAPTURE: [i64; 9] = [1, 3, 6, 8, 11, 13, 15, 22, 29];
/// The LPIPS slice holding each `features` index (slice1 = 0..4, slice2 = 4..9, …).
const LPIPS_SLICES: [(i64, i64); 5] = [(1, 4), (2, 9), (3, 16), (4, 23), (5, 30)];

pub struct Vgg16 {
    /// (weight `[out, in, 3, 3]`, bias `[out]`) of each convolution in [`CONVS`] order.
    convs: Vec<(Tensor, Tensor)>,
}

fn lpips_name(index: i64, part: &str) -> String {
    let slice = LPIPS_SLICES
        .iter()
        .find(|(_, end)| index < *end)
        .map_or(5, |(s, _)| *s);
    format!("loss.perceptual_loss.net.slice{slice}.{index}.{part}")
}

impl Vgg16 {
    pub fn load(path: &Path, device: Device) -> Result<Vgg16> {
        let keep = |n: &str| {
            n.starts_with("features.")
                || n.contains("perceptual_loss.net.slice") && !n.contains(".lin")
        };
        let map = crate::weights::load_tensors(path, &keep)
            .with_context(|| format!("cannot read VGG16 weights from {}", path.display()))?;
        let lpips = !map.contains("features.0.weight") && map.contains(&lpips_name(0, "weight"));
        let mut convs = Vec::with_capacity(CONVS.len());
        let mut channels = 3;
        for &i in &CONVS {
            let name = |part: &str| {
                if lpips {
                    lpips_name(i, part)
                } else {
                    format!("features.{i}.{part}")
                }
            };
            let (Some(w), Some(b)) = (map.get(&name("weight")), map.get(&name("bias"))) else {
                bail!(
                    "{} holds no VGG16 features: {} is missing (expected torchvision's vgg16 .pth, \
                     with features.{{0..28}}, or a VQGAN checkpoint with its LPIPS network)",
                    path.display(),
                    name("weight")
                );
            };
            let ws = w.size();
            if ws.len() != 4 || ws[1] != channels || ws[2..] != [3, 3] || b.size() != [ws[0]] {
                bail!(
                    "{}: {} has shape {ws:?} (bias {:?}): not VGG16's 3x3 convolution from {channels} channels",
                    path.display(),
                    name("weight"),
                    b.size()
                );
            }
            channels = ws[0];
            convs.push((
                w.to_kind(Kind::Float).to_device(device),
                b.to_kind(Kind::Float).to_device(device),
            ));
        }
        Ok(Vgg16 { convs })
    }

    /// The bytes of its weights.
    pub fn bytes(&self) -> i64 {
        self.convs
            .iter()
            .map(|(w, b)| (w.numel() + b.numel()) as i64 * 4)
            .sum()
    }

    /// The channel count of each of the ten tensors [`Vgg16::features`] returns (the picture's 3 first).
    pub fn widths(&self) -> Vec<i64> {
        let mut w = vec![3];
        let mut conv = 0;
        for i in 0..=CAPTURE[CAPTURE.len() - 1] {
            if CONVS.contains(&i) {
                conv += 1;
            }
            if CAPTURE.contains(&i) {
                w.push(self.convs[conv - 1].0.size()[0]);
            }
        }
        w
    }

    /// `[x, relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, relu4_3, relu5_3]` of
    /// `x` `[n, 3, h, w]` (pixray's forward_base: the input is already normalized).
    pub fn features(&self, x: &Tensor) -> Vec<Tensor> {
        let mut out = vec![x.shallow_clone()];
        let mut h = x.shallow_clone();
        let mut conv = self.convs.iter();
        for i in 0..=CAPTURE[CAPTURE.len() - 1] {
            if CONVS.contains(&i) {
                if let Some((w, b)) = conv.next() {
                    h = h.conv2d(w, Some(b), [1, 1], [1, 1], [1, 1], 1);
                }
            } else if POOLS.contains(&i) {
                h = h.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            } else {
                h = h.relu();
            }
            if CAPTURE.contains(&i) {
                out.push(h.shallow_clone());
            }
        }
        out
    }
}
