#![no_main]
//! Legacy (pre-1.6) torch files: five pickles, then raw storages.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "pt", |p| {
        let _ = vqclip::weights::torch_file::read_legacy(p, &|_| true);
    });
});
