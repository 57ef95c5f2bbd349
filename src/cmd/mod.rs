//! One module per subcommand; `run` dispatches.
pub mod doctor;
pub mod embed;
// pub mod generate;
pub mod info;
pub mod presets;
pub mod reconstruct;

use crate::cli::{Cli, Command};
use anyhow::Result;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(a) => {
            crate::runplan::plan(&a)?;
            anyhow::bail!("generate: the loop is not wired in yet")
        }
        Command::Presets(c) => presets::run(&c),
        Command::Doctor => doctor::run(),
        Command::Reconstruct(a) => reconstruct::run(&a),
        Command::Embed(a) => embed::run(&a),
        Command::Info(a) => info::run(&a),
    }
}
