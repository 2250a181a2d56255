//! The Cleaner port: runs aws-nuke on a member account with the
//! configuration Purser generated for it ([`NukeTarget::config`]), one run
//! per pass, and tells how a run went. CodeBuild on AWS; locally a
//! simulation that finishes at once (and can be told to fail).
//!
//! [`NukeTarget::config`]: crate::recycling::NukeTarget::config

use async_trait::async_trait;

pub use crate::recycling::CleaningStatus;

#[async_trait]
pub trait Cleaner: Send + Sync {
    /// Starts a run on `account_id` with `config` (aws-nuke's, as
    /// generated) and returns its id. `pass` and `attempt` name the run
    /// within its cleaning ([`CleaningProgress`]): starting the same
    /// (account, pass, attempt) again soon after (a retried step) returns
    /// the first run's id rather than starting a second, for as long as
    /// the adapter remembers (CodeBuild's idempotency token: 5 minutes).
    ///
    /// [`CleaningProgress`]: crate::recycling::CleaningProgress
    async fn start(
        &self,
        account_id: &str,
        config: &str,
        pass: u32,
        attempt: u32,
    ) -> Result<String, CleanerError>;

    /// Where the run `run_id` is.
    async fn status(&self, run_id: &str) -> Result<CleaningStatus, CleanerError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleanerError {
    #[error("the cleaner is throttling Purser: {0}")]
    Throttled(String),
    /// No run of that id (or, at start, no cleaning project).
    #[error("not found by the cleaner: {0}")]
    NotFound(String),
    /// The cleaner refused the run as asked (bad input, a quota).
    #[error("the cleaner refused: {0}")]
    Refused(String),
    #[error("the cleaner could not be reached: {0}")]
    Unavailable(String),
}

impl CleanerError {
    /// Worth retrying with backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}
