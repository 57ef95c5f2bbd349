//! Images in and out: the only module that knows the `image` crate's pixel types.
use crate::error::usage;
use anyhow::{Context, Result, bail};
use image::RgbImage;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Reads any supported image file as 8-bit RGB (alpha dropped, greyscale expanded).
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    Ok(load_image(path)?.to_rgb8())
}

/// Reads any supported image file as decoded, its header's size checked first.
pub fn load_image(path: &Path) -> Result<image::DynamicImage> {
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?;
    if reader.format().is_none() {
        bail!(
            "{} is not an image (png, jpeg, webp, gif, bmp or tiff)",
            path.display()
        );
    }
    // The header's size is checked before anything is decoded: a 50 kB PNG can claim 100000x100000 pixels.
    let unreadable = |e: image::ImageError| {
        // Some decoder errors span lines; a user's error is one line.
        let msg = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        anyhow::anyhow!("{} is not a readable image: {msg}", path.display())
    };
    let decoder = reader.into_decoder().map_err(unreadable)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    check_image_size(path, w, h)?;
    image::DynamicImage::from_decoder(decoder).map_err(unreadable)
}

/// Reads an image as 8-bit RGB with any alpha composited over white, as a viewer shows it (a
/// `--transparent` run's frames in a video). [`load_rgb`] drops alpha instead, as PIL's
/// `convert("RGB")` does for the anchors' init images and CLIP inputs.
pub fn load_rgb_on_white(path: &Path) -> Result<RgbImage> {
    let img = load_image(path)?;
    if !img.color().has_alpha() {
        return Ok(img.to_rgb8());
    }
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            // rounded a/255 * v + (1 - a/255) * 255
            o[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    Ok(out)
}

/// Largest image read, in pixels (8192x8192; its RGBA decode is 256 MiB).
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// Refuses images larger than [`MAX_IMAGE_PIXELS`] or with an empty side, from their header size.
pub fn check_image_size(path: &Path, w: u32, h: u32) -> Result<()> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        bail!("{} has no pixels ({w}x{h})", path.display());
    }
    if pixels > MAX_IMAGE_PIXELS {
        bail!(
            "{} is {w}x{h} pixels ({} megapixels); vqclip reads images up to {} megapixels (8192x8192): \
             scale it down first",
            path.display(),
            pixels / 1_000_000,
            MAX_IMAGE_PIXELS / 1_000_000
        );
    }
    Ok(())
}

