#![no_main]
//! The taming-transformers model yaml beside a VQGAN checkpoint.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(c) = vqclip::models::vqgan::VqganConfig::from_yaml_str(text)
    {
        let _ = c.validate("fuzz");
        let _ = c.widths();
        let _ = c.downsample_factor();
        let _ = c.encoder_attn_levels();
        let _ = c.decoder_attn_levels();
    }
});
