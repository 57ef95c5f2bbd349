//! CLIP's ResNet image tower (RN50, RN101, RN50x4, RN50x16, RN50x64): torchvision's ResNet with
//! three changes, as OpenAI describes them: a three-convolution stem with an average pool instead
//! of a max pool; anti-aliased strided convolutions (an average pool before the stride); and an
//! attention pooling head (one query, the mean of the feature map, attends to every position).
//! BatchNorm runs with its stored statistics (the model is frozen), so [`ModifiedResNet::fold`]
//! folds each into the convolution before it; the tower then runs channels-last, as the
//! reference's does (its cutouts come out of a channels-last decoder). Gradients flow to the pixels.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/model.py (`Bottleneck`,
//! `AttentionPool2d`, `ModifiedResNet`).
use super::config::ClipConfig;
use crate::models::vqgan::to_channels_last;
use tch::{Kind, Tensor, nn, nn::Module};

/// `nn.BatchNorm2d` in eval mode (eps 1e-5); `num_batches_tracked` is not needed.
#[derive(Debug)]
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    fn new(vs: nn::Path, c: i64) -> BatchNorm {
        BatchNorm {
            weight: vs.var("weight", &[c], nn::Init::Const(1.0)),
            bias: vs.var("bias", &[c], nn::Init::Const(0.0)),
            running_mean: vs.var("running_mean", &[c], nn::Init::Const(0.0)),
            running_var: vs.var("running_var", &[c], nn::Init::Const(1.0)),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            false,
            0.1,
            1e-5,
            true,
        )
    }
}

/// A bias-free convolution and the BatchNorm after it, at their checkpoint paths (`conv1`/`bn1`,
/// `downsample.0`/`downsample.1`): after [`ConvBn::fold`], one convolution with a bias. Folding saves a pass over the
/// activations forward and back, and BatchNorm's saved input: on 2 cores RN50 at 8x224 took
/// 0.87 s forward + backward unfolded, 0.74 s folded (PyTorch, channels-last).
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: BatchNorm,
    /// The convolution's path in the var store, where the folded bias is added (`.bias`).
    path: Vec<String>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        conv_vs: nn::Path,
        bn_vs: nn::Path,
        c_in: i64,
        c_out: i64,
        k: i64,
        stride: i64,
        padding: i64,
    ) -> ConvBn {
        let cfg = nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        ConvBn {
            path: conv_vs.components().map(String::from).collect(),
            conv: nn::conv2d(conv_vs, c_in, c_out, k, cfg),
            bn: BatchNorm::new(bn_vs, c_out),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = self.conv.forward(xs);
        if self.conv.bs.is_some() {
            y
        } else {
            self.bn.forward(&y)
        }
    }

    /// `w * s` and `b - mean * s` with `s = gamma / sqrt(var + eps)`, computed in f64, in the
    /// weights' kind: the weight in place (channels-last), the bias a new frozen variable
    /// `<conv>.bias`, so the var store holds what runs and casts it with the rest. Once only.
    fn fold(&mut self, vs: &nn::VarStore) {
        if self.conv.bs.is_some() {
            return;
        }
        tch::no_grad(|| {
            let kind = self.conv.ws.kind();
            let f = |t: &Tensor| t.to_kind(Kind::Double);
            let bn = &self.bn;
            let scale = f(&bn.weight) / (f(&bn.running_var) + 1e-5).sqrt();
            let w = f(&self.conv.ws) * scale.view([-1, 1, 1, 1]);
            let b = f(&bn.bias) - f(&bn.running_mean) * &scale;
            self.conv.ws.set_data(&to_channels_last(&w.to_kind(kind)));
            let path = self.path.iter().fold(vs.root(), |p, c| &p / c.as_str());
            self.conv.bs = Some(path.add("bias", b.to_kind(kind), false));
        });
    }
}

/// `AvgPool2d(k)`: kernel and stride `k`, no padding.
fn avg_pool(xs: &Tensor, k: i64) -> Tensor {
    xs.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>)
}

