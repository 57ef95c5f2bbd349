//! What a run will need in memory, estimated from the settings and the models' sizes before the run
//! allocates anything, and the check against what the device has: a run that cannot fit is refused with
//! settings that would (exit 2), instead of dying by the OOM killer or a CUDA error halfway through.
//!
//! The figures count the tensors autograd keeps for the backward pass (per layer, from the
//! architectures) times a factor measured against peak RSS on CPU (see `CALIBRATION`), plus the weights
//! and the runtime. Measured free memory is compared with what is still to come (the models are loaded
//! by then); `VQCLIP_MEMORY_LIMIT=GiB` is a budget for the whole run instead.
use crate::device::{ModelRole, model_kind};
use crate::error::usage;
use crate::models::clip::ClipConfig;
use crate::models::vqgan::VqganConfig;
use crate::settings::{DrawerKind, Precision, Settings};
use anyhow::Result;
use tch::{Device, Kind};

const GIB: f64 = (1u64 << 30) as f64;
/// libtorch's own resident memory (its libraries, allocator pools, thread pools), measured at 0.45 GiB.
const RUNTIME_BYTES: f64 = 0.5 * GIB;
/// Measured peak / counted tensors (allocator rounding, temporaries of the backward pass, the optimizer).
/// Fitted on CPU, f32, imagenet_f16_16384 + ViT-B/32: peak RSS 3.98 / 3.60 / 3.98 GiB at 256x256x32 /
/// 384x256x8 / 128x128x64 (size x cutouts), estimated 3.87 / 3.62 / 4.05; bf16 at 256x256x32: 2.60
/// measured, 2.7 estimated.
const CALIBRATION: f64 = 1.1;

/// The models a run uses, by size.
pub struct ModelSizes<'a> {
    pub vqgan: Option<&'a VqganConfig>,
    pub clips: Vec<&'a ClipConfig>,
    /// Bytes the loaded weights take.
    pub weight_bytes: f64,
}

/// A run's memory, in bytes, by part.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub weights: f64,
    pub drawer: f64,
    pub clip: f64,
    pub runtime: f64,
}

impl Estimate {
    pub fn total(&self) -> f64 {
        self.weights + self.drawer + self.clip + self.runtime
    }

    /// One line: `about 3.1 GiB (weights 1.2, drawer at 256x256 0.9, CLIP cutouts 0.5, runtime 0.5)`.
    pub fn describe(&self, s: &Settings) -> String {
        format!(
            "about {:.1} GiB (weights {:.2}, {} drawer at {}x{} {:.2}, CLIP on {}x{} cutouts {:.2}, runtime {:.2})",
            self.total() / GIB,
            self.weights / GIB,
            s.drawer,
            s.size.width,
            s.size.height,
            self.drawer / GIB,
            s.batches.max(1),
            s.cutouts,
            self.clip / GIB,
            self.runtime / GIB
        )
    }
}

/// Counts the activations of one run's step on `device`, each model's in the dtype it will run in
/// there under `s.precision` (`device::model_kind`, as `Generator::new` decides).
pub fn estimate(s: &Settings, m: &ModelSizes, device: Device) -> Estimate {
    let b = |role| match model_kind(s.precision, device, role) {
        Kind::Float => 4.0,
        _ => 2.0,
    };
    let (h, w) = (s.size.height as f64, s.size.width as f64);
    let drawer = match (s.drawer, m.vqgan) {
        (DrawerKind::Vqgan, Some(c)) => vqgan_decoder_elems(c, h, w) * b(ModelRole::Vqgan),
        // fast_pixel / fft: a few image-sized tensors in f32.
        _ => h * w * 3.0 * 24.0 * 4.0,
    };
    // The image itself, the cutout batch and its augments, per CLIP input size.
    let mut clip = h * w * 3.0 * 8.0 * 4.0;
    for c in &m.clips {
        let per_image = if c.vision_resnet_layers.is_some() {
            resnet_elems(c)
        } else {
            vit_elems(c)
        };
        let res = c.image_resolution as f64;
        let b = b(ModelRole::clip(c));
        clip += s.cutouts as f64 * (per_image * b + res * res * 3.0 * 6.0 * 4.0);
    }
    Estimate {
        weights: m.weight_bytes,
        drawer: drawer * CALIBRATION,
        clip: clip * CALIBRATION,
        runtime: RUNTIME_BYTES,
    }
}

