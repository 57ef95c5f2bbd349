//! The one place where `--device` becomes a `tch::Device`, the precision policy (which dtype each
//! frozen model runs in), and host-to-device copies that do not stall.
use crate::error::usage;
use crate::models::clip::ClipConfig;
use crate::precision::{AutoRule, Tower};
use crate::settings::Precision;
use anyhow::Result;
use tch::{Device, Kind, Tensor};

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

/// Which frozen model a precision is decided for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    /// The VQGAN decoder (the `vqgan` drawer).
    Vqgan,
    /// A CLIP model's image path; `resnet`: a ModifiedResNet image tower rather than a ViT.
    Clip { resnet: bool },
}

impl ModelRole {
    /// The role of a CLIP model with this configuration.
    pub fn clip(config: &ClipConfig) -> ModelRole {
        ModelRole::Clip {
            resnet: config.vision_resnet_layers.is_some(),
        }
    }
}

/// The dtype a frozen model's weights run in for `--precision` on `device`: the one policy that
/// `Generator::new`, the drawers and the memory estimate all follow.
pub fn model_kind(precision: Precision, device: Device, role: ModelRole) -> Kind {
    // Only `auto` on the CPU needs the CPU's flags (a /proc/cpuinfo read), and only `auto` on a
    // CPU with native bf16 needs the measurement.
    policy(
        precision,
        device.is_cuda(),
        cpu_has_native_bf16,
        |role| match crate::precision::auto_rule() {
            AutoRule::Measure => crate::precision::measured_kind(Tower::of(role)),
            AutoRule::Flags => Tower::of(role).flags_kind(),
        },
        role,
    )
}

/// [`model_kind`] with the machine's facts passed in (the table the unit tests check).
/// `auto` is bf16 on CUDA, f32 on CPUs without native bf16 (where bf16 is emulated), and on CPUs
/// with it (AMX or AVX512-BF16) the faster kind for the tower, as measured (`crate::precision`).
fn policy(
    precision: Precision,
    cuda: bool,
    native_bf16: impl FnOnce() -> bool,
    native_choice: impl FnOnce(ModelRole) -> Kind,
    role: ModelRole,
) -> Kind {
    match precision {
        Precision::F32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
        Precision::Auto if cuda => Kind::BFloat16,
        Precision::Auto if native_bf16() => native_choice(role),
        Precision::Auto => Kind::Float,
    }
}

/// Whether this x86 CPU computes bf16 natively (Linux `/proc/cpuinfo` flags; read once).
pub fn cpu_has_native_bf16() -> bool {
    static NATIVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NATIVE.get_or_init(read_cpu_bf16_flags)
}

fn read_cpu_bf16_flags() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|s| {
        s.lines()
            .filter(|l| l.starts_with("flags"))
            .take(1)
            .any(|l| {
                l.split_whitespace()
                    .any(|f| f == "amx_bf16" || f == "avx512_bf16")
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_policy_table() {
        use Kind::{BFloat16 as B, Float as F};
        use ModelRole::{Clip, Vqgan};
        let vit = Clip { resnet: false };
        let rn = Clip { resnet: true };
        // (precision, cuda, native bf16 CPU, role) -> kind
        let table = [
            (Precision::F32, true, true, Vqgan, F),
            (Precision::F32, false, true, rn, F),
            (Precision::F32, true, false, vit, F),
            (Precision::Bf16, false, false, Vqgan, B),
            (Precision::Bf16, false, false, rn, B),
            (Precision::Bf16, true, true, vit, B),
            (Precision::Auto, true, false, Vqgan, B),
            (Precision::Auto, true, false, vit, B),
            (Precision::Auto, true, false, rn, B),
            (Precision::Auto, false, true, Vqgan, B),
            (Precision::Auto, false, true, vit, B),
            (Precision::Auto, false, true, rn, F),
            (Precision::Auto, false, false, Vqgan, F),
            (Precision::Auto, false, false, vit, F),
            (Precision::Auto, false, false, rn, F),
        ];
        for (precision, cuda, native, role, want) in table {
            let flags = |role| Tower::of(role).flags_kind();
            let got = policy(precision, cuda, || native, flags, role);
            assert_eq!(
                got, want,
                "{precision:?} cuda={cuda} native={native} {role:?}"
            );
        }
        // On a CPU with native bf16, `auto` is whatever the measurement says, per tower.
        let measured = |role| match role {
            Vqgan => F,
            _ => B,
        };
        for (role, want) in [(Vqgan, F), (vit, B), (rn, B)] {
            assert_eq!(
                policy(Precision::Auto, false, || true, measured, role),
                want
            );
            assert_eq!(policy(Precision::Auto, false, || false, measured, role), F);
            assert_eq!(policy(Precision::Auto, true, || true, measured, role), B);
        }
    }
}
