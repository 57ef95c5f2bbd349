//! taming's `Encoder`: conv_in, `down.{i}.{block,attn,downsample}`, `mid`, norm_out, conv_out.
//! <https://github.com/CompVis/taming-transformers/blob/3ba01b2/taming/modules/diffusionmodules/model.py#L342>
use super::blocks::{AttnBlock, Conv, Downsample, Mid, Norm, ResnetBlock, conv, normalize, swish};
use super::config::VqganConfig;
use tch::Tensor;
use tch::nn::{self, Module};

/// One resolution level: `num_res_blocks` blocks, each followed by attention where the level has it.
#[derive(Debug)]
struct Down {
    block: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    downsample: Option<Downsample>,
}

#[derive(Debug)]
pub struct Encoder {
    conv_in: Conv,
    down: Vec<Down>,
    mid: Mid,
    norm_out: Norm,
    conv_out: Conv,
}

impl Encoder {
    pub fn new(vs: nn::Path, c: &VqganConfig) -> Self {
        let conv_in = conv(&vs / "conv_in", c.in_channels, c.ch, 3, 1, 1);
        let attn_levels = c.encoder_attn_levels();
        let n = c.num_levels();
        let mut block_in = c.ch;
        let mut down = Vec::with_capacity(n);
        for (i, &mult) in c.ch_mult.iter().enumerate() {
            let vs_down = &vs / "down" / i;
            let block_out = c.ch * mult;
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for j in 0..c.num_res_blocks {
                block.push(ResnetBlock::new(
                    &vs_down / "block" / j,
                    block_in,
                    block_out,
                ));
                block_in = block_out;
                if attn_levels[i] {
                    attn.push(AttnBlock::new(&vs_down / "attn" / j, block_in));
                }
            }
            let downsample =
                (i + 1 != n).then(|| Downsample::new(&vs_down / "downsample", block_in));
            down.push(Down {
                block,
                attn,
                downsample,
            });
        }
        let z_out = if c.double_z {
            2 * c.z_channels
        } else {
            c.z_channels
        };
        Encoder {
            conv_in,
            down,
            mid: Mid::new(&vs / "mid", block_in),
            norm_out: normalize(&vs / "norm_out", block_in),
            conv_out: conv(&vs / "conv_out", block_in, z_out, 3, 1, 1),
        }
    }
}

impl Module for Encoder {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.apply(&self.conv_in);
        for level in &self.down {
            for (j, block) in level.block.iter().enumerate() {
                h = h.apply(block);
                if let Some(attn) = level.attn.get(j) {
                    h = h.apply(attn);
                }
            }
            if let Some(ds) = &level.downsample {
                h = h.apply(ds);
            }
        }
        let h = h.apply(&self.mid);
        swish(&h.apply(&self.norm_out)).apply(&self.conv_out)
    }
}
