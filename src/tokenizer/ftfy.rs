//! A port of `ftfy.fix_text` (ftfy 6.3.1, default settings), which OpenAI's tokenizer applies first:
//! HTML entities (when the line has no `<`), mojibake repair (UTF-8 read as Latin-1, Windows-125x,
//! ISO-8859-2, MacRoman or CP437, whole-line or embedded), C1 controls, Latin ligatures, fullwidth
//! and halfwidth forms, curly quotes, line breaks, terminal escapes, control characters, then NFC;
//! repeated until nothing changes.
//! Upstream: https://github.com/rspeer/python-ftfy/blob/v6.3.1/ftfy/__init__.py (`fix_text`,
//! `fix_and_explain`, `_fix_encoding_one_step_and_explain`), `fixes.py`, `chardata.py`, `badness.py`.
//!
//! Not ported: `fix_surrogates` (Rust strings cannot hold surrogates) and `max_decode_length`
//! (lines over a million characters are fixed whole).
use super::ftfy_data::{
    BADNESS_RE, CHARMAP_ENCODINGS, UTF8_CONTINUATION_STRICT, UTF8_DETECTOR_RE, WIDTH_MAP,
};
use super::{html, nfc};
use regex::Regex;
use regex::bytes::Regex as BytesRegex;
use std::collections::HashMap;
use std::sync::OnceLock;

/// `ftfy.fix_text(text)`: fixes each line (up to and including its `\n`) separately.
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // "auto": entities are decoded until a line contains '<' (then never again, as in ftfy)
    let mut unescape = true;
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
    }
    out
}

/// ftfy loops until a pass changes nothing; the cap only guards against a port bug hanging on input.
const MAX_PASSES: usize = 64;

fn fix_segment(text: &str, unescape: bool) -> String {
    let mut text = text.to_string();
    for _ in 0..MAX_PASSES {
        let orig = text.clone();
        if unescape {
            text = html::ftfy_unescape(&text);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text);
        text = text.chars().map(ligature).collect::<Vec<_>>().concat();
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text.retain(|c| !is_control_char(c));
        text = nfc::nfc(&text);
        if text == orig {
            break;
        }
    }
    text
}

#[allow(clippy::unwrap_used)] // constant patterns, covered by tests
fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap())
}

#[allow(clippy::unwrap_used)] // constant patterns, covered by tests
fn bytes_regex(cell: &'static OnceLock<BytesRegex>, pattern: &str) -> &'static BytesRegex {
    cell.get_or_init(|| BytesRegex::new(pattern).unwrap())
}

/// `ftfy.badness.is_bad`: does the text contain a sequence typical of mojibake?
pub fn is_bad(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, BADNESS_RE).is_match(text)
}

/// One single-byte encoding: its decode table and the reverse.
struct Charmap {
    name: &'static str,
    decode: [char; 256],
    encode: HashMap<char, u8>,
}

fn charmaps() -> &'static [Charmap] {
    static MAPS: OnceLock<Vec<Charmap>> = OnceLock::new();
    MAPS.get_or_init(|| {
        CHARMAP_ENCODINGS
            .iter()
            .map(|&(name, high, sub)| {
                let mut decode = ['\0'; 256];
                for (b, slot) in decode.iter_mut().enumerate().take(0x80) {
                    *slot = char::from(b as u8);
                }
                decode[0x1A] = sub;
                for (i, c) in high.chars().enumerate().take(0x80) {
                    decode[0x80 + i] = c;
                }
                let encode = decode
                    .iter()
                    .enumerate()
                    .map(|(b, &c)| (c, b as u8))
                    .collect();
                Charmap {
                    name,
                    decode,
                    encode,
                }
            })
            .collect()
    })
}

impl Charmap {
    /// `chardata.possible_encoding` + `str.encode`: the bytes, if every character is encodable.
    fn encode(&self, text: &str) -> Option<Vec<u8>> {
        text.chars().map(|c| self.encode.get(&c).copied()).collect()
    }
}

