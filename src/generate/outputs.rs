//! What a run writes besides its log and checkpoint: images with their metadata, run.toml, and the
//! tile preview.
use super::checkpoint::WeightFile;
use super::engine::Generator;
use crate::rundir::{KEY_PROMPT, KEY_SEED, KEY_SETTINGS, KEY_SOFTWARE, KEY_STEP, RunDir};
use anyhow::{Context, Result};
use std::path::Path;

/// `--tile`: the final image repeated 2x2, to check the seams by eye.
pub fn save_tiled_preview(final_png: &Path, out: &Path) -> Result<()> {
    let img = crate::image_io::load_rgb_on_white(final_png)?;
    let (w, h) = img.dimensions();
    let mut tiled = image::RgbImage::new(w * 2, h * 2);
    for (x, y) in [(0, 0), (w, 0), (0, h), (w, h)] {
        image::imageops::replace(&mut tiled, &img, x as i64, y as i64);
    }
    let tmp = out.with_extension("png.tmp");
    tiled
        .save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
}

pub fn save_image(generator: &Generator, path: &Path) -> Result<()> {
    let img = crate::image_io::tensor_to_image(&generator.image())?;
    let s = &generator.settings;
    let settings_toml = s.to_toml()?;
    let prompt = s.prompt_line();
    let software = format!("vqclip {}", env!("CARGO_PKG_VERSION"));
    let step = generator.step.to_string();
    let seed = s.seed.to_string();
    let tmp = path.with_extension("png.tmp");
    crate::image_io::save_png(
        &tmp,
        &img,
        &[
            (KEY_SOFTWARE, &software),
            (KEY_PROMPT, &prompt),
            (KEY_SEED, &seed),
            (KEY_STEP, &step),
            (KEY_SETTINGS, &settings_toml),
        ],
    )?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    // Vector drawers: the same picture as SVG beside it, with the same text.
    if let Some(svg) = generator.svg()? {
        let doc = svg.finish(&[
            (KEY_SOFTWARE, &software),
            (KEY_PROMPT, &prompt),
            (KEY_SEED, &seed),
            (KEY_STEP, &step),
            (KEY_SETTINGS, &settings_toml),
        ]);
        let svg_path = path.with_extension("svg");
        let tmp = path.with_extension("svg.tmp");
        std::fs::write(&tmp, doc).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &svg_path)
            .with_context(|| format!("cannot write {}", svg_path.display()))?;
    }
    Ok(())
}

pub fn write_run_toml(dir: &Path, generator: &Generator) -> Result<()> {
    #[derive(serde::Serialize)]
    struct RunInfo<'a> {
        vqclip_version: &'a str,
        weights: &'a [WeightFile],
    }
    let mut text = generator.settings.to_toml()?;
    let run = RunInfo {
        vqclip_version: env!("CARGO_PKG_VERSION"),
        weights: generator.weights(),
    };
    let mut table = toml::Table::new();
    table.insert(
        "run".into(),
        toml::Value::try_from(run).context("cannot serialize run info")?,
    );
    text.push('\n');
    text.push_str(&toml::to_string(&table).context("cannot serialize run info")?);
    let path = RunDir::new(dir).run_toml();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
