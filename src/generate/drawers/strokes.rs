//! Pixray's ClipDrawer (`clipdraw`: coloured, semi-transparent cubic Bézier strokes on white) and
//! LineDrawer (`line-sketch`: black strokes on paper #f2eecb), rendered by
//! [`super::vector::raster`] instead of diffvg.
//!
//! Pixray steps three Adams: points at lr 1.0, widths at 0.1, colours at 0.01. The engine has one
//! parameter tensor `[points | widths | colours]` and one optimizer, with per-element learning-rate
//! factors 1, 0.1 and 0.01 ([`Drawer::lr_groups`]): torch's Adam per parameter group, to the
//! bit (`--lr` scales all three, like pixray's decay divisor; tests/vector_loop.rs checks it
//! against three torch Adams). After each step the widths are clamped to [min, max] (line-sketch:
//! [1 px, max]) and the colours to [0, 1], as pixray's clip_z.
use super::Drawer;
use super::vector::raster::{self, Strokes};
use super::vector::svg::Svg;
use crate::settings::{DrawerKind, Settings};
use anyhow::{Result, bail};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Pixray's learning rates for widths and colours, relative to the points' (ClipDrawer.get_opts).
const WIDTH_LR: f64 = 0.1;
const COLOUR_LR: f64 = 0.01;
/// Pixray's LineDrawer paper, #f2eecb.
pub const PAPER: [f32; 3] = [242.0 / 255.0, 238.0 / 255.0, 203.0 / 255.0];

pub struct StrokeDrawer {
    kind: DrawerKind,
    /// `[points x 2 | widths (pixels) | colours]`, flat.
    params: Tensor,
    n_points: i64,
    n_strokes: i64,
    /// clipdraw: RGBA per stroke in the parameters; line-sketch: black, and the paper's RGB in
    /// the parameters when it may change.
    colour_params: i64,
    segment_stroke: Vec<i64>,
    /// Indices of each segment's 4 control points, `[segments * 4]`.
    cubic_index: Tensor,
    widths: (f64, f64),
    hw: (i64, i64),
    /// `--transparent`: no white background or paper; the render is straight RGBA.
    transparent: bool,
}

/// A cubic's three new points from the last one: each x and y moved by radius * (U - 0.5), in
/// pixray's draw order (both drawers start their strokes this way).
fn walk(p0: [f64; 2], rx: f64, ry: f64, rand: &mut impl FnMut() -> f64) -> [[f64; 2]; 3] {
    let p1 = [p0[0] + rx * (rand() - 0.5), p0[1] + ry * (rand() - 0.5)];
    let p2 = [p1[0] + rx * (rand() - 0.5), p1[1] + ry * (rand() - 0.5)];
    let p3 = [p2[0] + rx * (rand() - 0.5), p2[1] + ry * (rand() - 0.5)];
    [p1, p2, p3]
}

