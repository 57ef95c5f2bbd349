//! Setting values with a syntax of their own (size, seed, lists, grids, the zoom move, the palette),
//! and how each is read from and written back to its flag/TOML form (`FromRaw`).
use super::enums::{Augment, LossKind};
use super::prompts::{ImagePrompt, NoisePrompt, Prompt, TargetImage, VectorPrompt};
use super::{FromRaw, ToRaw};
use crate::error::usage;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;

/// Image size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: i64,
    pub height: i64,
}

impl Size {
    pub fn parse(s: &str) -> Result<Size> {
        let bad = || {
            usage(format!(
                "--size: invalid value '{s}': expected WxH with both sides from 16 to 4096 (e.g. 256x256)"
            ))
        };
        let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let width: i64 = w.trim().parse().map_err(|_| bad())?;
        let height: i64 = h.trim().parse().map_err(|_| bad())?;
        for v in [width, height] {
            // Multiples of 16 for the vqgan drawer: Settings::check_together.
            if !(16..=4096).contains(&v) {
                return Err(bad());
            }
        }
        Ok(Size { width, height })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// `"a|b:2"` or `["a", "b:2"]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PromptList {
    One(String),
    Many(Vec<String>),
}

impl PromptList {
    pub fn parse(&self) -> Result<Vec<Prompt>> {
        match self {
            PromptList::One(s) => Prompt::parse_list(s),
            PromptList::Many(v) => v.iter().map(|s| Prompt::parse(s)).collect(),
        }
    }
}

/// `"a,b"` or `["a", "b"]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub fn items(&self) -> Vec<String> {
        match self {
            StringList::One(s) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            StringList::Many(v) => v.iter().map(|x| x.trim().to_string()).collect(),
        }
    }
}

/// `75`, `[50, 75]` or `"50,75"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NumberList {
    One(f64),
    Many(Vec<f64>),
    Text(String),
}

/// A seed as written: an integer or any text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SeedValue {
    Int(i64),
    Text(String),
}

