//! Forward and backward (to the pixels) time of a CLIP image tower on random cutouts, the median
//! of `runs`; compare with PyTorch's on the same file (a dev tool, not a test).
//!   cargo run --release --example tower_time -- CLIP.pt [batch] [runs] [f32|bf16] [cl]
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};
use vqclip::models::clip::Clip;

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let b: i64 = a.get(1).map_or(Ok(8), |s| s.parse())?;
    let runs: usize = a.get(2).map_or(Ok(5), |s| s.parse())?;
    let mut clip = Clip::load(std::path::Path::new(&a[0]), Device::Cpu)?;
    if a.get(3).is_some_and(|k| k == "bf16") {
        clip.to_kind(Kind::BFloat16);
    } else {
        clip.to_kind(Kind::Float);
    }
    // `cl`: the cutouts arrive channels-last (as from the VQGAN decoder).
    let cl = a.get(4).is_some_and(|k| k == "cl");
    let r = clip.input_resolution();
    tch::manual_seed(1);
    let (mut f, mut bw) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut x = Tensor::rand([b, 3, r, r], (Kind::Float, Device::Cpu));
        if cl {
            x = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        }
        let x = x.set_requires_grad(true);
        let t = Instant::now();
        let e = clip.encode_image(&Clip::normalize(&x));
        f.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let g = Tensor::run_backward(&[&e.sum(Kind::Float)], &[&x], false, false);
        bw.push(t.elapsed().as_secs_f64());
        drop(g);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("fwd {:.3} s  bwd {:.3} s", med(&mut f), med(&mut bw));
    Ok(())
}
