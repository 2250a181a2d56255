//! `recorder`: deployments and invocations from every member account into
//! the data lake, and invocation costs into the streaming spend counters.
//!
//! Triggered by `InvocationsReported` (the telemetry extension),
//! `DeploymentReported` (CI) and `CloudFormation Stack Status Change`
//! (forwarded by the member-account StackSet). Its own output,
//! `TeamSpendUpdated`, matches none of its rules: no event loops.

use async_trait::async_trait;
use purser_core::handler::{each_queued_event, event_of, is_queue_batch};
use purser_core::lake::{
    DEPLOYMENT_REPORTED, INVOCATIONS_REPORTED, STACK_STATUS_CHANGE, TELEMETRY_SOURCE,
};
use purser_core::lake::{Recorded, Recorder, RecorderError};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct RecorderHandler {
    recorder: Recorder,
}

impl RecorderHandler {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.recorder()?))
    }

    pub fn new(recorder: Recorder) -> Self {
        Self { recorder }
    }
}

fn failed(e: RecorderError) -> HandlerError {
    match e {
        // Retrying will not fix it; after the rule's retries it lands in the
        // dead-letter queue, where it can be read.
        RecorderError::Invalid(e) => HandlerError::bad_payload(e.to_string()),
        other => HandlerError::new("RecorderFailed", other.to_string()),
    }
}

#[async_trait]
impl Handler for RecorderHandler {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        // Invocation reports come through a fair queue, an account a
        // message group, so one account's flood does not delay the others.
        if is_queue_batch(&payload) {
            return each_queued_event(payload, |event| self.handle_event(event)).await;
        }
        self.handle_event(payload).await
    }
}

impl RecorderHandler {
    async fn handle_event(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        let outcome = match (event.source.as_str(), event.detail_type.as_str()) {
            (TELEMETRY_SOURCE, INVOCATIONS_REPORTED) => self.recorder.invocations(&event).await,
            (source, DEPLOYMENT_REPORTED) if !source.starts_with("aws.") => {
                self.recorder
                    .ci_deployment(&event.account, &event.region, &event.detail, event.time)
                    .await
            }
            ("aws.cloudformation", STACK_STATUS_CHANGE) => {
                self.recorder.cloudformation(&event).await
            }
            (source, detail_type) => {
                tracing::warn!(source, detail_type, "the recorder ignores this event");
                return Ok(Value::Null);
            }
        }
        .map_err(failed)?;
        Ok(match outcome {
            Recorded::Written {
                records,
                dead_lettered,
                refused,
            } => json!({"records": records, "dead_lettered": dead_lettered, "refused": refused}),
            Recorded::Duplicate => json!({"duplicate": true}),
        })
    }
}
