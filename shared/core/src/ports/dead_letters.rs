//! The DeadLetterCount port: how many deliveries Purser gave up on and
//! keeps for a person to look at (the console's admin page shows it). SQS
//! on AWS (`DeadLetterQueue`), the local bus's dead-letter table locally.

use async_trait::async_trait;

#[async_trait]
pub trait DeadLetterCount: Send + Sync {
    /// How many dead letters wait (approximate on AWS, as SQS counts).
    async fn waiting(&self) -> Result<u64, DeadLetterCountError>;
}

#[derive(Debug, thiserror::Error)]
#[error("the dead-letter queue could not be read: {0}")]
pub struct DeadLetterCountError(pub String);
