//! `vqclip generate`: resolve settings, pick the run directory, load models, drive the loop,
//! write frames, the final image, run.toml, log.jsonl and checkpoints; handle Ctrl-C and resume.
use crate::cli::GenerateArgs;
use crate::error::{Interrupted, usage};
use crate::generate::checkpoint::{self, WeightFile};
use crate::generate::engine::{Generator, Models};
use crate::models::clip::Clip;
use crate::models::vqgan::Vqgan;
use crate::report::run_page::Status;
use crate::rundir::{KEY_PROMPT, KEY_SEED, KEY_SETTINGS, KEY_SOFTWARE, KEY_STEP, RunDir, RunLock};
use crate::settings::{DrawerKind, Settings};
use crate::weights::registry::{self, ModelKind};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// How often pending loss values are copied to the host when no save is due.
const FLUSH_EVERY: i64 = 10;

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

/// The loaded models' sizes for the memory estimate.
fn model_sizes(models: &Models) -> crate::generate::memory::ModelSizes<'_> {
    let bytes = |vs: &tch::nn::VarStore| -> f64 {
        vs.variables()
            .values()
            .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as f64)
            .sum()
    };
    crate::generate::memory::ModelSizes {
        vqgan: models.vqgan.as_ref().map(|v| v.config()),
        clips: models.clips.iter().map(|c| c.config()).collect(),
        weight_bytes: models.vqgan.as_ref().map_or(0.0, |v| bytes(v.var_store()))
            + models
                .clips
                .iter()
                .map(|c| bytes(c.var_store()))
                .sum::<f64>(),
    }
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

/// One run: plan, load, optimize, save (no --count or --style-frames handling).
pub(crate) fn run_single(args: &GenerateArgs) -> Result<()> {
    run_single_in(args, None)
}

/// [`run_single`] in a run directory the caller may already hold (a batch job clears it first).
pub(crate) fn run_single_in(args: &GenerateArgs, held: Option<RunLock>) -> Result<()> {
    let plan = crate::runplan::plan(&args.request())?;
    let quiet = args.quiet;
    let device = crate::device::parse_device(&plan.settings.device)?;
    let fetch = args.fetch || std::env::var("VQCLIP_FETCH").is_ok_and(|v| v == "1");
    let models = load_models(&plan.settings, device, fetch, quiet)?;
    // Before the run allocates anything: refuse what cannot fit (exit 2) with settings that would.
    crate::generate::memory::check(&plan.settings, &model_sizes(&models), device, true)?;
    let run = RunDir::new(&plan.run_dir);
    // This process alone writes the directory from here on. The plan's look at it came before
    // anyone held it, so the never-overwrite rule is checked again now: two racing runs cannot
    // both pass.
    let _lock = match held {
        Some(l) => l,
        None => run.lock(if plan.resume { "--resume" } else { "--out" })?,
    };
    if !plan.resume {
        crate::runplan::check_run_dir(&plan.run_dir, args.force)?;
    }
    let mut generator = Generator::new(plan.settings.clone(), models, device)?;
    if plan.resume {
        let ckpt = run.checkpoint().context("checkpoint vanished")?;
        let state = checkpoint::load(&ckpt)?;
        // Another resume may have gone further since the plan looked.
        if state.meta.step > plan.settings.steps {
            return Err(usage(format!(
                "--steps {}: the run in {} has already done {} steps",
                plan.settings.steps,
                plan.run_dir.display(),
                state.meta.step
            )));
        }
        check_weights(&state.meta.weights, generator.weights())?;
        run.trim_log(state.meta.step)?;
        generator.restore(state)?;
    }
    std::fs::create_dir_all(run.frames_dir())
        .with_context(|| format!("cannot create {}", plan.run_dir.display()))?;
    write_run_toml(&plan.run_dir, &generator)?;
    let page = RunPage::new(&plan.run_dir, quiet);
    page.write(&Status::Running {
        step: generator.step,
        total: generator.settings.steps,
        rate: None,
    });

    crate::interrupt::requested(); // installs the handler before the first step
    let bar = progress_bar(quiet, generator.settings.steps, generator.step);
    let mut log = run.open_log()?;
    let total = generator.settings.steps;
    let (started, first_step) = (std::time::Instant::now(), generator.step);
    let save_every = generator.settings.save_every;
    let outcome = (|| -> Result<bool> {
        while generator.step < total {
            crate::panics::catch(|| generator.step())
                .map_err(|e| explain_step_error(e, &generator.settings))?;
            let step = generator.step;
            let zoom_now = generator.settings.zoom_due(step) && step < total;
            let save_now = (save_every > 0 && step % save_every == 0 || zoom_now) && step < total;
            let stop = crate::interrupt::requested();
            if save_now || stop || step % FLUSH_EVERY == 0 || step == total {
                let records = generator.flush()?;
                log.append(&records)?;
                if let Some(last) = records.last() {
                    bar.set_message(format!("loss {:.4}", last.loss));
                }
            }
            bar.set_position(step as u64);
            if save_now || stop {
                let frame = run.frame(step);
                save_image(&generator, &frame)?;
                // The frame shows the image before the move; the checkpoint holds the state after it.
                if zoom_now {
                    generator.zoom()?;
                }
                checkpoint::save(&plan.run_dir, &generator.state())?;
                if !quiet {
                    bar.println(format!("saved {}", frame.display()));
                }
                let secs = started.elapsed().as_secs_f64();
                page.write(&Status::Running {
                    step,
                    total,
                    rate: (secs > 0.0).then(|| (step - first_step) as f64 / secs),
                });
            }
            if stop {
                return Ok(false);
            }
        }
        Ok(true)
    })();
    bar.finish_and_clear();
    match outcome {
        Ok(true) => {
            let final_png = run.final_png();
            save_image(&generator, &final_png)?;
            if generator.settings.tile {
                save_tiled_preview(&final_png, &run.tiled_png())?;
            }
            // A zoom due at the last step is applied to the saved state, so `--resume --steps`
            // continues exactly as a longer run would have.
            if generator.settings.zoom_due(generator.step) {
                generator.zoom()?;
            }
            checkpoint::save(&plan.run_dir, &generator.state())?;
            page.write(&Status::Finished {
                steps: generator.step,
                seconds: started.elapsed().as_secs_f64(),
            });
            println!("{}", final_png.display());
            if !quiet {
                eprintln!(
                    "{}",
                    summary(generator.step - first_step, started.elapsed(), device)
                );
            }
            if args.video {
                // The video is derived from this run's frames, so replacing an older one is fine.
                let video = crate::cmd::video::make(&plan.run_dir, None, None, true, quiet)?;
                // the page shows the video too
                page.write(&Status::Finished {
                    steps: generator.step,
                    seconds: started.elapsed().as_secs_f64(),
                });
                println!("{}", video.display());
            }
            Ok(())
        }
        Ok(false) => {
            page.write(&Status::Stopped {
                step: generator.step,
                total,
            });
            Err(anyhow::Error::new(Interrupted(format!(
                "interrupted at step {}/{}; state saved. Resume with: vqclip generate --resume {}",
                generator.step,
                total,
                plan.run_dir.display()
            ))))
        }
        Err(e) => {
            page.write(&Status::Failed {
                step: generator.step,
                message: format!("{e:#}"),
            });
            let kept = run
                .checkpoint()
                .map(|_| {
                    format!(
                        "; the last good checkpoint is in {} (resume with --resume)",
                        plan.run_dir.display()
                    )
                })
                .unwrap_or_default();
            Err(e.context(format!(
                "generation stopped at step {}{kept}",
                generator.step
            )))
        }
    }
}