/// Elements autograd keeps through taming's Decoder for an `h`x`w` output, plus the quantizer's distances.
fn vqgan_decoder_elems(c: &VqganConfig, h: f64, w: f64) -> f64 {
    let levels = c.ch_mult.len();
    let f = (1u64 << (levels.saturating_sub(1))) as f64;
    let mut total = 0.0;
    for (i, mult) in c.ch_mult.iter().enumerate() {
        let scale = (1u64 << i) as f64;
        let px = (h / scale) * (w / scale);
        let ch = (c.ch * mult) as f64;
        // Each ResnetBlock keeps ~8 tensors of its size (norm, swish, conv, twice, and the sum);
        // the upsampling keeps the nearest-neighbour copy and its conv.
        total += px * ch * ((c.num_res_blocks + 1) as f64 * 8.0 + 2.0);
        let side = ((h / scale) * (w / scale)).sqrt();
        if c.attn_resolutions
            .iter()
            .any(|&r| (r as f64 - side).abs() < 0.5)
        {
            total += (c.num_res_blocks + 1) as f64 * (px * px + px * ch * 6.0);
        }
    }
    // Middle: two blocks and an attention at the latent size; the quantizer's code distances.
    let zpx = (h / f) * (w / f);
    let zch = (c.ch * c.ch_mult.last().copied().unwrap_or(1)) as f64;
    total += zpx * zch * 22.0 + zpx * zpx;
    total += zpx * c.n_embed as f64 * 2.0;
    total
}

/// Elements a ViT image tower keeps per image.
fn vit_elems(c: &ClipConfig) -> f64 {
    let grid = (c.image_resolution / c.vision_patch_size.max(1)) as f64;
    let tokens = grid * grid + 1.0;
    let width = c.vision_width as f64;
    // Per block: layer norms, qkv, attention output, projections and the 4x MLP (~16 widths per token),
    // and the attention weights (softmax input and output) per head.
    let per_layer = tokens * width * 16.0 + c.vision_heads as f64 * tokens * tokens * 2.0;
    c.vision_layers as f64 * per_layer
}

/// Elements a ModifiedResNet image tower keeps per image.
fn resnet_elems(c: &ClipConfig) -> f64 {
    let res = c.image_resolution as f64;
    let width = c.vision_width as f64;
    // Stem: three convs at res/2 (width/2, width/2, width), each with BatchNorm and ReLU.
    let mut total = (res / 2.0).powi(2) * (width * 2.0) * 3.0;
    let layers = c.vision_resnet_layers.unwrap_or([0; 4]);
    for (s, &blocks) in layers.iter().enumerate() {
        let planes = width * (1u64 << s) as f64;
        let px = (res / 4.0 / (1u64 << s) as f64).powi(2);
        // A bottleneck keeps its 1x1, 3x3 and 1x1 conv outputs with BatchNorm and ReLU (planes, planes,
        // 4*planes) and the sum.
        total += blocks as f64 * px * planes * (3.0 * 2.0 + 3.0 * 4.0 + 4.0);
    }
    total
}

/// What the device has for this run, in bytes.
pub struct Available {
    pub bytes: f64,
    /// Where the figure came from, for messages.
    pub source: String,
    /// Measured free memory (what is left now), as opposed to `VQCLIP_MEMORY_LIMIT`, a budget for the
    /// whole run.
    pub measured: bool,
}

/// What the device has; None when unknown.
pub fn available(device: Device) -> Option<Available> {
    if let Ok(v) = std::env::var("VQCLIP_MEMORY_LIMIT") {
        return v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|g| g.is_finite() && *g > 0.0)
            .map(|g| Available {
                bytes: g * GIB,
                source: "VQCLIP_MEMORY_LIMIT".to_string(),
                measured: false,
            });
    }
    let (bytes, source) = match device {
        Device::Cuda(i) => (
            crate::aten::cuda_mem_info(i)?.0 as f64,
            format!("free on cuda:{i}"),
        ),
        _ => (cpu_available()?, "available RAM".to_string()),
    };
    Some(Available {
        bytes,
        source,
        measured: true,
    })
}

/// `MemAvailable`, lowered to the cgroup's remaining limit where there is one (containers, Slurm jobs).
fn cpu_available() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    let mut avail = kib * 1024.0;
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
    };
    if let (Some(max), Some(cur)) = (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        avail = avail.min((max - cur).max(0.0));
    }
    Some(avail)
}

