//! The running-resources port on the `running_resources` table: one row a
//! resource, written in `BEGIN IMMEDIATE` transactions (or one conditional
//! statement), so SQLite's write lock decides between concurrent starts,
//! advances and stops.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use purser_core::StoreError;
use purser_core::ports::{Run, RunKey, RunWhat, RunningResources, TOMBSTONE_KEPT, to_millis};
use purser_core::spend::Service;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, unavailable};
use crate::db::epoch_ms;

const COLUMNS: &str =
    "account_id, region, service, resource, what, started_ms, priced_until_ms, stopped_ms";

/// A row: key, what (JSON, NULL on a tombstone), started, priced until,
/// stopped.
type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

fn read_row(r: &rusqlite::Row<'_>) -> Result<Row, rusqlite::Error> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("a running resource's time {ms}")))
}

/// The run of a row; `None` for a tombstone.
fn decode(row: Row) -> Result<Option<Run>, StoreError> {
    let (account_id, region, service, resource, what, started, priced, stopped) = row;
    let Some(what) = what else {
        return Ok(None);
    };
    let corrupt = |e: serde_json::Error| {
        StoreError::Corrupt(format!("the running resource {resource:?}: {e}"))
    };
    let service: Service =
        serde_json::from_value(serde_json::Value::String(service.clone())).map_err(corrupt)?;
    let what: RunWhat = serde_json::from_str(&what).map_err(corrupt)?;
    Ok(Some(Run {
        key: RunKey {
            account_id,
            region,
            service,
            resource,
        },
        what,
        started_at: time(started)?,
        priced_until: time(priced)?,
        stopped_at: stopped.map(time).transpose()?,
    }))
}

fn encode_what(what: &RunWhat) -> Result<String, StoreError> {
    serde_json::to_string(what).map_err(|e| StoreError::Corrupt(format!("a run's kind: {e}")))
}

#[async_trait]
impl RunningResources for SqliteStore {
    async fn start_run(&self, run: &Run) -> Result<bool, StoreError> {
        let key = run.key.clone();
        let what = encode_what(&run.what)?;
        let started = epoch_ms(run.started_at);
        let priced = epoch_ms(run.priced_until);
        self.db
            .call(move |c| {
                // Inserted, or over a tombstone or stopped run that stopped
                // before this start.
                let changed = c.execute(
                    "INSERT INTO running_resources
                         (account_id, region, service, resource, what, started_ms, priced_until_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (account_id, region, service, resource) DO UPDATE SET
                         what = excluded.what, started_ms = excluded.started_ms,
                         priced_until_ms = excluded.priced_until_ms,
                         stopped_ms = NULL, expires_ms = NULL
                     WHERE running_resources.stopped_ms IS NOT NULL
                       AND running_resources.stopped_ms < excluded.started_ms",
                    params![
                        key.account_id,
                        key.region,
                        key.service.as_str(),
                        key.resource,
                        what,
                        started,
                        priced
                    ],
                )?;
                Ok(changed == 1)
            })
            .await
            .map_err(unavailable)
    }

    async fn advance_run(
        &self,
        key: &RunKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let (from, to) = (epoch_ms(from), epoch_ms(to));
        self.db
            .call(move |c| {
                let changed = c.execute(
                    "UPDATE running_resources SET priced_until_ms = ?6
                     WHERE account_id = ?1 AND region = ?2 AND service = ?3 AND resource = ?4
                       AND priced_until_ms = ?5 AND what IS NOT NULL",
                    params![
                        key.account_id,
                        key.region,
                        key.service.as_str(),
                        key.resource,
                        from,
                        to
                    ],
                )?;
                Ok(changed == 1)
            })
            .await
            .map_err(unavailable)
    }

    async fn stop_run(&self, key: &RunKey, at: DateTime<Utc>) -> Result<Option<Run>, StoreError> {
        let key = key.clone();
        let at = epoch_ms(to_millis(at));
        let kept = TOMBSTONE_KEPT.num_milliseconds();
        let row = self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let select = format!(
                    "SELECT {COLUMNS} FROM running_resources
                     WHERE account_id = ?1 AND region = ?2 AND service = ?3 AND resource = ?4"
                );
                let ids = params![
                    key.account_id,
                    key.region,
                    key.service.as_str(),
                    key.resource
                ];
                let found = tx.query_row(&select, ids, read_row).optional()?;
                let row = match found {
                    None => {
                        // A tombstone: a start delivered later, from `at`
                        // or before, stays out.
                        tx.execute(
                            "INSERT INTO running_resources
                                 (account_id, region, service, resource, what, started_ms,
                                  priced_until_ms, stopped_ms, expires_ms)
                             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5, ?5, ?6)",
                            params![
                                key.account_id,
                                key.region,
                                key.service.as_str(),
                                key.resource,
                                at,
                                at + kept
                            ],
                        )?;
                        None
                    }
                    Some(row) if row.7.is_some() => Some(row),
                    // A stop of an earlier run than this one.
                    Some(row) if row.5 > at => None,
                    Some(mut row) => {
                        let stopped = at.max(row.6);
                        tx.execute(
                            "UPDATE running_resources SET stopped_ms = ?5, expires_ms = ?6
                             WHERE account_id = ?1 AND region = ?2 AND service = ?3
                               AND resource = ?4",
                            params![
                                key.account_id,
                                key.region,
                                key.service.as_str(),
                                key.resource,
                                stopped,
                                stopped + kept
                            ],
                        )?;
                        row.7 = Some(stopped);
                        Some(row)
                    }
                };
                tx.commit()?;
                Ok(row)
            })
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => decode(row),
            None => Ok(None),
        }
    }

    async fn running(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        let now = epoch_ms(now);
        let rows = self
            .db
            .call(move |c| {
                c.execute(
                    "DELETE FROM running_resources
                     WHERE expires_ms < ?1 AND stopped_ms IS NOT NULL
                       AND priced_until_ms >= stopped_ms",
                    [now],
                )?;
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM running_resources
                     WHERE what IS NOT NULL
                       AND (stopped_ms IS NULL OR priced_until_ms < stopped_ms)
                     ORDER BY account_id, region, service, resource"
                ))?;
                let rows = statement
                    .query_map([], read_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(unavailable)?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            runs.extend(decode(row)?);
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    //! The port's contract (`purser_contract::running`, shared with
    //! `DynamoStore`).

    use std::sync::Arc;

    use purser_contract::running::Fixture;

    use super::*;
    use crate::db::Db;

    async fn fresh() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        Some(Fixture::new(Arc::new(store)).keeping(dir))
    }

    purser_contract::running_contract!(fresh);
}
