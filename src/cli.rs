//! Command-line interface (clap derive). Raw flags only: resolution and validation live in
//! `settings`, so a flag, a preset and a config file go through the same checks.
use crate::settings::SettingsArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 runtime failure (weights, I/O, CUDA, NaN), \
2 bad usage or invalid settings, 130 interrupted (a checkpoint was saved; resume with \
`vqclip generate --resume RUN_DIR`).";

#[derive(Debug, Parser)]
#[command(name = "vqclip", version, args_override_self = true, about = "VQGAN+CLIP text-to-image generation, CLIP classification and image search", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an image from a text prompt (VQGAN latents optimized against CLIP).
    Generate(Box<GenerateArgs>),
    /// List or show style and quality presets.
    #[command(subcommand)]
    Presets(PresetsCommand),
    /// Print versions, CUDA devices and which weight files are present.
    Doctor,
    /// Encode and decode an image through the VQGAN (checks a VQGAN checkpoint).
    Reconstruct(ReconstructArgs),
    /// Print CLIP embeddings of texts and images.
    Embed(EmbedArgs),
    /// Print the prompt, seed and settings stored in a vqclip PNG, or a run directory's state.
    Info(InfoArgs),
    /// Zero-shot classification of images against text labels.
    Classify(ClassifyArgs),
    /// Search a folder of images with a text (or image) query.
    Search(SearchArgs),
    /// List, download, verify and convert the standard model weights.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Make a video of a run's frames: MP4 with ffmpeg, or GIF without.
    Video(VideoArgs),
    /// Write DIR/index.html: a card for every run in DIR (default outputs), newest first.
    Gallery(GalleryArgs),
    /// Many runs from a job file, sharded over Slurm job arrays, Kubernetes Indexed Jobs or
    /// devices; each job exactly once, resumed after preemption. `batch status ROOT` reports.
    Batch(Box<BatchArgs>),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: Option<BatchCommand>,
    /// Job file: one prompt per line (`#` comments), or TOML with [defaults], [[job]] and [grid].
    /// With --style-frames DIR (one job per frame) this argument is the prompt instead.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// This worker's shard, I/N (1-based); default from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Number of shards of a Kubernetes Indexed Job (its completions; or VQCLIP_SHARDS).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// After its own jobs, run other shards' unclaimed or stale jobs (default on).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub steal: bool,
    /// A claim from another host whose heartbeat counter has not moved for this many seconds (of
    /// this worker's clock) is taken over; one of this host is taken over as soon as its pid is gone.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub stale_after: u64,
    /// One worker process per device on this machine, over the same claims (e.g. cuda:0,cuda:1).
    #[arg(long, value_name = "DEV,...")]
    pub devices: Option<String>,
    /// Generate settings for every job (lowest precedence); `--out ROOT` is required.
    #[command(flatten)]
    pub generate: GenerateArgs,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Counts of done, running, stopped, failed and waiting jobs, and one line per job.
    Status {
        /// The batch's --out directory.
        #[arg(value_name = "ROOT")]
        root: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Another host's claim whose heartbeat is older than this (on the file system's clock)
        /// shows as stale; a claim of this host is judged by its pid.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        stale_after: u64,
    },
}

