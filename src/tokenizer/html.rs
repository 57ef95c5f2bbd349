//! HTML character references: Python's `html.unescape` and ftfy's stricter `unescape_html`.
//! Upstream: https://github.com/python/cpython/blob/3.11/Lib/html/__init__.py,
//! https://github.com/rspeer/python-ftfy/blob/v6.3.1/ftfy/fixes.py (`unescape_html`).
use super::ftfy_data::{CHARMAP_ENCODINGS, HTML5_ENTITIES};
use regex::{Captures, Regex};
use std::collections::HashMap;
use std::sync::OnceLock;

/// `html.entities.html5`: name (with its `;` where required) -> replacement text.
fn entities() -> &'static HashMap<&'static str, String> {
    static MAP: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        HTML5_ENTITIES
            .split_whitespace()
            .filter_map(|item| {
                let (name, hex) = item.split_once('=')?;
                let value = hex
                    .split(',')
                    .map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                    .collect::<Option<String>>()?;
                Some((name, value))
            })
            .collect()
    })
}

/// ftfy's additions (`chardata._build_html_entities`): `&EACUTE;` -> "É" for every lower-case
/// name whose upper-case spelling `html.unescape` leaves alone.
fn upper_entities() -> &'static HashMap<String, String> {
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        entities()
            .iter()
            .filter(|(name, _)| name.ends_with(';') && name.to_lowercase() == **name)
            .filter_map(|(name, value)| {
                let upper = name.to_uppercase();
                let entity = format!("&{upper}");
                (unescape(&entity) == entity).then(|| (upper, value.to_uppercase()))
            })
            .collect()
    })
}

#[allow(clippy::unwrap_used)] // constant patterns, covered by tests
fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap())
}

/// `html.unescape(s)`.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    static CHARREF: OnceLock<Regex> = OnceLock::new();
    let re = regex(
        &CHARREF,
        r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0C <&#;]{1,32};?)",
    );
    re.replace_all(s, |c: &Captures| replace_charref(&c[1]))
        .into_owned()
}

fn replace_charref(s: &str) -> String {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (num, 10),
        };
        let digits = digits.trim_end_matches(';');
        // Python ints do not overflow: anything this large is past U+10FFFF anyway
        let code = u32::from_str_radix(digits, radix).unwrap_or(u32::MAX);
        return numeric_charref(code);
    }
    let table = entities();
    if let Some(v) = table.get(s) {
        return v.clone();
    }
    // the longest prefix that is a name allowed without ';'
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    for &x in bounds.iter().skip(2).rev() {
        if let Some(v) = table.get(&s[..x]) {
            return format!("{v}{}", &s[x..]);
        }
    }
    format!("&{s}")
}

fn numeric_charref(code: u32) -> String {
    match code {
        0x00 => "\u{FFFD}".to_string(),
        0x0D => "\r".to_string(),
        // Windows-1252 for the C1 range (undefined bytes stay as their C1 control)
        0x80..=0x9F => CHARMAP_ENCODINGS[1]
            .1
            .chars()
            .nth((code - 0x80) as usize)
            .map(String::from)
            .unwrap_or_default(),
        0xD800..=0xDFFF => "\u{FFFD}".to_string(),
        c if c > 0x10FFFF => "\u{FFFD}".to_string(),
        0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF => String::new(),
        c if c & 0xFFFE == 0xFFFE => String::new(),
        c => char::from_u32(c).map(String::from).unwrap_or_default(),
    }
}

/// ftfy's `unescape_html`: only complete references `&name;`/`&#N;`, plus ftfy's upper-case names.
pub fn ftfy_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    static ENTITY: OnceLock<Regex> = OnceLock::new();
    let re = regex(&ENTITY, r"&#?[0-9A-Za-z]{1,24};");
    re.replace_all(s, |c: &Captures| {
        let text = &c[0];
        let name = &text[1..];
        if !name.starts_with('#') {
            if let Some(v) = entities().get(name).or_else(|| upper_entities().get(name)) {
                return v.clone();
            }
            return text.to_string();
        }
        let unescaped = unescape(text);
        if unescaped.contains(';') {
            text.to_string()
        } else {
            unescaped
        }
    })
    .into_owned()
}
