//! Generation settings: the file/flag form (`PartialSettings`, every field optional) and the
//! resolved, validated form (`Settings`) that the rest of the program sees.
//!
//! Precedence: built-in defaults < presets in order < `--config` < flags. Every layer goes
//! through the same parsing, so an invalid value fails with the same message wherever it came from.
use crate::cli::GenerateArgs;
use crate::error::usage;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One text prompt: `text[:weight[:stop]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub weight: f64,
    /// Gradient flows only while the signed distance is above this (−∞: always).
    pub stop: f64,
    /// Story phase (0-based): prompts separated by `^` take turns (see `--change-prompt-every`).
    pub phase: usize,
}

impl Prompt {
    /// Parses `text`, `text:weight` or `text:weight:stop`. Up to two numeric suffixes are peeled
    /// from the right (pixray's rule), so `a photo: sunset` keeps its colon.
    pub fn parse(spec: &str) -> Result<Prompt> {
        let spec = spec.trim();
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut nums = Vec::new();
        while nums.len() < 2 && parts.len() > 1 {
            let last = parts[parts.len() - 1].trim();
            match last.parse::<f64>() {
                Ok(v) => {
                    nums.push((last, v));
                    parts.pop();
                }
                Err(_) => break,
            }
        }
        nums.reverse();
        let text = parts.join(":").trim().to_string();
        if text.is_empty() {
            return Err(usage(format!("prompt '{spec}': the text is empty")));
        }
        let weight = nums.first().map(|n| n.1).unwrap_or(1.0);
        let stop = nums.get(1).map(|n| n.1).unwrap_or(f64::NEG_INFINITY);
        if !weight.is_finite() {
            return Err(usage(format!(
                "prompt '{spec}': weight must be a finite number"
            )));
        }
        if weight == 0.0 {
            return Err(usage(format!(
                "prompt '{spec}': weight 0 does nothing; remove the prompt"
            )));
        }
        if stop.is_nan() {
            return Err(usage(format!("prompt '{spec}': stop must be a number")));
        }
        Ok(Prompt {
            text,
            weight,
            stop,
            phase: 0,
        })
    }

    /// Splits a prompt argument: `^` separates story phases, `|` prompts within a phase
    /// (nerdyrodent's syntax: `"a | b:-1 ^ c"` is phase 0 = [a, b:-1], phase 1 = [c]).
    pub fn parse_list(arg: &str) -> Result<Vec<Prompt>> {
        let phases: Vec<&str> = arg.split('^').collect();
        let mut out = Vec::new();
        for (phase, part) in phases.iter().enumerate() {
            let before = out.len();
            for spec in part.split('|').filter(|s| !s.trim().is_empty()) {
                let mut p = Prompt::parse(spec)?;
                p.phase = phase;
                out.push(p);
            }
            if phases.len() > 1 && out.len() == before {
                return Err(usage(format!(
                    "prompt '{}': story phase {} is empty (phases are separated by ^)",
                    arg.trim(),
                    phase + 1
                )));
            }
        }
        Ok(out)
    }

    /// The inverse of [`Prompt::parse_list`] for prompts ordered by phase.
    pub fn join_list(prompts: &[Prompt]) -> String {
        let phases = prompts.iter().map(|p| p.phase + 1).max().unwrap_or(1);
        (0..phases)
            .map(|ph| {
                prompts
                    .iter()
                    .filter(|p| p.phase == ph)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join(" ^ ")
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)?;
        if self.weight != 1.0 || self.stop.is_finite() {
            write!(f, ":{}", self.weight)?;
        }
        if self.stop.is_finite() {
            write!(f, ":{}", self.stop)?;
        }
        Ok(())
    }
}

/// An image prompt `PATH[:weight]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePrompt {
    pub path: PathBuf,
    pub weight: f64,
}

impl ImagePrompt {
    pub fn parse(spec: &str) -> Result<ImagePrompt> {
        // A trailing `:number` is a weight unless the whole thing is an existing file.
        if let Some((p, w)) = spec.rsplit_once(':')
            && let Ok(weight) = w.trim().parse::<f64>()
            && !Path::new(spec).exists()
        {
            if !weight.is_finite() || weight == 0.0 {
                return Err(usage(format!(
                    "--image-prompt '{spec}': weight must be a finite non-zero number"
                )));
            }
            return Ok(ImagePrompt {
                path: PathBuf::from(p),
                weight,
            });
        }
        if spec.trim().is_empty() {
            return Err(usage("--image-prompt: empty path"));
        }
        Ok(ImagePrompt {
            path: PathBuf::from(spec),
            weight: 1.0,
        })
    }
}

impl fmt::Display for ImagePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weight == 1.0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}:{}", self.path.display(), self.weight)
        }
    }
}

