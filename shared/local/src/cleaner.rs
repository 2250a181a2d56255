//! A simulated [`Cleaner`], in the same SQLite file, for `purser up`, the
//! demo and the tests: every run is recorded (with the configuration it
//! was given) and finishes as it starts, successfully, unless the account
//! was told to fail ([`SimulatedCleaner::fail_account`]), which fails its
//! next runs with a reason, as a CodeBuild build of aws-nuke would.
//!
//! A run that succeeds removes what the simulated organization knows lives
//! in the account: its simulated Lambda functions (`lambdas.rs`); a
//! failing one leaves them.
//!
//! Starting the same (account, pass, attempt) again within five minutes
//! of the clock answers the first run, as CodeBuild's idempotency token
//! does; later, it is a new run (the account's next cleaning).

use std::sync::Arc;

use chrono::{DateTime, Duration};
use purser_core::Clock;
use purser_core::ports::{Cleaner, CleanerError, CleaningStatus};
use purser_core::recycling::CleaningRun;
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError, epoch_ms};

/// How long a start is remembered (CodeBuild keeps a token 5 minutes).
const IDEMPOTENCY_WINDOW: Duration = Duration::minutes(5);

/// The reason a run told to fail gives.
pub const SIMULATED_FAILURE: &str =
    "BUILD: COMMAND_EXECUTION_ERROR: simulated: resources remain after aws-nuke";

#[derive(Clone)]
pub struct SimulatedCleaner {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SimulatedCleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedCleaner")
            .field("db", &self.db)
            .finish()
    }
}

fn unavailable(e: DbError) -> CleanerError {
    CleanerError::Unavailable(e.to_string())
}

impl SimulatedCleaner {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The account's next `times` runs fail (0: none does any more).
    pub async fn fail_account(&self, account_id: &str, times: u32) -> Result<(), CleanerError> {
        let account_id = account_id.to_owned();
        self.db
            .call(move |conn| {
                if times == 0 {
                    conn.execute(
                        "DELETE FROM sim_cleaning_failures WHERE account_id = ?1",
                        [&account_id],
                    )?;
                } else {
                    conn.execute(
                        "INSERT INTO sim_cleaning_failures (account_id, remaining) VALUES (?1, ?2)
                         ON CONFLICT (account_id) DO UPDATE SET remaining = excluded.remaining",
                        params![account_id, times],
                    )?;
                }
                Ok(())
            })
            .await
            .map_err(unavailable)
    }

    /// The account's runs, oldest first (for `purser`, the demo, tests).
    pub async fn runs(&self, account_id: &str) -> Result<Vec<CleaningRun>, CleanerError> {
        let account_id = account_id.to_owned();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare(
                    "SELECT id, pass, attempt, started_ms FROM sim_cleaning_runs
                     WHERE account_id = ?1 ORDER BY started_ms, rowid",
                )?;
                let rows = statement.query_map([&account_id], |r| {
                    Ok(CleaningRun {
                        id: r.get(0)?,
                        account_id: account_id.clone(),
                        pass: r.get(1)?,
                        attempt: r.get(2)?,
                        started_at: DateTime::from_timestamp_millis(r.get(3)?).unwrap_or_default(),
                    })
                })?;
                rows.collect()
            })
            .await
            .map_err(unavailable)
    }
}

