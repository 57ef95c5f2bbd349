//! ATen's global context and the CUDA caching allocator, through `src/shim/aten_shim.cpp` (built
//! by build.rs against the same libtorch): tch 0.24 exposes neither.
use anyhow::{Result, bail};
use std::ffi::{c_char, c_int};

unsafe extern "C" {
    fn vqclip_set_deterministic(on: c_int) -> c_int;
    fn vqclip_deterministic() -> c_int;
    fn vqclip_set_tf32(on: c_int) -> c_int;
    fn vqclip_tf32() -> c_int;
    fn vqclip_shim_has_cuda() -> c_int;
    fn vqclip_torch_cuda_loaded() -> c_int;
    fn vqclip_cuda_peak_bytes(device: c_int) -> i64;
    fn vqclip_cuda_reset_peak(device: c_int) -> c_int;
    fn vqclip_cuda_mem_info(device: c_int, free: *mut u64, total: *mut u64) -> c_int;
    fn vqclip_cuda_device_name(
        device: c_int,
        buf: *mut c_char,
        len: c_int,
        major: *mut c_int,
        minor: *mut c_int,
    ) -> c_int;
}

/// ATen's deterministic algorithms and cuDNN's deterministic, untuned convolutions.
pub fn set_deterministic(on: bool) -> Result<()> {
    // SAFETY: plain C call; the shim catches every C++ exception.
    if unsafe { vqclip_set_deterministic(c_int::from(on)) } != 0 {
        bail!(
            "libtorch refused to switch deterministic algorithms {}",
            if on { "on" } else { "off" }
        );
    }
    Ok(())
}

pub fn deterministic() -> bool {
    // SAFETY: as above.
    unsafe { vqclip_deterministic() == 1 }
}

/// TF32 in cuBLAS matmuls and cuDNN convolutions (libtorch's defaults: off and on).
pub fn set_tf32(on: bool) -> Result<()> {
    // SAFETY: as above.
    if unsafe { vqclip_set_tf32(c_int::from(on)) } != 0 {
        bail!("libtorch refused to switch TF32");
    }
    Ok(())
}

/// (cuBLAS, cuDNN) TF32 switches.
pub fn tf32() -> (bool, bool) {
    // SAFETY: as above.
    let v = unsafe { vqclip_tf32() };
    (v >= 0 && v & 1 != 0, v >= 0 && v & 2 != 0)
}

/// Whether the shim was built with its CUDA half (the libtorch it was built against has CUDA).
pub fn shim_has_cuda() -> bool {
    // SAFETY: as above.
    unsafe { vqclip_shim_has_cuda() == 1 }
}

/// Whether libtorch_cuda.so is loaded in this process.
pub fn torch_cuda_loaded() -> bool {
    // SAFETY: as above (dlopen with RTLD_NOLOAD loads nothing).
    unsafe { vqclip_torch_cuda_loaded() == 1 }
}

/// The caching allocator's peak of allocated bytes on `cuda:device` since start or the last reset.
pub fn cuda_peak_bytes(device: usize) -> Option<u64> {
    // SAFETY: as above.
    let v = unsafe { vqclip_cuda_peak_bytes(device as c_int) };
    u64::try_from(v).ok()
}

pub fn cuda_reset_peak(device: usize) {
    // SAFETY: as above.
    unsafe { vqclip_cuda_reset_peak(device as c_int) };
}

/// (free, total) bytes of `cuda:device`, as cudaMemGetInfo.
pub fn cuda_mem_info(device: usize) -> Option<(u64, u64)> {
    let (mut free, mut total) = (0u64, 0u64);
    // SAFETY: the shim writes the two u64 only on success.
    let rc = unsafe { vqclip_cuda_mem_info(device as c_int, &mut free, &mut total) };
    (rc == 0).then_some((free, total))
}

/// The name and compute capability of `cuda:device`.
pub fn cuda_device_name(device: usize) -> Option<(String, i32, i32)> {
    let mut buf = [0 as c_char; 256];
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the shim writes at most buf.len() bytes, NUL-terminated.
    let rc = unsafe {
        vqclip_cuda_device_name(
            device as c_int,
            buf.as_mut_ptr(),
            buf.len() as c_int,
            &mut major,
            &mut minor,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: NUL-terminated by the shim.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Some((name, major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_tf32_switches_reach_aten() {
        let before = deterministic();
        set_deterministic(true).unwrap();
        assert!(deterministic());
        set_deterministic(false).unwrap();
        assert!(!deterministic());
        set_deterministic(before).unwrap();
        let was = tf32();
        set_tf32(false).unwrap();
        assert_eq!(tf32(), (false, false));
        set_tf32(true).unwrap();
        assert_eq!(tf32(), (true, true));
        set_tf32(was.0).unwrap();
    }

    #[test]
    fn cuda_queries_answer_none_without_a_device() {
        if tch::Cuda::is_available() {
            return;
        }
        assert_eq!(cuda_peak_bytes(0), None);
        assert_eq!(cuda_mem_info(0), None);
        assert_eq!(cuda_device_name(0), None);
    }
}