impl StrokeDrawer {
    pub fn new(
        settings: &Settings,
        start: Option<Tensor>,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> Result<StrokeDrawer> {
        let kind = settings.drawer;
        let (h, w) = (settings.size.height, settings.size.width);
        let (hf, wf) = (h as f64, w as f64);
        let max_w = settings.max_stroke_width * hf / 100.0;
        let min_w = settings.min_stroke_width * hf / 100.0;
        let n = settings.strokes as usize;
        let mut points: Vec<[f64; 2]> = Vec::new();
        let mut segment_stroke = Vec::new();
        let mut cubic_index: Vec<i64> = Vec::new();
        let mut widths = Vec::with_capacity(n);
        let mut colours: Vec<f64> = Vec::new();
        let mut rand = || rng.random::<f64>();
        for stroke in 0..n {
            let base = points.len() as i64;
            let segments = match kind {
                DrawerKind::LineSketch => settings.stroke_length as usize,
                _ => 1 + (rand() * 3.0) as usize,
            };
            match kind {
                DrawerKind::LineSketch => {
                    // linedrawer.py: a start near the middle, segments of radius 1/(n+2), each
                    // next one from the last point held inside the canvas.
                    let mut p0 = [0.5 + 0.5 * (rand() - 0.5), 0.5 + 0.5 * (rand() - 0.5)];
                    points.push(p0);
                    let radius = 1.0 / (segments as f64 + 2.0);
                    for _ in 0..segments {
                        let [p1, p2, p3] = walk(p0, radius * hf / wf, radius, &mut rand);
                        points.extend([p1, p2, p3]);
                        p0 = [p3[0].clamp(0.0, 1.0), p3[1].clamp(0.0, 1.0)];
                    }
                    widths.push(max_w / 10.0);
                }
                _ => {
                    // clipdrawer.py: 1-3 segments from a random start, radius 0.1.
                    let mut p0 = [rand(), rand()];
                    points.push(p0);
                    for _ in 0..segments {
                        let [p1, p2, p3] = walk(p0, 0.1, 0.1, &mut rand);
                        points.extend([p1, p2, p3]);
                        p0 = p3;
                    }
                    widths.push((min_w + max_w) / 4.0);
                    colours.extend([rand(), rand(), rand(), rand()]);
                }
            }
            for s in 0..segments as i64 {
                segment_stroke.push(stroke as i64);
                cubic_index.extend((0..4).map(|k| base + 3 * s + k));
            }
        }
        for p in points.iter_mut() {
            p[0] *= wf;
            p[1] *= hf;
        }
        // Beyond pixray (which leaves it undone): clipdraw strokes take the colour of the init picture under
        // their first point.
        if let (DrawerKind::Clipdraw, Some(img)) = (kind, &start) {
            let img = img.to_kind(Kind::Float).to_device(Device::Cpu);
            let mut first_point = vec![None; n];
            for (seg, &stroke) in segment_stroke.iter().enumerate() {
                first_point[stroke as usize].get_or_insert(cubic_index[seg * 4] as usize);
            }
            for (stroke, fp) in first_point.iter().enumerate() {
                let Some(i) = fp else { continue };
                let x = (points[*i][0].floor() as i64).clamp(0, w - 1);
                let y = (points[*i][1].floor() as i64).clamp(0, h - 1);
                for c in 0..3 {
                    colours[stroke * 4 + c] = img.double_value(&[0, c as i64, y, x]);
                }
            }
        }
        let colour_params = match kind {
            DrawerKind::LineSketch if settings.allow_paper_color => {
                colours = PAPER.iter().map(|&c| c as f64).collect();
                3
            }
            DrawerKind::LineSketch => 0,
            _ => 4 * n as i64,
        };
        let mut flat: Vec<f32> = points.iter().flatten().map(|&v| v as f32).collect();
        flat.extend(widths.iter().map(|&v| v as f32));
        flat.extend(colours.iter().map(|&v| v as f32));
        let width_range = match kind {
            DrawerKind::LineSketch => (1.0, max_w.max(1.0)),
            _ => (min_w, max_w),
        };
        Ok(StrokeDrawer {
            kind,
            params: super::leaf(Tensor::from_slice(&flat).to_device(device)),
            n_points: points.len() as i64,
            n_strokes: n as i64,
            colour_params,
            segment_stroke,
            cubic_index: Tensor::from_slice(&cubic_index).to_device(device),
            widths: width_range,
            hw: (h, w),
            transparent: settings.transparent,
        })
    }

    /// (points `[P, 2]`, widths `[S]`, colours `[S, 4]`, background `[3]`) from parameters; no
    /// background with `--transparent`.
    fn unpack(&self, params: &Tensor) -> (Tensor, Tensor, Tensor, Option<Tensor>) {
        let device = params.device();
        let p2 = self.n_points * 2;
        let points = params.narrow(0, 0, p2).view([-1, 2]);
        let widths = params.narrow(0, p2, self.n_strokes);
        let rest = params.narrow(0, p2 + self.n_strokes, self.colour_params);
        let (colours, background) = match self.kind {
            DrawerKind::LineSketch => {
                let black = Tensor::from_slice(&[0f32, 0.0, 0.0, 1.0])
                    .to_device(device)
                    .view([1, 4])
                    .expand([self.n_strokes, 4], false);
                let paper = if self.colour_params == 3 {
                    rest
                } else {
                    Tensor::from_slice(&PAPER).to_device(device)
                };
                (black, paper)
            }
            _ => (rest.view([-1, 4]), Tensor::ones([3], (Kind::Float, device))),
        };
        (
            points,
            widths,
            colours,
            (!self.transparent).then_some(background),
        )
    }

    fn draw(&self, params: &Tensor) -> Result<Tensor> {
        let (points, widths, colours, background) = self.unpack(params);
        let cubics = points.index_select(0, &self.cubic_index).view([-1, 4, 2]);
        raster::render(
            &Strokes {
                cubics: &cubics,
                segment_stroke: &self.segment_stroke,
                widths: &widths,
                colours: &colours,
                background: background.as_ref(),
            },
            self.hw,
        )
    }
}

impl Drawer for StrokeDrawer {
    fn kind(&self) -> DrawerKind {
        self.kind
    }

