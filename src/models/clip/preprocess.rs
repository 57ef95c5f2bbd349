//! OpenAI's image preprocessing (`clip._transform`): Resize(res, bicubic) of the shorter side,
//! CenterCrop(res), ToTensor, Normalize.
//!
//! torchvision resizes a PIL image with PIL's own resampler, so it is ported here on 8-bit pixels
//! (two separable passes, horizontal then vertical, fixed-point coefficients, each pass rounded
//! and clipped to u8) to give the same bytes, not just close floats.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/clip.py (`_transform`),
//! https://github.com/python-pillow/Pillow/blob/main/src/libImaging/Resample.c,
//! https://github.com/pytorch/vision/blob/main/torchvision/transforms/functional.py (`resize`, `center_crop`).
use image::RgbImage;
use tch::Tensor;

/// `_transform(res)(img)` -> `[1, 3, res, res]` f32, CLIP-normalized, on the CPU.
pub fn preprocess_image(img: &RgbImage, res: i64) -> Tensor {
    let res = res.max(1) as u32;
    let (w, h) = img.dimensions();
    let resized = match resized_size(w, h, res) {
        Some((nw, nh)) if (nw, nh) != (w, h) => resize_bicubic(img, nw, nh),
        _ => img.clone(),
    };
    let cropped = center_crop(&resized, res);
    super::normalize(&crate::image_io::rgb_to_tensor(&cropped))
}

/// torchvision's `_compute_resized_output_size` for an int size: the shorter side becomes `res`,
/// the longer `int(res * long / short)`.
fn resized_size(w: u32, h: u32, res: u32) -> Option<(u32, u32)> {
    if w == 0 || h == 0 {
        return None;
    }
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (res as f64 * long as f64 / short as f64) as u32;
    Some(if w <= h {
        (res, new_long)
    } else {
        (new_long, res)
    })
}

/// torchvision `center_crop`: offsets `int(round((size - crop) / 2))` (Python rounds half to even).
/// Pads with black where the image is smaller, as torchvision does.
fn center_crop(img: &RgbImage, res: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if (w, h) == (res, res) {
        return img.clone();
    }
    let offset = |size: u32| -> i64 { ((size as f64 - res as f64) / 2.0).round_ties_even() as i64 };
    let (left, top) = (offset(w), offset(h));
    RgbImage::from_fn(res, res, |x, y| {
        let (sx, sy) = (x as i64 + left, y as i64 + top);
        if sx < 0 || sy < 0 || sx >= w as i64 || sy >= h as i64 {
            image::Rgb([0, 0, 0])
        } else {
            *img.get_pixel(sx as u32, sy as u32)
        }
    })
}

/// PIL's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL `Image.resize(size, Image.BICUBIC)` (antialiased: support scales with the reduction).
pub fn resize_bicubic(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if out_w == 0 || out_h == 0 || w == 0 || h == 0 {
        return RgbImage::new(out_w, out_h);
    }
    let horiz = Coeffs::new(w, out_w);
    let vert = Coeffs::new(h, out_h);
    let src: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    // rows of the source that the vertical pass reads
    let first = vert.bounds[0].0;
    let last = vert.bounds.last().map_or(h as usize, |&(min, n)| min + n);
    let (mut buf, mut buf_w, mut buf_h, mut row0) = (src, w as usize, h as usize, 0usize);
    if out_w != w {
        let rows = last - first;
        let mut tmp = vec![[0u8; 3]; out_w as usize * rows];
        for y in 0..rows {
            let row = &buf[(y + first) * buf_w..(y + first + 1) * buf_w];
            for (x, &(min, n)) in horiz.bounds.iter().enumerate() {
                let k = &horiz.k[x * horiz.ksize..x * horiz.ksize + n];
                tmp[y * out_w as usize + x] = convolve(k, |i| row[min + i]);
            }
        }
        (buf, buf_w, buf_h, row0) = (tmp, out_w as usize, rows, first);
    }
    if out_h != h {
        let mut out = vec![[0u8; 3]; buf_w * out_h as usize];
        for (y, &(min, n)) in vert.bounds.iter().enumerate() {
            let k = &vert.k[y * vert.ksize..y * vert.ksize + n];
            for x in 0..buf_w {
                out[y * buf_w + x] = convolve(k, |i| buf[(min - row0 + i) * buf_w + x]);
            }
        }
        (buf, buf_h) = (out, out_h as usize);
    }
    let raw: Vec<u8> = buf.into_iter().flatten().collect();
    // the buffer is buf_w * buf_h pixels by construction
    RgbImage::from_raw(buf_w as u32, buf_h as u32, raw)
        .unwrap_or_else(|| RgbImage::new(out_w, out_h))
}

/// Fixed-point dot product of one output pixel, with PIL's rounding and clipping.
fn convolve(k: &[i32], px: impl Fn(usize) -> [u8; 3]) -> [u8; 3] {
    let mut ss = [1i64 << (PRECISION_BITS - 1); 3];
    for (i, &c) in k.iter().enumerate() {
        let p = px(i);
        for ch in 0..3 {
            ss[ch] += p[ch] as i64 * c as i64;
        }
    }
    ss.map(clip8)
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis.
struct Coeffs {
    ksize: usize,
    /// (first input index, number of taps) per output index
    bounds: Vec<(usize, usize)>,
    k: Vec<i32>,
}

impl Coeffs {
    fn new(in_size: u32, out_size: u32) -> Coeffs {
        const SUPPORT: f64 = 2.0;
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size as usize);
        let mut k = vec![0i32; out_size as usize * ksize];
        for xx in 0..out_size as usize {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C casts truncate toward zero
            let xmin = ((center - support + 0.5).trunc() as i64).max(0);
            let xmax = ((center + support + 0.5).trunc() as i64).min(in_size as i64);
            let n = (xmax - xmin).max(0) as usize;
            let w: Vec<f64> = (0..n)
                .map(|x| bicubic_filter((x as f64 + xmin as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            for (x, wx) in w.iter().enumerate() {
                let v = if total != 0.0 { wx / total } else { *wx };
                let fixed = v * (1i64 << PRECISION_BITS) as f64;
                k[xx * ksize + x] = if v < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            bounds.push((xmin as usize, n.min(ksize)));
        }
        Coeffs { ksize, bounds, k }
    }
}
