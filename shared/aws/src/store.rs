//! The [`Store`] port on Purser's single DynamoDB table.
//!
//! The table (`infra/template.yaml`) has a string partition key `pk`, a
//! string sort key `sk` and the TTL attribute `expires_at` (epoch seconds).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use purser_core::{Store, StoreError};

/// Sort key of idempotency items; their partition key is `IDEMPOTENCY#<key>`.
const IDEMPOTENCY: &str = "IDEMPOTENCY";

/// Claims a key only if nobody holds it: absent, or its claim expired.
/// DynamoDB deletes expired items lazily (up to days later), so the
/// condition must not rely on TTL having removed them.
const CLAIM_CONDITION: &str = "attribute_not_exists(#pk) OR #expires_at < :now";

/// Purser's state in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl Store for DynamoStore {
    /// One conditional `PutItem`, so DynamoDB decides between concurrent
    /// claims. Times are whole seconds, the unit of DynamoDB's TTL: a claim
    /// is held until the whole second after `expires_at`, never less.
    async fn claim_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("{IDEMPOTENCY}#{key}")))
            .item("sk", AttributeValue::S(IDEMPOTENCY.into()))
            .item(
                "expires_at",
                AttributeValue::N(expires_at.timestamp().to_string()),
            )
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(table = %self.table, key, claimed = true, "claim_once");
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!(table = %self.table, key, claimed = false, "claim_once");
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(format!(
                "PutItem on table {}: {}",
                self.table,
                DisplayErrorContext(&e)
            ))),
        }
    }
}
