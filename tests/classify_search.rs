//! `vqclip classify` and `vqclip search` with the tiny random CLIP (`tests/fixtures/clip_tiny.pt`,
//! resolution 32): zero-shot probabilities against the Python reference, the CLI against
//! probabilities and rankings recomputed here from per-file embeddings, index reuse and rebuilds,
//! and unreadable files.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{fixture, run, stderr, tmp_dir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::{Device, Kind, Tensor};
use vqclip::clip_tasks::classify::{label_embeddings, probabilities};
use vqclip::clip_tasks::index::INDEX_DIR;
use vqclip::clip_tasks::search::{IndexReport, Indexed, UpdateOptions, rank, update_index};
use vqclip::image_io::load_rgb;
use vqclip::models::clip::{Clip, preprocess_image};
use vqclip::tokenizer::Tokenizer;

fn clip_path() -> PathBuf {
    fixture("clip_tiny.pt")
}

fn load_clip() -> Clip {
    Clip::load(&clip_path(), Device::Cpu).unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

/// CLIP embedding of one image file, encoded alone.
fn image_embedding(clip: &Clip, path: &Path) -> Tensor {
    let px = preprocess_image(&load_rgb(path).unwrap(), clip.input_resolution());
    tch::no_grad(|| clip.encode_image(&px))
}

fn text_embeddings(clip: &Clip, texts: &[String]) -> Tensor {
    let (tokens, _) = Tokenizer::new().unwrap().tokenize_batch(texts).unwrap();
    tch::no_grad(|| clip.encode_text(&tokens))
}

fn unit(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true)
}

