//! `DeadLetterCount` on SQS: the approximate number of messages in
//! Purser's dead-letter queue, visible or held by a reader (a redrive in
//! progress), from one `GetQueueAttributes`.

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use purser_core::ports::{DeadLetterCount, DeadLetterCountError};

#[derive(Debug, Clone)]
pub struct SqsDeadLetterCount {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetterCount {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(aws_sdk_sqs::Client::new(config), queue_url)
    }
}

#[async_trait]
impl DeadLetterCount for SqsDeadLetterCount {
    async fn waiting(&self) -> Result<u64, DeadLetterCountError> {
        let visible = QueueAttributeName::ApproximateNumberOfMessages;
        let held = QueueAttributeName::ApproximateNumberOfMessagesNotVisible;
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(visible.clone())
            .attribute_names(held.clone())
            .send()
            .await
            .map_err(|e| {
                DeadLetterCountError(format!(
                    "GetQueueAttributes on {}: {}",
                    self.queue_url,
                    DisplayErrorContext(&e)
                ))
            })?;
        let attributes = output.attributes();
        let count = |name: &QueueAttributeName| -> Result<u64, DeadLetterCountError> {
            attributes.and_then(|a| a.get(name)).map_or(Ok(0), |n| {
                n.parse().map_err(|_| {
                    DeadLetterCountError(format!("SQS answered {name} = {n:?}, not a count"))
                })
            })
        };
        Ok(count(&visible)?.saturating_add(count(&held)?))
    }
}
