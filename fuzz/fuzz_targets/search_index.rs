#![no_main]
//! The search index file (safetensors with a JSON manifest).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vqclip::clip_tasks::index::Index::parse(data, "fuzz-model", 4);
    let _ = vqclip::clip_tasks::index::Index::parse(data, "fuzz-model", 512);
});
