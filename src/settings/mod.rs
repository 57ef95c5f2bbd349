//! Generation settings. Each setting is declared once, in table.rs: its flag, TOML key, type,
//! default, check, drawer and resume rule. From that come the flag struct (`SettingsArgs`), the
//! layer form with every key optional (`PartialSettings`: presets, config files, run.toml,
//! checkpoints), the merge of layers, and the resolved, validated form (`Settings`) that the rest
//! of the program sees.
//!
//! Precedence: built-in defaults < presets in order < `--config` < flags. Every layer goes
//! through the same parsing, so an invalid value fails with the same message wherever it came from.
#[macro_use]
mod declare;
mod enums;
mod layers;
mod prompts;
mod resolve;
mod table;
pub mod units;
mod values;

pub use enums::{
    Augment, CutMethod, DrawerKind, EnumParser, FilterKind, InitKind, LossKind, OptimizerKind,
    PixelType, Precision, SettingEnum, SmoothnessType, StyleSpace, WallpaperType, enum_parser,
};
pub use layers::{aesthetic_clip, read_config, resolve_layers};
pub use prompts::{
    ImagePrompt, MAX_PROMPT_BYTES, MAX_PROMPTS, NoisePrompt, Prompt, TargetImage, VectorPrompt,
    expand_glob,
};
pub use resolve::{check_resume_layer, resume_flags};
pub use table::*;
pub use values::{
    Colour, FilterTerm, LossTerm, Margins, Move, NumberList, Palette, PromptList, SeedValue, Size,
    StringList, pixel_grid, pixel_grid_for, seed_from_text, slug,
};

use anyhow::Result;

/// Which drawer a setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Every drawer reads it.
    Any,
    /// Only these drawers read it; set with another drawer, it is refused (a typo'd drawer never
    /// silently ignores what was asked).
    Only(&'static [DrawerKind]),
    /// Only this drawer reads it; with another it is ignored and not recorded (a preset's VQGAN).
    Uses(DrawerKind),
}

impl Owner {
    /// Whether run.toml records the setting for a run with `drawer`.
    pub fn records(self, drawer: DrawerKind) -> bool {
        match self {
            Owner::Any => true,
            Owner::Only(ds) => ds.contains(&drawer),
            Owner::Uses(d) => d == drawer,
        }
    }
}

/// What the table says of one setting besides its value.
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    /// The field name (the TOML key with `_` for `-`).
    pub key: &'static str,
    pub owner: Owner,
    pub may_change_on_resume: bool,
}

impl Declaration {
    /// The flag as a user types it (`--image-prompt`, `PROMPT`).
    pub fn flag(&self) -> String {
        flag_of(self.key)
    }
}

/// A resolved value from its flag/TOML form.
pub trait FromRaw<R>: Sized {
    fn from_raw(raw: &R) -> Result<Self>;
}

/// The flag/TOML form of a resolved value (None: not written).
pub trait ToRaw<R> {
    fn to_raw(&self) -> Option<R>;
}

/// A flag's parsed value as a layer value (None: the flag was not given).
pub trait FlagValue<R> {
    fn layer(&self) -> Option<R>;
}

impl<T: Clone> FlagValue<T> for Option<T> {
    fn layer(&self) -> Option<T> {
        self.clone()
    }
}

/// A switch (`--tile`): given means true; absent leaves the setting to the other layers.
impl FlagValue<bool> for bool {
    fn layer(&self) -> Option<bool> {
        self.then_some(true)
    }
}

/// A repeatable flag (`--image-prompt A --image-prompt B`).
impl FlagValue<StringList> for Vec<String> {
    fn layer(&self) -> Option<StringList> {
        (!self.is_empty()).then(|| StringList::Many(self.clone()))
    }
}

impl FlagValue<StringList> for Option<String> {
    fn layer(&self) -> Option<StringList> {
        self.clone().map(StringList::One)
    }
}

impl FlagValue<PromptList> for Option<String> {
    fn layer(&self) -> Option<PromptList> {
        self.clone().map(PromptList::One)
    }
}

/// A repeatable prompt flag (`--spot A --spot B`): each one prompt, no `|` or `^` lists.
impl FlagValue<PromptList> for Vec<String> {
    fn layer(&self) -> Option<PromptList> {
        (!self.is_empty()).then(|| PromptList::Many(self.clone()))
    }
}

impl FlagValue<SeedValue> for Option<String> {
    fn layer(&self) -> Option<SeedValue> {
        self.clone().map(SeedValue::Text)
    }
}

impl FlagValue<NumberList> for Option<String> {
    fn layer(&self) -> Option<NumberList> {
        self.clone().map(NumberList::Text)
    }
}

/// Runs a declared check (a function, so the check closure's argument type is known).
pub(crate) fn passes<T>(value: &T, check: impl Fn(&T) -> bool) -> bool {
    check(value)
}

/// The flag of the setting `key` as clap knows it: `--long`, or the value name of a positional.
pub fn flag_of(key: &str) -> String {
    use clap::Args;
    static FLAGS: std::sync::LazyLock<Vec<(String, String)>> = std::sync::LazyLock::new(|| {
        SettingsArgs::augment_args(clap::Command::new("vqclip"))
            .get_arguments()
            .map(|a| {
                let shown = match a.get_long() {
                    Some(l) => format!("--{l}"),
                    None => a
                        .get_value_names()
                        .and_then(|v| v.first())
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| a.get_id().to_string()),
                };
                (a.get_id().to_string(), shown)
            })
            .collect()
    });
    FLAGS
        .iter()
        .find(|(id, _)| id == key)
        .map(|(_, f)| f.clone())
        .unwrap_or_else(|| format!("--{}", key.replace('_', "-")))
}
