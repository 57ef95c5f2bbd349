//! OpenAI CLIP against the Python reference (`tests/fixtures/clip_tiny_*`, made by
//! `make_fixtures.py` with openai/CLIP and transformers): every file format, shape inference,
//! zero-shot probabilities, preprocessing, gradients, and `vqclip embed`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{device, fixture, tmp_dir, tol};
use std::path::Path;
use tch::{Device, Kind, Tensor};
use vqclip::models::clip::{Clip, ClipFormat, preprocess_image, resolve_clip};

/// The reference tensors, on the test device (`VQCLIP_TEST_DEVICE`).
fn reference() -> std::collections::HashMap<String, Tensor> {
    let d = device();
    Tensor::read_safetensors(fixture("clip_tiny_ref.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_device(d)))
        .collect()
}

const FORMATS: [(&str, ClipFormat); 3] = [
    ("clip_tiny.pt", ClipFormat::OpenAi),
    ("clip_tiny_openclip.safetensors", ClipFormat::OpenAi),
    ("clip_tiny_hf.safetensors", ClipFormat::HuggingFace),
];

/// (min cosine over rows, max abs difference).
fn compare(a: &Tensor, b: &Tensor) -> (f64, f64) {
    assert_eq!(a.size(), b.size());
    let (a, b) = (&a.to_device(Device::Cpu), &b.to_device(Device::Cpu));
    let cos = Tensor::cosine_similarity(a, b, 1, 1e-12)
        .min()
        .double_value(&[]);
    let diff = (a - b).abs().max().double_value(&[]);
    (cos, diff)
}

fn zero_shot(image_emb: &Tensor, text_emb: &Tensor, logit_scale: f64) -> Tensor {
    let i = image_emb / image_emb.norm_scalaropt_dim(2, [-1], true);
    let t = text_emb / text_emb.norm_scalaropt_dim(2, [-1], true);
    (i.matmul(&t.tr()) * logit_scale.exp()).softmax(-1, Kind::Float)
}

#[test]
fn shapes_give_the_tiny_config() {
    for (file, format) in FORMATS {
        let clip = Clip::load(&fixture(file), Device::Cpu).unwrap();
        let c = clip.config();
        assert_eq!(clip.format(), format, "{file}");
        assert_eq!(
            (
                c.embed_dim,
                c.image_resolution,
                c.vision_layers,
                c.vision_width,
                c.vision_patch_size,
                c.vision_heads
            ),
            (32, 32, 2, 64, 8, 1),
            "{file}"
        );
        assert_eq!(
            (
                c.context_length,
                c.vocab_size,
                c.transformer_width,
                c.transformer_heads,
                c.transformer_layers
            ),
            (77, 49408, 64, 1, 2),
            "{file}"
        );
        assert_eq!(clip.input_resolution(), 32);
        assert_eq!(clip.logit_scale(), 2.66015625, "{file}");
        assert_eq!(clip.kind(), Kind::Float);
    }
}

#[test]
fn every_format_matches_the_reference_embeddings() {
    let r = reference();
    for (file, _) in FORMATS {
        let clip = Clip::load(&fixture(file), device()).unwrap();
        let (text, image) = tch::no_grad(|| {
            (
                clip.try_encode_text(&r["text_tokens"]).unwrap(),
                clip.try_encode_image(&r["image_pixels"]).unwrap(),
            )
        });
        let (tc, td) = compare(&text, &r["text_emb"]);
        let (ic, id) = compare(&image, &r["image_emb"]);
        eprintln!(
            "{file}: text min cos {tc:.8} max abs {td:.2e}; image min cos {ic:.8} max abs {id:.2e}"
        );
        assert!(tc >= 0.99999 && ic >= 0.99999, "{file}: cosines {tc} {ic}");
        let bar = tol(1e-4, 1e-3);
        assert!(td < bar && id < bar, "{file}: max abs diffs {td:e} {id:e}");
    }
}

#[test]
fn zero_shot_probabilities_match() {
    let r = reference();
    let clip = Clip::load(&fixture("clip_tiny_openclip.safetensors"), device()).unwrap();
    let probs = tch::no_grad(|| {
        zero_shot(
            &clip.encode_image(&r["image_pixels"]),
            &clip.encode_text(&r["text_tokens"]),
            clip.logit_scale(),
        )
    });
    assert_eq!(r["logit_scale"].double_value(&[]), clip.logit_scale());
    let diff = compare(&probs, &r["probs"]).1;
    eprintln!("zero-shot probs max abs diff {diff:.2e}");
    assert!(diff < tol(1e-4, 1e-3), "{diff}");
}

#[test]
fn the_tokenizer_gives_the_reference_tokens() {
    let r = reference();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("fixtures.json")).unwrap()).unwrap();
    let prompts: Vec<String> = json["clip_tiny"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let tok = vqclip::tokenizer::Tokenizer::new().unwrap();
    let (tokens, _) = tok.tokenize_batch(&prompts).unwrap();
    assert!(tokens.equal(&r["text_tokens"]));
}

#[test]
fn preprocessing_matches_torchvision() {
    let r = reference();
    let img = vqclip::image_io::load_rgb(&fixture("clip_input.png")).unwrap();
    assert_eq!(img.dimensions(), (40, 56));
    let pixels = preprocess_image(&img, 32);
    assert_eq!(pixels.size(), [1, 3, 32, 32]);
    let diff = (&pixels - &r["embed_png_pixels"])
        .abs()
        .max()
        .double_value(&[]);
    eprintln!("preprocess max abs diff {diff:.2e} (normalized units)");
    // PIL's resampler is ported byte for byte, so only float rounding remains
    assert!(diff < 1e-5, "{diff}");
    let clip = Clip::load(&fixture("clip_tiny_openclip.safetensors"), Device::Cpu).unwrap();
    let emb = tch::no_grad(|| clip.encode_image(&pixels));
    let (cos, d) = compare(&emb, &r["embed_png_emb"]);
    eprintln!("png embedding cos {cos:.8} max abs {d:.2e}");
    assert!(cos >= 0.99999, "{cos}");
}

#[test]
fn normalize_uses_clip_mean_and_std() {
    let ones = Tensor::ones([2, 3, 4, 4], (Kind::Float, Device::Cpu));
    let n = Clip::normalize(&ones);
    let expect = (1.0 - 0.48145466) / 0.26862954;
    assert!((n.double_value(&[1, 0, 2, 3]) - expect).abs() < 1e-6);
    let single = Clip::normalize(&Tensor::zeros([3, 2, 2], (Kind::Float, Device::Cpu)));
    assert_eq!(single.size(), [3, 2, 2]);
    assert!((single.double_value(&[2, 0, 0]) + 0.40821073 / 0.27577711).abs() < 1e-6);
}

#[test]
fn gradients_reach_the_pixels_but_not_the_parameters() {
    let r = reference();
    let clip = Clip::load(&fixture("clip_tiny_openclip.safetensors"), Device::Cpu).unwrap();
    let pixels = r["image_pixels"].copy().set_requires_grad(true);
    let emb = clip.encode_image(&pixels);
    emb.pow_tensor_scalar(2).sum(Kind::Float).backward();
    let grad = pixels.grad();
    assert!(grad.defined());
    assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    let vars = clip.var_store().variables();
    // the 62 state-dict tensors except logit_scale, which is read as a number
    assert_eq!(vars.len(), 61);
    for (name, v) in vars {
        assert!(!v.requires_grad(), "{name} requires grad");
        assert!(!v.grad().defined(), "{name} has a gradient");
    }
}

#[test]
fn bfloat16_weights_stay_close() {
    let r = reference();
    let mut clip = Clip::load(&fixture("clip_tiny_openclip.safetensors"), Device::Cpu).unwrap();
    clip.to_kind(Kind::BFloat16);
    let (text, image) = tch::no_grad(|| {
        (
            clip.encode_text(&r["text_tokens"]),
            clip.encode_image(&r["image_pixels"]),
        )
    });
    assert_eq!(text.kind(), Kind::Float);
    let (tc, _) = compare(&text, &r["text_emb"]);
    let (ic, _) = compare(&image, &r["image_emb"]);
    eprintln!("bf16: text min cos {tc:.5}, image min cos {ic:.5}");
    assert!(tc > 0.99 && ic > 0.99, "{tc} {ic}");
}

#[test]
fn bad_inputs_are_errors() {
    let clip = Clip::load(&fixture("clip_tiny_openclip.safetensors"), Device::Cpu).unwrap();
    let wrong_res = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    assert!(
        clip.try_encode_image(&wrong_res)
            .unwrap_err()
            .to_string()
            .contains("[n, 3, 32, 32]")
    );
    let too_long = Tensor::zeros([1, 78], (Kind::Int64, Device::Cpu));
    assert!(clip.try_encode_text(&too_long).is_err());
    let bad_id = Tensor::from_slice(&[49408i64]).view([1, 1]);
    assert!(
        clip.try_encode_text(&bad_id)
            .unwrap_err()
            .to_string()
            .contains("0..49408")
    );
}

#[test]
fn files_that_are_not_clip_say_what_they_are() {
    let err = Clip::load(&fixture("vqgan_tiny.safetensors"), Device::Cpu).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("is not a CLIP model")
            && msg.contains("decoder.")
            && msg.contains("looks like a VQGAN"),
        "{msg}"
    );
    let msg = format!(
        "{:#}",
        Clip::load(&fixture("not_a_model.png"), Device::Cpu).unwrap_err()
    );
    assert!(msg.contains("PNG"), "{msg}");
    // A download cut short (the first 60% of a real checkpoint).
    let full = std::fs::read(fixture("clip_tiny.pt")).unwrap();
    let trunc = tmp_dir("trunc").join("truncated.pt");
    std::fs::write(&trunc, &full[..full.len() * 6 / 10]).unwrap();
    let msg = format!("{:#}", Clip::load(&trunc, Device::Cpu).unwrap_err());
    assert!(
        msg.contains("truncated.pt") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn a_broken_resnet_clip_says_what_is_wrong() {
    let dir = tmp_dir("resnet");
    let path = dir.join("rn50.safetensors");
    let t = Tensor::zeros([4], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(
        &[
            ("visual.layer1.0.conv1.weight", &t),
            ("visual.conv1.weight", &t),
        ],
        &path,
    )
    .unwrap();
    let msg = format!("{:#}", Clip::load(&path, Device::Cpu).unwrap_err());
    assert!(
        msg.contains("visual.layer1.0.conv1.weight has shape [4], expected 4 dimensions"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prefixed_state_dicts_load() {
    let dir = tmp_dir("prefix");
    let path = dir.join("prefixed.safetensors");
    let src: Vec<(String, Tensor)> =
        Tensor::read_safetensors(fixture("clip_tiny_openclip.safetensors")).unwrap();
    let renamed: Vec<(String, &Tensor)> = src
        .iter()
        .map(|(k, v)| (format!("module.{k}"), v))
        .collect();
    Tensor::write_safetensors(&renamed, &path).unwrap();
    let clip = Clip::load(&path, Device::Cpu).unwrap();
    assert_eq!(clip.config().embed_dim, 32);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn known_names_and_paths_resolve() {
    let path = fixture("clip_tiny.pt");
    assert_eq!(resolve_clip(path.to_str().unwrap()).unwrap(), path);
    let err = resolve_clip("no-such-model").unwrap_err();
    assert_eq!(vqclip::error::exit_code(&err), 2);
    assert!(err.to_string().contains("ViT-B/32"), "{err}");
    let err = resolve_clip("missing/dir/model.safetensors").unwrap_err();
    assert_eq!(vqclip::error::exit_code(&err), 1);
    // A known ResNet that is not downloaded: the usual runtime error with the fetch command.
    let err = resolve_clip("RN50").unwrap_err();
    assert_eq!(vqclip::error::exit_code(&err), 1);
    assert!(
        format!("{err:#}").contains("vqclip weights fetch RN50"),
        "{err:#}"
    );
}

/// Runs the binary, with `VQCLIP_WEIGHTS` set to `weights_dir` when given.
fn run_weights(args: &[&str], weights_dir: Option<&Path>) -> std::process::Output {
    let mut cmd = common::vqclip();
    cmd.args(args);
    if let Some(dir) = weights_dir {
        cmd.env("VQCLIP_WEIGHTS", dir);
    }
    cmd.output().unwrap()
}

#[test]
fn embed_json_gives_the_reference_embeddings() {
    let r = reference();
    let clip = fixture("clip_tiny_openclip.safetensors");
    let png = fixture("clip_input.png");
    let out = run_weights(
        &[
            "embed",
            "--image",
            png.to_str().unwrap(),
            "--text",
            "a photo of a cat",
            "--text",
            "a red apple on a wooden table",
            "--clip",
            clip.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let expected = [
        ("text", "a photo of a cat", r["text_emb"].get(0)),
        (
            "text",
            "a red apple on a wooden table",
            r["text_emb"].get(1),
        ),
        ("image", png.to_str().unwrap(), r["embed_png_emb"].get(0)),
    ];
    for (item, (kind, input, emb)) in items.iter().zip(expected) {
        assert_eq!(item["kind"], kind);
        assert_eq!(item["input"], input);
        let got: Vec<f32> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let (cos, diff) = compare(&Tensor::from_slice(&got).unsqueeze(0), &emb.unsqueeze(0));
        assert!(
            cos >= 0.99999 && diff < 1e-4,
            "{kind} {input}: cos {cos}, diff {diff}"
        );
    }
}

#[test]
fn embed_prints_a_table_without_json() {
    let clip = fixture("clip_tiny_hf.safetensors");
    let out = run_weights(
        &[
            "embed",
            "--text",
            "a photo of a cat",
            "--clip",
            clip.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a photo of a cat") && stdout.contains("32"),
        "{stdout}"
    );
}

#[test]
fn embed_errors_have_the_right_exit_codes() {
    let vqgan = fixture("vqgan_tiny.safetensors");
    let out = run_weights(
        &[
            "embed",
            "--text",
            "x",
            "--clip",
            vqgan.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a CLIP model: it has keys like decoder."),
        "{stderr}"
    );
    assert!(stderr.contains("looks like a VQGAN"), "{stderr}");

    let out = run_weights(&["embed", "--clip", "ViT-B/32", "--device", "cpu"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no inputs: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run_weights(
        &[
            "embed", "--text", "x", "--clip", "ViT-B/99", "--device", "cpu",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ViT-L/14@336px"), "{stderr}");

    let empty = tmp_dir("weights");
    let out = run_weights(
        &[
            "embed", "--text", "x", "--clip", "ViT-B/32", "--device", "cpu",
        ],
        Some(&empty),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&empty.join("ViT-B-32.pt").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("vqclip weights fetch ViT-B/32"), "{stderr}");
    std::fs::remove_dir_all(empty).unwrap();
}
