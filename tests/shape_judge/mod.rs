//! The geometric judge of a demo-world picture (no model): is the caption's shape drawn, in its
//! colour, on its background? The rule of shared/reference/shape_judge.py, written again here.
//!
//! - Colour masks by hue, saturation and value.
//! - The largest 4-connected blob of the foreground colour: its share of all foreground pixels,
//!   its solidity (area / convex hull area, the hull over the pixel squares' corners) and its
//!   roundness `A / (π d²)`, `d` the largest distance from the centroid (pixel centres, + half a
//!   pixel): 1.00 for a circle, 0.64 for a square, 0.41 for an equilateral triangle, at any tilt.
//! - Drawn: share ≥ 50 %, area ≥ 2 % of the image, solidity ≥ 0.80, roundness nearest the
//!   caption's shape. Colours right: foreground ≥ 6 % and background ≥ 30 % of the image.
use std::f64::consts::PI;
use std::path::Path;

/// Roundness of the ideal shapes.
pub const IDEAL: [(&str, f64); 3] = [
    ("circle", 1.0),
    ("square", 2.0 / PI),
    ("triangle", 0.413_496_671_566_344), // 3√3 / (4π)
];

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub fg_share: f64,
    pub bg_share: f64,
    /// Largest blob: share of the foreground pixels, of the image, solidity, roundness.
    pub blob_share: f64,
    pub blob_area: f64,
    pub solidity: f64,
    pub roundness: f64,
    /// The ideal shape nearest the roundness ("none" without a blob).
    pub seen: &'static str,
    pub shape_drawn: bool,
    pub colours_right: bool,
}