/// The bottleneck block: 1x1, 3x3, (avgpool when strided), 1x1 to `planes * 4`, plus the shortcut
/// (avgpool, 1x1 conv, BatchNorm under `downsample.{-1,0,1}`) when the shape changes.
#[derive(Debug)]
struct Bottleneck {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    stride: i64,
    downsample: Option<ConvBn>,
}

const EXPANSION: i64 = 4;

impl Bottleneck {
    fn new(vs: nn::Path, inplanes: i64, planes: i64, stride: i64) -> Bottleneck {
        let out = planes * EXPANSION;
        let downsample = (stride > 1 || inplanes != out).then(|| {
            let ds = &vs / "downsample";
            ConvBn::new(&ds / "0", &ds / "1", inplanes, out, 1, 1, 0)
        });
        Bottleneck {
            c1: ConvBn::new(&vs / "conv1", &vs / "bn1", inplanes, planes, 1, 1, 0),
            c2: ConvBn::new(&vs / "conv2", &vs / "bn2", planes, planes, 3, 1, 1),
            c3: ConvBn::new(&vs / "conv3", &vs / "bn3", planes, out, 1, 1, 0),
            stride,
            downsample,
        }
    }

    fn conv_bns(&mut self) -> impl Iterator<Item = &mut ConvBn> {
        [&mut self.c1, &mut self.c2, &mut self.c3]
            .into_iter()
            .chain(self.downsample.as_mut())
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let out = self.c1.forward(xs).relu();
        let out = self.c2.forward(&out).relu();
        let out = if self.stride > 1 {
            avg_pool(&out, self.stride)
        } else {
            out
        };
        let out = self.c3.forward(&out);
        let identity = match &self.downsample {
            Some(c) => {
                let x = if self.stride > 1 {
                    avg_pool(xs, self.stride)
                } else {
                    xs.shallow_clone()
                };
                c.forward(&x)
            }
            None => xs.shallow_clone(),
        };
        (out + identity).relu()
    }
}

/// Attention pooling: the feature map `[b, C, h, w]` becomes `h*w` tokens plus their mean, each
/// with a learned position; the mean's token queries all of them (multi-head, separate q/k/v
/// projections), and `c_proj` maps the result to the embedding.
#[derive(Debug)]
struct AttentionPool2d {
    positional_embedding: Tensor,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    c_proj: nn::Linear,
    heads: i64,
    /// Side of the feature map the positions were learned for (`input_resolution / 32`).
    grid: i64,
}

fn linear(vs: nn::Path, i: i64, o: i64) -> nn::Linear {
    nn::linear(
        vs,
        i,
        o,
        nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}

impl AttentionPool2d {
    fn new(vs: nn::Path, grid: i64, width: i64, heads: i64, out: i64) -> AttentionPool2d {
        AttentionPool2d {
            positional_embedding: vs.var(
                "positional_embedding",
                &[grid * grid + 1, width],
                nn::Init::Const(0.0),
            ),
            q_proj: linear(&vs / "q_proj", width, width),
            k_proj: linear(&vs / "k_proj", width, width),
            v_proj: linear(&vs / "v_proj", width, width),
            c_proj: linear(&vs / "c_proj", width, out),
            heads,
            grid,
        }
    }

    /// The positions for an `h`x`w` map: as stored, or the spatial part resized bicubically when
    /// the input was not the model's resolution.
    fn positions(&self, h: i64, w: i64) -> Tensor {
        if (h, w) == (self.grid, self.grid) {
            return self.positional_embedding.shallow_clone();
        }
        let c = self.positional_embedding.size()[1];
        let first = self.positional_embedding.narrow(0, 0, 1);
        let spatial = self
            .positional_embedding
            .narrow(0, 1, self.grid * self.grid)
            .reshape([1, self.grid, self.grid, c])
            .permute([0, 3, 1, 2])
            .upsample_bicubic2d([h, w], false, None, None)
            .permute([0, 2, 3, 1])
            .reshape([h * w, c]);
        Tensor::cat(&[first, spatial], 0)
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, c, h, w) = xs.size4().unwrap_or_default();
        // [b, c, h, w] -> [b, h*w, c] (a view of a channels-last map), the mean first: [b, 1 + h*w, c]
        let tokens = xs.permute([0, 2, 3, 1]).reshape([b, h * w, c]);
        let tokens = Tensor::cat(&[tokens.mean_dim([1i64].as_slice(), true, None), tokens], 1);
        let tokens = tokens + self.positions(h, w).to_kind(xs.kind());
        let n = tokens.size()[1];
        let hd = c / self.heads;
        let heads = |t: Tensor, len: i64| t.view([b, len, self.heads, hd]).permute([0, 2, 1, 3]);
        let q = heads(self.q_proj.forward(&tokens.narrow(1, 0, 1)), 1);
        let k = heads(self.k_proj.forward(&tokens), n);
        let v = heads(self.v_proj.forward(&tokens), n);
        let out = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        // [b, heads, 1, hd] -> [b, c]
        self.c_proj
            .forward(&out.permute([0, 2, 1, 3]).reshape([b, c]))
    }
}

