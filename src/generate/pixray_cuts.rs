//! `--cut-method pixray`: pixray's MakeCutouts (anchors §3.3, `pixray.py:MakeCutouts`), as one
//! batched warp of the pooled image.
//!
//! Pixray pools the whole render to `s×s`, stretches that square back to the render's aspect
//! ratio (`R`, `s·max(a,1)` × `s·max(1/a,1)` for `a = W/H`), then sends 60 % of the cutouts
//! through "zoom" augments and 40 % through "wide" ones:
//! - zoom: perspective (distortion 0.4, p 0.7) on `R`, then a random resized crop of `R`
//!   (area 25–95 %, aspect 0.85–1.2) resampled to `s×s`, then hue/saturation jitter (p 0.8);
//! - wide: the whole of `R` scaled to fit the square (scale 0.95 for square images, U(0.9, 1)/a
//!   otherwise, with a random offset along the short side), the centre `s×s` kept, then
//!   perspective (0.2, p 0.7) and jitter (p 0.8); what lies outside the image is a random grey;
//! - then noise `U(0, 0.1)·N(0, 1)` per cutout.
//!
//! Every geometric step is a projective map, so each cutout's steps compose into one sampling
//! homography from output to pooled-square coordinates and all cutouts are warped by one
//! `grid_sampler` call. Differences from pixray: the zoom group's padding is the same grey as the
//! wide group's (pixray alternates reflection and border), a crop that does not fit is clamped
//! (kornia retries, then centre-crops), and pixray's min-max rescaling of the whole cutout batch
//! before CLIP is not done (no other anchor does it).
use super::augments::{
    AugmentPlan, IDENTITY, Mat3, Upload, color_matrix, invert3, matmul3, perspective_matrix_with,
    positive_w, randn_seeded, sampling_grid, uniform,
};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind};

pub const ZOOM_SHARE: f64 = 0.6;
pub const ZOOM_PERSPECTIVE: f64 = 0.4;
pub const WIDE_PERSPECTIVE: f64 = 0.2;
pub const PERSPECTIVE_P: f64 = 0.7;
pub const CROP_AREA: (f64, f64) = (0.25, 0.95);
pub const CROP_RATIO: (f64, f64) = (0.85, 1.2);
pub const JITTER_P: f64 = 0.8;
pub const JITTER_HUE: f64 = 0.1;
pub const JITTER_SATURATION: f64 = 0.1;
pub const NOISE_FAC: f64 = 0.1;

/// A perspective draw: on with probability [`PERSPECTIVE_P`], 8 corner draws either way.
fn perspective(rng: &mut ChaCha8Rng, distortion: f64) -> Mat3 {
    let on = rng.random_bool(PERSPECTIVE_P);
    let u: [f64; 8] = std::array::from_fn(|_| rng.random::<f64>());
    if on {
        perspective_matrix_with(&u, distortion)
    } else {
        IDENTITY
    }
}

fn diag(x: f64, y: f64) -> Mat3 {
    [[x, 0.0, 0.0], [0.0, y, 0.0], [0.0, 0.0, 1.0]]
}

/// Output coordinates (`[-1, 1]²`) of a zoom cutout → pooled-square coordinates. `rw`, `rh`:
/// the sides of `R` in units of `s`.
fn zoom_map(rng: &mut ChaCha8Rng, rw: f64, rh: f64) -> Mat3 {
    let warp = perspective(rng, ZOOM_PERSPECTIVE);
    let area = uniform(rng, CROP_AREA.0, CROP_AREA.1);
    let ratio = uniform(rng, CROP_RATIO.0.ln(), CROP_RATIO.1.ln()).exp();
    // Crop sides as fractions of R's sides: w·h = area·|R|, w/h = ratio (in pixels).
    let fw = (area * ratio * rh / rw).sqrt().min(1.0);
    let fh = (area * rw / (ratio * rh)).sqrt().min(1.0);
    let cx = uniform(rng, -(1.0 - fw), 1.0 - fw);
    let cy = uniform(rng, -(1.0 - fh), 1.0 - fh);
    let crop = [[fw, 0.0, cx], [0.0, fh, cy], [0.0, 0.0, 1.0]];
    // Sample the crop box in the warped R, i.e. the un-warped point of R.
    let unwarp = invert3(&warp).unwrap_or(IDENTITY);
    matmul3(&unwarp, &crop)
}

/// Output coordinates of a wide cutout → pooled-square coordinates, for image aspect `a = W/H`.
fn wide_map(rng: &mut ChaCha8Rng, a: f64, rw: f64, rh: f64) -> Mat3 {
    // Scale and offset (fractions of R's sides) of pixray's MyRandomAffine.
    let (scale, tx, ty) = if (a - 1.0).abs() < 1e-9 {
        let t = (1.0 - 0.95) / 2.0;
        (0.95, uniform(rng, -t, t), uniform(rng, -t, t))
    } else if a > 1.0 {
        let n = 1.0 / a;
        let sc = uniform(rng, 0.9 * n, n);
        (sc, 0.0, uniform(rng, -(1.0 - n) / 2.0, (1.0 - n) / 2.0))
    } else {
        let sc = uniform(rng, 0.9 * a, a);
        (sc, uniform(rng, -(1.0 - a) / 2.0, (1.0 - a) / 2.0), 0.0)
    };
    let warp = perspective(rng, WIDE_PERSPECTIVE);
    // In units of s/2 from R's centre: output o is the centre crop, o·1; the affine maps R point q
    // to sc·q + t (t = 2·tx·rw, 2·ty·rh in these units); R point q is pooled point q / (rw, rh).
    let unwarp = invert3(&warp).unwrap_or(IDENTITY);
    let unaffine = [
        [1.0 / scale, 0.0, -2.0 * tx * rw / scale],
        [0.0, 1.0 / scale, -2.0 * ty * rh / scale],
        [0.0, 0.0, 1.0],
    ];
    matmul3(&diag(1.0 / rw, 1.0 / rh), &matmul3(&unaffine, &unwarp))
}

