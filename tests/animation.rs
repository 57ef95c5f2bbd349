//! pixray's animation mode (`--animation-dir`), `--image-labels` and `--save-intermediates`, end
//! to end on the demo world and the tiny fixtures (CPU).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, fails, ok, tmp_dir, vqclip};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tch::{Device, Kind, Tensor};
use vqclip::generate::engine::{Generator, Models};
use vqclip::generate::{drawers, losses};
use vqclip::models::clip::Clip;
use vqclip::settings::PartialSettings;

/// The demo world's red, blue and white.
const COLOURS: [[u8; 3]; 3] = [[0xdc, 0x28, 0x28], [0x28, 0x50, 0xdc], [0xf0, 0xf0, 0xf0]];

/// Three flat pictures `dir/in/f0.png`.. in the demo world's colours.
fn inputs(dir: &Path) -> PathBuf {
    let d = dir.join("in");
    std::fs::create_dir_all(&d).unwrap();
    for (i, c) in COLOURS.iter().enumerate() {
        image::RgbImage::from_pixel(64, 64, image::Rgb(*c))
            .save(d.join(format!("f{i}.png")))
            .unwrap();
    }
    d
}

fn animate(dir: &Path, out: &Path, steps: &str, extra: &[&str]) -> Command {
    let mut c = vqclip();
    c.args([
        "generate",
        "a red circle on a blue background",
        "--preset",
        "demo",
        "--init-image",
    ])
    .arg(format!("{}/in/*.png", dir.display()))
    .args(["--animation-dir", "anim", "--seed", "1", "--quiet"])
    .args(["--steps", steps, "--save-every", "10", "--out"])
    .arg(out)
    .args(extra);
    c
}

fn mean_rgb(path: &Path) -> [f64; 3] {
    let img = common::pixels(path);
    let n = (img.width() * img.height()) as f64;
    let mut m = [0.0; 3];
    for p in img.pixels() {
        for c in 0..3 {
            m[c] += p[c] as f64 / n;
        }
    }
    m
}

/// The nearest of [`COLOURS`] to `rgb`.
fn nearest(rgb: [f64; 3]) -> usize {
    let d = |c: &[u8; 3]| (0..3).map(|k| (rgb[k] - c[k] as f64).powi(2)).sum::<f64>();
    (0..3)
        .min_by(|&a, &b| d(&COLOURS[a]).total_cmp(&d(&COLOURS[b])))
        .unwrap()
}

fn gif_frames(path: &Path) -> usize {
    use image::AnimationDecoder;
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    image::codecs::gif::GifDecoder::new(f)
        .unwrap()
        .into_frames()
        .count()
}

