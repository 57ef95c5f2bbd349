//! `--precision auto` on a CPU with native bf16: measured, not guessed. Whether bf16 beats f32
//! depends on the CPU (AMX or AVX512-BF16 only), on libtorch's kernels and on the tower: the same
//! RN50 ran 0.65x f32's time in bf16 on one EPYC and 6x on another host, while ViTs gained on
//! both. So on first use each tower kind is timed both ways (forward and backward to the input,
//! as a step runs it, on random weights of a released model's widths), and the faster kind is
//! kept per CPU model, libtorch version and thread count in `$XDG_CACHE_HOME/vqclip/precision.toml`.
//! `VQCLIP_PRECISION_AUTO=flags` skips the measurement and uses the CPU-flag rule instead.
use crate::device::ModelRole;
use crate::models::clip::ClipConfig;
use crate::models::clip::resnet::ModifiedResNet;
use crate::models::clip::transformer::Transformer;
use crate::models::vqgan::VqganConfig;
use crate::models::vqgan::decoder::Decoder;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn};

/// bf16 is taken only when it is at least this much faster: f32 is the exact path, and a near
/// tie is within the measurement's noise (the bar: auto within 5 % of the faster).
const BF16_MARGIN: f64 = 0.95;

/// The three tower kinds a precision is decided for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tower {
    /// The VQGAN decoder (the `vqgan` drawer).
    Vqgan,
    /// A CLIP ViT image tower.
    Vit,
    /// A CLIP ModifiedResNet image tower.
    Resnet,
}

impl Tower {
    pub const ALL: [Tower; 3] = [Tower::Vqgan, Tower::Vit, Tower::Resnet];

    pub fn of(role: ModelRole) -> Tower {
        match role {
            ModelRole::Vqgan => Tower::Vqgan,
            ModelRole::Clip { resnet: false } => Tower::Vit,
            ModelRole::Clip { resnet: true } => Tower::Resnet,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tower::Vqgan => "vqgan",
            Tower::Vit => "vit",
            Tower::Resnet => "resnet",
        }
    }

    /// The rule before measuring (`VQCLIP_PRECISION_AUTO=flags`): bf16 on a CPU with native
    /// bf16, except a ResNet tower, whose bf16 path measured 6x slower than f32 on one such host
    /// (RN50 in the 256x256x32 loop, 2 cores), unlike the ViTs'.
    pub fn flags_kind(self) -> Kind {
        match self {
            Tower::Resnet => Kind::Float,
            Tower::Vqgan | Tower::Vit => Kind::BFloat16,
        }
    }

    /// What is timed, in words (doctor shows it).
    pub fn workload(self) -> &'static str {
        match self {
            Tower::Vqgan => "f16 VQGAN decoder (ch 128), 4x4 latents to 64x64, channels-last",
            Tower::Vit => "two ViT-B blocks (width 768, 12 heads), 8 cutouts of 50 tokens",
            Tower::Resnet => "RN50 stem and stages 1-2, one cutout at 224x224",
        }
    }
}

/// One tower's timings (best of the timed repeats, forward plus backward) and the kind kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub f32_ms: f64,
    pub bf16_ms: f64,
}

impl Timing {
    pub fn choice(&self) -> Kind {
        if self.bf16_ms < self.f32_ms * BF16_MARGIN {
            Kind::BFloat16
        } else {
            Kind::Float
        }
    }
}

/// One machine's verdict: what was measured where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// CPU model, libtorch version and thread count: the measurement holds for these.
    pub key: String,
    /// Seconds since the Unix epoch when it was measured.
    pub measured_at: u64,
    pub towers: BTreeMap<Tower, Timing>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    machine: Vec<Verdict>,
}

/// How `auto` decides on a CPU with native bf16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRule {
    /// Time both kinds once per machine (the default).
    Measure,
    /// The CPU-flag rule: bf16 for the VQGAN and ViTs, f32 for ResNets (`VQCLIP_PRECISION_AUTO=flags`).
    Flags,
}

