//! Why publishing to the hub failed: one error type for the write API, cards and local files.

/// Why publishing failed. Each variant names what was being done, with the repo.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{what}: no hub token: set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens), or pass --hub_dry_run to see what would be uploaded")]
    NoToken { what: String },
    #[error("{what}: HTTP 401 Unauthorized from {endpoint}{detail}: the token in HF_TOKEN is missing, invalid or expired")]
    Unauthorized {
        what: String,
        endpoint: String,
        detail: String,
    },
    #[error("{what}: HTTP 403 Forbidden{detail}: the token cannot write to {repo}; use a token with write access to it (fine-grained tokens need write on the repo or its namespace)")]
    Forbidden {
        what: String,
        repo: String,
        detail: String,
    },
    #[error("{what}: HTTP 404 Not Found{detail}")]
    NotFound { what: String, detail: String },
    #[error("{what}: HTTP {status}{detail}: {repo} changed while publishing (another commit landed first); nothing of this run was committed, publish again")]
    Conflict {
        what: String,
        repo: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: HTTP {status}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: cannot reach the hub at {endpoint}: {message}")]
    Unreachable {
        what: String,
        endpoint: String,
        message: String,
    },
    #[error("{what}: unexpected answer from the hub: {message}")]
    BadAnswer { what: String, message: String },
    #[error("{path}: {message}")]
    Local { path: String, message: String },
    #[error("{repo}: README.md: {source}")]
    Card {
        repo: String,
        source: super::card::CardError,
    },
    #[error("{0}")]
    Invalid(String),
}

impl PublishError {
    /// The HTTP status of the hub's answer, if it was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Conflict { status, .. } | Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A failure after which a commit may or may not have been applied (no answer, or a 5xx).
    pub(super) fn outcome_unknown(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