/// A noise prompt `SEED[:weight]`: a random direction in CLIP's embedding space, the same for
/// the same seed (nerdyrodent's and pixray's `--noise_prompt_seeds/weights`). Adds variety.
#[derive(Debug, Clone, PartialEq)]
pub struct NoisePrompt {
    pub seed: u64,
    pub weight: f64,
}

impl NoisePrompt {
    pub fn parse(spec: &str) -> Result<NoisePrompt> {
        let (seed, weight) = match spec.rsplit_once(':') {
            Some((s, w)) => {
                let w: f64 = w.trim().parse().map_err(|_| {
                    usage(format!(
                        "--noise-prompt '{spec}': expected SEED or SEED:WEIGHT (e.g. 42:0.5)"
                    ))
                })?;
                (s, w)
            }
            None => (spec, 1.0),
        };
        if !weight.is_finite() || weight == 0.0 {
            return Err(usage(format!(
                "--noise-prompt '{spec}': weight must be a finite non-zero number"
            )));
        }
        let seed = seed_from_text(seed).map_err(|_| {
            usage(format!(
                "--noise-prompt '{spec}': the seed must be a non-negative integer or a word"
            ))
        })?;
        Ok(NoisePrompt { seed, weight })
    }
}

impl fmt::Display for NoisePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seed, self.weight)
    }
}

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
                "--size: invalid value '{s}': expected WxH with both sides multiples of 16 from 16 to 4096 (e.g. 256x256)"
            ))
        };
        let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let width: i64 = w.trim().parse().map_err(|_| bad())?;
        let height: i64 = h.trim().parse().map_err(|_| bad())?;
        for v in [width, height] {
            if !(16..=4096).contains(&v) || v % 16 != 0 {
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

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn names() -> String {
                [$($text),+].join(", ")
            }
        }
        impl FromStr for $name {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(usage(format!("{}: invalid value '{}': expected one of {}", $what, s, $name::names()))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

named_enum!(
    /// How cutouts are taken from the image.
    CutMethod, "--cut-method" { Pooled = "pooled", Original = "original", Pixray = "pixray" }
);
named_enum!(
    /// Differentiable augments applied to each cutout.
    Augment, "--augments" {
        Flip = "flip",
        Affine = "affine",
        Perspective = "perspective",
        Jitter = "jitter",
        Erasing = "erasing",
        Noise = "noise",
    }
);
named_enum!(
    /// Optimizer over the latents.
    OptimizerKind, "--optimizer" {
        Adam = "adam",
        AdamW = "adamw",
        Adamax = "adamax",
        Adagrad = "adagrad",
        RmsProp = "rmsprop",
        AdamWAmsgrad = "adamw-amsgrad",
    }
);
named_enum!(
    /// What the loop optimizes: the image parameterization (pixray's drawers).
    DrawerKind, "--drawer" { Vqgan = "vqgan", FastPixel = "fast_pixel", Fft = "fft" }
);
named_enum!(
    /// Starting latents when there is no init image.
    InitKind, "--init" {
        Codes = "codes",
        Random = "random",
        Perlin = "perlin",
        Gradient = "gradient",
        Snow = "snow",
    }
);
named_enum!(
    /// Extra image losses (pixray style).
    LossKind, "--loss" { Tv = "tv", Saturation = "saturation", Symmetry = "symmetry", Smoothness = "smoothness" }
);
named_enum!(
    /// Numeric precision of the frozen models (z and optimizer state stay f32).
    Precision, "--precision" { F32 = "f32", Bf16 = "bf16", Auto = "auto" }
);

/// The resolved, validated settings of one generation run. Serialized into `run.toml`,
/// checkpoints and PNG metadata, and read back by `--config` and `--resume`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub drawer: DrawerKind,
    /// fast_pixel's grid, `(columns, rows)`, resolved from `--pixel-size`/`--pixel-scale`.
    pub pixel_grid: (i64, i64),
    /// fft: the spectrum's decay power (aphantasia's `decay`; higher is smoother).
    pub fft_decay: f64,
    /// fft: colour saturation of the decorrelation matrix (aphantasia's `colors`).
    pub fft_colors: f64,
    /// fft: the contrast the rendered image is normalized to (aphantasia's `contrast`).
    pub fft_contrast: f64,
    pub prompts: Vec<Prompt>,
    pub size: Size,
    pub steps: i64,
    pub seed: u64,
    pub cutouts: i64,
    pub cut_pow: f64,
    pub cut_method: CutMethod,
    pub augments: Vec<Augment>,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub lr_drops: Vec<f64>,
    pub save_every: i64,
    /// Cutout batches per step, each of `cutouts` cutouts; the loss is their mean, and each
    /// batch's CLIP activations are freed before the next (pixray's `batches`, for memory).
    pub batches: i64,
    /// Steps per story phase when the prompts have `^` phases (0: the steps split evenly).
    pub change_prompt_every: i64,
    /// Seamless tiles: circular padding in the decoder and a random wrap-around shift of the
    /// image before cutouts each step.
    pub tile: bool,
    /// Zoom video: every this many steps (0: off) the image is moved by `zoom` and re-encoded.
    pub zoom_every: i64,
    /// First step at which a zoom may happen.
    pub zoom_start: i64,
    pub zoom: crate::generate::zoom::Move,
    pub init: InitKind,
    pub init_image: Option<PathBuf>,
    pub init_weight: f64,
    pub image_prompts: Vec<ImagePrompt>,
    pub noise_prompts: Vec<NoisePrompt>,
    pub losses: Vec<(LossKind, f64)>,
    /// `--palette`: the spec as given and its colours (None: any colour).
    pub palette: Option<(String, Vec<crate::palette::Rgb>)>,
    /// Weight of the pull of each pixel toward its nearest palette colour (pixray's lookup_beta).
    pub palette_weight: f64,
    pub vqgan: String,
    pub clip: Vec<String>,
    pub device: String,
    pub precision: Precision,
    /// Presets applied, in order (for the record).
    pub presets: Vec<String>,
}

/// Built-in defaults (the anchors' usual values: nerdyrodent's lr 0.1, 32 cutouts, ViT-B/32).
pub const DEFAULT_STEPS: i64 = 300;
pub const DEFAULT_CUTOUTS: i64 = 32;
pub const DEFAULT_LR: f64 = 0.1;
/// pixray's `learning_rate` default, which its fast_pixel drawer uses.
pub const DEFAULT_LR_FAST_PIXEL: f64 = 0.2;
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

/// Settings as written in TOML (config files, presets, run.toml) with every key optional.
/// Keys are the flag names (kebab-case). Unknown keys are errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PartialSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fft_decay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fft_colors: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fft_contrast: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompts: Option<PromptList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutouts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_pow: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augments: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_drops: Option<NumberList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_every: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_prompt_every: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoom_every: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoom_start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoom_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoom_shift: Option<NumberList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoom_rotate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_image: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_weight: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_prompts: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_prompts: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub palette: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub palette_weight: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vqgan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<String>>,
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

impl PartialSettings {
    /// Overlays `other` on `self` (fields set in `other` win).
    pub fn merge(&mut self, other: PartialSettings) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            drawer,
            pixel_size,
            pixel_scale,
            fft_decay,
            fft_colors,
            fft_contrast,
            prompts,
            size,
            steps,
            seed,
            cutouts,
            cut_pow,
            cut_method,
            augments,
            lr,
            optimizer,
            lr_drops,
            save_every,
            batches,
            change_prompt_every,
            tile,
            zoom_every,
            zoom_start,
            zoom_scale,
            zoom_shift,
            zoom_rotate,
            init,
            init_image,
            init_weight,
            image_prompts,
            noise_prompts,
            loss,
            palette,
            palette_weight,
            vqgan,
            clip,
            device,
            precision
        );
        if let Some(p) = other.presets {
            self.presets.get_or_insert_with(Vec::new).extend(p);
        }
    }

    /// Parses a TOML settings file (`--config`); unknown keys name the key and the file.
    pub fn from_toml(text: &str, origin: &Path) -> Result<PartialSettings> {
        toml::from_str(text).map_err(|e| {
            usage(format!(
                "{}: {}",
                origin.display(),
                e.message().trim().replace('\n', " ")
            ))
        })
    }

    /// The flag layer.
    pub fn from_args(a: &GenerateArgs) -> PartialSettings {
        PartialSettings {
            drawer: a.drawer.clone(),
            pixel_size: a.pixel_size.clone(),
            pixel_scale: a.pixel_scale,
            fft_decay: a.fft_decay,
            fft_colors: a.fft_colors,
            fft_contrast: a.fft_contrast,
            prompts: a.prompt.clone().map(PromptList::One),
            size: a.size.clone(),
            steps: a.steps,
            seed: a.seed.clone().map(SeedValue::Text),
            cutouts: a.cutouts,
            cut_pow: a.cut_pow,
            cut_method: a.cut_method.clone(),
            augments: a.augments.clone().map(StringList::One),
            lr: a.lr,
            optimizer: a.optimizer.clone(),
            lr_drops: a.lr_drops.clone().map(NumberList::Text),
            save_every: a.save_every,
            batches: a.batches,
            change_prompt_every: a.change_prompt_every,
            tile: a.tile.then_some(true),
            zoom_every: a.zoom_every,
            zoom_start: a.zoom_start,
            zoom_scale: a.zoom_scale,
            zoom_shift: a.zoom_shift.clone().map(NumberList::Text),
            zoom_rotate: a.zoom_rotate,
            init: a.init.clone(),
            init_image: a.init_image.clone(),
            init_weight: a.init_weight,
            image_prompts: if a.image_prompt.is_empty() {
                None
            } else {
                Some(StringList::Many(a.image_prompt.clone()))
            },
            noise_prompts: if a.noise_prompt.is_empty() {
                None
            } else {
                Some(StringList::Many(a.noise_prompt.clone()))
            },
            loss: a.loss.clone().map(StringList::One),
            palette: a.palette.clone(),
            palette_weight: a.palette_weight,
            vqgan: a.vqgan.clone(),
            clip: a.clip.clone().map(StringList::One),
            device: a.device.clone(),
            precision: a.precision.clone(),
            presets: None,
        }
    }

    /// Resolves and validates: every missing key takes its default, every value is checked once.
    /// A missing seed is drawn at random here (and then recorded).
    pub fn resolve(&self) -> Result<Settings> {
        let drawer = match &self.drawer {
            Some(s) => s.parse()?,
            None => DrawerKind::Vqgan,
        };
        let prompts = match &self.prompts {
            Some(p) => p.parse()?,
            None => Vec::new(),
        };
        let size = match &self.size {
            Some(s) => Size::parse(s)?,
            None => Size {
                width: 256,
                height: 256,
            },
        };
        let steps = self.steps.unwrap_or(DEFAULT_STEPS);
        if steps < 1 {
            return Err(usage(format!(
                "--steps: invalid value {steps}: must be at least 1"
            )));
        }
        let seed = match &self.seed {
            Some(SeedValue::Int(v)) if *v >= 0 => *v as u64,
            Some(SeedValue::Int(v)) => {
                return Err(usage(format!(
                    "--seed: invalid value {v}: must not be negative"
                )));
            }
            Some(SeedValue::Text(t)) => seed_from_text(t)?,
            None => rand::random::<u32>() as u64,
        };
        let cutouts = self.cutouts.unwrap_or(DEFAULT_CUTOUTS);
        if cutouts < 1 {
            return Err(usage(format!(
                "--cutouts: invalid value {cutouts}: must be at least 1"
            )));
        }
        let cut_pow = self.cut_pow.unwrap_or(1.0);
        if !(cut_pow.is_finite() && cut_pow > 0.0) {
            return Err(usage(format!(
                "--cut-pow: invalid value {cut_pow}: must be a number > 0"
            )));
        }
        let cut_method = match &self.cut_method {
            Some(s) => s.parse()?,
            None => CutMethod::Pooled,
        };
        let augments = match &self.augments {
            Some(list) => parse_augments(&list.items())?,
            None => DEFAULT_AUGMENTS.to_vec(),
        };
        let lr = self.lr.unwrap_or(match drawer {
            DrawerKind::Vqgan => DEFAULT_LR,
            DrawerKind::FastPixel => DEFAULT_LR_FAST_PIXEL,
            DrawerKind::Fft => DEFAULT_LR_FFT,
        });
        if !(lr.is_finite() && lr > 0.0) {
            return Err(usage(format!(
                "--lr: invalid value {lr}: must be a number > 0"
            )));
        }
        let optimizer = match &self.optimizer {
            Some(s) => s.parse()?,
            None if drawer == DrawerKind::Fft => OptimizerKind::AdamWAmsgrad,
            None => OptimizerKind::Adam,
        };
        let lr_drops = match &self.lr_drops {
            Some(l) => parse_lr_drops(l)?,
            None => Vec::new(),
        };
        let save_every = self.save_every.unwrap_or(DEFAULT_SAVE_EVERY);
        if save_every < 0 {
            return Err(usage(format!(
                "--save-every: invalid value {save_every}: must be 0 (final image only) or more"
            )));
        }
        let batches = self.batches.unwrap_or(1);
        if !(1..=1000).contains(&batches) {
            return Err(usage(format!(
                "--batches: invalid value {batches}: must be from 1 to 1000"
            )));
        }
        let change_prompt_every = self.change_prompt_every.unwrap_or(0);
        if change_prompt_every < 0 {
            return Err(usage(format!(
                "--change-prompt-every: invalid value {change_prompt_every}: must be 0 (split the steps evenly) or more"
            )));
        }
        if change_prompt_every > 0 && prompts.iter().all(|p| p.phase == 0) {
            return Err(usage(
                "--change-prompt-every needs story phases: separate the prompts of each phase with ^ \
                 (e.g. \"a forest ^ a city\")",
            ));
        }
        let tile = self.tile.unwrap_or(false);
        let zoom_every = self.zoom_every.unwrap_or(0);
        if zoom_every < 0 {
            return Err(usage(format!(
                "--zoom-every: invalid value {zoom_every}: must be 0 (no zoom) or more"
            )));
        }
        let zoom_start = self.zoom_start.unwrap_or(0);
        if zoom_start < 0 {
            return Err(usage(format!(
                "--zoom-start: invalid value {zoom_start}: must be 0 or more"
            )));
        }
        let zoom = parse_zoom(
            self.zoom_scale,
            self.zoom_shift.as_ref(),
            self.zoom_rotate,
            size,
        )?;
        let init = match &self.init {
            Some(s) => s.parse()?,
            None if drawer == DrawerKind::Vqgan => InitKind::Codes,
            None => InitKind::Random,
        };
        if init == InitKind::Codes && drawer != DrawerKind::Vqgan {
            return Err(usage(format!(
                "--init codes picks random VQGAN codebook entries; with --drawer {drawer} use random (the default), perlin, gradient or snow"
            )));
        }
        let ds = parse_drawer_settings(self, drawer, size)?;
        let init_weight = self.init_weight.unwrap_or(0.0);
        if !(init_weight.is_finite() && init_weight >= 0.0) {
            return Err(usage(format!(
                "--init-weight: invalid value {init_weight}: must be a number >= 0"
            )));
        }
        let image_prompts = match &self.image_prompts {
            Some(l) => l
                .items()
                .iter()
                .map(|s| ImagePrompt::parse(s))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let noise_prompts = match &self.noise_prompts {
            Some(l) => l
                .items()
                .iter()
                .map(|s| NoisePrompt::parse(s))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let losses = match &self.loss {
            Some(l) => parse_losses(&l.items())?,
            None => Vec::new(),
        };
        // An empty spec (e.g. `palette = ""` in run.toml) means no palette.
        let palette = match self.palette.as_deref().map(str::trim) {
            Some(spec) if !spec.is_empty() => {
                Some((spec.to_string(), crate::palette::parse(spec)?))
            }
            _ => None,
        };
        let palette_weight = self.palette_weight.unwrap_or(DEFAULT_PALETTE_WEIGHT);
        if !(palette_weight.is_finite() && palette_weight >= 0.0) {
            return Err(usage(format!(
                "--palette-weight: invalid value {palette_weight}: must be a number >= 0"
            )));
        }
        let vqgan = self
            .vqgan
            .clone()
            .unwrap_or_else(|| DEFAULT_VQGAN.to_string());
        if vqgan.trim().is_empty() {
            return Err(usage("--vqgan: empty value"));
        }
        let clip = match &self.clip {
            Some(l) => l.items(),
            None => vec![DEFAULT_CLIP.to_string()],
        };
        if clip.is_empty() || clip.iter().any(|c| c.is_empty()) {
            return Err(usage(
                "--clip: expected one or more model names or paths separated by commas",
            ));
        }
        let device = self.device.clone().unwrap_or_else(|| "auto".to_string());
        crate::device::check_device_syntax(&device)?;
        let precision = match &self.precision {
            Some(s) => s.parse()?,
            None => Precision::Auto,
        };
        check_prompt_limits(&prompts, image_prompts.len() + noise_prompts.len())?;
        if let Some(p) = &self.init_image
            && p.to_str().is_none()
        {
            return Err(usage(format!(
                "--init-image {}: the path is not valid UTF-8, and vqclip records it in run.toml (UTF-8 text) \
                 for resume: rename the file or link it under a UTF-8 name",
                p.display()
            )));
        }
        if prompts.is_empty() && image_prompts.is_empty() && noise_prompts.is_empty() {
            return Err(usage(
                "no prompt: give a PROMPT argument (e.g. vqclip generate \"a lighthouse at dusk\"), \
                 --image-prompt, or a --config/--preset that has prompts",
            ));
        }
        Ok(Settings {
            drawer,
            pixel_grid: ds.pixel_grid,
            fft_decay: ds.fft_decay,
            fft_colors: ds.fft_colors,
            fft_contrast: ds.fft_contrast,
            prompts,
            size,
            steps,
            seed,
            cutouts,
            cut_pow,
            cut_method,
            augments,
            lr,
            optimizer,
            lr_drops,
            save_every,
            batches,
            change_prompt_every,
            tile,
            zoom_every,
            zoom_start,
            zoom,
            init,
            init_image: self.init_image.clone(),
            init_weight,
            image_prompts,
            noise_prompts,
            losses,
            palette,
            palette_weight,
            vqgan,
            clip,
            device,
            precision,
            presets: self.presets.clone().unwrap_or_default(),
        })
    }
}

/// The drawer-specific settings, resolved.
struct DrawerSettings {
    pixel_grid: (i64, i64),
    fft_decay: f64,
    fft_colors: f64,
    fft_contrast: f64,
}

/// fast_pixel's grid and fft's decay, colours and contrast. A setting of another drawer is
/// refused, so a typo'd drawer never silently ignores what was asked.
fn parse_drawer_settings(
    p: &PartialSettings,
    drawer: DrawerKind,
    size: Size,
) -> Result<DrawerSettings> {
    let foreign = |flag: &str, owner: DrawerKind| {
        usage(format!(
            "{flag} applies to --drawer {owner}, not to --drawer {drawer}"
        ))
    };
    if drawer != DrawerKind::FastPixel {
        if p.pixel_size.is_some() {
            return Err(foreign("--pixel-size", DrawerKind::FastPixel));
        }
        if p.pixel_scale.is_some() {
            return Err(foreign("--pixel-scale", DrawerKind::FastPixel));
        }
    }
    if drawer != DrawerKind::Fft {
        for (set, flag) in [
            (p.fft_decay.is_some(), "--fft-decay"),
            (p.fft_colors.is_some(), "--fft-colors"),
            (p.fft_contrast.is_some(), "--fft-contrast"),
        ] {
            if set {
                return Err(foreign(flag, DrawerKind::Fft));
            }
        }
    }
    let grid = pixel_grid(p.pixel_size.as_deref(), p.pixel_scale, size)?;
    let fft_decay = p.fft_decay.unwrap_or(DEFAULT_FFT_DECAY);
    if !(fft_decay.is_finite() && (0.0..=4.0).contains(&fft_decay)) {
        return Err(usage(format!(
            "--fft-decay: invalid value {fft_decay}: must be from 0 (white noise) to 4 (very smooth)"
        )));
    }
    let fft_colors = p.fft_colors.unwrap_or(DEFAULT_FFT_COLORS);
    if !(fft_colors.is_finite() && fft_colors > 0.0 && fft_colors <= 10.0) {
        return Err(usage(format!(
            "--fft-colors: invalid value {fft_colors}: must be a number > 0 and at most 10"
        )));
    }
    let fft_contrast = p.fft_contrast.unwrap_or(DEFAULT_FFT_CONTRAST);
    if !(fft_contrast.is_finite() && fft_contrast > 0.0 && fft_contrast <= 10.0) {
        return Err(usage(format!(
            "--fft-contrast: invalid value {fft_contrast}: must be a number > 0 and at most 10"
        )));
    }
    Ok(DrawerSettings {
        pixel_grid: grid,
        fft_decay,
        fft_colors,
        fft_contrast,
    })
}

/// Pixray's fast_pixel grid: `--pixel-size COLSxROWS`, else 40x40 square, 40x50 portrait, 80x45
/// landscape; `--pixel-scale S` divides both (truncating); never more cells than pixels (an
/// explicit size larger than the image is refused, a default one is reduced, as pixray does).
pub fn pixel_grid(spec: Option<&str>, scale: Option<f64>, size: Size) -> Result<(i64, i64)> {
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
    if let Some(sc) = scale {
        if !(sc.is_finite() && sc > 0.0 && sc <= 1000.0) {
            return Err(usage(format!(
                "--pixel-scale: invalid value {sc}: must be a number > 0 (2 halves the columns and rows)"
            )));
        }
        cols = ((cols as f64 / sc) as i64).max(1);
        rows = ((rows as f64 / sc) as i64).max(1);
    }
    Ok((cols.min(w), rows.min(h)))
}

fn parse_augments(items: &[String]) -> Result<Vec<Augment>> {
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

/// `--zoom-scale` (1.02), `--zoom-shift X,Y` (pixels, 0,0) and `--zoom-rotate` (degrees, 0).
fn parse_zoom(
    scale: Option<f64>,
    shift: Option<&NumberList>,
    rotate: Option<f64>,
    size: Size,
) -> Result<crate::generate::zoom::Move> {
    let scale = scale.unwrap_or(1.02);
    if !(scale.is_finite() && (0.5..=2.0).contains(&scale)) {
        return Err(usage(format!(
            "--zoom-scale: invalid value {scale}: must be from 0.5 to 2 (>1 zooms in)"
        )));
    }
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
    let shift = match xy.as_slice() {
        [x, y]
            if x.is_finite()
                && y.is_finite()
                && x.abs() < size.width as f64
                && y.abs() < size.height as f64 =>
        {
            (*x, *y)
        }
        _ => return Err(bad_shift(&format!("{xy:?}"))),
    };
    let rotate_degrees = rotate.unwrap_or(0.0);
    if !(rotate_degrees.is_finite() && rotate_degrees.abs() <= 180.0) {
        return Err(usage(format!(
            "--zoom-rotate: invalid value {rotate_degrees}: must be degrees from -180 to 180"
        )));
    }
    Ok(crate::generate::zoom::Move {
        scale,
        shift,
        rotate_degrees,
    })
}

fn parse_lr_drops(l: &NumberList) -> Result<Vec<f64>> {
    let v = match l {
        NumberList::One(x) => vec![*x],
        NumberList::Many(v) => v.clone(),
        NumberList::Text(s) => s
            .split(',')
            .map(|x| x.trim().trim_end_matches('%'))
            .filter(|x| !x.is_empty())
            .map(|x| {
                x.parse::<f64>().map_err(|_| {
                    usage(format!(
                        "--lr-drops: invalid value '{s}': expected percents like 50,75"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    for x in &v {
        if !(x.is_finite() && *x > 0.0 && *x < 100.0) {
            return Err(usage(format!(
                "--lr-drops: invalid value {x}: each drop must be a percent between 0 and 100"
            )));
        }
    }
    let mut v = v;
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup();
    Ok(v)
}

fn parse_losses(items: &[String]) -> Result<Vec<(LossKind, f64)>> {
    let mut out: Vec<(LossKind, f64)> = Vec::new();
    for it in items {
        let (name, w) = match it.split_once(':') {
            Some((n, w)) => {
                let w: f64 = w.trim().parse().map_err(|_| {
                    usage(format!(
                        "--loss: invalid weight in '{it}': expected name:number (e.g. tv:0.5)"
                    ))
                })?;
                (n, w)
            }
            None => (it.as_str(), 1.0),
        };
        if !w.is_finite() {
            return Err(usage(format!(
                "--loss: invalid weight in '{it}': must be finite"
            )));
        }
        let kind: LossKind = name.parse()?;
        out.retain(|(k, _)| *k != kind);
        out.push((kind, w));
    }
    Ok(out)
}

impl Settings {
    /// The full, explicit TOML form (every key), as written to run.toml and PNG metadata.
    pub fn to_partial(&self) -> PartialSettings {
        let fast_pixel = self.drawer == DrawerKind::FastPixel;
        let fft = self.drawer == DrawerKind::Fft;
        PartialSettings {
            drawer: Some(self.drawer.to_string()),
            pixel_size: fast_pixel.then(|| format!("{}x{}", self.pixel_grid.0, self.pixel_grid.1)),
            pixel_scale: None,
            fft_decay: fft.then_some(self.fft_decay),
            fft_colors: fft.then_some(self.fft_colors),
            fft_contrast: fft.then_some(self.fft_contrast),
            // Story phases need the `^` string form; otherwise one entry per prompt.
            prompts: Some(if self.phase_count() > 1 {
                PromptList::One(Prompt::join_list(&self.prompts))
            } else {
                PromptList::Many(self.prompts.iter().map(|p| p.to_string()).collect())
            }),
            size: Some(self.size.to_string()),
            steps: Some(self.steps),
            seed: Some(SeedValue::Int(self.seed as i64)),
            cutouts: Some(self.cutouts),
            cut_pow: Some(self.cut_pow),
            cut_method: Some(self.cut_method.to_string()),
            augments: Some(StringList::Many(
                self.augments.iter().map(|a| a.to_string()).collect(),
            )),
            lr: Some(self.lr),
            optimizer: Some(self.optimizer.to_string()),
            lr_drops: Some(NumberList::Many(self.lr_drops.clone())),
            save_every: Some(self.save_every),
            batches: Some(self.batches),
            change_prompt_every: Some(self.change_prompt_every),
            tile: Some(self.tile),
            zoom_every: Some(self.zoom_every),
            zoom_start: Some(self.zoom_start),
            zoom_scale: Some(self.zoom.scale),
            zoom_shift: Some(NumberList::Many(vec![self.zoom.shift.0, self.zoom.shift.1])),
            zoom_rotate: Some(self.zoom.rotate_degrees),
            init: Some(self.init.to_string()),
            init_image: self.init_image.clone(),
            init_weight: Some(self.init_weight),
            image_prompts: Some(StringList::Many(
                self.image_prompts.iter().map(|p| p.to_string()).collect(),
            )),
            noise_prompts: Some(StringList::Many(
                self.noise_prompts.iter().map(|p| p.to_string()).collect(),
            )),
            loss: Some(StringList::Many(
                self.losses
                    .iter()
                    .map(|(k, w)| format!("{k}:{w}"))
                    .collect(),
            )),
            palette: Some(
                self.palette
                    .as_ref()
                    .map(|(spec, _)| spec.clone())
                    .unwrap_or_default(),
            ),
            palette_weight: Some(self.palette_weight),
            // Only the vqgan drawer reads a VQGAN.
            vqgan: (self.drawer == DrawerKind::Vqgan).then(|| self.vqgan.clone()),
            clip: Some(StringList::Many(self.clip.clone())),
            device: Some(self.device.clone()),
            precision: Some(self.precision.to_string()),
            presets: Some(self.presets.clone()),
        }
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&self.to_partial()).context("cannot serialize settings")
    }

    /// Whether the zoom move follows step `step` (1-based). Also true at the last step: the
    /// final image is saved first, then the checkpoint holds the moved state, so a run continued
    /// with `--resume --steps` zooms exactly where a longer straight run would have.
    pub fn zoom_due(&self, step: i64) -> bool {
        self.zoom_every > 0 && step >= self.zoom_start.max(1) && step % self.zoom_every == 0
    }

    /// Number of story phases (1 without `^`).
    pub fn phase_count(&self) -> usize {
        self.prompts.iter().map(|p| p.phase + 1).max().unwrap_or(1)
    }

    /// The story phase whose prompts are active at `step` (1-based): phases take turns every
    /// `change_prompt_every` steps (wrapping around), or split the run evenly when that is 0.
    pub fn phase_at(&self, step: i64) -> usize {
        let n = self.phase_count() as i64;
        if n <= 1 {
            return 0;
        }
        let every = if self.change_prompt_every > 0 {
            self.change_prompt_every
        } else {
            (self.steps + n - 1) / n
        };
        (((step - 1).max(0) / every.max(1)) % n) as usize
    }

    /// The prompts as one line (`|` within a phase, `^` between phases), for metadata.
    pub fn prompt_line(&self) -> String {
        Prompt::join_list(&self.prompts)
    }

    /// The steps (1-based) after which the learning rate is divided by 10.
    pub fn lr_drop_steps(&self) -> Vec<i64> {
        self.lr_drops
            .iter()
            .map(|p| ((p / 100.0) * self.steps as f64).round().max(1.0) as i64)
            .collect()
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

/// Longest text prompt, in bytes. CLIP reads 77 tokens (a few hundred characters); the text is also written
/// into run.toml, every PNG and the log, so a megabyte of it is refused rather than copied everywhere.
pub const MAX_PROMPT_BYTES: usize = 10_000;
/// Most prompts of one run (text, image and noise together): each is a loss term at every step.
pub const MAX_PROMPTS: usize = 1_000;

fn check_prompt_limits(prompts: &[Prompt], others: usize) -> Result<()> {
    if let Some((i, p)) = prompts
        .iter()
        .enumerate()
        .find(|(_, p)| p.text.len() > MAX_PROMPT_BYTES)
    {
        return Err(usage(format!(
            "prompt {} is {} bytes long; the limit is {MAX_PROMPT_BYTES} (CLIP reads only its first 77 tokens, \
             a few hundred characters): shorten it",
            i + 1,
            p.text.len()
        )));
    }
    let n = prompts.len() + others;
    if n > MAX_PROMPTS {
        return Err(usage(format!(
            "{n} prompts given; one run takes at most {MAX_PROMPTS} (each adds a loss term to every step): \
             for many separate images use `vqclip batch` with a jobs file"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_suffixes() {
        let p = Prompt::parse("a cat:2:-0.5").unwrap();
        assert_eq!((p.text.as_str(), p.weight, p.stop), ("a cat", 2.0, -0.5));
        let p = Prompt::parse("ratio 16:9 poster").unwrap();
        assert_eq!(p.text, "ratio 16:9 poster");
        let p = Prompt::parse("title: dawn:-1").unwrap();
        assert_eq!((p.text.as_str(), p.weight), ("title: dawn", -1.0));
        assert!(Prompt::parse(":2").is_err());
    }

    #[test]
    fn story_phases_parse_schedule_and_round_trip() {
        let ps = Prompt::parse_list("a | b:-1 ^ c:2:-0.5").unwrap();
        let got: Vec<(&str, usize)> = ps.iter().map(|p| (p.text.as_str(), p.phase)).collect();
        assert_eq!(got, [("a", 0), ("b", 0), ("c", 1)]);
        assert_eq!(Prompt::join_list(&ps), "a | b:-1 ^ c:2:-0.5");
        assert!(Prompt::parse_list("a ^ ^ b").is_err());
        let mut partial = PartialSettings {
            prompts: Some(PromptList::One("x ^ y ^ z".into())),
            steps: Some(10),
            ..Default::default()
        };
        let s = partial.resolve().unwrap();
        assert_eq!(s.phase_count(), 3);
        // 10 steps over 3 phases: 4, 4, 2.
        let phases: Vec<usize> = (1..=10).map(|k| s.phase_at(k)).collect();
        assert_eq!(phases, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
        partial.change_prompt_every = Some(3);
        let s = partial.resolve().unwrap();
        let phases: Vec<usize> = (1..=10).map(|k| s.phase_at(k)).collect();
        assert_eq!(phases, [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]);
        // The serialized form parses back to the same settings.
        let again = PartialSettings::from_toml(&s.to_toml().unwrap(), Path::new("run.toml"))
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn seeds() {
        assert_eq!(seed_from_text("42").unwrap(), 42);
        let a = seed_from_text("my cat").unwrap();
        assert_eq!(a, seed_from_text("my cat").unwrap());
        assert!(a < 1 << 32);
        assert!(seed_from_text("-3").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(
            Size::parse("320x240").unwrap(),
            Size {
                width: 320,
                height: 240
            }
        );
        for bad in ["250x256", "0x16", "8192x16", "abc", "256"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("A Lighthouse, at dusk!"), "a-lighthouse-at-dusk");
        assert_eq!(slug("!!!"), "image");
    }
}
