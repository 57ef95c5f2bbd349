//! libtorch reports failures inside tensor ops (CUDA out of memory, a shape it rejects) by panicking
//! through tch. These helpers turn such a panic into an ordinary error with a readable message,
//! instead of a Rust panic report followed by a C++ backtrace.
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Silences the default panic report; callers convert panics with [`catch`].
pub fn install_quiet_hook() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Runs `f`, turning a panic into an error carrying the first line of its message.
pub fn catch<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(|s| s.as_str())
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure");
            Err(anyhow::anyhow!("{}", first_line(msg)))
        }
    }
}

/// True for libtorch's out-of-memory errors (CUDA and CPU allocators).
pub fn is_out_of_memory(err: &anyhow::Error) -> bool {
    let s = format!("{err:#}").to_ascii_lowercase();
    s.contains("out of memory")
        || s.contains("failed to allocate")
        || s.contains("defaultcpuallocator")
}

fn first_line(msg: &str) -> String {
    // tch wraps the C++ message as `Torch("...\nException raised from ...")`; keep the cause.
    let m = msg.trim_start_matches("called `Result::unwrap()` on an `Err` value: ");
    let m = m
        .trim_start_matches("Torch(\"")
        .trim_start_matches("Torch(");
    let line = m.split(['\n']).next().unwrap_or(m);
    line.split("\\n").next().unwrap_or(line).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_failure_becomes_an_error() {
        install_quiet_hook();
        let r: anyhow::Result<()> = catch(|| {
            let a = tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu));
            let _ = a.matmul(&a); // [2,3] x [2,3]: libtorch rejects it
            Ok(())
        });
        let msg = format!("{:#}", r.unwrap_err());
        assert!(
            msg.contains("cannot be multiplied") || msg.contains("mat1"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        let _ = std::panic::take_hook();
    }

    #[test]
    fn out_of_memory_is_recognised() {
        let e = anyhow::anyhow!("CUDA out of memory. Tried to allocate 2.00 GiB");
        assert!(is_out_of_memory(&e));
        assert!(!is_out_of_memory(&anyhow::anyhow!("shape mismatch")));
    }
}