    fn params(&self) -> &Tensor {
        &self.params
    }

    fn set_params(&mut self, params: Tensor) {
        self.params = params;
    }

    fn render(&self) -> Tensor {
        match self.draw(&self.params) {
            Ok(t) => t,
            // Only the host copy of the geometry can fail (a lost device); the engine's step
            // catches the panic and reports it as the step's error.
            Err(e) => panic!("stroke render: {e:#}"),
        }
    }

    fn image(&self) -> Tensor {
        tch::no_grad(|| {
            self.draw(&self.params)
                .map(|t| t.clamp(0.0, 1.0))
                .unwrap_or_else(|e| panic!("stroke render: {e:#}"))
        })
    }

    fn lr_groups(&self) -> Option<Vec<(i64, f64)>> {
        Some(vec![
            (self.n_points * 2, 1.0),
            (self.n_strokes, WIDTH_LR),
            (self.colour_params, COLOUR_LR),
        ])
    }

    fn after_step(&mut self) {
        tch::no_grad(|| {
            let p2 = self.n_points * 2;
            let (lo, hi) = self.widths;
            let _ = self.params.narrow(0, p2, self.n_strokes).clamp_(lo, hi);
            let _ = self
                .params
                .narrow(0, p2 + self.n_strokes, self.colour_params)
                .clamp_(0.0, 1.0);
        });
    }

    fn params_for(&self, _img: &Tensor) -> Result<Tensor> {
        bail!(
            "--drawer {} cannot be re-fitted to an image (no zoom)",
            self.kind
        )
    }

    fn svg(&self, map: &dyn Fn([f32; 3]) -> [f32; 3]) -> Result<Option<Svg>> {
        let (points, widths, colours, background) =
            tch::no_grad(|| self.unpack(&self.params.detach()));
        let cpu = |t: Tensor| -> Result<Vec<f32>> {
            Ok(Vec::<f32>::try_from(
                t.to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1]),
            )?)
        };
        let (points, widths, colours, background) = (
            cpu(points)?,
            cpu(widths)?,
            cpu(colours.clamp(0.0, 1.0))?,
            background.map(|b| cpu(b.clamp(0.0, 1.0))).transpose()?,
        );
        let index = Vec::<i64>::try_from(self.cubic_index.to_device(Device::Cpu))?;
        let mut s = Svg::new(self.hw.1, self.hw.0);
        if let Some(b) = background {
            s.background(map([b[0], b[1], b[2]]));
        }
        let pt = |i: i64| {
            [
                points[2 * i as usize] as f64,
                points[2 * i as usize + 1] as f64,
            ]
        };
        let mut seg = 0;
        while seg < self.segment_stroke.len() {
            let stroke = self.segment_stroke[seg] as usize;
            let mut cubics = Vec::new();
            while seg < self.segment_stroke.len() && self.segment_stroke[seg] as usize == stroke {
                let k = &index[seg * 4..seg * 4 + 4];
                cubics.push([pt(k[0]), pt(k[1]), pt(k[2]), pt(k[3])]);
                seg += 1;
            }
            let c = &colours[stroke * 4..stroke * 4 + 4];
            s.stroke(
                &cubics,
                widths[stroke] as f64,
                map([c[0], c[1], c[2]]),
                c[3],
            );
        }
        Ok(Some(s))
    }
}
