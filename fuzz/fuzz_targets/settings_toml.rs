#![no_main]
//! Settings text: a `--config` TOML or run.toml (through the same reader users hit), preset files,
//! and a checkpoint's meta.toml.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "toml", |p| {
        if let Ok(partial) = vqclip::runplan::read_config(p) {
            let _ = vqclip::runplan::resolve_layers(&[], vec![partial]);
        }
    });
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vqclip::settings::PartialSettings::from_toml(text, std::path::Path::new("fuzz.toml"));
        let _ = vqclip::generate::checkpoint::parse_meta(text);
        let _ = vqclip::presets::Preset::parse(text, "fuzz");
    }
});
