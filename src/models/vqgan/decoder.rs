//! taming's `Decoder`: conv_in, `mid`, `up.{i}.{block,attn,upsample}` (run from the deepest level
//! up; `up.0` is full resolution), norm_out, conv_out.
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/taming/modules/diffusionmodules/model.py#L436>
use super::blocks::{AttnBlock, Conv, Mid, Norm, ResnetBlock, Upsample, conv, normalize, swish};
use super::config::VqganConfig;
use tch::Tensor;
use tch::nn::{self, Module};

/// One resolution level: `num_res_blocks + 1` blocks, each followed by attention where the level has it.
#[derive(Debug)]
struct Up {
    block: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    upsample: Option<Upsample>,
}

#[derive(Debug)]
pub struct Decoder {
    conv_in: Conv,
    mid: Mid,
    /// Indexed like the checkpoint: `up[0]` is the full-resolution level.
    up: Vec<Up>,
    norm_out: Norm,
    conv_out: Conv,
}

impl Decoder {
    pub fn new(vs: nn::Path, c: &VqganConfig) -> Self {
        let n = c.num_levels();
        let attn_levels = c.decoder_attn_levels();
        let mut block_in = c.ch * c.ch_mult[n - 1];
        let conv_in = conv(&vs / "conv_in", c.z_channels, block_in, 3, 1, 1);
        let mid = Mid::new(&vs / "mid", block_in);
        let mut up: Vec<Up> = Vec::with_capacity(n);
        for i in (0..n).rev() {
            let vs_up = &vs / "up" / i;
            let block_out = c.ch * c.ch_mult[i];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for j in 0..=c.num_res_blocks {
                block.push(ResnetBlock::new(&vs_up / "block" / j, block_in, block_out));
                block_in = block_out;
                if attn_levels[i] {
                    attn.push(AttnBlock::new(&vs_up / "attn" / j, block_in));
                }
            }
            let upsample = (i != 0).then(|| Upsample::new(&vs_up / "upsample", block_in));
            up.push(Up {
                block,
                attn,
                upsample,
            });
        }
        up.reverse();
        Decoder {
            conv_in,
            mid,
            up,
            norm_out: normalize(&vs / "norm_out", block_in),
            conv_out: conv(&vs / "conv_out", block_in, c.out_ch, 3, 1, 1),
        }
    }
}

impl Decoder {
    /// Circular instead of zero padding in every padded conv (see [`Conv`]).
    pub fn set_circular(&mut self, on: bool) {
        self.conv_in.set_circular(on);
        self.mid.set_circular(on);
        for level in &mut self.up {
            for block in &mut level.block {
                block.set_circular(on);
            }
            if let Some(us) = &mut level.upsample {
                us.set_circular(on);
            }
        }
        self.conv_out.set_circular(on);
    }
}

impl Module for Decoder {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.apply(&self.conv_in).apply(&self.mid);
        for level in self.up.iter().rev() {
            for (j, block) in level.block.iter().enumerate() {
                h = h.apply(block);
                if let Some(attn) = level.attn.get(j) {
                    h = h.apply(attn);
                }
            }
            if let Some(us) = &level.upsample {
                h = h.apply(us);
            }
        }
        swish(&h.apply(&self.norm_out)).apply(&self.conv_out)
    }
}
