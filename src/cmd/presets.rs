//! `vqclip presets list|show`.
use crate::cli::PresetsCommand;
use crate::presets;
use crate::settings::{PromptList, SeedValue};
use anyhow::{Context, Result};

pub fn run(cmd: &PresetsCommand) -> Result<()> {
    match cmd {
        PresetsCommand::List => {
            let all = presets::all()?;
            let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in all {
                println!(
                    "{:width$}  {:7}  {}",
                    p.name, p.preset.kind, p.preset.description
                );
            }
            Ok(())
        }
        PresetsCommand::Show { name } => {
            let p = presets::load(name)?;
            print!(
                "{}",
                toml::to_string(&p.preset).context("cannot serialize preset")?
            );
            // The settings this preset gives over the built-in defaults (prompt shown as a placeholder).
            let mut probe = p.preset.settings.clone();
            probe
                .prompts
                .get_or_insert(PromptList::One("{prompt}".into()));
            probe.seed.get_or_insert(SeedValue::Int(0));
            let mut resolved = probe.resolve()?;
            p.preset.apply_prompts(&mut resolved.prompts)?;
            print_models(&resolved);
            let mut partial = resolved.to_partial();
            partial.seed = None; // drawn per run
            println!("\n# resolved over the built-in defaults (seed is drawn per run):");
            let text = toml::to_string(&partial).context("cannot serialize settings")?;
            for line in text.lines() {
                println!("# {line}");
            }
            Ok(())
        }
    }
}

/// The models a preset runs with (its own or the defaults), each with where it is or how to get it.
fn print_models(s: &crate::settings::Settings) {
    use crate::weights::registry::{self, ModelKind};
    let vqgan = (s.drawer == crate::settings::DrawerKind::Vqgan).then_some(&s.vqgan);
    let models = vqgan
        .into_iter()
        .map(|v| (ModelKind::Vqgan, v))
        .chain(s.clip.iter().map(|c| (ModelKind::Clip, c)));
    println!("\n# models it needs:");
    for (kind, spec) in models {
        let state = match registry::resolve(spec, kind) {
            Ok(path) => format!("present ({})", path.display()),
            Err(_) => match registry::find(spec, kind) {
                Some(m) if !m.bundled => format!(
                    "missing: vqclip weights fetch {}",
                    crate::weights::verify::quote_name(&m.name)
                ),
                _ => "missing".to_string(),
            },
        };
        println!("# {} {spec}: {state}", kind.as_str());
    }
}
