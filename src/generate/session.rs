//! One generation run as a library call: load the models, check the memory, hold the run
//! directory, resume, step, and save frames, checkpoints, the page and the final image. The caller
//! (the command line, a batch job, each `--count` member and `--style-frames` frame) plans the run
//! and watches it through an [`Observer`]; nothing here prints.
use super::animation::{self, Animation};
use super::checkpoint;
use super::engine::Generator;
use super::load::{check_weights, load_models, model_sizes};
use super::outputs::{save_image, save_tiled_preview, write_run_toml};
use crate::error::{Abandoned, Interrupted, usage};
use crate::report::run_page::Status;
use crate::rundir::{RunDir, RunLock, StepRecord};
use crate::runplan::Plan;
use crate::settings::Settings;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often pending loss values are copied to the host when no save is due.
const FLUSH_EVERY: i64 = 10;

/// What a run tells whoever drives it. Every method has a default that ignores the event.
pub trait Observer {
    /// The loop is about to run from `step` (0, or the checkpoint's) to `total`.
    fn started(&mut self, _step: i64, _total: i64) {}
    /// Steps whose losses reached the host, in order (also written to the log).
    fn logged(&mut self, _records: &[StepRecord]) {}
    /// A step is done.
    fn stepped(&mut self, _step: i64) {}
    /// A frame was saved (with a checkpoint).
    fn saved(&mut self, _frame: &Path) {}
    /// Something went wrong that does not stop the run (e.g. the page could not be written).
    fn warning(&mut self, _message: &str) {}
    /// The loop is over (finished, interrupted or failed); a progress display can go.
    fn ended(&mut self) {}
    /// Some(why) when the run must stop at once, writing nothing more (a batch worker whose claim
    /// on the job was taken over: the job's files are now another worker's).
    fn abandon(&self) -> Option<String> {
        None
    }
}

/// An observer that watches nothing (batch jobs, tests).
pub struct Quiet;
impl Observer for Quiet {}

/// How to run, beyond the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Download missing known models first.
    pub fetch: bool,
    /// No download progress.
    pub quiet: bool,
    /// Time each step by part ([`Finished::profile`]).
    pub profile: bool,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    pub run_dir: PathBuf,
    pub final_png: PathBuf,
    /// Steps done now (after a resume: since the checkpoint).
    pub steps: i64,
    /// The run's step count at the end.
    pub step: i64,
    pub elapsed: Duration,
    pub device: tch::Device,
    /// What each frozen model ran in ([`super::engine::Generator::precisions`]).
    pub precisions: Vec<String>,
    /// With [`Options::profile`]: the median time of each part of a step, as a table.
    pub profile: Option<String>,
}

impl Finished {
    /// The closing line: steps, time, speed and peak memory (the anchors print none).
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mut line = format!("done: {} steps in {secs:.1} s", self.steps);
        if self.steps > 0 && secs > 0.0 {
            line.push_str(&format!(" ({:.2} it/s)", self.steps as f64 / secs));
        }
        line.push_str(&format!(" on {}", device_name(self.device)));
        if !self.precisions.is_empty() {
            line.push_str(&format!(" [{}]", self.precisions.join(", ")));
        }
        if let tch::Device::Cuda(i) = self.device
            && let Some(bytes) = crate::aten::cuda_peak_bytes(i)
        {
            line.push_str(&format!(
                ", peak device memory {:.2} GiB (caching allocator)",
                bytes as f64 / (1024.0 * 1024.0 * 1024.0)
            ));
        }
        if let Some(kib) = peak_rss_kib() {
            line.push_str(&format!(
                ", peak memory {:.2} GiB (process RSS)",
                kib as f64 / (1024.0 * 1024.0)
            ));
        }
        line
    }

    /// The run page's closing status (also after a video is added).
    pub fn status(&self) -> Status {
        Status::Finished {
            steps: self.step,
            seconds: self.elapsed.as_secs_f64(),
        }
    }
}