fn hsv(p: [u8; 3]) -> (f64, f64, f64) {
    let [r, g, b] = p.map(|c| c as f64 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let v = max;
    if max == min {
        return (0.0, 0.0, v);
    }
    let s = (max - min) / max;
    let (rc, gc, bc) = (
        (max - r) / (max - min),
        (max - g) / (max - min),
        (max - b) / (max - min),
    );
    let h = if r == max {
        bc - gc
    } else if g == max {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    (((h / 6.0).rem_euclid(1.0)) * 360.0, s, v)
}

/// Whether pixel `p` has the named colour (the reference's ranges).
pub fn is_colour(p: [u8; 3], name: &str) -> bool {
    let (h, s, v) = hsv(p);
    let hue = |c: f64, w: f64| {
        let d = (h - c).abs();
        d.min(360.0 - d) < w && s > 0.45 && v > 0.35
    };
    match name {
        "red" => hue(0.0, 20.0),
        "orange" => hue(30.0, 14.0),
        "yellow" => hue(58.0, 16.0),
        "green" => hue(120.0, 40.0),
        "blue" => hue(225.0, 35.0),
        "purple" => hue(285.0, 35.0),
        "white" => s < 0.2 && v > 0.8,
        "black" => v < 0.22,
        other => panic!("not a demo-world colour: {other}"),
    }
}

/// Pixels (row, col) of the largest 4-connected component of `mask` (w × h, row-major).
fn largest_blob(mask: &[bool], w: usize, h: usize) -> Vec<(usize, usize)> {
    let mut label = vec![false; mask.len()];
    let mut best: Vec<(usize, usize)> = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] {
            continue;
        }
        label[start] = true;
        let mut stack = vec![start];
        let mut pts = Vec::new();
        while let Some(i) = stack.pop() {
            let (y, x) = (i / w, i % w);
            pts.push((y, x));
            let mut visit = |j: usize| {
                if mask[j] && !label[j] {
                    label[j] = true;
                    stack.push(j);
                }
            };
            if y + 1 < h {
                visit(i + w);
            }
            if y > 0 {
                visit(i - w);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if x > 0 {
                visit(i - 1);
            }
        }
        if pts.len() > best.len() {
            best = pts;
        }
    }
    best
}

fn cross(o: (i64, i64), a: (i64, i64), b: (i64, i64)) -> i64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Area of the convex hull of the pixel squares (monotone chain over their corners).
fn hull_area(pts: &[(usize, usize)]) -> f64 {
    let mut c: Vec<(i64, i64)> = pts
        .iter()
        .flat_map(|&(y, x)| {
            let (y, x) = (y as i64, x as i64);
            [(y, x), (y, x + 1), (y + 1, x), (y + 1, x + 1)]
        })
        .collect();
    c.sort_unstable();
    c.dedup();
    let half = |points: &mut dyn Iterator<Item = (i64, i64)>| {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for p in points {
            while out.len() >= 2 && cross(out[out.len() - 2], out[out.len() - 1], p) <= 0 {
                out.pop();
            }
            out.push(p);
        }
        out.pop();
        out
    };
    let mut hull = half(&mut c.iter().copied());
    hull.extend(half(&mut c.iter().rev().copied()));
    let n = hull.len();
    let twice: i64 = (0..n)
        .map(|i| {
            let (y0, x0) = hull[i];
            let (y1, x1) = hull[(i + 1) % n];
            x0 * y1 - x1 * y0
        })
        .sum();
    twice.abs() as f64 / 2.0
}

/// Judges the RGB pixels `img` (w × h) against a caption's colours and shape.
pub fn judge_pixels(img: &image::RgbImage, fg: &str, shape: &str, bg: &str) -> Verdict {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    let fm: Vec<bool> = px.iter().map(|&p| is_colour(p, fg)).collect();
    let total = px.len() as f64;
    let fg_n = fm.iter().filter(|&&m| m).count() as f64;
    let bg_n = px.iter().filter(|&&p| is_colour(p, bg)).count() as f64;
    let blob = largest_blob(&fm, w, h);
    let mut v = Verdict {
        fg_share: fg_n / total,
        bg_share: bg_n / total,
        blob_share: 0.0,
        blob_area: 0.0,
        solidity: 0.0,
        roundness: 0.0,
        seen: "none",
        shape_drawn: false,
        colours_right: false,
    };
    if blob.len() >= 4 {
        let a = blob.len() as f64;
        let cy = blob.iter().map(|p| p.0 as f64 + 0.5).sum::<f64>() / a;
        let cx = blob.iter().map(|p| p.1 as f64 + 0.5).sum::<f64>() / a;
        let d = blob
            .iter()
            .map(|p| ((p.0 as f64 + 0.5 - cy).powi(2) + (p.1 as f64 + 0.5 - cx).powi(2)).sqrt())
            .fold(0.0, f64::max)
            + 0.5;
        v.blob_share = a / fg_n;
        v.blob_area = a / total;
        v.solidity = a / hull_area(&blob).max(1.0);
        v.roundness = a / (PI * d * d);
        v.seen = IDEAL
            .iter()
            .min_by(|x, y| {
                (x.1 - v.roundness)
                    .abs()
                    .total_cmp(&(y.1 - v.roundness).abs())
            })
            .map(|x| x.0)
            .unwrap_or("none");
    }
    v.shape_drawn =
        v.blob_share >= 0.5 && v.blob_area >= 0.02 && v.solidity >= 0.80 && v.seen == shape;
    v.colours_right = v.fg_share >= 0.06 && v.bg_share >= 0.30;
    v
}

pub fn judge(png: &Path, fg: &str, shape: &str, bg: &str) -> Verdict {
    let img = image::open(png)
        .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
        .to_rgb8();
    judge_pixels(&img, fg, shape, bg)
}

/// A world picture (the training renders' geometry, 2×2 supersampled): one shape of "radius" `r`
/// (fraction of the side) centred at (`cx`, `cy`), tilted by `tilt` radians.
#[allow(clippy::too_many_arguments)]
pub fn render(
    n: u32,
    fg: [u8; 3],
    shape: &str,
    bg: [u8; 3],
    r: f64,
    (cx, cy): (f64, f64),
    tilt: f64,
) -> image::RgbImage {
    let inside = |u: f64, v: f64| {
        let (c, s) = (tilt.cos(), tilt.sin());
        let (u, v) = (c * u + s * v, -s * u + c * v);
        match shape {
            "circle" => u * u + v * v < r * r,
            "square" => u.abs() < 0.85 * r && v.abs() < 0.85 * r,
            _ => {
                // equilateral, apex up, circumradius 1.25 r (image y points down)
                let big_r = 1.25 * r;
                (0..3).all(|k| {
                    let a = (90.0 + 120.0 * k as f64).to_radians();
                    u * a.cos() + v * a.sin() < 0.5 * big_r
                })
            }
        }
    };
    image::RgbImage::from_fn(n, n, |x, y| {
        let mut acc = [0.0f64; 3];
        for (dy, dx) in [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)] {
            let u = (x as f64 + dx) / n as f64 - cx;
            let v = (y as f64 + dy) / n as f64 - cy;
            let c = if inside(u, v) { fg } else { bg };
            for i in 0..3 {
                acc[i] += c[i] as f64 / 4.0;
            }
        }
        image::Rgb(acc.map(|c| c.round() as u8))
    })
}
