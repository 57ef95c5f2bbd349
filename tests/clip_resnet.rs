//! CLIP's ResNet tower against clip-anytorch's model.py (tests/fixtures/clip_rn_tiny*, written by
//! tests/fixtures/make_resnet_fixtures.py): a small ResNet CLIP (stages 2,1,1,1, width 8, 64 px)
//! in OpenAI's fp16 TorchScript format, its open_clip-named state dict, the commands that take a
//! CLIP, and a generate loop against a torch reference loop.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{device, run, tmp_dir, tol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
use vqclip::generate::checkpoint::State;
use vqclip::generate::engine::{Generator, Models};
use vqclip::models::clip::Clip;
use vqclip::settings::PartialSettings;

const RN: &str = "tests/fixtures/clip_rn_tiny.pt";

/// The reference tensors, on the test device (`VQCLIP_TEST_DEVICE`).
fn reference(path: &Path) -> HashMap<String, Tensor> {
    let d = device();
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_device(d)))
        .collect()
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    let (a, b) = (&a.to_device(Device::Cpu), &b.to_device(Device::Cpu));
    let d = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[]);
    d / b.abs().max().double_value(&[]).max(1e-12)
}

/// Row-wise cosine similarity, the smallest.
fn min_cosine(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_device(Device::Cpu).to_kind(Kind::Double);
    let b = b.to_device(Device::Cpu).to_kind(Kind::Double);
    let cos = (&a * &b).sum_dim_intlist([1i64].as_slice(), false, None)
        / (a.norm_scalaropt_dim(2.0, [1], false) * b.norm_scalaropt_dim(2.0, [1], false));
    cos.min().double_value(&[])
}

/// Embeddings, logits and the intermediate maps of `clip` against the reference tensors.
fn check_against(clip: &Clip, r: &HashMap<String, Tensor>, what: &str) {
    let img = tch::no_grad(|| clip.encode_image(&r["pixels"]));
    let txt = tch::no_grad(|| clip.encode_text(&r["tokens"]));
    for (got, want, name) in [
        (&img, &r["image_embeds"], "image"),
        (&txt, &r["text_embeds"], "text"),
    ] {
        let c = min_cosine(got, want);
        eprintln!("{what}: {name} embeddings, smallest cosine {c:.7}");
        assert!(c >= 0.9999, "{what}: {name} embeddings cosine {c}");
    }
    let norm = |t: &Tensor| t / t.norm_scalaropt_dim(2.0, [-1], true);
    let logits = norm(&img).matmul(&norm(&txt).tr()) * clip.logit_scale().exp();
    let d = max_rel(&logits, &r["logits_per_image"]);
    eprintln!("{what}: logits, largest relative difference {d:.2e}");
    assert!(d < 1e-3, "{what}: logits differ by {d} (relative)");
    for (stage, name) in [(0, "stem_out"), (1, "layer1_out"), (4, "layer4_out")] {
        if let Some(want) = r.get(name) {
            let got = tch::no_grad(|| clip.resnet_features(&r["pixels"], stage).unwrap());
            let d = max_rel(&got, want);
            assert!(
                d < tol(1e-4, 1e-3),
                "{what}: {name} differs by {d} (relative)"
            );
        }
    }
}

#[test]
fn resnet_clip_matches_the_reference_in_both_formats() {
    let r = reference(Path::new("tests/fixtures/clip_rn_tiny_ref.safetensors"));
    let clip = Clip::load(Path::new(RN), device()).unwrap();
    let c = clip.config();
    assert_eq!(c.vision_resnet_layers, Some([2, 1, 1, 1]));
    assert_eq!(
        (
            c.vision_width,
            c.vision_heads,
            c.image_resolution,
            c.embed_dim
        ),
        (8, 4, 64, 32)
    );
    check_against(&clip, &r, "OpenAI .pt (fp16 as stored)");
    // open_clip's naming (OpenAI's keys under `module.`), as a safetensors state dict
    let (map, _) = vqclip::models::clip::load::read_clip_tensors(Path::new(RN)).unwrap();
    let dir = tmp_dir("openclip");
    let path = dir.join("rn_tiny_openclip.safetensors");
    let named: Vec<(String, Tensor)> = map
        .tensors
        .iter()
        .map(|(k, v)| (format!("module.{k}"), v.to_kind(Kind::Float)))
        .collect();
    Tensor::write_safetensors(&named, &path).unwrap();
    let clip = Clip::load(&path, Device::Cpu).unwrap();
    check_against(&clip, &r, "open_clip safetensors (f32)");
}

