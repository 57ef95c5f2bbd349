//! `vqclip classify`: zero-shot probabilities of labels for each image (see
//! [`crate::clip_tasks`]). A table per image, best first, or with `--json` one object per image in
//! the order given: `{"path", "probs": {label: p, ...} (best first), "top"}`, or
//! `{"path", "error"}` for an image that could not be read. Unreadable images are reported as they
//! come and make the exit status 1 at the end; the other images are still classified.
use crate::cli::ClassifyArgs;
use crate::clip_tasks::classify::{collect_labels, label_embeddings, probabilities, ranked};
use crate::clip_tasks::encode::encode_files;
use crate::clip_tasks::templates;
use crate::tokenizer::Tokenizer;
use crate::usage_bail;
use anyhow::{Context, Result};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::io::Write;

/// Images per CLIP batch.
const BATCH: usize = 32;

/// One image's result.
enum Outcome {
    /// (label, probability), best first, at most `--top`.
    Probs(Vec<(String, f32)>),
    Error(String),
}

struct Row {
    path: String,
    outcome: Outcome,
}

/// `probs` keeps best-first order in the JSON object.
struct OrderedProbs<'a>(&'a [(String, f32)]);

impl Serialize for OrderedProbs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (label, p) in self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.outcome {
            Outcome::Probs(probs) => {
                let mut st = s.serialize_struct("Row", 3)?;
                st.serialize_field("path", &self.path)?;
                st.serialize_field("probs", &OrderedProbs(probs))?;
                st.serialize_field("top", &probs.first().map(|(l, _)| l.as_str()))?;
                st.end()
            }
            Outcome::Error(e) => {
                let mut st = s.serialize_struct("Row", 2)?;
                st.serialize_field("path", &self.path)?;
                st.serialize_field("error", e)?;
                st.end()
            }
        }
    }
}

pub fn run(args: &ClassifyArgs) -> Result<()> {
    // Everything the user can get wrong is checked before the model loads.
    let file_text = match &args.labels_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --labels-file {}", p.display()))?,
        ),
        None => None,
    };
    if args.labels.is_none() && args.labels_file.is_none() {
        usage_bail!("classify: no labels; give --labels \"cat|dog|person\" or --labels-file FILE");
    }
    let labels = collect_labels(args.labels.as_deref(), file_text.as_deref());
    if labels.is_empty() {
        usage_bail!(
            "classify: the label list is empty (labels are separated by '|' or one per line)"
        );
    }
    let template_list = templates::resolve(&args.template, args.templates.as_deref())?;
    let top = match args.top {
        Some(0) => usage_bail!("--top must be at least 1, got 0"),
        Some(k) => k.min(labels.len()),
        None => labels.len(),
    };
    let (clip, _) = super::load_clip(&args.model)?;
    let tokenizer = Tokenizer::new()?;

    let label_emb = label_embeddings(&clip, &tokenizer, &labels, &template_list)?;
    for w in &label_emb.warnings {
        eprintln!("{w}");
    }
    let encoded = encode_files(&clip, &args.images, BATCH, &mut |_| {})?;
    let probs = probabilities(&encoded.embeds, &label_emb.embeds, clip.logit_scale());

    let mut rows: Vec<Row> = args
        .images
        .iter()
        .map(|p| Row {
            path: p.display().to_string(),
            outcome: Outcome::Error(String::new()),
        })
        .collect();
    for (row, &i) in encoded.ok.iter().enumerate() {
        let p = Vec::<f32>::try_from(probs.get(row as i64).contiguous())
            .context("reading the probabilities")?;
        let best = ranked(&p, top)
            .into_iter()
            .map(|(l, p)| (labels[l].clone(), p))
            .collect();
        rows[i].outcome = Outcome::Probs(best);
    }
    for (i, err) in &encoded.failed {
        eprintln!("vqclip: error: {err:#}");
        rows[*i].outcome = Outcome::Error(format!("{err:#}"));
    }

    let out = if args.json {
        let mut s = serde_json::to_string(&rows).context("serializing the results")?;
        s.push('\n');
        s
    } else {
        table(&rows)
    };
    write_stdout(&out)?;
    if let Some(html) = &args.html {
        let rows: Vec<crate::report::results::Classified> = rows
            .iter()
            .map(|r| {
                let outcome = match &r.outcome {
                    Outcome::Probs(p) => Ok(p.clone()),
                    Outcome::Error(e) => Err(e.clone()),
                };
                (r.path.clone(), outcome)
            })
            .collect();
        crate::report::results::write_classify(html, &rows)?;
    }
    if !encoded.failed.is_empty() {
        anyhow::bail!(
            "{} of {} images could not be read",
            encoded.failed.len(),
            args.images.len()
        );
    }
    Ok(())
}

/// Per readable image: its path, then `probability  label` lines, best first.
fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    for row in rows {
        let Outcome::Probs(probs) = &row.outcome else {
            continue;
        };
        if !s.is_empty() {
            s.push('\n');
        }
        s += &format!("{}\n", row.path);
        for (label, p) in probs {
            s += &format!("  {p:>7.4}  {label}\n");
        }
    }
    s
}

fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `vqclip classify ... | head` is fine
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
