//! Starting points for `--init` (anchors §1.7, §3.2): pixray's noise images, which the loop
//! encodes with the VQGAN, and Crowson's random codebook indices. Everything is drawn from the
//! caller's `ChaCha8Rng`, so a seed always gives the same start. Images are `[1, 3, H, W]` f32 in
//! [0, 1] on the CPU, quantised to 8 bits like the PIL images pixray builds.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::{PI, SQRT_2};
use tch::Tensor;

/// Perlin's quintic fade `6t⁵ − 15t⁴ + 10t³`.
fn fade(t: f64) -> f64 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// Adds `amplitude ×` one octave of 2-D gradient noise (`perlin_numpy.generate_perlin_noise_2d`
/// on a `side×side` field with `res×res` cells) into `out`, the top-left `h×w` of that field.
/// The `(res+1)²` gradient angles are drawn row-major whatever the crop.
fn add_octave(
    out: &mut [f64],
    (h, w): (usize, usize),
    side: usize,
    res: usize,
    amplitude: f64,
    rng: &mut ChaCha8Rng,
) {
    let angles: Vec<f64> = (0..(res + 1) * (res + 1))
        .map(|_| 2.0 * PI * rng.random::<f64>())
        .collect();
    let grad = |i: usize, j: usize| {
        let a = angles[i * (res + 1) + j];
        (a.cos(), a.sin())
    };
    let cell = side / res; // pixels per cell
    for i in 0..h {
        let (ci, fi) = (i / cell, (i % cell) as f64 / cell as f64);
        let ti = fade(fi);
        for j in 0..w {
            let (cj, fj) = (j / cell, (j % cell) as f64 / cell as f64);
            let tj = fade(fj);
            let dot = |di: usize, dj: usize| {
                let (gi, gj) = grad(ci + di, cj + dj);
                gi * (fi - di as f64) + gj * (fj - dj as f64)
            };
            let n0 = dot(0, 0) * (1.0 - ti) + ti * dot(1, 0);
            let n1 = dot(0, 1) * (1.0 - ti) + ti * dot(1, 1);
            out[i * w + j] += amplitude * SQRT_2 * ((1.0 - tj) * n0 + tj * n1);
        }
    }
}

/// Pixray's "pixels" init: per channel, fractal Perlin noise (`generate_fractal_noise_2d` with
/// 32×32 base cells, persistence ½, lacunarity 2) on a `side×side` field with side/octaves
/// 256/3, 512/4, 1024/5, 2048/6 (doubling on) picked by `max(h, w)`, cropped to `h×w`,
/// min-max normalised, then the contrast curve `n' = 1/(1 + (n/(1−n))^−2)` with
/// `n ← 0.9998·n + 0.0001`. Normalisation uses the crop's range (pixray's uses the whole field).
pub fn perlin(h: i64, w: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let (hu, wu) = (h.max(1) as usize, w.max(1) as usize);
    let (mut side, mut octaves) = (256usize, 3u32);
    while side < hu.max(wu) {
        side *= 2;
        octaves += 1;
    }
    let mut pixels = Vec::with_capacity(3 * hu * wu);
    for _ in 0..3 {
        let mut noise = vec![0.0f64; hu * wu];
        for o in 0..octaves {
            add_octave(
                &mut noise,
                (hu, wu),
                side,
                32 << o,
                0.5f64.powi(o as i32),
                rng,
            );
        }
        let lo = noise.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = noise.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        pixels.extend(noise.iter().map(|&v| {
            let n = 0.9998 * ((v - lo) / span) + 0.0001;
            let c = 1.0 / (1.0 + (n / (1.0 - n)).powi(-2));
            quantise(255.999 * c)
        }));
    }
    Tensor::from_slice(&pixels).view([1, 3, hu as i64, wu as i64])
}

/// `uint8(v) / 255` (truncation, as numpy's cast).
fn quantise(v: f64) -> f32 {
    (v.clamp(0.0, 255.0).floor() / 255.0) as f32
}

/// `numpy.linspace(start, stop, n)[k]`.
fn linspace(start: f64, stop: f64, n: usize, k: usize) -> f64 {
    if n < 2 {
        start
    } else {
        start + (stop - start) * k as f64 / (n - 1) as f64
    }
}

/// Pixray's gradient init: R ramps left→right from 0 to U{1..254}, G top→bottom from 0 to
/// U{2..254}, B top→bottom from U{0..254} to U{3..127} (drawn in that numpy argument order:
/// B start, then R, G, B stops), truncated to 8 bits.
pub fn gradient(h: i64, w: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let (hu, wu) = (h.max(1) as usize, w.max(1) as usize);
    let b_start = rng.random_range(0..255) as f64;
    let r_stop = rng.random_range(1..255) as f64;
    let g_stop = rng.random_range(2..255) as f64;
    let b_stop = rng.random_range(3..128) as f64;
    let mut pixels = Vec::with_capacity(3 * hu * wu);
    for _ in 0..hu {
        for j in 0..wu {
            pixels.push(quantise(linspace(0.0, r_stop, wu, j)));
        }
    }
    for (start, stop) in [(0.0, g_stop), (b_start, b_stop)] {
        for i in 0..hu {
            let v = quantise(linspace(start, stop, hu, i));
            pixels.extend(std::iter::repeat_n(v, wu));
        }
    }
    Tensor::from_slice(&pixels).view([1, 3, hu as i64, wu as i64])
}

/// Pixray's snow init: every channel value uniform in {0..254} (numpy `randint(0, 255)`), / 255.
/// Drawn channel-major.
pub fn snow(h: i64, w: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let (hu, wu) = (h.max(1) as usize, w.max(1) as usize);
    let pixels: Vec<f32> = (0..3 * hu * wu)
        .map(|_| rng.random_range(0u32..255) as f32 / 255.0)
        .collect();
    Tensor::from_slice(&pixels).view([1, 3, hu as i64, wu as i64])
}

/// Crowson's random codebook init: `h_tok·w_tok` indices uniform in `0..n_embed`, row-major,
/// as an `i64` tensor `[h_tok·w_tok]` (the loop does `one_hot(idx) @ codebook`).
pub fn random_codes(h_tok: i64, w_tok: i64, n_embed: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let n = n_embed.max(1);
    let codes: Vec<i64> = (0..h_tok.max(0) * w_tok.max(0))
        .map(|_| rng.random_range(0..n))
        .collect();
    Tensor::from_slice(&codes)
}
