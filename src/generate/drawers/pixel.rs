//! Pixray's PixelDrawer without diffvg: a grid of polygon cells (rect, rectshift, hex, tri,
//! diamond, knit; [`super::vector::grid`]) whose fill colours are optimized (Adam at 0.03 by
//! default; clamped to [0, 1] after each step, pixray's `clip_z`). The cells never move, so their
//! painter's-order coverage is computed once ([`super::vector::coverage`]) and a render is a
//! gather of the colours and a sum per pixel: exact box-filtered edges, the same on
//! every step (diffvg draws 2x2 random samples per pixel, a new pattern each step). Where no cell
//! covers (the ends of shifted rows) the picture is black, as diffvg's transparent background is.
use super::Drawer;
use super::vector::raster::Layout;
use super::vector::{coverage, grid, svg::Svg};
use crate::settings::{DrawerKind, PixelType};
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

pub struct Pixel {
    /// `[cells, 3]`, the colours.
    colours: Tensor,
    cells: Vec<grid::Cell>,
    grid: (i64, i64),
    hw: (i64, i64),
    layout: Layout,
    shape: Tensor,
    weight: Tensor,
}

impl Pixel {
    /// `grid` is `(cols, rows)` as the settings give it (already checked for the cell type);
    /// `start` an image `[1, 3, H, W]` in [0, 1] (None: uniform random colours).
    pub fn new(
        ty: PixelType,
        grid: (i64, i64),
        hw: (i64, i64),
        start: Option<Tensor>,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> Result<Pixel> {
        let cells = grid::cells(ty, grid, (hw.1, hw.0));
        let colours = match start {
            Some(img) => colours_of(&cells, grid, &img)?,
            None => Tensor::from_slice(&super::uniform(rng, 3 * cells.len())).view([-1, 3]),
        };
        let polys: Vec<Vec<grid::Pt>> = cells.iter().map(|c| c.poly.clone()).collect();
        let w = coverage::painter_weights(&polys, &[], (hw.1, hw.0));
        let shape = Tensor::from_slice(&w.shape).to_device(device);
        Ok(Pixel {
            colours: super::leaf(colours.to_device(device)),
            cells,
            grid,
            hw,
            layout: Layout::new(w.pixel, w.shape, device),
            shape,
            weight: Tensor::from_slice(&w.weight).unsqueeze(1).to_device(device),
        })
    }

    fn draw(&self, colours: &Tensor) -> Tensor {
        let contrib = colours.index_select(0, &self.shape) * &self.weight;
        self.layout.sum(&contrib, self.hw)
    }
}

/// Pixray's `encode_image` cell colours of an image `[1, 3, H, W]` in [0, 1], as `[cells, 3]`.
fn colours_of(cells: &[grid::Cell], grid: (i64, i64), img: &Tensor) -> Result<Tensor> {
    let img = img
        .to_kind(Kind::Float)
        .to_device(Device::Cpu)
        .squeeze_dim(0);
    let rows: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|c| -> Result<Vec<Vec<f32>>> {
            let ch = img.get(c);
            let h = ch.size()[0];
            (0..h)
                .map(|y| Ok(Vec::<f32>::try_from(ch.get(y))?))
                .collect()
        })
        .collect::<Result<_>>()?;
    let cols = grid::init_colours(cells, grid, &rows);
    let flat: Vec<f32> = cols.iter().flatten().copied().collect();
    Ok(Tensor::from_slice(&flat).view([-1, 3]))
}

impl Drawer for Pixel {
    fn kind(&self) -> DrawerKind {
        DrawerKind::Pixel
    }

    fn params(&self) -> &Tensor {
        &self.colours
    }

    fn set_params(&mut self, params: Tensor) {
        self.colours = params;
    }

    fn render(&self) -> Tensor {
        self.draw(&self.colours)
    }

    fn image(&self) -> Tensor {
        tch::no_grad(|| self.draw(&self.colours.clamp(0.0, 1.0)).clamp(0.0, 1.0))
    }

    fn after_step(&mut self) {
        tch::no_grad(|| {
            let _ = self.colours.clamp_(0.0, 1.0);
        });
    }

    fn params_for(&self, img: &Tensor) -> Result<Tensor> {
        Ok(colours_of(&self.cells, self.grid, img)?.to_device(self.colours.device()))
    }

    fn svg(&self, map: &dyn Fn([f32; 3]) -> [f32; 3]) -> Result<Option<Svg>> {
        let colours = Vec::<f32>::try_from(
            self.colours
                .detach()
                .clamp(0.0, 1.0)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )?;
        let mut s = Svg::new(self.hw.1, self.hw.0);
        s.background([0.0, 0.0, 0.0]);
        for (cell, c) in self.cells.iter().zip(colours.chunks(3)) {
            s.polygon(&cell.poly, map([c[0], c[1], c[2]]), 1.0);
        }
        Ok(Some(s))
    }
}
