//! Simulated Lambda functions of member accounts, in the same SQLite file,
//! for the budget action `throttle-lambdas`: their reserved concurrency is
//! what `purser up` throttles and restores.
//!
//! A function exists locally once it has reported invocations: the local
//! bus registers the account, region and `function_name` of every accepted
//! `InvocationsReported` in the transaction that archives it
//! ([`register_reporter`]). That is cheaper and plainer than deriving the
//! list from the archive, which grows with every batch and would be scanned
//! on each evaluation, and it leaves the functions a table of their own that
//! tests and demos can change (create a function, delete one while it is
//! throttled) as a team would on AWS.

use async_trait::async_trait;
use purser_core::lake::INVOCATIONS_REPORTED;
use purser_core::{Event, LambdasError, MemberFunction, MemberLambdas};
use rusqlite::{Transaction, params};
use serde::Serialize;

use crate::db::{Db, DbError};

/// The telemetry layer's source: what reports a function's invocations.
const TELEMETRY_SOURCE: &str = "purser.telemetry";

/// The member accounts' functions, simulated.
#[derive(Debug, Clone)]
pub struct SimulatedLambdas {
    db: Db,
}

/// A simulated function as `purser` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedFunction {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub reserved_concurrency: Option<u32>,
}

fn unavailable(e: DbError) -> LambdasError {
    LambdasError::Unavailable(e.to_string())
}

impl SimulatedLambdas {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates a function (as a team deploying one), or changes the
    /// reserved concurrency of the one there.
    pub async fn create_function(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        reserved: Option<u32>,
    ) -> Result<(), DbError> {
        let (a, r, n) = (account_id.to_owned(), region.to_owned(), name.to_owned());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_functions (account_id, region, name, reserved) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account_id, region, name) DO UPDATE SET reserved = excluded.reserved",
                    params![a, r, n, reserved],
                )
            })
            .await?;
        Ok(())
    }

    /// Deletes a function (as a team would, throttled or not).
    pub async fn delete_function(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> Result<(), DbError> {
        let (a, r, n) = (account_id.to_owned(), region.to_owned(), name.to_owned());
        self.db
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM sim_functions WHERE account_id = ?1 AND region = ?2 AND name = ?3",
                    params![a, r, n],
                )
            })
            .await?;
        Ok(())
    }
}

/// Every simulated function, or one account's, by account, region, name.
pub fn functions(db: &Db, account_id: Option<&str>) -> Result<Vec<SimulatedFunction>, DbError> {
    let account_id = account_id.map(str::to_owned);
    db.call_blocking(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT account_id, region, name, reserved FROM sim_functions
             WHERE ?1 IS NULL OR account_id = ?1 ORDER BY account_id, region, name",
        )?;
        stmt.query_map([account_id], |r| {
            Ok(SimulatedFunction {
                account_id: r.get(0)?,
                region: r.get(1)?,
                name: r.get(2)?,
                reserved_concurrency: r.get(3)?,
            })
        })?
        .collect()
    })
}

/// Registers the function behind an accepted `InvocationsReported`, in the
/// transaction that archives it; a function already known keeps its
/// reserved concurrency.
pub(crate) fn register_reporter(
    tx: &Transaction<'_>,
    event: &Event,
) -> Result<(), rusqlite::Error> {
    if event.detail_type != INVOCATIONS_REPORTED || event.source != TELEMETRY_SOURCE {
        return Ok(());
    }
    let Some(name) = event.detail.get("function_name").and_then(|n| n.as_str()) else {
        return Ok(());
    };
    tx.execute(
        "INSERT OR IGNORE INTO sim_functions (account_id, region, name) VALUES (?1, ?2, ?3)",
        params![event.account, event.region, name],
    )?;
    Ok(())
}

#[async_trait]
impl MemberLambdas for SimulatedLambdas {
    async fn functions(&self, account_id: &str) -> Result<Vec<MemberFunction>, LambdasError> {
        let account = account_id.to_owned();
        let db = self.db.clone();
        let listed = tokio::task::spawn_blocking(move || functions(&db, Some(&account)))
            .await
            .map_err(|e| LambdasError::Unavailable(e.to_string()))?
            .map_err(unavailable)?;
        let mut listed: Vec<MemberFunction> = listed
            .into_iter()
            .map(|f| MemberFunction {
                account_id: f.account_id,
                region: f.region,
                name: f.name,
                reserved_concurrency: f.reserved_concurrency,
            })
            .collect();
        listed.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        Ok(listed)
    }

    async fn set_reserved_concurrency(
        &self,
        function: &MemberFunction,
        reserved: Option<u32>,
    ) -> Result<(), LambdasError> {
        let f = function.clone();
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "UPDATE sim_functions SET reserved = ?4
                     WHERE account_id = ?1 AND region = ?2 AND name = ?3",
                    params![f.account_id, f.region, f.name, reserved],
                )
            })
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Err(LambdasError::NotFound(function.name.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The MemberLambdas port's contract (`purser_contract::member_lambdas`),
    /// on the simulated functions of a fresh database, made and read as a
    /// team (or a demo) does.
    mod contract {
        use std::sync::Arc;

        use purser_contract::member_lambdas::{Fixture, Observer};

        use super::super::{SimulatedLambdas, functions};
        use crate::db::Db;

        struct Teams(SimulatedLambdas, Db);

        impl Observer for Teams {
            async fn create_function(
                &self,
                account_id: &str,
                region: &str,
                name: &str,
                reserved: Option<u32>,
            ) {
                self.0
                    .create_function(account_id, region, name, reserved)
                    .await
                    .unwrap();
            }

            async fn reserved(&self, account_id: &str, region: &str, name: &str) -> Option<u32> {
                functions(&self.1, Some(account_id))
                    .unwrap()
                    .into_iter()
                    .find(|f| f.region == region && f.name == name)
                    .unwrap_or_else(|| panic!("no function {name} in {account_id} {region}"))
                    .reserved_concurrency
            }

            async fn delete_function(&self, account_id: &str, region: &str, name: &str) {
                self.0
                    .delete_function(account_id, region, name)
                    .await
                    .unwrap();
            }
        }

        async fn fresh() -> Option<Fixture<Teams>> {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path()).unwrap();
            let lambdas = SimulatedLambdas::new(db.clone());
            let teams = Teams(lambdas.clone(), db);
            Some(
                Fixture::new(
                    Arc::new(lambdas),
                    teams,
                    ["111111111111".into(), "222222222222".into()],
                    ["us-east-1".into(), "eu-west-1".into()],
                )
                .keeping(dir),
            )
        }

        purser_contract::member_lambdas_contract!(fresh);
    }
}
