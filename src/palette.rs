//! `--palette`: a limited set of colours the image is drawn in (pixray's `--palette` with its
//! `lookup` filter, anchors §1.10).
//!
//! The spec is a comma list of items; each item is one of
//! - a colour: `#rgb`, `#rrggbb`, `(r+g+b)` with 0–255 channels (pixray's form), or a name
//!   (`black`, `white`, `red`, `green`, `blue`, `yellow`, `cyan`, `magenta`, `gray`/`grey`, `orange`,
//!   `purple`, `brown`, `pink`, `navy`, `teal`, `olive`, `maroon`, `lime`, `silver`, `gold`, `indigo`,
//!   `beige`);
//! - a ramp `a->b[->c...]`, with an optional `\N` for its number of steps (default 16, pixray's);
//! - a built-in palette: `pico8` (16), `gameboy` (4 greens), `cga` (4), `grayscale` (16 steps),
//!   `sepia` (8 steps).
//!
//! Unlike pixray, a bare colour is that one colour (pixray turns `red` into a 16-step ramp from
//! black; write `black->red` for that). Image palettes (`@file.png`) are not read.
use crate::error::usage;
use anyhow::Result;
use tch::{Kind, Tensor};

pub type Rgb = [u8; 3];

/// Steps of a ramp without `\N`.
pub const DEFAULT_RAMP_STEPS: usize = 16;
/// Most colours in a palette.
pub const MAX_COLOURS: usize = 1024;

const NAMED: &[(&str, Rgb)] = &[
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("red", [255, 0, 0]),
    ("green", [0, 128, 0]),
    ("lime", [0, 255, 0]),
    ("blue", [0, 0, 255]),
    ("yellow", [255, 255, 0]),
    ("cyan", [0, 255, 255]),
    ("magenta", [255, 0, 255]),
    ("gray", [128, 128, 128]),
    ("grey", [128, 128, 128]),
    ("silver", [192, 192, 192]),
    ("orange", [255, 165, 0]),
    ("purple", [128, 0, 128]),
    ("brown", [165, 42, 42]),
    ("pink", [255, 192, 203]),
    ("navy", [0, 0, 128]),
    ("teal", [0, 128, 128]),
    ("olive", [128, 128, 0]),
    ("maroon", [128, 0, 0]),
    ("gold", [255, 215, 0]),
    ("indigo", [75, 0, 130]),
    ("beige", [245, 245, 220]),
];

/// PICO-8's 16 colours.
/// pixray's ColorLookup default table (16 entries, one repeated), for `--filters lookup` without
/// a `--palette`.
pub const PIXRAY_LOOKUP: &[Rgb] = &[
    [0, 0, 0],
    [255, 255, 255],
    [63, 40, 50],
    [38, 43, 68],
    [90, 105, 136],
    [139, 155, 180],
    [25, 60, 62],
    [38, 92, 66],
    [62, 137, 72],
    [99, 199, 77],
    [254, 231, 97],
    [254, 174, 52],
    [247, 118, 34],
    [184, 111, 80],
    [116, 63, 57],
];

const PICO8: &[Rgb] = &[
    [0, 0, 0],
    [29, 43, 83],
    [126, 37, 83],
    [0, 135, 81],
    [171, 82, 54],
    [95, 87, 79],
    [194, 195, 199],
    [255, 241, 232],
    [255, 0, 77],
    [255, 163, 0],
    [255, 236, 39],
    [0, 228, 54],
    [41, 173, 255],
    [131, 118, 156],
    [255, 119, 168],
    [255, 204, 170],
];
/// The original Game Boy's four greens.
const GAMEBOY: &[Rgb] = &[[15, 56, 15], [48, 98, 48], [139, 172, 15], [155, 188, 15]];
/// CGA palette 1, high intensity.
const CGA: &[Rgb] = &[[0, 0, 0], [85, 255, 255], [255, 85, 255], [255, 255, 255]];

fn bad(spec: &str, item: &str, why: &str) -> anyhow::Error {
    usage(format!(
        "--palette '{spec}': {why} in '{item}' (colours are #rrggbb, #rgb, (r+g+b) or a name; \
         ramps a->b\\N; built-ins pico8, gameboy, cga, grayscale, sepia)"
    ))
}

fn colour(spec: &str, item: &str) -> Result<Rgb> {
    let t = item.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(spec, item, "not a hex colour"))?;
        return match digits.as_slice() {
            [r, g, b] => Ok([r * 17, g * 17, b * 17]),
            [r1, r0, g1, g0, b1, b0] => Ok([r1 * 16 + r0, g1 * 16 + g0, b1 * 16 + b0]),
            _ => Err(bad(spec, item, "a hex colour needs 3 or 6 digits")),
        };
    }
    if let Some(inner) = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        let parts: Vec<&str> = inner.split('+').collect();
        if parts.len() != 3 {
            return Err(bad(spec, item, "(r+g+b) needs three channels"));
        }
        let mut rgb = [0u8; 3];
        for (c, p) in rgb.iter_mut().zip(parts) {
            *c = p
                .trim()
                .parse::<u8>()
                .map_err(|_| bad(spec, item, "channels must be 0 to 255"))?;
        }
        return Ok(rgb);
    }
    NAMED
        .iter()
        .find(|(n, _)| *n == t)
        .map(|(_, c)| *c)
        .ok_or_else(|| bad(spec, item, "unknown colour"))
}

