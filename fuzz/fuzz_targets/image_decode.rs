#![no_main]
//! Images users pass (init, image prompts, search folders): format sniffing, size limits, decoding.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "img", |p| {
        let _ = vqclip::image_io::load_rgb(p);
    });
});
