//! Shared by the fuzz targets: the readers under test take paths, as they do for users, so each input is
//! written to a per-process file in /dev/shm (memory-backed) first.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::sync::Once;

static INIT: Once = Once::new();

fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("VQCLIP_FUZZ_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    base.join(format!("vqclip-fuzz-{}", std::process::id()))
}

/// One libtorch thread: the inputs are small, and the fuzzers run two at a time on two cores.
pub fn init() {
    INIT.call_once(|| {
        tch::set_num_threads(1);
        tch::set_num_interop_threads(1);
        let _ = std::fs::create_dir_all(scratch_dir());
    });
}

/// Writes `data` to the scratch file `input.<ext>` and hands its path to `f`.
pub fn with_file<R>(data: &[u8], ext: &str, f: impl FnOnce(&Path) -> R) -> R {
    init();
    let path = scratch_dir().join(format!("input.{ext}"));
    std::fs::write(&path, data).expect("scratch file");
    f(&path)
}
