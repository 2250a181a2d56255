//! `recorder`: deployments and invocations from every member account into
//! the data lake, and invocation costs into the streaming spend counters.
//!
//! Triggered by `InvocationsReported` (the telemetry extension),
//! `DeploymentReported` (CI), `CloudFormation Stack Status Change`
//! (forwarded by the member-account StackSet) and S3's `Object Created` for
//! the metric streams' objects that land in the lake bucket (usage beyond
//! Lambda); EC2 instance, ECS task (Fargate) and SageMaker training job and
//! endpoint state changes, and EC2's launch calls, forwarded by member
//! accounts (what runs and costs by the second); Purser's own account
//! events that start and end leases (`AccountReady`, `AccountCloseRequested`,
//! `AccountCleaningStarted`, `AccountRecycled`, `AccountClosed`: the lake's
//! lease history); and its `Accrual`
//! schedule, which prices what still runs every 5 minutes. Its own output,
//! `TeamSpendUpdated` and `UnpricedUsage`, matches none of its rules: no
//! event loops.

use async_trait::async_trait;
use purser_core::events::PURSER_SOURCE;
use purser_core::handler::{SCHEDULED_EVENT, each_queued_event, event_of, is_queue_batch};
use purser_core::lake::{
    API_CALL, EC2_STATE_CHANGE, ECS_TASK_STATE_CHANGE, SAGEMAKER_ENDPOINT_STATE_CHANGE,
    SAGEMAKER_TRAINING_JOB_STATE_CHANGE,
};
use purser_core::lake::{
    DEPLOYMENT_REPORTED, INVOCATIONS_REPORTED, STACK_STATUS_CHANGE, TELEMETRY_SOURCE,
};
use purser_core::lake::{LEASE_ENDS, LEASE_STARTS, Recorded, Recorder, RecorderError};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

/// S3's event for a new object (EventBridge notifications on the bucket).
const OBJECT_CREATED: &str = "Object Created";

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
            // A member account's metric stream landed an object in the
            // lake bucket (S3's event, on Purser's default bus).
            ("aws.s3", OBJECT_CREATED) => {
                let Some(key) = event.detail.pointer("/object/key").and_then(Value::as_str) else {
                    return Err(HandlerError::bad_payload(
                        "detail.object.key is missing or not a string",
                    ));
                };
                self.recorder.landed(key).await
            }
            // What runs in a member account, forwarded from its bus.
            ("aws.ec2", EC2_STATE_CHANGE | API_CALL)
            | ("aws.ecs", ECS_TASK_STATE_CHANGE)
            | (
                "aws.sagemaker",
                SAGEMAKER_TRAINING_JOB_STATE_CHANGE | SAGEMAKER_ENDPOINT_STATE_CHANGE,
            ) => self.recorder.resource(&event).await,
            // A lease starts or ends: Purser's own account events (the
            // rule takes them from Purser's account only).
            (PURSER_SOURCE, detail_type)
                if LEASE_STARTS.contains(&detail_type) || LEASE_ENDS.contains(&detail_type) =>
            {
                self.recorder.lease(&event).await
            }
            // The accrual: what still runs, priced up to now.
            ("aws.events", SCHEDULED_EVENT) => {
                let accrued = self.recorder.accrue().await.map_err(failed)?;
                return Ok(json!({"runs": accrued.runs, "priced": accrued.priced,
                    "failed": accrued.failed}));
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
