use clap::Parser;
use std::process::ExitCode;

/// MKL (libtorch's CPU BLAS and FFT) may change its thread count with the machine's load and so
/// the order of its sums: the same run then differed in the last bits between two processes
/// (seen as flaky byte-exact resume of the fft drawer under load; 0 failures in 12 runs with
/// these set). Set before any libtorch call, unless the user set them. cuBLAS's fixed workspace
/// is what `--deterministic` needs on CUDA (it is read when cuBLAS starts, so it cannot wait for
/// the settings); it costs 32 MiB of device memory and no speed.
fn pin_mkl() {
    for (k, v) in [
        ("MKL_DYNAMIC", "FALSE"),
        ("MKL_CBWR", "AUTO"),
        ("CUBLAS_WORKSPACE_CONFIG", ":4096:8"),
    ] {
        if std::env::var_os(k).is_none() {
            // SAFETY: first thing in main, before any other thread exists.
            unsafe { std::env::set_var(k, v) };
        }
    }
}

/// Over a file size limit (`ulimit -f`) the kernel sends SIGXFSZ, which kills the process mid-write by
/// default; ignored, the write fails with EFBIG and the user gets the same one-line error as for a full disk.
fn ignore_sigxfsz() {
    // SAFETY: setting a signal to SIG_IGN at start-up touches no Rust state.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
}

fn main() -> ExitCode {
    pin_mkl();
    ignore_sigxfsz();
    let cli = match vqclip::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
                // clap does not say which argument; the user needs to know.
                let bad = std::env::args_os().skip(1).find(|a| a.to_str().is_none());
                let shown = bad
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default();
                eprintln!(
                    "vqclip: error: argument '{shown}' is not valid UTF-8; \
                     vqclip keeps names and prompts as UTF-8 text: rename the file or link it under a UTF-8 name"
                );
                return ExitCode::from(2);
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