/// `VQCLIP_PRECISION_AUTO`: `flags`, else measure. The library's own unit tests use the flag rule:
/// they check the policy's table, not this machine's timings.
pub fn auto_rule() -> AutoRule {
    match std::env::var("VQCLIP_PRECISION_AUTO").as_deref() {
        Ok("flags") => AutoRule::Flags,
        Ok("measure") => AutoRule::Measure,
        _ if cfg!(test) => AutoRule::Flags,
        _ => AutoRule::Measure,
    }
}

/// The cache file: `$XDG_CACHE_HOME/vqclip/precision.toml`, by default `~/.cache/vqclip/precision.toml`.
pub fn cache_path() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("vqclip")
        .join("precision.toml")
}

/// What the measurement holds for: CPU model, libtorch version, threads.
pub fn machine_key() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!(
        "{cpu} | libtorch {} | {} threads",
        option_env!("VQCLIP_LIBTORCH_VERSION").unwrap_or("unknown"),
        tch::get_num_threads()
    )
}

/// This machine's cached verdict, if one was measured.
pub fn cached() -> Option<Verdict> {
    let key = machine_key();
    read_cache()
        .ok()?
        .machine
        .into_iter()
        .find(|v| v.key == key)
}

fn read_cache() -> Result<CacheFile> {
    let path = cache_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CacheFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Adds (or replaces) this machine's verdict, through a temporary file and a rename.
fn write_cache(v: &Verdict) -> Result<()> {
    let path = cache_path();
    // A damaged file is replaced: it only held measurements.
    let mut file = read_cache().unwrap_or_default();
    file.machine.retain(|m| m.key != v.key);
    file.machine.push(v.clone());
    let text = format!(
        "# vqclip: --precision auto's measurements of f32 against bf16 on CPUs (delete to measure again)\n{}",
        toml::to_string(&file)?
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// The kind `auto` picks for `tower` on this CPU (which has native bf16): the cached verdict, else
/// one measurement of all three towers now (said on stderr), cached for the next runs. If the
/// cache cannot be written the verdict still holds for this process.
pub fn measured_kind(tower: Tower) -> Kind {
    static THIS_PROCESS: Mutex<Option<Verdict>> = Mutex::new(None);
    let mut held = THIS_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if held.is_none() {
        *held = Some(cached().unwrap_or_else(|| {
            let path = cache_path();
            eprintln!(
                "vqclip: timing f32 against bf16 on this CPU for --precision auto (once per machine, a few seconds; saved in {})",
                path.display()
            );
            let v = measure();
            if let Err(e) = write_cache(&v) {
                eprintln!("vqclip: warning: {e:#}; the measurement holds for this run only");
            }
            v
        }));
    }
    held.as_ref()
        .and_then(|v| v.towers.get(&tower))
        .map_or(Kind::Float, Timing::choice)
}

/// Times every tower both ways on the CPU.
pub fn measure() -> Verdict {
    let towers = Tower::ALL.iter().map(|&t| (t, time_tower(t))).collect();
    Verdict {
        key: machine_key(),
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        towers,
    }
}

/// A tower's forward pass on the probe's input.
type Forward = Box<dyn Fn(&Tensor) -> Tensor>;

/// Frozen as in a run (the backward reaches the input only), with weights of a trained model's
/// scale: the constructors' constant init would time zeros. Variances stay positive.
fn randomize(vs: &mut nn::VarStore) {
    vs.freeze();
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            let _ = if name.ends_with("running_var") {
                v.uniform_(0.5, 1.5)
            } else {
                v.uniform_(-0.05, 0.05)
            };
        }
    });
}

