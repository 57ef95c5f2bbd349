//! Coverage of fixed polygons, composited in painter's order, as constant weights: each pixel's
//! colour is a weighted sum of the colours of the shapes over it (the background's weight is what
//! is left). Used by the pixel drawer, whose polygons never move, so its render is one gather and
//! one scatter-add, exact and the same on every step.
//!
//! A shape's coverage of a pixel is the exact area of the polygon clipped to the pixel square (the
//! box filter), and shapes are laid "over" one another with that coverage as alpha, as SVG
//! renderers do (rsvg, browsers): so the PNG and the run's SVG are the same picture. (Like them,
//! two shapes that share an edge inside a pixel let a little of what is below show through.)
use super::grid::Pt;

/// Sparse weights: `weight[k]` of shape `shape[k]` at pixel `pixel[k]` (row-major index).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Weights {
    pub pixel: Vec<i64>,
    pub shape: Vec<i64>,
    pub weight: Vec<f32>,
}

/// The area of `poly` inside the unit square at (x, y): Sutherland-Hodgman clipping (which is
/// exact in area for a concave polygon against a convex window) and the shoelace formula.
pub fn pixel_area(poly: &[Pt], x: f64, y: f64) -> f64 {
    let mut pts: Vec<Pt> = poly.to_vec();
    // (axis, bound, keep >= bound)
    for (axis, bound, keep_above) in [
        (0, x, true),
        (0, x + 1.0, false),
        (1, y, true),
        (1, y + 1.0, false),
    ] {
        if pts.is_empty() {
            return 0.0;
        }
        let inside = |p: &Pt| {
            if keep_above {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let mut out = Vec::with_capacity(pts.len() + 2);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            let (ia, ib) = (inside(&a), inside(&b));
            if ia {
                out.push(a);
            }
            if ia != ib {
                let t = (bound - a[axis]) / (b[axis] - a[axis]);
                out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            }
        }
        pts = out;
    }
    shoelace(&pts).abs()
}

pub fn shoelace(pts: &[Pt]) -> f64 {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        / 2.0
}

/// Even-odd point in polygon (the cells are simple polygons, where it equals non-zero).
pub fn inside(poly: &[Pt], p: Pt) -> bool {
    let mut c = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            c = !c;
        }
    }
    c
}

/// The painter's-order weights of `polys` (later over earlier) on a `width` x `height` canvas,
/// each shape with its opacity (`alphas`, 1 when empty).
pub fn painter_weights(polys: &[Vec<Pt>], alphas: &[f64], (width, height): (i64, i64)) -> Weights {
    // (pixel, shape, area) for every pixel a shape touches, shapes in order.
    let mut touch: Vec<(i64, u32, f64)> = Vec::new();
    for (i, poly) in polys.iter().enumerate() {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in poly {
            x0 = x0.min(p[0]);
            y0 = y0.min(p[1]);
            x1 = x1.max(p[0]);
            y1 = y1.max(p[1]);
        }
        let xs = (x0.floor().max(0.0) as i64)..(x1.ceil().min(width as f64) as i64);
        let ys = (y0.floor().max(0.0) as i64)..(y1.ceil().min(height as f64) as i64);
        for y in ys {
            for x in xs.clone() {
                let a = pixel_area(poly, x as f64, y as f64);
                if a > 1e-9 {
                    let alpha = alphas.get(i).copied().unwrap_or(1.0);
                    touch.push((y * width + x, i as u32, a.min(1.0) * alpha));
                }
            }
        }
    }
    touch.sort_by_key(|t| t.0); // stable: shapes stay in painter's order within a pixel
    let mut out = Weights::default();
    for group in touch.chunk_by(|a, b| a.0 == b.0) {
        // From the top down: each shape shows through what lies over it.
        let mut through = 1.0f64;
        let mut rows = Vec::with_capacity(group.len());
        for &(pixel, shape, a) in group.iter().rev() {
            let w = a * through;
            through *= 1.0 - a;
            if w > 1e-7 {
                rows.push((pixel, shape, w));
            }
            if through <= 0.0 {
                break;
            }
        }
        for (pixel, shape, w) in rows.into_iter().rev() {
            out.pixel.push(pixel);
            out.shape.push(shape as i64);
            out.weight.push(w as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_of_clipped_polygons() {
        let sq = vec![[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]];
        assert!((pixel_area(&sq, 0.0, 0.0) - 0.25).abs() < 1e-12);
        // a triangle over four pixels: the areas add up to its own
        let tri = vec![[0.5, 0.2], [1.7, 0.9], [0.3, 1.8]];
        let total: f64 = (0..2)
            .flat_map(|y| (0..2).map(move |x| (x, y)))
            .map(|(x, y)| pixel_area(&tri, x as f64, y as f64))
            .sum();
        assert!((total - shoelace(&tri).abs()).abs() < 1e-12);
        // a concave chevron too
        let v = vec![[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        let total: f64 = (0..2)
            .flat_map(|y| (0..2).map(move |x| (x, y)))
            .map(|(x, y)| pixel_area(&v, x as f64, y as f64))
            .sum();
        assert!((total - 3.0).abs() < 1e-12, "{total}");
        assert!(inside(&v, [1.0, 1.5]) && !inside(&v, [1.0, 0.5]));
    }

    #[test]
    fn a_tiling_covers_every_pixel() {
        // 3x2 rect cells over a 7x5 canvas: edges fall inside pixels; where two cells share an
        // edge inside a pixel a little of the background shows (SVG's "over" per shape)
        let mut polys = Vec::new();
        let (cw, ch) = (7.0 / 3.0, 5.0 / 2.0);
        for r in 0..2 {
            for c in 0..3 {
                let (x, y) = (c as f64 * cw, r as f64 * ch);
                polys.push(vec![[x, y], [x + cw, y], [x + cw, y + ch], [x, y + ch]]);
            }
        }
        let w = painter_weights(&polys, &[], (7, 5));
        let mut sum = [0f32; 35];
        for (p, v) in w.pixel.iter().zip(&w.weight) {
            sum[*p as usize] += v;
        }
        // Edges at x = 7/3 and 14/3 and y = 5/2 fall inside pixels: a pixel with one edge keeps
        // later + earlier * (1 - later) of its colour, the rest is the background's.
        for (i, s) in sum.iter().enumerate() {
            let (x, y) = (i % 7, i / 7);
            let want = match (x, y) {
                (2, 2) | (4, 2) => None,
                (2 | 4, _) => Some(7.0 / 9.0),
                (_, 2) => Some(0.75),
                _ => Some(1.0),
            };
            if let Some(want) = want {
                assert!((s - want).abs() < 1e-6, "pixel ({x}, {y}): {s} vs {want}");
            } else {
                assert!(*s > 0.5 && *s < 0.75, "pixel ({x}, {y}): {s}");
            }
        }
    }
}
