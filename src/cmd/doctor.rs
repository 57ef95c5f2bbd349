//! `vqclip doctor`: what this installation can do. Always exits 0.
use crate::weights::registry;

pub fn run() -> anyhow::Result<()> {
    println!("vqclip {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch {}", libtorch_version());
    println!("cpu threads: {}", tch::get_num_threads());
    print_cpu_precision();
    let cuda = tch::Cuda::is_available();
    let n = tch::Cuda::device_count();
    if cuda {
        println!(
            "cuda: available, {n} device(s), cudnn {}",
            if tch::Cuda::cudnn_is_available() {
                "yes"
            } else {
                "no"
            }
        );
        for i in 0..n {
            println!("  cuda:{i}: {}", cuda_device_summary(i as usize));
        }
    } else {
        println!("cuda: not available (running on CPU)");
    }
    println!(
        "libtorch_cuda: {}",
        match (
            crate::aten::torch_cuda_loaded(),
            crate::aten::shim_has_cuda()
        ) {
            (true, _) => "loaded",
            (false, true) => "NOT loaded (the CUDA backend is missing: rebuild with scripts/setup)",
            (false, false) => "not part of this libtorch (CPU-only build)",
        }
    );
    println!(
        "ffmpeg: {}",
        if crate::video::ffmpeg_available() {
            "found (vqclip video writes MP4)"
        } else {
            "not found (vqclip video writes GIFs; install ffmpeg for MP4)"
        }
    );
    let dir = registry::weights_dir();
    println!("{}", registry::describe_dir(&dir));
    for (name, found) in registry::presence(&dir) {
        match found {
            Some(p) => println!("  {name:22} present: {}", p.display()),
            None => println!("  {name:22} missing"),
        }
    }
    Ok(())
}

/// The CPU's bf16 support and what `--precision auto` picks per tower on it.
fn print_cpu_precision() {
    use crate::precision::{AutoRule, Tower};
    use crate::weights::kind_name;
    if !crate::device::cpu_has_native_bf16() {
        println!("cpu bf16: no (--precision auto on CPU uses f32: bf16 would be emulated)");
        return;
    }
    println!("cpu bf16: native (AMX/AVX512-BF16)");
    if crate::precision::auto_rule() == AutoRule::Flags {
        let picks: Vec<String> = Tower::ALL
            .iter()
            .map(|&t| format!("{} {}", t.name(), kind_name(t.flags_kind())))
            .collect();
        println!(
            "--precision auto on CPU: by the CPU-flag rule (VQCLIP_PRECISION_AUTO=flags): {}",
            picks.join(", ")
        );
        return;
    }
    match crate::precision::cached() {
        Some(v) => {
            println!(
                "--precision auto on CPU: measured ({}, {}):",
                v.key,
                crate::precision::cache_path().display()
            );
            for (t, timing) in &v.towers {
                println!(
                    "  {:7} {}: {}",
                    t.name(),
                    crate::precision::describe(timing),
                    t.workload()
                );
            }
        }
        None => println!(
            "--precision auto on CPU: not measured yet on this machine; the first auto run on the CPU times f32 \
             against bf16 per tower (a few seconds, once) and saves the verdict in {}",
            crate::precision::cache_path().display()
        ),
    }
}

fn libtorch_version() -> String {
    // Recorded by build.rs from the torch the binary is linked (and rpath'd) against.
    format!(
        "{} (tch 0.24)",
        option_env!("VQCLIP_LIBTORCH_VERSION").unwrap_or("unknown")
    )
}

/// Name, compute capability and memory, from the CUDA runtime through the shim.
fn cuda_device_summary(i: usize) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let name = match crate::aten::cuda_device_name(i) {
        Some((name, major, minor)) => format!("{name} (compute {major}.{minor})"),
        None => "CUDA device (name unavailable)".to_string(),
    };
    match crate::aten::cuda_mem_info(i) {
        Some((free, total)) => format!(
            "{name}, {:.1} GiB, {:.1} GiB free",
            total as f64 / GIB,
            free as f64 / GIB
        ),
        None => name,
    }
}
