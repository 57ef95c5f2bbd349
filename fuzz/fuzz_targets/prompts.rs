#![no_main]
//! Prompt lists (`a:1:-0.5|b^c`), image prompts and palettes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = vqclip::settings::Prompt::parse_list(text) {
            let _ = vqclip::settings::Prompt::join_list(&list);
        }
        let _ = vqclip::settings::ImagePrompt::parse(text);
        let _ = vqclip::palette::parse(text);
    }
});