/// An integer stays itself; any other text is hashed (SHA-256, first 8 bytes, big-endian, mod 2^32)
/// so "my cat" always gives the same image.
pub fn seed_from_text(s: &str) -> Result<u64> {
    let t = s.trim();
    if t.is_empty() {
        return Err(usage("--seed: empty value"));
    }
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    if t.starts_with('-') && t[1..].parse::<u64>().is_ok() {
        return Err(usage(format!(
            "--seed: invalid value '{s}': must not be negative"
        )));
    }
    let digest = Sha256::digest(t.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    Ok(u64::from_be_bytes(b) % (1u64 << 32))
}

/// Pixray's fast_pixel grid: `--pixel-size COLSxROWS`, else 40x40 square, 40x50 portrait, 80x45
/// landscape; `--pixel-scale S` divides both (truncating); never more cells than pixels (an
/// explicit size larger than the image is refused, a default one is reduced, as pixray does).
pub fn pixel_grid(spec: Option<&str>, scale: Option<f64>, size: Size) -> Result<(i64, i64)> {
    pixel_grid_for(spec, scale, size, None)
}

/// The grid of the pixel drawer: pixray's PixelDrawer rules, in its order. Without --pixel-size
/// and with `iso`, the default grid is made about isotropic for the cell shape; then the scale,
/// the cap at the image size, and with `edge` the parities that keep shifted rows symmetric.
/// `pixel`: the cell type and the two checks (None: the fast-pixel grid).
pub fn pixel_grid_for(
    spec: Option<&str>,
    scale: Option<f64>,
    size: Size,
    pixel: Option<(super::PixelType, bool, bool)>,
) -> Result<(i64, i64)> {
    use super::PixelType;
    let (w, h) = (size.width, size.height);
    let (mut cols, mut rows) = match spec {
        Some(s) => {
            let bad = || {
                usage(format!(
                    "--pixel-size: invalid value '{s}': expected COLSxROWS, each from 1 up to the image's width and height (e.g. 40x40)"
                ))
            };
            let (c, r) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
            let c: i64 = c.trim().parse().map_err(|_| bad())?;
            let r: i64 = r.trim().parse().map_err(|_| bad())?;
            if c < 1 || r < 1 || c > w || r > h {
                return Err(bad());
            }
            (c, r)
        }
        None if w == h => (40, 40),
        None if w < h => (40, 50),
        None => (80, 45),
    };
    if let (Some((ty, true, _)), None) = (pixel, spec) {
        match ty {
            PixelType::Tri => cols = (1.414 * cols as f64) as i64,
            PixelType::Hex => rows = (1.414 * rows as f64) as i64,
            PixelType::Diamond => rows *= 2,
            _ => {}
        }
    }
    if let Some(sc) = scale {
        if !(sc.is_finite() && sc > 0.0 && sc <= 1000.0) {
            return Err(usage(format!(
                "--pixel-scale: invalid value {sc}: must be a number > 0 (2 halves the columns and rows)"
            )));
        }
        cols = ((cols as f64 / sc) as i64).max(1);
        rows = ((rows as f64 / sc) as i64).max(1);
    }
    let (mut cols, mut rows) = (cols.min(w), rows.min(h));
    if let Some((ty, _, true)) = pixel {
        match ty {
            PixelType::Hex | PixelType::RectShift | PixelType::Diamond => {
                cols += 1 - cols % 2;
                rows += 1 - rows % 2;
            }
            PixelType::Tri => {
                cols += 1 - cols % 2;
                rows += rows % 2;
            }
            _ => {}
        }
    }
    Ok((cols, rows))
}

pub(super) fn parse_augments(items: &[String]) -> Result<Vec<Augment>> {
    if items.len() == 1 && items[0].eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for it in items {
        let a: Augment = it.parse()?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// One zoom-video move: zoom factor (>1 zooms in), shift in pixels (content moves right/down for
/// positive values), rotation in degrees (positive turns the content counterclockwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    pub scale: f64,
    pub shift: (f64, f64),
    pub rotate_degrees: f64,
}

/// `--zoom-shift X,Y`: pixels, each smaller than the image.
pub(super) fn parse_zoom_shift(shift: Option<&NumberList>, size: Size) -> Result<(f64, f64)> {
    let bad_shift = |v: &str| {
        usage(format!(
            "--zoom-shift: invalid value '{v}': expected X,Y in pixels (e.g. 2,-1), each smaller than the image"
        ))
    };
    let xy: Vec<f64> = match shift {
        None => vec![0.0, 0.0],
        Some(NumberList::Many(v)) => v.clone(),
        Some(NumberList::One(x)) => return Err(bad_shift(&x.to_string())),
        Some(NumberList::Text(t)) => t
            .split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad_shift(t)))
            .collect::<Result<_>>()?,
    };
    match xy.as_slice() {
        [x, y]
            if x.is_finite()
                && y.is_finite()
                && x.abs() < size.width as f64
                && y.abs() < size.height as f64 =>
        {
            Ok((*x, *y))
        }
        _ => Err(bad_shift(&format!("{xy:?}"))),
    }
}

impl ToRaw<NumberList> for (f64, f64) {
    fn to_raw(&self) -> Option<NumberList> {
        Some(NumberList::Many(vec![self.0, self.1]))
    }
}

