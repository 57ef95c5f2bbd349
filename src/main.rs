use clap::Parser;
use std::process::ExitCode;

/// MKL (libtorch's CPU BLAS and FFT) may change its thread count with the machine's load and so
/// the order of its sums: the same run then differed in the last bits between two processes
/// (seen as flaky byte-exact resume of the fft drawer under load; 0 failures in 12 runs with
/// these set). Set before any libtorch call, unless the user set them.
fn pin_mkl() {
    for (k, v) in [("MKL_DYNAMIC", "FALSE"), ("MKL_CBWR", "AUTO")] {
        if std::env::var_os(k).is_none() {
            // SAFETY: first thing in main, before any other thread exists.
            unsafe { std::env::set_var(k, v) };
        }
    }
}

fn main() -> ExitCode {
    pin_mkl();
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
