//! `vqclip search DIR`: the images under DIR ranked by cosine similarity to a text
//! (`--query`) or an image (`--image-query`), best first; a table or, with `--json`,
//! `[{"path", "score"}, ...]`. The index in `DIR/.vqclip-index/` makes repeated searches encode
//! only new or changed images (see [`crate::clip_tasks`]). stderr gets a progress bar while
//! encoding, `indexed: N encoded, M reused, K unreadable`, and a warning naming unreadable files.
use crate::cli::SearchArgs;
use crate::clip_tasks::search::{
    UpdateOptions, encode_image_query, encode_text_query, rank, update_index,
};
use crate::usage_bail;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;

/// Unreadable files named one by one before "and N more".
const SHOWN_UNREADABLE: usize = 5;

#[derive(Debug, Serialize)]
struct Hit {
    path: String,
    score: f32,
}

pub fn run(args: &SearchArgs) -> Result<()> {
    match (&args.query, &args.image_query) {
        (None, None) => usage_bail!("search: give --query TEXT or --image-query PATH"),
        (Some(_), Some(_)) => {
            usage_bail!("search: give either --query or --image-query, not both")
        }
        (Some(q), None) if q.trim().is_empty() => usage_bail!("--query: the text is empty"),
        _ => {}
    }
    if args.top == 0 {
        usage_bail!("--top must be at least 1, got 0");
    }
    if args.batch == 0 {
        usage_bail!("--batch must be at least 1, got 0");
    }
    let (clip, weights) = super::load_clip(&args.model)?;

    // The query first: a bad --image-query fails before minutes of indexing.
    let query = match (&args.query, &args.image_query) {
        (Some(text), _) => {
            let (emb, warning) = encode_text_query(&clip, text)?;
            if let Some(w) = warning {
                eprintln!("{w}");
            }
            emb
        }
        (None, Some(path)) => encode_image_query(&clip, path)?,
        (None, None) => usage_bail!("search: give --query TEXT or --image-query PATH"),
    };

    let opts = UpdateOptions {
        batch: args.batch,
        reindex: args.reindex,
        weights,
    };
    let bar = progress_bar();
    let (indexed, report) = update_index(&clip, &args.dir, &opts, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();

    if let Some(why) = &report.rebuilt_because {
        eprintln!("vqclip: warning: rebuilding the index: {why}");
    }
    let s = &report.stats;
    eprintln!(
        "indexed: {} encoded, {} reused, {} unreadable",
        s.encoded, s.reused, s.unreadable
    );
    if !report.unreadable.is_empty() {
        let mut msg = format!(
            "vqclip: warning: skipped {} unreadable file(s):",
            report.unreadable.len()
        );
        for (path, why) in report.unreadable.iter().take(SHOWN_UNREADABLE) {
            let path = path.display().to_string();
            // image errors already name the file
            if why.contains(&path) {
                msg += &format!("\n  {why}");
            } else {
                msg += &format!("\n  {path}: {why}");
            }
        }
        if report.unreadable.len() > SHOWN_UNREADABLE {
            msg += &format!(
                "\n  and {} more",
                report.unreadable.len() - SHOWN_UNREADABLE
            );
        }
        eprintln!("{msg}");
    }
    if let Some(why) = &report.not_saved_because {
        eprintln!(
            "vqclip: warning: the index was not saved (the next search encodes again): {why}"
        );
    }
    if indexed.paths.is_empty() {
        eprintln!(
            "vqclip: warning: no readable images under {} ({})",
            args.dir.display(),
            crate::clip_tasks::scan::IMAGE_EXTENSIONS.join(", ")
        );
    }

    let hits: Vec<Hit> = rank(&indexed.embeds, &query, args.top)?
        .into_iter()
        .map(|(i, score)| Hit {
            path: indexed.paths[i].display().to_string(),
            score,
        })
        .collect();
    if let Some(html) = &args.html {
        let query = match (&args.query, &args.image_query) {
            (Some(q), _) => q.clone(),
            (None, Some(p)) => format!("image {}", p.display()),
            (None, None) => String::new(),
        };
        let rows: Vec<(String, f32)> = hits.iter().map(|h| (h.path.clone(), h.score)).collect();
        crate::report::results::write_search(html, &query, &rows)?;
    }
    let out = if args.json {
        let mut s = serde_json::to_string(&hits).context("serializing the results")?;
        s.push('\n');
        s
    } else {
        let mut s = format!("{:>7}  path\n", "score");
        for h in &hits {
            s += &format!("{:>7.4}  {}\n", h.score, h.path);
        }
        s
    };
    super::print_stdout(&out)
}

/// Images encoded so far, on stderr when it is a terminal.
fn progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) =
        ProgressStyle::with_template("encoding {bar:30} {pos}/{len} images  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}
