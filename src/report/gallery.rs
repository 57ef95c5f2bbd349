//! `vqclip gallery [DIR]`: `DIR/index.html` with one card per run (image, prompt, seed, drawer and
//! presets, status, steps, final loss, time), newest first, a filter on the prompt text, and each
//! card linking to the run's own page. `--count` runs (`seed-<n>/`) and `--style-frames` runs
//! (`runs/`) show as groups. A directory that is not a readable run is listed as such.
use super::html::{esc, href, page, write_atomic};
use super::run_page;
use crate::rundir::RunDir;
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One card.
#[derive(Debug)]
pub struct Card {
    pub dir: PathBuf,
    pub prompt: String,
    pub detail: String,
    pub status: String,
    pub image: Option<PathBuf>,
    pub time: Option<SystemTime>,
    /// Runs inside a group (count or style-frames), as (label, run dir).
    pub members: Vec<(String, PathBuf)>,
    pub problem: Option<String>,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn is_run(dir: &Path) -> bool {
    let run = RunDir::new(dir);
    [run.run_toml(), run.log(), run.final_png()]
        .iter()
        .any(|f| f.is_file())
        || run.checkpoint().is_some()
}

/// What the files of a run directory say about it.
pub fn run_card(dir: &Path) -> Card {
    let run = RunDir::new(dir);
    let log = run.read_log();
    let settings = run_page::settings(dir);
    let ckpt = run
        .checkpoint()
        .and_then(|c| crate::generate::checkpoint::read_meta(&c).ok());
    let steps_done = ckpt
        .as_ref()
        .map(|m| m.step)
        .or_else(|| log.last().map(|l| l.step))
        .unwrap_or(0);
    let total = settings.as_ref().map(|s| s.steps);
    let finished = run.final_png().is_file() && total.is_none_or(|t| steps_done >= t);
    let recent = modified(&run.log())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e.as_secs() < 30);
    let status = if finished {
        format!("finished, {steps_done} steps")
    } else if recent {
        format!("running, step {steps_done} of {}", total.unwrap_or(0))
    } else {
        format!("stopped at step {steps_done} of {}", total.unwrap_or(0))
    };
    let mut detail = String::new();
    let mut problem = None;
    match &settings {
        Some(s) => {
            let _ = write!(detail, "seed {} · {} · {}", s.seed, s.drawer, s.size);
            if !s.presets.is_empty() {
                let _ = write!(detail, " · {}", s.presets.join(", "));
            }
        }
        None => problem = Some(format!("{} missing or unreadable", crate::rundir::RUN_TOML)),
    }
    if let Some(l) = log.last() {
        let _ = write!(detail, " · loss {:.4}", l.loss);
    }
    Card {
        dir: dir.to_path_buf(),
        prompt: settings
            .as_ref()
            .map(|s| s.prompt_line())
            .unwrap_or_default(),
        detail,
        status,
        image: run_page::latest_image(dir),
        time: modified(&run.log()).or_else(|| modified(dir)),
        members: Vec::new(),
        problem,
    }
}

/// A group: the folder's member runs, the first member's card as its face.
fn group_card(dir: &Path, members: Vec<PathBuf>, kind: &str) -> Card {
    let mut card = run_card(&members[0]);
    card.dir = dir.to_path_buf();
    card.status = format!("{kind}: {} runs", members.len());
    card.problem = None;
    if kind == "style frames" {
        // the restyled sequence's last frame is the face
        card.image = RunDir::new(dir).frames().pop().or(card.image);
    }
    card.time = members
        .iter()
        .filter_map(|m| modified(&RunDir::new(m).log()))
        .max()
        .or(card.time);
    card.members = members
        .into_iter()
        .map(|m| {
            let label = m
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (label, m)
        })
        .collect();
    card
}

