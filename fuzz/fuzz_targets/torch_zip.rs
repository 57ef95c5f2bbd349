#![no_main]
//! torch zip archives (Lightning .ckpt, torch.save, TorchScript): zip directory, pickle, storages.
use libfuzzer_sys::fuzz_target;
#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::with_file(data, "ckpt", |p| {
        let _ = vqclip::weights::torch_file::read_zip(p, &|_| true);
    });
});
