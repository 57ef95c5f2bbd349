//! `vqclip doctor`: what this installation can do. Always exits 0.
use crate::weights::registry;

pub fn run() -> anyhow::Result<()> {
    println!("vqclip {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch {}", libtorch_version());
    println!("cpu threads: {}", tch::get_num_threads());
    let bf16 = crate::device::cpu_has_native_bf16();
    println!(
        "cpu bf16: {} (--precision auto on CPU uses {})",
        if bf16 {
            "native (AMX/AVX512-BF16)"
        } else {
            "no"
        },
        if bf16 { "bf16" } else { "f32" }
    );
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
            println!("  cuda:{i}: {}", cuda_device_summary(i));
        }
    } else {
        println!("cuda: not available (running on CPU)");
    }
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

fn libtorch_version() -> String {
    // Recorded by build.rs from the torch the binary is linked (and rpath'd) against.
    format!(
        "{} (tch 0.24)",
        option_env!("VQCLIP_LIBTORCH_VERSION").unwrap_or("unknown")
    )
}

fn cuda_device_summary(i: i64) -> String {
    // Name and memory through nvidia-smi when present: tch 0.24 has no device-properties call.
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader",
            &format!("--id={i}"),
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "CUDA device (name unavailable: nvidia-smi not found)".to_string(),
    }
}
