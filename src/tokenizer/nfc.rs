//! Unicode NFC (canonical decomposition, canonical ordering, canonical composition; UAX #15),
//! as `unicodedata.normalize("NFC", s)`, from the tables in `ftfy_data`.
use super::ftfy_data::{CANONICAL_DECOMPOSITIONS, COMBINING_CLASSES};
use std::collections::HashMap;
use std::sync::OnceLock;

struct Tables {
    decompose: HashMap<char, (char, Option<char>)>,
    compose: HashMap<(char, char), char>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut decompose = HashMap::new();
        let mut compose = HashMap::new();
        let hex = |s: &str| u32::from_str_radix(s, 16).ok().and_then(char::from_u32);
        for item in CANONICAL_DECOMPOSITIONS.split_whitespace() {
            let Some((c, rest)) = item.split_once('=') else {
                continue;
            };
            let (rest, recomposes) = match rest.strip_suffix('!') {
                Some(r) => (r, false),
                None => (rest, true),
            };
            let Some(c) = hex(c) else { continue };
            match rest.split_once('+') {
                Some((a, b)) => {
                    if let (Some(a), Some(b)) = (hex(a), hex(b)) {
                        decompose.insert(c, (a, Some(b)));
                        if recomposes {
                            compose.insert((a, b), c);
                        }
                    }
                }
                None => {
                    if let Some(a) = hex(rest) {
                        decompose.insert(c, (a, None));
                    }
                }
            }
        }
        Tables { decompose, compose }
    })
}

fn combining_class(c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x300 {
        return 0;
    }
    match COMBINING_CLASSES.binary_search_by(|&(lo, hi, _)| {
        if hi < cp {
            std::cmp::Ordering::Less
        } else if lo > cp {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => COMBINING_CLASSES[i].2,
        Err(_) => 0,
    }
}

const S_BASE: u32 = 0xAC00;
const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const L_COUNT: u32 = 19;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;
const N_COUNT: u32 = V_COUNT * T_COUNT;
const S_COUNT: u32 = L_COUNT * N_COUNT;

fn decompose_into(c: char, t: &Tables, out: &mut Vec<char>) {
    let cp = c as u32;
    if (S_BASE..S_BASE + S_COUNT).contains(&cp) {
        let s = cp - S_BASE;
        let jamo = [
            L_BASE + s / N_COUNT,
            V_BASE + (s % N_COUNT) / T_COUNT,
            T_BASE + s % T_COUNT,
        ];
        let n = if s.is_multiple_of(T_COUNT) { 2 } else { 3 };
        out.extend(jamo[..n].iter().filter_map(|&j| char::from_u32(j)));
        return;
    }
    match t.decompose.get(&c) {
        Some(&(a, b)) => {
            decompose_into(a, t, out);
            if let Some(b) = b {
                decompose_into(b, t, out);
            }
        }
        None => out.push(c),
    }
}

fn compose_pair(a: char, b: char, t: &Tables) -> Option<char> {
    let (a32, b32) = (a as u32, b as u32);
    if (L_BASE..L_BASE + L_COUNT).contains(&a32) && (V_BASE..V_BASE + V_COUNT).contains(&b32) {
        return char::from_u32(S_BASE + ((a32 - L_BASE) * V_COUNT + (b32 - V_BASE)) * T_COUNT);
    }
    if (S_BASE..S_BASE + S_COUNT).contains(&a32)
        && (a32 - S_BASE).is_multiple_of(T_COUNT)
        && (T_BASE + 1..T_BASE + T_COUNT).contains(&b32)
    {
        return char::from_u32(a32 + (b32 - T_BASE));
    }
    t.compose.get(&(a, b)).copied()
}

/// NFC of `s`; ASCII text is returned unchanged without table lookups.
pub fn nfc(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let t = tables();
    let mut chars = Vec::with_capacity(s.len());
    for c in s.chars() {
        decompose_into(c, t, &mut chars);
    }
    // canonical ordering: stable sort of each run of non-starters by combining class
    let mut i = 0;
    while i < chars.len() {
        if combining_class(chars[i]) == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && combining_class(chars[i]) != 0 {
            i += 1;
        }
        chars[start..i].sort_by_key(|&c| combining_class(c));
    }
    // canonical composition
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut starter: Option<usize> = None;
    // class of the last character kept after the starter (None: the starter is the last one)
    let mut last_class: Option<u8> = None;
    for c in chars {
        let class = combining_class(c);
        if let Some(si) = starter {
            let blocked = matches!(last_class, Some(lc) if lc == 0 || lc >= class);
            if !blocked && let Some(composed) = compose_pair(out[si], c, t) {
                out[si] = composed;
                continue;
            }
        }
        if class == 0 {
            starter = Some(out.len());
            last_class = None;
        } else {
            last_class = Some(class);
        }
        out.push(c);
    }
    out.into_iter().collect()
}
