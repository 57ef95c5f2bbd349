//! Pixray's image controls: target images (and the others as they come), end to end on the tiny
//! fixtures (CPU).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, fails, log, ok, tmp_dir, vqclip};
use std::path::Path;
use tch::{Device, Kind, Tensor};
use vqclip::generate::drawers;
use vqclip::generate::engine::{Generator, Models};
use vqclip::generate::losses::spherical_distance;
use vqclip::models::clip::Clip;
use vqclip::models::clip::preprocess::preprocess_image;
use vqclip::settings::PartialSettings;

/// Two small pictures of their own, in `dir`.
fn pictures(dir: &Path) {
    let a = image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
    });
    let b = image::RgbImage::from_fn(30, 44, |x, y| image::Rgb([200, ((x + y) * 3) as u8, 20]));
    a.save(dir.join("t1.png")).unwrap();
    b.save(dir.join("t2.png")).unwrap();
}

fn unit(e: Tensor) -> Tensor {
    let e = e.to_kind(Kind::Float);
    &e / e.norm_scalaropt_dim(2.0, [-1], true)
}

/// The term is the weight x the spherical distance of the step's cutouts to the target's files,
/// each encoded once, whole, through CLIP's preprocessing: computed here from the start image
/// with the public pieces (CLIP, its preprocessing, the drawer) against the engine's logged term.
#[test]
fn target_image_term_is_the_distance_to_the_files_embeddings() {
    let dir = tmp_dir("target-term");
    pictures(&dir);
    let glob = format!("{}/t*.png", dir.display());
    let toml = format!(
        "drawer = \"fast_pixel\"\npixel-size = \"12x8\"\nsize = \"48x32\"\ncutouts = 4\naugments = \"none\"\n\
         cut-method = \"pooled\"\nclip = [\"{CLIP}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\nsteps = 1\nseed = 4\n\
         target-images = [\"{glob}:2\"]\n"
    );
    let s = PartialSettings::from_toml(&toml, Path::new("t.toml"))
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(s.target_images[0].weight, 2.0);
    let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
    let res = clip.input_resolution();
    let files: Vec<Tensor> = ["t1.png", "t2.png"]
        .iter()
        .map(|f| preprocess_image(&vqclip::image_io::load_rgb(&dir.join(f)).unwrap(), res))
        .collect();
    let target = unit(tch::no_grad(|| clip.encode_image(&Tensor::cat(&files, 0))));
    assert_eq!(target.size(), [2, clip.config().embed_dim]);
    let start = drawers::build(&s, None, Device::Cpu)
        .unwrap()
        .render()
        .clamp(0.0, 1.0);
    let cut = ((start.adaptive_avg_pool2d([res, res]) + start.adaptive_max_pool2d([res, res]).0)
        / 2.0)
        .expand([4, 3, res, res], false);
    let emb = unit(tch::no_grad(|| clip.encode_image(&Clip::normalize(&cut))));
    let want = spherical_distance(&emb, &target)
        .mean(Kind::Float)
        .double_value(&[])
        * 2.0;
    let models = Models {
        vqgan: None,
        clips: vec![clip],
        weights: Vec::new(),
    };
    let mut g = Generator::new(s, models, Device::Cpu).unwrap();
    g.step().unwrap();
    let rec = g.flush().unwrap().remove(0);
    eprintln!("target image term {} vs {want}", rec.target_images[0]);
    assert!(
        (rec.target_images[0] - want).abs() < 1e-6,
        "{} vs {want}",
        rec.target_images[0]
    );
    assert!((rec.loss - want).abs() < 1e-6, "the only term is the total");
    // one file alone is another target
    assert!(
        spherical_distance(&emb, &target.narrow(0, 0, 1))
            .mean(Kind::Float)
            .double_value(&[])
            * 2.0
            != want
    );
}

fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    vqclip()
        .args(["generate", "--drawer", "fast-pixel", "--clip", CLIP])
        .args([
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ])
        .args(["--seed", "3", "--steps", "3", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn target_images_in_runs_logs_and_errors() {
    let dir = tmp_dir("targets");
    pictures(&dir);
    let out = dir.join("run");
    let glob = format!("{}/t*.png:0.5", dir.display());
    ok(&run(&out, &["a red apple", "--target-image", &glob]));
    let l = log(&out);
    assert_eq!(l.len(), 3);
    assert!(
        l.iter()
            .all(|r| r["target_images"].as_array().unwrap().len() == 1)
    );
    let toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(toml.contains("target-images = ["), "{toml}");
    // the run repeats from its run.toml
    let again = dir.join("again");
    ok(&vqclip()
        .args(["generate", "--quiet", "--config"])
        .arg(out.join("run.toml"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap());
    assert!(common::same_file(
        &out.join("final.png"),
        &again.join("final.png")
    ));
    // a run without a text prompt
    ok(&run(&dir.join("alone"), &["--target-image", &glob]));
    // a glob that matches nothing, a missing file: exit 2 naming them
    let none = format!("{}/nothing*.png", dir.display());
    fails(
        &run(&dir.join("bad"), &["x", "--target-image", &none]),
        2,
        "the glob matches no file",
    );
    fails(
        &run(&dir.join("bad"), &["x", "--target-image", "missing.png:2"]),
        2,
        "--target-image missing.png: file not found",
    );
}
