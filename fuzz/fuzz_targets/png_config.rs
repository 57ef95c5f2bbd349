#![no_main]
//! PNG text chunks read back by `--config` and `info`.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "png", |p| {
        let _ = vqclip::image_io::read_png_text(p);
        if let Ok(partial) = vqclip::runplan::read_config(p) {
            let _ = vqclip::runplan::resolve_layers(&[], vec![partial]);
        }
    });
});