/// `n` colours evenly spaced along the polyline through `stops` (rounded to 8 bits).
fn ramp(stops: &[Rgb], n: usize) -> Vec<Rgb> {
    if n == 1 {
        return vec![stops[0]];
    }
    let segments = (stops.len() - 1) as f64;
    (0..n)
        .map(|i| {
            let pos = i as f64 / (n - 1) as f64 * segments;
            let k = (pos.floor() as usize).min(stops.len() - 2);
            let f = pos - k as f64;
            let (a, b) = (stops[k], stops[k + 1]);
            std::array::from_fn(|c| (a[c] as f64 + (b[c] as f64 - a[c] as f64) * f).round() as u8)
        })
        .collect()
}

/// Parses a palette spec (see the module doc) into its colours, duplicates removed, in order.
pub fn parse(spec: &str) -> Result<Vec<Rgb>> {
    let mut out: Vec<Rgb> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = item.to_ascii_lowercase();
        let (body, steps) = match lower.rsplit_once('\\') {
            Some((b, n)) => {
                let n: usize = n
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| bad(spec, item, "\\N needs a number of steps from 1 to 256"))?;
                (b.trim().to_string(), Some(n))
            }
            None => (lower.clone(), None),
        };
        let colours: Vec<Rgb> = match body.as_str() {
            "pico8" => PICO8.to_vec(),
            "gameboy" => GAMEBOY.to_vec(),
            "cga" => CGA.to_vec(),
            "grayscale" | "greyscale" => ramp(
                &[[0, 0, 0], [255, 255, 255]],
                steps.unwrap_or(DEFAULT_RAMP_STEPS),
            ),
            "sepia" => ramp(
                &[[20, 12, 6], [112, 66, 20], [250, 235, 205]],
                steps.unwrap_or(8),
            ),
            _ if body.contains("->") => {
                let stops: Vec<Rgb> = body
                    .split("->")
                    .map(|c| colour(spec, c))
                    .collect::<Result<_>>()?;
                if stops.len() < 2 {
                    return Err(bad(spec, item, "a ramp needs two colours"));
                }
                ramp(&stops, steps.unwrap_or(DEFAULT_RAMP_STEPS))
            }
            _ => {
                if steps.is_some() {
                    return Err(bad(spec, item, "\\N applies to ramps and grayscale/sepia"));
                }
                vec![colour(spec, &body)?]
            }
        };
        for c in colours {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err(usage(format!("--palette '{spec}': no colours")));
    }
    if out.len() > MAX_COLOURS {
        return Err(usage(format!(
            "--palette '{spec}': {} colours, at most {MAX_COLOURS}",
            out.len()
        )));
    }
    Ok(out)
}

/// The palette as a `[K, 3]` f32 tensor in [0, 1].
pub fn to_tensor(colours: &[Rgb], device: tch::Device) -> Tensor {
    let flat: Vec<f32> = colours
        .iter()
        .flat_map(|c| c.map(|v| v as f32 / 255.0))
        .collect();
    Tensor::from_slice(&flat)
        .view([colours.len() as i64, 3])
        .to_device(device)
}

/// Each pixel of `img` `[1, 3, H, W]` (f32, [0, 1]) replaced by its nearest palette colour
/// (Euclidean RGB distance); `palette` `[K, 3]`. No gradient.
pub fn nearest(img: &Tensor, palette: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let size = img.size();
        let (h, w) = (size[2], size[3]);
        let pixels = img.to_kind(Kind::Float).view([3, h * w]).transpose(0, 1); // [HW, 3]
        // ‖p − c‖² = ‖p‖² − 2 p·c + ‖c‖²; ‖p‖² is the same for every c.
        let score = palette
            .square()
            .sum_dim_intlist(&[1i64][..], false, None)
            .unsqueeze(0)
            - pixels.matmul(&palette.transpose(0, 1)) * 2.0; // [HW, K]
        let idx = score.argmin(1, false);
        palette
            .index_select(0, &idx)
            .transpose(0, 1)
            .reshape([1, 3, h, w])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_ramps_and_builtins() {
        assert_eq!(
            parse("#ff8000, #0f0, (1+2+3), navy").unwrap(),
            [[255, 128, 0], [0, 255, 0], [1, 2, 3], [0, 0, 128]]
        );
        assert_eq!(
            parse("black->white\\3").unwrap(),
            [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
        );
        assert_eq!(
            parse("red->black->blue\\5").unwrap(),
            [
                [255, 0, 0],
                [128, 0, 0],
                [0, 0, 0],
                [0, 0, 128],
                [0, 0, 255]
            ]
        );
        assert_eq!(parse("pico8").unwrap().len(), 16);
        assert_eq!(parse("gameboy, black").unwrap().len(), 5);
        assert_eq!(parse("grayscale").unwrap().len(), DEFAULT_RAMP_STEPS);
        // duplicates collapse
        assert_eq!(parse("red, #f00, (255+0+0)").unwrap(), [[255, 0, 0]]);
        for bad in [
            "",
            "#12",
            "#gg0000",
            "(1+2)",
            "(300+0+0)",
            "mauve",
            "red\\4",
            "a->b",
            "black->white\\0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nearest_picks_the_closest_colour() {
        let pal = to_tensor(&[[0, 0, 0], [255, 255, 255], [255, 0, 0]], tch::Device::Cpu);
        let img = Tensor::from_slice(&[
            0.1f32, 0.9, 0.8, 0.45, // R
            0.1, 0.9, 0.1, 0.45, // G
            0.1, 0.9, 0.2, 0.45, // B
        ])
        .view([1, 3, 1, 4]);
        let q = nearest(&img, &pal);
        let got: Vec<f32> = Vec::try_from(q.flatten(0, -1)).unwrap();
        assert_eq!(
            got,
            [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
    }
}
