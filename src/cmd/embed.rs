//! `vqclip embed`: CLIP embeddings of texts and images (projected, before L2 normalization),
//! as a short table or, with `--json`, an array of `{kind, input, embedding}`.
//! Texts come first in the order given, then images in the order given.
use crate::cli::EmbedArgs;
use crate::models::clip::preprocess_image;
use crate::tokenizer::{Tokenizer, truncation_warning};
use crate::usage_bail;
use anyhow::{Context, Result};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Serialize)]
struct Embedding {
    kind: &'static str,
    input: String,
    embedding: Vec<f32>,
}

pub fn run(args: &EmbedArgs) -> Result<()> {
    if args.text.is_empty() && args.image.is_empty() {
        usage_bail!("embed: nothing to embed; give at least one --text TEXT or --image PATH");
    }
    let (clip, _) = super::load_clip(&args.model)?;

    let mut rows = Vec::with_capacity(args.text.len() + args.image.len());
    if !args.text.is_empty() {
        let tokenizer = Tokenizer::new()?;
        let (tokens, dropped) = tokenizer.tokenize_batch(&args.text)?;
        for (text, &n) in args.text.iter().zip(&dropped) {
            if let Some(warning) = truncation_warning(text, n) {
                eprintln!("{warning}");
            }
        }
        let embeds = tch::no_grad(|| clip.try_encode_text(&tokens))?;
        for (text, embedding) in args.text.iter().zip(to_rows(&embeds)?) {
            rows.push(Embedding {
                kind: "text",
                input: text.clone(),
                embedding,
            });
        }
    }
    if !args.image.is_empty() {
        let res = clip.input_resolution();
        let pixels = args
            .image
            .iter()
            .map(|p| crate::image_io::load_rgb(p).map(|img| preprocess_image(&img, res)))
            .collect::<Result<Vec<_>>>()?;
        let embeds = tch::no_grad(|| clip.try_encode_image(&Tensor::cat(&pixels, 0)))?;
        for (path, embedding) in args.image.iter().zip(to_rows(&embeds)?) {
            rows.push(Embedding {
                kind: "image",
                input: path.display().to_string(),
                embedding,
            });
        }
    }

    let out = if args.json {
        json(&rows)?
    } else {
        table(&rows)
    };
    super::print_stdout(&out)
}

/// `[n, d]` -> n vectors of f32 on the CPU.
fn to_rows(embeds: &Tensor) -> Result<Vec<Vec<f32>>> {
    let embeds = embeds
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let (n, _) = embeds.size2().context("embeddings must be [n, d]")?;
    (0..n)
        .map(|i| Vec::<f32>::try_from(embeds.get(i)).context("reading an embedding"))
        .collect()
}

fn json(rows: &[Embedding]) -> Result<String> {
    let mut s = serde_json::to_string(rows).context("serializing the embeddings")?;
    s.push('\n');
    Ok(s)
}

/// One line per input: kind, dimension, L2 norm, the first values, the input.
fn table(rows: &[Embedding]) -> String {
    const SHOWN: usize = 4;
    let mut s = format!(
        "{:<6} {:>5} {:>9}  {:<44} input\n",
        "kind", "dim", "norm", "first values"
    );
    for row in rows {
        let norm = row
            .embedding
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        let first: Vec<String> = row
            .embedding
            .iter()
            .take(SHOWN)
            .map(|x| format!("{x:+.4}"))
            .collect();
        let more = if row.embedding.len() > SHOWN {
            ", ..."
        } else {
            ""
        };
        let values = format!("[{}{more}]", first.join(", "));
        let input = shorten(&row.input, 60);
        s += &format!(
            "{:<6} {:>5} {:>9.4}  {:<44} {input}\n",
            row.kind,
            row.embedding.len(),
            norm,
            values
        );
    }
    s
}

/// `text` cut to `max` characters with "..." (the table is for a glance; `--json` has it all).
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}