/// `--lr-drops` as percents of a run of `steps`: numbers are percents; text items may carry a
/// unit (`50%`, `300i`: pixray's units, [`super::units`]).
pub(super) fn parse_lr_drops(l: Option<&NumberList>, steps: i64) -> Result<Vec<f64>> {
    use super::units::{Amount, parse_unit};
    let v = match l {
        None => Vec::new(),
        Some(NumberList::One(x)) => vec![*x],
        Some(NumberList::Many(v)) => v.clone(),
        Some(NumberList::Text(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| {
                Ok(match parse_unit(x, Amount::Percent, "--lr-drops")? {
                    Amount::Percent(p) => p,
                    Amount::Steps(n) => n * 100.0 / steps as f64,
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    for x in &v {
        if !(x.is_finite() && *x > 0.0 && *x < 100.0) {
            return Err(usage(format!(
                "--lr-drops: invalid value {x}: each drop must be after the start and before the end (a percent between 0 and 100, or a step before --steps)"
            )));
        }
    }
    let mut v = v;
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup();
    Ok(v)
}

pub(super) fn parse_losses(items: &[String]) -> Result<Vec<LossTerm>> {
    let mut out: Vec<LossTerm> = Vec::new();
    for it in items {
        let mut parts = it.split(':');
        let name = parts.next().unwrap_or_default();
        let mut number = |what: &str| -> Result<Option<f64>> {
            match parts.next() {
                None => Ok(None),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(Some(x)),
                    _ => Err(usage(format!(
                        "--loss: invalid {what} in '{it}': expected name[:weight[:stop]] with finite numbers (e.g. tv:0.5)"
                    ))),
                },
            }
        };
        let weight = number("weight")?.unwrap_or(1.0);
        let stop = number("stop")?;
        if parts.next().is_some() {
            return Err(usage(format!(
                "--loss: '{it}' has more than name:weight:stop"
            )));
        }
        let kind: LossKind = name.parse()?;
        out.retain(|t| t.kind != kind);
        out.push(LossTerm { kind, weight, stop });
    }
    Ok(out)
}

/// One `--filters` item: `name[:weight]` (the weight scales the filter's own loss).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterTerm {
    pub kind: super::enums::FilterKind,
    pub weight: f64,
}

impl std::fmt::Display for FilterTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.weight)
    }
}

impl ToRaw<StringList> for Vec<FilterTerm> {
    fn to_raw(&self) -> Option<StringList> {
        Some(StringList::Many(
            self.iter().map(|t| t.to_string()).collect(),
        ))
    }
}
impl FromRaw<StringList> for Vec<FilterTerm> {
    fn from_raw(raw: &StringList) -> Result<Self> {
        parse_filters(&raw.items())
    }
}

fn parse_filters(items: &[String]) -> Result<Vec<FilterTerm>> {
    let mut out: Vec<FilterTerm> = Vec::new();
    for it in items {
        let (name, weight) = match it.split_once(':') {
            Some((n, w)) => match w.trim().parse::<f64>() {
                Ok(w) if w.is_finite() => (n, w),
                _ => {
                    return Err(usage(format!(
                        "--filters: invalid weight in '{it}': expected name[:weight] (e.g. wallpaper:1)"
                    )));
                }
            },
            None => (it.as_str(), 1.0),
        };
        let kind: super::enums::FilterKind = name.trim().parse()?;
        out.retain(|t| t.kind != kind);
        out.push(FilterTerm { kind, weight });
    }
    Ok(out)
}

/// An RGB colour setting (`--edge-color`): a name, `#rgb`, `#rrggbb` or `(r+g+b)`, as `--palette`
/// reads one colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Colour(pub crate::palette::Rgb);

impl ToRaw<String> for Colour {
    fn to_raw(&self) -> Option<String> {
        let [r, g, b] = self.0;
        Some(format!("#{r:02x}{g:02x}{b:02x}"))
    }
}
impl FromRaw<String> for Colour {
    fn from_raw(raw: &String) -> Result<Self> {
        match crate::palette::parse(raw)?.as_slice() {
            [c] => Ok(Colour(*c)),
            _ => Err(usage(format!("'{raw}': expected one colour"))),
        }
    }
}

/// `--edge-margins L,R,U,D`: each edge's band in percent of the width (L, R) or height (U, D).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margins(pub [f64; 4]);

impl ToRaw<String> for Option<Margins> {
    fn to_raw(&self) -> Option<String> {
        self.map(|m| m.0.map(|v| v.to_string()).join(","))
    }
}
impl FromRaw<String> for Option<Margins> {
    fn from_raw(raw: &String) -> Result<Self> {
        let v: Vec<f64> = raw
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| usage(format!("'{raw}': expected four numbers L,R,U,D")))?;
        match v.as_slice() {
            [l, r, u, d] if v.iter().all(|x| (0.0..=100.0).contains(x)) => {
                Ok(Some(Margins([*l, *r, *u, *d])))
            }
            _ => Err(usage(format!(
                "'{raw}': expected four percents L,R,U,D from 0 to 100"
            ))),
        }
    }
}

/// The prompt text for a run-directory name: lowercase words joined by `-`, at most 40 chars.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            for c in ch.to_lowercase() {
                out.push(c);
            }
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
        if out.chars().count() >= 40 {
            break;
        }
    }
    let s = out.trim_end_matches('-').to_string();
    if s.is_empty() { "image".to_string() } else { s }
}

