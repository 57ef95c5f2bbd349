//! The one place where `--device` becomes a `tch::Device`, and host-to-device copies that do not stall.
use crate::error::usage;
use anyhow::Result;
use tch::{Device, Tensor};

/// Parses `auto|cpu|cuda|cuda:N`; `auto` picks CUDA device 0 when available.
pub fn parse_device(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    match s.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => cuda(0, spec),
        _ => match s.strip_prefix("cuda:") {
            Some(n) => match n.parse::<usize>() {
                Ok(i) => cuda(i, spec),
                Err(_) => Err(usage(format!(
                    "--device: invalid value '{spec}': expected auto, cpu, cuda or cuda:N"
                ))),
            },
            None => Err(usage(format!(
                "--device: invalid value '{spec}': expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Validates the syntax only (no CUDA probing), for settings validation.
pub fn check_device_syntax(spec: &str) -> Result<()> {
    let s = spec.trim().to_ascii_lowercase();
    let ok = matches!(s.as_str(), "auto" | "cpu" | "cuda" | "gpu")
        || s.strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "--device: invalid value '{spec}': expected auto, cpu, cuda or cuda:N"
        )))
    }
}

fn cuda(i: usize, spec: &str) -> Result<Device> {
    let n = tch::Cuda::device_count() as usize;
    if n == 0 {
        anyhow::bail!(
            "--device {spec}: CUDA is not available on this machine (use --device cpu or auto)"
        );
    }
    if i >= n {
        anyhow::bail!(
            "--device {spec}: there are only {n} CUDA device(s) (cuda:0..cuda:{})",
            n - 1
        );
    }
    Ok(Device::Cuda(i))
}

/// Host tensor -> `device`. On CUDA the tensor is pinned first so the copy is asynchronous
/// (libtorch's pinned-memory allocator keeps the block alive until the copy has run); where
/// pinning fails, a plain blocking copy.
pub fn to_device_async(host: &Tensor, device: Device) -> Tensor {
    if device == Device::Cpu {
        return host.shallow_clone();
    }
    match host.f_pin_memory(device) {
        Ok(pinned) => pinned.to_device_(device, host.kind(), true, false),
        Err(_) => host.to_device(device),
    }
}
