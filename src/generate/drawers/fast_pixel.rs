//! Pixray's fast_pixel drawer: a grid of colour cells `[1, 3, rows, cols]`, rendered by nearest
//! upsampling to the image size (so every cell is one flat colour), started from an image by
//! bilinear downsampling (`F.interpolate(..., mode="bilinear", align_corners=False)`), and clamped
//! to [0, 1] after each step (pixray's `clip_z`). The render's clamp is the engine's
//! ClampWithGrad, exactly as pixray's `synth`.
use super::Drawer;
use crate::settings::DrawerKind;
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

pub struct FastPixel {
    cells: Tensor,
    /// Output `(height, width)`.
    hw: (i64, i64),
    /// Grid `(rows, cols)`.
    grid: (i64, i64),
}

impl FastPixel {
    /// `grid` is `(cols, rows)` as the settings give it; `start` an image `[1, 3, H, W]` in [0, 1]
    /// (None: uniform random cells).
    pub fn new(
        grid: (i64, i64),
        hw: (i64, i64),
        start: Option<Tensor>,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> FastPixel {
        let (cols, rows) = grid;
        let cells = match start {
            Some(img) => downsample(&img, (rows, cols)),
            None => {
                let v = super::uniform(rng, (3 * rows * cols) as usize);
                Tensor::from_slice(&v)
                    .view([1, 3, rows, cols])
                    .to_device(device)
            }
        };
        FastPixel {
            cells: super::leaf(cells),
            hw,
            grid: (rows, cols),
        }
    }
}

/// Pixray's `get_z_from_tensor`: bilinear, no antialiasing, half-pixel centres.
pub fn downsample(img: &Tensor, rows_cols: (i64, i64)) -> Tensor {
    tch::no_grad(|| {
        img.to_kind(tch::Kind::Float).upsample_bilinear2d(
            [rows_cols.0, rows_cols.1],
            false,
            None,
            None,
        )
    })
}

/// Pixray's `synth` before its clamp: nearest upsampling (`F.interpolate(mode="nearest")`).
pub fn upsample(cells: &Tensor, hw: (i64, i64)) -> Tensor {
    cells.upsample_nearest2d([hw.0, hw.1], None, None)
}

impl Drawer for FastPixel {
    fn kind(&self) -> DrawerKind {
        DrawerKind::FastPixel
    }

    fn params(&self) -> &Tensor {
        &self.cells
    }

    fn set_params(&mut self, params: Tensor) {
        self.cells = params;
    }

    fn render(&self) -> Tensor {
        upsample(&self.cells, self.hw)
    }

    fn image(&self) -> Tensor {
        tch::no_grad(|| upsample(&self.cells, self.hw).clamp(0.0, 1.0))
    }

    fn after_step(&mut self) {
        tch::no_grad(|| {
            let _ = self.cells.clamp_(0.0, 1.0);
        });
    }

    fn params_for(&self, img: &Tensor) -> Result<Tensor> {
        Ok(downsample(img, self.grid))
    }
}
