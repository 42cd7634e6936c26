//! The CLI's error type and how each error maps to an exit code:
//! 0 success, 2 usage or validation errors, 1 anything else.

use crate::client::ClientError;
use returnee_store::laptop::StoreError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or an input value is wrong; the message says how to fix it.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Invalid(#[from] returnee_shared::ValidationError),
    /// A filter of a read-only command (`list`, `report`) is wrong: nothing
    /// was to be saved, so the words are of filters.
    #[error(
        "the filter is wrong: {}{}",
        .0.len(),
        .0.iter().fold(String::from(if .0.len() == 1 { " problem" } else { " problems" }), |s, p| format!("{s}\n  - {p}"))
    )]
    Filter(Vec<returnee_shared::Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The server revoked this device; its local copy was erased (or the
    /// erasure failed, with the reason).
    #[error(
        "{message}. {}",
        match erased {
            Ok(()) => format!(
                "This laptop's copy has been erased ({} change(s) not yet sent were erased with it). To work again, ask an admin for a new code, then run `returnee init` and `returnee enroll`",
                unsent.map_or("an unknown number of".to_string(), |n| n.to_string())
            ),
            Err(e) => format!(
                "Erasing this laptop's copy FAILED ({e}); delete the data folder by hand"
            ),
        }
    )]
    Revoked {
        message: String,
        /// Operations not yet pushed (`None`: the queue could not be read).
        unsent: Option<usize>,
        erased: Result<(), String>,
    },
    /// The server refused some of what was sent (kept here); the summary was printed.
    #[error("{0}")]
    Refused(String),
    /// The person stopped the form (Ctrl-C): nothing was saved.
    #[error("cancelled: nothing was saved")]
    Cancelled,
    /// Some rows or items were refused; the others were saved. The summary was printed.
    #[error("{0}")]
    Partial(String),
    #[error("{0}")]
    Other(String),
}

/// The access policy's refusal: a usage error, with its words.
impl From<returnee_shared::access::Denial> for CliError {
    fn from(d: returnee_shared::access::Denial) -> Self {
        CliError::Usage(d.message)
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Invalid(_)
            | CliError::Filter(_)
            | CliError::Partial(_) => 2,
            CliError::Store(
                StoreError::Invalid(_)
                | StoreError::NotFound(_)
                | StoreError::Ambiguous(_)
                | StoreError::BadValue(_)
                | StoreError::NoSuchConflict(_)
                | StoreError::Deleted(_)
                | StoreError::Merged { .. }
                | StoreError::Erased(_)
                | StoreError::NotMerged(_)
                | StoreError::NoSuchPair(_)
                | StoreError::AmbiguousPair(_)
                | StoreError::NotInPair { .. }
                | StoreError::PassphraseNeeded(_)
                | StoreError::WrongPassphrase(_)
                | StoreError::AlreadyPlain(_)
                | StoreError::NotEncrypted(_),
            ) => 2,
            CliError::Client(e) if e.is_usage() => 2,
            // Refused: the worker must enroll again (nothing is lost).
            CliError::Client(e) if e.is_expired() => 1,
            // As a shell reports a process ended by SIGINT.
            CliError::Cancelled => 130,
            _ => 1,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }
}
