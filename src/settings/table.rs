//! Every generation setting, declared once: its flag, TOML key, type, default, check, the drawer
//! it belongs to and whether it may change on resume (see declare.rs for the form). Settings
//! resolve in this order, so a default may use the settings above it. The order is also run.toml's,
//! which names a batch job (a hash of it): new settings go at the end.
use super::enums::*;
use super::units::{Count, parse_count, parse_opt_count, parse_save_every};
use super::values::*;
use super::{Declaration, ImagePrompt, NoisePrompt, Prompt, TargetImage, VectorPrompt};
use std::path::PathBuf;

/// Built-in defaults (the anchors' usual values: nerdyrodent's lr 0.1, 32 cutouts, ViT-B/32).
pub const DEFAULT_SIZE: Size = Size {
    width: 256,
    height: 256,
};
pub const DEFAULT_STEPS: i64 = 300;
pub const DEFAULT_CUTOUTS: i64 = 32;
pub const DEFAULT_LR: f64 = 0.1;
/// pixray's `learning_rate` default, which its fast_pixel drawer uses.
pub const DEFAULT_LR_FAST_PIXEL: f64 = 0.2;
/// pixray's PixelDrawer: Adam at 0.03 on the cell colours.
pub const DEFAULT_LR_PIXEL: f64 = 0.03;
/// pixray's ClipDrawer and LineDrawer: Adam at 1.0 on points (0.1 on widths, 0.01 on colours:
/// the stroke drawers scale those parameters so one learning rate moves each at its pace).
pub const DEFAULT_LR_STROKES: f64 = 1.0;
/// aphantasia's `--lrate` default.
pub const DEFAULT_LR_FFT: f64 = 0.05;
pub const DEFAULT_FFT_DECAY: f64 = 1.5;
/// pixray's FftDrawer passes `colors=1.5` to `to_valid_rgb` and renders with `contrast=0.9`.
pub const DEFAULT_FFT_COLORS: f64 = 1.5;
pub const DEFAULT_FFT_CONTRAST: f64 = 0.9;
pub const DEFAULT_SAVE_EVERY: i64 = 50;
pub const DEFAULT_VQGAN: &str = "imagenet_f16_16384";
/// pixray's `lookup_beta`.
pub const DEFAULT_PALETTE_WEIGHT: f64 = 10.0;
pub const DEFAULT_CLIP: &str = "ViT-B/32";
pub const DEFAULT_AUGMENTS: &[Augment] = &[
    Augment::Affine,
    Augment::Perspective,
    Augment::Jitter,
    Augment::Erasing,
    Augment::Noise,
];

