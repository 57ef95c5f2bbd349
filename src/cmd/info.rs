//! `vqclip info IMAGE`: the prompt, seed and settings stored in a vqclip PNG.
use crate::cli::InfoArgs;
use crate::image_io::read_png_text;
use anyhow::{Result, bail};

/// The PNG text keys vqclip writes.
pub const KEY_SETTINGS: &str = "vqclip:settings";
pub const KEY_PROMPT: &str = "vqclip:prompt";
pub const KEY_SEED: &str = "vqclip:seed";
pub const KEY_STEP: &str = "vqclip:step";
pub const KEY_SOFTWARE: &str = "Software";

pub fn run(args: &InfoArgs) -> Result<()> {
    let chunks = read_png_text(&args.image)?;
    let get = |k: &str| {
        chunks
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let Some(settings) = get(KEY_SETTINGS) else {
        bail!(
            "{} has no vqclip metadata (was it written by vqclip generate?)",
            args.image.display()
        );
    };
    if let Some(s) = get(KEY_SOFTWARE) {
        println!("# software: {s}");
    }
    if let Some(p) = get(KEY_PROMPT) {
        println!("# prompt: {p}");
    }
    if let Some(s) = get(KEY_SEED) {
        println!("# seed: {s}");
    }
    if let Some(s) = get(KEY_STEP) {
        println!("# step: {s}");
    }
    println!(
        "# repeat with: vqclip generate --config {}",
        args.image.display()
    );
    print!("{settings}");
    if !settings.ends_with('\n') {
        println!();
    }
    Ok(())
}
