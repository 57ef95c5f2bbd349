//! A differentiable rasterizer for stroked cubic Bézier paths, on tch (no diffvg): the clipdraw
//! and line_sketch drawers render through it, and their gradients reach points, widths and colours
//! through autograd.
//!
//! - **Coverage** is the box filter of a pixel over the stroke, taken from the nearest piece of
//!   the stroke's centre line (each cubic flattened into [`PIECES`] straight pieces, a fixed linear
//!   map of its control points): with `d` the distance from the pixel centre to that piece and `n`
//!   the unit direction from it, the stroke is locally the band `|n.(u - q)| <= w/2`, and its
//!   coverage of the unit square is `F(w/2 - d) - F(-w/2 - d)`, where `F` is the exact area of the
//!   square under a half-plane of normal `n` (a piecewise quadratic). Exact for straight pieces
//!   (round caps and joins come from the distance). Where a pixel holds an end cap, or parts of
//!   the stroke far apart along it or turning within reach (a fold, a loop, a bend), the value is taken from
//!   16x16 fixed point samples of the same flattened stroke, and the gradient from 8x8 soft samples
//!   (a sigmoid of each point's distance to the edge).
//!   Deterministic: no random samples.
//! - **Bounded memory**: which pixels a stroke touches, and the nearest piece for each, are found
//!   on the host per stroke within its bounding box (no strokes x pixels tensor); the tensors hold
//!   one row per (pixel, stroke) pair in the stroke's band.
//! - **Compositing** is "over" in painter's order with alpha = coverage x the stroke's alpha, per
//!   pixel through an exclusive cumulative product of (1 - alpha) over the strokes above; sums
//!   are taken over a padded (pixel, depth) layout and written with `index_put` at distinct
//!   pixels, so the result is bitwise the same on every run and device (no atomic adds).
use anyhow::{Result, ensure};
use tch::{Device, Kind, Tensor};

/// Straight pieces per cubic segment.
pub const PIECES: i64 = 32;
/// Point samples per pixel side where the band model does not hold (caps, folds, bends).
pub const SAMPLES: usize = 16;
/// Soft samples per pixel side that carry the gradient there.
pub const GRAD_SAMPLES: usize = 8;
/// Their sigmoid's scale in pixels (two thirds of a sample spacing: the smallest before the
/// samples' grid shows; tests/vector.rs checks the gradients against finite differences).
const SOFTNESS: f64 = 0.08;

/// Rows of a sparse picture: one per (pixel, shape) pair, sorted by pixel then shape, with each
/// row's place in a padded `[pixels touched, depth]` layout.
#[derive(Debug)]
pub struct Layout {
    /// Row-major pixel index of each row.
    pub pixel: Vec<i64>,
    /// Shape of each row.
    pub shape: Vec<i64>,
    /// Group (touched pixel) and rank within it (painter's order) of each row.
    pub group: Vec<i64>,
    pub rank: Vec<i64>,
    /// The distinct touched pixels, in group order.
    pub touched: Vec<i64>,
    pub depth: i64,
    /// (group, rank, touched) as tensors on the device, made once: the pixel drawer's layout
    /// serves every step.
    index: (Tensor, Tensor, Tensor),
}

impl Layout {
    /// From rows already sorted by (pixel, shape); its index tensors on `device`.
    pub fn new(pixel: Vec<i64>, shape: Vec<i64>, device: Device) -> Layout {
        let (mut group, mut rank, mut touched) = (
            Vec::with_capacity(pixel.len()),
            Vec::with_capacity(pixel.len()),
            Vec::new(),
        );
        let mut depth = 1;
        for (i, &p) in pixel.iter().enumerate() {
            if i == 0 || pixel[i - 1] != p {
                touched.push(p);
                rank.push(0);
            } else {
                let r = rank[i - 1] + 1;
                rank.push(r);
                depth = depth.max(r + 1);
            }
            group.push(touched.len() as i64 - 1);
        }
        let index = (
            Tensor::from_slice(&group).to_device(device),
            Tensor::from_slice(&rank).to_device(device),
            Tensor::from_slice(&touched).to_device(device),
        );
        Layout {
            pixel,
            shape,
            group,
            rank,
            touched,
            depth,
            index,
        }
    }

