//! The ports through which the domain reaches the world. Each has an AWS
//! adapter (`purser-aws`) and an embedded one (`purser-local`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event::EventEntry;

/// Puts events on an event bus.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts every entry, splitting into calls within the bus's limits and
    /// retrying entries the bus refused for a passing reason. Returns an
    /// error naming the entries that still were not accepted.
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{} of {total} events were not accepted: {}", .rejected.len(), summarize(.rejected))]
    Rejected {
        total: usize,
        rejected: Vec<RejectedEntry>,
    },
    #[error("the event bus could not be reached: {0}")]
    Unavailable(String),
}

/// An entry the bus refused, with the bus's own error code and message.
#[derive(Debug, Clone)]
pub struct RejectedEntry {
    pub entry: EventEntry,
    pub code: String,
    pub message: String,
}

fn summarize(rejected: &[RejectedEntry]) -> String {
    rejected
        .iter()
        .map(|r| format!("{} ({})", r.code, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Purser's state. This issue brings idempotency keys, which every handler
/// uses to act once on events that arrive at least once; accounts, teams,
/// budgets and spend counters join it with the features that own them.
#[async_trait]
pub trait Store: Send + Sync {
    /// Claims `key` until `expires_at`. Returns `true` for the first claim
    /// and `false` while an earlier claim stands; an expired claim can be
    /// taken again. Atomic: of concurrent claims exactly one wins.
    async fn claim_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store could not be reached: {0}")]
    Unavailable(String),
    #[error("the store holds data Purser cannot read: {0}")]
    Corrupt(String),
}
