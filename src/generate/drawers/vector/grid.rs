//! The pixel drawer's cells: pixray's PixelDrawer grid (`encode_image`) and its `*_from_corners`
//! polygons, vertex for vertex. Shifted types (hex, rectshift, diamond) drop one cell from even
//! rows and move them half a cell right; tri alternates up and down. Hex, tri, diamond and knit
//! cells reach past their box into their neighbours' (pixray draws them in this order, later over
//! earlier).
use crate::settings::PixelType;

pub type Pt = [f64; 2];

/// One cell: its polygon, and where in the grid it sits (for the init-image average).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub poly: Vec<Pt>,
    pub row: i64,
    /// Column position in cells, 0.5 more on shifted rows.
    pub col: f64,
}

/// p5's `map`: `n` from [start1, stop1] to [start2, stop2].
fn map_number(n: f64, start1: f64, stop1: f64, start2: f64, stop2: f64) -> f64 {
    ((n - start1) / (stop1 - start1)) * (stop2 - start2) + start2
}

fn rect(p0: Pt, p1: Pt) -> Vec<Pt> {
    let ([x1, y1], [x2, y2]) = (p0, p1);
    vec![[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
}

fn diamond(p0: Pt, p1: Pt) -> Vec<Pt> {
    let ([x1, y1], [x2, y2]) = (p0, p1);
    let n = 1.0;
    let hya = map_number(-2.0, -n, n, y1, y2);
    let hyb = map_number(2.0, -n, n, y1, y2);
    let hyh = map_number(0.0, -n, n, y1, y2);
    let hxh = map_number(0.0, -n, n, x1, x2);
    vec![[hxh, hya], [x1, hyh], [hxh, hyb], [x2, hyh]]
}

fn tri(p0: Pt, p1: Pt, is_up: bool) -> Vec<Pt> {
    let ([x1, y1], [x2, y2]) = (p0, p1);
    let n = 1.0;
    let hxa = map_number(2.0, -n, n, x1, x2);
    let hxb = map_number(-2.0, -n, n, x1, x2);
    let hxh = map_number(0.0, -n, n, x1, x2);
    if is_up {
        vec![[hxh, y1], [hxb, y2], [hxa, y2]]
    } else {
        vec![[hxh, y2], [hxa, y1], [hxb, y1]]
    }
}

fn hex(p0: Pt, p1: Pt) -> Vec<Pt> {
    let ([x1, y1], [x2, y2]) = (p0, p1);
    let n = 3.0;
    let hya = map_number(4.0, -n, n, y1, y2);
    let hyb = map_number(2.0, -n, n, y1, y2);
    let hyc = map_number(-2.0, -n, n, y1, y2);
    let hyd = map_number(-4.0, -n, n, y1, y2);
    let hxh = map_number(0.0, -n, n, x1, x2);
    vec![
        [hxh, hya],
        [x1, hyb],
        [x1, hyc],
        [hxh, hyd],
        [x2, hyc],
        [x2, hyb],
    ]
}

fn knit(p0: Pt, p1: Pt) -> Vec<Pt> {
    let ([x1, y1], [x2, y2]) = (p0, p1);
    let xm = (x1 + x2) / 2.0;
    let (lean_up, slump_down, fall_back) = (0.45, 0.30, 0.2);
    let y_up1 = map_number(lean_up, 0.0, 1.0, y2, y1);
    let y_up2 = map_number(1.0 + lean_up, 0.0, 1.0, y2, y1);
    let y_down1 = map_number(slump_down, 0.0, 1.0, y1, y2);
    let y_down2 = map_number(1.0 + slump_down, 0.0, 1.0, y1, y2);
    let x_fall_back1 = map_number(fall_back, 0.0, 1.0, x2, xm);
    let x_fall_back2 = map_number(fall_back, 0.0, 1.0, x1, xm);
    vec![
        [xm, y_down2],
        [x2, y_up1],
        [x2, y_up2],
        [x_fall_back1, y_up2],
        [xm, y_down1],
        [x_fall_back2, y_up2],
        [x1, y_up2],
        [x1, y_up1],
    ]
}

fn shifted(ty: PixelType) -> bool {
    matches!(
        ty,
        PixelType::Hex | PixelType::RectShift | PixelType::Diamond
    )
}

/// Every cell of a `cols` x `rows` grid over a `width` x `height` canvas, in pixray's order.
pub fn cells(ty: PixelType, (cols, rows): (i64, i64), (width, height): (i64, i64)) -> Vec<Cell> {
    let cell_w = width as f64 / cols as f64;
    let cell_h = height as f64 / rows as f64;
    let mut out = Vec::with_capacity((cols * rows) as usize);
    for r in 0..rows {
        let cur_y = r as f64 * cell_h;
        let (n, offset) = if shifted(ty) && r % 2 == 0 {
            (cols - 1, 0.5)
        } else {
            (cols, 0.0)
        };
        for c in 0..n {
            let cur_x = (offset + c as f64) * cell_w;
            let (p0, p1) = ([cur_x, cur_y], [cur_x + cell_w, cur_y + cell_h]);
            let poly = match ty {
                PixelType::Hex => hex(p0, p1),
                PixelType::Tri => tri(p0, p1, (r + c) % 2 == 0),
                PixelType::Diamond => diamond(p0, p1),
                PixelType::Knit => knit(p0, p1),
                PixelType::Rect | PixelType::RectShift => rect(p0, p1),
            };
            out.push(Cell {
                poly,
                row: r,
                col: offset + c as f64,
            });
        }
    }
    out
}

/// Pixray's `encode_image` colour of each cell from an image `[3][H][W]` (rows of f32 in [0, 1]):
/// the mean of up to 4x4 samples from the cell's top-left corner, `int(cell size / 4)` apart.
pub fn init_colours(
    cells: &[Cell],
    (cols, rows): (i64, i64),
    img: &[Vec<Vec<f32>>],
) -> Vec<[f32; 3]> {
    let (ih, iw) = (img[0].len(), img[0][0].len());
    let tcw = iw as f64 / cols as f64;
    let tch = ih as f64 / rows as f64;
    let subs = |size: f64| -> Vec<f64> {
        if (size as i64) < 4 {
            (0..size as i64).map(|i| i as f64).collect()
        } else {
            let step = size / 4.0;
            (0..4).map(|i| ((i as f64) * step).trunc()).collect()
        }
    };
    let (sx, sy) = (subs(tcw), subs(tch));
    cells
        .iter()
        .map(|cell| {
            let y0 = (cell.row as f64 * tch).trunc();
            let x0 = cell.col * tcw;
            let mut sum = [0f64; 3];
            let mut n = 0;
            for tx in &sx {
                let x = x0 + tx;
                for ty in &sy {
                    let y = y0 + ty;
                    if x < iw as f64 && y < ih as f64 {
                        let (xi, yi) = (x as usize, y as usize);
                        for (ch, s) in sum.iter_mut().enumerate() {
                            *s += img[ch][yi][xi] as f64;
                        }
                        n += 1;
                    }
                }
            }
            let n = n.max(1) as f64;
            [
                (sum[0] / n) as f32,
                (sum[1] / n) as f32,
                (sum[2] / n) as f32,
            ]
        })
        .collect()
}
