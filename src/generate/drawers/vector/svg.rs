//! Plain SVG of a vector drawing: one `<polygon>` (or `<path>`) per shape in painter's order, in
//! the image's size, colours as `#rrggbb` (the same 8-bit values as the PNG) with opacity where
//! not 1, and the run's settings in `<metadata>` under the PNG's text keys, so `vqclip info
//! final.svg` and `--config final.svg` read it as they read a PNG.
use anyhow::{Result, bail};
use std::fmt::Write;

/// An SVG document being written.
pub struct Svg {
    body: String,
    width: i64,
    height: i64,
}

pub fn hex(c: [f32; 3]) -> String {
    let b = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", b(c[0]), b(c[1]), b(c[2]))
}

fn num(v: f64) -> String {
    // 3 decimals: a thousandth of a pixel, and short files.
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

impl Svg {
    pub fn new(width: i64, height: i64) -> Svg {
        Svg {
            body: String::new(),
            width,
            height,
        }
    }

    pub fn background(&mut self, colour: [f32; 3]) {
        let _ = writeln!(
            self.body,
            r#"<rect width="{}" height="{}" fill="{}"/>"#,
            self.width,
            self.height,
            hex(colour)
        );
    }

    pub fn polygon(&mut self, pts: &[[f64; 2]], colour: [f32; 3], opacity: f32) {
        let points: Vec<String> = pts
            .iter()
            .map(|p| format!("{},{}", num(p[0]), num(p[1])))
            .collect();
        let _ = write!(
            self.body,
            r#"<polygon points="{}" fill="{}""#,
            points.join(" "),
            hex(colour)
        );
        if opacity < 1.0 {
            let _ = write!(self.body, r#" fill-opacity="{}""#, num(opacity as f64));
        }
        self.body.push_str("/>\n");
    }

    /// An open path of cubic segments (each `[p0, p1, p2, p3]`, consecutive), stroked with round
    /// caps and joins as the rasterizer draws it.
    pub fn stroke(&mut self, cubics: &[[[f64; 2]; 4]], width: f64, colour: [f32; 3], opacity: f32) {
        let Some(first) = cubics.first() else { return };
        let mut d = format!("M{},{}", num(first[0][0]), num(first[0][1]));
        for c in cubics {
            let _ = write!(
                d,
                " C{},{} {},{} {},{}",
                num(c[1][0]),
                num(c[1][1]),
                num(c[2][0]),
                num(c[2][1]),
                num(c[3][0]),
                num(c[3][1])
            );
        }
        let _ = write!(
            self.body,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{}" stroke-linecap="round" stroke-linejoin="round""#,
            hex(colour),
            num(width)
        );
        if opacity < 1.0 {
            let _ = write!(self.body, r#" stroke-opacity="{}""#, num(opacity as f64));
        }
        self.body.push_str("/>\n");
    }

    /// The document, with `meta` (key, text) pairs in its metadata.
    pub fn finish(&self, meta: &[(&str, &str)]) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n<metadata>\n",
            w = self.width,
            h = self.height
        );
        for (k, v) in meta {
            let _ = writeln!(
                out,
                "<vqclip-text key=\"{}\">{}</vqclip-text>",
                escape(k),
                escape(v)
            );
        }
        out.push_str("</metadata>\n");
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

/// Whether `bytes` look like an SVG document.
pub fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with("<?xml") && text.contains("<svg") || t.starts_with("<svg")
}

/// The (key, text) pairs of a vqclip SVG's metadata.
pub fn read_text(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        bail!("not a UTF-8 SVG");
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<vqclip-text key=\"") {
        rest = &rest[i + 18..];
        let Some(q) = rest.find("\">") else { break };
        let key = unescape(&rest[..q]);
        rest = &rest[q + 2..];
        let Some(end) = rest.find("</vqclip-text>") else {
            break;
        };
        out.push((key, unescape(&rest[..end])));
        rest = &rest[end..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_any_text() {
        let mut s = Svg::new(4, 3);
        s.background([0.0, 0.0, 0.0]);
        s.polygon(&[[0.0, 0.0], [1.5, 0.0], [1.0, 2.25]], [1.0, 0.5, 0.0], 0.5);
        let text = "prompts = [\"a <b> & \\\"c\\\" ]]> d\"]\n";
        let doc = s.finish(&[("vqclip:settings", text), ("vqclip:seed", "7")]);
        assert!(is_svg(doc.as_bytes()));
        assert!(
            doc.contains(
                r##"<polygon points="0,0 1.5,0 1,2.25" fill="#ff8000" fill-opacity="0.5"/>"##
            ),
            "{doc}"
        );
        let back = read_text(doc.as_bytes()).unwrap();
        assert_eq!(
            back,
            vec![
                ("vqclip:settings".to_string(), text.to_string()),
                ("vqclip:seed".to_string(), "7".to_string())
            ]
        );
    }
}
