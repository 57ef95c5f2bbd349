//! Every optimizer against its reference code: 20 steps on two fixed functions of a [3, 4]
//! parameter, trajectories written by torch.optim and torch-optimizer in
//! tests/fixtures/optim_ref.json (tests/fixtures/make_optim_fixtures.py).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use tch::{Kind, Tensor};
use vqclip::generate::optim::Optimizer;
use vqclip::settings::OptimizerKind;

fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn grid(values: &[f64]) -> Tensor {
    Tensor::from_slice(values).view([3, 4])
}

/// The fixture's two functions, in the same operations.
fn loss(name: &str, p: &Tensor) -> Tensor {
    let w = Tensor::linspace(0.5, 2.0, 12, (Kind::Double, tch::Device::Cpu)).view([3, 4]);
    let c = Tensor::linspace(-1.0, 1.0, 12, (Kind::Double, tch::Device::Cpu)).view([3, 4]);
    let a = Tensor::linspace(1.0, -1.5, 12, (Kind::Double, tch::Device::Cpu)).view([3, 4]);
    match name {
        "bowl" => {
            let d = p - c;
            (w * &d * &d).sum(Kind::Double) + (p * 3.0).sin().sum(Kind::Double)
        }
        "sphere" => (a * p / p.norm()).sum(Kind::Double),
        _ => unreachable!("{name}"),
    }
}

#[test]
fn twenty_steps_match_torch_optim_and_torch_optimizer() {
    let text = std::fs::read_to_string(common::fixture("optim_ref.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let start = f64s(&fixture["start"]);
    let lr = fixture["lr"].as_f64().unwrap();
    let runs = fixture["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 18, "9 optimizers x 2 functions");
    let mut worst_all = 0.0f64;
    for (key, traj) in runs {
        let (func, name) = key.split_once('/').unwrap();
        let kind: OptimizerKind = name.parse().unwrap();
        let p = grid(&start).set_requires_grad(true);
        let mut opt = Optimizer::new(kind, lr, &p);
        let mut worst = 0.0f64;
        for (i, want) in traj.as_array().unwrap().iter().enumerate() {
            let l = loss(func, &p);
            let g = Tensor::run_backward(&[&l], &[&p], false, false).remove(0);
            let mut leaf = p.shallow_clone();
            opt.step(&mut leaf, &g);
            let got: Vec<f64> = Vec::try_from(p.detach().flatten(0, -1)).unwrap();
            for (a, b) in got.iter().zip(f64s(want)) {
                let d = (a - b).abs();
                worst = worst.max(d);
                assert!(d < 1e-6, "{key} step {}: {got:?} vs {want}", i + 1);
            }
        }
        eprintln!("optimizers: {key}: largest difference over 20 steps {worst:.1e}");
        worst_all = worst_all.max(worst);
    }
    eprintln!("optimizers: largest difference {worst_all:.1e}");
}
