//! Ctrl-C and SIGTERM (what Slurm and Kubernetes send before a kill): one process-wide flag that
//! the generate loop checks after every step, so it saves a checkpoint and stops cleanly.
//! The handler is installed once; every run of the process (`--count`, `batch`) shares the flag.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static FLAG: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handler (first call) and returns whether a stop was asked for.
pub fn requested() -> bool {
    INSTALLED.get_or_init(|| {
        // Installing can fail only if another handler exists; then signals keep their default.
        let _ = ctrlc::set_handler(|| FLAG.store(true, Ordering::SeqCst));
    });
    FLAG.load(Ordering::SeqCst)
}
