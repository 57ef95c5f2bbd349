//! The macro behind the settings table: from one declaration per setting it writes the flag
//! (`SettingsArgs`), the TOML key (`PartialSettings`), the merge of layers, the resolved field
//! (`Settings`) with its default and check, the run.toml form, and the setting's record
//! (`DECLARATIONS`: which drawer it belongs to, whether it may change on resume).
//!
//! A declaration (see table.rs):
//! ```text
//! /// help text (flag help, TOML key and field docs)
//! name: ResolvedType {
//!     flag: FlagType [clap arg attributes],   // Option<T>, Vec<String> (repeatable) or bool (switch)
//!     raw: RawType,                           // the TOML value; resolved through FromRaw / ToRaw
//!     default: expr,                          // may use settings declared above, by name
//!     resolve: expr,                          // instead of default: reads `p` (the layer) itself
//!     check: |v| bool => "message",           // optional: "--flag: invalid value V: message"
//!     resume: fixed | may_change,
//!     drawer: (any) | (only Kind, ...) | (uses Kind), // only: refused with another drawer; uses: ignored
//!     record: |v| bool,                       // optional: false keeps it out of run.toml
//! }
//! ```

/// `a` when given, else `b`.
macro_rules! pick {
    (() $b:tt) => {
        $b
    };
    (($($a:tt)+) $b:tt) => {
        $($a)+
    };
}

macro_rules! owner {
    (any) => {
        $crate::settings::Owner::Any
    };
    (only $($d:ident),+) => {
        $crate::settings::Owner::Only(&[$($crate::settings::DrawerKind::$d),+])
    };
    (uses $d:ident) => {
        $crate::settings::Owner::Uses($crate::settings::DrawerKind::$d)
    };
}

macro_rules! may_change {
    (fixed) => {
        false
    };
    (may_change) => {
        true
    };
}

macro_rules! declare_settings {
    (
        layer: $p:ident;
        $(
            $(#[doc = $doc:literal])*
            $name:ident: $res:ty {
                flag: $flagty:ty [$($arg:tt)*],
                raw: $raw:ty,
                $(default: $default:expr,)?
                $(resolve: $resolve:expr,)?
                $(check: $check:expr => $msg:literal,)?
                resume: $resume:ident,
                drawer: $owner:tt,
                $(record: $record:expr,)?
            }
        )*
    ) => {
        /// The setting flags of `generate` (and `batch`): every one optional, so an unset flag
        /// falls back to `--config`, then presets, then the built-in default.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct SettingsArgs {
            $(
                $(#[doc = $doc])*
                #[arg($($arg)*)]
                pub $name: $flagty,
            )*
        }

        /// Settings as written in TOML (config files, presets, run.toml, checkpoints) with every
        /// key optional. Keys are the setting names in kebab-case; unknown keys are errors.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct PartialSettings {
            $(
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$raw>,
            )*
            /// Presets applied, in order (a record in run.toml; presets cannot name presets).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub presets: Option<Vec<String>>,
        }

        /// The resolved, validated settings of one generation run.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $(
                $(#[doc = $doc])*
                pub $name: $res,
            )*
            /// Presets applied, in order (for the record).
            pub presets: Vec<String>,
        }

        /// Every declared setting, in declaration order.
        pub const DECLARATIONS: &[Declaration] = &[
            $(Declaration {
                key: stringify!($name),
                owner: owner! $owner,
                may_change_on_resume: may_change!($resume),
            },)*
        ];

        impl PartialSettings {
            /// Overlays `other` on `self` (keys set in `other` win; presets add up).
            pub fn merge(&mut self, other: PartialSettings) {
                $(if other.$name.is_some() {
                    self.$name = other.$name;
                })*
                if let Some(p) = other.presets {
                    self.presets.get_or_insert_with(Vec::new).extend(p);
                }
            }

            /// The flag layer.
            pub fn from_args(a: &SettingsArgs) -> PartialSettings {
                PartialSettings {
                    $($name: $crate::settings::FlagValue::<$raw>::layer(&a.$name),)*
                    presets: None,
                }
            }

            /// The declared settings this layer sets, in declaration order.
            pub fn set_declarations(&self) -> Vec<&'static Declaration> {
                [$(self.$name.is_some()),*]
                    .into_iter()
                    .zip(DECLARATIONS)
                    .filter_map(|(set, d)| set.then_some(d))
                    .collect()
            }

            /// Each setting in declaration order: its raw value or its default, then its check.
            /// Cross-setting rules come after (`Settings::check_together`).
            pub(super) fn resolve_fields($p: &PartialSettings) -> anyhow::Result<Settings> {
                $(
                    let $name: $res = pick!(($($resolve)?) {
                        match &$p.$name {
                            Some(raw) => <$res as $crate::settings::FromRaw<$raw>>::from_raw(raw)?,
                            None => $($default)?,
                        }
                    });
                    $(
                        if !$crate::settings::passes(&$name, $check) {
                            return Err($crate::error::usage(format!(
                                "{}: invalid value {}: {}",
                                $crate::settings::flag_of(stringify!($name)),
                                $name,
                                $msg
                            )));
                        }
                    )?
                )*
                Ok(Settings {
                    $($name,)*
                    presets: $p.presets.clone().unwrap_or_default(),
                })
            }
        }

        impl Settings {
            /// The full, explicit TOML form (every setting that applies to the drawer), as written
            /// to run.toml, checkpoints and PNG metadata.
            pub fn to_partial(&self) -> PartialSettings {
                PartialSettings {
                    $($name: if owner!$owner.records(self.drawer)
                        && $crate::settings::passes(&self.$name, pick!(($($record)?) { |_| true }))
                    {
                        <$res as $crate::settings::ToRaw<$raw>>::to_raw(&self.$name)
                    } else {
                        None
                    },)*
                    presets: Some(self.presets.clone()),
                }
            }
        }
    };
}
