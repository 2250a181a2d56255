//! Reads the local archive and dead letters, for `purser events archive`
//! and `purser events dlq`. Works whether or not `purser up` is running.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use crate::db::{Db, DbError};

#[derive(Debug, Clone, Default)]
pub struct ArchiveFilter {
    pub detail_type: Option<String>,
    pub source: Option<String>,
    /// Only events received at or after this time (epoch milliseconds).
    pub since_ms: Option<i64>,
    /// Only events after this archive position (for following new events).
    pub after_seq: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchivedEvent {
    pub seq: i64,
    pub bus: String,
    pub envelope: Value,
}

pub fn archive(db: &Db, filter: &ArchiveFilter) -> Result<Vec<ArchivedEvent>, DbError> {
    let f = filter.clone();
    db.call_blocking(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT seq, bus, envelope FROM archive
             WHERE (?1 IS NULL OR detail_type = ?1)
               AND (?2 IS NULL OR source = ?2)
               AND (?3 IS NULL OR received_ms >= ?3)
               AND seq > COALESCE(?4, 0)
             ORDER BY seq LIMIT ?5",
        )?;
        stmt.query_map(
            params![
                f.detail_type,
                f.source,
                f.since_ms,
                f.after_seq,
                f.limit as i64
            ],
            |r| {
                let text: String = r.get(2)?;
                Ok(ArchivedEvent {
                    seq: r.get(0)?,
                    bus: r.get(1)?,
                    envelope: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                })
            },
        )?
        .collect()
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub event_id: String,
    pub target: String,
    pub function: String,
    pub attempts: u32,
    pub error: String,
    pub failed_at: String,
    pub payload: Value,
}

pub fn dead_letters(db: &Db, limit: usize) -> Result<Vec<DeadLetter>, DbError> {
    db.call_blocking(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT event_id, target, function, attempts, error, failed_ms, payload
             FROM dead_letters ORDER BY id DESC LIMIT ?1",
        )?;
        stmt.query_map([limit as i64], |r| {
            let failed: i64 = r.get(5)?;
            let payload: String = r.get(6)?;
            Ok(DeadLetter {
                event_id: r.get(0)?,
                target: r.get(1)?,
                function: r.get(2)?,
                attempts: r.get(3)?,
                error: r.get(4)?,
                failed_at: chrono::DateTime::from_timestamp_millis(failed)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
            })
        })?
        .collect()
    })
}

/// Puts the dead letters (of `target` only, when given) back on the
/// delivery queue as new deliveries with their rule's retry policy, and
/// removes them from the dead letters, in one transaction: a running
/// `purser up` delivers them within a second, and what fails again is
/// dead-lettered again. Handlers are idempotent, so a redrive is safe.
/// Returns how many were redriven.
pub fn redrive(db: &Db, target: Option<&str>) -> Result<usize, DbError> {
    let target = target.map(String::from);
    let now = chrono::Utc::now().timestamp_millis();
    db.call_blocking(move |conn| {
        let tx = conn.transaction()?;
        let moved = tx.execute(
            "INSERT INTO deliveries (event_id, target, function, payload, lane, attempts, max_retries, max_age_ms, first_ms, due_ms)
             SELECT event_id, target, function, payload, lane, 0, max_retries, max_age_ms, ?1, ?1
             FROM dead_letters WHERE ?2 IS NULL OR target = ?2 ORDER BY id",
            params![now, target],
        )?;
        tx.execute(
            "DELETE FROM dead_letters WHERE ?1 IS NULL OR target = ?1",
            params![target],
        )?;
        tx.commit()?;
        Ok(moved)
    })
}

/// Deliveries still queued (including retries waiting for their turn).
pub fn pending_deliveries(db: &Db) -> Result<i64, DbError> {
    db.call_blocking(|c| c.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0)))
}

/// Deliveries were still queued when [`settle`] gave up.
#[derive(Debug, thiserror::Error)]
#[error("the local bus did not settle: {0}")]
pub struct Unsettled(pub String);

/// Waits until every event put so far has been delivered: no delivery is
/// queued, retrying or running (a handler's own puts are queued before its
/// delivery is removed, so an empty queue is a quiet system). Dead-lettered
/// deliveries count as done. Gives up after `within`, saying how many were
/// left. Tests and the demo use it to show that nothing more happened,
/// instead of sleeping.
pub async fn settle(db: &Db, within: std::time::Duration) -> Result<(), Unsettled> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let queued: i64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0)))
            .await
            .map_err(|e| Unsettled(e.to_string()))?;
        if queued == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Unsettled(format!(
                "{queued} deliveries still queued after {within:?}"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The local bus's dead letters, counted for the console (the
/// `DeadLetterCount` port).
pub struct LocalDeadLetters {
    db: Db,
}

impl LocalDeadLetters {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl purser_core::ports::DeadLetterCount for LocalDeadLetters {
    async fn waiting(&self) -> Result<u64, purser_core::ports::DeadLetterCountError> {
        let count: i64 = self
            .db
            .call(|c| c.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0)))
            .await
            .map_err(|e| purser_core::ports::DeadLetterCountError(e.to_string()))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