    /// Sums the rows `[rows, C]` per pixel onto a zero canvas: `[1, C, h, w]` (the same bits on
    /// every device: no atomic adds).
    pub fn sum(&self, values: &Tensor, (h, w): (i64, i64)) -> Tensor {
        let device = values.device();
        let (g, r, touched) = &self.index;
        let n = self.touched.len() as i64;
        let c = values.size()[1];
        let opts = (Kind::Float, device);
        let per_pixel = Tensor::zeros([n, self.depth, c], opts)
            .index_put(&[Some(g), Some(r)], values, false)
            .sum_dim_intlist(&[1i64][..], false, Kind::Float);
        Tensor::zeros([h * w, c], opts)
            .index_put(&[Some(touched)], &per_pixel, false)
            .view([h, w, c])
            .permute([2, 0, 1])
            .unsqueeze(0)
    }

    /// Composites rows "over" in painter's order: `alpha` `[rows]`, `rgb` `[rows, 3]` (straight
    /// colours), on `background` `[3]` over a `h x w` canvas; returns `[1, 3, h, w]`. Without a
    /// background (`--transparent`): `[1, 4, h, w]`, straight RGBA (see [`straight_rgba`]).
    pub fn composite(
        &self,
        alpha: &Tensor,
        rgb: &Tensor,
        background: Option<&Tensor>,
        (h, w): (i64, i64),
    ) -> Tensor {
        let device = alpha.device();
        let (g, r, touched) = &self.index;
        let n = self.touched.len() as i64;
        let opts = (Kind::Float, device);
        let a = Tensor::zeros([n, self.depth], opts).index_put(&[Some(g), Some(r)], alpha, false);
        // Transmittance above each row: the product of (1 - alpha) of the rows after it.
        let keep = a.neg().g_add_scalar(1.0).flip([1]).cumprod(1, Kind::Float);
        let all = keep.select(1, self.depth - 1);
        let above = Tensor::cat(
            &[
                Tensor::ones([n, 1], opts),
                keep.narrow(1, 0, self.depth - 1),
            ],
            1,
        )
        .flip([1]);
        let weight = (&a * above).index(&[Some(g), Some(r)]); // [rows]
        let colour = Tensor::zeros([n, self.depth, 3], opts)
            .index_put(&[Some(g), Some(r)], &(rgb * weight.unsqueeze(1)), false)
            .sum_dim_intlist(&[1i64][..], false, Kind::Float); // [n, 3], premultiplied
        let (canvas, values) = match background {
            Some(bg) => (
                bg.view([1, 3]).expand([h * w, 3], false),
                colour + all.unsqueeze(1) * bg.unsqueeze(0),
            ),
            None => (
                Tensor::zeros([h * w, 4], opts),
                straight_rgba(&colour, &(all.neg() + 1.0).unsqueeze(1)),
            ),
        };
        let c = values.size()[1];
        canvas
            .index_put(&[Some(touched)], &values, false)
            .view([h, w, c])
            .permute([2, 0, 1])
            .unsqueeze(0)
    }
}

/// Straight RGBA `[n, 4]` from premultiplied colour `[n, 3]` and coverage `[n, 1]`: the colour
/// divided by the coverage, black where nothing covers. The engine flattens it again as
/// `alpha * rgb + (1 - alpha) * background`, so the division cancels in the gradient.
pub fn straight_rgba(premultiplied: &Tensor, alpha: &Tensor) -> Tensor {
    let rgb = premultiplied / alpha.clamp_min(ALPHA_FLOOR);
    Tensor::cat(&[rgb, alpha.shallow_clone()], 1)
}

/// Below this coverage a pixel's colour is not divided out (it is a thousandth of a byte).
const ALPHA_FLOOR: f64 = 1e-6;

