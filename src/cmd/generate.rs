//! `vqclip generate`: `--dry-run`, `--count` and `--style-frames` around single runs, each planned
//! (`runplan`) and run by the library's session (`generate::session`) with a progress bar.
use crate::cli::GenerateArgs;
use crate::error::usage;
use crate::generate::load::{load_models, model_sizes};
use crate::generate::session::{self, Observer, Options};
use crate::rundir::{RunDir, StepRecord};
use crate::settings::{DrawerKind, Settings};
use crate::weights::registry::{self, ModelKind};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

pub fn run(args: &GenerateArgs) -> Result<()> {
    if args.dry_run {
        return dry_run(args);
    }
    if let Some(dir) = &args.style_frames {
        return crate::cmd::style_frames::run(args, dir, &run_single);
    }
    match args.count {
        None | Some(1) => run_single(args),
        Some(n) => run_many(args, n),
    }
}

/// `--dry-run`: the resolved settings (TOML, as run.toml would hold them), the run directory,
/// where each model would be read from and the memory estimate, on stdout; nothing is written (the
/// models, when present, are read for their sizes).
fn dry_run(args: &GenerateArgs) -> Result<()> {
    let mut a = args.clone();
    a.dry_run = false;
    if let Some(dir) = &args.style_frames {
        a.style_frames = None;
        a.settings.init_image = crate::image_io::list_frames(dir)?.into_iter().next();
    }
    let plan = crate::runplan::plan(&a.request())?;
    let mut out = String::from("# vqclip generate --dry-run: nothing was written\n");
    out.push_str(&format!("# run directory: {}\n", plan.run_dir.display()));
    out.push_str(&format!("# drawer: {}\n", plan.settings.drawer));
    let vqgan = (plan.settings.drawer == DrawerKind::Vqgan).then_some(&plan.settings.vqgan);
    let models = vqgan
        .into_iter()
        .map(|v| (ModelKind::Vqgan, v))
        .chain(plan.settings.clip.iter().map(|c| (ModelKind::Clip, c)));
    for (kind, spec) in models {
        let role = match kind {
            ModelKind::Vqgan => "vqgan",
            ModelKind::Clip => "clip",
            ModelKind::Head => "head",
            ModelKind::Vgg => "vgg",
            ModelKind::Resmem => "resmem",
        };
        let place = match registry::resolve(spec, kind) {
            Ok(p) => p.display().to_string(),
            Err(e) => format!("MISSING ({e:#})"),
        };
        out.push_str(&format!("# {role}: {spec} -> {place}\n"));
    }
    out.push_str(&dry_run_memory(&plan.settings));
    out.push_str(&plan.settings.to_toml()?);
    crate::cmd::print_stdout(&out)
}

/// The `# memory:` lines of `--dry-run`: the estimate from the models' real sizes (read on the CPU) and
/// whether it fits the device.
fn dry_run_memory(settings: &Settings) -> String {
    use crate::generate::memory;
    let device = match crate::device::parse_device(&settings.device) {
        Ok(d) => d,
        Err(e) => return format!("# memory: unknown ({e:#})\n"),
    };
    let models = match load_models(settings, tch::Device::Cpu, false, true) {
        Ok(m) => m,
        Err(e) => return format!("# memory: unknown until the models are present ({e:#})\n"),
    };
    let sizes = model_sizes(&models);
    let e = memory::estimate(settings, &sizes, device);
    let mut out = format!("# memory: {} on {device:?}\n", e.describe(settings));
    match memory::available(device) {
        Some(avail) => {
            out.push_str(&format!(
                "# memory: {}: {:.1} GiB\n",
                avail.source,
                avail.bytes / (1u64 << 30) as f64
            ));
            // The models were read onto the CPU here: resident in this process only for a CPU run.
            if let Err(err) = memory::check(settings, &sizes, device, !device.is_cuda()) {
                out.push_str(&format!("# memory: WOULD NOT FIT: {err:#}\n"));
            }
        }
        None => out.push_str("# memory: the device's free memory is unknown (not checked)\n"),
    }
    out
}