/// OpenAI's zero-shot probabilities, written out here independently of the library.
fn reference_probs(images: &Tensor, labels: &Tensor, logit_scale: f64) -> Tensor {
    (unit(images).matmul(&unit(labels).tr()) * logit_scale.exp()).softmax(-1, Kind::Float)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn row(t: &Tensor, i: i64) -> Vec<f32> {
    Vec::<f32>::try_from(t.get(i).contiguous()).unwrap()
}

#[test]
fn library_probabilities_match_the_reference() {
    let r: HashMap<String, Tensor> = Tensor::read_safetensors(fixture("clip_tiny_ref.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let clip = load_clip();
    let images = tch::no_grad(|| clip.encode_image(&r["image_pixels"]));
    // from the reference tokens
    let texts = tch::no_grad(|| clip.encode_text(&r["text_tokens"]));
    let probs = probabilities(&images, &texts, clip.logit_scale());
    let d1 = max_diff(&probs, &r["probs"]);
    // from the prompts, through the tokenizer and label_embeddings
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("fixtures.json")).unwrap()).unwrap();
    let prompts: Vec<String> = meta["clip_tiny"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(prompts.len(), 6);
    let tok = Tokenizer::new().unwrap();
    let labels = label_embeddings(&clip, &tok, &prompts, &[]).unwrap();
    assert!(labels.warnings.is_empty());
    let probs2 = probabilities(&images, &labels.embeds, clip.logit_scale());
    let d2 = max_diff(&probs2, &r["probs"]);
    eprintln!("zero-shot probs max abs diff: tokens {d1:.2e}, prompts {d2:.2e}");
    assert!(d1 < 1e-4 && d2 < 1e-4, "{d1} {d2}");
}

#[test]
fn classify_cli_gives_the_zero_shot_probabilities() {
    let clip = load_clip();
    let images = [fixture("clip_input.png"), fixture("recon_input.png")];
    let labels: Vec<String> = [
        "a photo of a cat",
        "a red apple on a wooden table",
        "a lighthouse",
    ]
    .map(String::from)
    .to_vec();
    let img_emb = Tensor::cat(
        &images
            .iter()
            .map(|p| image_embedding(&clip, p))
            .collect::<Vec<_>>(),
        0,
    );
    let want = reference_probs(
        &img_emb,
        &text_embeddings(&clip, &labels),
        clip.logit_scale(),
    );

    let label_arg = format!(
        " {} | {} |{}|a photo of a cat",
        labels[0], labels[1], labels[2]
    );
    let out = run(&[
        "classify",
        images[0].to_str().unwrap(),
        images[1].to_str().unwrap(),
        "--labels",
        &label_arg,
        "--clip",
        clip_path().to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let mut worst = 0f64;
    for (i, item) in arr.iter().enumerate() {
        assert_eq!(item["path"], images[i].to_str().unwrap());
        let probs = item["probs"].as_object().unwrap();
        assert_eq!(probs.len(), 3, "duplicate label kept: {probs:?}");
        let want_row = row(&want, i as i64);
        for (l, label) in labels.iter().enumerate() {
            let got = probs[label].as_f64().unwrap();
            worst = worst.max((got - f64::from(want_row[l])).abs());
        }
        let best = (0..3)
            .max_by(|&a, &b| want_row[a].total_cmp(&want_row[b]))
            .unwrap();
        assert_eq!(item["top"], labels[best].as_str());
    }
    eprintln!("classify CLI probs max abs diff {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");

    // The table: best first, and --top cuts it.
    let out = run(&[
        "classify",
        images[0].to_str().unwrap(),
        "--labels",
        &labels.join("|"),
        "--clip",
        clip_path().to_str().unwrap(),
        "--device",
        "cpu",
        "--top",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], images[0].to_str().unwrap());
    let p: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = row(&want, 0);
    sorted.sort_by(|a, b| b.total_cmp(a));
    for (got, want) in p.iter().zip(&sorted) {
        assert!((got - f64::from(*want)).abs() < 1e-4, "{text}");
    }
}

#[test]
fn classify_templates_average_normalized_prompt_embeddings() {
    let clip = load_clip();
    let image = fixture("clip_input.png");
    let labels = ["cat", "dog", "person"];
    let templates = ["a photo of a {}.", "art of the {}."];
    // reference: per label, normalize each prompt's embedding, average, normalize
    let label_emb = Tensor::stack(
        &labels
            .iter()
            .map(|l| {
                let prompts: Vec<String> = templates.iter().map(|t| t.replace("{}", l)).collect();
                unit(&unit(&text_embeddings(&clip, &prompts)).mean_dim(0, true, Kind::Float))
                    .squeeze_dim(0)
            })
            .collect::<Vec<_>>(),
        0,
    );
    let want = reference_probs(
        &image_embedding(&clip, &image),
        &label_emb,
        clip.logit_scale(),
    );
    let labels_dir = tmp_dir("labels");
    let labels_file = labels_dir.join("labels.txt");
    std::fs::write(&labels_file, "cat\r\n\ndog\n  person  \ncat\n").unwrap();
    let out = run(&[
        "classify",
        image.to_str().unwrap(),
        "--labels-file",
        labels_file.to_str().unwrap(),
        "--template",
        templates[0],
        "--template",
        templates[1],
        "--clip",
        clip_path().to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let probs = v[0]["probs"].as_object().unwrap();
    assert_eq!(probs.len(), 3);
    let want_row = row(&want, 0);
    let worst = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (probs[*l].as_f64().unwrap() - f64::from(want_row[i])).abs())
        .fold(0f64, f64::max);
    eprintln!("templated probs max abs diff {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    std::fs::remove_dir_all(labels_dir).unwrap();

    // the named sets: the same averaging over their prompts (library, no process start-up)
    let tok = Tokenizer::new().unwrap();
    let img = image_embedding(&clip, &image);
    let labels: Vec<String> = labels.map(String::from).to_vec();
    for (set, n) in [("imagenet", 80), ("imagenet7", 7)] {
        let list = vqclip::clip_tasks::templates::resolve(&[], Some(set)).unwrap();
        assert_eq!(list.len(), n);
        let got = label_embeddings(&clip, &tok, &labels, &list)
            .unwrap()
            .embeds;
        let want = Tensor::stack(
            &labels
                .iter()
                .map(|l| {
                    let prompts: Vec<String> = list.iter().map(|t| t.replace("{}", l)).collect();
                    unit(&unit(&text_embeddings(&clip, &prompts)).mean_dim(0, true, Kind::Float))
                        .squeeze_dim(0)
                })
                .collect::<Vec<_>>(),
            0,
        );
        let d = max_diff(&got, &want);
        assert!(d < 1e-5, "{set}: {d}");
        let p = probabilities(&img, &got, clip.logit_scale());
        let sum = p.sum(Kind::Double).double_value(&[]);
        assert!((sum - 1.0).abs() < 1e-5, "{set}: {sum}");
    }
}

#[test]
fn classify_reports_unreadable_images_and_classifies_the_rest() {
    let dir = tmp_dir("classify-bad");
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not an image at all").unwrap();
    let missing = dir.join("missing.jpg");
    let good = fixture("clip_input.png");
    let out = run(&[
        "classify",
        junk.to_str().unwrap(),
        good.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--labels",
        "cat|dog",
        "--clip",
        clip_path().to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("junk.png") && err.contains("missing.jpg"),
        "{err}"
    );
    assert!(err.contains("2 of 3 images could not be read"), "{err}");
    let v = json(&out);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert!(arr[0]["error"].is_string() && arr[2]["error"].is_string());
    assert_eq!(arr[1]["path"], good.to_str().unwrap());
    assert!(arr[1]["probs"]["cat"].is_number());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs a command in this process (no process start-up) and returns its exit code.
fn exit_code_in_process(args: &[&str]) -> u8 {
    use clap::Parser;
    let argv = std::iter::once("vqclip").chain(args.iter().copied());
    match vqclip::cli::Cli::try_parse_from(argv) {
        Err(_) => 2,
        Ok(cli) => match vqclip::cmd::run(cli) {
            Ok(()) => 0,
            Err(e) => vqclip::error::exit_code(&e),
        },
    }
}

#[test]
fn classify_usage_errors_exit_2() {
    let img = fixture("clip_input.png");
    let clip = clip_path();
    let base = [
        "classify",
        img.to_str().unwrap(),
        "--clip",
        clip.to_str().unwrap(),
    ];
    let cases: [&[&str]; 6] = [
        &[],
        &["--labels", " | |"],
        &["--labels", "cat|dog", "--top", "0"],
        &["--labels", "cat", "--template", "a photo"],
        &["--labels", "cat", "--template", "{} and {}"],
        &["--labels", "cat", "--templates", "cifar100"],
    ];
    for extra in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert_eq!(exit_code_in_process(&args), 2, "{extra:?}");
    }
}

/// Distinct images under `dir` (some in a subfolder, several formats); returns their paths.
fn make_images(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let mut paths = Vec::new();
    for (name, src) in [
        ("cat.png", "clip_input.png"),
        ("sub/recon.PNG", "recon_input.png"),
        ("odd.png", "recon_input_odd.png"),
    ] {
        std::fs::copy(fixture(src), dir.join(name)).unwrap();
        paths.push(dir.join(name));
    }
    for (k, name) in ["stripes.bmp", "sub/deeper/rings.jpg", "sub/blocks.png"]
        .iter()
        .enumerate()
    {
        let (w, h) = (40 + 8 * k as u32, 36 + 5 * k as u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (x, y) = (x as f32, y as f32);
            let v = match k {
                0 => ((x / 3.0).sin() * 127.0 + 128.0) as u8,
                1 => (((x - 20.0).hypot(y - 18.0) / 2.0).cos() * 127.0 + 128.0) as u8,
                _ => (((x as u32 / 8 + y as u32 / 8) % 2) * 255) as u8,
            };
            image::Rgb([v, 255 - v, (x * 5.0) as u8])
        });
        img.save(dir.join(name)).unwrap();
        paths.push(dir.join(name));
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    paths.sort();
    paths
}

/// `indexed: N encoded, M reused, K unreadable` from stderr.
fn stats(out: &Output) -> (usize, usize, usize) {
    let err = stderr(out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("indexed: "))
        .unwrap_or_else(|| panic!("no stats line in: {err}"));
    let n: Vec<usize> = line
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

fn search(dir: &Path, extra: &[&str]) -> Output {
    let clip = clip_path();
    let mut args = vec![
        "search",
        dir.to_str().unwrap(),
        "--clip",
        clip.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
        "--batch",
        "4",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
    out
}

fn hits(out: &Output) -> Vec<(String, f64)> {
    json(out)
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["path"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The reference: every file encoded alone, ranked by cosine with `query`.
fn reference_ranking(clip: &Clip, paths: &[PathBuf], query: &Tensor) -> Vec<(String, f64)> {
    let q = unit(query);
    let mut scored: Vec<(String, f64)> = paths
        .iter()
        .map(|p| {
            let e = unit(&image_embedding(clip, p));
            let s = e.matmul(&q.tr()).double_value(&[0, 0]);
            (p.to_str().unwrap().to_string(), s)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

fn assert_same_ranking(got: &[(String, f64)], want: &[(String, f64)]) {
    let names = |v: &[(String, f64)]| v.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want));
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g.1 - w.1).abs())
        .fold(0f64, f64::max);
    eprintln!("search scores max abs diff {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
}

fn update(clip: &Clip, dir: &Path, reindex: bool) -> (Indexed, IndexReport) {
    let opts = UpdateOptions {
        batch: 4,
        reindex,
        weights: clip_path(),
    };
    update_index(clip, dir, &opts, &mut |_, _| {}).unwrap()
}

fn stats_of(r: &IndexReport) -> (usize, usize, usize) {
    (r.stats.encoded, r.stats.reused, r.stats.unreadable)
}

/// The library's ranking of an index, as (path, score).
fn ranked(indexed: &Indexed, query: &Tensor) -> Vec<(String, f64)> {
    rank(&indexed.embeds, query, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(i, s)| (indexed.paths[i].to_str().unwrap().to_string(), f64::from(s)))
        .collect()
}

#[test]
fn search_ranks_like_the_reference_and_reuses_its_index() {
    let dir = tmp_dir("search");
    let paths = make_images(&dir);
    let clip = load_clip();
    let query = "a painting of a lighthouse at night";
    let q = text_embeddings(&clip, &[query.to_string()]);
    let want = reference_ranking(&clip, &paths, &q);
    // the scores are apart enough for the order to mean something
    for w in want.windows(2) {
        assert!(w[0].1 - w[1].1 > 1e-4, "{want:?}");
    }

    let first = search(&dir, &["--query", query, "--top", "100"]);
    assert_eq!(stats(&first), (6, 0, 0));
    assert_same_ranking(&hits(&first), &want);
    let index_files: Vec<_> = std::fs::read_dir(dir.join(INDEX_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(index_files.len(), 1, "{index_files:?}");
    assert!(index_files[0].starts_with("clip_tiny-") && index_files[0].ends_with(".safetensors"));

    // again: nothing to encode, same answer; --top cuts
    let second = search(&dir, &["--query", query, "--top", "3"]);
    assert_eq!(stats(&second), (0, 6, 0));
    assert_same_ranking(&hits(&second), &want[..3]);

    // touching one file re-encodes exactly that one
    let f = std::fs::File::options()
        .write(true)
        .open(&paths[2])
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let (indexed, report) = update(&clip, &dir, false);
    assert_eq!(stats_of(&report), (1, 5, 0));
    assert_same_ranking(&ranked(&indexed, &q), &want);
    assert_eq!(stats_of(&update(&clip, &dir, false).1), (0, 6, 0));

    // a new file is encoded, a removed one drops out
    let extra = dir.join("sub/copy.png");
    std::fs::copy(fixture("clip_input.png"), &extra).unwrap();
    std::fs::remove_file(&paths[0]).unwrap();
    let mut now: Vec<PathBuf> = paths[1..].to_vec();
    now.push(extra);
    let (indexed, report) = update(&clip, &dir, false);
    assert_eq!(stats_of(&report), (1, 5, 0));
    assert_same_ranking(&ranked(&indexed, &q), &reference_ranking(&clip, &now, &q));
    assert_eq!(stats_of(&update(&clip, &dir, false).1), (0, 6, 0));

    // reindex encodes everything
    assert_eq!(stats_of(&update(&clip, &dir, true).1), (6, 0, 0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn image_query_finds_the_image_itself_first() {
    let dir = tmp_dir("image-query");
    let paths = make_images(&dir);
    let clip = load_clip();
    let q = &paths[3];
    let want = reference_ranking(&clip, &paths, &image_embedding(&clip, q));
    let out = search(
        &dir,
        &["--image-query", q.to_str().unwrap(), "--top", "100"],
    );
    let got = hits(&out);
    assert_eq!(got[0].0, q.to_str().unwrap());
    assert!((got[0].1 - 1.0).abs() < 1e-5, "{got:?}");
    assert_same_ranking(&got, &want);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupt_index_is_rebuilt() {
    let dir = tmp_dir("corrupt");
    make_images(&dir);
    let clip = load_clip();
    let q = text_embeddings(&clip, &["a red apple".to_string()]);
    let (indexed, report) = update(&clip, &dir, false);
    assert_eq!(stats_of(&report), (6, 0, 0));
    let good = ranked(&indexed, &q);
    let index = std::fs::read_dir(dir.join(INDEX_DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&index).unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x40;
    let mut renamed = bytes.clone();
    let at = bytes.windows(6).position(|w| w == b"cat.pn").unwrap();
    renamed[at] = b'b'; // the manifest no longer matches the files: rows for "bat.png"
    let corruptions: [(&str, Vec<u8>); 5] = [
        ("truncated", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("flipped", flipped),
        ("empty", Vec::new()),
        ("renamed", renamed),
        ("garbage", b"definitely not safetensors".to_vec()),
    ];
    for (what, corrupt) in corruptions {
        std::fs::write(&index, &corrupt).unwrap();
        let (indexed, report) = update(&clip, &dir, false);
        if what == "renamed" {
            // a valid index of other files: "bat.png" is dropped, "cat.png" encoded
            assert_eq!(stats_of(&report), (1, 5, 0), "{what}");
        } else {
            assert_eq!(stats_of(&report), (6, 0, 0), "{what}");
            assert!(report.rebuilt_because.is_some(), "{what}");
        }
        assert_same_ranking(&ranked(&indexed, &q), &good);
        // the rebuilt index is trusted again
        assert_eq!(stats_of(&update(&clip, &dir, false).1), (0, 6, 0), "{what}");
    }
    // the CLI says so, and rebuilds
    std::fs::write(&index, b"definitely not safetensors").unwrap();
    let out = search(&dir, &["--query", "a red apple"]);
    assert_eq!(stats(&out), (6, 0, 0));
    assert!(
        stderr(&out).contains("rebuilding the index"),
        "{}",
        stderr(&out)
    );
    // no temporary files left behind
    assert_eq!(std::fs::read_dir(dir.join(INDEX_DIR)).unwrap().count(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_files_are_skipped_and_counted() {
    let dir = tmp_dir("unreadable");
    let paths = make_images(&dir);
    std::fs::write(dir.join("broken.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let png = std::fs::read(fixture("clip_input.png")).unwrap();
    std::fs::write(dir.join("sub/truncated.png"), &png[..png.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.webp"), b"").unwrap();
    let out = search(&dir, &["--query", "a cat", "--top", "100"]);
    assert_eq!(stats(&out), (6, 0, 3));
    let err = stderr(&out);
    assert!(err.contains("skipped 3 unreadable file(s)"), "{err}");
    for name in ["broken.jpg", "truncated.png", "empty.webp"] {
        assert!(err.contains(name), "{name}: {err}");
    }
    let mut got: Vec<String> = hits(&out).into_iter().map(|h| h.0).collect();
    got.sort();
    let want: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    // counted again next time, but nothing is re-encoded
    let (indexed, report) = update(&load_clip(), &dir, false);
    assert_eq!(stats_of(&report), (0, 6, 3));
    assert_eq!(indexed.paths, paths);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn search_usage_and_runtime_errors() {
    let dir = tmp_dir("search-errors");
    let clip = clip_path();
    let d = dir.to_str().unwrap();
    let c = clip.to_str().unwrap();
    let img = fixture("clip_input.png");
    let cases: [(&[&str], u8); 6] = [
        (&["search", d, "--clip", c], 2),
        (
            &[
                "search",
                d,
                "--clip",
                c,
                "--query",
                "x",
                "--image-query",
                img.to_str().unwrap(),
            ],
            2,
        ),
        (&["search", d, "--clip", c, "--query", "  "], 2),
        (&["search", d, "--clip", c, "--query", "x", "--top", "0"], 2),
        (
            &["search", d, "--clip", c, "--query", "x", "--batch", "0"],
            2,
        ),
        (
            &["search", "/no/such/folder", "--clip", c, "--query", "x"],
            1,
        ),
    ];
    for (args, code) in cases {
        assert_eq!(exit_code_in_process(args), code, "{args:?}");
    }
    // an empty folder is not an error: nothing to rank
    let (indexed, report) = update(&load_clip(), &dir, false);
    assert!(indexed.paths.is_empty());
    assert_eq!(stats_of(&report), (0, 0, 0));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--precision bf16`: the bf16 tower ranks the folder as f32 does (scores within bf16's
/// rounding), keeps an index of its own beside the f32 one (neither is reused for the other), and
/// classify picks the same labels with probabilities close to f32's. A bad value is exit 2.
#[test]
fn bf16_search_and_classify_agree_with_f32_and_keep_their_own_index() {
    let dir = tmp_dir("search-bf16");
    make_images(&dir);
    let query = "a painting of a lighthouse at night";
    let f32_hits = hits(&search(&dir, &["--query", query, "--top", "100"]));
    let first = search(
        &dir,
        &["--query", query, "--top", "100", "--precision", "bf16"],
    );
    assert_eq!(
        stats(&first),
        (6, 0, 0),
        "the f32 index is not reused for bf16"
    );
    let bf16_hits = hits(&first);
    let mut files: Vec<String> = std::fs::read_dir(dir.join(INDEX_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("-bf16.safetensors"), "{files:?}");
    let score = |h: &[(String, f64)], p: &str| h.iter().find(|x| x.0 == p).unwrap().1;
    let worst = f32_hits
        .iter()
        .map(|(p, s)| (s - score(&bf16_hits, p)).abs())
        .fold(0f64, f64::max);
    eprintln!("bf16 search: scores within {worst:.2e} of f32's");
    assert!(worst < 0.03, "{worst}");
    assert_eq!(bf16_hits[0].0, f32_hits[0].0, "the best match");
    assert!(
        worst > 0.0,
        "bf16 gave f32's scores exactly: the flag did nothing"
    );
    // each kind reuses its own index
    let again = search(&dir, &["--query", query, "--precision", "bf16"]);
    assert_eq!(stats(&again), (0, 6, 0));
    assert_eq!(stats(&search(&dir, &["--query", query])), (0, 6, 0));

    let c = clip_path();
    let img = fixture("clip_input.png");
    let classify = |extra: &[&str]| {
        let mut args = vec![
            "classify",
            "--clip",
            c.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
            "--labels",
            "a cat|a dog|a lighthouse|a car",
            img.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)[0].clone()
    };
    let (a, b) = (classify(&[]), classify(&["--precision", "bf16"]));
    assert_eq!(a["top"], b["top"]);
    eprintln!("bf16 classify: {b}\nf32: {a}");
    assert_eq!(
        exit_code_in_process(&["classify", "--precision", "f16", "--labels", "a", "x.png"]),
        2
    );
    std::fs::remove_dir_all(dir).unwrap();
}