/// The area of the unit square (centred at 0) where `n . v <= s`, for a unit normal with
/// `hi = max(|nx|, |ny|)` and `lo = min(...)`: a ramp over `|s| < (hi - lo)/2` between two
/// quadratic pieces.
pub fn half_plane_area(s: &Tensor, hi: &Tensor, lo: &Tensor) -> Tensor {
    let lo = lo.clamp_min(1e-3); // a vanishing quadratic piece; keeps 0/0 out of both branches
    let outer = (hi + &lo) * 0.5;
    let inner = (hi - &lo) * 0.5;
    let ramp = s / hi + 0.5;
    let low = (s + &outer).square() / (&lo * hi * 2.0);
    let high = 1.0 - (&outer - s).square() / (&lo * hi * 2.0);
    let mid = ramp.where_self(
        &s.abs().lt_tensor(&inner),
        &low.where_self(&s.lt(0.0), &high),
    );
    let zero = s.zeros_like();
    let one = s.ones_like();
    mid.where_self(&s.gt_tensor(&-&outer), &zero)
        .where_self(&s.lt_tensor(&outer), &one)
}

/// Samples along each cubic: `[segments, PIECES + 1, 2]` from control points `[segments, 4, 2]`.
pub fn flatten(cubics: &Tensor) -> Tensor {
    let t: Vec<f32> = (0..=PIECES).map(|k| k as f32 / PIECES as f32).collect();
    let basis: Vec<f32> = t
        .iter()
        .flat_map(|&t| {
            let u = 1.0 - t;
            [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t]
        })
        .collect();
    let m = Tensor::from_slice(&basis)
        .view([PIECES + 1, 4])
        .to_device(cubics.device());
    m.matmul(cubics)
}

/// Strokes to draw: cubic segments (each stroke's segments consecutive), widths and colours.
pub struct Strokes<'a> {
    /// `[segments, 4, 2]` control points in pixels (x right, y down).
    pub cubics: &'a Tensor,
    /// The stroke of each segment (non-decreasing).
    pub segment_stroke: &'a [i64],
    /// `[strokes]` widths in pixels.
    pub widths: &'a Tensor,
    /// `[strokes, 4]` straight RGBA.
    pub colours: &'a Tensor,
    /// `[3]`; None: a transparent canvas (`[1, 4, h, w]` straight RGBA out).
    pub background: Option<&'a Tensor>,
}

/// One stroke pixel: which piece of the centre line is nearest.
struct Row {
    pixel: i64,
    stroke: i64,
    /// Index of the piece's first sample in the flattened samples.
    sample: i64,
    /// Where the band model does not hold: the coverage by point samples, and the nearest piece
    /// of each of the 8x8 points that carry the gradient.
    sampled: Option<(f32, Vec<i64>)>,
}