/// The run's `index.html`: written at the start, at every save and at the end. A page that cannot
/// be written costs a warning (once), never the run.
struct RunPage {
    dir: std::path::PathBuf,
    quiet: bool,
    warned: std::cell::Cell<bool>,
}

impl RunPage {
    fn new(dir: &Path, quiet: bool) -> RunPage {
        RunPage {
            dir: dir.to_path_buf(),
            quiet,
            warned: std::cell::Cell::new(false),
        }
    }

    fn write(&self, status: &Status) {
        if let Err(e) = crate::report::run_page::write(&self.dir, status)
            && !self.quiet
            && !self.warned.replace(true)
        {
            eprintln!("vqclip: warning: cannot write the run page: {e:#}");
        }
    }
}

/// The closing line on stderr: steps, time, speed and peak memory (the anchors print none).
fn summary(steps: i64, elapsed: std::time::Duration, device: tch::Device) -> String {
    let secs = elapsed.as_secs_f64();
    let mut line = format!("done: {steps} steps in {secs:.1} s");
    if steps > 0 && secs > 0.0 {
        line.push_str(&format!(" ({:.2} it/s)", steps as f64 / secs));
    }
    line.push_str(&format!(" on {}", device_name(device)));
    if let Some(kib) = peak_rss_kib() {
        line.push_str(&format!(
            ", peak memory {:.2} GiB (process RSS)",
            kib as f64 / (1024.0 * 1024.0)
        ));
    }
    line
}

fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    }
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Out-of-memory failures get advice instead of the allocator's message.
fn explain_step_error(e: anyhow::Error, s: &Settings) -> anyhow::Error {
    if crate::panics::is_out_of_memory(&e) {
        return anyhow::anyhow!(
            "out of memory at {} with {} cutouts per CLIP model: try fewer --cutouts (with --batches N \
             to keep N times as many per step), a smaller --size, or --precision bf16 ({})",
            s.size,
            s.cutouts,
            format!("{e:#}").chars().take(120).collect::<String>()
        );
    }
    e
}

fn progress_bar(quiet: bool, total: i64, done: i64) -> ProgressBar {
    let target = if quiet || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  {msg}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar.set_position(done as u64);
    bar
}

