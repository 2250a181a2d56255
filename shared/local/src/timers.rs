//! Runs the template's `Schedule` and `ScheduleV2` events: each firing
//! queues a delivery, so schedules get the same retries and dead letters as
//! rules. Like EventBridge, a firing missed while stopped is not made up.

use chrono::{DateTime, Utc};
use purser_core::schedule::ScheduleExpression;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::bus::LocalBus;
use crate::template::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Timer {
    pub name: String,
    pub function: String,
    pub expression: ScheduleExpression,
    pub scheduler: bool,
    pub input: Option<Value>,
    pub retry: RetryPolicy,
}

impl Timer {
    /// What the target receives: the input as given, or, for a scheduled
    /// rule without one, EventBridge's "Scheduled Event".
    pub fn payload(&self, at: DateTime<Utc>, account: &str, region: &str) -> Value {
        if let Some(input) = &self.input {
            return input.clone();
        }
        if self.scheduler {
            return json!({});
        }
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": region,
            "resources": [format!("arn:aws:events:{region}:{account}:rule/{}", self.name)],
            "detail": {}
        })
    }

    pub async fn run(
        self,
        bus: LocalBus,
        account: String,
        region: String,
        stop: CancellationToken,
    ) {
        // Firings are placed on tokio's monotonic clock, so a wall-clock jump
        // neither skips nor repeats them (and tests can run in paused time).
        let (start, anchor) = (tokio::time::Instant::now(), Utc::now());
        let mut after = anchor;
        while let Some(next) = self.expression.next_after(anchor, after) {
            let offset = (next - anchor).to_std().unwrap_or_default();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(start + offset) => {}
            }
            let payload = self.payload(next, &account, &region);
            match bus
                .enqueue(&self.name, &self.function, &payload, self.retry)
                .await
            {
                Ok(()) => tracing::debug!(timer = %self.name, at = %next, "schedule fired"),
                Err(e) => {
                    tracing::error!(timer = %self.name, error = %e, "could not queue a schedule's firing")
                }
            }
            after = next;
        }
        tracing::info!(timer = %self.name, "schedule will not fire again");
    }
}
