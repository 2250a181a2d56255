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