/// `ftfy.fix_encoding`: repeat single mojibake-fixing steps until stable.
fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    for _ in 0..MAX_PASSES {
        let next = fix_encoding_one_step(&text);
        if next == text {
            break;
        }
        text = next;
    }
    text
}

fn fix_encoding_one_step(text: &str) -> String {
    if text.is_ascii() || !is_bad(text) {
        return text.to_string();
    }
    let mut possible = Vec::new();
    for map in charmaps() {
        let Some(mut bytes) = map.encode(text) else {
            continue;
        };
        possible.push(map.name);
        if map.name != "macroman" && altered_utf8_re().is_match(&bytes) {
            bytes = restore_byte_a0(&bytes);
        }
        if map.name.starts_with("sloppy") {
            bytes = lossy_utf8_re()
                .replace_all(&bytes, "\u{FFFD}".as_bytes())
                .into_owned();
        }
        let decoded = if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if let Some(fixed) = decoded {
            return fixed;
        }
    }
    if utf8_detector().is_match(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return fixed;
        }
    }
    if possible.contains(&"latin-1") {
        // Latin-1 but not Windows-1252 (ftfy compares with the strict codec's name, which is never
        // in its list): C1 controls meant as Windows-1252, unless one has no Windows-1252 meaning.
        let strict_1252 = text
            .chars()
            .all(|c| !matches!(c as u32, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D));
        if strict_1252 {
            let fixed = fix_c1_controls(text);
            if fixed != text {
                return fixed;
            }
        }
    }
    if text.chars().any(is_c1) {
        return fix_c1_controls(text);
    }
    text.to_string()
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// `fixes.fix_c1_controls`: C1 controls decoded as (sloppy) Windows-1252.
fn fix_c1_controls(text: &str) -> String {
    let cp1252 = &charmaps()[1].decode;
    text.chars()
        .map(|c| if is_c1(c) { cp1252[c as usize] } else { c })
        .collect()
}

fn altered_utf8_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    bytes_regex(
        &RE,
        r"(?-u)[\xc2\xc3\xc5\xce\xd0\xd9][ ]|[\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf]|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf][ ]|[\xf0][ ][\x80-\xbf][\x80-\xbf]|[\xf0][\x80-\xbf][ ][\x80-\xbf]|[\xf0][\x80-\xbf][\x80-\xbf][ ]",
    )
}

fn lossy_utf8_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    bytes_regex(
        &RE,
        r"(?-u)[\xc2-\xdf][\x1a]|[\xc2-\xc3][?]|\xed[\xa0-\xaf][\x1a?]\xed[\xb0-\xbf][\x1a?\x80-\xbf]|\xed[\xa0-\xaf][\x1a?\x80-\xbf]\xed[\xb0-\xbf][\x1a?]|[\xe0-\xef][\x1a?][\x1a\x80-\xbf]|[\xe0-\xef][\x1a\x80-\xbf][\x1a?]|[\xf0-\xf4][\x1a?][\x1a\x80-\xbf][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a?][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a\x80-\xbf][\x1a?]|\x1a",
    )
}

/// `fixes.restore_byte_a0`: spaces that were U+00A0 bytes inside UTF-8 sequences.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 "
    let mut fixed = Vec::with_capacity(bytes.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let rest = &bytes[i + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                .iter()
                .any(|p| rest.starts_with(p));
            if !excluded {
                fixed.extend_from_slice(b"\xc3\xa0 ");
                i += 2;
                continue;
            }
        }
        fixed.push(bytes[i]);
        i += 1;
    }
    altered_utf8_re()
        .replace_all(&fixed, |c: &regex::bytes::Captures| {
            c[0].iter()
                .map(|&b| if b == b' ' { 0xA0 } else { b })
                .collect::<Vec<u8>>()
        })
        .into_owned()
}

