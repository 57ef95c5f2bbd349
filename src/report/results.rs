//! Result pages: `classify --html FILE` (each image with its label bars) and `search --html FILE`
//! (the ranked grid with scores). Images are linked by paths relative to the page.
use super::html::{esc, href, page, write_atomic};
use anyhow::Result;
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

/// `to` as seen from the folder `from_dir` (both made absolute; `..` where needed).
pub fn relative(from_dir: &Path, to: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (from, to) = (abs(from_dir), abs(to));
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c.as_os_str());
    }
    out
}

fn page_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One classified image: its path and (label, probability) best first, or why it failed.
pub type Classified = (String, std::result::Result<Vec<(String, f32)>, String>);

pub fn write_classify(out: &Path, rows: &[Classified]) -> Result<()> {
    let dir = page_dir(out);
    let mut body = String::from("<div class=\"cards\">");
    for (path, outcome) in rows {
        let src = href(&relative(&dir, Path::new(path)));
        let _ = write!(
            body,
            "<div class=\"card result\"><img loading=\"lazy\" src=\"{src}\" alt=\"\"><p><code>{}</code></p>",
            esc(path)
        );
        match outcome {
            Ok(probs) => {
                body.push_str("<table class=\"labels\">");
                for (label, p) in probs {
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td><span class=\"bar\" style=\"width:{:.0}px\"></span> {:.1}%</td></tr>",
                        esc(label),
                        (p * 120.0).max(1.0),
                        p * 100.0
                    );
                }
                body.push_str("</table>");
            }
            Err(e) => {
                let _ = write!(body, "<p class=\"bad\">{}</p>", esc(e));
            }
        }
        body.push_str("</div>");
    }
    body.push_str("</div>");
    write_atomic(out, &page("vqclip classify", None, &body))
}

pub fn write_search(out: &Path, query: &str, hits: &[(String, f32)]) -> Result<()> {
    let dir = page_dir(out);
    let mut body = format!(
        "<p>{} results for <b id=\"query\">{}</b></p><div class=\"cards\">",
        hits.len(),
        esc(query)
    );
    for (rank, (path, score)) in hits.iter().enumerate() {
        let src = href(&relative(&dir, Path::new(path)));
        let _ = write!(
            body,
            "<div class=\"card result\"><a href=\"{src}\"><img loading=\"lazy\" src=\"{src}\" alt=\"\"></a>\
             <p>#{} &middot; score {score:.4}</p><p><code>{}</code></p></div>",
            rank + 1,
            esc(path)
        );
    }
    body.push_str("</div>");
    write_atomic(out, &page("vqclip search", None, &body))
}
