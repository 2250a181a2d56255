//! Delivers queued events to handlers: asynchronously, at least once, in no
//! guaranteed order, retried with exponential backoff within the rule's
//! retry policy, and dead-lettered when that is spent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use purser_core::Handler;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

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
    lane: String,
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
                let ids = fair_share(&tx, now, limit)?;
                let mut rows = Vec::with_capacity(ids.len());
                {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, event_id, target, function, payload, lane, attempts, max_retries, max_age_ms, first_ms
                         FROM deliveries WHERE id = ?1",
                    )?;
                    for id in ids {
                        rows.push(stmt.query_row([id], |r| {
                            Ok(Delivery {
                                id: r.get(0)?,
                                event_id: r.get(1)?,
                                target: r.get(2)?,
                                function: r.get(3)?,
                                payload: r.get(4)?,
                                lane: r.get(5)?,
                                attempts: r.get(6)?,
                                max_retries: r.get(7)?,
                                max_age_ms: r.get(8)?,
                                first_ms: r.get(9)?,
                            })
                        })?);
                        tx.execute("UPDATE deliveries SET in_flight = 1 WHERE id = ?1", [id])?;
                    }
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
        let span = tracing::info_span!("delivery", event_id = %d.event_id, target = %d.target,
            lane = %d.lane, attempt = d.attempts + 1);
        // Instrumented, not entered: a span entered across an await is left
        // entered on whichever thread the task moves to, and tracing's
        // registry panics on it, killing the delivery with its row in flight.
        self.deliver_in_span(d).instrument(span).await
    }

    async fn deliver_in_span(&self, d: Delivery) {
        let attempt = d.attempts + 1;
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
                        "INSERT INTO dead_letters (event_id, target, function, payload, attempts, error, failed_ms, max_retries, max_age_ms, lane)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![d.event_id, d.target, d.function, d.payload, attempt, error, now, d.max_retries, d.max_age_ms, d.lane],
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

/// The ids of up to `limit` due deliveries, shared among lanes as an SQS
/// fair queue shares its consumers among message groups: each pick goes to
/// the lane with the fewest deliveries in flight, then the longest waiting,
/// so a lane with a deep backlog (one member account's flood) takes turns
/// with a lane holding one event (another team's report that crosses its
/// budget) instead of being served first. Lanes are walked through the
/// index, one seek each, however deep their backlogs.
fn fair_share(
    conn: &rusqlite::Connection,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<i64>, rusqlite::Error> {
    let lanes: Vec<String> = conn
        .prepare_cached(
            "WITH RECURSIVE lanes(lane) AS (
                 SELECT MIN(lane) FROM deliveries WHERE in_flight = 0
                 UNION ALL
                 SELECT (SELECT MIN(lane) FROM deliveries WHERE in_flight = 0 AND lane > lanes.lane)
                 FROM lanes WHERE lanes.lane IS NOT NULL
             )
             SELECT lane FROM lanes WHERE lane IS NOT NULL",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut busy: HashMap<String, usize> = conn
        .prepare_cached("SELECT lane, COUNT(*) FROM deliveries WHERE in_flight = 1 GROUP BY lane")?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?
        .collect::<Result<_, _>>()?;
    // Each lane's due deliveries, oldest first (at most `limit` each).
    let mut due: Vec<(String, std::collections::VecDeque<(i64, i64)>)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, due_ms FROM deliveries
             WHERE in_flight = 0 AND lane = ?1 AND due_ms <= ?2 ORDER BY due_ms, id LIMIT ?3",
        )?;
        for lane in lanes {
            let waiting = stmt
                .query_map(rusqlite::params![lane, now_ms, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<std::collections::VecDeque<_>, _>>()?;
            if !waiting.is_empty() {
                due.push((lane, waiting));
            }
        }
    }
    let mut picked = Vec::with_capacity(limit);
    while picked.len() < limit {
        let Some((lane, waiting)) = due
            .iter_mut()
            .filter(|(_, waiting)| !waiting.is_empty())
            .min_by_key(|(lane, waiting)| (busy.get(lane).copied().unwrap_or(0), waiting[0].1))
        else {
            break;
        };
        if let Some((id, _)) = waiting.pop_front() {
            picked.push(id);
            *busy.entry(lane.clone()).or_default() += 1;
        }
    }
    Ok(picked)
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
        // An SQS batch the function answered with failed items (its
        // `ReportBatchItemFailures`): those messages come back, as on AWS.
        Ok(Ok(Ok(answer))) => match answer["batchItemFailures"].as_array() {
            Some(failed) if !failed.is_empty() => Err(format!(
                "{} message(s) of the batch failed: {}",
                failed.len(),
                answer["errors"]
            )),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queues `n` deliveries in `lane`, due at `due_ms`.
    fn queue(db: &Db, lane: &str, n: usize, due_ms: i64) {
        let lane = lane.to_string();
        db.call_blocking(move |c| {
            for i in 0..n {
                c.execute(
                    "INSERT INTO deliveries (event_id, target, function, payload, lane, max_retries, max_age_ms, first_ms, due_ms)
                     VALUES (?1, 'R', 'F', '{}', ?2, 8, 3600000, ?3, ?3)",
                    params![format!("{lane}-{i}"), lane, due_ms],
                )?;
            }
            Ok(())
        })
        .unwrap();
    }

    fn lanes_of(db: &Db, ids: Vec<i64>) -> Vec<String> {
        db.call_blocking(move |c| {
            ids.iter()
                .map(|id| {
                    c.query_row("SELECT lane FROM deliveries WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                })
                .collect()
        })
        .unwrap()
    }

    fn claim(db: &Db, now: i64, limit: usize) -> Vec<i64> {
        db.call_blocking(move |c| {
            let ids = fair_share(c, now, limit)?;
            for id in &ids {
                c.execute("UPDATE deliveries SET in_flight = 1 WHERE id = ?1", [id])?;
            }
            Ok(ids)
        })
        .unwrap()
    }

    #[test]
    fn a_deep_backlog_takes_turns_with_a_lane_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        // A flood queued first, then one report of a quiet account and one
        // direct delivery: oldest first would serve the flood for a while.
        queue(&db, "InvocationsQueue/111111111111", 5_000, 1_000);
        queue(&db, "InvocationsQueue/222222222222", 1, 2_000);
        queue(&db, "", 1, 3_000);
        let first = lanes_of(&db, claim(&db, 10_000, 3));
        assert_eq!(
            first,
            [
                "InvocationsQueue/111111111111",
                "InvocationsQueue/222222222222",
                ""
            ],
            "one each, oldest lane first"
        );
        // The quiet lanes are empty now; the flood takes every free slot.
        let next = lanes_of(&db, claim(&db, 10_000, 16));
        assert_eq!(next.len(), 16);
        assert!(next.iter().all(|l| l == "InvocationsQueue/111111111111"));
        // A lane with fewer deliveries in flight goes first, even if newer.
        queue(&db, "InvocationsQueue/333333333333", 2, 9_000);
        let busy_last = lanes_of(&db, claim(&db, 10_000, 2));
        assert_eq!(
            busy_last,
            [
                "InvocationsQueue/333333333333",
                "InvocationsQueue/333333333333"
            ],
            "17 of the flood are in flight, none of the newcomer's"
        );
        // Nothing that is not due yet is claimed.
        queue(&db, "later", 1, 20_000);
        assert!(!lanes_of(&db, claim(&db, 10_000, 5_000)).contains(&"later".to_string()));
    }

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