/// Module paths under `visual.` equal OpenAI's state-dict keys (`layer1.0.conv1.weight`,
/// `layer2.0.downsample.0.weight`, `attnpool.q_proj.bias`, ...).
#[derive(Debug)]
pub struct ModifiedResNet {
    stem: [ConvBn; 3],
    layers: Vec<Vec<Bottleneck>>,
    attnpool: AttentionPool2d,
}

impl ModifiedResNet {
    /// `layers`: blocks per stage; `c.vision_width`: the stem's output width.
    pub fn new(vs: nn::Path, c: &ClipConfig, layers: [i64; 4]) -> ModifiedResNet {
        let w = c.vision_width;
        let mut inplanes = w;
        let mut stages = Vec::new();
        for (i, &blocks) in layers.iter().enumerate() {
            let planes = w << i;
            let stride = if i == 0 { 1 } else { 2 };
            let path = &vs / format!("layer{}", i + 1);
            let mut stage = vec![Bottleneck::new(&path / "0", inplanes, planes, stride)];
            inplanes = planes * EXPANSION;
            for j in 1..blocks {
                stage.push(Bottleneck::new(&path / j.to_string(), inplanes, planes, 1));
            }
            stages.push(stage);
        }
        ModifiedResNet {
            stem: [
                ConvBn::new(&vs / "conv1", &vs / "bn1", 3, w / 2, 3, 2, 1),
                ConvBn::new(&vs / "conv2", &vs / "bn2", w / 2, w / 2, 3, 1, 1),
                ConvBn::new(&vs / "conv3", &vs / "bn3", w / 2, w, 3, 1, 1),
            ],
            layers: stages,
            attnpool: AttentionPool2d::new(
                &vs / "attnpool",
                c.grid(),
                w * 32,
                c.vision_heads,
                c.embed_dim,
            ),
        }
    }

    /// Folds every BatchNorm into its convolution and stores the convolutions channels-last;
    /// call once the weights in `vs` (this tower's store) are loaded: the statistics are frozen
    /// from then on.
    pub fn fold(&mut self, vs: &nn::VarStore) {
        for c in self.conv_bns() {
            c.fold(vs);
        }
    }

    fn conv_bns(&mut self) -> impl Iterator<Item = &mut ConvBn> {
        self.stem.iter_mut().chain(
            self.layers
                .iter_mut()
                .flatten()
                .flat_map(Bottleneck::conv_bns),
        )
    }

    /// The three-convolution stem and its average pool. The pixels go in channels-last.
    pub fn stem(&self, pixels: &Tensor) -> Tensor {
        let mut xs = to_channels_last(pixels);
        for c in &self.stem {
            xs = c.forward(&xs).relu();
        }
        avg_pool(&xs, 2)
    }

    /// The feature map after stage `n` (1..=4) of the residual layers.
    pub fn features(&self, pixels: &Tensor, n: usize) -> Tensor {
        let mut xs = self.stem(pixels);
        for stage in self.layers.iter().take(n) {
            for block in stage {
                xs = block.forward(&xs);
            }
        }
        xs
    }

    /// `pixels`: [b, 3, R, R], CLIP-normalized, in the model's dtype -> [b, embed_dim].
    pub fn forward(&self, pixels: &Tensor) -> Tensor {
        self.attnpool.forward(&self.features(pixels, 4))
    }
}
