//! Escaping, the page frame and atomic writes shared by every page.
use anyhow::{Context, Result};
use std::path::Path;

/// Text for HTML content and attribute values: `& < > " '` escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL: each segment percent-encoded, `/` kept.
pub fn href(rel: &Path) -> String {
    rel.components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

const CSS: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}\
header{background:#20232a;color:#eee;padding:10px 18px}header h1{font-size:18px;margin:0;word-break:break-word}\
main{padding:14px 18px;max-width:1400px}section{margin:0 0 20px}h2{font-size:15px;margin:0 0 8px}\
.muted{color:#777}.bad{color:#b00020}.ok{color:#0a6b2b}code,pre{font:12px/1.4 ui-monospace,monospace}\
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;white-space:pre-wrap}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
img.px{image-rendering:pixelated}.strip{display:flex;gap:4px;overflow-x:auto;padding:4px 0}\
.strip img{width:72px;height:72px;object-fit:contain;border:2px solid transparent;cursor:pointer}\
.strip img.sel{border-color:#e0561b}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}\
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden}\
.card img{width:100%;aspect-ratio:1;object-fit:contain;background:#eee}.card p{margin:4px 0;word-break:break-word}\
.bar{background:#e0561b;height:10px;display:inline-block;vertical-align:middle}";

/// A whole page: `<head>` (title, inline CSS, an optional refresh), a header line and `body`.
pub fn page(title: &str, refresh_seconds: Option<u32>, body: &str) -> String {
    let refresh = refresh_seconds
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{t}</title><style>{CSS}</style></head>\n<body><header><h1>{t}</h1></header><main>\n{body}\n</main></body></html>\n",
        t = esc(title)
    )
}

/// Writes `text` to `path` through a temporary file and a rename, so a browser never reads half a page.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert(1)</script> \"q\" & 'a'"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &amp; &#39;a&#39;"
        );
        assert_eq!(
            href(Path::new("frames/000050 a#b.png")),
            "frames/000050%20a%23b.png"
        );
    }
}
