//! Pixray's PixelDrawer without diffvg: a grid of polygon cells (rect, rectshift, hex, tri,
//! diamond, knit; [`super::vector::grid`]) whose fill colours are optimized (Adam at 0.03 by
//! default; clamped to [0, 1] after each step, pixray's `clip_z`). The cells never move, so their
//! painter's-order coverage is computed once ([`super::vector::coverage`]) and a render is a
//! gather of the colours and a sum per pixel: exact box-filtered edges, the same on
//! every step (diffvg draws 2x2 random samples per pixel, a new pattern each step). Where no cell
//! covers (the ends of shifted rows) the picture is black, as diffvg's transparent background is.
//! With `--transparent` each cell also has an alpha (pixray's fill colour's fourth value, from 1,
//! clamped to [0, 1]) and the render is straight RGBA.
use super::Drawer;
use super::vector::raster::{self, Layout};
use super::vector::{coverage, grid, svg::Svg};
use crate::settings::{DrawerKind, PixelType};
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

pub struct Pixel {
    /// `[cells, 3]`, the colours (`[cells, 4]` with alpha, `--transparent`).
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
        transparent: bool,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> Result<Pixel> {
        let cells = grid::cells(ty, grid, (hw.1, hw.0));
        let colours = match start {
            Some(img) => colours_of(&cells, grid, &img)?,
            None => Tensor::from_slice(&super::uniform(rng, 3 * cells.len())).view([-1, 3]),
        };
        let colours = with_alpha(colours, transparent);
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

    fn transparent(&self) -> bool {
        self.colours.size()[1] == 4
    }

    fn draw(&self, colours: &Tensor) -> Tensor {
        let per_row = colours.index_select(0, &self.shape);
        if !self.transparent() {
            return self.layout.sum(&(per_row * &self.weight), self.hw);
        }
        // Premultiplied sums, then divided out: straight RGBA.
        let a = per_row.narrow(1, 3, 1);
        let rows = Tensor::cat(&[per_row.narrow(1, 0, 3) * &a, a], 1) * &self.weight;
        let (h, w) = self.hw;
        let sum = self.layout.sum(&rows, self.hw); // [1, 4, h, w]
        let flat = sum.squeeze_dim(0).permute([1, 2, 0]).reshape([h * w, 4]);
        raster::straight_rgba(&flat.narrow(1, 0, 3), &flat.narrow(1, 3, 1))
            .view([h, w, 4])
            .permute([2, 0, 1])
            .unsqueeze(0)
    }
}

/// Colours `[cells, 3]` with an alpha column of ones when `transparent` (pixray starts every cell
/// opaque).
fn with_alpha(colours: Tensor, transparent: bool) -> Tensor {
    if transparent {
        let ones = Tensor::ones([colours.size()[0], 1], (Kind::Float, colours.device()));
        Tensor::cat(&[colours, ones], 1)
    } else {
        colours
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
        let colours = colours_of(&self.cells, self.grid, img)?;
        Ok(with_alpha(colours, self.transparent()).to_device(self.colours.device()))
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
        let channels = if self.transparent() { 4 } else { 3 };
        if channels == 3 {
            s.background([0.0, 0.0, 0.0]);
        }
        for (cell, c) in self.cells.iter().zip(colours.chunks(channels)) {
            let opacity = if channels == 4 { c[3] } else { 1.0 };
            s.polygon(&cell.poly, map([c[0], c[1], c[2]]), opacity);
        }
        Ok(Some(s))
    }
}
