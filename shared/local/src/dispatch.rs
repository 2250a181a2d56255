//! Delivers queued events to handlers: asynchronously, at least once, in no
//! guaranteed order, retried with exponential backoff within the rule's
//! retry policy, and dead-lettered when that is spent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use purser_core::Handler;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{Db, DbError, epoch_ms};

/// How long the local bus waits between attempts: `base × 2^(n-1)`, capped,
/// with full jitter (as AWS recommends, so retries do not arrive in waves).
#[derive(Debug, Clone, Copy)]
pub struct RetryTiming {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryTiming {
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let ceiling = exp.min(self.cap).as_millis() as u64;
        Duration::from_millis(ceiling / 2 + fastrand::u64(0..=ceiling / 2))
    }
}

/// A function the dispatcher can invoke, with its timeout from the template.
#[derive(Clone)]
pub struct Target {
    pub handler: Arc<dyn Handler>,
    pub timeout: Duration,
}

pub struct Dispatcher {
    pub db: Db,
    pub targets: Arc<BTreeMap<String, Target>>,
    pub wake: Arc<Notify>,
    pub timing: RetryTiming,
    pub concurrency: usize,
    pub grace: Duration,
}

struct Delivery {
    id: i64,
    event_id: String,
    target: String,
    function: String,
    payload: String,
    attempts: u32,
    max_retries: u32,
    max_age_ms: i64,
    first_ms: i64,
}

impl Dispatcher {
    /// Runs until `stop` is cancelled; then lets in-flight deliveries finish
    /// within the grace period. Whatever is unfinished stays queued and is
    /// delivered on the next start.
    pub async fn run(self, stop: CancellationToken) -> Result<(), DbError> {
        self.db
            .call(|c| c.execute("UPDATE deliveries SET in_flight = 0", []))
            .await?;
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let tracker = TaskTracker::new();
        let this = Arc::new(self);
        while !stop.is_cancelled() {
            let free = permits.available_permits();
            let batch = if free > 0 {
                this.claim_due(free).await?
            } else {
                Vec::new()
            };
            for delivery in batch {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let this = Arc::clone(&this);
                tracker.spawn(async move {
                    this.deliver(delivery).await;
                    drop(permit);
                    this.wake.notify_one();
                });
            }
            let wait = this.until_next_due().await?;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracker.close();
        if tokio::time::timeout(this.grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = tracker.len(),
                "deliveries still running at shutdown stay queued for the next start"
            );
        }
        Ok(())
    }

    async fn claim_due(&self, limit: usize) -> Result<Vec<Delivery>, DbError> {
        let now = epoch_ms(Utc::now());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let rows = {
                    let mut stmt = tx.prepare(
                        "SELECT id, event_id, target, function, payload, attempts, max_retries, max_age_ms, first_ms
                         FROM deliveries WHERE in_flight = 0 AND due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
                    )?;
                    stmt.query_map(params![now, limit as i64], |r| {
                        Ok(Delivery {
                            id: r.get(0)?,
                            event_id: r.get(1)?,
                            target: r.get(2)?,
                            function: r.get(3)?,
                            payload: r.get(4)?,
                            attempts: r.get(5)?,
                            max_retries: r.get(6)?,
                            max_age_ms: r.get(7)?,
                            first_ms: r.get(8)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?
                };
                for d in &rows {
                    tx.execute("UPDATE deliveries SET in_flight = 1 WHERE id = ?1", [d.id])?;
                }
                tx.commit()?;
                Ok(rows)
            })
            .await
    }

    async fn until_next_due(&self) -> Result<Duration, DbError> {
        let next: Option<i64> = self
            .db
            .call(|c| {
                c.query_row(
                    "SELECT MIN(due_ms) FROM deliveries WHERE in_flight = 0",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map(Option::flatten)
            })
            .await?;
        let idle = Duration::from_secs(1);
        Ok(match next {
            Some(due) => {
                let ms = due - epoch_ms(Utc::now());
                Duration::from_millis(ms.max(0) as u64).min(idle)
            }
            None => idle,
        })
    }

    async fn deliver(&self, d: Delivery) {
        let attempt = d.attempts + 1;
        let span =
            tracing::info_span!("delivery", event_id = %d.event_id, target = %d.target, attempt);
        let _enter = span.enter();
        let outcome = match self.targets.get(&d.function) {
            None => Err(format!(
                "no handler is registered for function {}",
                d.function
            )),
            Some(target) => invoke(target, &d.payload).await,
        };
        let result = match outcome {
            Ok(()) => {
                tracing::debug!("delivered");
                self.db
                    .call(move |c| c.execute("DELETE FROM deliveries WHERE id = ?1", [d.id]))
                    .await
                    .map(drop)
            }
            Err(error) => self.failed(d, attempt, error).await,
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record the delivery's outcome; it will be retried");
        }
    }

    async fn failed(&self, d: Delivery, attempt: u32, error: String) -> Result<(), DbError> {
        let now = epoch_ms(Utc::now());
        let retries_spent = attempt > d.max_retries;
        let too_old = now - d.first_ms > d.max_age_ms;
        if retries_spent || too_old {
            tracing::warn!(%error, "delivery failed for good; dead-lettered");
            return self
                .db
                .call(move |c| {
                    let tx = c.transaction()?;
                    tx.execute(
                        "INSERT INTO dead_letters (event_id, target, function, payload, attempts, error, failed_ms, max_retries, max_age_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![d.event_id, d.target, d.function, d.payload, attempt, error, now, d.max_retries, d.max_age_ms],
                    )?;
                    tx.execute("DELETE FROM deliveries WHERE id = ?1", [d.id])?;
                    tx.commit()
                })
                .await;
        }
        let delay = self.timing.delay(attempt);
        tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
        let due = now + delay.as_millis() as i64;
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE deliveries SET attempts = ?2, due_ms = ?3, in_flight = 0, last_error = ?4 WHERE id = ?1",
                    params![d.id, attempt, due, error],
                )
            })
            .await
            .map(drop)
    }
}

/// Invokes a handler as Lambda would: within its timeout, and a panic is a
/// failed invocation, not a dead dispatcher.
async fn invoke(target: &Target, payload: &str) -> Result<(), String> {
    let payload: Value =
        serde_json::from_str(payload).map_err(|e| format!("queued payload is not JSON: {e}"))?;
    let handler = Arc::clone(&target.handler);
    let call = tokio::spawn(async move { handler.handle(payload).await });
    match tokio::time::timeout(target.timeout, call).await {
        Err(_) => Err(format!(
            "Task timed out after {:.2} seconds",
            target.timeout.as_secs_f64()
        )),
        Ok(Err(join)) => Err(format!("the handler panicked: {join}")),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Ok(Ok(_))) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let t = RetryTiming {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d1 = t.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = t.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(t.delay(40) <= Duration::from_millis(1000));
        }
    }
}
