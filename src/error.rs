//! Error kinds that decide the exit code. Everything else is `anyhow` with context and exits 1.
use std::fmt;

/// Bad usage or invalid settings: exit 2. The message names the flag or key, the value and the rule.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

/// The run was interrupted (Ctrl-C) after saving its state: exit 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Interrupted {}

/// The run gave its directory up to another process without writing more (a batch worker whose
/// claim was taken over): exit 1, and the caller knows not to mark the job failed.
#[derive(Debug)]
pub struct Abandoned(pub String);

impl fmt::Display for Abandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Abandoned {}

/// Shorthand: an `anyhow::Error` carrying a [`UsageError`].
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// `bail!` for usage errors.
#[macro_export]
macro_rules! usage_bail {
    ($($arg:tt)*) => { return Err($crate::error::usage(format!($($arg)*))) };
}

/// The process exit code for an error chain: 2 usage, 130 interrupted, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return 130;
        }
    }
    1
}
