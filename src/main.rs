use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match vqclip::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match vqclip::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vqclip: error: {err:#}");
            ExitCode::from(vqclip::error::exit_code(&err))
        }
    }
}
