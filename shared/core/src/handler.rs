//! The contract between a function and whatever invokes it.
//!
//! A handler takes the JSON payload Lambda would hand the function (an
//! EventBridge envelope, an API Gateway HTTP API v2 request, …) and returns
//! the JSON Lambda would return. `lambda_runtime` drives it on AWS; the local
//! runtime builds the same payloads and calls the same handler in process.

use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError>;
}

/// A failed invocation: the event is retried by the caller (EventBridge, or
/// the local bus) according to the rule's retry policy.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct HandlerError {
    /// A short machine-readable kind, like Lambda's `errorType`.
    pub kind: String,
    pub message: String,
}

impl HandlerError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// The payload was not what the function's trigger delivers.
    pub fn bad_payload(message: impl Into<String>) -> Self {
        Self::new("InvalidPayload", message)
    }
}

/// The EventBridge envelope a rule or scheduled rule delivers.
pub fn event_of(payload: Value) -> Result<crate::Event, HandlerError> {
    serde_json::from_value(payload)
        .map_err(|e| HandlerError::bad_payload(format!("not an EventBridge event: {e}")))
}

/// The detail-type of EventBridge's scheduled rules.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// Whether `payload` is a batch from an SQS event source mapping.
pub fn is_queue_batch(payload: &Value) -> bool {
    payload.get("Records").is_some_and(Value::is_array)
}

/// Handles a batch from an SQS event source mapping whose queue a rule
/// feeds (each message's body is the EventBridge event the rule sent), one
/// message at a time with `handle`, and answers Lambda's partial batch
/// response: only the messages that failed come back to the queue (the
/// mapping's `ReportBatchItemFailures`), so one bad message neither blocks
/// nor repeats the others.
pub async fn each_queued_event<F, Fut>(payload: Value, mut handle: F) -> Result<Value, HandlerError>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, HandlerError>>,
{
    let Some(Value::Array(records)) = payload.get("Records") else {
        return Err(HandlerError::bad_payload("not an SQS batch: no Records"));
    };
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    for record in records {
        let id = record["messageId"].as_str().unwrap_or_default().to_string();
        let outcome = match record["body"].as_str().map(serde_json::from_str::<Value>) {
            Some(Ok(event)) if !is_queue_batch(&event) => handle(event).await,
            _ => Err(HandlerError::bad_payload(
                "the message's body is not the EventBridge event a rule sends",
            )),
        };
        if let Err(e) = outcome {
            tracing::warn!(message_id = %id, error = %e, "a queued event failed; it comes back to the queue");
            failures.push(serde_json::json!({"itemIdentifier": id}));
            errors.push(Value::String(e.to_string()));
        }
    }
    Ok(serde_json::json!({"batchItemFailures": failures, "errors": errors}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(bodies: &[&str]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| serde_json::json!({"messageId": format!("m{i}"), "body": body}))
            .collect();
        serde_json::json!({"Records": records})
    }

    #[tokio::test]
    async fn only_the_failed_messages_of_a_batch_come_back() {
        let payload = batch(&[r#"{"n": 1}"#, r#"{"n": 2}"#, "not json", r#"{"n": 4}"#]);
        let mut seen = Vec::new();
        let answer = each_queued_event(payload, |event| {
            seen.push(event["n"].as_i64());
            let n = event["n"].as_i64().unwrap_or_default();
            async move {
                if n == 2 {
                    Err(HandlerError::new("Failed", "two"))
                } else {
                    Ok(Value::Null)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(seen, [Some(1), Some(2), Some(4)]);
        assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}])
        );
        assert!(is_queue_batch(&batch(&[])));
        assert!(!is_queue_batch(&serde_json::json!({"detail": {}})));
    }
}