#[async_trait::async_trait]
impl Cleaner for SimulatedCleaner {
    async fn start(
        &self,
        account_id: &str,
        config: &str,
        pass: u32,
        attempt: u32,
    ) -> Result<String, CleanerError> {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CleanerError::Refused(format!(
                "{account_id:?} is not an account id"
            )));
        }
        let now = epoch_ms(self.clock.now());
        let since = now - IDEMPOTENCY_WINDOW.num_milliseconds();
        let (account_id, config) = (account_id.to_owned(), config.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let earlier: Option<String> = tx
                    .query_row(
                        "SELECT id FROM sim_cleaning_runs
                         WHERE account_id = ?1 AND pass = ?2 AND attempt = ?3 AND started_ms >= ?4
                         ORDER BY started_ms DESC LIMIT 1",
                        params![account_id, pass, attempt, since],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = earlier {
                    return Ok(id);
                }
                // A run told to fail uses up one of the account's failures.
                let remaining: Option<u32> = tx
                    .query_row(
                        "SELECT remaining FROM sim_cleaning_failures WHERE account_id = ?1",
                        [&account_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let fails = remaining.is_some();
                if remaining == Some(1) {
                    tx.execute(
                        "DELETE FROM sim_cleaning_failures WHERE account_id = ?1",
                        [&account_id],
                    )?;
                } else if fails {
                    tx.execute(
                        "UPDATE sim_cleaning_failures SET remaining = remaining - 1
                         WHERE account_id = ?1",
                        [&account_id],
                    )?;
                }
                // Named like a CodeBuild build: project, colon, uuid.
                let id = format!("purser-cleaner:{}", uuid::Uuid::new_v4());
                tx.execute(
                    "INSERT INTO sim_cleaning_runs
                         (id, account_id, pass, attempt, config, started_ms, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        account_id,
                        pass,
                        attempt,
                        config,
                        now,
                        fails.then_some(SIMULATED_FAILURE)
                    ],
                )?;
                // A clean run removes what the simulation knows lives in
                // the account: its Lambda functions (known from their
                // reports, `lambdas.rs`).
                if !fails {
                    tx.execute(
                        "DELETE FROM sim_functions WHERE account_id = ?1",
                        [&account_id],
                    )?;
                }
                tx.commit()?;
                Ok(id)
            })
            .await
            .map_err(unavailable)
    }

    async fn status(&self, run_id: &str) -> Result<CleaningStatus, CleanerError> {
        let id = run_id.to_owned();
        let found = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT reason FROM sim_cleaning_runs WHERE id = ?1",
                    [&id],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        match found {
            None => Err(CleanerError::NotFound(format!("run {run_id}"))),
            Some(None) => Ok(CleaningStatus::Succeeded),
            Some(Some(reason)) => Ok(CleaningStatus::Failed { reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use purser_core::ManualClock;
    use purser_core::recycling::{CleaningProgress, Next};

    const ACCOUNT: &str = "012345678901";

    fn fresh() -> (tempfile::TempDir, SimulatedCleaner, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let cleaner = SimulatedCleaner::new(db, clock.clone());
        (dir, cleaner, clock)
    }

    #[tokio::test]
    async fn a_clean_run_removes_the_accounts_functions_and_a_failed_one_keeps_them() {
        let (_dir, cleaner, _) = fresh();
        let lambdas = crate::lambdas::SimulatedLambdas::new(cleaner.db.clone());
        lambdas
            .create_function(ACCOUNT, "us-east-1", "checkout", None)
            .await
            .unwrap();
        lambdas
            .create_function("111111111111", "us-east-1", "other", None)
            .await
            .unwrap();
        let names = || -> Vec<String> {
            crate::lambdas::functions(&cleaner.db, None)
                .unwrap()
                .into_iter()
                .map(|f| f.name)
                .collect()
        };
        cleaner.fail_account(ACCOUNT, 1).await.unwrap();
        let failed = cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap();
        assert!(matches!(
            cleaner.status(&failed).await,
            Ok(CleaningStatus::Failed { .. })
        ));
        assert_eq!(names(), ["checkout", "other"]);
        cleaner.start(ACCOUNT, "{}", 1, 2).await.unwrap();
        assert_eq!(names(), ["other"]);
    }

    #[tokio::test]
    async fn a_run_succeeds_at_once_and_is_recorded() {
        let (_dir, cleaner, _) = fresh();
        let run = cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap();
        assert_eq!(cleaner.status(&run).await, Ok(CleaningStatus::Succeeded));
        let runs = cleaner.runs(ACCOUNT).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].id.as_str(), runs[0].pass, runs[0].attempt),
            (run.as_str(), 1, 1)
        );
    }

    #[tokio::test]
    async fn the_same_run_started_twice_is_one_run_until_the_window_passes() {
        let (_dir, cleaner, clock) = fresh();
        let first = cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap();
        assert_eq!(cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap(), first);
        assert_ne!(cleaner.start(ACCOUNT, "{}", 2, 1).await.unwrap(), first);
        clock.advance(Duration::minutes(6));
        assert_ne!(cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap(), first);
        assert_eq!(cleaner.runs(ACCOUNT).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn an_account_told_to_fail_fails_that_many_runs_and_quarantines() {
        let (_dir, cleaner, _) = fresh();
        cleaner.fail_account(ACCOUNT, 3).await.unwrap();
        let other = cleaner.start("111122223333", "{}", 1, 1).await.unwrap();
        assert_eq!(cleaner.status(&other).await, Ok(CleaningStatus::Succeeded));
        let mut progress = CleaningProgress::new();
        let next = loop {
            let run = cleaner
                .start(ACCOUNT, "{}", progress.pass(), progress.attempt())
                .await
                .unwrap();
            let status = cleaner.status(&run).await.unwrap();
            match progress.after(&status) {
                Next::RunAgain => continue,
                next => break next,
            }
        };
        assert_eq!(
            next,
            Next::Quarantine {
                reason: format!("3 cleaning runs failed; the last: {SIMULATED_FAILURE}")
            }
        );
        // Released, the next cleaning succeeds: the failures are used up.
        let run = cleaner.start(ACCOUNT, "{}", 1, 4).await.unwrap();
        assert_eq!(cleaner.status(&run).await, Ok(CleaningStatus::Succeeded));
    }

    #[tokio::test]
    async fn failing_can_be_called_off_and_unknown_runs_are_not_found() {
        let (_dir, cleaner, _) = fresh();
        cleaner.fail_account(ACCOUNT, 2).await.unwrap();
        cleaner.fail_account(ACCOUNT, 0).await.unwrap();
        let run = cleaner.start(ACCOUNT, "{}", 1, 1).await.unwrap();
        assert_eq!(cleaner.status(&run).await, Ok(CleaningStatus::Succeeded));
        assert!(matches!(
            cleaner.status("purser-cleaner:nope").await,
            Err(CleanerError::NotFound(_))
        ));
        assert!(matches!(
            cleaner.start("not-an-account", "{}", 1, 1).await,
            Err(CleanerError::Refused(_))
        ));
    }
}
