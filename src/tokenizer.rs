//! OpenAI CLIP's tokenizer, id for id: `SimpleTokenizer` + `clip.tokenize(texts, truncate=True)`.
//!
//! Cleaning as upstream: `ftfy.fix_text` (ported in [`ftfy`]), `html.unescape` twice, strip,
//! whitespace runs -> one space, Python `str.lower`; then the word regex (case-insensitive as
//! upstream) and byte-level BPE over the 49,408-token vocabulary that `instant-clip-tokenizer`
//! bundles (`bpe_simple_vocab_16e6.txt`). `<|startoftext|>` = 49406, `<|endoftext|>` = 49407.
//! Upstream: https://github.com/openai/CLIP/blob/d05afc4/clip/simple_tokenizer.py and
//! https://github.com/openai/CLIP/blob/d05afc4/clip/clip.py (`tokenize`).
mod ftfy;
mod ftfy_data;
mod html;
mod nfc;

use anyhow::{Context, Result};
use regex::Regex;
use tch::Tensor;

/// Tokens CLIP reads per text, SOT and EOT included.
pub const CONTEXT_LENGTH: usize = 77;
pub const START_OF_TEXT: u32 = 49406;
pub const END_OF_TEXT: u32 = 49407;
/// The byte-level token of `'` that does not end a word.
const APOSTROPHE_BYTE_TOKEN: u32 = 6;

/// One tokenized text: `[SOT, bpe..., EOT]` cut to [`CONTEXT_LENGTH`] (EOT kept last) and
/// zero padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// Exactly [`CONTEXT_LENGTH`] ids.
    pub ids: Vec<i64>,
    /// How many tokens of `[SOT, bpe..., EOT]` did not fit (0 when it fits).
    pub dropped: usize,
}

impl Tokenized {
    /// Length of `[SOT, bpe..., EOT]` before truncation.
    pub fn untruncated_len(&self) -> usize {
        let used = self
            .ids
            .iter()
            .rposition(|&id| id != 0)
            .map_or(0, |i| i + 1);
        used + self.dropped
    }
}

pub struct Tokenizer {
    bpe: instant_clip_tokenizer::Tokenizer,
    word: Regex,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer")
    }
}

impl Tokenizer {
    /// Builds the tokenizer from the bundled vocabulary (takes a few tens of milliseconds).
    pub fn new() -> Result<Tokenizer> {
        // Upstream compiles this with re.IGNORECASE. On lowercased text that changes exactly two
        // things (checked over every code point with Python's `regex`): "'ſ" is a contraction, and
        // U+0345 (which case-folds to a letter without being one) matches nothing at all.
        let word = Regex::new(
            r"<\|startoftext\|>|<\|endoftext\|>|'[sſ]|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}\x{345}]+",
        )
        .context("CLIP word regex")?;
        Ok(Tokenizer {
            bpe: instant_clip_tokenizer::Tokenizer::new(),
            word,
        })
    }

