//! One module per subcommand; `run` dispatches.
pub mod batch;
pub mod classify;
pub mod doctor;
pub mod embed;
pub mod gallery;
pub mod generate;
pub mod info;
pub mod presets;
pub mod reconstruct;
pub mod search;
pub mod style_frames;
pub mod video;
pub mod weights;

use crate::cli::{Cli, Command};
use anyhow::Result;

/// Resolves `--clip`, `--device` and `--precision` and loads the model in the precision's kind
/// (the generator's policy, `device::model_kind`); returns it with its weight file.
pub fn load_clip(
    a: &crate::cli::ClipArgs,
) -> Result<(crate::models::clip::Clip, std::path::PathBuf)> {
    use crate::device::{ModelRole, model_kind};
    let device = crate::device::parse_device(&a.device)?;
    let path = crate::models::clip::resolve_clip(&a.clip)?;
    let mut clip = crate::models::clip::Clip::load(&path, device)?;
    let kind = model_kind(a.precision, device, ModelRole::clip(clip.config()));
    if kind != tch::Kind::Float {
        clip.to_kind(kind);
    }
    Ok((clip, path))
}

/// Writes command output to stdout; a closed pipe (`vqclip search ... | head`) is not an error.
pub fn print_stdout(out: &str) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

pub fn run(cli: Cli) -> Result<()> {
    crate::weights::registry::check_user()?;
    match cli.command {
        Command::Generate(a) => generate::run(&a),
        Command::Presets(c) => presets::run(&c),
        Command::Doctor => doctor::run(),
        Command::Reconstruct(a) => reconstruct::run(&a),
        Command::Embed(a) => embed::run(&a),
        Command::Info(a) => info::run(&a),
        Command::Classify(a) => classify::run(&a),
        Command::Search(a) => search::run(&a),
        Command::Weights(c) => weights::run(&c),
        Command::Video(a) => video::run(&a),
        Command::Gallery(a) => gallery::run(&a),
        Command::Batch(a) => batch::run(&a),
    }
}
