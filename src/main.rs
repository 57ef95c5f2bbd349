use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match vqclip::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, like every other vqclip error.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("vqclip: error: {first} (see vqclip --help)");
            return ExitCode::from(2);
        }
    };
    vqclip::panics::install_quiet_hook();
    match vqclip::panics::catch(|| vqclip::cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vqclip: error: {err:#}");
            ExitCode::from(vqclip::error::exit_code(&err))
        }
    }
}
