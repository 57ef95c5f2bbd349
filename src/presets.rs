//! Style and quality presets: TOML files in `presets/`, compiled into the binary so an installed
//! binary has them; `--preset PATH.toml` loads a user file with the same schema.
use crate::error::usage;
use crate::settings::{PartialSettings, Prompt};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The shipped presets, in listing order.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "watercolor-portrait",
        include_str!("../presets/watercolor-portrait.toml"),
    ),
    ("oil-portrait", include_str!("../presets/oil-portrait.toml")),
    (
        "charcoal-sketch",
        include_str!("../presets/charcoal-sketch.toml"),
    ),
    ("ink-drawing", include_str!("../presets/ink-drawing.toml")),
    ("ukiyo-e", include_str!("../presets/ukiyo-e.toml")),
    (
        "impressionist-landscape",
        include_str!("../presets/impressionist-landscape.toml"),
    ),
    (
        "art-nouveau-poster",
        include_str!("../presets/art-nouveau-poster.toml"),
    ),
    (
        "cyberpunk-neon",
        include_str!("../presets/cyberpunk-neon.toml"),
    ),
    ("low-poly", include_str!("../presets/low-poly.toml")),
    (
        "stained-glass",
        include_str!("../presets/stained-glass.toml"),
    ),
    ("pixel-art", include_str!("../presets/pixel-art.toml")),
    ("demo", include_str!("../presets/demo.toml")),
    ("draft", include_str!("../presets/draft.toml")),
    ("normal", include_str!("../presets/normal.toml")),
    ("better", include_str!("../presets/better.toml")),
    ("best", include_str!("../presets/best.toml")),
    ("supreme", include_str!("../presets/supreme.toml")),
];

/// A preset file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Preset {
    /// One line for `presets list`.
    pub description: String,
    /// `style` or `quality` (informational).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Wraps the first prompt: `"a watercolor portrait of {prompt}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Extra weighted prompts added to the user's (`text:weight[:stop]`; negative pushes away).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_prompts: Vec<String>,
    /// Any generation settings, same keys as the flags.
    #[serde(default)]
    pub settings: PartialSettings,
}

fn default_kind() -> String {
    "style".to_string()
}

/// A loaded preset with where it came from.
#[derive(Debug, Clone)]
pub struct NamedPreset {
    pub name: String,
    pub preset: Preset,
}

impl Preset {
    /// Parses and checks a preset: the template has `{prompt}` and every prompt and setting is valid.
    pub fn parse(text: &str, origin: &str) -> Result<Preset> {
        let p: Preset = toml::from_str(text).map_err(|e| {
            usage(format!(
                "preset {origin}: {}",
                e.message().trim().replace('\n', " ")
            ))
        })?;
        if let Some(t) = &p.template
            && !t.contains("{prompt}")
        {
            return Err(usage(format!(
                "preset {origin}: template must contain {{prompt}}"
            )));
        }
        for e in &p.extra_prompts {
            Prompt::parse(e).with_context(|| format!("preset {origin}: extra-prompts"))?;
        }
        if p.settings.presets.is_some() {
            return Err(usage(format!(
                "preset {origin}: presets cannot include other presets"
            )));
        }
        // Validate the settings by resolving them over the defaults with a placeholder prompt.
        let mut probe = p.settings.clone();
        if probe.prompts.is_none() {
            probe.prompts = Some(crate::settings::PromptList::One("probe".into()));
        }
        probe.seed.get_or_insert(crate::settings::SeedValue::Int(0));
        probe
            .resolve()
            .with_context(|| format!("preset {origin}"))?;
        Ok(p)
    }

    /// Applies the template to the first prompt and appends the extra prompts.
    pub fn apply_prompts(&self, prompts: &mut Vec<Prompt>) -> Result<()> {
        // With story phases (`^`) the template and extra prompts apply to every phase; the result
        // stays ordered by phase, so it serializes and parses back unchanged.
        let phases = prompts.iter().map(|p| p.phase + 1).max().unwrap_or(1);
        let mut out = Vec::with_capacity(prompts.len() + phases * self.extra_prompts.len());
        for phase in 0..phases {
            let mut group: Vec<Prompt> = prompts
                .iter()
                .filter(|p| p.phase == phase)
                .cloned()
                .collect();
            if let (Some(t), Some(first)) = (&self.template, group.first_mut()) {
                first.text = t.replace("{prompt}", &first.text);
            }
            for e in &self.extra_prompts {
                let mut p = Prompt::parse(e)?;
                p.phase = phase;
                group.push(p);
            }
            out.extend(group);
        }
        *prompts = out;
        Ok(())
    }
}

/// Finds a preset by built-in name or `.toml` path.
pub fn load(spec: &str) -> Result<NamedPreset> {
    if let Some((name, text)) = BUILTIN
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(spec.trim()))
    {
        return Ok(NamedPreset {
            name: name.to_string(),
            preset: Preset::parse(text, name)?,
        });
    }
    let path = Path::new(spec);
    if spec.ends_with(".toml") || path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--preset {spec}: cannot read the file: {e}")))?;
        return Ok(NamedPreset {
            name: spec.to_string(),
            preset: Preset::parse(&text, spec)?,
        });
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    Err(usage(format!(
        "--preset: unknown preset '{spec}': expected a .toml path or one of {}",
        names.join(", ")
    )))
}

/// Every built-in preset, parsed.
pub fn all() -> Result<Vec<NamedPreset>> {
    BUILTIN.iter().map(|(n, _)| load(n)).collect()
}
