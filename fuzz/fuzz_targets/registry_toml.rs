#![no_main]
//! The model registry TOML.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vqclip::weights::registry::parse(text);
    }
});
