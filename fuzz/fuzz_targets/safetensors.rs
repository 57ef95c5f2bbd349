#![no_main]
//! .safetensors weights: header, offsets, dtypes.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "safetensors", |p| {
        let _ = vqclip::weights::safetensors_file::read(p, &|_| true);
    });
});
