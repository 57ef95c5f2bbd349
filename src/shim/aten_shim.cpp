// What vqclip needs from libtorch's C++ API that tch 0.24 does not expose: the deterministic
// switches and TF32 of ATen's global context, and the CUDA caching allocator's statistics and the
// device's properties (through ATen's accelerator API and the CUDA libraries already loaded, so
// building needs no CUDA headers). Plain C functions; no C++ exception crosses into Rust (each returns a code).
#include <ATen/Context.h>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>

#include <ATen/DeviceAccelerator.h>

extern "C" {

// 0 on success, -1 when ATen refused. warn_only: on CUDA, grid_sample's and adaptive pooling's
// backward (the augments, the pooled cutouts) have no deterministic kernel; they warn instead of
// stopping the run, and every operation that has one uses it.
int vqclip_set_deterministic(int on) {
  try {
    auto& ctx = at::globalContext();
    ctx.setDeterministicAlgorithms(on != 0, /*warn_only=*/true);
    ctx.setDeterministicCuDNN(on != 0);
    if (on) ctx.setBenchmarkCuDNN(false);
    return 0;
  } catch (...) {
    return -1;
  }
}

int vqclip_deterministic(void) {
  try {
    return at::globalContext().deterministicAlgorithms() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// TF32 in cuBLAS matmuls and cuDNN convolutions (both off: full f32 on CUDA).
int vqclip_set_tf32(int on) {
  try {
    auto& ctx = at::globalContext();
    ctx.setAllowTF32CuBLAS(on != 0);
    ctx.setAllowTF32CuDNN(on != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}

int vqclip_tf32(void) {
  try {
    auto& ctx = at::globalContext();
    return (ctx.allowTF32CuBLAS() ? 1 : 0) | (ctx.allowTF32CuDNN() ? 2 : 0);
  } catch (...) {
    return -1;
  }
}

// Whether the libtorch this was built against has CUDA (build.rs saw libtorch_cuda.so).
int vqclip_shim_has_cuda(void) {
#ifdef VQCLIP_SHIM_CUDA
  return 1;
#else
  return 0;
#endif
}

// Whether libtorch_cuda.so is loaded in this process (the linker's --as-needed drops it otherwise).
int vqclip_torch_cuda_loaded(void) {
  void* h = dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  if (h) {
    dlclose(h);
    return 1;
  }
  return 0;
}

// The CUDA device `device`, when this process's accelerator is CUDA and it has that device.
static bool cuda_device(int device) {
  auto acc = at::accelerator::getAccelerator(false);
  return acc.has_value() && *acc == c10::DeviceType::CUDA && device >= 0 &&
         device < static_cast<int>(at::accelerator::deviceCount());
}

// The caching allocator's peak of allocated bytes on `device` since the start or the last reset;
// -1 without CUDA.
int64_t vqclip_cuda_peak_bytes(int device) {
  try {
    if (!cuda_device(device)) return -1;
    auto s = at::accelerator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    return s.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  } catch (...) {
    return -1;
  }
}

int vqclip_cuda_reset_peak(int device) {
  try {
    if (!cuda_device(device)) return -1;
    at::accelerator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  } catch (...) {
    return -1;
  }
}

// Free and total device memory (cudaMemGetInfo through the allocator); 0 on success.
int vqclip_cuda_mem_info(int device, uint64_t* free_bytes, uint64_t* total_bytes) {
  try {
    if (!cuda_device(device)) return -1;
    auto info = at::accelerator::getMemoryInfo(static_cast<c10::DeviceIndex>(device));
    *free_bytes = info.first;
    *total_bytes = info.second;
    return 0;
  } catch (...) {
    return -1;
  }
}

// The device's name (CUDA driver) and compute capability (CUDA runtime), found in the libraries
// libtorch_cuda loaded: no CUDA headers are needed to build this. 0 on success.
int vqclip_cuda_device_name(int device, char* buf, int len, int* major, int* minor) {
  try {
    if (len <= 0 || !cuda_device(device)) return -1;
    typedef int (*init_t)(unsigned);
    typedef int (*get_t)(int*, int);
    typedef int (*name_t)(char*, int, int);
    typedef int (*attr_t)(int*, int, int);
    auto cu_init = reinterpret_cast<init_t>(dlsym(RTLD_DEFAULT, "cuInit"));
    auto cu_get = reinterpret_cast<get_t>(dlsym(RTLD_DEFAULT, "cuDeviceGet"));
    auto cu_name = reinterpret_cast<name_t>(dlsym(RTLD_DEFAULT, "cuDeviceGetName"));
    auto attr = reinterpret_cast<attr_t>(dlsym(RTLD_DEFAULT, "cudaDeviceGetAttribute"));
    if (!cu_init || !cu_get || !cu_name || !attr) return -2;
    int dev = 0;
    if (cu_init(0) != 0 || cu_get(&dev, device) != 0 || cu_name(buf, len, dev) != 0) return -3;
    buf[len - 1] = 0;
    // cudaDevAttrComputeCapabilityMajor / Minor
    if (attr(major, 75, device) != 0 || attr(minor, 76, device) != 0) return -4;
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
