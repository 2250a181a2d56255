//! Runs the template's `Schedule` and `ScheduleV2` events: each firing
//! queues a delivery, so schedules get the same retries and dead letters as
//! rules. Like EventBridge, a firing missed while stopped is not made up.

use chrono::{DateTime, Utc};
use purser_eventbridge::ScheduleExpression;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use purser_core::SystemClock;
    use tokio::sync::Notify;

    use super::*;
    use crate::Db;
    use crate::bus::LocalBusConfig;

    fn timer(expression: &str, scheduler: bool, input: Option<Value>) -> Timer {
        Timer {
            name: "Reaper.Sweep".into(),
            function: "Reaper".into(),
            expression: ScheduleExpression::parse(expression).unwrap(),
            scheduler,
            input,
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn a_scheduled_rule_delivers_a_scheduled_event() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
            .unwrap()
            .to_utc();
        let p = timer("rate(5 minutes)", false, None).payload(at, "123456789012", "us-east-1");
        assert_eq!(p["detail-type"], "Scheduled Event");
        assert_eq!(p["source"], "aws.events");
        assert_eq!(p["time"], "2026-11-21T10:05:00Z");
        assert_eq!(
            p["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/Reaper.Sweep"
        );
        let p = timer("rate(5 minutes)", true, None).payload(at, "1", "r");
        assert_eq!(p, json!({}));
        let p = timer("rate(5 minutes)", true, Some(json!({"k": 1}))).payload(at, "1", "r");
        assert_eq!(p, json!({"k": 1}));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_schedule_queues_a_delivery_each_period() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let bus = LocalBus::new(
            db.clone(),
            LocalBusConfig {
                rules: vec![],
                buses: vec!["default".into()],
                region: "us-east-1".into(),
                own_account: "123456789012".into(),
                allow_aws_sources: false,
            },
            Arc::new(SystemClock),
            Arc::new(Notify::new()),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(timer("rate(1 hour)", false, None).run(
            bus,
            "123456789012".into(),
            "us-east-1".into(),
            stop.clone(),
        ));
        // Paused time jumps straight to each firing.
        tokio::time::sleep(std::time::Duration::from_secs(3 * 3600 + 60)).await;
        stop.cancel();
        task.await.unwrap();
        let times: Vec<String> = db
            .call(|c| {
                let mut s = c.prepare("SELECT payload FROM deliveries ORDER BY id")?;
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|p| {
                serde_json::from_str::<Value>(&p).unwrap()["time"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(times.len() >= 3, "fired {times:?}");
        let first = DateTime::parse_from_rfc3339(&times[0]).unwrap();
        let second = DateTime::parse_from_rfc3339(&times[1]).unwrap();
        assert_eq!((second - first).num_seconds(), 3600);
    }
}