/// Renders `strokes` over their background: `[1, 3, h, w]`, differentiable w.r.t. the control
/// points, widths and colours.
pub fn render(strokes: &Strokes, (h, w): (i64, i64)) -> Result<Tensor> {
    let n_seg = strokes.cubics.size()[0];
    ensure!(
        strokes.segment_stroke.len() as i64 == n_seg,
        "one stroke per segment"
    );
    let samples = flatten(strokes.cubics); // [segments, P + 1, 2]
    let flat = samples.view([-1, 2]);
    // The host's view of the geometry, to find each stroke's pixels and nearest pieces.
    let host: Vec<f32> = Vec::<f32>::try_from(flat.detach().to_device(Device::Cpu).reshape([-1]))?;
    let widths: Vec<f32> = Vec::<f32>::try_from(strokes.widths.detach().to_device(Device::Cpu))?;
    let per = (PIECES + 1) as usize;
    // Each stroke's segments, then their rows: strokes are independent, so the host work is split
    // over threads in contiguous runs of strokes and joined in stroke order (the same rows, in the
    // same order, whatever the thread count).
    let mut spans: Vec<(std::ops::Range<usize>, i64)> = Vec::new();
    let mut s0 = 0usize;
    while s0 < n_seg as usize {
        let stroke = strokes.segment_stroke[s0];
        let mut s1 = s0;
        while s1 < n_seg as usize && strokes.segment_stroke[s1] == stroke {
            s1 += 1;
        }
        spans.push((s0..s1, stroke));
        s0 = s1;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(spans.len().div_ceil(64).max(1));
    let rows_of = |part: &[(std::ops::Range<usize>, i64)]| {
        let mut rows = Vec::new();
        for (segs, stroke) in part {
            let half = widths
                .get(*stroke as usize)
                .copied()
                .unwrap_or(1.0)
                .max(0.0)
                / 2.0;
            stroke_rows(&host, segs.clone(), per, half, *stroke, (h, w), &mut rows);
        }
        rows
    };
    let mut rows: Vec<Row> = if threads <= 1 {
        rows_of(&spans)
    } else {
        let chunk = spans.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = spans
                .chunks(chunk)
                .map(|part| scope.spawn(move || rows_of(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    rows.sort_by_key(|r| r.pixel); // stable: strokes stay in painter's order within a pixel
    let device = strokes.cubics.device();
    if rows.is_empty() {
        return Ok(match strokes.background {
            Some(bg) => bg
                .view([1, 3, 1, 1])
                .expand([1, 3, h, w], false)
                .contiguous(),
            None => Tensor::zeros([1, 4, h, w], (Kind::Float, device)),
        });
    }
    let layout = Layout::new(
        rows.iter().map(|r| r.pixel).collect(),
        rows.iter().map(|r| r.stroke).collect(),
        device,
    );
    let ia =
        Tensor::from_slice(&rows.iter().map(|r| r.sample).collect::<Vec<_>>()).to_device(device);
    let shape = Tensor::from_slice(&layout.shape).to_device(device);
    let centres: Vec<f32> = rows
        .iter()
        .flat_map(|r| [(r.pixel % w) as f32 + 0.5, (r.pixel / w) as f32 + 0.5])
        .collect();
    let p = Tensor::from_slice(&centres).view([-1, 2]).to_device(device);
    let a = flat.index_select(0, &ia);
    let b = flat.index_select(0, &(&ia + 1));
    let ab = &b - &a;
    let len2 = ab.square().sum_dim_intlist(&[1i64][..], true, Kind::Float);
    let t = ((&p - &a) * &ab)
        .sum_dim_intlist(&[1i64][..], true, Kind::Float)
        .divide(&(&len2 + 1e-12))
        .clamp(0.0, 1.0);
    let q = &a + &ab * t;
    let diff = &p - q;
    let d2 = diff
        .square()
        .sum_dim_intlist(&[1i64][..], true, Kind::Float);
    let d = (&d2 + 1e-12).sqrt();
    // The band's normal: towards the pixel, or across the piece when the centre is on the line.
    let across = Tensor::stack(&[-ab.select(1, 1), ab.select(1, 0)], 1) / (len2.sqrt() + 1e-12);
    let normal = (&diff / &d).where_self(&d.gt(1e-3), &across);
    let (nx, ny) = (normal.select(1, 0).abs(), normal.select(1, 1).abs());
    let (hi, lo) = (nx.maximum(&ny), nx.minimum(&ny));
    let half = strokes.widths.index_select(0, &shape) * 0.5;
    let d = d.squeeze_dim(1);
    let band = (half_plane_area(&(&half - &d), &hi, &lo)
        - half_plane_area(&(-&half - &d), &hi, &lo))
    .clamp(0.0, 1.0);
    // Caps, folds and bends: the sampled value; the gradient of 8x8 soft samples (a sigmoid of
    // each point's signed distance to the stroke's edge, whose mean moves as the area does).
    let which: Vec<i64> = (0..rows.len() as i64)
        .filter(|&k| rows[k as usize].sampled.is_some())
        .collect();
    let cover = if which.is_empty() {
        band
    } else {
        let (mut value, mut pieces, mut corner) = (Vec::new(), Vec::new(), Vec::new());
        for &k in &which {
            let r = &rows[k as usize];
            if let Some((v, nearest)) = &r.sampled {
                value.push(*v);
                pieces.extend_from_slice(nearest);
                corner.push((r.pixel % w) as f32);
                corner.push((r.pixel / w) as f32);
            }
        }
        let which = Tensor::from_slice(&which).to_device(device);
        let per = (GRAD_SAMPLES * GRAD_SAMPLES) as i64;
        let n = value.len() as i64;
        // x and y apart: elementwise over [n * per] (a reduction over a size-2 dim is slow).
        let corner = Tensor::from_slice(&corner).view([n, 2]).to_device(device);
        let offsets: Vec<f32> = (0..GRAD_SAMPLES)
            .map(|s| (s as f32 + 0.5) / GRAD_SAMPLES as f32)
            .collect();
        let offsets = Tensor::from_slice(&offsets).to_device(device);
        let g = GRAD_SAMPLES as i64;
        let atx = (corner.select(1, 0).view([n, 1, 1]) + offsets.view([1, 1, g]))
            .expand([n, g, g], false);
        let aty = (corner.select(1, 1).view([n, 1, 1]) + offsets.view([1, g, 1]))
            .expand([n, g, g], false);
        let (atx, aty) = (atx.reshape([-1]), aty.reshape([-1]));
        // Per piece once, then gathered per sample.
        let (fx, fy) = (flat.select(1, 0), flat.select(1, 1));
        let np = fx.size()[0] - 1;
        let (abx, aby) = (
            fx.narrow(0, 1, np) - fx.narrow(0, 0, np),
            fy.narrow(0, 1, np) - fy.narrow(0, 0, np),
        );
        let inv = (abx.square() + aby.square() + 1e-12).reciprocal();
        let ia = Tensor::from_slice(&pieces).to_device(device);
        let dx = atx - fx.index_select(0, &ia);
        let dy = aty - fy.index_select(0, &ia);
        let (abx, aby) = (abx.index_select(0, &ia), aby.index_select(0, &ia));
        let t = ((&dx * &abx + &dy * &aby) * inv.index_select(0, &ia)).clamp(0.0, 1.0);
        let ex = dx - abx * &t;
        let ey = dy - aby * t;
        let ds = (ex.square() + ey.square() + 1e-12).sqrt().view([n, per]);
        let soft = ((half.index_select(0, &which).unsqueeze(1) - ds) / SOFTNESS)
            .sigmoid()
            .mean_dim(&[1i64][..], false, Kind::Float);
        let value = Tensor::from_slice(&value).to_device(device);
        let sampled = value + &soft - soft.detach();
        band.index_put(&[Some(&which)], &sampled, false)
    };
    let colour = strokes.colours.index_select(0, &shape);
    let alpha = cover * colour.select(1, 3);
    Ok(layout.composite(&alpha, &colour.narrow(1, 0, 3), strokes.background, (h, w)))
}

/// The pixels of one stroke (segments `segs`) within reach of its band, each with its nearest
/// piece: a distance field over the stroke's bounding box, piece by piece. Where the band model
/// does not hold (an end cap, or pieces far apart along the stroke both within reach: a fold, a
/// loop, a sharp turn), the row also gets the coverage by 16x16 point samples.
fn stroke_rows(
    host: &[f32],
    segs: std::ops::Range<usize>,
    per: usize,
    half: f32,
    stroke: i64,
    (h, w): (i64, i64),
    rows: &mut Vec<Row>,
) {
    let reach = half + 0.75; // beyond it F(w/2 - d) is 0 for every normal
    let pt = |i: usize| (host[2 * i], host[2 * i + 1]);
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for s in segs.clone() {
        for k in 0..per {
            let (x, y) = pt(s * per + k);
            if !(x.is_finite() && y.is_finite()) {
                return;
            }
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    let bx0 = ((x0 - reach).floor() as i64).max(0);
    let by0 = ((y0 - reach).floor() as i64).max(0);
    let bx1 = ((x1 + reach).ceil() as i64).min(w);
    let by1 = ((y1 + reach).ceil() as i64).min(h);
    if bx0 >= bx1 || by0 >= by1 {
        return;
    }
    // The stroke's pieces in order: first sample index, and arc length at its start.
    let mut pieces: Vec<(usize, f32)> = Vec::new();
    let (mut arc, mut longest) = (0.0f32, 0.0f32);
    for s in segs {
        for k in 0..per - 1 {
            let i = s * per + k;
            pieces.push((i, arc));
            let ((ax, ay), (bx, by)) = (pt(i), pt(i + 1));
            let len = ((bx - ax).powi(2) + (by - ay).powi(2)).sqrt();
            arc += len;
            longest = longest.max(len);
        }
    }
    // A straight passage through a pixel's reach spans at most 2 reach + one piece of arc.
    let fold_span = 2.0 * reach + longest + 0.05;
    let (first, last) = (pieces[0].0, pieces[pieces.len() - 1].0);
    let (bw, bh) = ((bx1 - bx0) as usize, (by1 - by0) as usize);
    // per pixel: nearest distance^2, its piece, its t, the arc span of the pieces within reach
    // and the sum of their unit directions (a bend shows as a short sum)
    let mut best = vec![(f32::MAX, 0usize, 0f32, f32::MAX, f32::MIN); bw * bh];
    let mut dirs = vec![(0f32, 0f32, 0u32); bw * bh];
    let dist2 = |i: usize, cx: f32, cy: f32| -> (f32, f32) {
        let ((ax, ay), (bx, by)) = (pt(i), pt(i + 1));
        let (dx, dy) = (bx - ax, by - ay);
        let t = (((cx - ax) * dx + (cy - ay) * dy) / (dx * dx + dy * dy + 1e-12)).clamp(0.0, 1.0);
        let (ex, ey) = (cx - ax - t * dx, cy - ay - t * dy);
        (ex * ex + ey * ey, t)
    };
    for &(i, arc) in &pieces {
        let ((ax, ay), (bxp, byp)) = (pt(i), pt(i + 1));
        let len = ((bxp - ax).powi(2) + (byp - ay).powi(2)).sqrt();
        let (ux, uy) = if len > 1e-6 {
            ((bxp - ax) / len, (byp - ay) / len)
        } else {
            (0.0, 0.0)
        };
        let px0 = ((ax.min(bxp) - reach).floor() as i64).max(bx0);
        let px1 = ((ax.max(bxp) + reach).ceil() as i64).min(bx1);
        let py0 = ((ay.min(byp) - reach).floor() as i64).max(by0);
        let py1 = ((ay.max(byp) + reach).ceil() as i64).min(by1);
        for y in py0..py1 {
            for x in px0..px1 {
                let (d2, t) = dist2(i, x as f32 + 0.5, y as f32 + 0.5);
                let at = (y - by0) as usize * bw + (x - bx0) as usize;
                let cell = &mut best[at];
                if d2 < reach * reach {
                    cell.3 = cell.3.min(arc);
                    cell.4 = cell.4.max(arc);
                    if len > 1e-6 {
                        let dsum = &mut dirs[at];
                        (dsum.0, dsum.1, dsum.2) = (dsum.0 + ux, dsum.1 + uy, dsum.2 + 1);
                    }
                }
                if d2 < cell.0 {
                    (cell.0, cell.1, cell.2) = (d2, i, t);
                }
            }
        }
    }
    let r2 = half * half;
    for (j, &(d2, i, t, lo, hi)) in best.iter().enumerate() {
        if d2 >= reach * reach {
            continue;
        }
        let (x, y) = (bx0 + (j % bw) as i64, by0 + (j / bw) as i64);
        let cap = (i == first && t <= 0.0) || (i == last && t >= 1.0);
        let (sx, sy, n) = dirs[j];
        // pieces within reach turning by more than about 20 degrees: a bend
        let bent = n > 1 && (sx * sx + sy * sy).sqrt() < 0.985 * n as f32;
        let fold = hi - lo > fold_span || bent;
        let sampled = (cap || fold).then(|| -> (f32, Vec<i64>) {
            // point samples against the pieces that come near this pixel
            let near: Vec<usize> = pieces
                .iter()
                .map(|p| p.0)
                .filter(|&k| {
                    let ((ax, ay), (bx, by)) = (pt(k), pt(k + 1));
                    ax.min(bx) - half <= (x + 1) as f32
                        && ax.max(bx) + half >= x as f32
                        && ay.min(by) - half <= (y + 1) as f32
                        && ay.max(by) + half >= y as f32
                })
                .collect();
            let mut hits = 0;
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let (cx, cy) = (
                        x as f32 + (sx as f32 + 0.5) / SAMPLES as f32,
                        y as f32 + (sy as f32 + 0.5) / SAMPLES as f32,
                    );
                    if near.iter().any(|&k| dist2(k, cx, cy).0 <= r2) {
                        hits += 1;
                    }
                }
            }
            let nearest: Vec<i64> = (0..GRAD_SAMPLES * GRAD_SAMPLES)
                .map(|j| {
                    let (cx, cy) = (
                        x as f32 + ((j % GRAD_SAMPLES) as f32 + 0.5) / GRAD_SAMPLES as f32,
                        y as f32 + ((j / GRAD_SAMPLES) as f32 + 0.5) / GRAD_SAMPLES as f32,
                    );
                    near.iter()
                        .copied()
                        .min_by(|&p, &q| dist2(p, cx, cy).0.total_cmp(&dist2(q, cx, cy).0))
                        .unwrap_or(i) as i64
                })
                .collect();
            (hits as f32 / (SAMPLES * SAMPLES) as f32, nearest)
        });
        rows.push(Row {
            pixel: y * w + x,
            stroke,
            sample: i as i64,
            sampled,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(s: f64, angle: f64) -> f64 {
        let (c, sn) = (angle.cos().abs(), angle.sin().abs());
        let t = |v: f64| Tensor::from_slice(&[v as f32]);
        half_plane_area(&t(s), &t(c.max(sn)), &t(c.min(sn))).double_value(&[0])
    }

    /// The area by 400x400 point samples.
    fn sampled(s: f64, angle: f64) -> f64 {
        let (nx, ny) = (angle.cos(), angle.sin());
        let n = 400;
        let mut k = 0;
        for i in 0..n {
            for j in 0..n {
                let (x, y) = (
                    (i as f64 + 0.5) / n as f64 - 0.5,
                    (j as f64 + 0.5) / n as f64 - 0.5,
                );
                if nx * x + ny * y <= s {
                    k += 1;
                }
            }
        }
        k as f64 / (n * n) as f64
    }

    #[test]
    fn half_plane_area_is_exact() {
        for angle in [0.0, 0.3, std::f64::consts::FRAC_PI_4, 1.2, 2.0] {
            for s in [-0.8, -0.6, -0.4, -0.2, 0.0, 0.1, 0.3, 0.55, 0.7, 0.9] {
                let (a, b) = (area(s, angle), sampled(s, angle));
                assert!((a - b).abs() < 4e-3, "angle {angle} s {s}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn layout_groups_rows_by_pixel() {
        let l = Layout::new(vec![3, 3, 5, 9, 9, 9], vec![0, 2, 1, 0, 1, 2], Device::Cpu);
        assert_eq!(l.touched, vec![3, 5, 9]);
        assert_eq!(l.group, vec![0, 0, 1, 2, 2, 2]);
        assert_eq!(l.rank, vec![0, 1, 0, 0, 1, 2]);
        assert_eq!(l.depth, 3);
        // two rows over one pixel: red at 0.5 under blue at 0.5 on white
        let l = Layout::new(vec![0, 0], vec![0, 1], Device::Cpu);
        let img = l.composite(
            &Tensor::from_slice(&[0.5f32, 0.5]),
            &Tensor::from_slice(&[1f32, 0., 0., 0., 0., 1.]).view([2, 3]),
            Some(&Tensor::from_slice(&[1f32, 1., 1.])),
            (1, 2),
        );
        let v = Vec::<f32>::try_from(img.reshape([-1])).unwrap();
        // pixel 0: 0.5 blue + 0.25 red + 0.25 white; pixel 1: white (channels first)
        assert_eq!(v, vec![0.5, 1.0, 0.25, 1.0, 0.75, 1.0]);
        // transparent: alpha 0.75, colour (0.25 red + 0.5 blue) / 0.75; pixel 1 empty
        let img = l.composite(
            &Tensor::from_slice(&[0.5f32, 0.5]),
            &Tensor::from_slice(&[1f32, 0., 0., 0., 0., 1.]).view([2, 3]),
            None,
            (1, 2),
        );
        let v = Vec::<f32>::try_from(img.reshape([-1])).unwrap();
        let want = [1.0 / 3.0, 0.0, 0.0, 0.0, 2.0 / 3.0, 0.0, 0.75, 0.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
    }
}
