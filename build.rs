//! Link-time fixes so `target/release/vqclip` runs with no environment variables:
//! an rpath to the libtorch that tch was built against, and `--no-as-needed` around
//! `libtorch_cuda` so the CUDA backend is really loaded on a GPU machine (nothing in our
//! code references its symbols, so `--as-needed` would otherwise drop it). Also builds
//! src/shim/aten_shim.cpp, the few libtorch C++ calls tch does not expose (src/aten.rs).
use std::path::{Path, PathBuf};

fn torch_lib_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    // The project-local venv made by scripts/setup (.venv/lib/pythonX.Y/site-packages/torch/lib).
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let venv_lib = root.join(".venv").join("lib");
    let mut found = None;
    for entry in std::fs::read_dir(&venv_lib).ok()?.flatten() {
        let candidate = entry.path().join("site-packages").join("torch").join("lib");
        if candidate.join("libtorch_cpu.so").exists() {
            found = Some(candidate);
        }
    }
    found
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VQCLIP_WHEEL");
    println!("cargo:rerun-if-changed=build.rs");
    // scripts/build-wheel: the binary of the pip package (no path of this machine inside it).
    println!("cargo::rustc-check-cfg=cfg(vqclip_wheel)");
    let wheel = std::env::var_os("VQCLIP_WHEEL").is_some_and(|v| v == "1");
    if wheel {
        println!("cargo:rustc-cfg=vqclip_wheel");
    }
    let Some(lib) = torch_lib_dir() else {
        println!(
            "cargo:warning=libtorch not found in .venv; run scripts/setup (the binary will need LD_LIBRARY_PATH)"
        );
        return;
    };
    let lib = lib.canonicalize().unwrap_or(lib);
    // The libtorch version `doctor` reports: torch/version.py of the library the rpath points at.
    let version = std::fs::read_to_string(lib.join("..").join("version.py"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VQCLIP_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-link-search=native={}", lib.display());
    if wheel {
        // site-packages/vqclip/bin/vqclip finds site-packages/torch/lib; the launcher
        // (python/vqclip/_launcher.py) sets the library path where torch lives elsewhere.
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../torch/lib");
    } else {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        // Second: a `torch` link beside the binary, which scripts/gpu-check's bundle points at the
        // torch of a machine that has no .venv at this path.
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/torch/lib");
    }
    if has(&lib, "libtorch_cuda.so") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    build_shim(&lib);
}

/// src/shim/aten_shim.cpp against the headers of the same libtorch (ATen's headers only: the CUDA
/// queries go through ATen's accelerator API and symbols of the CUDA libraries libtorch loads).
fn build_shim(lib: &Path) {
    println!("cargo:rerun-if-changed=src/shim/aten_shim.cpp");
    let torch = lib.join("..");
    let mut b = cc::Build::new();
    b.cpp(true)
        .file("src/shim/aten_shim.cpp")
        .include(torch.join("include"))
        .flag_if_supported("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false);
    if has(lib, "libtorch_cuda.so") {
        b.define("VQCLIP_SHIM_CUDA", None);
    }
    b.compile("vqclip_aten_shim");
    println!("cargo:rustc-link-lib=dylib=c10");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=dl");
}

fn has(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}