/// Draws pixray's augments for `count` cutouts of side `size` from an image of `image_hw`.
pub fn sample(
    count: i64,
    size: i64,
    image_hw: (i64, i64),
    rng: &mut ChaCha8Rng,
    device: Device,
) -> AugmentPlan {
    let n = count.max(0) as usize;
    let a = image_hw.1 as f64 / image_hw.0 as f64;
    let (rw, rh) = (a.max(1.0), (1.0 / a).max(1.0));
    let n_zoom = (ZOOM_SHARE * n as f64) as usize;
    let mut inv = Vec::with_capacity(n);
    let mut colors = Vec::with_capacity(n);
    for i in 0..n {
        let m = if i < n_zoom {
            zoom_map(rng, rw, rh)
        } else {
            wide_map(rng, a, rw, rh)
        };
        inv.push(positive_w(m));
        let on = rng.random_bool(JITTER_P);
        let hue = uniform(rng, -JITTER_HUE, JITTER_HUE);
        let sat = uniform(rng, 1.0 - JITTER_SATURATION, 1.0 + JITTER_SATURATION);
        colors.push(if on {
            color_matrix(1.0, 1.0, sat, hue).0
        } else {
            IDENTITY
        });
    }
    let fill = rng.random::<f64>();
    let facs: Vec<f32> = (0..n)
        .map(|_| uniform(rng, 0.0, NOISE_FAC) as f32)
        .collect();
    let noise_seed = rng.next_u64();

    let mut up = Upload::default();
    let grid_part = up.push_mat3(&inv);
    let color_part = up.push_mat3(&colors);
    let facs_part = up.push(facs, &[count, 1, 1, 1]);
    let parts = up.finish(device);
    // Brightness and contrast are not jittered here, so the grey-mix term is zero.
    let no_grey = parts[color_part].zeros_like();
    AugmentPlan {
        count,
        size,
        grid: Some(sampling_grid(&parts[grid_part], size)),
        fill: Some(fill),
        color: Some((parts[color_part].shallow_clone(), no_grey)),
        erase: None,
        noise: Some(
            randn_seeded(&[count, 3, size, size], noise_seed, (Kind::Float, device))
                * &parts[facs_part],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn apply(m: &Mat3, x: f64, y: f64) -> (f64, f64) {
        let v = [x, y, 1.0];
        let r: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|k| m[i][k] * v[k]).sum())
            .collect();
        (r[0] / r[2], r[1] / r[2])
    }

    /// Zoom cutouts look inside the image; wide cutouts of a 2:1 image show its whole width and
    /// span twice the image's height (half of each cutout is fill), give or take the perspective,
    /// which moves a corner by at most 20 %.
    #[test]
    fn zoom_stays_inside_and_wide_shows_everything() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let m = zoom_map(&mut rng, 2.0, 1.0);
            let (x, y) = apply(&m, 0.0, 0.0);
            assert!(x.abs() < 1.0 && y.abs() < 1.0, "zoom centre ({x}, {y})");
            let m = wide_map(&mut rng, 2.0, 2.0, 1.0);
            let (cx, cy) = apply(&m, 0.0, 0.0);
            // The image may sit anywhere along the short side, up to touching the crop's edge.
            assert!(
                cx.abs() < 0.3 && cy.abs() < 1.25,
                "wide centre ({cx}, {cy})"
            );
            let (lx, _) = apply(&m, -1.0, 0.0);
            let (rx, _) = apply(&m, 1.0, 0.0);
            assert!(lx < -0.75 && rx > 0.75, "wide edges {lx} {rx}");
            let (_, top) = apply(&m, 0.0, -1.0);
            let (_, bottom) = apply(&m, 0.0, 1.0);
            assert!(bottom - top > 3.2, "wide vertical span {top}..{bottom}");
        }
    }

    #[test]
    fn square_wide_cutouts_are_the_whole_image_with_a_margin() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut seen = 0;
        for _ in 0..100 {
            let m = wide_map(&mut rng, 1.0, 1.0, 1.0);
            if m[2][0] == 0.0 && m[2][1] == 0.0 {
                // no perspective fired: an exact scale by 1/0.95 and an offset of at most 0.025·2/0.95
                seen += 1;
                assert!(
                    (m[0][0] - 1.0 / 0.95).abs() < 1e-12 && (m[1][1] - 1.0 / 0.95).abs() < 1e-12
                );
                assert!(
                    m[0][2].abs() <= 0.05 / 0.95 + 1e-12 && m[1][2].abs() <= 0.05 / 0.95 + 1e-12
                );
            }
        }
        assert!(seen > 10, "perspective fired too often: {seen}");
    }
}