/// Runs the plan to its end (or to Ctrl-C: an `Interrupted` error after the checkpoint is saved).
/// `held` is the run directory's lock when the caller took it already (a batch job clears the
/// directory first).
pub fn run(
    plan: &Plan,
    options: Options,
    held: Option<RunLock>,
    observer: &mut dyn Observer,
) -> Result<Finished> {
    let device = crate::device::parse_device(&plan.settings.device)?;
    // Process-wide, and before any kernel runs: cuDNN picks its algorithms at the first call.
    if plan.settings.deterministic || crate::aten::deterministic() {
        crate::aten::set_deterministic(plan.settings.deterministic)?;
    }
    if let tch::Device::Cuda(i) = device {
        crate::aten::cuda_reset_peak(i);
    }
    let models = load_models(&plan.settings, device, options.fetch, options.quiet)?;
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
        crate::runplan::check_run_dir(&plan.run_dir, plan.force)?;
        // What an earlier run left (with --force, or a start that died before its first
        // checkpoint: it wrote run.toml) goes, so the log and frames are this run's alone. A folder
        // vqclip never ran in keeps whatever it holds.
        if plan.force || run.run_toml().is_file() {
            run.clear_run()?;
        }
    }
    let mut generator = Generator::new(plan.settings.clone(), models, device)?;
    if options.profile {
        generator.enable_profile();
    }
    for w in generator.warnings() {
        observer.warning(w);
    }
    let mut anim = None;
    if plan.resume {
        anim = resume(plan, &run, &mut generator)?;
    } else if generator.settings.animation_dir.is_some() {
        anim = Some(Animation::start(&mut generator, &plan.run_dir, plan.force)?);
    } else if generator.settings.overlay_due(0) {
        // pixray pastes at iteration 0 too, before the first step.
        generator.overlay()?;
    }
    std::fs::create_dir_all(run.frames_dir())
        .with_context(|| format!("cannot create {}", plan.run_dir.display()))?;
    write_run_toml(&plan.run_dir, &generator)?;
    let mut page = Page {
        dir: &plan.run_dir,
        warned: false,
    };
    // Progress counts steps over all frames in animation mode.
    let frames = anim.as_ref().map_or(1, |a| a.outputs.len() as i64);
    let total = generator.settings.steps;
    let done = |g: &Generator, a: &Option<Animation>| a.as_ref().map_or(g.step, |a| a.done(g));
    page.write(
        &Status::Running {
            step: done(&generator, &anim),
            total: total * frames,
            rate: None,
        },
        observer,
    );
    crate::interrupt::requested(); // installs the handler before the first step
    let (started, first_step) = (Instant::now(), done(&generator, &anim));
    observer.started(first_step, total * frames);
    let outcome = match anim.as_mut() {
        Some(a) => animate(
            &mut generator,
            a,
            &run,
            &mut page,
            observer,
            started,
            first_step,
        ),
        None => steps(
            &mut generator,
            &run,
            &mut page,
            observer,
            started,
            first_step,
        ),
    };
    observer.ended();
    match outcome {
        Ok(true) => {
            if let Some(a) = anim.as_mut() {
                finish_animation(&mut generator, a, observer)?;
            }
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
            let state = match &anim {
                Some(a) => a.checkpoint_state(&generator),
                None => {
                    if generator.settings.overlay_due(generator.step) {
                        generator.overlay()?;
                    }
                    generator.state()
                }
            };
            checkpoint::save(&plan.run_dir, &state)?;
            let done = Finished {
                run_dir: plan.run_dir.clone(),
                final_png,
                steps: done(&generator, &anim) - first_step,
                step: state.meta.step,
                elapsed: started.elapsed(),
                device,
                precisions: generator.precisions(),
                profile: generator.profile_table(),
            };
            page.write(&done.status(), observer);
            Ok(done)
        }
        Ok(false) => {
            let (step, total) = (done(&generator, &anim), total * frames);
            page.write(&Status::Stopped { step, total }, observer);
            let at = match generator.frame() {
                Some(f) => format!(
                    "interrupted at step {step}/{total} (frame {} of {frames} at step {})",
                    f + 1,
                    generator.step
                ),
                None => format!("interrupted at step {step}/{total}"),
            };
            Err(anyhow::Error::new(Interrupted(format!(
                "{at}; state saved. Resume with: vqclip generate --resume {}",
                plan.run_dir.display()
            ))))
        }
        Err(e) if e.downcast_ref::<Abandoned>().is_some() => Err(e),
        Err(e) => {
            page.write(
                &Status::Failed {
                    step: generator.step,
                    message: format!("{e:#}"),
                },
                observer,
            );
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

/// Puts the generator where the checkpoint left it, under the lock (with the animation's frames
/// in animation mode).
fn resume(plan: &Plan, run: &RunDir, generator: &mut Generator) -> Result<Option<Animation>> {
    let ckpt = run.checkpoint().context("checkpoint vanished")?;
    let mut state = checkpoint::load(&ckpt)?;
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
    if generator.settings.animation_dir.is_none() {
        run.trim_log(state.meta.step)?;
        generator.restore(state)?;
        return Ok(None);
    }
    let frames = std::mem::take(&mut state.frames);
    if frames.is_empty() {
        bail!(
            "the checkpoint in {} holds no animation frames",
            plan.run_dir.display()
        );
    }
    // The log holds the frames' steps in the order they ran: as many as they have done.
    run.trim_log_records(frames.iter().map(|f| f.step).sum::<i64>() as usize)?;
    let planned = state.meta.settings.steps;
    generator.restore(state)?;
    Animation::resume(generator, &plan.run_dir, frames, planned).map(Some)
}

/// The animation loop: frames take turns of `--save-every` steps; after each turn the frame's
/// file is written, the blend follows a finished round, and a checkpoint holds every frame.
/// Ok(true) when every frame is done, Ok(false) after Ctrl-C (state saved).
fn animate(
    generator: &mut Generator,
    anim: &mut Animation,
    run: &RunDir,
    page: &mut Page,
    observer: &mut dyn Observer,
    started: Instant,
    first_step: i64,
) -> Result<bool> {
    let total = generator.settings.steps;
    let work = total * anim.outputs.len() as i64;
    let mut log = run.open_log()?;
    let running = |anim: &Animation, generator: &Generator| {
        let done = anim.done(generator);
        let secs = started.elapsed().as_secs_f64();
        Status::Running {
            step: done,
            total: work,
            rate: (secs > 0.0).then(|| (done - first_step) as f64 / secs),
        }
    };
    while let Some((frame, end)) = anim.next(generator) {
        anim.load(generator, frame)?;
        while generator.step < end {
            let step = step_once(generator, &*observer)?;
            if generator.settings.overlay_due(step) && step < total {
                generator.overlay()?;
            }
            let stop = crate::interrupt::requested();
            if stop || step % FLUSH_EVERY == 0 || step == end {
                let records = generator.flush()?;
                log.append(&records)?;
                observer.logged(&records);
            }
            observer.stepped(anim.done(generator));
            if stop {
                checkpoint::save(run.path(), &anim.checkpoint_state(generator))?;
                page.write(&running(anim, generator), observer);
                return Ok(false);
            }
        }
        let out = anim.outputs[frame].clone();
        animation::save_frame(generator, &out)?;
        anim.blend_if_due(generator, end)?;
        checkpoint::save(run.path(), &anim.checkpoint_state(generator))?;
        observer.saved(&out);
        page.write(&running(anim, generator), observer);
    }
    Ok(true)
}

/// The end of an animation: frame 0 is the run's final image, and the frames make `anim.gif`
/// (and `anim.mp4` when ffmpeg is there; without it, or if it fails, a warning).
fn finish_animation(
    generator: &mut Generator,
    anim: &mut Animation,
    observer: &mut dyn Observer,
) -> Result<()> {
    use crate::video::{Format, ffmpeg_available, write_video};
    anim.load(generator, 0)?;
    write_video(
        &anim.outputs,
        &anim.dir.join(animation::GIF),
        animation::FPS,
        Format::Gif,
    )?;
    if ffmpeg_available() {
        let mp4 = anim.dir.join(animation::MP4);
        if let Err(e) = write_video(&anim.outputs, &mp4, animation::FPS, Format::Ffmpeg) {
            observer.warning(&format!("cannot write {}: {e:#}", mp4.display()));
        }
    }
    Ok(())
}

/// The loop: Ok(true) at the last step, Ok(false) after Ctrl-C (state saved).
fn steps(
    generator: &mut Generator,
    run: &RunDir,
    page: &mut Page,
    observer: &mut dyn Observer,
    started: Instant,
    first_step: i64,
) -> Result<bool> {
    let total = generator.settings.steps;
    let save_every = generator.settings.save_every;
    let mut log = run.open_log()?;
    while generator.step < total && !generator.stopped() {
        let step = step_once(generator, &*observer)?;
        // The last step: the planned one, or the one --auto-stop ended the run at.
        let last = step == total || generator.stopped();
        let zoom_now = generator.settings.zoom_due(step) && !last;
        let save_now = (save_every > 0 && step % save_every == 0 || zoom_now) && !last;
        // The overlay is pasted after the step, so the frame of an overlay step shows it (as
        // pixray's frame of that iteration does).
        if generator.settings.overlay_due(step) && !last {
            generator.overlay()?;
        }
        let stop = crate::interrupt::requested();
        if save_now || stop || step % FLUSH_EVERY == 0 || last {
            let records = generator.flush()?;
            log.append(&records)?;
            observer.logged(&records);
        }
        observer.stepped(step);
        if save_now || stop {
            let frame = run.frame(step);
            let keep_frame = generator.settings.save_intermediates;
            if keep_frame {
                save_image(generator, &frame)?;
            }
            // The frame shows the image before the move; the checkpoint holds the state after it.
            if zoom_now {
                generator.zoom()?;
            }
            checkpoint::save(run.path(), &generator.state())?;
            if keep_frame {
                observer.saved(&frame);
            }
            let secs = started.elapsed().as_secs_f64();
            page.write(
                &Status::Running {
                    step,
                    total,
                    rate: (secs > 0.0).then(|| (step - first_step) as f64 / secs),
                },
                observer,
            );
        }
        if stop {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One step, unless the observer abandons the run first; a panic or out-of-memory in the step is an
/// error with advice. Returns the step count after it.
fn step_once(generator: &mut Generator, observer: &dyn Observer) -> Result<i64> {
    if let Some(why) = observer.abandon() {
        let frame = generator
            .frame()
            .map(|f| format!(" of frame {}", f + 1))
            .unwrap_or_default();
        return Err(anyhow::Error::new(Abandoned(format!(
            "abandoned at step {}{frame}: {why}",
            generator.step
        ))));
    }
    crate::panics::catch(|| generator.step())
        .map_err(|e| explain_step_error(e, &generator.settings))?;
    Ok(generator.step)
}

/// The run's `index.html`: written at the start, at every save and at the end. A page that cannot
/// be written costs a warning (once), never the run.
struct Page<'a> {
    dir: &'a Path,
    warned: bool,
}

impl Page<'_> {
    fn write(&mut self, status: &Status, observer: &mut dyn Observer) {
        if let Err(e) = crate::report::run_page::write(self.dir, status)
            && !std::mem::replace(&mut self.warned, true)
        {
            observer.warning(&format!("cannot write the run page: {e:#}"));
        }
    }
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