/// ftfy's `utf-8-variants` codec: UTF-8 plus CESU-8 surrogate pairs and Java's `C0 80` NUL.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut start = 0;
    let mut i = 0;
    let cont = |b: Option<&u8>, lo: u8, hi: u8| b.is_some_and(|&b| (lo..=hi).contains(&b));
    while i < bytes.len() {
        let b = &bytes[i..];
        let special = if b[0] == 0xC0 && b.get(1) == Some(&0x80) {
            Some(('\0', 2))
        } else if b.len() >= 6
            && b[0] == 0xED
            && cont(b.get(1), 0xA0, 0xAF)
            && cont(b.get(2), 0x80, 0xBF)
            && b[3] == 0xED
            && cont(b.get(4), 0xB0, 0xBF)
            && cont(b.get(5), 0x80, 0xBF)
        {
            let cp = ((b[1] as u32 & 0x0F) << 16)
                + ((b[2] as u32 & 0x3F) << 10)
                + ((b[4] as u32 & 0x0F) << 6)
                + (b[5] as u32 & 0x3F)
                + 0x10000;
            Some((char::from_u32(cp)?, 6))
        } else {
            None
        };
        match special {
            Some((c, n)) => {
                out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
                out.push(c);
                i += n;
                start = i;
            }
            None => i += 1,
        }
    }
    out.push_str(std::str::from_utf8(&bytes[start..]).ok()?);
    Some(out)
}

fn utf8_detector() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, UTF8_DETECTOR_RE)
}

fn utf8_detector_anchored() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    static PATTERN: OnceLock<String> = OnceLock::new();
    regex(
        &RE,
        PATTERN.get_or_init(|| format!("^(?:{UTF8_DETECTOR_RE})")),
    )
}

fn continuation_strict() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    static PATTERN: OnceLock<String> = OnceLock::new();
    regex(
        &RE,
        PATTERN.get_or_init(|| format!("^{UTF8_CONTINUATION_STRICT}$")),
    )
}

/// `fixes.decode_inconsistent_utf8`: fixes mojibake runs inside otherwise fine text.
/// The detector's lookbehind (`(?<! [continuation])`) is checked by hand, trying each start.
fn decode_inconsistent_utf8(text: &str) -> String {
    let total = text.chars().count();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut pos = 0;
    let mut prev: Option<char> = None;
    while pos < text.len() {
        let blocked =
            prev.is_some_and(|p| continuation_strict().is_match(p.encode_utf8(&mut [0; 4])));
        let found = if blocked {
            None
        } else {
            utf8_detector_anchored().find(&text[pos..])
        };
        match found {
            Some(m) if !m.is_empty() => {
                let sub = m.as_str();
                out.push_str(&text[copied..pos]);
                if sub.chars().count() < total && is_bad(sub) {
                    out.push_str(&fix_encoding(sub));
                } else {
                    out.push_str(sub);
                }
                pos += m.end();
                copied = pos;
                prev = sub.chars().last();
            }
            _ => {
                let Some(c) = text[pos..].chars().next() else {
                    break;
                };
                prev = Some(c);
                pos += c.len_utf8();
            }
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// `chardata.LIGATURES`.
fn ligature(c: char) -> String {
    let s = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return c.to_string(),
    };
    s.to_string()
}

fn fix_character_width(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match WIDTH_MAP.binary_search_by_key(&c, |&(k, _)| k) {
            Ok(i) => out.push_str(WIDTH_MAP[i].1),
            Err(_) => out.push(c),
        }
    }
    out
}

/// `fixes.uncurl_quotes`: U+02BC and U+2018..U+201B -> `'`; U+201C..U+201F -> `"`.
fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
            '\u{201c}'..='\u{201f}' => '"',
            c => c,
        })
        .collect()
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// `fixes.remove_terminal_escapes`: ANSI `ESC [ digits/; letter`.
fn remove_terminal_escapes(text: &str) -> String {
    if !text.contains('\u{1b}') {
        return text.to_string();
    }
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, r"\x1b\[(?:\d|;)*[a-zA-Z]")
        .replace_all(text, "")
        .into_owned()
}

/// `chardata.CONTROL_CHARS`.
fn is_control_char(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}
