//! Render + backward time of the vector drawers (scripts/bench raster runs it under /usr/bin/time
//! for the peak memory): clipdraw with N strokes at WxH, and the pixel drawer's hex grid.
//!
//!   cargo run --release --example raster_bench -- clipdraw 224x224 1024 [runs]
//!   cargo run --release --example raster_bench -- pixel 640x360 hex [runs]
use anyhow::{Context, Result};
use rand::SeedableRng;
use std::time::Instant;
use tch::{Device, Kind, Tensor};
use vqclip::generate::drawers::Drawer;
use vqclip::settings::PartialSettings;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, size) = (args[0].as_str(), args[1].as_str());
    let runs: usize = args.get(3).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let mut toml = format!("drawer = \"{what}\"\nsize = \"{size}\"\nprompts = [\"x\"]\n");
    match what {
        "pixel" => toml.push_str(&format!("pixel-type = \"{}\"\n", args[2])),
        _ => toml.push_str(&format!("strokes = {}\n", args[2])),
    }
    let layer = PartialSettings::from_toml(&toml, std::path::Path::new("bench.toml"))?;
    let settings = vqclip::runplan::resolve_layers(&[], vec![layer])?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let t0 = Instant::now();
    let drawer: Box<dyn Drawer> = match what {
        "pixel" => Box::new(vqclip::generate::drawers::pixel::Pixel::new(
            settings.pixel_type,
            settings.pixel_size,
            (settings.size.height, settings.size.width),
            None,
            false,
            &mut rng,
            Device::Cpu,
        )?),
        _ => Box::new(vqclip::generate::drawers::strokes::StrokeDrawer::new(
            &settings,
            None,
            &mut rng,
            Device::Cpu,
        )?),
    };
    let build = t0.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let img = drawer.render();
        let loss = (&img * Tensor::ones_like(&img)).sum(Kind::Float);
        let g = Tensor::run_backward(&[loss], &[drawer.params()], false, false);
        let _ = g[0].abs().sum(Kind::Float).double_value(&[]);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times.get(times.len() / 2).context("no runs")?;
    println!(
        "{what} {size} {}: setup {build:.3} s, render+backward median {median:.3} s over {runs} runs (threads {})",
        args[2],
        tch::get_num_threads()
    );
    Ok(())
}
