#![no_main]
//! A whole CLIP load (OpenAI TorchScript .pt and state dicts): reading, sizes inferred from the tensors,
//! building the model and filling it.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "pt", |p| {
        let _ = vqclip::models::clip::Clip::load(p, tch::Device::Cpu);
    });
});
