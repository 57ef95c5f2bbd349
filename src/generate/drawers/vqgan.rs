//! The VQGAN drawer (the anchors' loop): latents `z` `[1, e, H/f, W/f]`, straight-through
//! quantized to the codebook, decoded, `x = (y + 1) / 2`. After each step `z` is clamped into the
//! codebook's per-channel range, as in Crowson's notebook.
use super::Drawer;
use crate::generate::grad::straight_through_quantize;
use crate::models::vqgan::Vqgan;
use crate::settings::{DrawerKind, Settings};
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

pub struct VqganDrawer {
    vqgan: Vqgan,
    /// f32 copy of the codebook `[n, e]` (the decoder's weights may run in bf16).
    codebook: Tensor,
    z: Tensor,
    z_min: Tensor,
    z_max: Tensor,
}

/// Both sides must be multiples of the VQGAN's downsampling factor.
pub fn check_size(vqgan: &Vqgan, settings: &Settings) -> Result<()> {
    let f = vqgan.downsample_factor();
    let (h, w) = (settings.size.height, settings.size.width);
    if h % f != 0 || w % f != 0 {
        return Err(crate::error::usage(format!(
            "--size {}: both sides must be multiples of the VQGAN's downsampling factor {f}",
            settings.size
        )));
    }
    Ok(())
}

impl VqganDrawer {
    /// Random codebook entries, or `start` (an image in [0, 1]) encoded and snapped to the codebook.
    pub fn new(
        mut vqgan: Vqgan,
        settings: &Settings,
        start: Option<Tensor>,
        rng: &mut ChaCha8Rng,
        compute_kind: Kind,
        device: Device,
    ) -> Result<VqganDrawer> {
        let codebook = vqgan
            .codebook()
            .to_device(device)
            .to_kind(Kind::Float)
            .detach()
            .copy();
        let z_min = codebook.amin([0], false).view([1, -1, 1, 1]);
        let z_max = codebook.amax([0], false).view([1, -1, 1, 1]);
        if settings.zoom_every > 0 && !vqgan.has_encoder() {
            return Err(crate::error::usage(format!(
                "--zoom-every needs a VQGAN with its encoder (to re-encode the moved image); {} has only the decoder",
                vqgan.source().display()
            )));
        }
        let f = vqgan.downsample_factor();
        let (ht, wt) = (settings.size.height / f, settings.size.width / f);
        let z = match start {
            None => {
                let n = codebook.size()[0];
                let idx = crate::generate::init::random_codes(ht, wt, n, rng).to_device(device);
                // [ht*wt, e] -> [1, e, ht, wt]
                codebook
                    .index_select(0, &idx)
                    .view([1, ht, wt, -1])
                    .permute([0, 3, 1, 2])
                    .contiguous()
            }
            Some(img) => encode_to_codes(&vqgan, &codebook, &img)?,
        };
        // The codebook copy above and z stay f32; the decoder's weights may run in bf16.
        if compute_kind != Kind::Float {
            vqgan.set_kind(compute_kind);
        }
        vqgan.set_channels_last();
        vqgan.set_circular_padding(settings.tile);
        Ok(VqganDrawer {
            vqgan,
            codebook,
            z: super::leaf(z),
            z_min,
            z_max,
        })
    }
}

/// Nearest codebook vectors (no gradient plumbing).
fn quantize_nearest(z: &Tensor, codebook: &Tensor) -> Tensor {
    straight_through_quantize(&z.detach(), codebook).0.detach()
}

/// An image in [0, 1] encoded and snapped to the nearest codes, f32.
fn encode_to_codes(vqgan: &Vqgan, codebook: &Tensor, img: &Tensor) -> Result<Tensor> {
    tch::no_grad(|| -> Result<Tensor> {
        let z = vqgan.encode(&(img * 2.0 - 1.0))?;
        Ok(quantize_nearest(&z.to_kind(Kind::Float), codebook)
            .to_kind(Kind::Float)
            .contiguous())
    })
}

impl Drawer for VqganDrawer {
    fn kind(&self) -> DrawerKind {
        DrawerKind::Vqgan
    }

    fn params(&self) -> &Tensor {
        &self.z
    }

    fn set_params(&mut self, params: Tensor) {
        self.z = params;
    }

    fn render(&self) -> Tensor {
        let (z_q, _) = straight_through_quantize(&self.z, &self.codebook);
        (self.vqgan.decode(&z_q) + 1.0) / 2.0
    }

    fn image(&self) -> Tensor {
        tch::no_grad(|| {
            let z_q = quantize_nearest(&self.z, &self.codebook);
            ((self.vqgan.decode(&z_q) + 1.0) / 2.0).clamp(0.0, 1.0)
        })
    }

    fn after_step(&mut self) {
        tch::no_grad(|| {
            let _ = self.z.clamp_tensor_(Some(&self.z_min), Some(&self.z_max));
        });
    }

    fn params_for(&self, img: &Tensor) -> Result<Tensor> {
        encode_to_codes(&self.vqgan, &self.codebook, img)
    }
}
