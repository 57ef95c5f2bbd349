//! `--transparent`: the drawing has an alpha channel. Each step CLIP sees it flattened over a new
//! random background, so no background colour can stand in for a subject (pixray flattens over a
//! random grey each step; its PixelDrawer's unused code, over fractal noise of a random scale).
//! Ours is a smooth colour noise of a random scale, from 1 cell (a colour gradient) to 16, drawn
//! from the step's random stream on the host: the same on every device, and a resumed run draws
//! the same backgrounds.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Cells per side of the noise, one picked per step.
const SCALES: [i64; 5] = [1, 2, 4, 8, 16];

/// A background `[1, 3, h, w]` in [0, 1]: uniform colours at the corners of an `n x n` grid of
/// cells, bilinearly interpolated.
pub fn background(rng: &mut ChaCha8Rng, (h, w): (i64, i64), device: Device) -> Tensor {
    let n = SCALES[rng.random_range(0..SCALES.len())];
    let corners = super::drawers::uniform(rng, (3 * (n + 1) * (n + 1)) as usize);
    Tensor::from_slice(&corners)
        .view([1, 3, n + 1, n + 1])
        .to_device(device)
        .upsample_bilinear2d([h, w], true, None, None)
        .to_kind(Kind::Float)
}

/// `alpha * rgb + (1 - alpha) * background`: `rgb` `[1, 3, H, W]`, `alpha` `[1, 1, H, W]`.
pub fn flatten(rgb: &Tensor, alpha: &Tensor, background: &Tensor) -> Tensor {
    alpha * rgb + (alpha.neg() + 1.0) * background
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backgrounds_are_seeded_smooth_and_in_range() {
        let draw = |seed| background(&mut ChaCha8Rng::seed_from_u64(seed), (32, 48), Device::Cpu);
        let a = draw(3);
        assert_eq!(a.size(), [1, 3, 32, 48]);
        assert!(a.equal(&draw(3)));
        assert!(!a.equal(&draw(4)));
        for seed in 0..20 {
            let b = draw(seed);
            assert!(b.min().double_value(&[]) >= 0.0 && b.max().double_value(&[]) <= 1.0);
            // at most 16 cells across 48 pixels: neighbours differ by at most one cell's rise / 3 px
            let dx = (b.narrow(3, 1, 47) - b.narrow(3, 0, 47))
                .abs()
                .max()
                .double_value(&[]);
            assert!(dx <= 1.0 / 2.9, "seed {seed}: step {dx}");
        }
    }

    #[test]
    fn flattening_mixes_by_alpha() {
        let rgb = Tensor::from_slice(&[1f32, 0.0, 0.0]).view([1, 3, 1, 1]);
        let bg = Tensor::from_slice(&[0f32, 0.0, 1.0]).view([1, 3, 1, 1]);
        let a = Tensor::from_slice(&[0.25f32]).view([1, 1, 1, 1]);
        let v = Vec::<f32>::try_from(flatten(&rgb, &a, &bg).reshape([-1])).unwrap();
        assert_eq!(v, vec![0.25, 0.0, 0.75]);
    }
}
