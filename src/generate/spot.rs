//! Spot prompts' mask (pixray's `--spot`, `--spot_off`, `--spot_file`): which part of the image
//! each kind scores. Black (< 0.5) is the spot. The mask is stretched to the image once; each
//! step's cutouts cut it with their own geometry ([`super::cutouts::CutoutPlan::apply_masked`]), so
//! the spot follows every crop and warp, and the part outside is zeroed before the augments, as
//! pixray zeroes its pooled cutouts.
use crate::error::usage;
use crate::settings::Settings;
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// The image-space masks `[1, 3, H, W]` in {0, 1}: (spot, rest).
pub struct SpotMasks {
    pub spot: Tensor,
    pub rest: Tensor,
}

/// Pixray's default spot radii: its `spot_square.png` is a centred disc of radius 0.235 of the
/// side, its `spot_wide.png` (16:9) one of 0.3 of the height.
const SQUARE_RADIUS: f64 = 0.235;
const WIDE_RADIUS: f64 = 0.3;

/// The masks of a run with spot prompts (None without).
pub fn masks(settings: &Settings, device: Device) -> Result<Option<SpotMasks>> {
    if settings.spot.is_empty() && settings.spot_off.is_empty() {
        return Ok(None);
    }
    let (h, w) = (settings.size.height, settings.size.width);
    let spot = match &settings.spot_file {
        Some(path) => from_file(path, (h, w))?,
        None => disc((h, w)),
    };
    let spot = spot.to_device(device);
    let rest = spot.neg() + 1.0;
    Ok(Some(SpotMasks { spot, rest }))
}

/// A centred disc, 1 inside.
fn disc((h, w): (i64, i64)) -> Tensor {
    let r = if h == w {
        SQUARE_RADIUS * h as f64
    } else {
        WIDE_RADIUS * h.min(w) as f64
    };
    let ys = Tensor::arange(h, (Kind::Float, Device::Cpu)) + 0.5 - h as f64 / 2.0;
    let xs = Tensor::arange(w, (Kind::Float, Device::Cpu)) + 0.5 - w as f64 / 2.0;
    let d2 = ys.square().view([h, 1]) + xs.square().view([1, w]);
    d2.le(r * r)
        .to_kind(Kind::Float)
        .view([1, 1, h, w])
        .expand([1, 3, h, w], false)
        .contiguous()
}

/// `path` stretched to `h x w`, 1 where a channel is below 0.5 (pixray thresholds each channel).
fn from_file(path: &std::path::Path, (h, w): (i64, i64)) -> Result<Tensor> {
    let img = crate::image_io::load_rgb(path)
        .map_err(|e| usage(format!("--spot-file {}: {e:#}", path.display())))?;
    let (mw, mh) = img.dimensions();
    let (ours, theirs) = (w as f64 / h as f64, mw as f64 / mh as f64);
    if (ours / theirs - 1.0).abs() > 0.02 {
        return Err(usage(format!(
            "--spot-file {}: {mw}x{mh} has another aspect ratio than the image ({w}x{h}); \
             give a mask of the image's shape",
            path.display()
        )));
    }
    let resized = image::imageops::resize(
        &img,
        w as u32,
        h as u32,
        image::imageops::FilterType::Lanczos3,
    );
    let t = crate::image_io::rgb_to_tensor(&resized)
        .lt(0.5)
        .to_kind(Kind::Float);
    let share = t.mean(Kind::Float).double_value(&[]);
    if share == 0.0 || share == 1.0 {
        let what = if share == 0.0 { "white" } else { "black" };
        return Err(usage(format!(
            "--spot-file {}: the mask is all {what}; black (< 50 %) marks the spot, white the rest",
            path.display()
        )));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_discs_are_pixrays_sizes() {
        let sq = disc((200, 200));
        let share = sq.mean(Kind::Float).double_value(&[]);
        let want = std::f64::consts::PI * SQUARE_RADIUS * SQUARE_RADIUS;
        assert!((share - want).abs() < 0.002, "{share} vs {want}");
        let wide = disc((90, 160));
        let share = wide.mean(Kind::Float).double_value(&[]);
        let want = std::f64::consts::PI * 27.0 * 27.0 / (90.0 * 160.0);
        assert!((share - want).abs() < 0.003, "{share} vs {want}");
        // centred: the middle pixel is in, the corners out
        assert_eq!(wide.double_value(&[0, 0, 45, 80]), 1.0);
        assert_eq!(wide.double_value(&[0, 2, 0, 0]), 0.0);
    }
}