/// `--init-image 'dir/*.png'` over 3 pictures: 3 frames named after them and a 3-frame gif; frame
/// i starts from picture i; every frame logs its steps; stopped by Ctrl-C in the middle of a
/// round and resumed, every frame, the gif and the final image are the same bytes.
#[test]
fn animation_frames_start_from_their_inputs_and_resume_exactly() {
    let dir = tmp_dir("animation");
    inputs(&dir);
    // where each frame starts: one step from its picture (at --init-image-alpha 200)
    let start = dir.join("start");
    ok(&animate(&dir, &start, "1", &[]).output().unwrap());
    for i in 0..3 {
        let m = mean_rgb(&start.join(format!("anim/f{i}.png")));
        eprintln!("animation: frame {i} after 1 step {m:?}");
        assert_eq!(nearest(m), i, "frame {i} starts from f{i}.png: {m:?}");
    }
    let straight = dir.join("straight");
    ok(&animate(&dir, &straight, "20", &[]).output().unwrap());
    let anim = straight.join("anim");
    for name in ["f0.png", "f1.png", "f2.png", "anim.gif"] {
        assert!(anim.join(name).is_file(), "{name}");
    }
    assert_eq!(gif_frames(&anim.join("anim.gif")), 3);
    let info = vqclip().arg("info").arg(&straight).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        text.contains("# animation: 3 frames in") && text.contains("at steps 20, 20, 20"),
        "{text}"
    );
    let log = vqclip::rundir::RunDir::new(&straight).read_log();
    let order: Vec<(i64, i64)> = log.iter().map(|r| (r.frame.unwrap(), r.step)).collect();
    let mut want = Vec::new();
    for (from, to) in [(1, 10), (11, 20)] {
        for f in 0..3 {
            want.extend((from..=to).map(|s| (f, s)));
        }
    }
    assert_eq!(order, want, "frames take turns of --save-every steps");
    // the frames stay apart: the blend pastes half of the neighbour, the inputs pull their own way
    assert!(!common::same_file(
        &anim.join("f0.png"),
        &anim.join("f1.png")
    ));
    // Ctrl-C inside the third frame's turn of round 1, then --resume
    let part = dir.join("part");
    let child = animate(&dir, &part, "20", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let lines = || {
        std::fs::read_to_string(part.join("log.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    // 20 lines: the first two frames have flushed their turns, the third is running
    while lines() < 20 {
        assert!(t0.elapsed().as_secs() < 120, "the run did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    fails(&o, 130, "--resume");
    let meta = vqclip::generate::checkpoint::read_meta(&part.join("checkpoint")).unwrap();
    let at: Vec<i64> = meta.animation.unwrap().iter().map(|f| f.step).collect();
    eprintln!("animation: stopped with the frames at steps {at:?}");
    assert!(
        at.iter().any(|&s| s != at[0]) || at[0] % 10 != 0,
        "stopped mid-round: {at:?}"
    );
    ok(&common::resume(&part, &[]));
    for name in ["f0.png", "f1.png", "f2.png", "anim.gif"] {
        assert!(
            common::same_file(&anim.join(name), &part.join("anim").join(name)),
            "{name} after resume"
        );
    }
    assert!(common::same_file(
        &straight.join("final.png"),
        &part.join("final.png")
    ));
    assert_eq!(
        vqclip::rundir::RunDir::new(&part).read_log().len(),
        60,
        "each step logged once"
    );
    // a finished 10-step run continued to 20: the blend its end skipped comes first, as in the
    // straight run
    let short = dir.join("short");
    ok(&animate(&dir, &short, "10", &[]).output().unwrap());
    ok(&common::resume(&short, &["--steps", "20"]));
    for name in ["f0.png", "f1.png", "f2.png"] {
        assert!(
            common::same_file(&anim.join(name), &short.join("anim").join(name)),
            "{name} after --resume --steps 20"
        );
    }
    // frames are not overwritten: a second run into the same animation directory is refused
    let again = dir.join("again");
    let abs = anim.display().to_string();
    fails(
        &animate(&dir, &again, "1", &["--animation-dir", &abs])
            .output()
            .unwrap(),
        2,
        "exists and would be overwritten",
    );
}

fn run(dir: &Path, args: &[&str]) -> Output {
    vqclip()
        .args(["generate", "--clip", CLIP, "--vqgan", common::VQGAN])
        .args([
            "--steps",
            "2",
            "--size",
            "32x32",
            "--cutouts",
            "2",
            "--quiet",
        ])
        .arg("--out")
        .arg(dir.join("run"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn animation_refusals() {
    let dir = tmp_dir("animation-refusals");
    let ins = inputs(&dir);
    let glob = format!("{}/*.png", ins.display());
    let dup = dir.join("other");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::copy(ins.join("f0.png"), dup.join("f0.png")).unwrap();
    for (args, needle) in [
        (
            vec!["x", "--animation-dir", "a"],
            "one frame per input file",
        ),
        (vec!["x", "--animation-alpha", "20"], "add --animation-dir"),
        (vec!["x", "--init-image-alpha", "20"], "add --animation-dir"),
        (
            vec![
                "x",
                "--animation-dir",
                "a",
                "--init-image",
                &glob,
                "--animation-alpha",
                "256",
            ],
            "must be from 0 to 255",
        ),
        (
            vec![
                "x",
                "--animation-dir",
                "a",
                "--init-image",
                &glob,
                "--zoom-every",
                "5",
            ],
            "does not work with --animation-dir",
        ),
        (
            vec![
                "x",
                "--animation-dir",
                "a",
                "--init-image",
                &glob,
                "--video",
            ],
            "drop --video",
        ),
        (
            vec![
                "x",
                "--animation-dir",
                "a",
                "--drawer",
                "clipdraw",
                "--init-image",
                &glob,
            ],
            "cannot",
        ),
        (
            vec![
                "x",
                "--animation-dir",
                "a",
                "--image-prompt",
                ins.join("f0.png").to_str().unwrap(),
                "--image-prompt",
                dup.join("f0.png").to_str().unwrap(),
            ],
            "two frame inputs are named f0.png",
        ),
        (vec!["x", "--image-label-weight", "2"], "add it"),
    ] {
        fails(&run(&dir, &args), 2, needle);
    }
}

/// `--save-intermediates false`: no frames, the checkpoints still (a resume goes on).
#[test]
fn save_intermediates_false_keeps_checkpoints_only() {
    let dir = tmp_dir("save-intermediates");
    ok(&run(
        &dir,
        &["x", "--save-every", "1", "--save-intermediates", "false"],
    ));
    let run_dir = dir.join("run");
    let frames = std::fs::read_dir(run_dir.join("frames")).unwrap().count();
    assert_eq!(frames, 0);
    assert!(run_dir.join("checkpoint/meta.toml").is_file());
    assert!(run_dir.join("final.png").is_file());
    ok(&common::resume(&run_dir, &["--steps", "3"]));
}

/// `--image-labels`: the step's loss grows by W x the spherical distance between the flattened
/// parameters and the label images' parameters (each normalized along its last dimension,
/// averaged), computed here from the drawer's public pieces.
#[test]
fn image_label_pull_is_the_distance_to_the_labels_parameters() {
    let dir = tmp_dir("image-labels");
    let ins = inputs(&dir);
    let toml = |extra: &str| {
        format!(
            "drawer = \"fast_pixel\"\npixel-size = \"8x8\"\nsize = \"32x32\"\ncutouts = 2\naugments = \"none\"\n\
             cut-method = \"pooled\"\nclip = [\"{CLIP}\"]\nprecision = \"f32\"\ndevice = \"cpu\"\nsteps = 1\nseed = 4\nprompts = [\"a red apple\"]\n{extra}\n"
        )
    };
    let settings = |extra: &str| {
        PartialSettings::from_toml(&toml(extra), Path::new("t.toml"))
            .unwrap()
            .resolve()
            .unwrap()
    };
    let first_loss = |s: vqclip::settings::Settings| {
        let clip = Clip::load(Path::new(CLIP), Device::Cpu).unwrap();
        let models = Models {
            vqgan: None,
            vgg: None,
            resmem: None,
            head: None,
            clips: vec![clip],
            weights: Vec::new(),
        };
        let mut g = Generator::new(s, models, Device::Cpu).unwrap();
        g.step().unwrap();
        g.flush().unwrap().remove(0).loss
    };
    let glob = format!("{}/f[01].png", ins.display());
    let with = settings(&format!(
        "image-labels = \"{glob}\"\nimage-label-weight = 3\n"
    ));
    let plain = settings("");
    let drawer = drawers::build(&plain, None, Device::Cpu).unwrap();
    let z = drawer.params().detach();
    let rows: Vec<Tensor> = ["f0.png", "f1.png"]
        .iter()
        .map(|f| {
            let img = vqclip::image_io::load_rgb(&ins.join(f)).unwrap();
            let img = image::imageops::resize(&img, 32, 32, image::imageops::FilterType::Lanczos3);
            let p = drawer
                .params_for(&vqclip::image_io::rgb_to_tensor(&img))
                .unwrap()
                .to_kind(Kind::Float);
            &p / p.norm_scalaropt_dim(2.0, [-1], true)
        })
        .collect();
    let label = Tensor::stack(&rows, 0).mean_dim(0, false, Kind::Float);
    let d = losses::spherical_distance(&z.reshape([1, -1]), &label.reshape([1, -1]))
        .double_value(&[0, 0]);
    let (a, b) = (first_loss(with), first_loss(plain));
    eprintln!("image-labels: loss {a} - {b} = {} (want 3 x {d})", a - b);
    assert!(d > 0.01, "{d}");
    assert!(((a - b) - 3.0 * d).abs() < 1e-5, "{a} - {b} vs 3 x {d}");
}