/// Values whose flag/TOML form is the value itself.
macro_rules! same_raw {
    ($($t:ty),*) => {$(
        impl ToRaw<$t> for $t {
            fn to_raw(&self) -> Option<$t> { Some(self.clone()) }
        }
        impl FromRaw<$t> for $t {
            fn from_raw(raw: &$t) -> Result<Self> { Ok(raw.clone()) }
        }
        /// Unset unless given (no default value).
        impl ToRaw<$t> for Option<$t> {
            fn to_raw(&self) -> Option<$t> { self.clone() }
        }
        impl FromRaw<$t> for Option<$t> {
            fn from_raw(raw: &$t) -> Result<Self> { Ok(Some(raw.clone())) }
        }
    )*};
}
same_raw!(i64, f64, bool, String, PathBuf);

impl ToRaw<String> for Size {
    fn to_raw(&self) -> Option<String> {
        Some(self.to_string())
    }
}
impl FromRaw<String> for Size {
    fn from_raw(raw: &String) -> Result<Self> {
        Size::parse(raw)
    }
}

impl ToRaw<PromptList> for Vec<Prompt> {
    fn to_raw(&self) -> Option<PromptList> {
        // Story phases need the `^` string form; otherwise one entry per prompt.
        let phases = self.iter().map(|p| p.phase + 1).max().unwrap_or(1);
        Some(if phases > 1 {
            PromptList::One(Prompt::join_list(self))
        } else {
            PromptList::Many(self.iter().map(|p| p.to_string()).collect())
        })
    }
}
impl FromRaw<PromptList> for Vec<Prompt> {
    fn from_raw(raw: &PromptList) -> Result<Self> {
        raw.parse()
    }
}

impl ToRaw<SeedValue> for u64 {
    fn to_raw(&self) -> Option<SeedValue> {
        Some(SeedValue::Int(*self as i64))
    }
}
impl FromRaw<SeedValue> for u64 {
    fn from_raw(raw: &SeedValue) -> Result<Self> {
        match raw {
            SeedValue::Int(v) if *v >= 0 => Ok(*v as u64),
            SeedValue::Int(v) => Err(usage(format!(
                "--seed: invalid value {v}: must not be negative"
            ))),
            SeedValue::Text(t) => seed_from_text(t),
        }
    }
}

/// Comma lists of strings (`"a,b"` or `["a", "b"]`) whose items have a syntax of their own.
macro_rules! string_items {
    ($t:ty, $parse:expr) => {
        impl ToRaw<StringList> for Vec<$t> {
            fn to_raw(&self) -> Option<StringList> {
                Some(StringList::Many(
                    self.iter().map(|x| x.to_string()).collect(),
                ))
            }
        }
        impl FromRaw<StringList> for Vec<$t> {
            fn from_raw(raw: &StringList) -> Result<Self> {
                let parse: fn(&[String]) -> Result<Vec<$t>> = $parse;
                parse(&raw.items())
            }
        }
    };
}
string_items!(Augment, parse_augments);
string_items!(ImagePrompt, |items| items
    .iter()
    .map(|s| ImagePrompt::parse(s))
    .collect());
string_items!(TargetImage, |items| items
    .iter()
    .map(|s| TargetImage::parse(s))
    .collect());
string_items!(VectorPrompt, |items| items
    .iter()
    .map(|s| VectorPrompt::parse(s))
    .collect());
string_items!(NoisePrompt, |items| items
    .iter()
    .map(|s| NoisePrompt::parse(s))
    .collect());
string_items!(String, |items| Ok(items.to_vec()));

/// One `--loss` term: `name[:weight[:stop]]`. Below `stop` (the unweighted value) the term is still
/// logged but pushes no more, as a prompt's stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossTerm {
    pub kind: LossKind,
    pub weight: f64,
    pub stop: Option<f64>,
}

impl std::fmt::Display for LossTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.weight)?;
        if let Some(s) = self.stop {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

impl ToRaw<StringList> for Vec<LossTerm> {
    fn to_raw(&self) -> Option<StringList> {
        Some(StringList::Many(
            self.iter().map(|t| t.to_string()).collect(),
        ))
    }
}
impl FromRaw<StringList> for Vec<LossTerm> {
    fn from_raw(raw: &StringList) -> Result<Self> {
        parse_losses(&raw.items())
    }
}

impl ToRaw<NumberList> for Vec<f64> {
    fn to_raw(&self) -> Option<NumberList> {
        Some(NumberList::Many(self.clone()))
    }
}

impl ToRaw<String> for (i64, i64) {
    fn to_raw(&self) -> Option<String> {
        Some(format!("{}x{}", self.0, self.1))
    }
}

/// `--palette`: the spec as given and its colours.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    pub spec: String,
    pub colours: Vec<crate::palette::Rgb>,
}

