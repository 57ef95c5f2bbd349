#![no_main]
//! The pickle machine on raw bytes: every opcode stream ends in a value or an error.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = vqclip::weights::pickle::load(data, 0) {
        // Walk what came out, as the checkpoint readers do.
        let v = &loaded.value;
        let _ = v.type_name();
        let _ = v.body_len();
        let _ = v.entries();
        let _ = v.items();
        let _ = v.get("state_dict");
    }
});
