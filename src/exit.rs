//! Exit codes: one type, one mapping from errors, one error printer.

use std::io;
use std::process::ExitCode;

/// What `dshare` tells the shell. The numbers are part of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Everything asked for was done.
    Success = 0,
    /// The command ran and the answer is "no": an integrity failure in `verify`,
    /// a refused message, a `--wait` that timed out.
    Failure = 1,
    /// Usage or I/O trouble: the command could not do its job at all.
    Trouble = 2,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code as u8)
    }
}

/// An error that carries the exit code it should produce. Anything else maps to
/// [`Code::Trouble`].
#[derive(Debug)]
pub struct Exit {
    pub code: Code,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// An error that ends the command with exit code 1 (a "no" rather than trouble).
pub fn failure(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: Code::Failure,
        message: message.into(),
    }
    .into()
}

/// Prints `err` with its context chain on stderr (as `--log-format` says) and returns
/// the code to exit with.
/// A closed stdout (`dshare log | head`) is not an error.
pub fn report(err: &anyhow::Error) -> Code {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return Code::Success;
    }
    crate::error!("{err:#}");
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Exit>())
        .map_or(Code::Trouble, |exit| exit.code)
}
