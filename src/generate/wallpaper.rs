//! pixray's wallpaper filter (`--filters wallpaper`): the picture is turned into a repeating
//! pattern before CLIP sees it. `shift` stacks it over itself moved half a width (a brick
//! repeat, twice as tall); `horizontal`, `vertical` and `none` wrap it around one axis, both, or
//! both, with `--wallpaper-edge-match` first trimming that many pixels at the seams and adding
//! a loss that makes the opposite edges alike. Each step rolls the result by a random offset, so
//! CLIP judges the seams too; the saved picture is the same pattern unrolled.
use crate::settings::WallpaperType;
use tch::{Reduction, Tensor};

/// The filtered picture and the edge-match loss (None without one). `roll` is the step's random
/// (rows, columns) offset, drawn within the unfiltered picture; (0, 0) for the saved picture.
pub fn apply(
    img: &Tensor,
    kind: WallpaperType,
    edge_match: i64,
    roll: (i64, i64),
) -> (Tensor, Option<Tensor>) {
    let (rh, rw) = roll;
    match kind {
        WallpaperType::Shift => {
            let w = img.size()[3];
            let rows = Tensor::cat(&[img.shallow_clone(), img.roll([w / 2], [3])], 2);
            (rows.roll([rh, rw], [2, 3]), None)
        }
        WallpaperType::Horizontal => {
            let (img, loss) = trim(img, 3, edge_match);
            (img.roll([rw], [3]), loss)
        }
        WallpaperType::Vertical => {
            let (img, loss) = trim(img, 2, edge_match);
            (img.roll([rh], [2]), loss)
        }
        WallpaperType::None => {
            let (img, across) = trim(img, 3, edge_match);
            let (img, down) = trim(&img, 2, edge_match);
            let loss = match (across, down) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            (img.roll([rh, rw], [2, 3]), loss)
        }
    }
}

/// pixray's edge match along `dim`: `MSE(first em, last em) / em`, then `em / 2` pixels cut from
/// both ends (nothing without a match).
fn trim(img: &Tensor, dim: i64, em: i64) -> (Tensor, Option<Tensor>) {
    if em == 0 {
        return (img.shallow_clone(), None);
    }
    let n = img.size()[dim as usize];
    let loss = img
        .narrow(dim, 0, em)
        .mse_loss(&img.narrow(dim, n - em, em), Reduction::Mean)
        / em as f64;
    let half = em / 2;
    (img.narrow(dim, half, n - 2 * half), Some(loss))
}

/// Whether the filter changes the picture's size (shift doubles the height; an edge match trims).
pub fn resizes(kind: WallpaperType, edge_match: i64) -> bool {
    kind == WallpaperType::Shift || edge_match > 0
}