/// `--tile`: the final image repeated 2x2, to check the seams by eye.
fn save_tiled_preview(final_png: &Path, out: &Path) -> Result<()> {
    let img = crate::image_io::load_rgb(final_png)?;
    let (w, h) = img.dimensions();
    let mut tiled = image::RgbImage::new(w * 2, h * 2);
    for (x, y) in [(0, 0), (w, 0), (0, h), (w, h)] {
        image::imageops::replace(&mut tiled, &img, x as i64, y as i64);
    }
    let tmp = out.with_extension("png.tmp");
    tiled
        .save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
}

fn save_image(generator: &Generator, path: &Path) -> Result<()> {
    let img = crate::image_io::tensor_to_rgb(&generator.image())?;
    let s = &generator.settings;
    let settings_toml = s.to_toml()?;
    let prompt = s.prompt_line();
    let software = format!("vqclip {}", env!("CARGO_PKG_VERSION"));
    let step = generator.step.to_string();
    let seed = s.seed.to_string();
    let tmp = path.with_extension("png.tmp");
    crate::image_io::save_png(
        &tmp,
        &img,
        &[
            (KEY_SOFTWARE, &software),
            (KEY_PROMPT, &prompt),
            (KEY_SEED, &seed),
            (KEY_STEP, &step),
            (KEY_SETTINGS, &settings_toml),
        ],
    )?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_run_toml(dir: &Path, generator: &Generator) -> Result<()> {
    #[derive(serde::Serialize)]
    struct RunInfo<'a> {
        vqclip_version: &'a str,
        weights: &'a [WeightFile],
    }
    let mut text = generator.settings.to_toml()?;
    let run = RunInfo {
        vqclip_version: env!("CARGO_PKG_VERSION"),
        weights: generator.weights(),
    };
    let mut table = toml::Table::new();
    table.insert(
        "run".into(),
        toml::Value::try_from(run).context("cannot serialize run info")?,
    );
    text.push('\n');
    text.push_str(&toml::to_string(&table).context("cannot serialize run info")?);
    let path = RunDir::new(dir).run_toml();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn check_weights(saved: &[WeightFile], now: &[WeightFile]) -> Result<()> {
    for (a, b) in saved.iter().zip(now) {
        if a.bytes != b.bytes {
            bail!(
                "the {} weights changed since the checkpoint ({} was {} bytes, {} is {} bytes); \
                 resume needs the same files",
                a.role,
                a.path,
                a.bytes,
                b.path,
                b.bytes
            );
        }
    }
    Ok(())
}

/// Loads the VQGAN (vqgan drawer only) and every CLIP model of the settings.
pub fn load_models(
    settings: &Settings,
    device: tch::Device,
    fetch: bool,
    quiet: bool,
) -> Result<Models> {
    let mut weights = Vec::new();
    // Only the vqgan drawer reads a VQGAN; the others need no file for it.
    let vqgan = if settings.drawer == DrawerKind::Vqgan {
        let vq_path = resolve_or_fetch(&settings.vqgan, ModelKind::Vqgan, fetch, quiet)?;
        weights.push(weight_file("vqgan", &vq_path));
        Some(Vqgan::load(&vq_path, device)?)
    } else {
        None
    };
    let mut clips = Vec::new();
    for spec in &settings.clip {
        let p = resolve_or_fetch(spec, ModelKind::Clip, fetch, quiet)?;
        weights.push(weight_file("clip", &p));
        clips.push(Clip::load(&p, device)?);
    }
    Ok(Models {
        vqgan,
        clips,
        weights,
    })
}

/// A known model that is missing is downloaded first when `fetch` is on.
fn resolve_or_fetch(
    spec: &str,
    kind: ModelKind,
    fetch: bool,
    quiet: bool,
) -> Result<std::path::PathBuf> {
    if fetch
        && !Path::new(spec).is_file()
        && let Some(entry) = registry::find(spec, kind)
    {
        let dir = registry::weights_dir();
        if registry::find_present(entry, &dir).is_none() {
            return crate::weights::fetch::fetch_model(entry, &dir, quiet);
        }
    }
    registry::resolve(spec, kind).map_err(|e| {
        let missing_known = registry::find(spec, kind).is_some_and(|m| {
            !m.bundled && registry::find_present(m, &registry::weights_dir()).is_none()
        });
        if missing_known {
            anyhow::anyhow!("{e:#}\n{DEMO_HINT}")
        } else {
            e
        }
    })
}

/// Shown under a missing-weights error: the bundled demo world makes an image with no download.
pub const DEMO_HINT: &str = "hint: no weights yet, or no network? `vqclip generate \"a red circle on a blue background\" --preset demo` makes an image with the bundled demo models (flat shapes in 8 colours)";

fn weight_file(role: &str, path: &Path) -> WeightFile {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    WeightFile {
        role: role.to_string(),
        path: path.display().to_string(),
        bytes,
    }
}
