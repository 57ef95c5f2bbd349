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

/// Settings of a one-step fast-pixel run on the tiny CLIP, pooled views, no augments, plus `extra`.
fn one_step(extra: &str) -> vqclip::settings::Settings {
    let toml = format!(
        "drawer = \"fast_pixel\"\npixel-size = \"12x8\"\nsize = \"48x32\"\ncutouts = 4\naugments = \"none\"\n\
         cut-method = \"pooled\"\nclip = [\"{CLIP}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\nsteps = 1\nseed = 4\n{extra}\n"
    );
    PartialSettings::from_toml(&toml, Path::new("t.toml"))
        .unwrap()
        .resolve()
        .unwrap()
}

/// The normalized CLIP embeddings of the start image's 4 pooled views (what step 1 scores).
fn start_views(s: &vqclip::settings::Settings, clip: &Clip) -> Tensor {
    let res = clip.input_resolution();
    let start = drawers::build(s, None, Device::Cpu)
        .unwrap()
        .render()
        .clamp(0.0, 1.0);
    let cut = ((start.adaptive_avg_pool2d([res, res]) + start.adaptive_max_pool2d([res, res]).0)
        / 2.0)
        .expand([4, 3, res, res], false);
    unit(tch::no_grad(|| clip.encode_image(&Clip::normalize(&cut))))
}

/// The engine's log record of step 1.
fn first_step(s: vqclip::settings::Settings, clip: Clip) -> vqclip::rundir::StepRecord {
    first_step_with(s, clip, None)
}

fn first_step_with(
    s: vqclip::settings::Settings,
    clip: Clip,
    head: Option<(usize, vqclip::models::head::Head)>,
) -> vqclip::rundir::StepRecord {
    let models = Models {
        vqgan: None,
        vgg: None,
        resmem: None,
        head,
        clips: vec![clip],
        weights: Vec::new(),
    };
    let mut g = Generator::new(s, models, Device::Cpu).unwrap();
    g.step().unwrap();
    g.flush().unwrap().remove(0)
}