declare_settings! {
    layer: p;

    /// What is optimized: vqgan (latent codes through a VQGAN decoder; default), fast-pixel (a grid
    /// of colour cells, pixel art), pixel (pixray's polygon pixel art: rect, hex, tri, diamond, knit
    /// cells), clipdraw (coloured Bezier strokes), line-sketch (black strokes on paper), or fft (a
    /// Fourier-space image, soft and painterly). pixel, clipdraw and line-sketch also write SVG.
    drawer: DrawerKind {
        flag: Option<DrawerKind> [long, value_name = "NAME", value_parser = enum_parser::<DrawerKind>()],
        raw: DrawerKind,
        default: DrawerKind::Vqgan,
        resume: fixed,
        drawer: (any),
    }
    /// fast-pixel and pixel: the grid, COLSxROWS (default 40x40 square, 40x50 portrait, 80x45
    /// landscape; the pixel drawer's --pixel-iso-check and --pixel-edge-check adjust it).
    pixel_size: (i64, i64) {
        flag: Option<String> [long, value_name = "COLSxROWS"],
        raw: String,
        resolve: pixel_grid_for(
            p.pixel_size.as_deref(),
            p.pixel_scale,
            layer_size(p, drawer)?,
            (drawer == DrawerKind::Pixel).then(|| {
                (
                    p.pixel_type.unwrap_or(PixelType::Rect),
                    p.pixel_iso_check.unwrap_or(true),
                    p.pixel_edge_check.unwrap_or(true),
                )
            }),
        )?,
        resume: fixed,
        drawer: (only FastPixel, Pixel),
    }
    /// fast-pixel and pixel: divide the grid's columns and rows by S (2 gives cells twice as big;
    /// checked with pixel-size).
    pixel_scale: Option<f64> {
        flag: Option<f64> [long, value_name = "S"],
        raw: f64,
        default: None,
        resume: fixed,
        drawer: (only FastPixel, Pixel),
        // Folded into pixel-size, which run.toml records as the grid itself.
        record: |_| false,
    }
    /// fft: decay power of the spectrum (default 1.5; higher is smoother, 0 is white noise).
    fft_decay: f64 {
        flag: Option<f64> [long, value_name = "P"],
        raw: f64,
        default: DEFAULT_FFT_DECAY,
        check: |v| v.is_finite() && (0.0..=4.0).contains(v) => "must be from 0 (white noise) to 4 (very smooth)",
        resume: fixed,
        drawer: (only Fft),
    }
    /// fft: colour saturation (default 1.5).
    fft_colors: f64 {
        flag: Option<f64> [long, value_name = "C"],
        raw: f64,
        default: DEFAULT_FFT_COLORS,
        check: |v| v.is_finite() && *v > 0.0 && *v <= 10.0 => "must be a number > 0 and at most 10",
        resume: fixed,
        drawer: (only Fft),
    }
    /// fft: contrast the image is normalized to (default 0.9).
    fft_contrast: f64 {
        flag: Option<f64> [long, value_name = "C"],
        raw: f64,
        default: DEFAULT_FFT_CONTRAST,
        check: |v| v.is_finite() && *v > 0.0 && *v <= 10.0 => "must be a number > 0 and at most 10",
        resume: fixed,
        drawer: (only Fft),
    }
    /// Prompts separated by `|`, each `text`, `text:weight` or `text:weight:stop`
    /// (a negative weight pushes away; stop ends the push once the distance passes it).
    /// `^` separates story phases that take turns: "a forest ^ a city".
    prompts: Vec<Prompt> {
        flag: Option<String> [value_name = "PROMPT"],
        raw: PromptList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
    }
    /// Output size WxH, sides from 16 to 4096 (default 256x256); the vqgan drawer needs multiples
    /// of its VQGAN's downsampling factor (16).
    size: Size {
        flag: Option<String> [long, value_name = "WxH"],
        raw: String,
        resolve: layer_size(p, drawer)?,
        resume: fixed,
        drawer: (any),
    }
    /// pixray's --aspect instead of --size: widescreen (192x108 x scale), square (144x144),
    /// portrait (128x160) or retain (144 wide at --init-image's aspect); with --ezsize or --scale.
    aspect: Option<String> {
        flag: Option<String> [long, value_name = "NAME"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
        // Folded into size, which run.toml records.
        record: |_| false,
    }
    /// pixray's --ezsize with --aspect: small (x1), medium (x2) or large (x4).
    ezsize: Option<String> {
        flag: Option<String> [long, value_name = "SIZE"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
        record: |_| false,
    }
    /// pixray's --scale with --aspect: the size table's factor (default 2, pixray's normal).
    scale: Option<f64> {
        flag: Option<f64> [long, value_name = "S"],
        raw: f64,
        default: None,
        resume: fixed,
        drawer: (any),
        record: |_| false,
    }
    /// Optimization steps (default 300).
    steps: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: DEFAULT_STEPS,
        check: |v| *v >= 1 => "must be at least 1",
        resume: may_change,
        drawer: (any),
    }
    /// Seed: an integer, or any text (hashed to one). Random and recorded when absent.
    seed: u64 {
        flag: Option<String> [long, value_name = "SEED", allow_negative_numbers = true],
        raw: SeedValue,
        default: rand::random::<u32>() as u64,
        resume: fixed,
        drawer: (any),
    }
    /// Cutouts per step per CLIP model (default 32).
    cutouts: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: DEFAULT_CUTOUTS,
        check: |v| *v >= 1 => "must be at least 1",
        resume: fixed,
        drawer: (any),
    }
    /// Cutout size power for --cut-method original: >1 favours small crops (default 1.0).
    cut_pow: f64 {
        flag: Option<f64> [long, value_name = "P", allow_negative_numbers = true],
        raw: f64,
        default: 1.0,
        check: |v| v.is_finite() && *v > 0.0 => "must be a number > 0",
        resume: fixed,
        drawer: (any),
    }
    /// Cutout method: pooled (whole image, avg+max pooled), original (random square crops) or
    /// pixray (pooled, then pixray's 60% zoomed / 40% whole-image views with their own augments).
    cut_method: CutMethod {
        flag: Option<CutMethod> [long, value_name = "METHOD", value_parser = enum_parser::<CutMethod>()],
        raw: CutMethod,
        default: CutMethod::Pooled,
        resume: fixed,
        drawer: (any),
    }
    /// Comma list of cutout augments: flip, affine, perspective, jitter, erasing, noise (or `none`);
    /// not used by --cut-method pixray, which has its own.
    augments: Vec<Augment> {
        flag: Option<String> [long, value_name = "LIST"],
        raw: StringList,
        default: DEFAULT_AUGMENTS.to_vec(),
        resume: fixed,
        drawer: (any),
    }
    /// Learning rate (default 0.1; fast-pixel 0.2 and fft 0.05, as pixray and aphantasia).
    lr: f64 {
        flag: Option<f64> [long, value_name = "LR", allow_negative_numbers = true],
        raw: f64,
        default: match drawer {
            DrawerKind::Vqgan => DEFAULT_LR,
            DrawerKind::FastPixel => DEFAULT_LR_FAST_PIXEL,
            DrawerKind::Fft => DEFAULT_LR_FFT,
            DrawerKind::Pixel => DEFAULT_LR_PIXEL,
            DrawerKind::Clipdraw | DrawerKind::LineSketch => DEFAULT_LR_STROKES,
        },
        check: |v| v.is_finite() && *v > 0.0 => "must be a number > 0",
        resume: fixed,
        drawer: (any),
    }
    /// Optimizer: adam, adamw, adamax, adagrad, rmsprop or adamw-amsgrad (torch's defaults; the
    /// learning rate is --lr for all of them; fft's default is adamw-amsgrad, as aphantasia).
    optimizer: OptimizerKind {
        flag: Option<OptimizerKind> [long, value_name = "NAME", value_parser = enum_parser::<OptimizerKind>()],
        raw: OptimizerKind,
        default: match drawer {
            DrawerKind::Fft => OptimizerKind::AdamWAmsgrad,
            _ => OptimizerKind::Adam,
        },
        resume: fixed,
        drawer: (any),
    }
    /// Comma list of points of the run where the learning rate is divided by 10: percents (75,
    /// 75%, 75 percent) or steps (300i, 300 iterations), pixray's units.
    lr_drops: Vec<f64> {
        flag: Option<String> [long, value_name = "LIST", allow_negative_numbers = true],
        raw: NumberList,
        resolve: parse_lr_drops(p.lr_drops.as_ref(), steps)?,
        resume: fixed,
        drawer: (any),
    }
    /// Save a frame every N steps (0 = only the final image; default 50); also 25i, '25
    /// iterations', 10% or '10 percent' of --steps (pixray's units).
    save_every: i64 {
        flag: Option<String> [long, value_name = "N", allow_negative_numbers = true],
        raw: Count,
        resolve: parse_save_every(p.save_every.as_ref(), steps)?,
        check: |v| *v >= 0 => "must be 0 (final image only) or more",
        resume: may_change,
        drawer: (any),
    }
    /// Cutout batches per step: the loss averages N batches of --cutouts, at the memory of one
    /// (default 1).
    batches: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 1,
        check: |v| (1..=1000).contains(v) => "must be from 1 to 1000",
        resume: fixed,
        drawer: (any),
    }
    /// Steps per story phase for prompts with `^` phases (default: the steps split evenly).
    change_prompt_every: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 0,
        check: |v| *v >= 0 => "must be 0 (split the steps evenly) or more",
        resume: fixed,
        drawer: (any),
    }
    /// Seamless tile: the image wraps around at its edges (circular padding in the decoder).
    tile: bool {
        flag: bool [long],
        raw: bool,
        default: false,
        resume: fixed,
        drawer: (any),
    }
    /// Zoom video: every N steps save a frame, then zoom/shift/rotate the image and continue
    /// from it (re-encoded, optimizer restarted). Default 0 = off.
    zoom_every: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 0,
        check: |v| *v >= 0 => "must be 0 (no zoom) or more",
        resume: fixed,
        drawer: (any),
    }
    /// First step at which zooming may happen (default 0).
    zoom_start: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 0,
        check: |v| *v >= 0 => "must be 0 or more",
        resume: fixed,
        drawer: (any),
    }
    /// Zoom factor per move, >1 zooms in (default 1.02).
    zoom_scale: f64 {
        flag: Option<f64> [long, value_name = "S", allow_negative_numbers = true],
        raw: f64,
        default: 1.02,
        check: |v| v.is_finite() && (0.5..=2.0).contains(v) => "must be from 0.5 to 2 (>1 zooms in)",
        resume: fixed,
        drawer: (any),
    }
    /// Shift per move in pixels, X,Y (positive: content moves right/down; default 0,0).
    zoom_shift: (f64, f64) {
        flag: Option<String> [long, value_name = "X,Y", allow_negative_numbers = true],
        raw: NumberList,
        resolve: parse_zoom_shift(p.zoom_shift.as_ref(), size)?,
        resume: fixed,
        drawer: (any),
    }
    /// Rotation per move in degrees, positive = counterclockwise (default 0).
    zoom_rotate: f64 {
        flag: Option<f64> [long, value_name = "DEG", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && v.abs() <= 180.0 => "must be degrees from -180 to 180",
        resume: fixed,
        drawer: (any),
    }
    /// Starting point: codes (random codebook entries; vqgan's default), random (random cells or
    /// spectrum; the other drawers' default), perlin, gradient or snow.
    init: InitKind {
        flag: Option<InitKind> [long, value_name = "KIND", value_parser = enum_parser::<InitKind>()],
        raw: InitKind,
        default: match drawer {
            DrawerKind::Vqgan => InitKind::Codes,
            _ => InitKind::Random,
        },
        resume: fixed,
        drawer: (any),
    }
    /// Start from this image (resized and cropped to --size, then encoded).
    init_image: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "PATH"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Weight of the pull back toward the initial latents (default 0).
    init_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
    }
    /// pixray's --init_weight_dist: the same pull as --init-weight (MSE to the initial parameters
    /// / 2), added to it (default 0).
    init_weight_dist: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0.0,
    }
    /// pixray's --init_weight_cos: W x (1 - cosine) between the parameters and the initial ones,
    /// both flattened (default 0).
    init_weight_cos: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0.0,
    }
    /// pixray's --init_weight_pix: W x the mean absolute pixel difference to --init-image / 2
    /// (default 0; needs --init-image).
    init_weight_pix: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0.0,
    }
    /// Image prompt PATH[:weight]; repeatable.
    image_prompts: Vec<ImagePrompt> {
        flag: Vec<String> [long = "image-prompt", value_name = "PATH[:W]"],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
    }
    /// Spot prompt text[:weight[:stop]] (pixray's --spot); repeatable: scores only the spot of the
    /// image (the black part of --spot-file), cut and augmented as each cutout.
    spot: Vec<Prompt> {
        flag: Vec<String> [long = "spot", value_name = "PROMPT"],
        raw: PromptList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// Spot-off prompt text[:weight[:stop]] (pixray's --spot_off); repeatable: scores the rest of
    /// the image (the white part of --spot-file).
    spot_off: Vec<Prompt> {
        flag: Vec<String> [long = "spot-off", value_name = "PROMPT"],
        raw: PromptList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// The spot's mask: black (< 0.5) is the spot, white the rest, stretched to the image (same
    /// aspect ratio). Without it pixray's: a centred disc (radius 0.235 of the side for square
    /// images, 0.3 of the shorter side otherwise).
    spot_file: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "MASK"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Overlay image PATH|GLOB (pixray's): pasted over the picture (with its own alpha, or
    /// --overlay-alpha) at the overlay steps and taken back into the drawer's parameters (a glob:
    /// its first file).
    overlay_image: Option<String> {
        flag: Option<String> [long, value_name = "PATH|GLOB"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Overlay every N steps (default 10; pixray's units: 10i, 10%).
    overlay_every: i64 {
        flag: Option<String> [long, value_name = "N"],
        raw: Count,
        resolve: parse_count(p.overlay_every.as_ref(), steps, "--overlay-every", 10)?,
        check: |v| *v >= 1 => "must be at least 1",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 10,
    }
    /// Overlay at the steps N with N % every == offset (default 0: from the start; units).
    overlay_offset: i64 {
        flag: Option<String> [long, value_name = "N", allow_negative_numbers = true],
        raw: Count,
        resolve: parse_count(p.overlay_offset.as_ref(), steps, "--overlay-offset", 0)?,
        check: |v| *v >= 0 => "must be 0 or more",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0,
    }
    /// The last step an overlay is pasted after, inclusive (default: to the end; units).
    overlay_until: Option<i64> {
        flag: Option<String> [long, value_name = "N", allow_negative_numbers = true],
        raw: Count,
        resolve: parse_opt_count(p.overlay_until.as_ref(), steps, "--overlay-until")?,
        resume: fixed,
        drawer: (any),
    }
    /// The overlay's opacity, 0 to 255 (default: the image's own alpha; opaque without one).
    overlay_alpha: Option<i64> {
        flag: Option<i64> [long, value_name = "A", allow_negative_numbers = true],
        raw: i64,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// pixray's --image_prompt_shuffle: each image prompt gets cutouts of its own draws instead
    /// of sharing the picture's crops and augments.
    image_prompt_shuffle: bool {
        flag: bool [long],
        raw: bool,
        default: false,
        resume: fixed,
        drawer: (any),
        record: |v| *v,
    }
    /// Label prompt text[:weight[:stop]] (pixray's --labels); repeatable: the text in pixray's 7
    /// ImageNet templates ("itap of a {}.", ...), their embeddings averaged, as CLIP's zero-shot
    /// classifier.
    labels: Vec<Prompt> {
        flag: Vec<String> [long = "label", value_name = "TEXT"],
        raw: PromptList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// Target image PATH|GLOB[:weight[:stop]] (pixray's -ti); repeatable: its files are encoded
    /// once with CLIP's preprocessing, unlike --image-prompt's per-step cutouts.
    target_images: Vec<TargetImage> {
        flag: Vec<String> [long = "target-image", value_name = "PATH[:W[:STOP]]"],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// Noise prompt SEED[:weight]: a random CLIP-space direction (same seed, same direction);
    /// repeatable.
    noise_prompts: Vec<NoisePrompt> {
        flag: Vec<String> [long = "noise-prompt", value_name = "SEED[:W]", allow_negative_numbers = true],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
    }
    /// Extra losses, comma list of name[:weight[:stop]] (tv, saturation, symmetry, smoothness,
    /// edge); below stop a term pushes no more.
    loss: Vec<LossTerm> {
        flag: Option<String> [long, value_name = "LIST"],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
    }
    /// Draw in these colours only: a comma list of #rrggbb / #rgb / (r+g+b) / names, ramps
    /// `a->b\N`, or pico8, gameboy, cga, grayscale, sepia.
    palette: Option<Palette> {
        flag: Option<String> [long, value_name = "SPEC"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Pull of each pixel toward its nearest palette colour (default 10, pixray's lookup_beta).
    palette_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: DEFAULT_PALETTE_WEIGHT,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
    }
    /// VQGAN: a known name (imagenet_f16_16384, ...) or a .ckpt/.safetensors path.
    vqgan: String {
        flag: Option<String> [long, value_name = "NAME|PATH"],
        raw: String,
        default: DEFAULT_VQGAN.to_string(),
        resume: fixed,
        // A preset's VQGAN is ignored by the other drawers, not refused.
        drawer: (uses Vqgan),
    }
    /// CLIP model(s), comma separated: known names (ViT-B/32, ...) or paths.
    clip: Vec<String> {
        flag: Option<String> [long, value_name = "NAME|PATH,..."],
        raw: StringList,
        default: vec![DEFAULT_CLIP.to_string()],
        resume: fixed,
        drawer: (any),
    }
    /// Device: auto, cpu, cuda or cuda:N.
    device: String {
        flag: Option<String> [long, value_name = "DEVICE"],
        raw: String,
        default: "auto".to_string(),
        resume: may_change,
        drawer: (any),
    }
    /// Numeric precision of the frozen models: f32, bf16 or auto.
    precision: Precision {
        flag: Option<Precision> [long, value_name = "P", value_parser = enum_parser::<Precision>()],
        raw: Precision,
        default: Precision::Auto,
        resume: fixed,
        drawer: (any),
    }
    /// Pixray's auto-stop: after 12 steps without a new best loss the learning rate is divided by
    /// 10, and the run ends after more such drops than --lr-drops lists (with none: at the first
    /// plateau). Costs one host sync per step, to read the loss.
    auto_stop: bool {
        flag: bool [long],
        raw: bool,
        default: false,
        resume: fixed,
        drawer: (any),
        // Written only when on: runs without it keep their run.toml (and batch jobs their names).
        record: |v| *v,
    }
    /// pixel: the cell shape, rect (default), rectshift, hex, tri, diamond or knit (pixray's).
    pixel_type: PixelType {
        flag: Option<PixelType> [long, value_name = "TYPE", value_parser = enum_parser::<PixelType>()],
        raw: PixelType,
        default: PixelType::Rect,
        resume: fixed,
        drawer: (only Pixel),
    }
    /// pixel: keep the grid symmetric (odd columns and rows for hex, rectshift and diamond; odd
    /// columns and even rows for tri), as pixray (default true).
    pixel_edge_check: bool {
        flag: Option<bool> [long, value_name = "BOOL", action = clap::ArgAction::Set],
        raw: bool,
        default: true,
        resume: fixed,
        drawer: (only Pixel),
    }
    /// pixel: without --pixel-size, scale the default grid so cells are about square (1.414 x the
    /// columns for tri, x the rows for hex, 2 x the rows for diamond), as pixray (default true).
    pixel_iso_check: bool {
        flag: Option<bool> [long, value_name = "BOOL", action = clap::ArgAction::Set],
        raw: bool,
        default: true,
        resume: fixed,
        drawer: (only Pixel),
    }
    /// clipdraw and line-sketch: the number of strokes (default 1024 for clipdraw, 24 for
    /// line-sketch).
    strokes: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: match drawer {
            DrawerKind::LineSketch => 24,
            _ => 1024,
        },
        check: |v| (1..=100_000).contains(v) => "must be from 1 to 100000",
        resume: fixed,
        drawer: (only Clipdraw, LineSketch),
    }
    /// clipdraw and line-sketch: the thinnest stroke, in percent of the image height (default 1
    /// for clipdraw, 0.5 for line-sketch, whose strokes stay at least 1 pixel wide as pixray's).
    min_stroke_width: f64 {
        flag: Option<f64> [long, value_name = "PCT", allow_negative_numbers = true],
        raw: f64,
        default: match drawer {
            DrawerKind::LineSketch => 0.5,
            _ => 1.0,
        },
        check: |v| v.is_finite() && *v > 0.0 && *v <= 100.0 => "must be a percent of the height, > 0 and at most 100",
        resume: fixed,
        drawer: (only Clipdraw, LineSketch),
    }
    /// clipdraw and line-sketch: the widest stroke, in percent of the image height (default 5 for
    /// clipdraw, 2 for line-sketch).
    max_stroke_width: f64 {
        flag: Option<f64> [long, value_name = "PCT", allow_negative_numbers = true],
        raw: f64,
        default: match drawer {
            DrawerKind::LineSketch => 2.0,
            _ => 5.0,
        },
        check: |v| v.is_finite() && *v > 0.0 && *v <= 100.0 => "must be a percent of the height, > 0 and at most 100",
        resume: fixed,
        drawer: (only Clipdraw, LineSketch),
    }
    /// line-sketch: cubic segments per stroke (default 8).
    stroke_length: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 8,
        check: |v| (1..=1000).contains(v) => "must be from 1 to 1000",
        resume: fixed,
        drawer: (only LineSketch),
    }
    /// line-sketch: let the paper colour (#f2eecb) change too (default false).
    allow_paper_color: bool {
        flag: Option<bool> [long, value_name = "BOOL", action = clap::ArgAction::Set],
        raw: bool,
        default: false,
        resume: fixed,
        drawer: (only LineSketch),
    }
    /// pixel, clipdraw and line-sketch: draw with alpha (pixray's --transparent). While
    /// optimizing, CLIP sees the drawing over a new random background each step; the saved PNG
    /// keeps its alpha and the SVG has no background.
    transparent: bool {
        flag: bool [long],
        raw: bool,
        default: false,
        resume: fixed,
        drawer: (only Pixel, Clipdraw, LineSketch),
        // Written only when on: other runs keep their run.toml (and batch jobs their names).
        record: |v| *v,
    }
    /// With --transparent: adds W x the mean alpha to the loss (pixray's --transparent_weight;
    /// default 0). Higher values leave more of the picture empty.
    transparent_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (only Pixel, Clipdraw, LineSketch),
        record: |v| *v != 0.0,
    }
    /// Animation mode (pixray's --animation_dir): one frame per file of the longest of the
    /// --overlay-image, --target-image, --init-image and --image-prompt lists, each with its own
    /// latents, optimized --save-every steps in turn and blended with the previous frame after
    /// each round; frames, anim.gif (and anim.mp4 with ffmpeg) go to DIR (relative: in the run
    /// directory).
    animation_dir: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "DIR"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Animation: the opacity, 0 to 255, of the previous frame pasted over each frame after a
    /// round (pixray's --animation_alpha; default 128).
    animation_alpha: i64 {
        flag: Option<i64> [long, value_name = "A", allow_negative_numbers = true],
        raw: i64,
        default: 128,
        check: |v| (0..=255).contains(v) => "must be from 0 to 255",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 128,
    }
    /// Animation: the opacity, 0 to 255, of each frame's --init-image over the drawer's random
    /// start (pixray's --init_image_alpha, which it uses for animation frames only; default 200).
    init_image_alpha: i64 {
        flag: Option<i64> [long, value_name = "A", allow_negative_numbers = true],
        raw: i64,
        default: 200,
        check: |v| (0..=255).contains(v) => "must be from 0 to 255",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 200,
    }
    /// Image labels PATH|GLOB (pixray's --image_labels): the images are taken into the drawer's
    /// parameters, averaged, and the parameters pulled toward them (spherical distance).
    image_labels: Option<String> {
        flag: Option<String> [long, value_name = "PATH|GLOB"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// The pull of --image-labels (pixray's --image_label_weight; default 1).
    image_label_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 1.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 1.0,
    }
    /// Write frames/NNNNNN.png at each save (pixray's --save_intermediates; default true). With
    /// false, --save-every still writes checkpoints.
    save_intermediates: bool {
        flag: Option<bool> [long, value_name = "BOOL", action = clap::ArgAction::Set],
        raw: bool,
        default: true,
        resume: fixed,
        drawer: (any),
        record: |v| !*v,
    }
    /// --loss smoothness: pixray's --smoothness_type, default, clipped (sharpness at most 0.5) or
    /// log (log(1 + sharpness)).
    smoothness_type: SmoothnessType {
        flag: Option<SmoothnessType> [long, value_name = "TYPE", value_parser = enum_parser::<SmoothnessType>()],
        raw: SmoothnessType,
        default: SmoothnessType::Default,
        resume: fixed,
        drawer: (any),
        record: |v| *v != SmoothnessType::Default,
    }
    /// --loss smoothness: a Gaussian blur of this size (pixels, no padding) first, as pixray's
    /// --smoothness_gaussian_kernel (default 0: none).
    smoothness_gaussian_kernel: i64 {
        flag: Option<i64> [long, value_name = "K", allow_negative_numbers = true],
        raw: i64,
        default: 0,
        check: |v| (0..=63).contains(v) => "must be from 0 (no blur) to 63",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0,
    }
    /// --loss smoothness: the blur's standard deviation (pixray's --smoothness_gaussian_std;
    /// default 1).
    smoothness_gaussian_std: f64 {
        flag: Option<f64> [long, value_name = "S", allow_negative_numbers = true],
        raw: f64,
        default: 1.0,
        check: |v| v.is_finite() && *v > 0.0 => "must be a number > 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 1.0,
    }
    /// --loss edge: the band along every edge, in percent of the width or height (pixray's
    /// --edge_thickness; default 5).
    edge_thickness: f64 {
        flag: Option<f64> [long, value_name = "PCT", allow_negative_numbers = true],
        raw: f64,
        default: 5.0,
        check: |v| (0.0..=50.0).contains(v) => "must be a percent from 0 to 50",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 5.0,
    }
    /// --loss edge: each band on its own, L,R,U,D percents (pixray's --edge_margins; default
    /// --edge-thickness on all four).
    edge_margins: Option<Margins> {
        flag: Option<String> [long, value_name = "L,R,U,D"],
        raw: String,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// --loss edge: the colour the bands are pulled toward (pixray's --edge_color; default white).
    edge_color: Colour {
        flag: Option<String> [long, value_name = "COLOUR"],
        raw: String,
        default: Colour([255, 255, 255]),
        resume: fixed,
        drawer: (any),
        record: |v| *v != Colour([255, 255, 255]),
    }
    /// --loss edge: the whole term's factor (pixray's --edge_color_weight; default 0.1).
    edge_color_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.1,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0.1,
    }
    /// --loss edge: the pull of the whole picture toward the colour, added before that factor
    /// (pixray's --global_color_weight; default 0.05).
    global_color_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 0.05,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0.05,
    }
    /// --loss edge: pull toward this image (stretched to the picture) instead of the colour
    /// (pixray's --edge_input_image).
    edge_input_image: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "PATH"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// --loss edge: instead of the bands, the mask's black part is pulled (pixray's
    /// --edge_mask_image: where the mask is above 0 the loss is 0).
    edge_mask_image: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "PATH"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// Vector prompt FILE.json[:weight[:stop]] (pixray's --vector_prompts); repeatable: a JSON
    /// table of CLIP-space directions by model name, scored as a text prompt at 0.1 x the weight;
    /// a model the table lacks is skipped with a warning.
    vector_prompts: Vec<VectorPrompt> {
        flag: Vec<String> [long = "vector-prompt", value_name = "FILE.json[:W[:STOP]]"],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// pixray's filters, comma list of name[:weight]: wallpaper (a repeating pattern), lookup
    /// (the palette: --palette, or pixray's 16 colours without one).
    filters: Vec<FilterTerm> {
        flag: Option<String> [long, value_name = "LIST"],
        raw: StringList,
        default: Vec::new(),
        resume: fixed,
        drawer: (any),
        record: |v| !v.is_empty(),
    }
    /// --filters wallpaper: none (wrap both ways, pixray's default), shift (stacked half a
    /// width over, twice as tall), horizontal or vertical.
    wallpaper_type: WallpaperType {
        flag: Option<WallpaperType> [long, value_name = "TYPE", value_parser = enum_parser::<WallpaperType>()],
        raw: WallpaperType,
        default: WallpaperType::None,
        resume: fixed,
        drawer: (any),
        record: |v| *v != WallpaperType::None,
    }
    /// --filters wallpaper: pixels matched across each seam (trimmed, with a loss; default 0).
    wallpaper_edge_match: i64 {
        flag: Option<i64> [long, value_name = "PX", allow_negative_numbers = true],
        raw: i64,
        default: 0,
        check: |v| *v == 0 || (2..=256).contains(v) => "must be 0 or from 2 to 256",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 0,
    }
    /// --filters lookup: pixray's --lookup_beta, the pull toward the palette (the same as
    /// --palette-weight).
    lookup_beta: Option<f64> {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// --loss aesthetic: the rating (0 to 10) the picture's cutouts are pulled toward (pixray's
    /// --aesthetic_target; default 10).
    aesthetic_target: f64 {
        flag: Option<f64> [long, value_name = "R", allow_negative_numbers = true],
        raw: f64,
        default: 10.0,
        check: |v| (0.0..=10.0).contains(v) => "must be a rating from 0 to 10",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 10.0,
    }
    /// --loss aesthetic: the head, a known name (ava_vit_b_16_linear, pixray's, on ViT-B/16) or a
    /// .pth/.safetensors path (it reads the run's CLIP model of its input size).
    aesthetic_model: String {
        flag: Option<String> [long, value_name = "NAME|PATH"],
        raw: String,
        default: "ava_vit_b_16_linear".to_string(),
        resume: fixed,
        drawer: (any),
        record: |v| v != "ava_vit_b_16_linear",
    }
    /// Deterministic kernels (pixray's --deterministic, cuDNN's deterministic convolutions, and
    /// more): cuDNN without autotuning and ATen's deterministic algorithms wherever libtorch has
    /// them (on CUDA, grid_sample's and adaptive pooling's backward have none: libtorch warns).
    /// On CPU the loop is deterministic already, so it changes nothing there.
    deterministic: bool {
        flag: bool [long],
        raw: bool,
        default: false,
        resume: may_change,
        drawer: (any),
        record: |v| *v,
    }
    /// --loss style: the picture whose style is drawn (pixray's --style_file; stretched to the
    /// picture's size, bicubic, as pixray does).
    style_file: Option<PathBuf> {
        flag: Option<PathBuf> [long, value_name = "IMAGE"],
        raw: PathBuf,
        default: None,
        resume: fixed,
        drawer: (any),
    }
    /// --loss style: how much the picture keeps its own layout against the style's statistics
    /// (pixray's --styleloss_content_weight; default 32, halved at each finer scale).
    styleloss_content_weight: f64 {
        flag: Option<f64> [long, value_name = "W", allow_negative_numbers = true],
        raw: f64,
        default: 32.0,
        check: |v| v.is_finite() && *v >= 0.0 => "must be a number >= 0",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 32.0,
    }
    /// --loss style: the input VGG16 sees (pixray's --styleloss_ospace): uniform (default) or vgg.
    styleloss_ospace: StyleSpace {
        flag: Option<StyleSpace> [long, value_name = "SPACE", value_parser = enum_parser::<StyleSpace>()],
        raw: StyleSpace,
        default: StyleSpace::Uniform,
        resume: fixed,
        drawer: (any),
        record: |v| *v != StyleSpace::Uniform,
    }
    /// --loss style: the steps before it starts (pixray's --styleloss_skip; default 100).
    styleloss_skip: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 100,
        check: |v| *v >= 0 => "must be 0 or more",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 100,
    }
    /// --loss style: scored on every Nth step only (pixray's --styleloss_every; default 1).
    styleloss_every: i64 {
        flag: Option<i64> [long, value_name = "N", allow_negative_numbers = true],
        raw: i64,
        default: 1,
        check: |v| *v >= 1 => "must be 1 or more",
        resume: fixed,
        drawer: (any),
        record: |v| *v != 1,
    }
    /// --loss style: the VGG16, a known name (vgg16: torchvision's ImageNet weights) or a path:
    /// torchvision's .pth, or a taming VQGAN checkpoint (its LPIPS network holds the same VGG16).
    style_model: String {
        flag: Option<String> [long, value_name = "NAME|PATH"],
        raw: String,
        default: "vgg16".to_string(),
        resume: fixed,
        drawer: (any),
        record: |v| v != "vgg16",
    }
    /// --loss resmem: the ResMem model, a known name (resmem: the memorability model pixray
    /// uses) or a path to its model.pt.
    resmem_model: String {
        flag: Option<String> [long, value_name = "NAME|PATH"],
        raw: String,
        default: "resmem".to_string(),
        resume: fixed,
        drawer: (any),
        record: |v| v != "resmem",
    }
}
