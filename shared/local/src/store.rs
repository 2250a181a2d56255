//! The Store port on the local SQLite database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use purser_core::{Store, StoreError};
use rusqlite::params;

use crate::db::{Db, DbError, epoch_ms};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn unavailable(e: DbError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait]
impl Store for SqliteStore {
    async fn claim_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = key.to_string();
        let (now, expires) = (epoch_ms(now), epoch_ms(expires_at));
        // One statement: insert, or take over an expired claim. SQLite
        // serializes writers, so of concurrent claims exactly one changes a row.
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO idempotency (key, expires_ms) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET expires_ms = excluded.expires_ms
                     WHERE idempotency.expires_ms < ?3",
                    params![key, expires, now],
                )
            })
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[tokio::test]
    async fn a_key_is_claimed_once_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        let now = Utc::now();
        let later = now + Duration::hours(1);
        assert!(store.claim_once("k", now, later).await.unwrap());
        assert!(!store.claim_once("k", now, later).await.unwrap());
        assert!(store.claim_once("other", now, later).await.unwrap());
        let after_expiry = later + Duration::seconds(1);
        assert!(
            store
                .claim_once("k", after_expiry, after_expiry + Duration::hours(1))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_claims_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        let now = Utc::now();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .claim_once("same", now, now + Duration::minutes(5))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    }
}
