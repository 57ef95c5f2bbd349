//! The camera move of a zoom video (nerdyrodent's `--zoom_video`, anchors §2.2): every few steps
//! the current image is zoomed about its centre, shifted and rotated, then encoded back into
//! latents so the optimization continues from the moved picture.
//!
//! Done on the device with one bicubic `grid_sampler` (PIL's LANCZOS crop-and-resize in the
//! anchor); reflection padding fills what a shift or rotation uncovers.
use tch::{Kind, Tensor};

pub use crate::settings::Move;

/// `img` `[1, 3, H, W]` in [0, 1] (any float kind) → the moved image, f32 in [0, 1].
///
/// Output pixel `p` (pixel units from the centre) shows input point `R⁻¹·p / scale − shift`,
/// computed in pixel units so rotations of non-square images keep their proportions, then
/// expressed in `grid_sampler`'s normalised coordinates (align_corners = false).
pub fn apply(img: &Tensor, m: Move) -> Tensor {
    let size = img.size();
    let (h, w) = (size[2] as f64, size[3] as f64);
    let (s, c) = m.rotate_degrees.to_radians().sin_cos();
    // Screen y points down: turning the content counterclockwise by θ samples at [[c,-s],[s,c]]·p.
    let (a, b, cc, d) = (c / m.scale, -s / m.scale, s / m.scale, c / m.scale);
    // pixel -> normalised: x_n = x / (w/2), y_n = y / (h/2)
    let theta = [
        a,
        b * h / w,
        -2.0 * m.shift.0 / w,
        cc * w / h,
        d,
        -2.0 * m.shift.1 / h,
    ];
    let x = img.to_kind(Kind::Float);
    let theta = Tensor::from_slice(&theta.map(|v| v as f32))
        .view([1, 2, 3])
        .to_device(x.device());
    let grid = Tensor::affine_grid_generator(&theta, size.as_slice(), false);
    // interpolation 2 = bicubic, padding 2 = reflection
    x.grid_sampler(&grid, 2, 2, false).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: i64, w: i64) -> Tensor {
        // value = column / w in every channel and row
        (Tensor::arange(w, (Kind::Float, tch::Device::Cpu)) / w as f64)
            .view([1, 1, 1, w])
            .expand([1, 3, h, w], false)
            .contiguous()
    }

    fn mv(scale: f64, shift: (f64, f64), rotate_degrees: f64) -> Move {
        Move {
            scale,
            shift,
            rotate_degrees,
        }
    }

    /// A fixed, busy image (no global RNG: tests run in parallel).
    fn busy(h: i64, w: i64) -> Tensor {
        ((Tensor::arange(3 * h * w, (Kind::Float, tch::Device::Cpu)) * 0.7).sin() * 0.5 + 0.5)
            .view([1, 3, h, w])
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn identity_and_whole_pixel_shift_are_exact() {
        let img = busy(8, 12);
        // Exact up to the float rounding of the sampling coordinates.
        let id = apply(&img, mv(1.0, (0.0, 0.0), 0.0));
        assert!(max_diff(&id, &img) < 1e-5, "{}", max_diff(&id, &img));
        let moved = apply(&img, mv(1.0, (3.0, -2.0), 0.0));
        // content moved 3 right and 2 up: out[y, x] = in[y + 2, x - 3]
        let inner = moved.narrow(2, 0, 6).narrow(3, 3, 9);
        let src = img.narrow(2, 2, 6).narrow(3, 0, 9);
        assert!(max_diff(&inner, &src) < 1e-5);
    }

    #[test]
    fn zoom_in_stretches_about_the_centre() {
        let (h, w) = (4, 16);
        let img = ramp(h, w);
        let out = apply(&img, mv(2.0, (0.0, 0.0), 0.0));
        // Column j (centre at x = j + 0.5 - w/2) samples input x/2, i.e. value (x/2 + w/2 - 0.5)/w.
        for j in 2..w - 2 {
            let x = j as f64 + 0.5 - w as f64 / 2.0;
            let want = (x / 2.0 + w as f64 / 2.0 - 0.5) / w as f64;
            let got = out.double_value(&[0, 0, 1, j]);
            // torch's bicubic (cubic convolution, A = -0.75) reproduces a ramp only to a few
            // hundredths of a pixel (0.004 = 0.06 px here); half a pixel off-centre or a 5% wrong
            // scale moves these columns by 0.1 px or more.
            assert!((got - want).abs() < 4e-3, "column {j}: {got} vs {want}");
        }
    }

    #[test]
    fn quarter_turn_counterclockwise() {
        let img = busy(6, 6);
        let out = apply(&img, mv(1.0, (0.0, 0.0), 90.0));
        // Counterclockwise on screen: the right column becomes the top row.
        let want = img.rot90(1, [2, 3]);
        assert!(max_diff(&out, &want) < 1e-5, "{}", max_diff(&out, &want));
    }
}
