//! The loss plot as inline SVG: one polyline per series over the logged steps, axes with ticks,
//! a legend, and a second copy of the lines over log-scaled steps (a checkbox swaps them).
//! Long runs are downsampled to at most [`MAX_POINTS`] points per series (evenly spaced, the last
//! step always kept), so a 10 000-step run's page stays small.
use super::html::esc;
use std::fmt::Write;

pub const MAX_POINTS: usize = 2000;
const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;
const COLOURS: [&str; 8] = [
    "#222222", "#e0561b", "#1b74e0", "#2a9d3a", "#9b3fd1", "#c9a200", "#0fa3a3", "#d13f7a",
];

pub struct Series {
    pub label: String,
    /// `(step, value)`, steps increasing.
    pub points: Vec<(f64, f64)>,
}

/// Indices of at most `max` points: evenly spaced, first and last included.
pub fn downsample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut out: Vec<usize> = (0..max).map(|i| i * (n - 1) / (max - 1).max(1)).collect();
    out.dedup();
    out
}

/// "Nice" tick values covering `[lo, hi]` (about 5).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push(v);
        v += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The SVG (with `id="lossplot"`); empty series give a short note instead.
pub fn svg(series: &[Series]) -> String {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(_, v)| v.is_finite())
        .collect();
    if all.is_empty() {
        return "<p class=\"muted\">No steps logged yet.</p>".into();
    }
    let (x0, x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let lx0 = x0.max(1.0).ln();
    let lx1 = x1.max(1.0).ln().max(lx0 + 1e-9);
    let slx = |x: f64| LEFT + (x.max(1.0).ln() - lx0) / (lx1 - lx0) * pw;
    let sy = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg id=\"lossplot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         style=\"background:#fff;border:1px solid #ddd\" font-size=\"11\" font-family=\"sans-serif\">"
    );
    // axes, y ticks and grid
    let _ = write!(
        out,
        "<path d=\"M{LEFT} {TOP}V{b}H{r}\" stroke=\"#888\" fill=\"none\"/>",
        b = TOP + ph,
        r = LEFT + pw
    );
    for t in ticks(y0, y1) {
        let y = sy(t);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{r}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{l}</text>",
            r = LEFT + pw,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            l = fmt_tick(t)
        );
    }
    // x ticks: linear and log variants
    for (class, hidden, xs) in [
        ("lin", "", ticks(x0, x1)),
        (
            "log",
            " display=\"none\"",
            (0..=((x1.max(1.0)).log10().floor() as i32))
                .map(|p| 10f64.powi(p))
                .filter(|v| *v >= x0.max(1.0) && *v <= x1)
                .collect(),
        ),
    ] {
        let _ = write!(out, "<g class=\"x{class}\"{hidden}>");
        for t in xs {
            let x = if class == "lin" { sx(t) } else { slx(t) };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{b}\" y2=\"{b2}\" stroke=\"#888\"/>\
                 <text x=\"{x:.1}\" y=\"{ty}\" text-anchor=\"middle\">{l}</text>",
                b = TOP + ph,
                b2 = TOP + ph + 4.0,
                ty = TOP + ph + 16.0,
                l = fmt_tick(t)
            );
        }
        let _ = write!(out, "</g>");
    }
    let _ = write!(
        out,
        "<text x=\"{cx}\" y=\"{y}\" text-anchor=\"middle\" fill=\"#555\">step</text>",
        cx = LEFT + pw / 2.0,
        y = H - 4.0
    );
    // the lines, linear then log-x
    for (class, hidden, scale) in [
        ("lin", "", &sx as &dyn Fn(f64) -> f64),
        ("log", " display=\"none\"", &slx as &dyn Fn(f64) -> f64),
    ] {
        let _ = write!(out, "<g class=\"x{class}\"{hidden}>");
        for (i, s) in series.iter().enumerate() {
            let pts: Vec<&(f64, f64)> = s.points.iter().filter(|(_, v)| v.is_finite()).collect();
            let keep = downsample(pts.len(), MAX_POINTS);
            let mut d = String::new();
            for (j, &k) in keep.iter().enumerate() {
                let (x, y) = *pts[k];
                let _ = write!(
                    d,
                    "{}{:.1} {:.1}",
                    if j == 0 { "M" } else { "L" },
                    scale(x),
                    sy(y)
                );
            }
            let _ = write!(
                out,
                "<path class=\"series\" data-points=\"{n}\" d=\"{d}\" stroke=\"{c}\" stroke-width=\"{w}\" fill=\"none\"><title>{l}</title></path>",
                n = keep.len(),
                c = COLOURS[i % COLOURS.len()],
                w = if i == 0 { 2.0 } else { 1.3 },
                l = esc(&s.label)
            );
        }
        let _ = write!(out, "</g>");
    }
    let _ = write!(out, "</svg>");
    // legend as HTML (wraps, and long prompts stay readable)
    out.push_str("<div class=\"legend\">");
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"margin-right:14px;white-space:nowrap\"><span style=\"display:inline-block;width:14px;height:3px;\
             background:{c};vertical-align:middle\"></span> {l}</span> ",
            c = COLOURS[i % COLOURS.len()],
            l = esc(&s.label)
        );
    }
    out.push_str("</div><label><input type=\"checkbox\" id=\"logx\"> log-scaled steps</label>");
    out
}

/// The few lines of script that swap the linear and log-x copies.
pub const SCRIPT: &str = "var lx=document.getElementById('logx');if(lx){lx.onchange=function(){\
document.querySelectorAll('#lossplot .xlin').forEach(function(g){g.style.display=lx.checked?'none':''});\
document.querySelectorAll('#lossplot .xlog').forEach(function(g){g.style.display=lx.checked?'':'none'});};}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_ends_and_bounds_the_count() {
        assert_eq!(downsample(5, 10), vec![0, 1, 2, 3, 4]);
        let d = downsample(10_000, 2000);
        assert_eq!(d.len(), 2000);
        assert_eq!((d[0], *d.last().unwrap()), (0, 9999));
        assert!(d.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = ticks(0.93, 1.07);
        assert!(
            t.len() >= 3 && t[0] >= 0.93 && *t.last().unwrap() <= 1.07,
            "{t:?}"
        );
    }
}