/// `--count N`: N runs with consecutive seeds, each in `RUN_DIR/seed-<n>/`. Every run is planned
/// (and refused) before the first starts; each one is exactly the single run with its seed.
fn run_many(args: &GenerateArgs, count: i64) -> Result<()> {
    if !(1..=1000).contains(&count) {
        return Err(usage(format!(
            "--count: invalid value {count}: must be from 1 to 1000"
        )));
    }
    if args.resume.is_some() {
        return Err(usage(format!(
            "--count cannot be combined with --resume: resume each {}<n> directory on its own",
            crate::rundir::SEED_PREFIX
        )));
    }
    let base = crate::runplan::plan(&args.request())?;
    let mut variants = Vec::with_capacity(count as usize);
    for i in 0..count as u64 {
        let seed = base.settings.seed.checked_add(i).ok_or_else(|| {
            usage(format!(
                "--seed {}: too large for --count {count}",
                base.settings.seed
            ))
        })?;
        let mut a = args.clone();
        a.count = None;
        a.settings.seed = Some(seed.to_string());
        a.out = Some(
            RunDir::new(&base.run_dir)
                .seed_member(seed)
                .path()
                .to_path_buf(),
        );
        crate::runplan::plan(&a.request())?;
        variants.push(a);
    }
    for a in &variants {
        run_single(a)?;
    }
    Ok(())
}

/// One run: plan, then the library's session with a progress bar, then `--video`.
pub(crate) fn run_single(args: &GenerateArgs) -> Result<()> {
    let plan = crate::runplan::plan(&args.request())?;
    if args.video && plan.settings.animation_dir.is_some() {
        return Err(usage(
            "--video makes a video of the run's frames; an --animation-dir run writes its own anim.gif (and anim.mp4 with ffmpeg): drop --video",
        ));
    }
    let options = Options {
        fetch: args.fetch || std::env::var("VQCLIP_FETCH").is_ok_and(|v| v == "1"),
        quiet: args.quiet,
        profile: args.profile,
    };
    let mut progress = Progress::new(args.quiet);
    let done = session::run(&plan, options, None, &mut progress)?;
    println!("{}", done.final_png.display());
    if !args.quiet {
        eprintln!("{}", done.summary());
    }
    // Asked for, so printed even with --quiet.
    if let Some(table) = &done.profile {
        eprintln!("{table}");
    }
    if args.video {
        // The video is derived from this run's frames, so replacing an older one is fine.
        let video = crate::cmd::video::make(&done.run_dir, None, None, true, args.quiet)?;
        // the page shows the video too
        if let Err(e) = crate::report::run_page::write(&done.run_dir, &done.status())
            && !args.quiet
        {
            eprintln!("vqclip: warning: cannot write the run page: {e:#}");
        }
        println!("{}", video.display());
    }
    Ok(())
}

/// The terminal's view of a run: a progress bar with the last loss, a line per saved frame, and
/// warnings (all on stderr; nothing with --quiet).
struct Progress {
    quiet: bool,
    bar: ProgressBar,
    /// `VQCLIP_PROGRESS=lines`: `step K/N loss L` lines on stderr instead of the bar, at most
    /// twice a second and at the last step (the Python API's notebook progress reads them).
    lines: Option<LineProgress>,
}

struct LineProgress {
    total: i64,
    loss: Option<f64>,
    last: Option<std::time::Instant>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let lines = (!quiet && std::env::var_os("VQCLIP_PROGRESS").is_some_and(|v| v == "lines"))
            .then_some(LineProgress {
                total: 0,
                loss: None,
                last: None,
            });
        let target = if quiet || lines.is_some() || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  {msg}  ETA {eta}")
        {
            bar.set_style(style);
        }
        Progress { quiet, bar, lines }
    }

    /// A line on stderr above the bar (indicatif drops lines when its bar is hidden, as it is
    /// when stderr is not a terminal: a batch log still gets them).
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

impl Observer for Progress {
    fn started(&mut self, step: i64, total: i64) {
        self.bar.set_length(total as u64);
        self.bar.set_position(step as u64);
        if let Some(l) = &mut self.lines {
            l.total = total;
        }
    }
    fn logged(&mut self, records: &[StepRecord]) {
        if let Some(last) = records.last() {
            self.bar.set_message(format!("loss {:.4}", last.loss));
            if let Some(l) = &mut self.lines {
                l.loss = Some(last.loss);
            }
        }
    }
    fn stepped(&mut self, step: i64) {
        self.bar.set_position(step as u64);
        if let Some(l) = &mut self.lines {
            let due = l
                .last
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(500));
            if due || step >= l.total {
                l.last = Some(std::time::Instant::now());
                match l.loss {
                    Some(loss) => eprintln!("step {step}/{} loss {loss:.4}", l.total),
                    None => eprintln!("step {step}/{}", l.total),
                }
            }
        }
    }
    fn saved(&mut self, frame: &Path) {
        self.line(&format!("saved {}", frame.display()));
    }
    fn warning(&mut self, message: &str) {
        self.line(&format!("vqclip: warning: {message}"));
    }
    fn ended(&mut self) {
        self.bar.finish_and_clear();
    }
}
