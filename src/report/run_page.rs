//! `RUN_DIR/index.html`: the latest image large, the saved frames as a strip with a slider, the
//! loss plot, the status, the settings and the command that repeats the run, and the video when
//! there is one. Rewritten atomically at every save; while the run goes on it reloads itself.
use super::html::{esc, href, page, write_atomic};
use super::plot::{self, Series};
use crate::rundir::{RUN_TOML, RunDir, StepRecord, VIDEO_GIF, VIDEO_MP4};
use crate::settings::Settings;
use anyhow::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Seconds between reloads while a run is going.
pub const REFRESH_SECONDS: u32 = 4;

/// Where a run stands when its page is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running {
        step: i64,
        total: i64,
        /// Steps per second since this process started (None before the first step).
        rate: Option<f64>,
    },
    Finished {
        steps: i64,
        seconds: f64,
    },
    Stopped {
        step: i64,
        total: i64,
    },
    Failed {
        step: i64,
        message: String,
    },
}

/// The run's settings from its run.toml (None when missing or unreadable).
pub fn settings(run_dir: &Path) -> Option<Settings> {
    let path = RunDir::new(run_dir).run_toml();
    let p = crate::runplan::read_config(&path).ok()?;
    let mut s = p.resolve().ok()?;
    // read_config drops the presets record (a --config must not apply them again); show it here.
    if let Ok(table) = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .parse::<toml::Table>()
        && let Some(toml::Value::Array(a)) = table.get("presets")
    {
        s.presets = a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    Some(s)
}

/// The image that best shows the run now: final.png, else the newest frame.
pub fn latest_image(run_dir: &Path) -> Option<PathBuf> {
    let run = RunDir::new(run_dir);
    let f = run.final_png();
    if f.is_file() {
        return Some(f);
    }
    run.frames().pop()
}

fn series(log: &[StepRecord], s: Option<&Settings>) -> Vec<Series> {
    let col = |f: &dyn Fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        log.iter()
            .filter_map(|l| f(l).map(|v| (l.step as f64, v)))
            .collect()
    };
    let mut out = vec![Series {
        label: "total".into(),
        points: col(&|l| Some(l.loss)),
    }];
    // One series per term of a section: named by its setting when the run's settings are known
    // (`prefix` + the setting as written), else "kind N".
    let mut section = |kind: &str, of: fn(&StepRecord) -> &[f64], names: Vec<String>| {
        let width = log.iter().map(|l| of(l).len()).max().unwrap_or(0);
        for i in 0..width {
            out.push(Series {
                label: names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("{kind} {}", i + 1)),
                points: col(&|l| of(l).get(i).copied()),
            });
        }
    };
    fn each<T: ToString>(v: &[T]) -> Vec<String> {
        v.iter().map(T::to_string).collect()
    }
    let named = |prefix: &str, f: &dyn Fn(&Settings) -> Vec<String>| -> Vec<String> {
        s.map(f)
            .unwrap_or_default()
            .into_iter()
            .map(|x| format!("{prefix}{x}"))
            .collect()
    };
    section("prompt", |l| &l.prompts, named("", &|s| each(&s.prompts)));
    section(
        "image prompt",
        |l| &l.image_prompts,
        named("image ", &|s| each(&s.image_prompts)),
    );
    section(
        "target image",
        |l| &l.target_images,
        named("target ", &|s| each(&s.target_images)),
    );
    section(
        "noise prompt",
        |l| &l.noise_prompts,
        named("noise ", &|s| each(&s.noise_prompts)),
    );
    section(
        "vector prompt",
        |l| &l.vector_prompts,
        named("vector ", &|s| {
            s.vector_prompts.iter().map(|v| v.path.clone()).collect()
        }),
    );
    section(
        "label",
        |l| &l.labels,
        named("label ", &|s| each(&s.labels)),
    );
    section("spot", |l| &l.spot, named("spot ", &|s| each(&s.spot)));
    section(
        "spot-off",
        |l| &l.spot_off,
        named("spot-off ", &|s| each(&s.spot_off)),
    );
    let losses = named("", &|s| s.loss.iter().map(|t| t.to_string()).collect());
    section("loss", |l| &l.extra, losses);
    if s.is_some_and(|s| s.palette.is_some()) || log.iter().any(|l| l.palette != 0.0) {
        out.push(Series {
            label: "palette pull".into(),
            points: col(&|l| Some(l.palette)),
        });
    }
    if log.iter().any(|l| l.transparent != 0.0) {
        out.push(Series {
            label: "alpha (--transparent-weight)".into(),
            points: col(&|l| Some(l.transparent)),
        });
    }
    out
}

