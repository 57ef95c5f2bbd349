//! Token ids against OpenAI's Python tokenizer (`tests/fixtures/tokenizer_golden.json`, made by
//! `clip.tokenize(p, truncate=True)` with ftfy 6.3.1).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::fixture;
use serde_json::Value;
use vqclip::tokenizer::{
    CONTEXT_LENGTH, END_OF_TEXT, START_OF_TEXT, Tokenizer, clean, truncation_warning,
};

struct Case {
    prompt: String,
    ids: Vec<i64>,
    n_untruncated: usize,
    cleaned: String,
}

fn load_cases(path: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            prompt: c["prompt"].as_str().unwrap().to_string(),
            ids: c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect(),
            n_untruncated: c["n_tokens_untruncated"].as_u64().unwrap() as usize,
            cleaned: c["cleaned"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

fn golden() -> Vec<Case> {
    load_cases(fixture("tokenizer_golden.json").to_str().unwrap())
}

#[test]
fn every_golden_prompt_gives_the_reference_ids() {
    let tok = Tokenizer::new().unwrap();
    let cases = golden();
    assert!(cases.len() >= 40, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let t = tok.tokenize(&case.prompt);
        assert_eq!(t.ids.len(), CONTEXT_LENGTH);
        let mut expected = case.ids.clone();
        expected.resize(CONTEXT_LENGTH, 0);
        let expected_dropped = case.n_untruncated.saturating_sub(CONTEXT_LENGTH);
        if t.ids != expected || t.dropped != expected_dropped || clean(&case.prompt) != case.cleaned
        {
            failures.push(format!(
                "{:?}\n  cleaned  {:?}\n  expected {:?}\n  got ids  {:?} (dropped {}, expected {})\n  expected ids {:?}",
                case.prompt,
                clean(&case.prompt),
                case.cleaned,
                &t.ids[..case.ids.len().min(CONTEXT_LENGTH)],
                t.dropped,
                expected_dropped,
                case.ids
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} prompts differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn encode_has_no_special_tokens_and_tokenize_frames_them() {
    let tok = Tokenizer::new().unwrap();
    let ids = tok.encode("a photo of a cat");
    assert_eq!(ids, [320, 1125, 539, 320, 2368]);
    let t = tok.tokenize("a photo of a cat");
    assert_eq!(
        &t.ids[..7],
        &[
            START_OF_TEXT as i64,
            320,
            1125,
            539,
            320,
            2368,
            END_OF_TEXT as i64
        ]
    );
    assert!(t.ids[7..].iter().all(|&x| x == 0));
    assert_eq!(t.dropped, 0);
    assert_eq!(t.untruncated_len(), 7);
}

#[test]
fn truncation_keeps_eot_last_and_counts_dropped() {
    let tok = Tokenizer::new().unwrap();
    for (n_words, dropped) in [(75, 0), (76, 1), (90, 15)] {
        let text = vec!["the"; n_words].join(" ");
        let t = tok.tokenize(&text);
        assert_eq!(t.dropped, dropped, "{n_words} words");
        assert_eq!(t.ids[CONTEXT_LENGTH - 1], END_OF_TEXT as i64);
        assert_eq!(t.untruncated_len(), n_words + 2);
        let warning = truncation_warning(&text, t.dropped);
        assert_eq!(warning.is_some(), dropped > 0);
        if let Some(w) = warning {
            assert!(w.starts_with("vqclip: warning: prompt 'the the"), "{w}");
            assert!(
                w.contains(&format!(
                    "is {} tokens; the last {dropped} were dropped",
                    n_words + 2
                )),
                "{w}"
            );
        }
    }
}

#[test]
fn batch_is_n_by_77_i64() {
    let tok = Tokenizer::new().unwrap();
    let texts = ["a photo of a cat", "", "a dog"];
    let (t, dropped) = tok.tokenize_batch(&texts).unwrap();
    assert_eq!(t.size(), [3, 77]);
    assert_eq!(t.kind(), tch::Kind::Int64);
    assert_eq!(dropped, [0, 0, 0]);
    assert_eq!(t.int64_value(&[1, 0]), START_OF_TEXT as i64);
    assert_eq!(t.int64_value(&[1, 1]), END_OF_TEXT as i64);
    let row: Vec<i64> = Vec::try_from(t.get(0)).unwrap();
    assert_eq!(row, tok.tokenize(texts[0]).ids);
}

/// Developer check against a larger dump from the Python tokenizer (same JSON layout as the golden
/// file): `VQCLIP_TOKENIZER_DUMP=dump.json cargo test --release --test tokenizer -- --ignored`.
#[test]
#[ignore]
fn reference_dump_from_env() {
    let Ok(path) = std::env::var("VQCLIP_TOKENIZER_DUMP") else {
        eprintln!("VQCLIP_TOKENIZER_DUMP not set; nothing to compare");
        return;
    };
    let tok = Tokenizer::new().unwrap();
    let cases = load_cases(&path);
    let mut bad = 0;
    for case in &cases {
        let t = tok.tokenize(&case.prompt);
        let mut expected = case.ids.clone();
        expected.resize(CONTEXT_LENGTH, 0);
        if t.ids != expected {
            bad += 1;
            let ours = clean(&case.prompt);
            let what = if ours == case.cleaned {
                "ids"
            } else {
                "cleaning"
            };
            eprintln!(
                "MISMATCH ({what}) {:?}\n  ours   {ours:?}\n  python {:?}",
                case.prompt, case.cleaned
            );
        }
    }
    eprintln!("{} of {} prompts match", cases.len() - bad, cases.len());
    assert_eq!(bad, 0);
}
