//! The library's error type: every failure caused by caller input is a value of [`Error`],
//! with a message that names the offending argument and its value.

use thiserror::Error as ThisError;

/// Result alias used throughout convkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when describing or running a convolution or pooling.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// An argument has a value that is not allowed, e.g. `stride=0` or `groups=3` for 4 channels.
    #[error("invalid {arg} {value}: {reason}")]
    InvalidArgument {
        /// The argument's name as the command line spells it (`stride`, `padding`, `weight`…).
        arg: String,
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A tensor has the wrong rank or a dimension that does not fit the others.
    #[error("{arg} has shape {shape}: {reason}")]
    Shape {
        /// Which tensor (`input`, `weight`, `bias`, `grad_output`…).
        arg: String,
        /// Its shape, printed like `[1, 3, 8, 8]`.
        shape: String,
        /// What does not fit.
        reason: String,
    },
    /// The result would not fit in memory (or its size overflows `usize`).
    #[error("{what} of shape {shape} cannot be allocated")]
    TooLarge {
        /// What was to be allocated.
        what: String,
        /// Its shape.
        shape: String,
    },
    /// Reading or writing a file failed, or its contents are not an acceptable .npy array.
    #[error("{arg} {path}: {reason}")]
    File {
        /// Which argument named the file.
        arg: String,
        /// The path as given.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn arg(arg: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { arg: arg.to_string(), value: value.to_string(), reason: reason.into() }
    }

    pub(crate) fn shape(arg: &str, shape: &[usize], reason: impl Into<String>) -> Self {
        Error::Shape { arg: arg.to_string(), shape: format!("{shape:?}"), reason: reason.into() }
    }

    pub(crate) fn too_large(what: &str, shape: &[usize]) -> Self {
        Error::TooLarge { what: what.to_string(), shape: format!("{shape:?}") }
    }
}