#[derive(Debug, Args)]
pub struct GalleryArgs {
    /// The folder that holds the runs.
    #[arg(value_name = "DIR", default_value = "outputs")]
    pub dir: PathBuf,
    /// Open the page with the desktop's opener (xdg-open or open) when there is one.
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct VideoArgs {
    /// Run directory made by `vqclip generate` (its frames/ and final.png).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Output file: .mp4, .webm, .mkv or .mov (needs ffmpeg) or .gif (default RUN_DIR/video.mp4,
    /// or video.gif without ffmpeg).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Frames per second (default: about 14 s of video, 10 to 60 fps).
    #[arg(long, value_name = "N")]
    pub fps: Option<u32>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Every known model, its files, size, checksum and whether it is present.
    List,
    /// Download models into the weights directory (resumable, verified). VQCLIP_MIRROR=URL is
    /// tried first (URL/<file name>); VQCLIP_REGISTRY=FILE adds models from a registry TOML.
    Fetch {
        /// Model names (see `vqclip weights list`).
        #[arg(required = true)]
        names: Vec<String>,
        /// Also fetch the safetensors alternative instead of the official file.
        #[arg(long)]
        safetensors: bool,
    },
    /// Check present files: size, sha256 where known, and that each opens as its kind of model.
    Verify {
        /// Model names (default: every present model).
        names: Vec<String>,
    },
    /// Print the weights directory.
    Path,
    /// Write a fast-load .safetensors cache holding only what inference needs.
    Convert {
        /// A known model name or a weight file path.
        name: String,
        /// Output file (default: beside the source, `<stem>.safetensors`).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// Overwrite an existing output.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Labels separated by `|` (e.g. "cat|dog|person").
    #[arg(long, value_name = "LABELS")]
    pub labels: Option<String>,
    /// A file with one label per line.
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// Prompt template with `{}` for the label (repeatable; embeddings are averaged).
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Vec<String>,
    /// A named template set: `imagenet` (the standard prompt ensemble).
    #[arg(long, value_name = "NAME")]
    pub templates: Option<String>,
    #[command(flatten)]
    pub model: ClipArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the results as a page: each image with its label bars.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Show only the K most probable labels per image.
    #[arg(long, value_name = "K")]
    pub top: Option<usize>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Folder to search (recursively).
    pub dir: PathBuf,
    /// Text query.
    #[arg(long, value_name = "TEXT")]
    pub query: Option<String>,
    /// Image query (image-to-image search).
    #[arg(long, value_name = "PATH")]
    pub image_query: Option<PathBuf>,
    /// Number of results.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub model: ClipArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the results as a page: the ranked grid with scores.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Ignore the saved index and encode every image again.
    #[arg(long)]
    pub reindex: bool,
    /// Images per encoding batch.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch: usize,
}

#[derive(Debug, Subcommand)]
pub enum PresetsCommand {
    /// Name and one-line description of every preset.
    List,
    /// The preset's resolved TOML.
    Show {
        /// Preset name or path to a .toml file.
        name: String,
    },
}

/// Flags of `generate`: the settings (declared in `settings`), then the run's own options.
#[derive(Debug, Clone, Args, Default)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Run directory (default outputs/<date>-<time>-<prompt>).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Download missing known models first (also VQCLIP_FETCH=1).
    #[arg(long)]
    pub fetch: bool,
    /// Allow writing into a run directory that already holds a result.
    #[arg(long)]
    pub force: bool,
    /// No progress bar or notices (errors are still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// After the run, print where a step's time went: the median seconds of each part (render,
    /// cutouts, CLIP forward, losses, CLIP backward, render backward, optimizer) over the steps
    /// after the first, on stderr. The device is synchronized between parts (CUDA runs a little
    /// slower).
    #[arg(long)]
    pub profile: bool,
    /// Make N images with the seeds SEED, SEED+1, ...: one run directory each, `seed-<n>` inside
    /// the run directory (default 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub count: Option<i64>,
    /// Restyle every image in DIR (e.g. a video's frames), in name order: one run per frame from
    /// that frame, same seed; results in RUN_DIR/frames/ (then `vqclip video RUN_DIR`). Running
    /// the same command again skips finished frames.
    #[arg(long, value_name = "DIR")]
    pub style_frames: Option<PathBuf>,
    /// Print the resolved settings, the run directory, the model files and the memory estimate
    /// (models present are read for their sizes), then stop; nothing is written. The memory
    /// budget is measured free memory, or VQCLIP_MEMORY_LIMIT=GiB.
    #[arg(long)]
    pub dry_run: bool,
    /// After the run, make RUN_DIR/video.mp4 from the frames (ffmpeg), or video.gif without
    /// ffmpeg; see `vqclip video`.
    #[arg(long)]
    pub video: bool,
    /// Style or quality preset name, or a .toml path; repeatable, applied in order.
    #[arg(long, value_name = "NAME|PATH")]
    pub preset: Vec<String>,
    /// Settings file: a TOML with the same keys as the flags, or a vqclip PNG / run.toml to repeat a run.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its checkpoint (only --steps, --save-every, --device,
    /// --quiet and --video may change).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    /// Input image.
    pub image: PathBuf,
    /// Output PNG.
    #[arg(short = 'o', long = "out", value_name = "OUT.png")]
    pub out: PathBuf,
    /// VQGAN: a known name or a .ckpt/.safetensors path.
    #[arg(long, value_name = "NAME|PATH", default_value = "imagenet_f16_16384")]
    pub vqgan: String,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Text to embed; repeatable.
    #[arg(long, value_name = "TEXT")]
    pub text: Vec<String>,
    /// Image to embed; repeatable.
    #[arg(long, value_name = "PATH")]
    pub image: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ClipArgs,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A PNG written by vqclip, or a run directory.
    #[arg(value_name = "IMAGE|RUN_DIR")]
    pub image: PathBuf,
}

/// `--clip` and `--device`, shared by the commands that only need CLIP.
#[derive(Debug, Args)]
pub struct ClipArgs {
    /// CLIP model: a known name (ViT-B/32, ...) or a path.
    #[arg(long, value_name = "NAME|PATH", default_value = "ViT-B/32")]
    pub clip: String,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// f32 (exact, the default), bf16, or auto (bf16 on CUDA; on a CPU with native bf16 the
    /// faster of the two for this tower, as measured on the machine): bf16 encodes faster where
    /// it is native, with embeddings within about 1 % of f32's (a search index keeps the two apart).
    #[arg(long, value_name = "P", default_value = "f32",
          value_parser = crate::settings::enum_parser::<crate::settings::Precision>())]
    pub precision: crate::settings::Precision,
}

impl GenerateArgs {
    /// What these flags ask of one run.
    pub fn request(&self) -> crate::runplan::Request {
        crate::runplan::Request {
            flags: crate::settings::PartialSettings::from_args(&self.settings),
            presets: self.preset.clone(),
            config: self.config.clone(),
            out: self.out.clone(),
            force: self.force,
            resume: self.resume.clone(),
        }
    }
}
