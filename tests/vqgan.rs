//! The tch VQGAN against reference outputs of taming-transformers (tests/fixtures/make_fixtures.py):
//! tiny VQModel (f=4, 64 codes) and tiny GumbelVQ (f=8), plus the `reconstruct` command.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{device, fixture, tmp_dir, tol, vqclip};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
use vqclip::models::vqgan::{QuantizerKind, Vqgan, VqganConfig};
use vqclip::weights::load_tensors;

const FIX: &str = "tests/fixtures";
/// The parity bar: 1e-4 on the CPU, 1e-3 on CUDA (`VQCLIP_TEST_DEVICE`).
#[allow(non_snake_case)]
fn TOL() -> f64 {
    tol(1e-4, 1e-3)
}

/// The reference tensors, on the test device.
fn reference(name: &str) -> HashMap<String, Tensor> {
    let d = device();
    Tensor::read_safetensors(fixture(name))
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_device(d)))
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Double);
    (cpu(a) - cpu(b)).abs().max().double_value(&[])
}

fn tiny() -> Vqgan {
    Vqgan::load(&fixture("vqgan_tiny.safetensors"), device()).unwrap()
}

/// Encode, quantize, decode and the 8-bit reconstruction of the reference input, and a decode of
/// random codes, all against taming's outputs.
fn check_tiny_vq(vq: &Vqgan) {
    let r = reference("vqgan_tiny_ref.safetensors");
    let _guard = tch::no_grad_guard();
    let z = vq.encode(&r["input"]).unwrap();
    let dz = max_diff(&z, &r["z"]);
    assert!(dz <= TOL(), "encode z max diff {dz}");

    let (z_q, indices) = vq.quantize(&z);
    assert_eq!(indices.kind(), Kind::Int64);
    assert!(
        indices.equal(&r["indices"]),
        "indices differ from the reference"
    );
    let (z_q_ref_in, idx_ref_in) = vq.quantize(&r["z"]);
    assert!(idx_ref_in.equal(&r["indices"]));
    let dq = max_diff(&z_q, &r["z_q"]).max(max_diff(&z_q_ref_in, &r["z_q"]));
    assert!(dq <= TOL(), "z_q max diff {dq}");

    let dec = vq.decode(&z_q);
    let dd = max_diff(&dec, &r["dec"]);
    assert!(dd <= TOL(), "decode max diff {dd}");
    let u8 = (((dec + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round();
    let du = max_diff(&u8, &r["recon_u8"]);
    assert!(du <= 1.0, "reconstruction differs by {du} levels");

    let rnd = r["random_indices"].reshape([-1]);
    let zq_rnd = vq.codebook_entry(&rnd, [1, 8, 12]).unwrap();
    let dr = max_diff(&vq.decode(&zq_rnd), &r["dec_random_zq"]);
    assert!(dr <= TOL(), "decode of random codes max diff {dr}");
}

#[test]
fn tiny_vqgan_matches_taming_from_safetensors() {
    let vq = tiny();
    assert_eq!(vq.downsample_factor(), 4);
    assert_eq!(vq.embed_dim(), 16);
    assert_eq!(vq.codebook().size(), [64, 16]);
    assert!(vq.has_encoder());
    check_tiny_vq(&vq);
}

#[test]
fn tiny_vqgan_matches_taming_from_lightning_ckpt() {
    let vq = Vqgan::load(&fixture("vqgan_tiny.ckpt"), device()).unwrap();
    assert_eq!(vq.config(), tiny().config());
    check_tiny_vq(&vq);
}

#[test]
fn legacy_pt_tensors_equal_the_model_files() {
    // The legacy fixture holds a subset of the state dict (non-contiguous and offset storages
    // included); every tensor must equal the same-named one of the safetensors file.
    let legacy = load_tensors(&fixture("vqgan_tiny_legacy.pt"), &|_| true).unwrap();
    let st = load_tensors(&fixture("vqgan_tiny.safetensors"), &|_| true).unwrap();
    let mut compared = 0;
    for name in legacy.names() {
        if let Some(b) = st.get(name) {
            let a = legacy.get(name).unwrap().to_kind(tch::Kind::Float);
            assert_eq!(a.size(), b.size(), "{name}");
            assert_eq!(max_diff(&a, &b.to_kind(tch::Kind::Float)), 0.0, "{name}");
            compared += 1;
        }
    }
    assert_eq!(compared, 9);
    // Too few tensors for a model: a clear error, not a panic.
    let err = Vqgan::load(&fixture("vqgan_tiny_legacy.pt"), Device::Cpu).unwrap_err();
    assert!(format!("{err:#}").contains("decoder.up"), "{err:#}");
}

#[test]
fn config_inferred_from_shapes_equals_yaml() {
    let yaml = VqganConfig::from_yaml_file(&fixture("vqgan_tiny.yaml")).unwrap();
    assert_eq!(yaml.ch_mult, [1, 1, 2]);
    assert_eq!(yaml.attn_resolutions, [8]);
    let map = load_tensors(&fixture("vqgan_tiny.safetensors"), &|_| true).unwrap();
    // At the yaml's resolution the inference is exact.
    assert_eq!(VqganConfig::infer(&map, yaml.resolution).unwrap(), yaml);
    // Without a yaml the model assumes resolution 256: the same network, attention on the same level.
    let no_yaml =
        Vqgan::load_with_yaml(&fixture("vqgan_tiny.safetensors"), None, Device::Cpu).unwrap();
    let c = no_yaml.config();
    assert_eq!(c.resolution, 256);
    assert_eq!(c.attn_resolutions, [64]);
    assert_eq!(c.decoder_attn_levels(), yaml.decoder_attn_levels());
    assert_eq!(c.encoder_attn_levels(), yaml.encoder_attn_levels());
    assert_eq!(
        VqganConfig {
            resolution: 32,
            attn_resolutions: vec![8],
            ..c.clone()
        },
        yaml
    );
    check_tiny_vq(&no_yaml);
}

#[test]
fn disagreeing_yaml_names_the_field() {
    for file in ["vqgan_tiny.safetensors", "vqgan_tiny.ckpt"] {
        let err = Vqgan::load_with_yaml(
            &fixture(file),
            Some(&fixture("vqgan_tiny_bad.yaml")),
            Device::Cpu,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        let want = format!("vqgan_tiny_bad.yaml says ch_mult [1, 2, 2] but {file} has [1, 1, 2]");
        assert!(msg.contains(&want), "{msg}");
    }
}

#[test]
fn tiny_gumbel_matches_taming() {
    let vq = Vqgan::load(&fixture("vqgan_gumbel_tiny.ckpt"), device()).unwrap();
    let c = vq.config();
    assert_eq!(c.quantizer, QuantizerKind::Gumbel);
    assert_eq!(c.ch_mult, [1, 1, 1, 1]);
    assert_eq!(vq.downsample_factor(), 8);
    let map = load_tensors(&fixture("vqgan_gumbel_tiny.ckpt"), &|_| true).unwrap();
    assert_eq!(&VqganConfig::infer(&map, 32).unwrap(), c);

    let r = reference("vqgan_gumbel_tiny_ref.safetensors");
    let _guard = tch::no_grad_guard();
    let z = vq.encode(&r["input"]).unwrap();
    let dz = max_diff(&z, &r["z"]);
    assert!(dz <= TOL(), "gumbel z max diff {dz}");
    let (z_q, indices) = vq.quantize_encoded(&z).unwrap();
    assert!(
        indices.equal(&r["indices"].reshape([-1])),
        "gumbel argmax indices differ"
    );
    assert!(max_diff(&z_q, &r["z_q_encoded"]) <= TOL());
    let dd = max_diff(&vq.decode(&z_q), &r["dec_encoded"]);
    assert!(dd <= TOL(), "gumbel decode of encoded max diff {dd}");

    let (_, gh, gw) = r["random_indices"].size3().unwrap();
    let zq_rnd = vq
        .codebook_entry(&r["random_indices"].reshape([-1]), [1, gh, gw])
        .unwrap();
    assert!(max_diff(&zq_rnd, &r["z_q"]) <= TOL());
    let dr = max_diff(&vq.decode(&zq_rnd), &r["dec"]);
    assert!(dr <= TOL(), "gumbel decode of random codes max diff {dr}");
}

#[test]
fn gradients_reach_latents_not_weights() {
    let vq = tiny();
    let r = reference("vqgan_tiny_ref.safetensors");
    let z_q = r["z_q"].copy().set_requires_grad(true);
    let y = vq.decode(&z_q);
    (y.square().sum(Kind::Float)).backward();
    let g = z_q.grad();
    assert!(g.defined(), "no gradient on z_q");
    assert_eq!(g.size(), z_q.size());
    assert!(
        g.abs().sum(Kind::Double).double_value(&[]) > 0.0,
        "zero gradient on z_q"
    );
    let vars = vq.var_store().variables();
    assert!(!vars.is_empty());
    for (name, v) in vars {
        assert!(!v.requires_grad(), "{name} requires grad");
        assert!(!v.grad().defined(), "{name} received a gradient");
    }
}

#[test]
fn bf16_weights_take_and_return_f32() {
    let mut vq = tiny();
    vq.set_kind(Kind::BFloat16);
    assert_eq!(vq.kind(), Kind::BFloat16);
    let r = reference("vqgan_tiny_ref.safetensors");
    let _guard = tch::no_grad_guard();
    let dec = vq.decode(&r["z_q"]);
    assert_eq!(dec.kind(), Kind::Float);
    let d = max_diff(&dec, &r["dec"]);
    assert!(d < 0.15, "bf16 decode max diff {d}");
    assert!(
        vq.var_store()
            .variables()
            .values()
            .all(|v| !v.requires_grad())
    );
}

/// Writes `map`'s tensors (renamed by `rename`, dropped when it returns None) to a safetensors file.
fn rewrite(
    dir: &Path,
    name: &str,
    rename: &dyn Fn(&str) -> Option<String>,
    extra: &[(&str, Tensor)],
) -> PathBuf {
    let map = load_tensors(&fixture("vqgan_tiny.safetensors"), &|_| true).unwrap();
    let mut out: Vec<(String, Tensor)> = map
        .tensors
        .iter()
        .filter_map(|(k, v)| rename(k).map(|n| (n, v.shallow_clone())))
        .collect();
    out.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.shallow_clone())),
    );
    let path = dir.join(name);
    Tensor::write_safetensors(&out, &path).unwrap();
    path
}

#[test]
fn decoder_only_file_decodes_but_cannot_encode() {
    let dir = tmp_dir("decoder-only");
    let path = rewrite(
        &dir,
        "dec.safetensors",
        &|k| (!k.starts_with("encoder.") && !k.starts_with("quant_conv.")).then(|| k.to_string()),
        &[],
    );
    let vq = Vqgan::load(&path, device()).unwrap();
    assert!(!vq.has_encoder());
    let r = reference("vqgan_tiny_ref.safetensors");
    let dd = max_diff(&tch::no_grad(|| vq.decode(&r["z_q"])), &r["dec"]);
    assert!(dd <= TOL(), "decoder-only decode max diff {dd}");
    let msg = format!("{:#}", vq.encode(&r["input"]).unwrap_err());
    assert!(msg.contains("no encoder"), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn net2net_prefix_is_stripped_and_other_stages_ignored() {
    let dir = tmp_dir("net2net");
    let extra = [
        (
            "transformer.tok_emb.weight",
            Tensor::zeros([5, 7], (Kind::Float, Device::Cpu)),
        ),
        (
            "cond_stage_model.encoder.conv_in.weight",
            Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)),
        ),
    ];
    let path = rewrite(
        &dir,
        "n2n.safetensors",
        &|k| Some(format!("first_stage_model.{k}")),
        &extra,
    );
    let vq = Vqgan::load(&path, Device::Cpu).unwrap();
    check_tiny_vq(&vq);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_tensor_is_reported() {
    let dir = tmp_dir("missing");
    let path = rewrite(
        &dir,
        "m.safetensors",
        &|k| (k != "decoder.mid.attn_1.q.bias").then(|| k.to_string()),
        &[],
    );
    let msg = format!("{:#}", Vqgan::load(&path, Device::Cpu).unwrap_err());
    assert!(msg.contains("decoder.mid.attn_1.q.bias"), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_reconstruct_crops_and_reports() {
    let dir = tmp_dir("cli");
    let out = dir.join("out.png");
    let run = |force: bool| {
        let mut cmd = vqclip();
        cmd.args(["reconstruct", &format!("{FIX}/recon_input_odd.png"), "-o"])
            .arg(&out)
            .args([
                "--vqgan",
                &format!("{FIX}/vqgan_tiny.safetensors"),
                "--device",
                "cpu",
            ]);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let o = run(false);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("50x35 to 48x32"), "{stderr}");

    let r = reference("vqgan_tiny_ref.safetensors");
    let used = r["indices"].unique_dim(0, false, false, false).0.size()[0];
    assert!(
        stdout.contains(&format!("codebook usage: {used}/64")),
        "{stdout}"
    );
    // PSNR of the reference 8-bit reconstruction against the 48x32 input.
    let x = (&r["input"] + 1.0) / 2.0;
    let mse = (x - &r["recon_u8"] / 255.0)
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    let want = -10.0 * mse.log10();
    let got: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PSNR: ")?.strip_suffix(" dB")?.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR line in {stdout}"));
    assert!((got - want).abs() < 0.05, "PSNR {got} vs {want}");

    let img = vqclip::image_io::load_rgb(&out).unwrap();
    assert_eq!(img.dimensions(), (48, 32));
    let y = vqclip::image_io::rgb_to_tensor(&img) * 255.0;
    assert!(max_diff(&y, &r["recon_u8"]) <= 1.0);

    let o = run(false);
    assert_eq!(
        o.status.code(),
        Some(2),
        "overwrite without --force must be a usage error"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert!(run(true).status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_vqgan_names_resolve_in_weights_dir() {
    let dir = tmp_dir("names");
    let run = |spec: &str| {
        vqclip()
            .args(["reconstruct", &format!("{FIX}/recon_input.png"), "-o"])
            .arg(dir.join("o.png"))
            .args(["--vqgan", spec, "--device", "cpu"])
            .env("VQCLIP_WEIGHTS", &dir)
            .output()
            .unwrap()
    };
    let o = run("imagenet_f16_1024");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&dir.join("imagenet_f16_1024.ckpt").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("vqclip weights fetch imagenet_f16_1024"),
        "{err}"
    );

    let o = run("no_such_model");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("imagenet_f16_16384") && err.contains("gumbel_f8_8192"),
        "{err}"
    );

    // A known name found in the weights dir, with its yaml.
    std::fs::copy(
        fixture("vqgan_tiny.safetensors"),
        dir.join("sflckr.safetensors"),
    )
    .unwrap();
    std::fs::copy(fixture("vqgan_tiny.yaml"), dir.join("sflckr.yaml")).unwrap();
    let o = run("sflckr");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/64"));
    let _ = std::fs::remove_dir_all(dir);
}

/// `--tile`: with circular padding the decoder commutes with wrap-around shifts (shifting the
/// latents by one cell shifts the image by f pixels, edges wrapping), so a decoded image tiles
/// seamlessly. With the trained zero padding it does not, which shows the test can tell them apart.
#[test]
fn circular_padding_makes_the_decoder_shift_equivariant() {
    let mut vq = tiny();
    let f = vq.downsample_factor();
    let _guard = tch::no_grad_guard();
    tch::manual_seed(3);
    let idx = Tensor::randint(vq.n_embed(), [5 * 6], (Kind::Int64, Device::Cpu));
    let z_q = vq.codebook_entry(&idx, [1, 5, 6]).unwrap();
    let shifted = z_q.roll([2, 1], [2, 3]);
    let equivariance_error = |vq: &Vqgan| {
        let a = vq.decode(&z_q).roll([2 * f, f], [2, 3]);
        let b = vq.decode(&shifted);
        max_diff(&a, &b)
    };
    let zeros = equivariance_error(&vq);
    vq.set_circular_padding(true);
    let circular = equivariance_error(&vq);
    assert!(circular < 1e-5, "circular padding: shift error {circular}");
    assert!(
        zeros > 1e-2,
        "zero padding should break the wrap-around: {zeros}"
    );
    vq.set_circular_padding(false);
    assert!(
        equivariance_error(&vq) > 1e-2,
        "switching back restores zero padding"
    );
}