/// Full-size RN50 shapes, by hand (the file is too big to commit):
/// `.venv/bin/python tests/fixtures/make_resnet_fixtures.py --full-rn50 /tmp/rn50-full`, then
/// `VQCLIP_RN50_DIR=/tmp/rn50-full cargo test --release --test clip_resnet -- --ignored`.
#[test]
#[ignore]
fn full_size_rn50_matches_the_reference() {
    let dir = PathBuf::from(std::env::var("VQCLIP_RN50_DIR").expect("set VQCLIP_RN50_DIR"));
    let clip = Clip::load(&dir.join("RN50.pt"), Device::Cpu).unwrap();
    let c = clip.config();
    assert_eq!(c.vision_resnet_layers, Some([3, 4, 6, 3]));
    assert_eq!(
        (c.vision_width, c.image_resolution, c.embed_dim),
        (64, 224, 1024)
    );
    check_against(&clip, &reference(&dir.join("RN50_ref.safetensors")), "RN50");
}

#[test]
fn resnet_tower_in_a_generate_loop_matches_the_reference_loop() {
    let r = reference(Path::new("tests/fixtures/clip_rn_tiny_ref.safetensors"));
    let partial = PartialSettings::from_toml(
        &format!(
            "drawer = \"fast_pixel\"\npixel-size = \"12x8\"\nprompts = [\"a red square\"]\n\
             size = \"96x64\"\ncutouts = 4\naugments = \"none\"\ncut-method = \"pooled\"\n\
             clip = [\"{RN}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\nsteps = 4\nseed = 1\n"
        ),
        Path::new("test"),
    )
    .unwrap();
    let models = Models {
        vqgan: None,
        vgg: None,
        resmem: None,
        head: None,
        clips: vec![Clip::load(Path::new(RN), device()).unwrap()],
        weights: Vec::new(),
    };
    let mut g = Generator::new(partial.resolve().unwrap(), models, device()).unwrap();
    let start = &r["rn_loop_init"];
    let meta = g.state().meta;
    g.restore(State {
        meta,
        z: start.shallow_clone(),
        z0: start.copy(),
        m: start.zeros_like(),
        v: start.zeros_like(),
        vmax: None,
        frames: Vec::new(),
    })
    .unwrap();
    for _ in 0..4 {
        g.step().unwrap();
    }
    let got: Vec<f64> = g.flush().unwrap().iter().map(|s| s.loss).collect();
    let want: Vec<f64> = Vec::try_from(
        r["rn_loop_losses"]
            .to_device(Device::Cpu)
            .to_kind(Kind::Double),
    )
    .unwrap();
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        eprintln!("loop step {}: {a} vs reference {b}", i + 1);
        assert!(
            (a - b).abs() < tol(1e-4, 1e-3),
            "step {}: {a} vs {b}",
            i + 1
        );
    }
    assert!(want.windows(2).any(|w| w[0] != w[1]), "{want:?}");
    let d = max_rel(g.params(), &r["rn_loop_final"]);
    assert!(d < tol(1e-4, 1e-3), "cells after 4 steps differ by {d}");
}

#[test]
fn commands_take_a_resnet_clip_beside_a_vit() {
    // embed: the joint embedding size
    let out = run(&[
        "embed",
        "--text",
        "a red apple",
        "--image",
        "tests/fixtures/clip_input.png",
        "--clip",
        RN,
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for item in json.as_array().unwrap() {
        assert_eq!(item["embedding"].as_array().unwrap().len(), 32, "{item}");
    }
    // classify
    let out = run(&[
        "classify",
        "tests/fixtures/clip_input.png",
        "--labels",
        "cat,apple",
        "--clip",
        RN,
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // generate with a ViT (32 px) and the ResNet (64 px): one cutout batch per resolution
    let dir = tmp_dir("gen");
    let out = run(&[
        "generate",
        "a red apple",
        "--drawer",
        "fast_pixel",
        "--clip",
        &format!("tests/fixtures/clip_tiny.pt,{RN}"),
        "--size",
        "64x64",
        "--steps",
        "3",
        "--cutouts",
        "4",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    assert!(
        std::fs::read_to_string(dir.join("run.toml"))
            .unwrap()
            .contains("clip_rn_tiny.pt")
    );
}