/// The cards of `root`'s subdirectories, newest first.
pub fn cards(root: &Path) -> Vec<Card> {
    let mut out = Vec::new();
    for dir in crate::rundir::subdirs(root) {
        let group = RunDir::new(&dir);
        let seeds: Vec<PathBuf> = group
            .seed_members()
            .into_iter()
            .map(|r| r.path().to_path_buf())
            .filter(|d| is_run(d))
            .collect();
        let styled: Vec<PathBuf> = group
            .style_runs()
            .into_iter()
            .map(|r| r.path().to_path_buf())
            .filter(|d| is_run(d))
            .collect();
        if is_run(&dir) {
            out.push(run_card(&dir));
        } else if !seeds.is_empty() {
            out.push(group_card(&dir, seeds, "count"));
        } else if !styled.is_empty() {
            out.push(group_card(&dir, styled, "style frames"));
        } else if group.frames_dir().is_dir() || dir.join(crate::rundir::CHECKPOINT_TMP).is_dir() {
            let mut c = run_card(&dir);
            c.problem = Some(format!(
                "partial run directory (no {}, log or checkpoint)",
                crate::rundir::RUN_TOML
            ));
            out.push(c);
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.time));
    out
}

fn ago(t: Option<SystemTime>) -> String {
    let Some(e) = t.and_then(|t| t.elapsed().ok()) else {
        return String::new();
    };
    let s = e.as_secs();
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

pub fn render(root: &Path) -> String {
    let cards = cards(root);
    let rel = |p: &Path| href(p.strip_prefix(root).unwrap_or(p));
    let mut body = format!(
        "<p><input id=\"filter\" type=\"search\" placeholder=\"filter by prompt\" style=\"width:320px\"> \
         <span class=\"muted\" id=\"shown\">{} runs</span></p><div class=\"cards\">",
        cards.len()
    );
    for c in &cards {
        let link = if c.members.is_empty() {
            rel(&RunDir::new(&c.dir).page())
        } else {
            rel(&RunDir::new(&c.members[0].1).page())
        };
        let _ = write!(
            body,
            "<div class=\"card\" data-prompt=\"{}\"><a href=\"{link}\">",
            esc(&c.prompt.to_lowercase())
        );
        match &c.image {
            Some(img) => {
                let _ = write!(
                    body,
                    "<img class=\"px\" loading=\"lazy\" src=\"{}\" alt=\"\">",
                    rel(img)
                );
            }
            None => body.push_str("<p class=\"muted\">no image yet</p>"),
        }
        let _ = write!(
            body,
            "</a><p class=\"prompt\"><b>{}</b></p><p class=\"muted\">{}</p><p>{} <span class=\"muted\">{}</span></p>",
            esc(if c.prompt.is_empty() {
                "(no prompt)"
            } else {
                &c.prompt
            }),
            esc(&c.detail),
            esc(&c.status),
            esc(&ago(c.time))
        );
        if let Some(p) = &c.problem {
            let _ = write!(body, "<p class=\"bad\">{}</p>", esc(p));
        }
        if !c.members.is_empty() {
            body.push_str("<p>");
            for (label, m) in &c.members {
                let _ = write!(
                    body,
                    "<a href=\"{}\">{}</a> ",
                    rel(&RunDir::new(m).page()),
                    esc(label)
                );
            }
            body.push_str("</p>");
        }
        let _ = write!(
            body,
            "<p class=\"muted\"><code>{}</code></p></div>",
            esc(&rel(&c.dir))
        );
    }
    body.push_str(
        "</div><script>(function(){var f=document.getElementById('filter'),n=document.getElementById('shown'),\
         cs=document.querySelectorAll('.card');f.oninput=function(){var q=f.value.toLowerCase(),k=0;\
         cs.forEach(function(c){var on=c.dataset.prompt.indexOf(q)>=0;c.style.display=on?'':'none';if(on)k++;});\
         n.textContent=k+' of '+cs.length+' runs';};})();</script>",
    );
    page(&format!("vqclip gallery: {}", root.display()), None, &body)
}

/// Writes `root/index.html` (a run's own page stays as it is) and returns its path.
pub fn write(root: &Path) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(crate::error::usage(format!(
            "{}: not a directory (give the folder that holds your runs, e.g. outputs)",
            root.display()
        )));
    }
    // The gallery's page has the run page's name, so a folder of runs opens the same way.
    let out = root.join(crate::rundir::PAGE);
    write_atomic(&out, &render(root)).context("cannot write the gallery")?;
    Ok(out)
}
