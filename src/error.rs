//! The one error type of blocksnap.
//!
//! Every failure maps to one of the exceptions that the Lightsail API defines,
//! so a caller that already handles Lightsail errors handles blocksnap's.
//! Corruption found in the store (a block whose bytes no longer match their
//! hash, metadata that does not decode) has its own kind so that callers can
//! tell it apart from a plain failure; on the wire it is a `ServiceException`.
//!
//! Rules for messages: one sentence naming the offending value (snapshot name,
//! block index, hash in hex, path) followed by what to do about it.

use std::fmt;

/// Boxed cause kept behind an [`Error`].
pub type BoxedCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The failure classes, named after the Lightsail exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A request value is invalid: a name, a size, a tag, a policy. Nothing changed.
    InvalidInput,
    /// The named snapshot, operation or resource does not exist.
    NotFound,
    /// The request was valid but could not be carried out: an I/O error, a full disk,
    /// an unreadable source, a store held by another process.
    OperationFailure,
    /// The caller's policy does not allow the action on the resource.
    AccessDenied,
    /// An internal failure of the store that is not corruption.
    Service,
    /// The account (the store) is not ready to serve requests.
    AccountSetupInProgress,
    /// The caller presented no usable identity.
    Unauthenticated,
    /// Stored bytes are damaged: a block fails its hash check or a record does not
    /// decode. Reported on the wire as `ServiceException`.
    Corruption,
}

impl ErrorKind {
    /// The Lightsail exception name for this kind, as it appears on the wire.
    pub fn exception_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInputException",
            ErrorKind::NotFound => "NotFoundException",
            ErrorKind::OperationFailure => "OperationFailureException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Service | ErrorKind::Corruption => "ServiceException",
            ErrorKind::AccountSetupInProgress => "AccountSetupInProgressException",
            ErrorKind::Unauthenticated => "UnauthenticatedException",
        }
    }

    /// The Lightsail error code recorded in a failed operation's `errorCode`.
    pub fn error_code(self) -> &'static str {
        match self {
            ErrorKind::Corruption => "DataCorruption",
            other => other.exception_name(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.exception_name())
    }
}

/// A blocksnap failure: its Lightsail kind, a message naming the value and the fix,
/// and the underlying cause when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxedCause>,
}

/// Result alias used throughout blocksnap.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Builds an `InvalidInputException`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Builds a `NotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Builds an `OperationFailureException`.
    pub fn operation_failure(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::OperationFailure, message)
    }

    /// Builds an `AccessDeniedException`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    /// Builds a `ServiceException` for an internal failure.
    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Service, message)
    }

    /// Builds a corruption error.
    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxedCause>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The failure class.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the exception name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message followed by the chain of causes, for `errorDetails` and logs.
    pub fn detailed_message(&self) -> String {
        let mut text = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            // Messages often quote their direct cause already, so a cause is appended
            // only when its text is not there yet.
            let cause_text = inner.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            cause = inner.source();
        }
        text
    }
}

/// Converts an I/O error met while `action` into an `OperationFailureException`
/// that keeps the cause and names a full disk explicitly.
pub(crate) fn io_failure(action: impl fmt::Display, error: std::io::Error) -> Error {
    let hint = match error.raw_os_error() {
        Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() => {
            "The file system is full: free space and retry."
        }
        Some(code) if code == rustix::io::Errno::DQUOT.raw_os_error() => {
            "The disk quota is exhausted: free space and retry."
        }
        Some(code) if code == rustix::io::Errno::ROFS.raw_os_error() => {
            "The file system is read-only. To read or restore from the store, open it \
             read-only (--read-only, StoreOptions::read_only)."
        }
        _ => "Check the path, its permissions and the device, then retry.",
    };
    Error::operation_failure(format!("{action} failed ({error}). {hint}")).with_source(error)
}

/// Converts a sled error met while `action` into an error of the matching kind.
pub(crate) fn metadata_failure(action: impl fmt::Display, error: sled::Error) -> Error {
    match error {
        sled::Error::Io(io) => io_failure(format_args!("{action} in the metadata database"), io),
        sled::Error::Corruption { .. } => Error::corruption(format!(
            "the metadata database is corrupt ({action}). Restore the store directory from a copy"
        ))
        .with_source(error),
        other => {
            Error::service(format!("{action} in the metadata database failed")).with_source(other)
        }
    }
}