fn status_html(status: &Status, run_dir: &Path) -> String {
    match status {
        Status::Running { step, total, rate } => {
            let mut s = format!("running: step {step} of {total}");
            if let Some(r) = rate.filter(|r| *r > 0.0) {
                let eta = (*total - *step).max(0) as f64 / r;
                let _ = write!(s, " ({r:.2} it/s, about {} left)", duration(eta));
            }
            format!("<p id=\"status\" class=\"ok\">{}</p>", esc(&s))
        }
        Status::Finished { steps, seconds } => format!(
            "<p id=\"status\" class=\"ok\">finished: {steps} steps in {}</p>",
            esc(&duration(*seconds))
        ),
        Status::Stopped { step, total } => format!(
            "<p id=\"status\" class=\"bad\">stopped at step {step} of {total}; resume with \
             <code>vqclip generate --resume {}</code></p>",
            esc(&run_dir.display().to_string())
        ),
        Status::Failed { step, message } => format!(
            "<p id=\"status\" class=\"bad\">failed at step {step}: {}</p>",
            esc(message)
        ),
    }
}

/// `1 h 02 min`, `3 min 05 s`, `12.3 s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// The settings of run.toml as a table (the `[run]` provenance included, as TOML).
fn settings_table(run_dir: &Path) -> String {
    let text = match std::fs::read_to_string(RunDir::new(run_dir).run_toml()) {
        Ok(t) => t,
        Err(_) => return format!("<p class=\"muted\">{RUN_TOML} not written yet.</p>"),
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return format!("<p class=\"bad\">{RUN_TOML}: {}</p>", esc(&e.to_string())),
    };
    let mut out = String::from("<table id=\"settings\">");
    for (k, v) in &table {
        let value = match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(k),
            esc(&value)
        );
    }
    out.push_str("</table>");
    out
}