impl ToRaw<String> for Option<Palette> {
    fn to_raw(&self) -> Option<String> {
        // Written even when unset (`palette = ""`), so a repeated run.toml clears a preset's palette.
        Some(self.as_ref().map(|p| p.spec.clone()).unwrap_or_default())
    }
}
impl FromRaw<String> for Option<Palette> {
    fn from_raw(raw: &String) -> Result<Self> {
        // An empty spec (e.g. `palette = ""` in run.toml) means no palette.
        let spec = raw.trim();
        if spec.is_empty() {
            return Ok(None);
        }
        Ok(Some(Palette {
            spec: spec.to_string(),
            colours: crate::palette::parse(spec)?,
        }))
    }
}

/// `size` as a layer sets it (or its default), for the settings declared before it.
/// The run's size from a layer: `--size`, or pixray's `--aspect` with `--ezsize` or `--scale`
/// (its size tables: square 144x144, portrait 128x160, widescreen 192x108, times the scale: small
/// 1, medium 2, large 4, default 2 as pixray's normal quality; `retain`: 144 wide at the init
/// image's aspect), trimmed to multiples of 16 for the vqgan drawer as pixray's VQGAN does; else
/// the default.
pub(super) fn layer_size(p: &super::PartialSettings, drawer: super::DrawerKind) -> Result<Size> {
    let pixray = p.aspect.is_some() || p.ezsize.is_some() || p.scale.is_some();
    if let Some(s) = &p.size {
        if pixray {
            return Err(usage(format!(
                "--size {s} and --aspect/--ezsize/--scale both set (a preset or --config may set the size): give one of them"
            )));
        }
        return Size::parse(s);
    }
    if !pixray {
        return Ok(super::DEFAULT_SIZE);
    }
    if p.ezsize.is_some() && p.scale.is_some() {
        return Err(usage("--ezsize and --scale both set: give one"));
    }
    let scale = match (p.scale, p.ezsize.as_deref()) {
        (Some(s), _) if s.is_finite() && s > 0.0 => s,
        (Some(s), _) => {
            return Err(usage(format!(
                "--scale: invalid value {s}: must be a number > 0"
            )));
        }
        (None, Some("small")) => 1.0,
        (None, Some("medium")) => 2.0,
        (None, Some("large")) => 4.0,
        (None, Some(other)) => {
            return Err(usage(format!(
                "--ezsize: invalid value '{other}': expected small, medium or large"
            )));
        }
        (None, None) => 2.0,
    };
    let (w, h) = match p.aspect.as_deref().unwrap_or("widescreen") {
        "square" => ((144.0 * scale) as i64, (144.0 * scale) as i64),
        "portrait" => ((128.0 * scale) as i64, (160.0 * scale) as i64),
        "widescreen" => ((192.0 * scale) as i64, (108.0 * scale) as i64),
        "retain" => {
            let path = p.init_image.as_ref().ok_or_else(|| {
                usage("--aspect retain keeps the aspect ratio of --init-image: add one")
            })?;
            let (iw, ih) = image::image_dimensions(path).map_err(|e| {
                usage(format!(
                    "--init-image {}: cannot read its size: {e}",
                    path.display()
                ))
            })?;
            let asp = ih as f64 / iw as f64;
            ((144.0 * scale) as i64, (144.0 * asp * scale) as i64)
        }
        other => {
            return Err(usage(format!(
                "--aspect: invalid value '{other}': expected widescreen, square, portrait or retain"
            )));
        }
    };
    let (w, h) = if drawer == super::DrawerKind::Vqgan {
        (w / 16 * 16, h / 16 * 16)
    } else {
        (w, h)
    };
    Size::parse(&format!("{w}x{h}")).map_err(|_| {
        usage(format!(
            "--aspect/--ezsize/--scale give {w}x{h}: each side must be from 16 to 4096"
        ))
    })
}