fn time_tower(tower: Tower) -> Timing {
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (forward, input): (Forward, Tensor) = match tower {
        Tower::Vqgan => {
            let d = Decoder::new(vs.root() / "decoder", &VqganConfig::imagenet_f16_16384());
            let z = Tensor::randn([1, 256, 4, 4], (Kind::Float, Device::Cpu));
            (Box::new(move |x: &Tensor| x.apply(&d)), z)
        }
        Tower::Vit => {
            let t = Transformer::new(vs.root() / "transformer", 768, 2, 12);
            let x = Tensor::randn([8, 50, 768], (Kind::Float, Device::Cpu));
            (Box::new(move |x: &Tensor| t.forward(x, false)), x)
        }
        Tower::Resnet => {
            let mut r = ModifiedResNet::new(vs.root() / "visual", &rn50(), [3, 4, 6, 3]);
            randomize(&mut vs);
            r.fold(&vs); // as a loaded model is
            let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
            (Box::new(move |x: &Tensor| r.features(x, 2)), x)
        }
    };
    if tower != Tower::Resnet {
        randomize(&mut vs);
    }
    let layout = |t: &Tensor| match tower {
        Tower::Vqgan => crate::models::vqgan::to_channels_last(t),
        _ => t.shallow_clone(),
    };
    if tower == Tower::Vqgan {
        crate::models::vqgan::weights_channels_last(&vs);
    }
    let mut time_kind = |kind: Kind| -> f64 {
        vs.set_kind(kind);
        let x = layout(&input).to_kind(kind).set_requires_grad(true);
        let once = || {
            let t = Instant::now();
            let y = forward(&x);
            y.to_kind(Kind::Float).square().mean(Kind::Float).backward();
            t.elapsed().as_secs_f64()
        };
        once(); // warm-up: oneDNN builds its kernels on first use
        // Best of two to five repeats, about half a second per kind.
        let mut best = f64::INFINITY;
        let start = Instant::now();
        for i in 0..5 {
            best = best.min(once());
            if i >= 1 && start.elapsed().as_secs_f64() > 0.5 {
                break;
            }
        }
        best * 1000.0
    };
    let f32_ms = time_kind(Kind::Float);
    let bf16_ms = time_kind(Kind::BFloat16);
    Timing { f32_ms, bf16_ms }
}

/// RN50's sizes (OpenAI's `RN50.pt`).
fn rn50() -> ClipConfig {
    ClipConfig {
        embed_dim: 1024,
        image_resolution: 224,
        vision_layers: 16,
        vision_width: 64,
        vision_heads: 32,
        vision_patch_size: 32,
        vision_resnet_layers: Some([3, 4, 6, 3]),
        context_length: 77,
        vocab_size: 49408,
        transformer_width: 512,
        transformer_heads: 8,
        transformer_layers: 12,
    }
}

/// A tower's verdict in words, for doctor: "bf16 (f32 12.3 ms, bf16 7.0 ms)".
pub fn describe(t: &Timing) -> String {
    format!(
        "{} (f32 {:.1} ms, bf16 {:.1} ms)",
        crate::weights::kind_name(t.choice()),
        t.f32_ms,
        t.bf16_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_needs_a_clear_win() {
        let t = |f32_ms, bf16_ms| Timing { f32_ms, bf16_ms }.choice();
        assert_eq!(t(100.0, 50.0), Kind::BFloat16);
        assert_eq!(t(100.0, 94.0), Kind::BFloat16);
        assert_eq!(t(100.0, 96.0), Kind::Float);
        assert_eq!(t(100.0, 600.0), Kind::Float);
    }

    #[test]
    fn cache_round_trips() {
        let v = Verdict {
            key: "Some CPU | libtorch 2.11.0 | 2 threads".into(),
            measured_at: 1,
            towers: [
                (
                    Tower::Vqgan,
                    Timing {
                        f32_ms: 10.0,
                        bf16_ms: 6.0,
                    },
                ),
                (
                    Tower::Resnet,
                    Timing {
                        f32_ms: 10.0,
                        bf16_ms: 60.0,
                    },
                ),
            ]
            .into(),
        };
        let text = toml::to_string(&CacheFile {
            machine: vec![v.clone()],
        })
        .unwrap();
        let back: CacheFile = toml::from_str(&text).unwrap();
        assert_eq!(back.machine, vec![v]);
    }
}
