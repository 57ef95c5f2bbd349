//! The building blocks shared by encoder and decoder.
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/taming/modules/diffusionmodules/model.py>
use tch::Tensor;
use tch::nn::{self, Module};

/// `Normalize(c)`: GroupNorm with 32 groups and eps 1e-6 (tch's default eps is 1e-5).
pub fn normalize(vs: nn::Path, channels: i64) -> Norm {
    let cfg = nn::GroupNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    Norm(nn::group_norm(vs, 32, channels, cfg))
}

/// GroupNorm that computes its statistics in f32 when the model runs in bf16/f16 (as autocast
/// does): low-precision means and variances are what makes a bf16 decoder drift from f32.
#[derive(Debug)]
pub struct Norm(nn::GroupNorm);

impl Module for Norm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        if xs.kind() == tch::Kind::Float {
            return xs.apply(&self.0);
        }
        let f = |t: &Option<Tensor>| t.as_ref().map(|t| t.to_kind(tch::Kind::Float));
        xs.to_kind(tch::Kind::Float)
            .group_norm(
                32,
                f(&self.0.ws).as_ref(),
                f(&self.0.bs).as_ref(),
                1e-6,
                false,
            )
            .to_kind(xs.kind())
    }
}

/// A conv whose weights will be overwritten from the checkpoint (zero init is the cheapest).
pub fn conv(vs: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        ws_init: nn::Init::Const(0.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    Conv {
        inner: nn::conv2d(vs, c_in, c_out, k, cfg),
        stride,
        padding,
        circular: false,
    }
}

/// `nn.Conv2d` whose padding can be switched from zeros to circular after loading: with every
/// padded conv of the decoder circular, the decoded image wraps around at its edges, which is
/// what seamless tiles need (`generate --tile`).
#[derive(Debug)]
pub struct Conv {
    inner: nn::Conv2D,
    stride: i64,
    padding: i64,
    circular: bool,
}

impl Conv {
    pub fn set_circular(&mut self, on: bool) {
        self.circular = on;
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        if !self.circular || self.padding == 0 {
            return xs.apply(&self.inner);
        }
        let p = self.padding;
        xs.pad([p, p, p, p], "circular", None).conv2d(
            &self.inner.ws,
            self.inner.bs.as_ref(),
            [self.stride],
            [0],
            [1],
            1,
        )
    }
}

/// `nonlinearity`: x * sigmoid(x), as one fused kernel (SiLU): its backward is one kernel too,
/// and it saves one tensor for the backward instead of two.
pub fn swish(xs: &Tensor) -> Tensor {
    xs.silu()
}

/// `ResnetBlock` with `temb_channels=0` (no `temb_proj`); dropout is a no-op at inference.
#[derive(Debug)]
pub struct ResnetBlock {
    norm1: Norm,
    conv1: Conv,
    norm2: Norm,
    conv2: Conv,
    nin_shortcut: Option<Conv>,
}

impl ResnetBlock {
    pub fn new(vs: nn::Path, c_in: i64, c_out: i64) -> Self {
        ResnetBlock {
            norm1: normalize(&vs / "norm1", c_in),
            conv1: conv(&vs / "conv1", c_in, c_out, 3, 1, 1),
            norm2: normalize(&vs / "norm2", c_out),
            conv2: conv(&vs / "conv2", c_out, c_out, 3, 1, 1),
            nin_shortcut: (c_in != c_out).then(|| conv(&vs / "nin_shortcut", c_in, c_out, 1, 1, 0)),
        }
    }
}

impl ResnetBlock {
    pub fn set_circular(&mut self, on: bool) {
        self.conv1.set_circular(on);
        self.conv2.set_circular(on);
    }
}

impl Module for ResnetBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let h = swish(&xs.apply(&self.norm1)).apply(&self.conv1);
        let h = swish(&h.apply(&self.norm2)).apply(&self.conv2);
        match &self.nin_shortcut {
            Some(s) => xs.apply(s) + h,
            None => xs + h,
        }
    }
}

/// `AttnBlock`: single-head self-attention over all positions, q/k/v/proj_out as 1x1 convs.
#[derive(Debug)]
pub struct AttnBlock {
    norm: Norm,
    q: Conv,
    k: Conv,
    v: Conv,
    proj_out: Conv,
}

impl AttnBlock {
    pub fn new(vs: nn::Path, c: i64) -> Self {
        AttnBlock {
            norm: normalize(&vs / "norm", c),
            q: conv(&vs / "q", c, c, 1, 1, 0),
            k: conv(&vs / "k", c, c, 1, 1, 0),
            v: conv(&vs / "v", c, c, 1, 1, 0),
            proj_out: conv(&vs / "proj_out", c, c, 1, 1, 0),
        }
    }
}

impl Module for AttnBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, c, h, w) = xs.size4().unwrap_or_default();
        let hs = xs.apply(&self.norm);
        // Same op order as the reference: w = softmax((q^T k) * c^-0.5), out = v w^T.
        let q = hs.apply(&self.q).reshape([b, c, h * w]).permute([0, 2, 1]);
        let k = hs.apply(&self.k).reshape([b, c, h * w]);
        let v = hs.apply(&self.v).reshape([b, c, h * w]);
        let attn = (q.bmm(&k) * (c as f64).powf(-0.5))
            .softmax(2, tch::Kind::Float)
            .to_kind(q.kind());
        let out = v.bmm(&attn.permute([0, 2, 1])).reshape([b, c, h, w]);
        xs + out.apply(&self.proj_out)
    }
}

/// `mid.block_1`, `mid.attn_1`, `mid.block_2` (shared by encoder and decoder).
#[derive(Debug)]
pub struct Mid {
    block_1: ResnetBlock,
    attn_1: AttnBlock,
    block_2: ResnetBlock,
}

impl Mid {
    pub fn new(vs: nn::Path, c: i64) -> Self {
        Mid {
            block_1: ResnetBlock::new(&vs / "block_1", c, c),
            attn_1: AttnBlock::new(&vs / "attn_1", c),
            block_2: ResnetBlock::new(&vs / "block_2", c, c),
        }
    }
}

impl Mid {
    /// The attention block's convs are 1x1 (no padding).
    pub fn set_circular(&mut self, on: bool) {
        self.block_1.set_circular(on);
        self.block_2.set_circular(on);
    }
}

impl Module for Mid {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.block_1)
            .apply(&self.attn_1)
            .apply(&self.block_2)
    }
}

/// `Upsample`: nearest x2, then a 3x3 conv.
#[derive(Debug)]
pub struct Upsample {
    conv: Conv,
}

impl Upsample {
    pub fn new(vs: nn::Path, c: i64) -> Self {
        Upsample {
            conv: conv(&vs / "conv", c, c, 3, 1, 1),
        }
    }
}

impl Upsample {
    pub fn set_circular(&mut self, on: bool) {
        self.conv.set_circular(on);
    }
}

impl Module for Upsample {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (_, _, h, w) = xs.size4().unwrap_or_default();
        xs.upsample_nearest2d([h * 2, w * 2], 2.0, 2.0)
            .apply(&self.conv)
    }
}

/// `Downsample`: zero-pad right and bottom by one, then a 3x3 stride-2 conv without padding.
#[derive(Debug)]
pub struct Downsample {
    conv: Conv,
}

impl Downsample {
    pub fn new(vs: nn::Path, c: i64) -> Self {
        Downsample {
            conv: conv(&vs / "conv", c, c, 3, 2, 0),
        }
    }
}

impl Module for Downsample {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.constant_pad_nd([0, 1, 0, 1]).apply(&self.conv)
    }
}
