//! The EventBus port: puts Purser's events on EventBridge (or the local bus).

use async_trait::async_trait;

use crate::events::EventEntry;

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