/// `[1, 3, H, W]` f32 in [0, 1] on the CPU.
pub fn rgb_to_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = img.dimensions();
    Tensor::from_slice(img.as_raw())
        .view([h as i64, w as i64, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0
}

/// An image file as RGB stretched to `w`x`h` with `filter` (kept as it is when it has that size
/// already), `[1, 3, h, w]` f32 in [0, 1] on the CPU: what pixray's `resize((W, H))` gives.
pub fn load_stretched(
    path: &Path,
    w: u32,
    h: u32,
    filter: image::imageops::FilterType,
) -> Result<Tensor> {
    let img = load_rgb(path)?;
    if img.dimensions() == (w, h) {
        return Ok(rgb_to_tensor(&img));
    }
    Ok(rgb_to_tensor(&image::imageops::resize(&img, w, h, filter)))
}

/// From `[1, 3, H, W]` or `[3, H, W]` in [0, 1] (clamped) to 8-bit RGB by rounding.
pub fn tensor_to_rgb(t: &Tensor) -> Result<RgbImage> {
    let (w, h, buf) = tensor_bytes(t, 3)?;
    RgbImage::from_raw(w, h, buf).context("image buffer size mismatch")
}

/// From `[1, 4, H, W]` in [0, 1] (straight alpha) to 8-bit RGBA by rounding.
pub fn tensor_to_rgba(t: &Tensor) -> Result<image::RgbaImage> {
    let (w, h, buf) = tensor_bytes(t, 4)?;
    image::RgbaImage::from_raw(w, h, buf).context("image buffer size mismatch")
}

/// `[1, C, H, W]` or `[C, H, W]` in [0, 1] (clamped) as interleaved bytes, rounded: (W, H, bytes).
fn tensor_bytes(t: &Tensor, channels: i64) -> Result<(u32, u32, Vec<u8>)> {
    let t = if t.dim() == 4 {
        t.get(0)
    } else {
        t.shallow_clone()
    };
    let (c, h, w) = t
        .size3()
        .with_context(|| format!("image tensor must be [{channels}, H, W]"))?;
    if c != channels {
        bail!("image tensor has {c} channels, expected {channels}");
    }
    let bytes = (t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(0.0, 1.0)
        * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous();
    let mut buf = vec![0u8; (h * w * c) as usize];
    let n = buf.len();
    bytes.copy_data(&mut buf, n);
    Ok((w as u32, h as u32, buf))
}

/// A tensor image `[1, 3 or 4, H, W]` as 8-bit RGB or RGBA.
pub fn tensor_to_image(t: &Tensor) -> Result<image::DynamicImage> {
    let channels = t.size().get(t.dim().saturating_sub(3)).copied();
    Ok(if channels == Some(4) {
        image::DynamicImage::ImageRgba8(tensor_to_rgba(t)?)
    } else {
        image::DynamicImage::ImageRgb8(tensor_to_rgb(t)?)
    })
}

/// Writes a PNG (8-bit RGB or RGBA) with `iTXt` chunks (key, value) so settings travel with the
/// image.
pub fn save_png(path: &Path, img: &image::DynamicImage, text: &[(&str, &str)]) -> Result<()> {
    let (color, raw) = match img {
        image::DynamicImage::ImageRgb8(i) => (png::ColorType::Rgb, i.as_raw()),
        image::DynamicImage::ImageRgba8(i) => (png::ColorType::Rgba, i.as_raw()),
        _ => bail!("cannot write {}: not 8-bit RGB or RGBA", path.display()),
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), img.width(), img.height());
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    for (k, v) in text {
        // iTXt keeps UTF-8 prompts intact (tEXt is Latin-1 only).
        enc.add_itxt_chunk(k.to_string(), v.to_string())
            .with_context(|| format!("cannot add PNG text {k}"))?;
    }
    let mut writer = enc
        .write_header()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .write_image_data(raw)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot finish {}", path.display()))?;
    Ok(())
}

/// The text a vqclip image carries: a PNG's text chunks, or a vqclip SVG's metadata.
pub fn read_image_text(path: &Path) -> Result<Vec<(String, String)>> {
    let mut head = [0u8; 512];
    let n = {
        use std::io::Read;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        f.read(&mut head)
            .with_context(|| format!("cannot read {}", path.display()))?
    };
    if crate::generate::drawers::vector::svg::is_svg(&head[..n]) {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        return crate::generate::drawers::vector::svg::read_text(&bytes)
            .with_context(|| format!("{}: unreadable SVG", path.display()));
    }
    read_png_text(path)
}

/// Reads the text chunks (tEXt, zTXt, iTXt) of a PNG.
pub fn read_png_text(path: &Path) -> Result<Vec<(String, String)>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a readable PNG", path.display()))?;
    let info = reader.info();
    let mut out = Vec::new();
    for c in &info.uncompressed_latin1_text {
        out.push((c.keyword.clone(), c.text.clone()));
    }
    for c in &info.compressed_latin1_text {
        if let Ok(t) = c.get_text() {
            out.push((c.keyword.clone(), t));
        }
    }
    for c in &info.utf8_text {
        if let Ok(t) = c.get_text() {
            out.push((c.keyword.clone(), t));
        }
    }
    Ok(out)
}

/// Resizes to cover `w`x`h` (Lanczos) and center-crops, keeping the aspect ratio.
pub fn resize_cover(img: &image::RgbImage, w: u32, h: u32) -> image::RgbImage {
    let (iw, ih) = img.dimensions();
    if (iw, ih) == (w, h) {
        return img.clone();
    }
    let scale = (w as f64 / iw as f64).max(h as f64 / ih as f64);
    let nw = ((iw as f64 * scale).round() as u32).max(w);
    let nh = ((ih as f64 * scale).round() as u32).max(h);
    let resized = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Lanczos3);
    image::imageops::crop_imm(&resized, (nw - w) / 2, (nh - h) / 2, w, h).to_image()
}

/// The frames of `dir` (`--style-frames DIR`): its image files (not subfolders), sorted by name.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        usage(format!(
            "--style-frames {}: cannot read the folder: {e}",
            dir.display()
        ))
    })?;
    let mut frames: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && crate::clip_tasks::scan::is_image_path(p))
        .collect();
    frames.sort();
    if frames.is_empty() {
        return Err(usage(format!(
            "--style-frames {}: no images (png, jpg, webp, gif, bmp, tiff) in that folder",
            dir.display()
        )));
    }
    Ok(frames)
}
