//! `vqclip reconstruct`: an image through encoder, codebook and decoder, to check a VQGAN file.
//! Prints codebook usage and PSNR on stdout.
use crate::cli::ReconstructArgs;
use crate::device::parse_device;
use crate::error::usage;
use crate::image_io::{load_rgb, rgb_to_tensor, save_png, tensor_to_rgb};
use crate::models::vqgan::{Vqgan, resolve_vqgan};
use anyhow::{Context, Result, bail};
use tch::{Kind, Tensor};

pub fn run(args: &ReconstructArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(usage(format!(
            "{} already exists (pass --force to overwrite it)",
            args.out.display()
        )));
    }
    let device = parse_device(&args.device)?;
    let weights = resolve_vqgan(&args.vqgan)?;
    let img = load_rgb(&args.image)?;
    let vqgan = Vqgan::load(&weights, device)?;
    let f = vqgan.downsample_factor();

    let x = rgb_to_tensor(&img);
    let (_, _, h, w) = x.size4()?;
    let x = center_crop(&x, f).with_context(|| {
        format!(
            "{} ({w}x{h}) is too small for this VQGAN",
            args.image.display()
        )
    })?;
    let (_, _, ch, cw) = x.size4()?;
    if (ch, cw) != (h, w) {
        eprintln!("note: cropped {w}x{h} to {cw}x{ch} (sides must be multiples of {f})");
    }

    let (y, indices) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
        let z = vqgan.encode(&(x.to_device(device) * 2.0 - 1.0))?;
        let (z_q, indices) = vqgan.quantize_encoded(&z)?;
        let y = ((vqgan.decode(&z_q) + 1.0) / 2.0).clamp(0.0, 1.0);
        Ok((y.to_device(tch::Device::Cpu), indices))
    })?;
    let out = tensor_to_rgb(&y)?;
    save_png(&args.out, &image::DynamicImage::ImageRgb8(out.clone()), &[])?;

    let used = indices.unique_dim(0, false, false, false).0.size()[0];
    let n = vqgan.n_embed();
    println!(
        "codebook usage: {used}/{n} ({:.1}%)",
        100.0 * used as f64 / n as f64
    );
    println!("PSNR: {:.2} dB", psnr(&x, &rgb_to_tensor(&out)));
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// Center crop `[b, c, H, W]` to the largest multiples of `f` (an odd margin leaves the extra
/// pixel on the right/bottom).
fn center_crop(x: &Tensor, f: i64) -> Result<Tensor> {
    let (_, _, h, w) = x.size4()?;
    let (ch, cw) = (h / f * f, w / f * f);
    if ch == 0 || cw == 0 {
        bail!("both sides must be at least {f} pixels");
    }
    Ok(x.narrow(2, (h - ch) / 2, ch).narrow(3, (w - cw) / 2, cw))
}

/// Peak signal-to-noise ratio of two images in [0, 1], in dB (infinite when equal).
fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    if mse == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * mse.log10()
    }
}
