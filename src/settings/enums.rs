//! The enum-valued settings. One spelling rule, kebab-case, for flags, TOML and run.toml; the
//! spellings of earlier versions (`fast_pixel`) stay accepted as aliases, and case is ignored.
use crate::error::usage;
use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A settings enum: its spellings, for the flag parser, serde and messages.
pub trait SettingEnum: clap::ValueEnum + Copy + Send + Sync + 'static {
    /// The flag that takes it (for messages).
    const FLAG: &'static str;
    fn all() -> &'static [Self];
    /// The kebab-case spelling written everywhere.
    fn as_str(self) -> &'static str;
    /// Older spellings still read.
    fn aliases(self) -> &'static [&'static str];

    fn names() -> String {
        Self::all()
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Case-insensitive, canonical spelling or alias; an unknown value names the choices.
    fn parse_setting(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        Self::all()
            .iter()
            .copied()
            .find(|v| v.as_str() == t || v.aliases().contains(&t.as_str()))
            .ok_or_else(|| {
                usage(format!(
                    "{}: invalid value '{s}': expected one of {}",
                    Self::FLAG,
                    Self::names()
                ))
            })
    }
}

/// clap's parser for a settings enum: the enum's `ValueEnum` names for help and completions, and
/// our one-line message on a bad value (clap's own lists the values on lines of their own).
#[derive(Clone)]
pub struct EnumParser<T>(std::marker::PhantomData<T>);

pub fn enum_parser<T: SettingEnum>() -> EnumParser<T> {
    EnumParser(std::marker::PhantomData)
}

impl<T: SettingEnum> clap::builder::TypedValueParser for EnumParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<T, clap::Error> {
        let text = value.to_string_lossy();
        T::parse_setting(&text)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e:#}\n")))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            T::value_variants()
                .iter()
                .filter_map(clap::ValueEnum::to_possible_value),
        ))
    }
}

macro_rules! setting_enum {
    ($(#[$m:meta])* $name:ident, $flag:literal {
        $($(#[$vm:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl SettingEnum for $name {
            const FLAG: &'static str = $flag;
            fn all() -> &'static [Self] { Self::ALL }
            fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            fn aliases(self) -> &'static [&'static str] {
                match self { $($name::$variant => &[$($alias),*]),+ }
            }
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { <Self as SettingEnum>::as_str(self) }
            pub fn names() -> String { <Self as SettingEnum>::names() }
        }
        /// clap's view: the kebab-case names, the old spellings as aliases.
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] { Self::ALL }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()).aliases(self.aliases().iter().copied()))
            }
        }
        impl FromStr for $name {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> Result<Self> { Self::parse_setting(s) }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse_setting(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
            }
        }
        impl super::FromRaw<$name> for $name {
            fn from_raw(raw: &$name) -> Result<Self> { Ok(*raw) }
        }
        impl super::ToRaw<$name> for $name {
            fn to_raw(&self) -> Option<$name> { Some(*self) }
        }
    };
}

setting_enum!(
    /// How cutouts are taken from the image.
    CutMethod, "--cut-method" { Pooled = "pooled", Original = "original", Pixray = "pixray" }
);
setting_enum!(
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
setting_enum!(
    /// Optimizer over the drawer's parameters.
    OptimizerKind, "--optimizer" {
        Adam = "adam",
        AdamW = "adamw",
        Adamax = "adamax",
        Adagrad = "adagrad",
        RmsProp = "rmsprop",
        AdamWAmsgrad = "adamw-amsgrad" | "adamw_amsgrad",
        DiffGrad = "diffgrad",
        AdamP = "adamp",
        RAdam = "radam",
    }
);
setting_enum!(
    /// What the loop optimizes: the image parameterization (pixray's drawers).
    DrawerKind, "--drawer" { Vqgan = "vqgan", FastPixel = "fast-pixel" | "fast_pixel", Fft = "fft", Pixel = "pixel", Clipdraw = "clipdraw", LineSketch = "line-sketch" | "line_sketch" }
);
setting_enum!(
    /// The pixel drawer's cell shape (pixray's `--pixel_type`).
    PixelType, "--pixel-type" {
        Rect = "rect",
        RectShift = "rectshift",
        Hex = "hex",
        Tri = "tri",
        Diamond = "diamond",
        Knit = "knit",
    }
);
setting_enum!(
    /// Starting point when there is no init image.
    InitKind, "--init" {
        Codes = "codes",
        Random = "random",
        Perlin = "perlin",
        Gradient = "gradient",
        Snow = "snow",
    }
);
setting_enum!(
    /// Extra image losses (pixray style).
    LossKind, "--loss" { Tv = "tv", Saturation = "saturation", Symmetry = "symmetry", Smoothness = "smoothness", Edge = "edge", Aesthetic = "aesthetic", Style = "style", Resmem = "resmem" }
);
setting_enum!(
    /// pixray's `--styleloss_ospace`: how the style loss feeds VGG16: `uniform` maps [-1, 1] to
    /// [0, 1] and normalizes with ImageNet's statistics, `vgg` feeds the picture as it is.
    StyleSpace, "--styleloss-ospace" { Uniform = "uniform", Vgg = "vgg" }
);
setting_enum!(
    /// pixray's `--filters`: the wallpaper pattern, and the colour lookup (vqclip's palette).
    FilterKind, "--filters" { Wallpaper = "wallpaper", Lookup = "lookup" }
);
setting_enum!(
    /// pixray's `--wallpaper_type`: its default (`none`: wrap both ways), a half-width `shift`
    /// repeat, or one axis.
    WallpaperType, "--wallpaper-type" { None = "none", Shift = "shift", Horizontal = "horizontal", Vertical = "vertical" }
);
setting_enum!(
    /// pixray's `--smoothness_type`: the per-pixel sharpness as is, clipped at 0.5, or log(1 + s).
    SmoothnessType, "--smoothness-type" { Default = "default", Clipped = "clipped", Log = "log" }
);
setting_enum!(
    /// Numeric precision of the frozen models (the drawer's parameters and optimizer state stay f32).
    Precision, "--precision" { F32 = "f32", Bf16 = "bf16", Auto = "auto" }
);