/// The page of `run_dir` for `status`.
pub fn render(run_dir: &Path, status: &Status) -> String {
    let settings = settings(run_dir);
    let title = settings
        .as_ref()
        .map(|s| s.prompt_line())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "vqclip run".into());
    let run = RunDir::new(run_dir);
    // An animation's frames log the same steps in turn: the curves follow its first frame.
    let log: Vec<_> = run
        .read_log()
        .into_iter()
        .filter(|r| r.frame.is_none_or(|f| f == 0))
        .collect();
    let frames = run.frames();
    let rel = |p: &Path| href(p.strip_prefix(run_dir).unwrap_or(p));
    let mut body = status_html(status, run_dir);
    if let Some(s) = &settings {
        let _ = write!(
            body,
            "<p class=\"muted\">seed {} &middot; drawer {} &middot; {} &middot; {} steps{}</p>",
            s.seed,
            esc(s.drawer.as_str()),
            esc(&s.size.to_string()),
            s.steps,
            if s.presets.is_empty() {
                String::new()
            } else {
                format!(" &middot; presets {}", esc(&s.presets.join(", ")))
            }
        );
    }
    // the latest image, large, and the frames with a slider
    body.push_str("<section><h2>Image</h2>");
    match latest_image(run_dir) {
        Some(img) => {
            let _ = write!(
                body,
                "<img id=\"big\" class=\"px\" src=\"{}\" alt=\"latest image\" style=\"width:512px;max-width:100%\">\
                 <p id=\"caption\" class=\"muted\">{}</p>",
                rel(&img),
                esc(&img
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default())
            );
        }
        None => body.push_str("<p class=\"muted\">No image saved yet.</p>"),
    }
    let gif = settings
        .as_ref()
        .and_then(|s| s.animation_dir.as_ref())
        .map(|d| run_dir.join(d).join(crate::generate::animation::GIF))
        .filter(|g| g.is_file());
    if let Some(gif) = gif {
        let _ = write!(
            body,
            "<p>Animation (the curves below follow its first frame):</p>\
             <img class=\"px\" src=\"{}\" alt=\"animation\" style=\"width:512px;max-width:100%\">",
            rel(&gif)
        );
    }
    if !frames.is_empty() {
        let last = frames.len() - 1;
        let _ = write!(
            body,
            "<p><input type=\"range\" id=\"scrub\" min=\"0\" max=\"{last}\" value=\"{last}\" style=\"width:512px;max-width:100%\"> \
             <span id=\"frameno\">{n} frames</span></p><div class=\"strip\" id=\"strip\">",
            n = frames.len()
        );
        for (i, f) in frames.iter().enumerate() {
            let step = f
                .file_stem()
                .map(|s| s.to_string_lossy().trim_start_matches('0').to_string())
                .unwrap_or_default();
            let _ = write!(
                body,
                "<img class=\"px\" loading=\"lazy\" src=\"{}\" data-i=\"{i}\" title=\"step {}\" alt=\"step {}\">",
                rel(f),
                esc(&step),
                esc(&step)
            );
        }
        body.push_str("</div>");
    }
    body.push_str("</section>");
    for v in [VIDEO_MP4, VIDEO_GIF] {
        let p = run_dir.join(v);
        if p.is_file() {
            let tag = if v == VIDEO_MP4 {
                format!(
                    "<video controls src=\"{}\" style=\"max-width:512px\"></video>",
                    href(Path::new(v))
                )
            } else {
                format!(
                    "<img src=\"{}\" alt=\"video\" style=\"max-width:512px\">",
                    href(Path::new(v))
                )
            };
            let _ = write!(body, "<section><h2>Video</h2>{tag}</section>");
        }
    }
    let _ = write!(
        body,
        "<section><h2>Loss</h2>{}</section>",
        plot::svg(&series(&log, settings.as_ref()))
    );
    let _ = write!(
        body,
        "<section><h2>Repeat this run</h2><pre>vqclip generate --config {} --out NEW_DIR</pre></section>",
        esc(&run.run_toml().display().to_string())
    );
    let _ = write!(
        body,
        "<section><h2>Settings</h2>{}</section>",
        settings_table(run_dir)
    );
    // frame scrubbing: the slider and the strip set the big image
    body.push_str(
        "<script>(function(){var big=document.getElementById('big'),cap=document.getElementById('caption'),\
         sl=document.getElementById('scrub'),lab=document.getElementById('frameno'),\
         th=document.querySelectorAll('#strip img');function show(i){if(!big||!th[i])return;big.src=th[i].src;\
         if(cap)cap.textContent=th[i].title;if(lab)lab.textContent=th[i].title+' ('+(i+1)+' of '+th.length+')';\
         th.forEach(function(t){t.classList.remove('sel')});th[i].classList.add('sel');if(sl)sl.value=i;}\
         if(sl)sl.oninput=function(){show(+sl.value)};th.forEach(function(t){t.onclick=function(){show(+t.dataset.i)}});})();",
    );
    body.push_str(plot::SCRIPT);
    body.push_str("</script>");
    let refresh = matches!(status, Status::Running { .. }).then_some(REFRESH_SECONDS);
    page(&title, refresh, &body)
}

/// Writes `run_dir/index.html`.
pub fn write(run_dir: &Path, status: &Status) -> Result<()> {
    write_atomic(&RunDir::new(run_dir).page(), &render(run_dir, status))
}
