//! The LakeSink port: appends records to the data lake's tables (Firehose
//! on AWS, Parquet files locally).

use async_trait::async_trait;
use serde_json::Value;

use crate::lake::LakeTable;

/// Appends records to the data lake's tables.
#[async_trait]
pub trait LakeSink: Send + Sync {
    /// Appends `records` (JSON objects) to `table`. Records the lake refuses
    /// after retries go to its dead-letter location and are counted in
    /// `dead_lettered`, never dropped; an error means nothing could be
    /// stored, and the caller should retry.
    async fn append(&self, table: LakeTable, records: Vec<Value>) -> Result<Appended, LakeError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    pub written: usize,
    pub dead_lettered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("the data lake could not be reached: {0}")]
    Unavailable(String),
}