    /// BPE ids of the cleaned text, without SOT/EOT (`SimpleTokenizer.encode`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean(text);
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for piece in self.word.find_iter(&text).map(|m| m.as_str()) {
            match piece {
                "<|startoftext|>" => ids.push(START_OF_TEXT),
                "<|endoftext|>" => ids.push(END_OF_TEXT),
                // no merge starts with "'" + the first byte of ſ, so the BPE word "'ſ" is the bare
                // apostrophe byte token (6) followed by the BPE of "ſ"
                "'ſ" => {
                    ids.push(APOSTROPHE_BYTE_TOKEN);
                    tokens.clear();
                    self.bpe.encode("ſ", &mut tokens);
                    ids.extend(tokens.iter().map(|t| u32::from(t.to_u16())));
                }
                // `piece` is one word of the same regex, so the crate's own split keeps it whole
                // and only its BPE applies
                _ => {
                    tokens.clear();
                    self.bpe.encode(piece, &mut tokens);
                    ids.extend(tokens.iter().map(|t| u32::from(t.to_u16())));
                }
            }
        }
        ids
    }

    /// `clip.tokenize(text, truncate=True)[0]`, plus how many tokens were cut.
    pub fn tokenize(&self, text: &str) -> Tokenized {
        let bpe = self.encode(text);
        let mut all = Vec::with_capacity(bpe.len() + 2);
        all.push(i64::from(START_OF_TEXT));
        all.extend(bpe.iter().map(|&id| i64::from(id)));
        all.push(i64::from(END_OF_TEXT));
        let dropped = all.len().saturating_sub(CONTEXT_LENGTH);
        all.truncate(CONTEXT_LENGTH);
        if dropped > 0 {
            all[CONTEXT_LENGTH - 1] = i64::from(END_OF_TEXT);
        }
        all.resize(CONTEXT_LENGTH, 0);
        Tokenized { ids: all, dropped }
    }

    /// `[n, 77]` i64 ids on the CPU and, per text, the number of dropped tokens.
    pub fn tokenize_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<(Tensor, Vec<usize>)> {
        let mut ids = Vec::with_capacity(texts.len() * CONTEXT_LENGTH);
        let mut dropped = Vec::with_capacity(texts.len());
        for text in texts {
            let t = self.tokenize(text.as_ref());
            ids.extend_from_slice(&t.ids);
            dropped.push(t.dropped);
        }
        let tensor = Tensor::f_from_slice(&ids)
            .and_then(|t| t.f_view([texts.len() as i64, CONTEXT_LENGTH as i64]))
            .context("building the token tensor")?;
        Ok((tensor, dropped))
    }
}

/// `whitespace_clean(basic_clean(text)).lower()`, the text the word regex sees.
pub fn clean(text: &str) -> String {
    let text = ftfy::fix_text(text);
    let text = html::unescape(&html::unescape(&text));
    // str.strip() then `\s+` -> " " then strip; after ftfy no non-`\s` Python whitespace is left
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.to_lowercase()
}

/// The stderr line for a prompt that did not fit, e.g.
/// `vqclip: warning: prompt 'a very long ...' is 93 tokens; the last 16 were dropped (CLIP reads 77)`.
pub fn truncation_warning(text: &str, dropped: usize) -> Option<String> {
    if dropped == 0 {
        return None;
    }
    const SHOWN: usize = 40;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown: String = flat.chars().take(SHOWN).collect();
    let ellipsis = if flat.chars().count() > SHOWN {
        "..."
    } else {
        ""
    };
    Some(format!(
        "vqclip: warning: prompt '{shown}{ellipsis}' is {} tokens; the last {dropped} were dropped (CLIP reads {CONTEXT_LENGTH})",
        CONTEXT_LENGTH + dropped
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftfy_examples() {
        assert_eq!(ftfy::fix_text("cafÃ© donâ€™t"), "café don't");
        assert_eq!(ftfy::fix_text("ﬁne ＡＢＣ “q”"), "fine ABC \"q\"");
        assert_eq!(ftfy::fix_text("cafe\u{301}"), "café");
        assert_eq!(ftfy::fix_text("tom &amp; jerry"), "tom & jerry");
        assert_eq!(ftfy::fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert!(!ftfy::is_bad("café naïve"));
    }

    #[test]
    fn html_unescape_like_python() {
        assert_eq!(
            html::unescape("&amp;amp; &lt;b&gt; &#39; &#x27; &ampx &notit; &#128; &#0; &bogus;"),
            "&amp; <b> ' ' &x ¬it; € \u{fffd} &bogus;"
        );
    }

    #[test]
    fn nfc_composes_and_orders() {
        assert_eq!(nfc::nfc("e\u{301}"), "é");
        assert_eq!(nfc::nfc("\u{1100}\u{1161}\u{11a8}"), "각");
        assert_eq!(nfc::nfc("a\u{323}\u{302}"), "ậ");
        assert_eq!(nfc::nfc("a\u{302}\u{323}"), "ậ");
        assert_eq!(nfc::nfc("\u{212b}"), "Å");
    }
}