/// The term is the weight x the spherical distance of the step's cutouts to the target's files,
/// each encoded once, whole, through CLIP's preprocessing: computed here from the start image
/// with the public pieces (CLIP, its preprocessing, the drawer) against the engine's logged term.
#[test]
fn target_image_term_is_the_distance_to_the_files_embeddings() {
    let dir = tmp_dir("target-term");
    pictures(&dir);
    let glob = format!("{}/t*.png", dir.display());
    let s = one_step(&format!("target-images = [\"{glob}:2\"]"));
    assert_eq!(s.target_images[0].weight, 2.0);
    let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
    let res = clip.input_resolution();
    let files: Vec<Tensor> = ["t1.png", "t2.png"]
        .iter()
        .map(|f| preprocess_image(&vqclip::image_io::load_rgb(&dir.join(f)).unwrap(), res))
        .collect();
    let target = unit(tch::no_grad(|| clip.encode_image(&Tensor::cat(&files, 0))));
    assert_eq!(target.size(), [2, clip.config().embed_dim]);
    let emb = start_views(&s, &clip);
    let want = spherical_distance(&emb, &target)
        .mean(Kind::Float)
        .double_value(&[])
        * 2.0;
    let rec = first_step(s, clip);
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

/// Share of pixels of exactly `rgb` (the demo preset's palette snaps every pixel to its world's
/// colours) in the columns `cols` of `img`.
fn share(img: &image::RgbImage, cols: std::ops::Range<u32>, rgb: [u8; 3]) -> f64 {
    let mut n = 0;
    let mut hit = 0;
    for y in 0..img.height() {
        for x in cols.clone() {
            n += 1;
            hit += usize::from(img.get_pixel(x, y).0 == rgb);
        }
    }
    hit as f64 / n as f64
}

const RED: [u8; 3] = [0xdc, 0x28, 0x28];
const BLUE: [u8; 3] = [0x28, 0x50, 0xdc];

/// The demo world: the main prompt asks for blue, a spot prompt for red where the mask is black
/// (its left half). The spot's half comes out red and the other blue; --spot-off mirrors it.
#[test]
fn spot_prompts_paint_their_half_of_the_demo_world() {
    let dir = tmp_dir("spot");
    let mask = dir.join("left-black.png");
    image::RgbImage::from_fn(128, 128, |x, _| {
        if x < 64 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    })
    .save(&mask)
    .unwrap();
    for (flag, spot_half, other_half) in
        [("--spot", 0..64, 64..128), ("--spot-off", 64..128, 0..64)]
    {
        let out = dir.join(flag.trim_start_matches('-'));
        ok(&vqclip()
            .args([
                "generate",
                "a white square on a blue background",
                "--preset",
                "demo",
            ])
            .args([flag, "a white square on a red background:2", "--spot-file"])
            .arg(&mask)
            .args(["--seed", "1", "--steps", "60", "--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap());
        let img = common::pixels(&out.join("final.png"));
        let (red_in, blue_in) = (
            share(&img, spot_half.clone(), RED),
            share(&img, spot_half, BLUE),
        );
        let (red_out, blue_out) = (
            share(&img, other_half.clone(), RED),
            share(&img, other_half, BLUE),
        );
        eprintln!(
            "{flag}: spot half red {red_in:.2} blue {blue_in:.2}; other half red {red_out:.2} blue {blue_out:.2}"
        );
        assert!(
            red_in >= 0.15 && red_in > 5.0 * blue_in,
            "{flag}: {red_in} {blue_in}"
        );
        assert!(
            blue_out >= 0.4 && blue_out > 5.0 * red_out,
            "{flag}: {red_out} {blue_out}"
        );
        let key = if flag == "--spot" { "spot" } else { "spot_off" };
        assert!(
            log(&out)
                .iter()
                .all(|r| r[key].as_array().unwrap().len() == 1)
        );
    }
}

#[test]
fn spot_masks_that_cannot_work_are_refused() {
    let dir = tmp_dir("spot-bad");
    let white = dir.join("white.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([255, 255, 255]))
        .save(&white)
        .unwrap();
    let wide = dir.join("wide.png");
    image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([if x < 20 { 0 } else { 255 }; 3]))
        .save(&wide)
        .unwrap();
    let text = dir.join("mask.png");
    std::fs::write(&text, "not an image").unwrap();
    let spot = |file: &Path| {
        vec![
            "x".to_string(),
            "--spot".into(),
            "a red square".into(),
            "--spot-file".into(),
            file.display().to_string(),
        ]
    };
    let args = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{1}")
    };
    for (a, needle) in [
        (spot(&white), "the mask is all white"),
        (spot(&wide), "another aspect ratio than the image"),
        (spot(&text), "--spot-file"),
        (
            vec![
                "x".into(),
                "--spot-file".into(),
                white.display().to_string(),
            ],
            "add one of them",
        ),
    ] {
        let joined = args(&a);
        let list: Vec<&str> = joined.split('\u{1}').collect();
        fails(&run(&dir.join("out"), &list), 2, needle);
    }
    // without a file, pixray's disc: a run with spot and spot-off prompts works and logs both
    let out = dir.join("disc");
    ok(&run(
        &out,
        &[
            "x",
            "--spot",
            "a red square",
            "--spot-off",
            "a blue sky:0.5",
        ],
    ));
    let l = log(&out);
    assert_eq!(l[0]["spot"].as_array().unwrap().len(), 1);
    assert_eq!(l[0]["spot_off"].as_array().unwrap().len(), 1);
}

/// Share of pixels near `rgb` (within 40 per channel).
fn near(img: &image::RgbImage, rgb: [u8; 3]) -> f64 {
    let hit = img
        .pixels()
        .filter(|p| (0..3).all(|c| (p[c] as i32 - rgb[c] as i32).abs() <= 40))
        .count();
    hit as f64 / img.pixels().len() as f64
}

/// An opaque green overlay every 10 steps until step 30: those frames are green, and the run
/// then follows its prompt again; stopped between overlays and resumed, it ends on the same bytes.
#[test]
fn overlays_paste_then_the_prompt_takes_over_and_resume_is_exact() {
    let dir = tmp_dir("overlay");
    let green = dir.join("green.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([40, 170, 60]))
        .save(&green)
        .unwrap();
    let go = |out: &Path, steps: &str| {
        vqclip()
            .args([
                "generate",
                "a red circle on a blue background",
                "--preset",
                "demo",
            ])
            .arg("--overlay-image")
            .arg(&green)
            .args([
                "--overlay-every",
                "10",
                "--overlay-until",
                "30i",
                "--save-every",
                "10",
            ])
            .args(["--seed", "1", "--quiet", "--steps", steps, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let straight = dir.join("straight");
    ok(&go(&straight, "50"));
    let world_green = [0x28, 0xaa, 0x3c];
    for step in [10, 20, 30] {
        let img = common::pixels(&straight.join(format!("frames/{step:06}.png")));
        let g = near(&img, world_green);
        eprintln!("overlay: frame {step} green {g:.2}");
        assert!(g > 0.9, "frame {step}: green {g}");
    }
    let end = common::pixels(&straight.join("final.png"));
    let (g, blue, red) = (near(&end, world_green), near(&end, BLUE), near(&end, RED));
    eprintln!("overlay: final green {g:.2} blue {blue:.2} red {red:.2}");
    assert!(g < 0.05 && blue > 0.15 && red > 0.05, "{g} {blue} {red}");
    // stopped at 25 (between overlays) and resumed to 50
    let part = dir.join("part");
    ok(&go(&part, "25"));
    ok(&common::resume(&part, &["--steps", "50"]));
    assert!(common::same_file(
        &straight.join("final.png"),
        &part.join("final.png")
    ));
    // refusals
    let none = format!("{}/nothing*.png", dir.display());
    for (args, needle) in [
        (
            vec!["x", "--overlay-image", none.as_str()],
            "the glob matches no file",
        ),
        (vec!["x", "--overlay-alpha", "128"], "add it"),
        (
            vec![
                "x",
                "--overlay-image",
                green.to_str().unwrap(),
                "--overlay-alpha",
                "300",
            ],
            "must be from 0 to 255",
        ),
        (
            vec![
                "x",
                "--overlay-image",
                green.to_str().unwrap(),
                "--overlay-every",
                "1 week",
            ],
            "--overlay-every: invalid value '1 week'",
        ),
    ] {
        fails(&run(&dir.join("bad"), &args), 2, needle);
    }
    let o = vqclip()
        .args([
            "generate",
            "x",
            "--drawer",
            "clipdraw",
            "--clip",
            CLIP,
            "--overlay-image",
        ])
        .arg(&green)
        .output()
        .unwrap();
    fails(&o, 2, "cannot take a picture back into its strokes");
}

/// pixray's three init pulls: --init-weight-dist is --init-weight (the same run), --init-weight-cos
/// is 1 - cosine of the flattened parameters, --init-weight-pix pulls the picture to the init image.
#[test]
fn pixrays_init_weights() {
    let z = Tensor::from_slice(&[1f32, 2.0, 2.0]);
    let z0 = Tensor::from_slice(&[2f32, 1.0, 2.0]);
    let c = vqclip::generate::losses::init_cos_loss(&z, &z0).double_value(&[]);
    assert!((c - (1.0 - 8.0 / 9.0)).abs() < 1e-6, "{c}");
    let dir = tmp_dir("init-weights");
    let init = dir.join("init.png");
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 128])
    })
    .save(&init)
    .unwrap();
    let go = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "a red apple",
            "--init-image",
            init.to_str().unwrap(),
            "--lr",
            "0.3",
        ];
        args.extend_from_slice(extra);
        ok(&run(&out, &args));
        common::pixels(&out.join("final.png"))
    };
    let a = go("w", &["--init-weight", "2"]);
    let b = go("dist", &["--init-weight-dist", "2"]);
    assert_eq!(a, b, "--init-weight-dist is --init-weight");
    let l1 = |img: &image::RgbImage| {
        let want = image::open(&init).unwrap().to_rgb8();
        img.pixels()
            .zip(want.pixels())
            .map(|(p, q)| {
                (0..3)
                    .map(|c| (p[c] as f64 - q[c] as f64).abs())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (img.pixels().len() * 3) as f64
    };
    let free = go("free", &[]);
    let pix = go("pix", &["--init-weight-pix", "50"]);
    let cos = go("cos", &["--init-weight-cos", "50"]);
    eprintln!(
        "init pulls: L1 to the init image without {:.2}, pix {:.2}; cos run differs: {}",
        l1(&free),
        l1(&pix),
        cos != free
    );
    assert!(l1(&pix) < l1(&free), "{} {}", l1(&pix), l1(&free));
    assert!(cos != free);
    fails(
        &run(&dir.join("bad"), &["x", "--init-weight-pix", "1"]),
        2,
        "add one",
    );
}

/// pixray's --image-prompt-shuffle: the image prompt's cutouts get draws of their own. With
/// augments that changes the run; with pooled views and no augments (no draws) it cannot.
#[test]
fn image_prompt_shuffle_draws_the_prompts_own_cutouts() {
    let dir = tmp_dir("shuffle");
    let ip = common::fixture("clip_input.png");
    let go = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec!["a red apple", "--image-prompt", ip.to_str().unwrap()];
        args.extend_from_slice(extra);
        ok(&run(&out, &args));
        common::pixels(&out.join("final.png"))
    };
    let shared = go("shared", &[]);
    let shuffled = go("shuffled", &["--image-prompt-shuffle"]);
    assert!(shared != shuffled, "shuffled draws change an augmented run");
    let flat = ["--augments", "none", "--cut-method", "pooled"];
    let a = go("flat", &flat);
    let mut with = flat.to_vec();
    with.push("--image-prompt-shuffle");
    assert_eq!(
        a,
        go("flat-shuffled", &with),
        "no draws, nothing to shuffle"
    );
}

/// pixray's --labels: the text in its 7 ImageNet templates, embeddings normalized, averaged and
/// normalized again; the term is the spherical distance to that, checked from the start image.
#[test]
fn label_term_is_the_distance_to_the_template_ensemble() {
    use vqclip::clip_tasks::templates::{IMAGENET_SELECTED, fill};
    let s = one_step("labels = [\"goldfish:1.5\"]");
    let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
    let texts: Vec<String> = IMAGENET_SELECTED
        .iter()
        .map(|t| fill(t, "goldfish"))
        .collect();
    assert_eq!(texts[0], "itap of a goldfish.");
    let (tokens, _) = vqclip::tokenizer::Tokenizer::new()
        .unwrap()
        .tokenize_batch(&texts)
        .unwrap();
    let e = unit(tch::no_grad(|| clip.encode_text(&tokens))).mean_dim(0, true, Kind::Float);
    let target = unit(e);
    let emb = start_views(&s, &clip);
    let want = spherical_distance(&emb, &target)
        .mean(Kind::Float)
        .double_value(&[])
        * 1.5;
    let rec = first_step(s, clip);
    eprintln!("label term {} vs {want}", rec.labels[0]);
    assert!(
        (rec.labels[0] - want).abs() < 1e-6,
        "{} vs {want}",
        rec.labels[0]
    );
    // a run with only a label, logged and recorded
    let dir = tmp_dir("labels");
    let out = dir.join("run");
    ok(&run(
        &out,
        &["--label", "goldfish", "--label", "tabby cat:-0.5"],
    ));
    assert!(
        log(&out)
            .iter()
            .all(|r| r["labels"].as_array().unwrap().len() == 2)
    );
    let toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(toml.contains("labels = ["), "{toml}");
}

/// `--vector-prompt FILE.json:W`: the term is 0.1 x W x the spherical distance of the step's
/// cutouts to the table's row for the run's CLIP (keyed by its --clip name); a table without the
/// model is a warning and no term; a row of the wrong length is refused.
#[test]
fn vector_prompt_term_is_a_tenth_of_a_prompt_toward_the_vector() {
    let dir = tmp_dir("vector-prompts");
    let dim = Clip::load(Path::new(CLIP), Device::Cpu)
        .unwrap()
        .config()
        .embed_dim;
    let row: Vec<f32> = (0..dim).map(|i| ((i * 7 % 5) as f32 - 2.0) / 3.0).collect();
    let table = dir.join("v.json");
    std::fs::write(
        &table,
        serde_json::json!({ CLIP: row, "ViT-B/32": [1.0] }).to_string(),
    )
    .unwrap();
    let s = one_step(&format!("vector-prompts = [\"{}:2\"]", table.display()));
    assert_eq!(s.vector_prompts[0].weight, 2.0);
    let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
    let emb = start_views(&s, &clip);
    let target = Tensor::from_slice(&row).view([1, dim]);
    let want = spherical_distance(&emb, &target)
        .mean(Kind::Float)
        .double_value(&[])
        * 0.2;
    let rec = first_step(s, clip);
    eprintln!("vector term {} vs {want}", rec.vector_prompts[0]);
    assert!((rec.vector_prompts[0] - want).abs() < 1e-6);
    // a table without this model: a warning, the term stays 0
    let other = dir.join("other.json");
    std::fs::write(&other, "{\"ViT-L/14\": [0.5, 0.5]}").unwrap();
    let out = dir.join("warned");
    let o = vqclip()
        .args([
            "generate",
            "a red apple",
            "--drawer",
            "fast-pixel",
            "--clip",
            CLIP,
        ])
        .args(["--size", "32x32", "--cutouts", "2", "--steps", "2", "--out"])
        .arg(&out)
        .arg("--vector-prompt")
        .arg(&other)
        .output()
        .unwrap();
    let err = ok(&o);
    assert!(err.contains("has no vector for CLIP model"), "{err}");
    assert!(log(&out).iter().all(|r| r["vector_prompts"][0] == 0.0));
    // a row of another length
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::json!({ CLIP: [1.0, 2.0] }).to_string()).unwrap();
    fails(
        &run(
            &dir.join("bad-run"),
            &["x", "--vector-prompt", bad.to_str().unwrap()],
        ),
        2,
        "numbers, the model's embeddings",
    );
}

/// `--loss aesthetic:W`: pixray's AestheticLoss, W x 0.02 x the mean squared distance of the
/// head's ratings of the step's normalized cutout embeddings to --aesthetic-target, logged in the
/// loss's `extra` place; the registry's head needs its CLIP (ViT-B/16) in the run.
#[test]
fn aesthetic_term_is_pixrays_rating_loss() {
    use vqclip::models::head::Head;
    let head_file = common::fixture("aesthetic_tiny.pth");
    let s = one_step(&format!(
        "prompts = [\"a red apple\"]\nloss = [\"tv:0\", \"aesthetic:2\"]\naesthetic-model = \"{}\"\naesthetic-target = 7.0",
        head_file.display()
    ));
    let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
    let emb = start_views(&s, &clip);
    let head = Head::load(&head_file, Device::Cpu).unwrap();
    assert_eq!(head.dim(), 32);
    let want = (head.rate(&emb) - 7.0)
        .square()
        .mean(Kind::Float)
        .double_value(&[])
        * 0.02
        * 2.0;
    let rec = first_step_with(s, clip, Some((0, head)));
    eprintln!("aesthetic term {} vs {want}", rec.extra[1]);
    assert!(
        want > 0.01 && (rec.extra[1] - want).abs() < 1e-6,
        "{} vs {want}",
        rec.extra[1]
    );
    // a run: the file head reads the tiny CLIP's embeddings; the registry's needs ViT-B/16
    let dir = tmp_dir("aesthetic");
    let out = dir.join("run");
    ok(&run(
        &out,
        &[
            "a red apple",
            "--loss",
            "aesthetic",
            "--aesthetic-model",
            head_file.to_str().unwrap(),
        ],
    ));
    assert!(
        log(&out)
            .iter()
            .all(|r| r["extra"][0].as_f64().unwrap() > 0.0)
    );
    fails(
        &run(&dir.join("no-b16"), &["x", "--loss", "aesthetic"]),
        2,
        "rates ViT-B/16 image embeddings",
    );
    fails(
        &run(&dir.join("no-loss"), &["x", "--aesthetic-target", "5"]),
        2,
        "applies to --loss aesthetic",
    );
}