/// Refuses a run whose estimate exceeds what the device has, naming settings that would fit.
/// `resident`: the models are already loaded on `device` in this process, so measured free memory has
/// their weights and the runtime taken out already and only the activations are still to come.
pub fn check(s: &Settings, m: &ModelSizes, device: Device, resident: bool) -> Result<Estimate> {
    let e = estimate(s, m, device);
    let Some(avail) = available(device) else {
        return Ok(e);
    };
    let only_activations = resident && avail.measured;
    let need = |e: &Estimate| {
        if only_activations {
            e.drawer + e.clip
        } else {
            e.total()
        }
    };
    if need(&e) <= avail.bytes {
        return Ok(e);
    }
    let fits_with = |t: &Settings| need(&estimate(t, m, device)) <= avail.bytes;
    let mut fits = Vec::new();
    // The largest size with the same aspect ratio (sides multiples of 16) that fits.
    let (w0, h0) = (s.size.width as f64, s.size.height as f64);
    let mut scale = 0.95;
    while scale > 0.05 {
        let mut t = s.clone();
        t.size.width = ((w0 * scale / 16.0).floor() * 16.0).max(16.0) as i64;
        t.size.height = ((h0 * scale / 16.0).floor() * 16.0).max(16.0) as i64;
        if fits_with(&t) {
            fits.push(format!("--size {}x{}", t.size.width, t.size.height));
            break;
        }
        scale -= 0.05;
    }
    let mut c = s.cutouts / 2;
    while c >= 1 {
        let mut t = s.clone();
        t.cutouts = c;
        if fits_with(&t) {
            fits.push(format!("--cutouts {c}"));
            break;
        }
        c /= 2;
    }
    // bf16 is advice only where some model would run in f32 now (it then needs less).
    let mut t = s.clone();
    t.precision = Precision::Bf16;
    if need(&estimate(&t, m, device)) < need(&e) && fits_with(&t) {
        fits.push("--precision bf16".to_string());
    }
    let advice = if fits.is_empty() {
        "no smaller size or cutout count fits either: use a smaller model or a device with more memory"
            .to_string()
    } else {
        format!("these would fit: {}", fits.join(", or "))
    };
    let beyond = if only_activations {
        format!(", {:.1} GiB beyond the loaded models,", need(&e) / GIB)
    } else {
        String::new()
    };
    Err(usage(format!(
        "this run needs {}{beyond} but {} is {:.1} GiB; {advice} (`--dry-run` prints the estimate; \
         VQCLIP_MEMORY_LIMIT=GiB sets the budget instead)",
        e.describe(s),
        avail.source,
        avail.bytes / GIB
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::PartialSettings;

    fn settings(precision: &str) -> Settings {
        let text = format!(
            "prompts = [\"x\"]\ndrawer = \"fast_pixel\"\nprecision = \"{precision}\"\ncutouts = 8\n"
        );
        PartialSettings::from_toml(&text, std::path::Path::new("test"))
            .and_then(|p| p.resolve())
            .unwrap()
    }

    fn clip(resnet: bool) -> ClipConfig {
        ClipConfig {
            embed_dim: 512,
            image_resolution: 224,
            vision_layers: if resnet { 0 } else { 12 },
            vision_width: if resnet { 64 } else { 768 },
            vision_heads: 12,
            vision_patch_size: if resnet { 0 } else { 32 },
            vision_resnet_layers: resnet.then_some([3, 4, 6, 3]),
            context_length: 77,
            vocab_size: 49408,
            transformer_width: 512,
            transformer_heads: 8,
            transformer_layers: 12,
        }
    }

    /// The CLIP part of the estimate for one model.
    fn clip_bytes(precision: &str, c: &ClipConfig, device: Device) -> f64 {
        let m = ModelSizes {
            vqgan: None,
            clips: vec![c],
            weight_bytes: 0.0,
        };
        estimate(&settings(precision), &m, device).clip
    }

    #[test]
    fn the_estimate_follows_the_precision_policy_per_model() {
        let (rn, vit) = (clip(true), clip(false));
        for c in [&rn, &vit] {
            assert!(clip_bytes("bf16", c, Device::Cpu) < clip_bytes("f32", c, Device::Cpu));
            // CUDA under auto: bf16 for both towers (no CUDA is touched: the policy only asks).
            let cuda = Device::Cuda(0);
            assert_eq!(clip_bytes("auto", c, cuda), clip_bytes("bf16", c, cuda));
        }
        // A ResNet tower runs in f32 on the CPU under auto (as Generator::new casts it), so it counts so.
        assert_eq!(
            clip_bytes("auto", &rn, Device::Cpu),
            clip_bytes("f32", &rn, Device::Cpu)
        );
        // A ViT follows the CPU's bf16 support.
        let want = if crate::device::cpu_has_native_bf16() {
            "bf16"
        } else {
            "f32"
        };
        assert_eq!(
            clip_bytes("auto", &vit, Device::Cpu),
            clip_bytes(want, &vit, Device::Cpu)
        );
    }
}
